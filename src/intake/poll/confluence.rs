//! Confluence pages as a poll [`Source`]: the pages a CQL query selects, changed since the
//! watermark (the `lastmodified` of the newest page listed, kept as the poll's cursor), each
//! page version (`item` = page id, `rev` = version number) taken once as a standalone HTML file
//! with its labels and content properties as `transfer.source.*`; after delivery the page gets
//! the write-back label and a content property holding the target's receipt (an excepted one,
//! the `excepted_label`).
//!
//! Attachments (`attachments = "items" | "zip"`): each attachment version becomes its own
//! transfer after its page (`item` = attachment id, `rev` = its version, with the page's fields
//! as `transfer.source.page_*`), or the page travels as `<title>.zip` holding the HTML file,
//! `attachments/<name>` and `manifest.json`. Decision (UNVERIFIED): attaching a file to a page
//! does not change the page's version, so an attachment added later arrives with the page's
//! next version.

use super::confluence_zip;
use super::{Item, ItemError, Listing, Source};
use crate::config::polls::{ConfluencePoll, PageAttachments};
use crate::spool::Upload;
use crate::spool::journal::SourceItem;
use crate::targets::confluence::client::{ApiError, Client};
use crate::targets::confluence::page_files::{self, PageFile};
use crate::targets::confluence::source::{self, Found};
use futures_util::StreamExt;
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

    /// The item of one attachment of `page` (a prepared page item), carrying the page's fields.
    fn attachment_item(page: &Item, file: PageFile) -> Item {
        let mut fields = page.fields.clone();
        for key in ["id", "version", "title", "path", "link"] {
            if let Some(v) = fields.remove(key) {
                fields.insert(format!("page_{key}"), v);
            }
        }
        let path = format!("{}/{}", page.path, file.title);
        let attachment = [
            ("id", file.id.clone()),
            ("version", file.version.to_string()),
            ("title", file.title.clone()),
            ("path", path.clone()),
            ("media_type", file.media_type),
            ("comment", file.comment),
            ("attachment_of", page.id.clone()),
        ];
        fields.extend(attachment.into_iter().map(|(k, v)| (k.to_string(), v)));
        match file.size {
            Some(size) => fields.insert("size".into(), size.to_string()),
            None => fields.remove("size"), // unknown: the download is taken as it comes
        };
        Item { id: file.id, rev: file.version.to_string(), name: file.title, path, fields, body: None }
    }

    /// Streams one attachment version into `out` (chunk by chunk); the bytes written, `None`
    /// when the attachment (or that version) is gone.
    async fn download_into<F, Fut>(&self, item: &Item, mut out: F) -> Result<Option<u64>, ItemError>
    where
        F: FnMut(u64, bytes::Bytes) -> Fut,
        Fut: Future<Output = Result<(), ItemError>>,
    {
        let page = item.fields.get("attachment_of").cloned().unwrap_or_default();
        let file = PageFile {
            id: item.id.clone(),
            title: item.name.clone(),
            version: item.rev.parse().unwrap_or(1),
            size: None,
            media_type: String::new(),
            comment: String::new(),
        };
        let mut stream = match page_files::download(&self.client, &page, &file).await {
            Ok(s) => s,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(about(item, e)),
        };
        let mut offset = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ItemError::Transient(format!("{}: download interrupted: {e}", item.path)))?;
            let n = chunk.len() as u64;
            out(offset, chunk).await?;
            offset += n;
        }
        Ok(Some(offset))
    }

    /// The page item as `<title>.zip` with its attachments (the HTML file already in `body`).
    async fn zip_page(&self, page: &mut Item) -> Result<bool, ItemError> {
        let files = page_files::list(&self.client, &page.id).await.map_err(|e| about(page, e))?;
        let html = page.body.take().unwrap_or_default();
        let mut zip = confluence_zip::PageZip::new(&page.name, html).map_err(|e| refused(page, &e))?;
        for file in files {
            let item = Self::attachment_item(page, file);
            let mut bytes = Vec::new();
            let cap = confluence_zip::MAX_ZIP_BYTES.saturating_sub(zip.size());
            let read = self
                .download_into(&item, |_, chunk| {
                    let fits = (bytes.len() + chunk.len()) as u64 <= cap;
                    if fits {
                        bytes.extend_from_slice(&chunk);
                    }
                    std::future::ready(if fits { Ok(()) } else { Err(refused(&item, &confluence_zip::too_large())) })
                })
                .await?;
            // deleted since it was listed: the page has changed, the next poll takes it again
            let Some(read) = read else { return Ok(false) };
            if item.fields.get("size").is_some_and(|s| *s != read.to_string()) {
                return Ok(false); // changed while it was read: the next poll takes the page again
            }
            // compressing and hashing are CPU work: off the async workers
            let (name, rev) = (item.name.clone(), item.rev.clone());
            zip = tokio::task::spawn_blocking(move || zip.add(&name, &rev, &bytes).map(|()| zip))
                .await
                .map_err(|e| ItemError::Transient(format!("{}: {e}", page.path)))?
                .map_err(|e| refused(page, &e))?;
        }
        page.fields.insert("attachments".into(), zip.count().to_string());
        let zipped = tokio::task::spawn_blocking(move || zip.finish())
            .await
            .map_err(|e| ItemError::Transient(format!("{}: {e}", page.path)))?;
        page.body = Some(zipped.map_err(|e| refused(page, &e))?);
        Ok(true)
    }
}

