//! Fault injection (latency, 5xx replies, 429s, dropped connections, expired tokens) and the
//! connection wrapper that lets a handler close its connection without replying.

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Faults shared with the running server; every setter takes effect for the next requests.
#[derive(Default)]
pub struct Faults {
    inner: Mutex<FaultState>,
    /// Access tokens issued before this generation are expired (`expire_tokens`).
    token_generation: AtomicU64,
}

#[derive(Default)]
struct FaultState {
    latency: Duration,
    fail: u32,
    fail_status: u16,
    throttle: u32,
    retry_after: u32,
    drop: u32,
}

/// What the next `/2/...` call suffers (drop, then throttle, then fail take precedence in that order).
pub enum Fault {
    /// Read the request, then close the connection without a reply.
    Drop,
    /// 429 `too_many_requests` with this `Retry-After`.
    Throttle(u32),
    /// This 5xx status with a plain-text body.
    Fail(u16),
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delay added before every reply (`/oauth2/token` included).
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// The configured latency.
    pub fn latency(&self) -> Duration {
        self.lock().latency
    }

    /// The next `n` `/2/...` calls answer `status` (a 5xx) with a plain-text body, without effect.
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut f = self.lock();
        f.fail = n;
        f.fail_status = status;
    }

    /// The next `n` `/2/...` calls answer 429 `too_many_requests` with `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u32) {
        let mut f = self.lock();
        f.throttle = n;
        f.retry_after = retry_after_secs;
    }

    /// The next `n` `/2/...` calls read the request, then close the connection unanswered, without effect.
    pub fn drop_next(&self, n: u32) {
        self.lock().drop = n;
    }

    /// Every access token issued so far is expired from now on (401 `expired_access_token`).
    pub fn expire_tokens(&self) {
        self.token_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The generation stamped on tokens issued now.
    pub fn token_generation(&self) -> u64 {
        self.token_generation.load(Ordering::SeqCst)
    }

    /// Clears every pending fault and the latency (tokens stay as they are).
    pub fn reset(&self) {
        *self.lock() = FaultState::default();
    }

    /// Consumes one pending fault for a `/2/...` call, if any.
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
            return Some(Fault::Fail(f.fail_status));
        }
        None
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
