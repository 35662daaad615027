//! The `dropbox` target: documents uploaded under the target's root with Dropbox's
//! `content_hash` (so a damaged body is refused), streamed from the spool.
//!
//! - Bodies up to `single_upload_max` go in one request: `upload_session/start` with
//!   `close: true`, committed with others in one `upload_session/finish_batch_v2` (Dropbox
//!   serialises writes per namespace; one commit per file trips `too_many_write_operations`).
//!   With `batch_max = 1`, `files/upload` instead.
//! - Larger bodies go through a session: `start`, `append_v2` in `chunk` pieces (the last one
//!   closes it), then the same batched commit.
//! - Conflict policy onto `mode`: `version` and `overwrite` → `overwrite` (Dropbox keeps the old
//!   content as a revision), `rename` → `add` + `autorename`, `reject` → `add`, and a
//!   `path/conflict` refusal goes to exceptions.
//! - Idempotent: before uploading, `get_metadata` of the destination; a file there with the same
//!   content hash is this delivery, made before a crash.

pub mod batch;
pub mod client;
pub mod hash;
pub mod listing;

use super::{Conflict, Delivery, Document, Receipt, Target};
use crate::config::dropbox::DropboxConfig;
use client::{ApiError, Client};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

/// A Dropbox target.
pub struct DropboxTarget {
    name: String,
    cfg: DropboxConfig,
    client: Arc<Client>,
    batcher: batch::Batcher,
}

impl DropboxTarget {
    /// Reads the secrets and prepares the connection (nothing is sent yet).
    ///
    /// # Errors
    /// A secret is missing or unreadable.
    pub fn new(name: &str, cfg: DropboxConfig) -> Result<Self, client::SetupError> {
        let client = Arc::new(Client::new(&cfg)?);
        let batcher = batch::Batcher::new(client.clone(), cfg.batch_max, cfg.batch_wait);
        Ok(Self { name: name.to_string(), cfg, client, batcher })
    }

    /// The connection (sources and tests).
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// Whether a file is at `destination` (under the root): the recovery of an interrupted
    /// outbound publish asks this.
    ///
    /// # Errors
    /// The classified failure.
    pub async fn exists(&self, destination: &str) -> Result<bool, ApiError> {
        Ok(self.existing(&self.path_of(destination)).await?.is_some())
    }

    /// The full Dropbox path of a destination under the root.
    pub fn path_of(&self, destination: &str) -> String {
        format!("{}/{}", self.cfg.root, destination.trim_start_matches('/'))
    }

    fn commit_info(path: &str, conflict: Conflict) -> Value {
        let (mode, autorename) = match conflict {
            Conflict::Version | Conflict::Overwrite => ("overwrite", false),
            Conflict::Rename => ("add", true),
            Conflict::Reject => ("add", false),
        };
        json!({ "path": path, "mode": mode, "autorename": autorename, "mute": true, "strict_conflict": false })
    }

