//! Fault injection: latency, 5xx for the next N calls, publish failing for one locale, dropped
//! connections. Every setter takes effect for the next requests.

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
    drop: u32,
    publish_fail_locale: Option<String>,
    /// (method, path suffix, calls left, status): calls matching fail without effect.
    fail_route: Option<(String, String, u32, u16)>,
}

/// What the next `/v3/...` call suffers.
pub enum Fault {
    /// Close the connection without a reply.
    Drop,
    /// Answer this 5xx status.
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

    /// The next `n` calls answer `status` (a 5xx) without effect.
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut f = self.lock();
        f.fail = n;
        f.fail_status = status;
    }

    /// The next `n` calls lose their connection without a reply.
    pub fn drop_next(&self, n: u32) {
        self.lock().drop = n;
    }

    /// Publishing (entries and assets) to `locale` fails with 422 until cleared with `None`.
    pub fn fail_publish_locale(&self, locale: Option<&str>) {
        self.lock().publish_fail_locale = locale.map(String::from);
    }

    /// The locale whose publishing fails, if any.
    pub fn publish_fail_locale(&self) -> Option<String> {
        self.lock().publish_fail_locale.clone()
    }

    /// The next `n` calls of `method` whose path ends with `suffix` (e.g. `POST`, `/entries`)
    /// answer `status` without effect (a crash between two calls of one delivery).
    pub fn fail_route(&self, method: &str, suffix: &str, n: u32, status: u16) {
        self.lock().fail_route = Some((method.to_string(), suffix.to_string(), n, status));
    }

    /// Clears every fault.
    pub fn reset(&self) {
        *self.lock() = FaultState::default();
    }

    /// Takes the fault for this call of `method` on `path`, if any (drop, then fail, then a
    /// route's failure).
    pub fn take_for(&self, method: &str, path: &str) -> Option<Fault> {
        if let Some(f) = self.take() {
            return Some(f);
        }
        let mut f = self.lock();
        if let Some((m, suffix, left, status)) = f.fail_route.as_mut()
            && *left > 0
            && m == method
            && path.ends_with(suffix.as_str())
        {
            *left -= 1;
            return Some(Fault::Fail(*status));
        }
        None
    }

    /// Takes the fault for this call, if any (drop first, then fail).
    pub fn take(&self) -> Option<Fault> {
        let mut f = self.lock();
        if f.drop > 0 {
            f.drop -= 1;
            return Some(Fault::Drop);
        }
        if f.fail > 0 {
            f.fail -= 1;
            return Some(Fault::Fail(f.fail_status));
        }
        None
    }
}
