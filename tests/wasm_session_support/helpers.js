// JavaScript helpers for tests/wasm_session.rs: the parts of the test that are easiest to say in
// JavaScript (a loopback WebRTC pair, a WebSocket that resolves once open, a fake peer
// connection, waiting for one event). Nothing here sleeps: every helper settles on an event.

/** Whether this global scope is a page (has `window` and `document`). */
export function isPage() {
  return typeof globalThis.window === "object" && typeof globalThis.document === "object";
}

/** Whether `WebSocket` is a global here. */
export function hasWebSocket() {
  return typeof globalThis.WebSocket === "function";
}

/** Whether `RTCPeerConnection` is a global here. */
export function hasPeerConnection() {
  return typeof globalThis.RTCPeerConnection === "function";
}

/** Whether `Symbol.dispose` exists here. */
export function hasSymbolDispose() {
  return typeof Symbol.dispose === "symbol";
}

/** Calls `value[Symbol.dispose]()`; false when there is no such method. */
export function dispose(value) {
  const method = value[Symbol.dispose];
  if (typeof method !== "function") return false;
  method.call(value);
  return true;
}

/**
 * Two RTCPeerConnections in this page, connected over loopback without STUN, with a data channel
 * created on pc1 and open on both sides: `{ pc1, pc2, dc1, dc2 }`. ICE candidates are handed over
 * directly (queued until the remote description is set).
 */
export async function rtcPair() {
  const pc1 = new RTCPeerConnection();
  const pc2 = new RTCPeerConnection();
  const wire = (from, to) => {
    const queue = [];
    let ready = false;
    from.addEventListener("icecandidate", (e) => {
      if (!e.candidate) return;
      if (ready) to.addIceCandidate(e.candidate).catch(() => {});
      else queue.push(e.candidate);
    });
    return () => {
      ready = true;
      for (const c of queue.splice(0)) to.addIceCandidate(c).catch(() => {});
    };
  };
  const flushTo2 = wire(pc1, pc2);
  const flushTo1 = wire(pc2, pc1);
  const dc1 = pc1.createDataChannel("guard-test");
  const remote = new Promise((resolve) => {
    pc2.addEventListener("datachannel", (e) => resolve(e.channel), { once: true });
  });
  const opened = (dc) =>
    dc.readyState === "open"
      ? Promise.resolve()
      : new Promise((resolve) => dc.addEventListener("open", resolve, { once: true }));
  const offer = await pc1.createOffer();
  await pc1.setLocalDescription(offer);
  await pc2.setRemoteDescription(offer);
  flushTo2();
  const answer = await pc2.createAnswer();
  await pc2.setLocalDescription(answer);
  await pc1.setRemoteDescription(answer);
  flushTo1();
  await opened(dc1);
  const dc2 = await remote;
  await opened(dc2);
  return { pc1, pc2, dc1, dc2 };
}

/** Closes both sides of a pair (idempotent). */
export function closePair(pair) {
  pair.pc1.close();
  pair.pc2.close();
}

/** A WebSocket to `url`, resolved once open (rejected on error or close before open). */
export function openWebSocket(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.addEventListener("open", () => resolve(ws), { once: true });
    ws.addEventListener("error", () => reject(new Error(`WebSocket ${url} failed to open`)), { once: true });
    ws.addEventListener("close", (e) => reject(new Error(`WebSocket ${url} closed before open (${e.code})`)), { once: true });
  });
}

/**
 * Resolves with `{ at, code, wasClean }` (`at`: `Date.now()`) when `target` fires `type`
 * (`code`/`wasClean` for close events).
 */
export function nextEvent(target, type) {
  return new Promise((resolve) => {
    target.addEventListener(
      type,
      (e) => resolve({ at: Date.now(), code: e.code, wasClean: e.wasClean }),
      { once: true },
    );
  });
}

/** A stand-in for an RTCPeerConnection: an EventTarget with a writable `connectionState`. */
class FakePeerConnection extends EventTarget {
  constructor() {
    super();
    this.connectionState = "connected";
  }
}

/** A new fake peer connection in state "connected". */
export function fakePeer() {
  return new FakePeerConnection();
}

/** Sets the fake peer's `connectionState` and dispatches `connectionstatechange`. */
export function setConnectionState(peer, state) {
  peer.connectionState = state;
  peer.dispatchEvent(new Event("connectionstatechange"));
}

/** Dispatches `pagehide` on `window`. */
export function firePagehide() {
  globalThis.window.dispatchEvent(new Event("pagehide"));
}

/** `promise.then(() => "settled")`: marks a fulfilment (a rejection passes through). */
export function settledMarker(promise) {
  return promise.then(() => "settled");
}
