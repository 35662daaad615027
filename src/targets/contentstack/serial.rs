//! One delivery at a time per entry: two workers delivering two versions of the same source
//! document at once would both find no entry and create two. Deliveries with the same unique
//! value take the same async lock; different documents run in parallel.
//!
//! This serialises the workers of one process. Several nodes (later) would also need the
//! journal's help; until then the lookup-before-create keeps a redelivery from duplicating.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Async locks by key, dropped when nobody holds or waits for them.
#[derive(Debug, Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while one key's delivery runs; releases (and forgets an unused lock) on drop.
pub struct Held<'a> {
    owner: &'a KeyedLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    /// Waits until no other delivery holds `key`.
    pub async fn lock(&self, key: &str) -> Held<'_> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key.to_string()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        Held { owner: self, key: key.to_string(), guard: Some(guard) }
    }

    /// How many keys have a lock (for tests).
    pub fn len(&self) -> usize {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no key has a lock.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.owner.locks.lock().unwrap_or_else(|e| e.into_inner());
        // only the map holds it now: nobody waits, forget it
        if map.get(&self.key).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn contentstack_same_key_waits_other_keys_do_not() {
        let locks = Arc::new(KeyedLocks::default());
        let a = locks.lock("DOC-1").await;
        let other = tokio::time::timeout(std::time::Duration::from_secs(1), locks.lock("DOC-2")).await;
        assert!(other.is_ok(), "another document is not blocked");
        drop(other);
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move {
            let _b = l2.lock("DOC-1").await;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the same document waits");
        drop(a);
        waiter.await.expect("waiter");
        assert!(locks.is_empty(), "unused locks are forgotten");
    }
}
