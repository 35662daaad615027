//! Fault injection: latency, 5xx and 429 replies to API calls, expired tokens, expired upload
//! policies, uploads that end in `Error` or stay `Initial`.

use std::sync::Mutex;
use std::time::Duration;

/// Faults shared with the running server; every setter takes effect for the next requests.
#[derive(Default)]
pub struct Faults {
    inner: Mutex<FaultState>,
}

#[derive(Default, Clone)]
struct FaultState {
    latency: Duration,
    fail: u32,
    fail_status: u16,
    throttle: u32,
    expire_policies: bool,
    expire_next: u32,
    upload_error: bool,
    stuck_initial: bool,
}

/// What the next API call suffers.
pub enum Fault {
    /// 429 with `Retry-After: 1`.
    Throttle,
    /// This 5xx status.
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

    /// The next `n` `/api/...` calls answer `status` without effect.
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut f = self.lock();
        f.fail = n;
        f.fail_status = status;
    }

    /// The next `n` `/api/...` calls answer 429.
    pub fn throttle_next(&self, n: u32) {
        self.lock().throttle = n;
    }

    /// Storage POSTs see every policy issued so far (and from now on) as expired, as if the
    /// clock had run past their 5 h (on = true) or not (false).
    pub fn expire_policies(&self, on: bool) {
        self.lock().expire_policies = on;
    }

    /// The next `n` storage POSTs find their policy expired (a fresh setting after them works).
    pub fn expire_next_posts(&self, n: u32) {
        self.lock().expire_next = n;
    }

    /// Whether this storage POST finds its policy expired (consumes one `expire_next_posts`).
    pub fn policies_expired(&self) -> bool {
        let mut f = self.lock();
        if f.expire_next > 0 {
            f.expire_next -= 1;
            return true;
        }
        f.expire_policies
    }

    /// Uploads finishing processing from now on end in `Error`.
    pub fn upload_error(&self, on: bool) {
        self.lock().upload_error = on;
    }

    /// Whether uploads end in `Error`.
    pub fn uploads_fail(&self) -> bool {
        self.lock().upload_error
    }

    /// Uploads stay `Initial` for ever while on.
    pub fn stuck_initial(&self, on: bool) {
        self.lock().stuck_initial = on;
    }

    /// Whether uploads are stuck.
    pub fn uploads_stuck(&self) -> bool {
        self.lock().stuck_initial
    }

    /// Clears every fault.
    pub fn reset(&self) {
        *self.lock() = FaultState::default();
    }

    /// Consumes one pending fault for an `/api/...` call.
    pub fn take(&self) -> Option<Fault> {
        let mut f = self.lock();
        if f.throttle > 0 {
            f.throttle -= 1;
            return Some(Fault::Throttle);
        }
        if f.fail > 0 {
            f.fail -= 1;
            return Some(Fault::Fail(f.fail_status));
        }
        None
    }
}
