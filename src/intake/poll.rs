//! Source polls: a Dropbox folder feeding a channel. Each poll lists what changed since its
//! cursor, takes every new or changed file into the spool as a transfer of its channel (the same
//! journal states, rules, exceptions and audit as an upload) and only then advances the cursor.
//! A source that fails delays the next poll with backoff; the cursor stays where it was.
//!
//! Exactly once: an item revision is recorded against its transfer before its body is fetched
//! ([`crate::spool::journal::Journal::record_source_item`]); a later poll skips it unless that
//! transfer never completed. A body whose size or content hash differs from the listing (it
//! changed while it was fetched) is dropped and the cursor kept, so the next poll takes the new
//! version whole. A `reset` cursor lists the folder again; what was taken is skipped.
//!
//! Write-back: once an item's transfer is delivered (or excepted), the file is moved into the
//! configured folder at the source, once (recorded in the journal).

use crate::audit::Event;
use crate::config::polls::PollConfig;
use crate::spool::{Origin, Spool};
use crate::targets::dropbox::client::{ApiError, Client};
use crate::targets::dropbox::hash::ContentHasher;
use crate::targets::dropbox::listing::{self, ListError, Listed};
use futures_util::StreamExt;
use serde_json::json;
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

/// A file name fit for the spool: control characters and slashes become `_`.
fn spool_name(name: &str) -> String {
    let cleaned: String = name.chars().map(|c| if c.is_control() || c == '/' || c == '\\' { '_' } else { c }).collect();
    let trimmed = cleaned.trim_start_matches('.').trim();
    if trimmed.is_empty() { "unnamed".to_string() } else { trimmed.to_string() }
}

