//! Durable commits: a statement runs like any other, then waits at the group-commit barrier for an
//! fdatasync of the write-ahead log that started after it (see [`crate::spool::barrier`]).

use super::{Error, Journal};
use std::io;
use std::path::PathBuf;

/// fdatasync of the write-ahead log, which holds every commit not yet checkpointed. Without a
/// log (the last connection closed, which checkpoints into the database and syncs it before it
/// removes the log), the database file is synced instead, which is then merely redundant.
fn sync_wal(files: &(PathBuf, PathBuf)) -> io::Result<()> {
    match std::fs::File::open(&files.1) {
        Ok(wal) => wal.sync_data(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::File::open(&files.0)?.sync_data(),
        Err(e) => Err(e),
    }
}

impl Journal {
    /// Runs one statement as a durable commit: once it returns, the commit (and every one before
    /// it) survives a power loss. For the commits that a client is told about or that a file move
    /// depends on: `received`, `excepted`, resubmits.
    ///
    /// The statement runs like any other (`synchronous = NORMAL`: in the write-ahead log, not yet
    /// fsynced), then waits at the group-commit barrier for an fdatasync of the log that started
    /// after the commit returned (see [`crate::spool::barrier`]): concurrent durable commits share
    /// that one fsync, and the single connection is not held while the disk flushes.
    pub(super) async fn execute_durable<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Sqlite, <sqlx::Sqlite as sqlx::Database>::Arguments>,
    ) -> Result<sqlx::sqlite::SqliteQueryResult, Error> {
        let r = q.execute(&self.pool).await?;
        self.sync().await?;
        Ok(r)
    }

    /// Waits until every commit made before the call is on disk (the group-commit barrier):
    /// for transactions of several statements that must be durable as a whole.
    pub(super) async fn sync(&self) -> Result<(), Error> {
        let files = self.files.clone();
        self.wal_sync
            .wait(|| async move {
                tokio::task::spawn_blocking(move || sync_wal(&files)).await.map_err(io::Error::other)?
            })
            .await
            .map_err(Error::Sync)
    }
}

#[cfg(test)]
mod tests {
    use super::super::NewTransfer;
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_durable_commits_all_succeed() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::Sync(Arc::new(e)))?;
        let journal = Journal::open(&dir.path().join("journal.db")).await?;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..20 {
            let j = journal.clone();
            tasks.spawn(async move {
                let id = format!("T{i:02}");
                let t = NewTransfer {
                    id: id.clone(),
                    channel: "invoices".into(),
                    account: "acme".into(),
                    mount: "invoices".into(),
                    name: format!("{i}.pdf"),
                    protocol: "sftp".into(),
                    remote_addr: None,
                    body_path: format!("inbound/invoices/acme/{id}"),
                };
                j.insert_receiving(&t).await?;
                j.mark_received(&id, 1, "00").await
            });
        }
        while let Some(r) = tasks.join_next().await {
            assert!(matches!(r, Ok(Ok(true))), "{r:?}");
        }
        assert!(journal.files.1.exists(), "the write-ahead log that was synced");
        assert_eq!(journal.count_by_state().await?, vec![("received".to_string(), 20)]);
        Ok(())
    }

    #[test]
    fn without_a_log_the_database_is_synced() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("journal.db");
        std::fs::write(&db, b"")?;
        sync_wal(&(db.clone(), dir.path().join("journal.db-wal")))?;
        let missing = dir.path().join("nothing");
        assert!(sync_wal(&(missing.clone(), missing)).is_err());
        Ok(())
    }
}
