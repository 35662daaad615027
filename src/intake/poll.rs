//! Source polls: a connector (a Dropbox folder, Confluence pages chosen by CQL) feeding a channel.
//! Each poll asks its [`Source`] what changed since its cursor, takes every new or changed item
//! into the spool as a transfer of its channel (the same journal states, rules, exceptions and
//! audit as an upload) and only then advances the cursor. A source that fails delays the next
//! poll with backoff; the cursor stays where it was.
//!
//! Exactly once: an item revision is recorded against its transfer before its body is fetched
//! ([`crate::spool::journal::Journal::record_source_item`]); a later poll skips it unless that
//! transfer never completed. An item that changed while it was fetched is dropped and the cursor
//! kept, so the next poll takes the new revision whole.
//!
//! Write-back: once an item's transfer is delivered (or excepted), the source is told (a
//! Dropbox file is moved, a Confluence page labelled and given the receipt), once (recorded in
//! the journal).

pub mod confluence;
pub mod dropbox;

use crate::audit::Event;
use crate::config::polls::PollConfig;
use crate::spool::journal::SourceItem;
use crate::spool::{Origin, Spool, Upload};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest pause after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Polled {
    /// Items taken into the spool.
    pub taken: usize,
    /// Items skipped (taken before, filtered out).
    pub skipped: usize,
    /// Items that changed while fetched (taken next time).
    pub changed: usize,
}

/// One item revision a source offers.
#[derive(Debug, Clone, Default)]
pub struct Item {
    /// The item's id at the source (stable across revisions).
    pub id: String,
    /// Its revision.
    pub rev: String,
    /// The file name in the spool (made safe by the poller).
    pub name: String,
    /// How the source names it (logs, audit).
    pub path: String,
    /// `transfer.source.*` fields.
    pub fields: BTreeMap<String, String>,
    /// The body, when the source produced it while preparing the item.
    pub body: Option<Vec<u8>>,
}

/// What a source listed since a cursor.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// New and changed items (revisions), in the order they are to be taken.
    pub items: Vec<Item>,
    /// Items the source filtered out.
    pub filtered: usize,
    /// The cursor after them (the watermark), when there is one.
    pub cursor: Option<String>,
}

/// A connector a poll reads from.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// `dropbox`, `confluence`: the transfers' protocol.
    fn system(&self) -> &'static str;

    /// What changed since `cursor` (everything without one).
    async fn list(&self, cursor: Option<&str>) -> Result<Listing, String>;

    /// Completes an item before it is taken (fields, body); false when it moved on meanwhile.
    async fn prepare(&self, _item: &mut Item) -> Result<bool, String> {
        Ok(true)
    }

    /// Writes the item's body into `upload`; false when it changed while it was fetched.
    async fn fetch(&self, item: &Item, upload: &Upload) -> Result<bool, String>;

    /// Tells the source an item's outcome (`delivered` with the target's receipt, or
    /// `excepted`); returns what was done (journaled, never done again); an error is retried
    /// at the next poll.
    async fn write_back(&self, item: &SourceItem, state: &str, receipt: Option<&str>) -> Result<String, String>;
}

/// A file name fit for the spool: control characters and slashes become `_`.
pub fn spool_name(name: &str) -> String {
    let cleaned: String = name.chars().map(|c| if c.is_control() || c == '/' || c == '\\' { '_' } else { c }).collect();
    let trimmed = cleaned.trim_start_matches('.').trim();
    if trimmed.is_empty() { "unnamed".to_string() } else { trimmed.to_string() }
}

/// One poll against one source.
pub struct Poller {
    spool: Arc<Spool>,
    poll: PollConfig,
    source: Arc<dyn Source>,
}

impl Poller {
    /// A poller for `poll`, reading `source`.
    pub fn new(spool: Arc<Spool>, poll: PollConfig, source: Arc<dyn Source>) -> Self {
        Self { spool, poll, source }
    }

    /// Lists the changes and takes them; advances the cursor when all are in the spool.
    ///
    /// # Errors
    /// The source or the spool failed; nothing after the last taken item is lost.
    pub async fn poll_once(&self) -> Result<Polled, String> {
        let journal = self.spool.journal();
        let name = &self.poll.name;
        let cursor = journal.source_cursor(name).await.map_err(|e| e.to_string())?;
        let listing = self.source.list(cursor.as_deref()).await?;
        let mut done = Polled { skipped: listing.filtered, ..Polled::default() };
        for mut item in listing.items {
            if journal.source_item_taken(name, &item.id, &item.rev).await.map_err(|e| e.to_string())? {
                done.skipped += 1;
                continue;
            }
            let taken = self.source.prepare(&mut item).await? && self.take(&item).await?;
            if taken {
                done.taken += 1;
            } else {
                tracing::info!(poll = %name, item = %item.path, "the item changed while it was fetched; the next poll takes it");
                done.changed += 1;
            }
        }
        // The cursor moves only when everything before it is in the spool.
        let cursor = listing.cursor.filter(|_| done.changed == 0);
        let line = format!("taken {}, skipped {}, changed while fetched {}", done.taken, done.skipped, done.changed);
        journal.set_source_cursor(name, cursor.as_deref(), &line).await.map_err(|e| e.to_string())?;
        Ok(done)
    }

