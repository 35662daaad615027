//! Journal statements for source polls (connector-fed channels): a poll's cursor, and a row per
//! source item revision that became a transfer. The row is written right after the transfer is
//! begun and before its body is fetched, so a crash never ingests an item twice: the next poll
//! finds the row, and takes the item again only if that transfer never completed (`aborted`).

use super::{Error, Journal, timestamp};
use chrono::Utc;
use std::collections::BTreeMap;

/// One source item revision and the transfer it became.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceItem {
    /// The poll.
    pub poll: String,
    /// The item's id at the source.
    pub item: String,
    /// Its revision.
    pub rev: String,
    /// The transfer.
    pub transfer_id: String,
    /// `transfer.source.*` fields (JSON object of strings).
    pub fields: String,
    /// When it was taken.
    pub created_at: String,
    /// The write-back done after its outcome (`delivered: moved to …`, `excepted: none`), once
    /// done; an `excepted: …` one is followed by the delivered one when a resubmission delivers.
    pub written_back: Option<String>,
}

impl SourceItem {
    /// The fields as a map.
    pub fn field_map(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.fields).unwrap_or_default()
    }
}

impl Journal {
    /// The poll's cursor, if it has one.
    ///
    /// # Errors
    /// Database errors.
    pub async fn source_cursor(&self, poll: &str) -> Result<Option<String>, Error> {
        Ok(sqlx::query_scalar::<_, Option<String>>("SELECT cursor FROM source_state WHERE poll = ?")
            .bind(poll)
            .fetch_optional(&self.pool)
            .await?
            .flatten())
    }

    /// Records the poll's new cursor (after every item it covers is in the spool) and result.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_source_cursor(&self, poll: &str, cursor: Option<&str>, result: &str) -> Result<(), Error> {
        let q = sqlx::query(
            "INSERT INTO source_state (poll, cursor, polled_at, last_result) VALUES (?, ?, ?, ?)
             ON CONFLICT (poll) DO UPDATE SET cursor = COALESCE(excluded.cursor, cursor),
                 polled_at = excluded.polled_at, last_result = excluded.last_result",
        )
        .bind(poll)
        .bind(cursor)
        .bind(timestamp(Utc::now()))
        .bind(result);
        self.execute_durable(q).await?;
        Ok(())
    }

    /// Whether this revision was already taken by a transfer that still counts (anything but
    /// `aborted`, `receiving`: those never reached the spool and are taken again).
    ///
    /// # Errors
    /// Database errors.
    pub async fn source_item_taken(&self, poll: &str, item: &str, rev: &str) -> Result<bool, Error> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM source_items s JOIN transfers t ON t.id = s.transfer_id
             WHERE s.poll = ? AND s.item = ? AND s.rev = ? AND t.state NOT IN ('aborted', 'receiving')",
        )
        .bind(poll)
        .bind(item)
        .bind(rev)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Records that this revision is being taken by `transfer_id` (replacing an earlier attempt
    /// that never completed).
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_source_item(
        &self,
        poll: &str,
        item: &str,
        rev: &str,
        transfer_id: &str,
        fields: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let q = sqlx::query(
            "INSERT INTO source_items (poll, item, rev, transfer_id, fields, created_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (poll, item, rev) DO UPDATE SET transfer_id = excluded.transfer_id, fields = excluded.fields",
        )
        .bind(poll)
        .bind(item)
        .bind(rev)
        .bind(transfer_id)
        .bind(serde_json::to_string(fields).unwrap_or_else(|_| "{}".into()))
        .bind(timestamp(Utc::now()));
        self.execute_durable(q).await?;
        Ok(())
    }

    /// The source item a transfer (or the first transfer of a resubmitted one) came from.
    ///
    /// # Errors
    /// Database errors.
    pub async fn source_of(&self, transfer_id: &str) -> Result<Option<SourceItem>, Error> {
        Ok(sqlx::query_as("SELECT * FROM source_items WHERE transfer_id = ? LIMIT 1")
            .bind(transfer_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Items of a poll whose transfer (or a resubmission of it) reached `delivered` or
    /// `excepted` and whose write-back is not done: `(item, state of the latest transfer)`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn write_backs_due(&self, poll: &str) -> Result<Vec<(SourceItem, String)>, Error> {
        // Not written back yet, or written back as excepted (a resubmission may deliver it since).
        let rows: Vec<SourceItem> = sqlx::query_as(
            "SELECT * FROM source_items WHERE poll = ? AND (written_back IS NULL OR written_back LIKE 'excepted:%') \
             ORDER BY created_at",
        )
        .bind(poll)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let state: Option<String> = sqlx::query_scalar(
                "SELECT state FROM transfers WHERE id = ? OR parent_id = ? ORDER BY id DESC LIMIT 1",
            )
            .bind(&r.transfer_id)
            .bind(&r.transfer_id)
            .fetch_optional(&self.pool)
            .await?;
            let due = matches!(
                (&r.written_back, state.as_deref()),
                (None, Some("delivered" | "excepted")) | (Some(_), Some("delivered"))
            );
            if let (true, Some(s)) = (due, state) {
                out.push((r, s));
            }
        }
        Ok(out)
    }

    /// The receipt of the delivered transfer an item became (or of a delivered resubmission).
    ///
    /// # Errors
    /// Database errors.
    pub async fn delivered_receipt(&self, transfer_id: &str) -> Result<Option<String>, Error> {
        Ok(sqlx::query_scalar::<_, Option<String>>(
            "SELECT receipt FROM transfers WHERE (id = ? OR parent_id = ?) AND state = 'delivered' ORDER BY id DESC LIMIT 1",
        )
        .bind(transfer_id)
        .bind(transfer_id)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    /// The reason of the latest exception of a transfer or its resubmissions (what an
    /// `excepted` write-back tells the source, e.g. a reviewer's comment).
    ///
    /// # Errors
    /// Database errors.
    pub async fn excepted_reason(&self, transfer_id: &str) -> Result<Option<String>, Error> {
        Ok(sqlx::query_scalar::<_, Option<String>>(
            "SELECT reason FROM transfers WHERE (id = ? OR parent_id = ?) AND state = 'excepted' ORDER BY id DESC LIMIT 1",
        )
        .bind(transfer_id)
        .bind(transfer_id)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    /// Marks a write-back done (`what` says which).
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_written_back(&self, poll: &str, item: &str, rev: &str, what: &str) -> Result<(), Error> {
        let q = sqlx::query("UPDATE source_items SET written_back = ? WHERE poll = ? AND item = ? AND rev = ?")
            .bind(what)
            .bind(poll)
            .bind(item)
            .bind(rev);
        self.execute_durable(q).await?;
        Ok(())
    }
}
