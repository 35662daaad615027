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

pub mod canto;
pub mod confluence;
mod confluence_zip;
pub mod contentstack;
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

/// Fetches of one item revision that came back different from its listing before the item is
/// skipped as refused: a file rewritten without pause (or a source that lists a size or hash its
/// download never matches) must not hold the cursor, and re-download, forever.
const MAX_CHANGED_FETCHES: u32 = 5;

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Polled {
    /// Items taken into the spool.
    pub taken: usize,
    /// Items skipped (taken before, filtered out).
    pub skipped: usize,
    /// Items that changed while fetched (taken next time).
    pub changed: usize,
    /// Items the source refused for good (skipped, audited).
    pub refused: usize,
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

/// Why one item could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    /// The source or the spool failed: the poll stops and retries later, keeping its cursor.
    #[error("{0}")]
    Transient(String),
    /// The source refuses this item for good (restricted content, not a file, too large): it
    /// is skipped with an audited reason, so one bad item never holds up the ones after it.
    #[error("{0}")]
    Refused(String),
}

/// A connector a poll reads from.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// `dropbox`, `confluence`: the transfers' protocol.
    fn system(&self) -> &'static str;

    /// What changed since `cursor` (everything without one).
    async fn list(&self, cursor: Option<&str>) -> Result<Listing, String>;

    /// Completes an item before it is taken (fields, body); false when it moved on meanwhile.
    async fn prepare(&self, _item: &mut Item) -> Result<bool, ItemError> {
        Ok(true)
    }

    /// Items that travel after `item` (a Confluence page's attachments), taken, deduplicated
    /// and refused like listed ones. Asked for every listed item (taken now or before) once per
    /// process until all its children are in, since a crash may have come in between.
    async fn children(&self, _item: &Item) -> Result<Vec<Item>, ItemError> {
        Ok(Vec::new())
    }

    /// Writes the item's body into `upload`; false when it changed while it was fetched.
    async fn fetch(&self, item: &Item, upload: &Upload) -> Result<bool, ItemError>;

    /// Tells the source an item's outcome: `delivered` with the target's receipt (JSON), or
    /// `excepted` with the exception's reason; returns what was done (journaled, never done
    /// again); an error is retried at the next poll.
    async fn write_back(&self, item: &SourceItem, state: &str, detail: Option<&str>) -> Result<String, String>;
}

/// A file name fit for the spool: Unicode NFC (a name typed on a Mac arrives decomposed, and
/// rules and targets must see one spelling of `Räkning`); control characters, bidirectional
/// overrides (which make `invoice\u{202e}fdp.exe` display as `invoiceexe.pdf`) and slashes
/// become `_`; no leading dots.
pub fn spool_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let unsafe_char = |c: char| c.is_control() || c == '/' || c == '\\' || crate::vfs::path::is_bidi_control(c);
    let cleaned: String = name.nfc().map(|c| if unsafe_char(c) { '_' } else { c }).collect();
    let trimmed = cleaned.trim_start_matches('.').trim();
    if trimmed.is_empty() { "unnamed".to_string() } else { trimmed.to_string() }
}

/// One poll against one source.
pub struct Poller {
    spool: Arc<Spool>,
    poll: PollConfig,
    source: Arc<dyn Source>,
    /// (item id, rev) → fetches that did not match the listing, since this process started.
    unsettled: std::sync::Mutex<std::collections::HashMap<(String, String), u32>>,
    /// Listed items (id, rev) whose children are all in the spool, since this process started.
    expanded: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    /// Items of the last poll in the spool whose children are not all in yet: their write-back
    /// waits (a page labelled as filed may drop out of its query before its attachments came).
    held: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
}

