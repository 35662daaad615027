//! The journal: one row per transfer in SQLite (WAL, `synchronous=NORMAL`, durable commits
//! fsynced in groups), the source of truth for what has been received and what state it is in.
//!
//! Plain SQL with positional parameters only, so the same statements can later run on PostgreSQL
//! for several nodes. Claims and state changes are single conditional `UPDATE`s (`... WHERE state = ?`),
//! never read-then-write, so two workers or nodes can never take the same transfer.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, Row};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod claim;
mod durable;
mod outbound;
mod schema;

use schema::MIGRATIONS;
mod sidecar;
mod source;
mod workflow;

pub use outbound::{JobState, NewPackage, PackageRow};
pub use source::SourceItem;
pub use workflow::{NewWait, WaitRow};

use super::barrier::Barrier;

/// Journal errors (a database that cannot be opened or written).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database reported an error.
    #[error("journal: {0}")]
    Db(#[from] sqlx::Error),
    /// The write-ahead log could not be fsynced, so a commit is not known to be durable.
    #[error("journal: cannot fsync the write-ahead log")]
    Sync(#[source] Arc<io::Error>),
}

/// A transfer's state; see the spool's module documentation for the life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Bytes are arriving; not yet acknowledged to the client.
    Receiving,
    /// Complete, fsynced and acknowledged; waiting for the pipeline.
    Received,
    /// A pipeline worker has claimed it.
    Processing,
    /// Delivered to its target.
    Delivered,
    /// Failed; the file is in an exception folder.
    Excepted,
    /// The upload never completed (client gone, gateway crashed); the body was removed.
    Aborted,
    /// An exception that ops decided to drop (file moved into `discard/`).
    Discarded,
    /// A sidecar (`<name>.meta.json`) taken by the file it belongs to; `receipt` names that
    /// file's transfer.
    Attached,
    /// Accepted by its rules and waiting for a workflow instance (an approval) to end; the
    /// workflow watcher moves it on (see `workflow_waits`).
    AwaitingWorkflow,
}

impl State {
    /// Every state, in life-cycle order.
    pub const ALL: [State; 9] = [
        State::Receiving,
        State::Received,
        State::Processing,
        State::Delivered,
        State::Excepted,
        State::Aborted,
        State::Discarded,
        State::Attached,
        State::AwaitingWorkflow,
    ];

    /// The state's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Receiving => "receiving",
            State::Received => "received",
            State::Processing => "processing",
            State::Delivered => "delivered",
            State::Excepted => "excepted",
            State::Aborted => "aborted",
            State::Discarded => "discarded",
            State::Attached => "attached",
            State::AwaitingWorkflow => "awaiting_workflow",
        }
    }
}

/// One row of the journal.
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct TransferRow {
    /// ULID.
    pub id: String,
    /// See [`State`].
    pub state: String,
    /// The channel whose rules apply.
    pub channel: String,
    /// The account that sent it.
    pub account: String,
    /// The mount it was written to (its name, without the slash).
    pub mount: String,
    /// The file name as the client sent it.
    pub name: String,
    /// Size in bytes (once received).
    pub size: Option<i64>,
    /// SHA-256 hex (once received).
    pub sha256: Option<String>,
    /// `sftp`, `ftp`, `ftps`.
    pub protocol: String,
    /// The client's address.
    pub remote_addr: Option<String>,
    /// Where the body is, relative to the spool root.
    pub body_path: String,
    /// When the first byte arrived (RFC 3339, UTC).
    pub created_at: String,
    /// When it was committed.
    pub received_at: Option<String>,
    /// Last state change.
    pub updated_at: String,
    /// 1 for a first submission, n for the n-th resubmission.
    pub attempt: i64,
    /// The first transfer of a resubmitted file.
    pub parent_id: Option<String>,
    /// Why it was aborted or excepted.
    pub reason: Option<String>,
    /// The target's receipt (JSON) once delivered.
    pub receipt: Option<String>,
    /// Not to be claimed before this time (backoff after a transient delivery failure).
    pub not_before: Option<String>,
    /// Delivery attempts made so far.
    pub delivery_attempts: i64,
    /// When a worker claimed it (`processing`).
    pub claimed_at: Option<String>,
    /// Metadata overrides given with a resubmit (`<name>.meta.json` in `retry/`), JSON.
    pub overrides: Option<String>,
}

