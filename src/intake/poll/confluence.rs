//! Confluence pages as a poll [`Source`]: the pages a CQL query selects, changed since the
//! watermark (the `lastmodified` of the newest page listed, kept as the poll's cursor), each
//! page version (`item` = page id, `rev` = version number) taken once as a standalone HTML file
//! with its labels and content properties as `transfer.source.*`; after delivery the page gets
//! the write-back label and a content property holding the target's receipt.

use super::{Item, ItemError, Listing, Source};
use crate::config::polls::ConfluencePoll;
use crate::spool::Upload;
use crate::spool::journal::SourceItem;
use crate::targets::confluence::client::Client;
use crate::targets::confluence::source::{self, Found};
use serde_json::{Value, json};
use std::sync::Arc;

/// The Confluence side of a poll.
pub struct ConfluenceSource {
    name: String,
    poll: ConfluencePoll,
    client: Arc<Client>,
}

impl ConfluenceSource {
    /// The source of the poll `name`, using `client`.
    pub fn new(name: &str, poll: ConfluencePoll, client: Arc<Client>) -> Self {
        Self { name: name.to_string(), poll, client }
    }
}

fn newer(a: &str, b: &str) -> bool {
    match (chrono::DateTime::parse_from_rfc3339(a), chrono::DateTime::parse_from_rfc3339(b)) {
        (Ok(a), Ok(b)) => a > b,
        (Ok(_), Err(_)) => true,
        _ => false,
    }
}

#[async_trait::async_trait]
impl Source for ConfluenceSource {
    fn system(&self) -> &'static str {
        "confluence"
    }

    async fn list(&self, cursor: Option<&str>) -> Result<Listing, String> {
        let cql = source::watermarked(&self.poll.cql, cursor);
        let found = source::search(&self.client, &cql).await.map_err(|e| format!("CQL search: {e}"))?;
        let mut watermark = cursor.map(str::to_string);
        let mut items = Vec::with_capacity(found.len());
        for f in found {
            if watermark.as_deref().is_none_or(|w| newer(&f.modified, w)) {
                watermark = Some(f.modified.clone());
            }
            let Found { id, version, title, space, modified } = f;
            let path = format!("{space}/{title}");
            let fields = [
                ("path", path.clone()),
                ("id", id.clone()),
                ("version", version.to_string()),
                ("space", space.clone()),
                ("title", title.clone()),
                ("modified", modified),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            items.push(Item { path, name: format!("{title}.html"), id, rev: version.to_string(), fields, body: None });
        }
        tracing::debug!(poll = %self.name, pages = items.len(), "CQL search");
        Ok(Listing { items, filtered: 0, cursor: watermark })
    }

    async fn prepare(&self, item: &mut Item) -> Result<bool, ItemError> {
        let f = Found {
            id: item.id.clone(),
            version: item
                .rev
                .parse()
                .map_err(|_| ItemError::Refused(format!("{}: bad version {}", item.path, item.rev)))?,
            title: item.fields.get("title").cloned().unwrap_or_default(),
            space: item.fields.get("space").cloned().unwrap_or_default(),
            modified: item.fields.get("modified").cloned().unwrap_or_default(),
        };
        let fetched = source::fetch(&self.client, &f).await.map_err(|e| match e.status() {
            // about this page only: too large, unprocessable
            Some(413 | 422) => ItemError::Refused(format!("{}: {e}", item.path)),
            _ => ItemError::Transient(format!("{}: {e}", item.path)),
        })?;
        match fetched {
            Some(fetched) => {
                item.fields.extend(fetched.fields);
                item.body = Some(fetched.html);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn fetch(&self, item: &Item, upload: &Upload) -> Result<bool, ItemError> {
        let Some(body) = &item.body else { return Ok(false) };
        upload.write_at(0, body.clone()).await.map_err(|e| ItemError::Transient(format!("{}: {e}", item.path)))?;
        Ok(true)
    }

    async fn write_back(&self, item: &SourceItem, state: &str, receipt: Option<&str>) -> Result<String, String> {
        if state != "delivered" {
            return Ok(format!("{state}: none"));
        }
        let mut done = Vec::new();
        if let Some(label) = &self.poll.label {
            source::add_label(&self.client, &item.item, label)
                .await
                .map_err(|e| format!("page {}: label: {e}", item.item))?;
            done.push(format!("label {label}"));
        }
        if let Some(key) = &self.poll.property {
            let mut value: Value = receipt.and_then(|r| serde_json::from_str(r).ok()).unwrap_or_else(|| json!({}));
            if let Some(m) = value.as_object_mut() {
                m.insert("transfer".into(), json!(item.transfer_id));
                m.insert("page_version".into(), json!(item.rev));
            }
            source::set_property(&self.client, &item.item, key, &value)
                .await
                .map_err(|e| format!("page {}: property {key}: {e}", item.item))?;
            done.push(format!("property {key}"));
        }
        Ok(if done.is_empty() { format!("{state}: none") } else { format!("{state}: {}", done.join(", ")) })
    }
}