    /// Takes one item; false when it changed while it was fetched.
    async fn take(&self, item: &Item) -> Result<bool, String> {
        let system = self.source.system();
        let origin = Origin { account: self.poll.account.clone(), protocol: system, remote_addr: None };
        let upload = self
            .spool
            .begin_transfer(&self.poll.channel, system, &spool_name(&item.name), &origin)
            .await
            .map_err(|e| format!("{}: {e}", item.path))?;
        let id = upload.id().to_string();
        let span = tracing::info_span!("poll", poll = %self.poll.name, transfer = %id, account = %self.poll.account, channel = %self.poll.channel);
        tracing::Instrument::instrument(self.take_into(item, upload, id, system), span).await
    }

    /// The rest of [`Self::take`], inside the transfer's span.
    async fn take_into(
        &self,
        item: &Item,
        upload: crate::spool::Upload,
        id: String,
        system: &'static str,
    ) -> Result<bool, String> {
        let mut fields = item.fields.clone();
        fields.insert("poll".into(), self.poll.name.clone());
        fields.insert("system".into(), system.to_string());
        let journal = self.spool.journal();
        journal
            .record_source_item(&self.poll.name, &item.id, &item.rev, &id, &fields)
            .await
            .map_err(|e| e.to_string())?;
        if !self.source.fetch(item, &upload).await? {
            return Ok(false); // dropping the upload aborts the transfer
        }
        let committed = upload.commit().await.map_err(|e| format!("{}: {e}", item.path))?;
        self.spool.audit().record(
            Event::new("upload_completed")
                .account(&self.poll.account)
                .protocol(system)
                .path(&item.path)
                .size(committed.written.size)
                .sha256(&committed.written.sha256)
                .transfer(&id)
                .reason(&format!("poll {} took {} rev {}", self.poll.name, item.id, item.rev)),
        );
        self.spool.notify_received();
        Ok(true)
    }

    /// Tells the source the outcome of delivered and excepted items, once each.
    pub async fn write_back(&self) {
        let journal = self.spool.journal();
        let due = match journal.write_backs_due(&self.poll.name).await {
            Ok(d) => d,
            Err(e) => return tracing::warn!(poll = %self.poll.name, error = %e, "cannot read due write-backs"),
        };
        for (item, state) in due {
            let receipt = match journal.delivered_receipt(&item.transfer_id).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(poll = %self.poll.name, error = %e, "cannot read the receipt; retried next poll");
                    continue;
                }
            };
            let what = match self.source.write_back(&item, &state, receipt.as_deref()).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(poll = %self.poll.name, item = %item.item, error = %e, "write-back failed; retried next poll");
                    continue;
                }
            };
            if journal.mark_written_back(&item.poll, &item.item, &item.rev, &what).await.is_ok() {
                let path = item.field_map().get("path").cloned().unwrap_or_else(|| item.item.clone());
                self.spool.audit().record(
                    Event::new("source_written_back")
                        .account(&self.poll.account)
                        .path(&path)
                        .transfer(&item.transfer_id)
                        .reason(&what),
                );
            }
        }
    }

    /// Polls until `stop`, backing off after failures.
    pub async fn run(self, stop: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let wait = match self.poll_once().await {
                Ok(p) => {
                    failures = 0;
                    if p.taken > 0 {
                        tracing::info!(poll = %self.poll.name, taken = p.taken, "poll took new items");
                    }
                    self.poll.every
                }
                Err(e) => {
                    failures += 1;
                    let wait = (self.poll.every * 2u32.saturating_pow(failures.min(10))).min(MAX_BACKOFF);
                    tracing::warn!(poll = %self.poll.name, error = %e, retry_in_s = wait.as_secs(), "poll failed");
                    let _ =
                        self.spool.journal().set_source_cursor(&self.poll.name, None, &format!("failed: {e}")).await;
                    wait
                }
            };
            self.write_back().await;
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_are_made_safe_for_the_spool() {
        assert_eq!(spool_name("Contract\u{7}.pdf"), "Contract_.pdf");
        assert_eq!(spool_name("..\\..\\x.pdf"), "_.._x.pdf");
        assert_eq!(spool_name(".hidden"), "hidden");
        assert_eq!(spool_name("..."), "unnamed");
    }
}
