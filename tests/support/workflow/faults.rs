//! Fault injection: latency, 5xx and 429 (with `Retry-After`) replies to API calls, connections
//! dropped before or after the call took effect. Token expiry is [`super::Emulator::expire_tokens`].
//! Every setter takes effect for the next requests.

use std::sync::Mutex;
use std::time::Duration;

/// Faults shared with the running server.
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
    retry_after: u64,
    drop_before: u32,
    drop_after: u32,
    drop_after_post: u32,
}

/// What the next `/workflow/v1` call suffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After` (seconds).
    Throttle(u64),
    /// This 5xx status, without effect.
    Fail(u16),
    /// The connection closes without a reply and without effect.
    DropBefore,
    /// The call takes effect, then the connection closes without a reply.
    DropAfter,
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

    /// The next `n` API calls answer `status` (a 5xx) without effect.
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut f = self.lock();
        f.fail = n;
        f.fail_status = status;
    }

    /// The next `n` API calls answer 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u64) {
        let mut f = self.lock();
        f.throttle = n;
        f.retry_after = retry_after_secs;
    }

    /// The next `n` API calls lose their connection before anything happens.
    pub fn drop_next(&self, n: u32) {
        self.lock().drop_before = n;
    }

    /// The next `n` API calls take effect, then lose their connection (the reply is lost).
    pub fn drop_after_next(&self, n: u32) {
        self.lock().drop_after = n;
    }

    /// The next `n` POST calls (starts, task actions) take effect, then lose their connection;
    /// GETs before them are unaffected (a lost reply to the one call that changes state).
    pub fn drop_after_next_post(&self, n: u32) {
        self.lock().drop_after_post = n;
    }

    /// Clears every fault.
    pub fn reset(&self) {
        *self.lock() = FaultState::default();
    }

    /// Consumes one pending fault for an API call (drops first, then 429, then 5xx).
    pub fn take(&self, is_post: bool) -> Option<Fault> {
        let mut f = self.lock();
        if is_post && f.drop_after_post > 0 {
            f.drop_after_post -= 1;
            return Some(Fault::DropAfter);
        }
        if f.drop_before > 0 {
            f.drop_before -= 1;
            return Some(Fault::DropBefore);
        }
        if f.drop_after > 0 {
            f.drop_after -= 1;
            return Some(Fault::DropAfter);
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
