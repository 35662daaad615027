//! A Dropbox folder as a poll [`Source`]: `files/list_folder` changes since the cursor (listed
//! again from scratch after a `reset`), each file streamed by revision and checked against the
//! listed size and content hash; write-back moves the file into a folder beside it (or an
//! absolute one).

use super::{Item, ItemError, Listing, Source};
use crate::config::polls::PollConfig;
use crate::spool::Upload;
use crate::spool::journal::SourceItem;
use crate::targets::dropbox::client::{ApiError, Client};
use crate::targets::dropbox::hash::ContentHasher;
use crate::targets::dropbox::listing::{self, ListError, Listed};
use futures_util::StreamExt;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The Dropbox side of a poll.
pub struct DropboxSource {
    poll: PollConfig,
    client: Arc<Client>,
}

impl DropboxSource {
    /// The source of `poll`, using `client`.
    pub fn new(poll: PollConfig, client: Arc<Client>) -> Self {
        Self { poll, client }
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
}

fn fields(f: &Listed) -> BTreeMap<String, String> {
    let folder = f.path.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
    [
        ("id", f.id.clone()),
        ("rev", f.rev.clone()),
        ("path", f.path.clone()),
        ("folder", folder.clone()),
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

#[async_trait::async_trait]
impl Source for DropboxSource {
    fn system(&self) -> &'static str {
        "dropbox"
    }

    async fn list(&self, cursor: Option<&str>) -> Result<Listing, String> {
        let (path, recursive) = (&self.poll.path, self.poll.recursive);
        let changes = match listing::changes(&self.client, path, recursive, cursor).await {
            Err(ListError::Reset) => {
                tracing::warn!(poll = %self.poll.name, "the source reset its cursor; listing the folder again");
                listing::changes(&self.client, path, recursive, None).await
            }
            other => other,
        }
        .map_err(|e| e.to_string())?;
        let mut out = Listing { cursor: Some(changes.cursor.clone()), ..Listing::default() };
        for f in &changes.files {
            if !self.wanted(f) {
                out.filtered += 1;
                continue;
            }
            out.items.push(Item {
                id: f.id.clone(),
                rev: f.rev.clone(),
                name: f.name.clone(),
                path: f.path.clone(),
                fields: fields(f),
                body: None,
            });
        }
        Ok(out)
    }

    async fn fetch(&self, item: &Item, upload: &Upload) -> Result<bool, ItemError> {
        let mut stream = listing::download(&self.client, &item.rev).await.map_err(|e| match e {
            // about this file only (restricted_content, not_file, unsupported_file, ...)
            ApiError::Endpoint { .. } => ItemError::Refused(format!("{}: {e}", item.path)),
            // credentials, the service: every item would fail alike
            _ => ItemError::Transient(format!("{}: {e}", item.path)),
        })?;
        let (mut offset, mut hasher) = (0u64, ContentHasher::default());
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ItemError::Transient(format!("{}: download interrupted: {e}", item.path)))?;
            hasher.update(&chunk);
            upload
                .write_at(offset, chunk.to_vec())
                .await
                .map_err(|e| ItemError::Transient(format!("{}: {e}", item.path)))?;
            offset += chunk.len() as u64;
        }
        let listed_size = item.fields.get("size").and_then(|s| s.parse::<u64>().ok());
        Ok(listed_size == Some(offset) && item.fields.get("content_hash") == Some(&hasher.finish()))
    }

    async fn write_back(&self, item: &SourceItem, state: &str, _receipt: Option<&str>) -> Result<String, String> {
        let target = if state == "delivered" { &self.poll.on_delivered } else { &self.poll.on_excepted };
        let Some(folder) = target else { return Ok(format!("{state}: none")) };
        let f = item.field_map();
        let (Some(listed), Some(name)) = (f.get("path"), f.get("name")) else {
            return Ok(format!("{state}: no path recorded"));
        };
        // delivered after a resubmission: the file is where the excepted write-back put it
        let from = item
            .written_back
            .as_deref()
            .and_then(|w| w.strip_prefix("excepted: moved to "))
            .map_or(listed.as_str(), str::trim);
        let dir = if folder.starts_with('/') {
            folder.clone()
        } else {
            format!("{}/{folder}", f.get("folder").map_or("", String::as_str))
        };
        let to = format!("{dir}/{name}");
        let arg = json!({ "from_path": from, "to_path": to, "autorename": true });
        match self.client.rpc("files/move_v2", &arg).await {
            // autorename may have chosen another name: record where it really is
            Ok(v) => {
                let at = v.pointer("/metadata/path_display").and_then(serde_json::Value::as_str).unwrap_or(&to);
                Ok(format!("{state}: moved to {at}"))
            }
            Err(ApiError::Endpoint { tag, .. }) if tag.contains("not_found") => Ok(format!("{state}: already gone")),
            Err(e) => Err(format!("{from}: {e}")),
        }
    }
}
