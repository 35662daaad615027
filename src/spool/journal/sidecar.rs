//! Journal statements for sidecars (`<name>.meta.json` uploaded beside a file): a sidecar is its
//! own transfer until the file it belongs to claims it (`received → attached`, with the file's
//! transfer id in `receipt`), and a file waiting for its sidecar is put back without counting a
//! delivery attempt.

use super::{Error, Journal, State, TransferRow, timestamp};
use chrono::{DateTime, Utc};

/// What an attached sidecar's `receipt` holds: the transfer id of the file that used it.
fn attached_receipt(owner_id: &str) -> String {
    serde_json::json!({ "sidecar_of": owner_id }).to_string()
}

impl Journal {
    /// `received → attached`: the file `owner_id` takes this sidecar transfer. False if the
    /// sidecar is not `received` (another worker holds it right now, or it is gone).
    ///
    /// # Errors
    /// Database errors.
    pub async fn attach_sidecar(&self, sidecar_id: &str, owner_id: &str) -> Result<bool, Error> {
        let q = sqlx::query(
            "UPDATE transfers SET state = ?, receipt = ?, not_before = NULL, updated_at = ? WHERE id = ? AND state = 'received'",
        )
        .bind(State::Attached.as_str())
        .bind(attached_receipt(owner_id))
        .bind(timestamp(Utc::now()))
        .bind(sidecar_id);
        // The sidecar leaves the inbound listing and its body is read by the file's delivery.
        Ok(self.execute_durable(q).await?.rows_affected() == 1)
    }

    /// The sidecar a file attached on an earlier attempt (its transfer retries the delivery).
    ///
    /// # Errors
    /// Database errors.
    pub async fn attached_sidecar(&self, owner_id: &str) -> Result<Option<TransferRow>, Error> {
        Ok(sqlx::query_as("SELECT * FROM transfers WHERE state = ? AND receipt = ? ORDER BY id DESC LIMIT 1")
            .bind(State::Attached.as_str())
            .bind(attached_receipt(owner_id))
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The sidecar for the file `owner_id`: the one it attached on an earlier attempt (state
    /// `attached`), else the newest pending transfer named `name` in the file's box. One
    /// statement for what [`Journal::attached_sidecar`] and [`Journal::pending_by_name`] find.
    ///
    /// # Errors
    /// Database errors.
    pub async fn sidecar_for(
        &self,
        owner_id: &str,
        account: &str,
        channel: &str,
        name: &str,
    ) -> Result<Option<TransferRow>, Error> {
        Ok(sqlx::query_as(
            "SELECT * FROM transfers
             WHERE (state = ? AND receipt = ?)
                OR (account = ? AND channel = ? AND name = ? AND state IN ('received', 'processing'))
             ORDER BY state = ? DESC, id DESC LIMIT 1",
        )
        .bind(State::Attached.as_str())
        .bind(attached_receipt(owner_id))
        .bind(account)
        .bind(channel)
        .bind(name)
        .bind(State::Attached.as_str())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// `processing → received`, not before `not_before`, without counting a delivery attempt: a
    /// file waiting for its sidecar, or a sidecar waiting for its file.
    ///
    /// # Errors
    /// Database errors.
    pub async fn defer(&self, id: &str, not_before: DateTime<Utc>, reason: &str) -> Result<bool, Error> {
        self.requeue(id, not_before, reason, false).await
    }

    /// Makes a deferred `received` transfer due now (its sidecar has arrived).
    ///
    /// # Errors
    /// Database errors.
    pub async fn wake(&self, id: &str) -> Result<bool, Error> {
        let r = sqlx::query(
            "UPDATE transfers SET not_before = NULL, updated_at = ? WHERE id = ? AND state = 'received' AND not_before IS NOT NULL",
        )
        .bind(timestamp(Utc::now()))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
