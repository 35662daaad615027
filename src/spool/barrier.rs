//! A sync barrier (group commit): concurrent callers that each need "everything I wrote so far is
//! on disk" share one fsync instead of issuing one each.
//!
//! # How it works
//! Callers are grouped into *rounds*. A caller first writes (a journal commit, a rename into a
//! folder), and only then joins the currently open round and queues for the leader lock.
//! Whoever holds the lock and finds its round still undecided becomes that round's leader: it
//! *closes* the round (later callers join a fresh one), runs the sync once, and publishes the
//! outcome to every member. The other members take the lock in turn, find the outcome and return
//! it without syncing again.
//!
//! [`Barrier`] is for async callers (a Tokio mutex, FIFO); [`BlockingBarrier`] is the same for
//! blocking threads (a std mutex), and [`FolderSyncs`] keeps one of those per folder.
//!
//! # Why that is durable
//! A caller joins a round only after its write has returned, and a round's sync starts only after
//! the round was closed, that is after every member joined. So every member's write happened
//! before the fsync that acknowledges it began; an fsync flushes everything written to the file
//! (or folder) before it started, whichever file descriptor wrote it. A caller is never told "ok"
//! on the strength of an fsync that started before its write.
//!
//! # Errors
//! A failed sync fails every member of its round: after a failed fsync Linux may drop the dirty
//! pages and report success on the next fsync, so a member must not retry and believe a later
//! success. If a leader is cancelled before it publishes (its task was dropped), its members
//! find their round undecided and one of them leads a new sync, which started after all of
//! their writes too.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// One group of callers that share a sync.
#[derive(Debug, Default)]
struct Round {
    outcome: OnceLock<Result<(), Arc<io::Error>>>,
}

/// The rounds of one barrier: the open one, which the next sync will cover.
#[derive(Debug, Default)]
struct Rounds {
    open: Mutex<Arc<Round>>,
}

type Outcome = Result<(), Arc<io::Error>>;

impl Rounds {
    /// Joins the open round (after the caller's write has returned).
    fn join(&self) -> Arc<Round> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// With the leader lock held: the outcome of `mine` if decided, else closes the open round
    /// (whoever joins from now on waits for the next sync) and returns it. Normally that is
    /// `mine`; after a cancelled leader it is a later round, which the coming sync covers too.
    fn decided_or_close(&self, mine: &Round) -> Result<Outcome, Arc<Round>> {
        if let Some(outcome) = mine.outcome.get() {
            return Ok(outcome.clone());
        }
        Err(std::mem::take(&mut *self.open.lock().unwrap_or_else(PoisonError::into_inner)))
    }

    /// Publishes a sync's outcome to the rounds it covered.
    fn publish(mine: &Round, closed: &Round, outcome: io::Result<()>) -> Outcome {
        let outcome = outcome.map_err(Arc::new);
        for round in [mine, closed] {
            let _ = round.outcome.set(outcome.clone());
        }
        outcome
    }
}

/// Coalesces concurrent syncs of one file or folder for async callers; see the module
/// documentation.
#[derive(Debug, Default)]
pub struct Barrier {
    rounds: Rounds,
    /// Held by a round's leader while it syncs; FIFO, so members are answered in order.
    leader: tokio::sync::Mutex<()>,
}

