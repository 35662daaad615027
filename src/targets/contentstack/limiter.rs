//! The client-side rate limiter of a Contentstack target: Contentstack limits each organisation
//! to N requests per second for reads and N for writes and sends no `Retry-After`, so wharf keeps
//! under the limit itself instead of learning it from 429s.
//!
//! One [`Limiter`] per kind (reads, writes) per target, shared by every worker delivering to it
//! (the target is built once and shared). It is a token bucket of capacity one on tokio time:
//! calls are spaced evenly, one slot every `1/rate` seconds, so no sliding second ever holds more
//! than `rate` calls leaving this process.
//!
//! Decided: a bucket of capacity one (no burst) because Contentstack counts a sliding second; a
//! larger bucket would let a burst after an idle second plus the refill reach twice the rate.
//! Slots are 5 % wider than `1/rate` so that network jitter bunching two calls on their way to
//! the server does not push a second over the limit; and a call whose task wakes late (a busy
//! runtime) still waits while `rate` calls already went in the last second.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Slots are this much wider than `1 / rate`.
const MARGIN: f64 = 1.05;
/// The window Contentstack counts in.
const SECOND: Duration = Duration::from_secs(1);

/// Even spacing of calls at a configured rate.
#[derive(Debug)]
pub struct Limiter {
    interval: Duration,
    rate: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The next free slot.
    next: Option<Instant>,
    /// When the calls of the last second actually went (a task woken late by a busy runtime
    /// must not send close behind the next slot's call and overfill a second).
    recent: VecDeque<Instant>,
}

impl Limiter {
    /// A limiter letting `rate` calls per second through (at least one).
    pub fn per_sec(rate: u32) -> Limiter {
        let interval = Duration::from_secs_f64(MARGIN / f64::from(rate.max(1)));
        Limiter { interval, rate: rate.max(1) as usize, state: Mutex::new(State::default()) }
    }

    /// The spacing between two calls.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this call's slot, and until fewer than `rate` calls went in the last second.
    /// Slots are handed out in order of arrival; a caller dropped while waiting leaves its slot
    /// unused (never more calls, only fewer).
    pub async fn acquire(&self) {
        let slot = {
            let mut st = self.state();
            let now = Instant::now();
            let slot = st.next.map_or(now, |n| n.max(now));
            st.next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
        loop {
            let wait = {
                let mut st = self.state();
                let now = Instant::now();
                while st.recent.front().is_some_and(|t| now.duration_since(*t) >= SECOND) {
                    st.recent.pop_front();
                }
                match st.recent.front() {
                    Some(oldest) if st.recent.len() >= self.rate => *oldest + SECOND,
                    _ => {
                        st.recent.push_back(now);
                        return;
                    }
                }
            };
            tokio::time::sleep_until(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn contentstack_limiter_spaces_calls_of_all_tasks() {
        let l = Arc::new(Limiter::per_sec(40));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                let mut at = Vec::new();
                for _ in 0..5 {
                    l.acquire().await;
                    at.push(Instant::now());
                }
                at
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        all.sort();
        // 20 calls at 40/s: the last one no earlier than 19 slots after the first
        assert!(all[19] - start >= l.interval() * 19, "{:?}", all[19] - start);
        // a late wake-up may bring two calls closer, but never a run of them: any 11 calls
        // span at least 9 slots
        for w in all.windows(11) {
            assert!(w[10] - w[0] >= l.interval() * 9, "{:?}", w[10] - w[0]);
        }
    }

    #[tokio::test]
    async fn contentstack_limiter_never_lets_more_than_rate_calls_into_a_second() {
        let l = Arc::new(Limiter::per_sec(20));
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                let mut at = Vec::new();
                for _ in 0..5 {
                    l.acquire().await;
                    at.push(Instant::now());
                    // a busy worker: blocks its thread now and then, so slots are woken late
                    std::thread::sleep(Duration::from_millis(7));
                }
                at
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        all.sort();
        for w in all.windows(21) {
            assert!(w[20] - w[0] >= SECOND, "21 calls within {:?}", w[20] - w[0]);
        }
    }

    #[test]
    fn contentstack_limiter_slot_is_a_little_wider_than_the_rate() {
        let l = Limiter::per_sec(10);
        assert!(l.interval() > Duration::from_millis(100) && l.interval() < Duration::from_millis(110));
        assert_eq!(Limiter::per_sec(0).interval(), Limiter::per_sec(1).interval());
    }
}