impl Poller {
    /// A poller for `poll`, reading `source`.
    pub fn new(spool: Arc<Spool>, poll: PollConfig, source: Arc<dyn Source>) -> Self {
        Self {
            spool,
            poll,
            source,
            unsettled: std::sync::Mutex::default(),
            expanded: std::sync::Mutex::default(),
            held: std::sync::Mutex::default(),
        }
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
        let listed: std::collections::HashSet<(String, String)> =
            listing.items.iter().map(|i| (i.id.clone(), i.rev.clone())).collect();
        let mut held = std::collections::HashSet::new();
        for item in listing.items {
            let key = (item.id.clone(), item.rev.clone());
            let Some(item) = self.offer(item, &mut done).await? else { continue };
            if self.lock_expanded().contains(&key) {
                continue;
            }
            held.insert(key.clone());
            *self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = held.clone();
            let changed = done.changed;
            let children = match self.source.children(&item).await {
                Ok(c) => c,
                Err(ItemError::Transient(e)) => return Err(e),
                Err(ItemError::Refused(why)) => {
                    self.audit_refusal("source_children_refused", &item, &why);
                    Vec::new()
                }
            };
            for child in children {
                self.offer(child, &mut done).await?;
            }
            if done.changed == changed {
                self.lock_expanded().insert(key.clone());
                held.remove(&key);
            }
        }
        self.lock_expanded().retain(|k| listed.contains(k));
        *self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = held;
        // The cursor moves only when everything before it is in the spool.
        let cursor = listing.cursor.filter(|_| done.changed == 0);
        let line = format!(
            "taken {}, skipped {}, changed while fetched {}, refused by the source {}",
            done.taken, done.skipped, done.changed, done.refused
        );
        journal.set_source_cursor(name, cursor.as_deref(), &line).await.map_err(|e| e.to_string())?;
        Ok(done)
    }