impl Barrier {
    /// A barrier with no sync pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns once a `sync` that started after this call began has succeeded (shared with
    /// concurrent callers), or with the error of the sync that covered this call. Call it only
    /// after the write that must become durable has returned.
    ///
    /// # Errors
    /// The sync that covered this caller failed (every caller it covered gets the error).
    pub async fn wait<F, Fut>(&self, sync: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = io::Result<()>>,
    {
        let mine = self.rounds.join();
        let _lead = self.leader.lock().await;
        match self.rounds.decided_or_close(&mine) {
            Ok(outcome) => outcome,
            Err(closed) => Rounds::publish(&mine, &closed, sync().await),
        }
    }
}

/// The same as [`Barrier`] for callers on blocking threads (the sync runs on the leader's thread).
#[derive(Debug, Default)]
pub struct BlockingBarrier {
    rounds: Rounds,
    leader: Mutex<()>,
}

impl BlockingBarrier {
    /// A barrier with no sync pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Blocks until a `sync` that started after this call began has succeeded (shared with
    /// concurrent callers), or returns the error of the sync that covered this call. Call it only
    /// after the write that must become durable has returned. Not from an async task.
    ///
    /// # Errors
    /// The sync that covered this caller failed (every caller it covered gets the error).
    pub fn wait(&self, sync: impl FnOnce() -> io::Result<()>) -> Outcome {
        let mine = self.rounds.join();
        let _lead = self.leader.lock().unwrap_or_else(PoisonError::into_inner);
        match self.rounds.decided_or_close(&mine) {
            Ok(outcome) => outcome,
            Err(closed) => Rounds::publish(&mine, &closed, sync()),
        }
    }
}

/// fsync of folders through one [`BlockingBarrier`] per folder: concurrent renames or links into
/// the same folder share one fsync of it. For blocking threads (where the renames happen).
#[derive(Debug, Default)]
pub struct FolderSyncs {
    /// Barriers of the folders being synced right now (removed when nobody uses them).
    barriers: Mutex<HashMap<PathBuf, Arc<BlockingBarrier>>>,
}

impl FolderSyncs {
    /// No folder syncs pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Blocks until an fsync of `dir` that started after this call began has succeeded. Call it
    /// after the rename, link or unlink in `dir` that must survive a power loss.
    ///
    /// # Errors
    /// The fsync covering this call failed, or `dir` cannot be opened.
    pub fn sync(&self, dir: &Path) -> io::Result<()> {
        let barrier = {
            let mut map = self.barriers.lock().unwrap_or_else(PoisonError::into_inner);
            map.entry(dir.to_path_buf()).or_default().clone()
        };
        let outcome = barrier.wait(|| std::fs::File::open(dir)?.sync_all());
        drop(barrier);
        {
            // Forget the folder's barrier once nobody else holds it, so the map stays small.
            let mut map = self.barriers.lock().unwrap_or_else(PoisonError::into_inner);
            if map.get(dir).is_some_and(|b| Arc::strong_count(b) == 1) {
                map.remove(dir);
            }
        }
        outcome.map_err(|e| io::Error::new(e.kind(), format!("fsync {}: {e}", dir.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A sync that counts its calls and takes a while, so that callers pile up behind it.
    async fn slow_sync(calls: &AtomicUsize, fail: bool) -> io::Result<()> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        if fail { Err(io::Error::other("disk on fire")) } else { Ok(()) }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_callers_share_syncs_and_all_are_woken() {
        let barrier = Arc::new(Barrier::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (b, c) = (barrier.clone(), calls.clone());
            tasks.spawn(async move { b.wait(|| slow_sync(&c, false)).await });
        }
        let mut ok = 0;
        while let Some(r) = tasks.join_next().await {
            assert!(matches!(r, Ok(Ok(()))), "{r:?}");
            ok += 1;
        }
        assert_eq!(ok, 50, "every caller returns");
        let n = calls.load(Ordering::SeqCst);
        // The first caller syncs alone; everyone who arrived during it shares the next sync.
        assert!((1..=3).contains(&n), "50 callers took {n} syncs");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_sync_fails_every_caller_it_covered_and_the_next_round_syncs_again() {
        let barrier = Arc::new(Barrier::new());
        let calls = Arc::new(AtomicUsize::new(0));
        // Hold the leader lock so that all callers join one round.
        let held = barrier.leader.lock().await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let (b, c) = (barrier.clone(), calls.clone());
            tasks.spawn(async move { b.wait(|| slow_sync(&c, true)).await });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Err(e)) => assert_eq!(e.to_string(), "disk on fire"),
                other => panic!("expected the sync's error, got {other:?}"),
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one sync for the whole round, not retried");
        // A caller after the failure is not answered with the old outcome: it syncs again.
        assert!(barrier.wait(|| slow_sync(&calls, false)).await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_sync_never_covers_a_caller_that_joined_after_it_started() {
        let barrier = Arc::new(Barrier::new());
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let b = barrier.clone();
            tokio::spawn(async move {
                b.wait(|| async move {
                    let _ = started_tx.send(());
                    let _ = release_rx.await;
                    Ok(())
                })
                .await
            })
        };
        started_rx.await.expect("first sync started");
        // Joins while the first sync runs: it must get a sync of its own.
        let second_ran = Arc::new(AtomicUsize::new(0));
        let second = {
            let (b, ran) = (barrier.clone(), second_ran.clone());
            tokio::spawn(async move {
                b.wait(|| async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _ = release_tx.send(());
        assert!(matches!(first.await, Ok(Ok(()))));
        assert!(matches!(second.await, Ok(Ok(()))));
        assert_eq!(second_ran.load(Ordering::SeqCst), 1, "the late caller ran its own sync");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_cancelled_leader_does_not_strand_its_round() {
        let barrier = Arc::new(Barrier::new());
        let leader = {
            let b = barrier.clone();
            tokio::spawn(async move { b.wait(std::future::pending::<io::Result<()>>).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let member = {
            let (b, c) = (barrier.clone(), calls.clone());
            tokio::spawn(async move { b.wait(|| slow_sync(&c, false)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let r = tokio::time::timeout(Duration::from_secs(5), member).await;
        assert!(matches!(r, Ok(Ok(Ok(())))), "{r:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn blocking_callers_share_syncs_and_a_failure_reaches_every_caller_it_covered() {
        for fail in [false, true] {
            let barrier = Arc::new(BlockingBarrier::new());
            let calls = Arc::new(AtomicUsize::new(0));
            let held = barrier.leader.lock().expect("lock");
            let threads: Vec<_> = (0..10)
                .map(|_| {
                    let (b, c) = (barrier.clone(), calls.clone());
                    std::thread::spawn(move || {
                        b.wait(|| {
                            c.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                            if fail { Err(io::Error::other("disk on fire")) } else { Ok(()) }
                        })
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(50));
            drop(held);
            for t in threads {
                let r = t.join().expect("thread");
                assert_eq!(r.is_err(), fail, "{r:?}");
            }
            assert_eq!(calls.load(Ordering::SeqCst), 1, "all ten joined one round");
        }
    }

    #[test]
    fn folder_syncs_sync_and_forget_their_barriers() {
        let dir = tempfile::tempdir().expect("tmp");
        let syncs = Arc::new(FolderSyncs::new());
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let (s, d) = (syncs.clone(), dir.path().to_path_buf());
                std::thread::spawn(move || {
                    std::fs::write(d.join(format!("f{i}")), b"x")?;
                    s.sync(&d)
                })
            })
            .collect();
        for t in threads {
            let r = t.join().expect("thread");
            assert!(r.is_ok(), "{r:?}");
        }
        assert!(syncs.barriers.lock().expect("lock").is_empty(), "no barrier left behind");
        let missing = dir.path().join("missing");
        let e = syncs.sync(&missing).expect_err("no such folder");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