fn fields(poll: &PollConfig, f: &Listed) -> BTreeMap<String, String> {
    let folder = f.path.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
    let dirs = folder.clone();
    [
        ("poll", poll.name.clone()),
        ("system", "dropbox".to_string()),
        ("id", f.id.clone()),
        ("rev", f.rev.clone()),
        ("path", f.path.clone()),
        ("folder", dirs),
        ("name", f.name.clone()),
        ("size", f.size.to_string()),
        ("modified", f.server_modified.clone()),
        ("client_modified", f.client_modified.clone()),
        ("content_hash", f.content_hash.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    // `dir1`, `dir2`, ...: the folders of the path, so rules can take a business key from it
    // (`/Projects/V10001/Final/x.pdf` has `dir2 = V10001`)
    .chain(
        folder.split('/').filter(|c| !c.is_empty()).enumerate().map(|(i, c)| (format!("dir{}", i + 1), c.to_string())),
    )
    .collect()
}

/// One poll against one source.
pub struct Poller {
    spool: Arc<Spool>,
    poll: PollConfig,
    client: Arc<Client>,
}

impl Poller {
    /// A poller for `poll`, using `client`.
    pub fn new(spool: Arc<Spool>, poll: PollConfig, client: Arc<Client>) -> Self {
        Self { spool, poll, client }
    }

    fn wanted(&self, f: &Listed) -> bool {
        let in_write_back = [&self.poll.on_delivered, &self.poll.on_excepted].into_iter().flatten().any(|w| {
            if w.starts_with('/') {
                f.path.to_lowercase().starts_with(&format!("{}/", w.to_lowercase()))
            } else {
                f.path.to_lowercase().contains(&format!("/{}/", w.to_lowercase()))
            }
        });
        !in_write_back && self.poll.name_filter.as_ref().is_none_or(|re| re.is_match(&f.path))
    }

    /// Lists the changes and takes them; advances the cursor when all are in the spool.
    ///
    /// # Errors
    /// The source or the spool failed; nothing after the last taken item is lost.
    pub async fn poll_once(&self) -> Result<Polled, String> {
        let journal = self.spool.journal();
        let name = &self.poll.name;
        let cursor = journal.source_cursor(name).await.map_err(|e| e.to_string())?;
        let changes =
            match listing::changes(&self.client, &self.poll.path, self.poll.recursive, cursor.as_deref()).await {
                Err(ListError::Reset) => {
                    tracing::warn!(poll = %name, "the source reset its cursor; listing the folder again");
                    listing::changes(&self.client, &self.poll.path, self.poll.recursive, None).await
                }
                other => other,
            }
            .map_err(|e| e.to_string())?;
        let mut done = Polled::default();
        for f in &changes.files {
            if !self.wanted(f) || journal.source_item_taken(name, &f.id, &f.rev).await.map_err(|e| e.to_string())? {
                done.skipped += 1;
                continue;
            }
            match self.take(f).await? {
                true => done.taken += 1,
                false => done.changed += 1,
            }
        }
        // The cursor moves only when everything before it is in the spool.
        let cursor = (done.changed == 0).then_some(changes.cursor.as_str());
        let line = format!("taken {}, skipped {}, changed while fetched {}", done.taken, done.skipped, done.changed);
        journal.set_source_cursor(name, cursor, &line).await.map_err(|e| e.to_string())?;
        Ok(done)
    }

    /// Takes one file; false when it changed while it was fetched.
    async fn take(&self, f: &Listed) -> Result<bool, String> {
        let origin = Origin { account: self.poll.account.clone(), protocol: "dropbox", remote_addr: None };
        let name = spool_name(&f.name);
        let upload = self
            .spool
            .begin_transfer(&self.poll.channel, "dropbox", &name, &origin)
            .await
            .map_err(|e| format!("{}: {e}", f.path))?;
        let id = upload.id().to_string();
        let span = tracing::info_span!("poll", poll = %self.poll.name, transfer = %id, account = %self.poll.account, channel = %self.poll.channel);
        let _enter = span.enter();
        let journal = self.spool.journal();
        journal
            .record_source_item(&self.poll.name, &f.id, &f.rev, &id, &fields(&self.poll, f))
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = listing::download(&self.client, &f.rev).await.map_err(|e| format!("{}: {e}", f.path))?;
        let (mut offset, mut hasher) = (0u64, ContentHasher::default());
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("{}: download interrupted: {e}", f.path))?;
            hasher.update(&chunk);
            upload.write_at(offset, chunk.to_vec()).await.map_err(|e| format!("{}: {e}", f.path))?;
            offset += chunk.len() as u64;
        }
        if offset != f.size || hasher.finish() != f.content_hash {
            tracing::info!(path = %f.path, "the file changed while it was fetched; the next poll takes it");
            return Ok(false); // dropping the upload aborts the transfer
        }
        let committed = upload.commit().await.map_err(|e| format!("{}: {e}", f.path))?;
        self.spool.audit().record(
            Event::new("upload_completed")
                .account(&self.poll.account)
                .protocol("dropbox")
                .path(&f.path)
                .size(committed.written.size)
                .sha256(&committed.written.sha256)
                .transfer(&id)
                .reason(&format!("poll {} took {} rev {}", self.poll.name, f.id, f.rev)),
        );
        self.spool.notify_received();
        Ok(true)
    }

    /// Moves delivered and excepted items into their write-back folders, once each.
    pub async fn write_back(&self) {
        let journal = self.spool.journal();
        let due = match journal.write_backs_due(&self.poll.name).await {
            Ok(d) => d,
            Err(e) => return tracing::warn!(poll = %self.poll.name, error = %e, "cannot read due write-backs"),
        };
        for (item, state) in due {
            let target = if state == "delivered" { &self.poll.on_delivered } else { &self.poll.on_excepted };
            let Some(folder) = target else {
                let _ = journal.mark_written_back(&item.poll, &item.item, &item.rev, &format!("{state}: none")).await;
                continue;
            };
            let f = item.field_map();
            let (Some(from), Some(name)) = (f.get("path"), f.get("name")) else { continue };
            let dir = if folder.starts_with('/') {
                folder.clone()
            } else {
                format!("{}/{folder}", f.get("folder").map_or("", String::as_str))
            };
            let to = format!("{dir}/{name}");
            let arg = json!({ "from_path": from, "to_path": to, "autorename": true });
            let what = match self.client.rpc("files/move_v2", &arg).await {
                Ok(_) => format!("{state}: moved to {to}"),
                Err(ApiError::Endpoint { tag, .. }) if tag.contains("not_found") => format!("{state}: already gone"),
                Err(e) => {
                    tracing::warn!(poll = %self.poll.name, path = %from, error = %e, "write-back failed; retried next poll");
                    continue;
                }
            };
            if journal.mark_written_back(&item.poll, &item.item, &item.rev, &what).await.is_ok() {
                self.spool.audit().record(
                    Event::new("source_written_back")
                        .account(&self.poll.account)
                        .path(from)
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