/// A failure about one item: 404/413/422 are about it alone (refused), the rest transient.
fn about(item: &Item, e: ApiError) -> ItemError {
    match e.status() {
        Some(404 | 413 | 422) => ItemError::Refused(format!("{}: {e}", item.path)),
        _ => ItemError::Transient(format!("{}: {e}", item.path)),
    }
}

fn refused(item: &Item, why: &str) -> ItemError {
    ItemError::Refused(format!("{}: {why}", item.path))
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
            let ext = if self.poll.attachments == PageAttachments::Zip { "zip" } else { "html" };
            items.push(Item { path, name: format!("{title}.{ext}"), id, rev: version.to_string(), fields, body: None });
        }
        tracing::debug!(poll = %self.name, pages = items.len(), "CQL search");
        Ok(Listing { items, filtered: 0, cursor: watermark })
    }

    async fn prepare(&self, item: &mut Item) -> Result<bool, ItemError> {
        if item.fields.contains_key("attachment_of") {
            return Ok(true); // listed with its page's fields; the bytes come in `fetch`
        }
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
        let Some(fetched) = fetched else { return Ok(false) };
        item.fields.extend(fetched.fields);
        item.body = Some(fetched.html);
        if self.poll.attachments == PageAttachments::Zip {
            return self.zip_page(item).await;
        }
        Ok(true)
    }

    async fn children(&self, page: &Item) -> Result<Vec<Item>, ItemError> {
        if self.poll.attachments != PageAttachments::Items || page.fields.contains_key("attachment_of") {
            return Ok(Vec::new());
        }
        let mut page = page.clone();
        // taken in an earlier process: its fields are read again for the attachments
        if !page.fields.contains_key("link") && !self.prepare(&mut page).await? {
            return Ok(Vec::new()); // moved on: its next version brings the attachments
        }
        let files = page_files::list(&self.client, &page.id).await.map_err(|e| about(&page, e))?;
        Ok(files.into_iter().map(|f| Self::attachment_item(&page, f)).collect())
    }

    async fn fetch(&self, item: &Item, upload: &Upload) -> Result<bool, ItemError> {
        if let Some(body) = &item.body {
            upload.write_at(0, body.clone()).await.map_err(|e| ItemError::Transient(format!("{}: {e}", item.path)))?;
            return Ok(true);
        }
        if !item.fields.contains_key("attachment_of") {
            return Ok(false);
        }
        let read = self
            .download_into(item, |offset, chunk| async move {
                upload
                    .write_at(offset, chunk.to_vec())
                    .await
                    .map_err(|e| ItemError::Transient(format!("{}: {e}", item.path)))
            })
            .await?
            .ok_or_else(|| refused(item, "the attachment is gone at the source"))?;
        Ok(item.fields.get("size").is_none_or(|s| *s == read.to_string()))
    }

    async fn write_back(&self, item: &SourceItem, state: &str, receipt: Option<&str>) -> Result<String, String> {
        if let Some(page) = item.field_map().get("attachment_of") {
            // a delivered attachment: its page is written back; an excepted one marks its page
            let label = self.poll.excepted_label.as_ref().filter(|_| state != "delivered");
            let Some(label) = label else {
                return Ok(format!("{state}: none (an attachment; its page is written back)"));
            };
            source::add_label(&self.client, page, label).await.map_err(|e| format!("page {page}: label: {e}"))?;
            return Ok(format!("{state}: label {label} on its page {page}"));
        }
        if state != "delivered" {
            let Some(label) = &self.poll.excepted_label else { return Ok(format!("{state}: none")) };
            source::add_label(&self.client, &item.item, label)
                .await
                .map_err(|e| format!("page {}: label: {e}", item.item))?;
            return Ok(format!("{state}: label {label}"));
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
