//! Journal statements for workflow gates: a transfer accepted by rules that ask for a workflow
//! (an approval) waits in `awaiting_workflow` with a `workflow_waits` row naming its instance.
//! The watcher checks open rows when they are due and records how each ended; the transfer then
//! goes back to `received` (approved: the pipeline delivers it) or to its exception.
//!
//! The row is written durably right after the instance is started, before the transfer leaves
//! `processing`; a crash in between re-processes the transfer, and the engine's start is
//! idempotent by business key, so no second instance is made.

use super::{Error, Journal, timestamp};
use chrono::{DateTime, Utc};

/// A wait to record.
#[derive(Debug, Clone)]
pub struct NewWait {
    /// The waiting transfer.
    pub transfer_id: String,
    /// The workflow connection's name.
    pub engine: String,
    /// The instance.
    pub instance_id: String,
    /// Its process definition.
    pub definition: String,
    /// Its business key.
    pub business_key: String,
    /// How its end is read (JSON of the rule's settings at start).
    pub settings: String,
    /// When it times out.
    pub deadline: DateTime<Utc>,
    /// First check.
    pub next_check: DateTime<Utc>,
}

/// One wait as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WaitRow {
    /// The waiting transfer.
    pub transfer_id: String,
    /// The workflow connection's name.
    pub engine: String,
    /// The instance.
    pub instance_id: String,
    /// Its process definition.
    pub definition: String,
    /// Its business key.
    pub business_key: String,
    /// How its end is read (JSON).
    pub settings: String,
    /// When it was started (RFC 3339).
    pub started_at: String,
    /// When it times out.
    pub deadline: String,
    /// When the watcher looks next.
    pub next_check: String,
    /// Failed checks in a row (backoff).
    pub failures: i64,
    /// `open`, `approved`, `rejected`, `ended` (another outcome) or `timed_out`.
    pub state: String,
    /// The outcome variable's value, once ended.
    pub outcome: Option<String>,
    /// The reviewer's comment, once ended.
    pub comment: Option<String>,
    /// The instance's variables at its end (JSON).
    pub variables: Option<String>,
    /// The last failed check's error.
    pub last_error: Option<String>,
    /// When it ended.
    pub ended_at: Option<String>,
}

impl Journal {
    /// Records a started instance for a transfer (replacing an earlier open one of it).
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_wait(&self, w: &NewWait) -> Result<(), Error> {
        let q = sqlx::query(
            "INSERT INTO workflow_waits (transfer_id, engine, instance_id, definition, business_key, settings,
                 started_at, deadline, next_check, state)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')
             ON CONFLICT (transfer_id) DO UPDATE SET instance_id = excluded.instance_id,
                 engine = excluded.engine, definition = excluded.definition,
                 business_key = excluded.business_key, settings = excluded.settings,
                 deadline = excluded.deadline, next_check = excluded.next_check, state = 'open'",
        )
        .bind(&w.transfer_id)
        .bind(&w.engine)
        .bind(&w.instance_id)
        .bind(&w.definition)
        .bind(&w.business_key)
        .bind(&w.settings)
        .bind(timestamp(Utc::now()))
        .bind(timestamp(w.deadline))
        .bind(timestamp(w.next_check));
        self.execute_durable(q).await?;
        Ok(())
    }

    /// The wait of a transfer, if it has one.
    ///
    /// # Errors
    /// Database errors.
    pub async fn wait_of(&self, transfer_id: &str) -> Result<Option<WaitRow>, Error> {
        Ok(sqlx::query_as::<_, WaitRow>("SELECT * FROM workflow_waits WHERE transfer_id = ?")
            .bind(transfer_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Open waits whose next check is due at `now`, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn waits_due(&self, now: DateTime<Utc>) -> Result<Vec<WaitRow>, Error> {
        Ok(sqlx::query_as::<_, WaitRow>(
            "SELECT * FROM workflow_waits WHERE state = 'open' AND next_check <= ? ORDER BY next_check LIMIT 100",
        )
        .bind(timestamp(now))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The earliest next check of an open wait (the watcher sleeps until then).
    ///
    /// # Errors
    /// Database errors.
    pub async fn next_wait_check(&self) -> Result<Option<String>, Error> {
        Ok(sqlx::query_scalar("SELECT MIN(next_check) FROM workflow_waits WHERE state = 'open'")
            .fetch_one(&self.pool)
            .await?)
    }

    /// A check found the instance still open (`error` None) or could not read it.
    ///
    /// # Errors
    /// Database errors.
    pub async fn wait_checked(&self, transfer_id: &str, next: DateTime<Utc>, error: Option<&str>) -> Result<(), Error> {
        sqlx::query(
            "UPDATE workflow_waits SET next_check = ?,
                 failures = CASE WHEN ? IS NULL THEN 0 ELSE failures + 1 END, last_error = ?
             WHERE transfer_id = ? AND state = 'open'",
        )
        .bind(timestamp(next))
        .bind(error)
        .bind(error)
        .bind(transfer_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records how the wait ended; false when it was no longer open.
    ///
    /// # Errors
    /// Database errors.
    pub async fn end_wait(
        &self,
        transfer_id: &str,
        state: &str,
        outcome: Option<&str>,
        comment: Option<&str>,
        variables: Option<&str>,
    ) -> Result<bool, Error> {
        let q = sqlx::query(
            "UPDATE workflow_waits SET state = ?, outcome = ?, comment = ?, variables = ?, ended_at = ?
             WHERE transfer_id = ? AND state = 'open'",
        )
        .bind(state)
        .bind(outcome)
        .bind(comment)
        .bind(variables)
        .bind(timestamp(Utc::now()))
        .bind(transfer_id);
        Ok(self.execute_durable(q).await?.rows_affected() == 1)
    }

    /// `processing → awaiting_workflow`, after the wait is recorded.
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_awaiting_workflow(&self, id: &str, reason: &str) -> Result<bool, Error> {
        self.move_state(id, "processing", "awaiting_workflow", reason).await
    }

    /// `awaiting_workflow → received` (approved: to be delivered) or `→ processing` (to be
    /// excepted by the watcher).
    ///
    /// # Errors
    /// Database errors.
    pub async fn release_awaiting(&self, id: &str, to: &str, reason: &str) -> Result<bool, Error> {
        self.move_state(id, "awaiting_workflow", to, reason).await
    }

    async fn move_state(&self, id: &str, from: &str, to: &str, reason: &str) -> Result<bool, Error> {
        let q = sqlx::query(
            "UPDATE transfers SET state = ?, reason = ?, not_before = NULL, updated_at = ? WHERE id = ? AND state = ?",
        )
        .bind(to)
        .bind(reason)
        .bind(timestamp(Utc::now()))
        .bind(id)
        .bind(from);
        Ok(self.execute_durable(q).await?.rows_affected() == 1)
    }
}