    async fn existing(&self, path: &str) -> Result<Option<Value>, ApiError> {
        match self.client.rpc("files/get_metadata", &json!({ "path": path })).await {
            Ok(v) if v[".tag"] == "file" => Ok(Some(v)),
            Ok(_) => Ok(None),
            Err(ApiError::Endpoint { tag, .. }) if tag.starts_with("path/not_found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn deliver_inner(&self, doc: &Document, content_hash: &str) -> Result<Receipt, ApiError> {
        let path = self.path_of(&doc.destination);
        if let Some(found) = self.existing(&path).await?
            && found["content_hash"].as_str() == Some(content_hash)
        {
            return Ok(self.receipt(&found, true));
        }
        let commit = Self::commit_info(&path, doc.conflict);
        let meta = if self.cfg.batch_max <= 1 && doc.size <= self.cfg.single_upload_max {
            let mut arg = commit.clone();
            arg["content_hash"] = json!(content_hash);
            let body = doc.body.clone();
            let size = doc.size;
            self.client.upload("files/upload", &arg, || part(&body, 0, size)).await?
        } else {
            let session = self.upload_session(&doc.body, doc.size).await?;
            let entry = json!({ "cursor": { "session_id": session, "offset": doc.size }, "commit": commit });
            self.batcher.commit(entry).await?
        };
        if meta["content_hash"].as_str().is_some_and(|h| h != content_hash) {
            return Err(ApiError::Transient(format!("{path}: Dropbox stored different content; sending it again")));
        }
        Ok(self.receipt(&meta, false))
    }

    /// Uploads the body into a closed session; returns its id.
    async fn upload_session(&self, body: &Path, size: u64) -> Result<String, ApiError> {
        let chunk = if size <= self.cfg.single_upload_max { size } else { self.cfg.chunk };
        let first = chunk.min(size);
        let arg = json!({ "close": first == size, "content_hash": range_hash(body, 0, first).await? });
        let started = self.client.upload("files/upload_session/start", &arg, || part(body, 0, first)).await?;
        let session = started["session_id"]
            .as_str()
            .ok_or_else(|| ApiError::Transient("upload_session/start: no session_id in the reply".into()))?
            .to_string();
        let mut offset = first;
        while offset < size {
            let len = chunk.min(size - offset);
            let close = offset + len == size;
            let arg = json!({
                "cursor": { "session_id": session, "offset": offset },
                "close": close,
                "content_hash": range_hash(body, offset, len).await?,
            });
            match self.client.upload("files/upload_session/append_v2", &arg, || part(body, offset, len)).await {
                Ok(_) => {}
                // a lost reply to an append that did arrive: continue where Dropbox is
                Err(ApiError::Endpoint { tag, error }) if tag.contains("incorrect_offset") => {
                    let correct = error.pointer("/incorrect_offset/correct_offset").and_then(Value::as_u64);
                    match correct {
                        Some(c) if c == offset + len => {}
                        _ => return Err(ApiError::Endpoint { tag, error }),
                    }
                }
                Err(e) => return Err(e),
            }
            offset += len;
        }
        Ok(session)
    }

    fn receipt(&self, meta: &Value, already: bool) -> Receipt {
        Receipt {
            target: self.name.clone(),
            id: meta["id"].as_str().unwrap_or_default().to_string(),
            path: meta["path_display"].as_str().unwrap_or_default().to_string(),
            version: None,
            already_delivered: already,
        }
    }
}

async fn range_hash(body: &Path, offset: u64, len: u64) -> Result<String, ApiError> {
    let p = body.to_path_buf();
    tokio::task::spawn_blocking(move || hash::of_file(&p, offset, len))
        .await
        .map_err(|e| ApiError::Transient(e.to_string()))?
        .map_err(|e| ApiError::Transient(format!("reading the spooled body: {e}")))
}

/// `len` bytes of the body from `offset`, streamed.
async fn part(body: &Path, offset: u64, len: u64) -> Result<reqwest::Body, ApiError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f =
        tokio::fs::File::open(body).await.map_err(|e| ApiError::Transient(format!("opening the spooled body: {e}")))?;
    f.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| ApiError::Transient(format!("reading the spooled body: {e}")))?;
    Ok(reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(f.take(len))))
}

#[async_trait::async_trait]
impl Target for DropboxTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, doc: &Document) -> Delivery {
        let span = tracing::info_span!("dropbox", target = %self.name, transfer = %doc.transfer_id);
        let hash = match tracing::Instrument::instrument(range_hash(&doc.body, 0, doc.size), span.clone()).await {
            Ok(h) => h,
            Err(e) => return Delivery::Retry(e.to_string()),
        };
        match tracing::Instrument::instrument(self.deliver_inner(doc, &hash), span).await {
            Ok(r) => Delivery::Delivered(r),
            Err(ApiError::Transient(m)) => Delivery::Retry(m),
            Err(ApiError::Endpoint { tag, .. })
                if tag.contains("too_many_write_operations") || tag.contains("insufficient_space") =>
            {
                Delivery::Retry(format!("Dropbox: {tag}"))
            }
            Err(ApiError::Endpoint { tag, .. }) if tag.contains("conflict") => Delivery::Except(format!(
                "{} already exists in Dropbox and the rule's conflict policy is `reject` ({tag})",
                self.path_of(&doc.destination)
            )),
            Err(e) => Delivery::Except(e.to_string()),
        }
    }
}
