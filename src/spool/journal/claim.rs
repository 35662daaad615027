//! Claiming work for the pipeline: the oldest due `received` transfer moves to `processing` in
//! one statement, so two workers (or nodes) never take the same one; and transfers of one name
//! (same account and channel) are taken one at a time, oldest first, so a corrected file sent
//! right after the first can never be delivered before it (and be overwritten or versioned
//! under it) however many workers run.

use super::{Error, Journal, TransferRow, timestamp};
use chrono::Utc;

impl Journal {
    /// Claims the oldest due `received` transfer whose name has no older unfinished transfer
    /// (one `processing`, or an older `received` still waiting for its retry). Both checks are
    /// one lookup each in `transfers_by_box` (account, channel, state, name).
    ///
    /// # Errors
    /// Database errors.
    pub async fn claim_next(&self) -> Result<Option<TransferRow>, Error> {
        let now = timestamp(Utc::now());
        Ok(sqlx::query_as(
            "UPDATE transfers SET state = 'processing', claimed_at = ?, updated_at = ?
             WHERE id = (SELECT t.id FROM transfers t
                         WHERE t.state = 'received' AND (t.not_before IS NULL OR t.not_before <= ?)
                           AND NOT EXISTS (SELECT 1 FROM transfers o
                                           WHERE o.account = t.account AND o.channel = t.channel
                                             AND o.state = 'processing' AND o.name = t.name)
                           AND NOT EXISTS (SELECT 1 FROM transfers o
                                           WHERE o.account = t.account AND o.channel = t.channel
                                             AND o.state = 'received' AND o.name = t.name AND o.id < t.id)
                         ORDER BY t.id LIMIT 1)
               AND state = 'received'
             RETURNING *",
        )
        .bind(&now)
        .bind(&now)
        .bind(&now)
        .fetch_optional(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::NewTransfer;
    use super::*;

    async fn received(j: &Journal, id: &str, name: &str) -> Result<(), Error> {
        let t = NewTransfer {
            id: id.into(),
            channel: "invoices".into(),
            account: "acme".into(),
            mount: "invoices".into(),
            name: name.into(),
            protocol: "sftp".into(),
            remote_addr: None,
            body_path: format!("inbound/invoices/acme/{id}"),
        };
        j.insert_receiving(&t).await?;
        j.mark_received(id, 1, "00").await?;
        Ok(())
    }

    #[tokio::test]
    async fn transfers_of_one_name_are_claimed_one_at_a_time_oldest_first() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::Sync(std::sync::Arc::new(e)))?;
        let j = Journal::open(&dir.path().join("journal.db")).await?;
        received(&j, "T1", "INV-1.pdf").await?;
        received(&j, "T2", "INV-1.pdf").await?;
        received(&j, "T3", "INV-2.pdf").await?;
        let first = j.claim_next().await?.map(|r| r.id);
        assert_eq!(first.as_deref(), Some("T1"));
        // T2 waits for T1 (same name); T3 does not
        assert_eq!(j.claim_next().await?.map(|r| r.id).as_deref(), Some("T3"));
        assert!(j.claim_next().await?.is_none(), "T2 waits while T1 is in flight");
        // T1 fails transiently: T2 still waits, now for T1's retry
        j.retry_later("T1", Utc::now() + chrono::Duration::hours(1), "target down").await?;
        assert!(j.claim_next().await?.is_none(), "a newer file never overtakes an older one's retry");
        sqlx::query("UPDATE transfers SET not_before = ? WHERE id = 'T1'")
            .bind(timestamp(Utc::now() - chrono::Duration::seconds(1)))
            .execute(&j.pool)
            .await?;
        assert_eq!(j.claim_next().await?.map(|r| r.id).as_deref(), Some("T1"));
        j.mark_delivered("T1", "{}").await?;
        assert_eq!(j.claim_next().await?.map(|r| r.id).as_deref(), Some("T2"));
        Ok(())
    }
}
