//! Per-connection state shared between the socket wrapper and the request handler, and the
//! socket wrapper that turns reads, writes, EOF and errors into ledger events.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::ledger::{ClosedBy, Ledger};

/// State of one connection, shared by its socket wrapper, its handler and its body producer.
pub(crate) struct ConnShared {
    pub id: u64,
    pub ledger: Ledger,
    /// The server's own address, when the request came over a socket.
    pub local: Option<SocketAddr>,
    /// True when driven in-process (no socket): closing is then tracked by the response body.
    pub in_process: bool,
    closed: watch::Sender<bool>,
    closed_once: AtomicBool,
    started: AtomicBool,
    reset: AtomicBool,
    /// Set once the request was answered with `101 Switching Protocols` (a WebSocket).
    upgraded: AtomicBool,
    /// Number of completed flushes of the socket (hyper flushes after writing its buffer).
    flushes: watch::Sender<u64>,
    /// The flush count at the moment the body handed its latest frame to hyper.
    taken_at_flush: AtomicU64,
}

impl ConnShared {
    /// State for connection `id`.
    pub fn new(id: u64, ledger: Ledger, local: Option<SocketAddr>, in_process: bool) -> Self {
        ConnShared {
            id,
            ledger,
            local,
            in_process,
            closed: watch::Sender::new(false),
            closed_once: AtomicBool::new(false),
            started: AtomicBool::new(false),
            reset: AtomicBool::new(false),
            upgraded: AtomicBool::new(false),
            flushes: watch::Sender::new(0),
            taken_at_flush: AtomicU64::new(0),
        }
    }

    /// Records the end of the connection (first call wins) and wakes everything waiting on it.
    pub fn mark_closed(&self, by: ClosedBy, client_reset: bool) {
        if !self.closed_once.swap(true, Ordering::SeqCst) {
            self.ledger.closed(self.id, by, client_reset);
            self.closed.send_replace(true);
        }
    }

    /// Records that response bytes started going out (first call wins).
    pub fn mark_started(&self) {
        if !self.started.swap(true, Ordering::SeqCst) {
            self.ledger.response_started(self.id);
        }
    }

    /// Resolves once the connection has ended (client left, or server closed it).
    pub async fn wait_closed(&self) {
        let mut rx = self.closed.subscribe();
        // An error means the sender is gone, which cannot happen while `self` is alive.
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// Makes the socket close with a TCP reset (SO_LINGER 0) when it is dropped.
    pub fn arm_reset(&self) {
        self.reset.store(true, Ordering::SeqCst);
    }

    /// Whether [`ConnShared::arm_reset`] was called.
    fn reset_armed(&self) -> bool {
        self.reset.load(Ordering::SeqCst)
    }

    /// Records that the connection switches protocols: it outlives its HTTP exchange.
    pub fn mark_upgraded(&self) {
        self.upgraded.store(true, Ordering::SeqCst);
    }

    /// Whether [`ConnShared::mark_upgraded`] was called.
    pub fn is_upgraded(&self) -> bool {
        self.upgraded.load(Ordering::SeqCst)
    }

    /// Called by the response body whenever it hands a frame to hyper.
    pub fn frame_taken(&self) {
        self.taken_at_flush
            .store(*self.flushes.borrow(), Ordering::SeqCst);
    }

    /// Resolves once every frame handed to hyper so far has been written to the socket.
    pub async fn wait_flushed(&self) {
        if self.in_process {
            return;
        }
        let target = self.taken_at_flush.load(Ordering::SeqCst);
        let mut rx = self.flushes.subscribe();
        let _ = rx.wait_for(|n| *n > target).await;
    }
}

impl Drop for ConnShared {
    fn drop(&mut self) {
        // In-process requests whose response was dropped unfinished (or never produced) were
        // abandoned by the caller.
        self.mark_closed(ClosedBy::Client, false);
    }
}

/// A TCP stream that reports EOF, peer errors, the first write, flushes and shutdown to its
/// connection's [`ConnShared`].
pub(crate) struct RecordingIo {
    inner: TcpStream,
    shared: Arc<ConnShared>,
}

impl RecordingIo {
    /// Wraps an accepted stream.
    pub fn new(inner: TcpStream, shared: Arc<ConnShared>) -> Self {
        RecordingIo { inner, shared }
    }

    /// Records errors that mean the peer went away.
    fn on_error(&self, e: &io::Error) {
        match e.kind() {
            io::ErrorKind::ConnectionReset => self.shared.mark_closed(ClosedBy::Client, true),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted => {
                self.shared.mark_closed(ClosedBy::Client, false)
            }
            _ => {}
        }
    }

    /// Records the first written bytes, or a peer error.
    fn on_write(&self, r: &Poll<io::Result<usize>>) {
        match r {
            Poll::Ready(Ok(n)) if *n > 0 => self.shared.mark_started(),
            Poll::Ready(Err(e)) => self.on_error(e),
            _ => {}
        }
    }
}

impl AsyncRead for RecordingIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let room = buf.remaining();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &r {
            Poll::Ready(Ok(())) if room > 0 && buf.filled().len() == before => {
                this.shared.mark_closed(ClosedBy::Client, false);
            }
            Poll::Ready(Err(e)) => this.on_error(e),
            _ => {}
        }
        r
    }
}

impl AsyncWrite for RecordingIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.on_write(&r);
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.on_write(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        match &r {
            Poll::Ready(Ok(())) => {
                this.shared.flushes.send_modify(|n| *n += 1);
            }
            Poll::Ready(Err(e)) => this.on_error(e),
            Poll::Pending => {}
        }
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shared.reset_armed() {
            // A FIN would turn the reset into a clean close: leave the socket to `Drop`.
            return Poll::Ready(Ok(()));
        }
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        if let Poll::Ready(res) = &r {
            match res {
                Ok(()) => this.shared.mark_closed(ClosedBy::Server, false),
                Err(e) => this.on_error(e),
            }
        }
        r
    }
}

impl Drop for RecordingIo {
    fn drop(&mut self) {
        if self.shared.reset_armed() {
            // Closing with a zero linger time sends RST instead of FIN.
            let _ = self.inner.set_zero_linger();
        }
        self.shared.mark_closed(ClosedBy::Server, false);
    }
}