/// What is known about a transfer when its first byte arrives.
#[derive(Debug, Clone)]
pub struct NewTransfer {
    /// ULID.
    pub id: String,
    /// Channel.
    pub channel: String,
    /// Account.
    pub account: String,
    /// Mount name.
    pub mount: String,
    /// Client's file name.
    pub name: String,
    /// Protocol name.
    pub protocol: String,
    /// Client address.
    pub remote_addr: Option<String>,
    /// Body location relative to the spool root.
    pub body_path: String,
}

/// RFC 3339 UTC timestamp with milliseconds, the journal's one time format.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Handle to the journal database.
#[derive(Clone, Debug)]
pub struct Journal {
    pool: SqlitePool,
    /// The database file and its write-ahead log (`<db>-wal`), which durable commits fsync.
    files: Arc<(PathBuf, PathBuf)>,
    /// Group commit: concurrent durable commits share one fsync of the write-ahead log.
    wal_sync: Arc<Barrier>,
}

impl Journal {
    /// Opens (creating if needed) and migrates the journal at `path`.
    ///
    /// # Errors
    /// The database cannot be opened or migrated.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives a crash of the process (the OS has the WAL); only a
            // power loss can undo the last commits. The commits a client or a file move depends on
            // use `execute_durable`, which makes that one commit (and all before it) FULL.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // One connection: SQLite has one writer at a time anyway, and with several connections the
        // losers of the write lock sleep in its busy handler (1, 2, 5 … 100 ms); measured with 16
        // uploading sessions and 4 workers (benches/small-files), that was most of the time. With one
        // connection, statements queue in the pool instead, without sleeping.
        // Kept open for good: closing it would checkpoint and remove the write-ahead log.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let files = Arc::new((path.to_path_buf(), PathBuf::from(wal)));
        let journal = Self { pool, files, wal_sync: Arc::new(Barrier::new()) };
        journal.migrate().await?;
        Ok(journal)
    }

    async fn migrate(&self) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&mut *conn).await?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PRAGMA user_version = {}", i + 1))).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Records the first byte of a transfer (`receiving`).
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_receiving(&self, t: &NewTransfer) -> Result<(), Error> {
        let now = timestamp(Utc::now());
        sqlx::query(
            "INSERT INTO transfers (id, state, channel, account, mount, name, protocol, remote_addr, body_path, created_at, updated_at)
             VALUES (?, 'receiving', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.channel)
        .bind(&t.account)
        .bind(&t.mount)
        .bind(&t.name)
        .bind(&t.protocol)
        .bind(&t.remote_addr)
        .bind(&t.body_path)
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Commits a complete upload: `receiving → received` with its size and digest.
    /// Returns false if the row was not `receiving` (already aborted by recovery).
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_received(&self, id: &str, size: u64, sha256: &str) -> Result<bool, Error> {
        let now = timestamp(Utc::now());
        let q = sqlx::query(
            "UPDATE transfers SET state = 'received', size = ?, sha256 = ?, received_at = ?, updated_at = ?
             WHERE id = ? AND state = 'receiving'",
        )
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(sha256)
        .bind(&now)
        .bind(&now)
        .bind(id);
        match self.execute_durable(q).await {
            Ok(r) => Ok(r.rows_affected() == 1),
            Err(e @ Error::Sync(_)) => {
                // Committed but not known to be on disk, and the client is about to be told that
                // the upload failed (its body is taken out): no worker may pick it up.
                let why = "the journal could not be fsynced; the upload was not acknowledged";
                let _ = self.transition(id, State::Received, State::Aborted, why, false).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Marks an unfinished upload aborted, with the reason.
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_aborted(&self, id: &str, reason: &str) -> Result<bool, Error> {
        self.transition(id, State::Receiving, State::Aborted, reason, false).await
    }

    /// `from → to` with a reason, only if the transfer is in `from` (one conditional statement).
    async fn transition(&self, id: &str, from: State, to: State, reason: &str, durable: bool) -> Result<bool, Error> {
        let q = sqlx::query("UPDATE transfers SET state = ?, reason = ?, updated_at = ? WHERE id = ? AND state = ?")
            .bind(to.as_str())
            .bind(reason)
            .bind(timestamp(Utc::now()))
            .bind(id)
            .bind(from.as_str());
        let r = if durable { self.execute_durable(q).await? } else { q.execute(&self.pool).await? };
        Ok(r.rows_affected() == 1)
    }

    /// Renames a received, not yet processed transfer (clients that upload under a temporary name).
    ///
    /// # Errors
    /// Database errors.
    pub async fn rename_received(&self, id: &str, new_name: &str) -> Result<bool, Error> {
        let r = sqlx::query("UPDATE transfers SET name = ?, updated_at = ? WHERE id = ? AND state = 'received'")
            .bind(new_name)
            .bind(timestamp(Utc::now()))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// One transfer by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn get(&self, id: &str) -> Result<Option<TransferRow>, Error> {
        Ok(sqlx::query_as("SELECT * FROM transfers WHERE id = ?").bind(id).fetch_optional(&self.pool).await?)
    }

    /// Every transfer, oldest first, read in one statement (a consistent picture: reading state
    /// by state could see a transfer twice while the pipeline moves it).
    ///
    /// # Errors
    /// Database errors.
    pub async fn all(&self) -> Result<Vec<TransferRow>, Error> {
        Ok(sqlx::query_as("SELECT * FROM transfers ORDER BY id").fetch_all(&self.pool).await?)
    }

    /// Every transfer in one state, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn in_state(&self, state: State) -> Result<Vec<TransferRow>, Error> {
        Ok(sqlx::query_as("SELECT * FROM transfers WHERE state = ? ORDER BY id")
            .bind(state.as_str())
            .fetch_all(&self.pool)
            .await?)
    }

    /// An account's transfers of a channel that are received but not yet finished (what its inbound
    /// folder lists), oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn pending_in_box(&self, account: &str, channel: &str) -> Result<Vec<TransferRow>, Error> {
        Ok(sqlx::query_as(
            "SELECT * FROM transfers WHERE account = ? AND channel = ? AND state IN ('received', 'processing') ORDER BY id",
        )
        .bind(account)
        .bind(channel)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The newest pending transfer of this name in an account's inbound box.
    ///
    /// # Errors
    /// Database errors.
    pub async fn pending_by_name(
        &self,
        account: &str,
        channel: &str,
        name: &str,
    ) -> Result<Option<TransferRow>, Error> {
        Ok(sqlx::query_as(
            "SELECT * FROM transfers WHERE account = ? AND channel = ? AND name = ? AND state IN ('received', 'processing')
             ORDER BY id DESC LIMIT 1",
        )
        .bind(account)
        .bind(channel)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records a resubmitted file, already in place at its `body_path`, as `received`: a new
    /// attempt linked to the first transfer of its lineage.
    ///
    /// # Errors
    /// Database errors.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_resubmitted(
        &self,
        t: &NewTransfer,
        size: u64,
        sha256: &str,
        attempt: i64,
        parent_id: Option<&str>,
        overrides: Option<&str>,
    ) -> Result<(), Error> {
        let now = timestamp(Utc::now());
        let q = sqlx::query(
            "INSERT INTO transfers (id, state, channel, account, mount, name, size, sha256, protocol, remote_addr, body_path,
                                    created_at, received_at, updated_at, attempt, parent_id, overrides)
             VALUES (?, 'received', ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.channel)
        .bind(&t.account)
        .bind(&t.mount)
        .bind(&t.name)
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(sha256)
        .bind(&t.protocol)
        .bind(&t.body_path)
        .bind(&now)
        .bind(&now)
        .bind(&now)
        .bind(attempt)
        .bind(parent_id)
        .bind(overrides);
        self.execute_durable(q).await?;
        Ok(())
    }

    /// The newest transfer of a channel and account with this content (optionally only of one
    /// protocol): finds the original of a resubmitted file, or a resubmit already recorded.
    ///
    /// # Errors
    /// Database errors.
    pub async fn latest_with_sha(
        &self,
        channel: &str,
        account: &str,
        sha256: &str,
        protocol: Option<&str>,
    ) -> Result<Option<TransferRow>, Error> {
        Ok(sqlx::query_as(
            "SELECT * FROM transfers WHERE channel = ? AND account = ? AND sha256 = ? AND state != 'aborted'
               AND (? IS NULL OR protocol = ?)
             ORDER BY id DESC LIMIT 1",
        )
        .bind(channel)
        .bind(account)
        .bind(sha256)
        .bind(protocol)
        .bind(protocol)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// `excepted → discarded`, with who or what decided it.
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_discarded(&self, id: &str, reason: &str) -> Result<bool, Error> {
        self.transition(id, State::Excepted, State::Discarded, reason, true).await
    }

    /// `processing → delivered`, with the target's receipt.
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_delivered(&self, id: &str, receipt: &str) -> Result<bool, Error> {
        self.finish(id, "delivered", None, Some(receipt)).await
    }

    /// `processing → excepted`, with the reason.
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_excepted(&self, id: &str, reason: &str) -> Result<bool, Error> {
        self.finish(id, "excepted", Some(reason), None).await
    }

    async fn finish(&self, id: &str, state: &str, reason: Option<&str>, receipt: Option<&str>) -> Result<bool, Error> {
        let q = sqlx::query(
            "UPDATE transfers SET state = ?, reason = ?, receipt = ?, updated_at = ?,
                    delivery_attempts = delivery_attempts + 1
             WHERE id = ? AND state = 'processing'",
        )
        .bind(state)
        .bind(reason)
        .bind(receipt)
        .bind(timestamp(Utc::now()))
        .bind(id);
        // An exception moves the file out of the inbound box right after: that needs the state
        // on disk first. A lost `delivered` is harmless (redelivery finds the earlier delivery).
        let r = if state == "excepted" { self.execute_durable(q).await? } else { q.execute(&self.pool).await? };
        Ok(r.rows_affected() == 1)
    }

    /// `processing → received` again after a transient failure, not to be claimed before `not_before`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn retry_later(&self, id: &str, not_before: DateTime<Utc>, reason: &str) -> Result<bool, Error> {
        self.requeue(id, not_before, reason, true).await
    }

    /// `processing → received`, due at `not_before`; `count_attempt` says whether a delivery
    /// attempt was spent (a failed delivery) or not (waiting for a sidecar).
    async fn requeue(
        &self,
        id: &str,
        not_before: DateTime<Utc>,
        reason: &str,
        count_attempt: bool,
    ) -> Result<bool, Error> {
        let r = sqlx::query(
            "UPDATE transfers SET state = 'received', not_before = ?, reason = ?, updated_at = ?,
                    delivery_attempts = delivery_attempts + ?
             WHERE id = ? AND state = 'processing'",
        )
        .bind(timestamp(not_before))
        .bind(reason)
        .bind(timestamp(Utc::now()))
        .bind(i64::from(count_attempt))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Start-up: transfers a crashed worker had claimed go back to `received` (delivery is
    /// idempotent, so processing them again cannot make a second copy). Returns how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn requeue_processing(&self) -> Result<u64, Error> {
        let r = sqlx::query("UPDATE transfers SET state = 'received', updated_at = ? WHERE state = 'processing'")
            .bind(timestamp(Utc::now()))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Makes every backed-off transfer due now (tests of the retry path).
    #[cfg(test)]
    pub(crate) async fn clear_backoff(&self) -> Result<(), Error> {
        sqlx::query("UPDATE transfers SET not_before = NULL").execute(&self.pool).await?;
        Ok(())
    }

    /// Number of transfers per state (for status output and tests).
    ///
    /// # Errors
    /// Database errors.
    pub async fn count_by_state(&self) -> Result<Vec<(String, i64)>, Error> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM transfers GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get::<String, _>("state"), r.get::<i64, _>("n"))).collect())
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