    fn lock_expanded(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<(String, String)>> {
        self.expanded.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one item unless it was taken before; the item back when it is in the spool (now
    /// or earlier), `None` when it changed while fetched or the source refused it.
    ///
    /// # Errors
    /// The source or the spool failed: the poll stops, keeping its cursor.
    async fn offer(&self, mut item: Item, done: &mut Polled) -> Result<Option<Item>, String> {
        let journal = self.spool.journal();
        let name = &self.poll.name;
        if journal.source_item_taken(name, &item.id, &item.rev).await.map_err(|e| e.to_string())? {
            done.skipped += 1;
            return Ok(Some(item));
        }
        let taken = match self.source.prepare(&mut item).await {
            Ok(true) => self.take(&item).await,
            other => other,
        };
        let taken = match taken {
            Ok(false) => self.changed_again(&item),
            other => other,
        };
        match taken {
            Ok(true) => {
                done.taken += 1;
                return Ok(Some(item));
            }
            Ok(false) => {
                tracing::info!(poll = %name, item = %item.path, "the item changed while it was fetched; the next poll takes it");
                done.changed += 1;
            }
            Err(ItemError::Refused(why)) => self.refused(&item, &why, done),
            Err(ItemError::Transient(e)) => return Err(e),
        }
        Ok(None)
    }

    /// Skips an item the source refuses for good, with an audited reason.
    fn refused(&self, item: &Item, why: &str, done: &mut Polled) {
        self.audit_refusal("source_item_refused", item, why);
        done.refused += 1;
    }

    /// Audits (and logs) a refusal by the source: `source_item_refused` for an item,
    /// `source_children_refused` for the listing of an item's children (the item itself is in).
    fn audit_refusal(&self, event: &str, item: &Item, why: &str) {
        let name = &self.poll.name;
        tracing::warn!(poll = %name, item = %item.path, reason = %why, event, "the source refuses; skipped");
        self.spool.audit().record(
            Event::new(event)
                .account(&self.poll.account)
                .protocol(self.source.system())
                .path(&item.path)
                .reason(&format!("poll {name}: {} rev {}: {why}", item.id, item.rev)),
        );
    }

    /// Counts a fetch that did not match the listing: `Ok(false)` (try at the next poll) until
    /// the item has done so [`MAX_CHANGED_FETCHES`] times, then refused.
    fn changed_again(&self, item: &Item) -> Result<bool, ItemError> {
        let mut unsettled = self.unsettled.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = unsettled.entry((item.id.clone(), item.rev.clone())).or_insert(0);
        *n += 1;
        if *n < MAX_CHANGED_FETCHES {
            return Ok(false);
        }
        unsettled.remove(&(item.id.clone(), item.rev.clone()));
        Err(ItemError::Refused(format!(
            "{}: its content did not match the source's listing in {MAX_CHANGED_FETCHES} fetches (rewritten \
             without pause, or a fault at the source); skipped until it changes again",
            item.path
        )))
    }

    /// Takes one item; false when it changed while it was fetched.
    async fn take(&self, item: &Item) -> Result<bool, ItemError> {
        let system = self.source.system();
        let origin = Origin { account: self.poll.account.clone(), protocol: system, remote_addr: None };
        let upload = self
            .spool
            .begin_transfer(&self.poll.channel, system, &spool_name(&item.name), &origin)
            .await
            .map_err(|e| ItemError::Transient(format!("{}: {e}", item.path)))?;
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
    ) -> Result<bool, ItemError> {
        let mut fields = item.fields.clone();
        fields.insert("poll".into(), self.poll.name.clone());
        fields.insert("system".into(), system.to_string());
        let journal = self.spool.journal();
        journal
            .record_source_item(&self.poll.name, &item.id, &item.rev, &id, &fields)
            .await
            .map_err(|e| ItemError::Transient(e.to_string()))?;
        if !self.source.fetch(item, &upload).await? {
            return Ok(false); // dropping the upload aborts the transfer
        }
        let committed = upload.commit().await.map_err(|e| ItemError::Transient(format!("{}: {e}", item.path)))?;
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
        let held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for (item, state) in due {
            if held.contains(&(item.item.clone(), item.rev.clone())) {
                continue; // its children are not all in yet
            }
            let detail = if state == "excepted" {
                journal.excepted_reason(&item.transfer_id).await
            } else {
                journal.delivered_receipt(&item.transfer_id).await
            };
            let receipt = match detail {
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

    /// The pause before the next regular poll: the interval, or until the schedule's next time.
    fn until_next_poll(&self) -> Duration {
        let Some(schedule) = &self.poll.schedule else { return self.poll.every };
        let now = chrono::Utc::now();
        schedule.next_after(now).and_then(|next| (next - now).to_std().ok()).unwrap_or(self.poll.every)
    }

    /// Polls until `stop`, backing off after failures. A scheduled poll waits for its first
    /// time; an interval poll starts at once.
    pub async fn run(self, stop: CancellationToken) {
        let mut failures = 0u32;
        if self.poll.schedule.is_some() {
            tokio::select! {
                () = tokio::time::sleep(self.until_next_poll()) => {}
                () = stop.cancelled() => return,
            }
        }
        loop {
            let polled = self.poll_once().await;
            let wait = match &polled {
                Ok(p) => {
                    failures = 0;
                    if p.taken > 0 {
                        tracing::info!(poll = %self.poll.name, taken = p.taken, "poll took new items");
                    }
                    self.until_next_poll()
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
            // After a failed poll, what it listed may not all be in: write-backs wait for a good one.
            if polled.is_ok() {
                self.write_back().await;
            }
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
        assert_eq!(spool_name("Ra\u{308}kning.pdf"), "R\u{e4}kning.pdf", "NFC");
        assert_eq!(spool_name("invoice\u{202e}fdp.exe"), "invoice_fdp.exe", "no bidi override");
    }

    /// A source of three items whose second one it refuses to hand out.
    struct Stubborn;

    #[async_trait::async_trait]
    impl Source for Stubborn {
        fn system(&self) -> &'static str {
            "dropbox"
        }
        async fn list(&self, _cursor: Option<&str>) -> Result<Listing, String> {
            let item = |n: &str| Item {
                id: n.into(),
                rev: "1".into(),
                name: format!("{n}.pdf"),
                path: format!("/{n}.pdf"),
                ..Item::default()
            };
            Ok(Listing { items: vec![item("a"), item("b"), item("c")], filtered: 0, cursor: Some("after-c".into()) })
        }
        async fn fetch(&self, item: &Item, upload: &Upload) -> Result<bool, ItemError> {
            if item.id == "b" {
                return Err(ItemError::Refused("/b.pdf: Dropbox refused the request: path/restricted_content".into()));
            }
            upload.write_at(0, b"%PDF-1.7\n".to_vec()).await.map_err(|e| ItemError::Transient(e.to_string()))?;
            Ok(true)
        }
        async fn write_back(&self, _: &SourceItem, state: &str, _: Option<&str>) -> Result<String, String> {
            Ok(format!("{state}: none"))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_item_the_source_refuses_is_skipped_with_a_reason_and_does_not_hold_up_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (spool, poll) = test_spool(dir.path()).await;
        let poller = Poller::new(spool.clone(), poll, Arc::new(Stubborn));
        let done = poller.poll_once().await.expect("the poll itself succeeds");
        assert_eq!((done.taken, done.refused, done.changed), (2, 1, 0));
        assert_eq!(
            spool.journal().source_cursor("p").await.expect("cursor").as_deref(),
            Some("after-c"),
            "the cursor moves on"
        );
        let trail = std::fs::read_to_string(dir.path().join("spool/audit.jsonl")).expect("audit");
        assert!(trail.contains("source_item_refused") && trail.contains("restricted_content"), "{trail}");
    }

    /// A source whose downloads never match their listing.
    struct Shifting;

    #[async_trait::async_trait]
    impl Source for Shifting {
        fn system(&self) -> &'static str {
            "dropbox"
        }
        async fn list(&self, _: Option<&str>) -> Result<Listing, String> {
            let item = Item {
                id: "id:x".into(),
                rev: "r1".into(),
                name: "x.pdf".into(),
                path: "/x.pdf".into(),
                ..Item::default()
            };
            Ok(Listing { items: vec![item], filtered: 0, cursor: Some("after-x".into()) })
        }
        async fn fetch(&self, _: &Item, upload: &Upload) -> Result<bool, ItemError> {
            upload.write_at(0, b"%PDF-1.7\n".to_vec()).await.map_err(|e| ItemError::Transient(e.to_string()))?;
            Ok(false)
        }
        async fn write_back(&self, _: &SourceItem, state: &str, _: Option<&str>) -> Result<String, String> {
            Ok(format!("{state}: none"))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_item_that_never_matches_its_listing_is_refused_after_a_few_fetches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (spool, poll) = test_spool(dir.path()).await;
        let poller = Poller::new(spool.clone(), poll, Arc::new(Shifting));
        for n in 1..MAX_CHANGED_FETCHES {
            let done = poller.poll_once().await.expect("poll");
            assert_eq!((done.changed, done.refused), (1, 0), "fetch {n}");
            assert_eq!(spool.journal().source_cursor("p").await.expect("cursor"), None, "the cursor waits");
        }
        let done = poller.poll_once().await.expect("poll");
        assert_eq!((done.changed, done.refused), (0, 1));
        assert_eq!(spool.journal().source_cursor("p").await.expect("cursor").as_deref(), Some("after-x"));
        let trail = std::fs::read_to_string(dir.path().join("spool/audit.jsonl")).expect("audit");
        assert!(trail.contains("did not match the source's listing in 5 fetches"), "{trail}");
    }

    /// A spool in `dir` and a poll `p` of channel `invoices`.
    async fn test_spool(dir: &std::path::Path) -> (Arc<Spool>, PollConfig) {
        let cfg = crate::config::SpoolConfig {
            root: dir.join("spool"),
            journal: dir.join("spool/journal.db"),
            audit_log: dir.join("spool/audit.jsonl"),
        };
        let audit = Arc::new(crate::audit::Audit::open(&cfg.audit_log).expect("audit"));
        let spool = Spool::open(&cfg, audit).await.expect("spool");
        let poll = PollConfig {
            name: "p".into(),
            channel: "invoices".into(),
            account: "acme".into(),
            every: Duration::from_secs(60),
            schedule: None,
            target: "dbx".into(),
            path: String::new(),
            recursive: false,
            name_filter: None,
            on_delivered: None,
            on_excepted: None,
            confluence: None,
            contentstack: None,
        };
        (spool, poll)
    }
}
