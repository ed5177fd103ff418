// The edge worker's module entry: load the wasm module that workerd (or Cloudflare) hands over,
// then let the Rust crate handle every request (see src/web/worker/).
import { initSync, handleRequest, guardBreakersSync } from "./pkg/llm_stream_guard.js";
import wasmModule from "./pkg/llm_stream_guard_bg.wasm";

initSync({ module: wasmModule });

export default {
  fetch(request, env, ctx) {
    return handleRequest(request, env, ctx);
  },
};

// The Durable Object the isolates share their breakers' decisions through (binding
// `LSG_GUARD_DO`; one object of it, by name). Each isolate POSTs the decisions its own breakers
// changed (a JSON array; empty to only read) and gets the merged store back; how they merge is
// the core's (`guardBreakersSync`, src/core/guard/shared.rs). The store is kept in the object's
// storage too, so that it outlives the object's eviction.
export class GuardBreakers {
  constructor(ctx) {
    this.storage = ctx.storage;
    this.store = undefined;
  }

  async fetch(request) {
    if (this.store === undefined) {
      this.store = (await this.storage.get("breakers")) ?? "";
    }
    let store;
    try {
      store = guardBreakersSync(this.store, await request.text());
    } catch (error) {
      return new Response(String(error?.message ?? "malformed"), { status: 400 });
    }
    if (store !== this.store) {
      this.store = store;
      await this.storage.put("breakers", store);
    }
    return new Response(store, { headers: { "content-type": "application/json" } });
  }
}
