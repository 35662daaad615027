//! Fault injection (latency, error replies, 429s with rate-limit headers, dropped connections,
//! expired OAuth tokens) and the connection wrapper that lets a handler close its connection
//! without replying.

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
    throttle: u32,
    retry_after: u32,
    drop: u32,
    /// Bumped by `expire_tokens`: OAuth access tokens issued under an older generation are dead.
    token_generation: u64,
    /// Pages another user edits just before the next `PUT /pages/{id}` of each is handled.
    races: Vec<u64>,
    /// (path part, calls left, status): calls whose path contains the part fail with the status.
    path_fails: Vec<(String, u32, u16)>,
}

/// What the next API call suffers (drop, then throttle, then fail take precedence in that order).
pub enum Fault {
    /// Read the request, close the connection without a reply.
    Drop,
    /// 429 with `Retry-After: secs` and the `X-RateLimit-*` headers.
    Throttle(u32),
    /// This status with the API's error body.
    Fail(u16),
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delay added before every reply.
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// The configured latency.
    pub fn latency(&self) -> Duration {
        self.lock().latency
    }

    /// The next `n` API calls reply `status` with the API's error body (v2 `errors[]` or v1).
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut f = self.lock();
        f.fail = n;
        f.fail_status = status;
    }

    /// The next `n` API calls reply 429 with `Retry-After: retry_after_secs`, `X-RateLimit-Limit`,
    /// `X-RateLimit-Remaining: 0`, `X-RateLimit-Reset` (ISO 8601) and `X-RateLimit-NearLimit: true`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u32) {
        let mut f = self.lock();
        f.throttle = n;
        f.retry_after = retry_after_secs;
    }

    /// The next `n` API calls read the request, then close the connection unanswered.
    pub fn drop_next(&self, n: u32) {
        self.lock().drop = n;
    }

    /// Every OAuth access token issued so far (the seeded one included) is expired from now on:
    /// calls with it are 401 until the client refreshes (`POST /oauth/token`).
    pub fn expire_tokens(&self) {
        self.lock().token_generation += 1;
    }

    /// The current token generation (tokens carry the generation they were issued in).
    pub fn token_generation(&self) -> u64 {
        self.lock().token_generation
    }

    /// Clears every pending fault and the latency (expired tokens stay expired).
    pub fn reset(&self) {
        let mut f = self.lock();
        let g = f.token_generation;
        *f = FaultState { token_generation: g, ..FaultState::default() };
    }

    /// Another user edits page `id` (version + 1) right before the next `PUT /pages/{id}` is
    /// handled, so an update computed from the version read before fails with 409: a race made
    /// deterministic.
    pub fn race_next_update(&self, id: u64) {
        self.lock().races.push(id);
    }

    /// Whether a race is pending for this page's update (consumed).
    pub fn take_race(&self, id: u64) -> bool {
        let mut f = self.lock();
        match f.races.iter().position(|r| *r == id) {
            Some(i) => {
                f.races.remove(i);
                true
            }
            None => false,
        }
    }

    /// The next `n` API calls whose path contains `part` reply `status` (other calls are served).
    pub fn fail_path(&self, part: &str, n: u32, status: u16) {
        self.lock().path_fails.push((part.to_string(), n, status));
    }

    /// Consumes one pending fault for an API call to `path`, if any.
    pub fn take(&self, path: &str) -> Option<Fault> {
        let mut f = self.lock();
        if let Some(pf) = f.path_fails.iter_mut().find(|(part, n, _)| *n > 0 && path.contains(part.as_str())) {
            pf.1 -= 1;
            return Some(Fault::Fail(pf.2));
        }
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
