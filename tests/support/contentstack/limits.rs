//! The per-organisation rate limit: a sliding one-second window, separate for reads (GET) and
//! writes (everything else). A refused call answers 429 with `X-RateLimit-Limit` and
//! `X-RateLimit-Remaining` and, like Contentstack, no `Retry-After`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One sliding window of accepted calls.
pub struct Window {
    limit: usize,
    calls: Mutex<VecDeque<Instant>>,
    /// 429s this window sent.
    pub refused: AtomicU64,
}

impl Window {
    /// A window allowing `limit` calls per sliding second.
    pub fn new(limit: usize) -> Window {
        Window { limit, calls: Mutex::new(VecDeque::new()), refused: AtomicU64::new(0) }
    }

    /// The limit (for `X-RateLimit-Limit`).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Admits one call: `Ok(remaining)` or `Err(())` when the window is full (counted).
    pub fn admit(&self) -> Result<usize, ()> {
        let now = Instant::now();
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        while calls.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
            calls.pop_front();
        }
        if calls.len() >= self.limit {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(());
        }
        calls.push_back(now);
        Ok(self.limit - calls.len())
    }

    /// Counts an injected 429.
    pub fn count_refused(&self) {
        self.refused.fetch_add(1, Ordering::SeqCst);
    }

    /// How many 429s were sent.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }
}
