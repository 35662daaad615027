//! Fault injection (latency, error replies, 429s, dropped connections) and the connection wrapper
//! that lets a handler close its connection without replying.

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Faults shared with the running server; every setter takes effect for the next requests.
#[derive(Default)]
pub struct Faults {
    inner: Mutex<FaultState>,
}

#[derive(Default)]
struct FaultState {
    latency: Duration,
    fail: u32,
    fail_status: u16,
    fail_text: String,
    throttle: u32,
    retry_after: u32,
    drop: u32,
    after_create: u32,
    after_version: u32,
    /// Large File Upload part number → (times, status, text).
    parts: std::collections::HashMap<u64, (u32, u16, String)>,
}

/// What the next API call suffers (drop, then throttle, then fail take precedence in that order).
pub enum Fault {
    Drop,
    Throttle(u32),
    Fail(u16, String),
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delay added before every reply (auth included).
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// The next `n` API calls (not `/v1/auth`) reply `status` + `{"error": error_text}`.
    pub fn fail_next(&self, n: u32, status: u16, error_text: &str) {
        let mut f = self.lock();
        f.fail = n;
        f.fail_status = status;
        f.fail_text = error_text.to_string();
    }

    /// The next `n` API calls (not `/v1/auth`) reply 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u32) {
        let mut f = self.lock();
        f.throttle = n;
        f.retry_after = retry_after_secs;
    }

    /// The next `n` added versions are committed, then the connection closes unanswered.
    pub fn fail_after_version(&self, n: u32) {
        self.lock().after_version = n;
    }

    /// Consumes one pending crash-after-version, if any.
    pub fn take_after_version(&self) -> bool {
        let mut f = self.lock();
        if f.after_version > 0 {
            f.after_version -= 1;
            return true;
        }
        false
    }

    /// The next `n` API calls (not `/v1/auth`) read the request, then close the connection unanswered.
    pub fn drop_next(&self, n: u32) {
        self.lock().drop = n;
    }

    /// The next `n` document creates commit the document, then close the connection unanswered.
    pub fn fail_after_create(&self, n: u32) {
        self.lock().after_create = n;
    }

    /// The next `times` uploads of Large File Upload part `part` (any session) are read whole, then
    /// answered `status` + `{"error": error_text}` without storing the part.
    pub fn fail_part(&self, part: u64, times: u32, status: u16, error_text: &str) {
        self.lock().parts.insert(part, (times, status, error_text.to_string()));
    }

    /// Consumes one pending failure of part `part`, if any.
    pub fn take_part_failure(&self, part: u64) -> Option<(u16, String)> {
        let mut f = self.lock();
        let (times, status, text) = f.parts.get_mut(&part)?;
        if *times == 0 {
            return None;
        }
        *times -= 1;
        Some((*status, text.clone()))
    }

    /// Clears every pending fault and the latency.
    pub fn reset(&self) {
        *self.lock() = FaultState::default();
    }

    /// The configured latency.
    pub fn latency(&self) -> Duration {
        self.lock().latency
    }

    /// Consumes one pending fault for an API call, if any.
    pub fn take(&self) -> Option<Fault> {
        let mut f = self.lock();
        if f.drop > 0 {
            f.drop -= 1;
            return Some(Fault::Drop);
        }
        if f.throttle > 0 {
            f.throttle -= 1;
            return Some(Fault::Throttle(f.retry_after));
        }
        if f.fail > 0 {
            f.fail -= 1;
            return Some(Fault::Fail(f.fail_status, f.fail_text.clone()));
        }
        None
    }

    /// Consumes one pending crash-after-create, if any.
    pub fn take_after_create(&self) -> bool {
        let mut f = self.lock();
        if f.after_create > 0 {
            f.after_create -= 1;
            return true;
        }
        false
    }
}

/// Handle of one connection: `kill()` makes every further read and write fail, so the reply is lost.
#[derive(Clone, Debug)]
pub struct KillSwitch(Arc<AtomicBool>);

impl KillSwitch {
    /// Closes the connection without a reply.
    pub fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A TCP connection that can be killed from a handler.
pub struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

fn aborted() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "connection dropped by fault injection")
}

impl KillableStream {
    fn dead(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.dead() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.dead() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.dead() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A TCP listener yielding killable connections.
pub struct KillableListener(pub TcpListener);

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((s, a)) => {
                    let _ = s.set_nodelay(true);
                    return (KillableStream { inner: s, killed: Arc::new(AtomicBool::new(false)) }, a);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for KillSwitch {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        KillSwitch(stream.io().killed.clone())
    }
}
