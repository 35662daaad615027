//! The namespace write lock. Dropbox serialises writes per namespace: at most `write_concurrency`
//! commits (upload, upload_session/finish, finish_batch_v2 as one, move, delete, create_folder)
//! hold it at once; a commit that cannot get it within `write_lock_wait_ms` answers 429
//! `too_many_write_operations` (`Retry-After: 1`). A commit holds it for `commit_ms`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// The lock and its counters.
pub struct WriteLock {
    sem: Semaphore,
    wait: Duration,
    hold: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    commits: AtomicUsize,
}

/// A held lock; dropping it releases the lock.
pub struct Held<'a> {
    lock: &'a WriteLock,
    _permit: SemaphorePermit<'a>,
}

impl WriteLock {
    /// A lock for `concurrency` commits at once.
    pub fn new(concurrency: usize, wait: Duration, hold: Duration) -> WriteLock {
        WriteLock {
            sem: Semaphore::new(concurrency.max(1)),
            wait,
            hold,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            commits: AtomicUsize::new(0),
        }
    }

    /// Takes the lock (waiting up to `write_lock_wait_ms`) and holds it for `commit_ms`; `None` =
    /// answer 429 `too_many_write_operations`.
    pub async fn acquire(&self) -> Option<Held<'_>> {
        let permit = match self.sem.try_acquire() {
            Ok(p) => p,
            Err(_) if self.wait.is_zero() => return None,
            Err(_) => tokio::time::timeout(self.wait, self.sem.acquire()).await.ok()?.ok()?,
        };
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let held = Held { lock: self, _permit: permit };
        if !self.hold.is_zero() {
            tokio::time::sleep(self.hold).await;
        }
        Some(held)
    }

    /// Commits made so far (a batch counts once).
    pub fn commits(&self) -> usize {
        self.commits.load(Ordering::SeqCst)
    }

    /// The most commits ever holding the lock at once.
    pub fn max_concurrent(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

impl Held<'_> {
    /// Counts the commit as made (call after the namespace changed, or was found unchanged).
    pub fn committed(&self) {
        self.lock.commits.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.lock.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
