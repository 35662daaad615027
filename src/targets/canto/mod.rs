//! The `canto` target: documents uploaded to Canto DAM in three steps (upload setting → storage
//! form POST with the file part last and no Authorization → upload status until `Done`), then
//! their metadata set with `batch/edit`.
//!
//! - **New version** when the metadata carries `canto_id` (and `canto_scheme`, default from the
//!   file extension): `x-amz-meta-id` is set; else a new asset.
//! - **Idempotency** (decision): every upload carries the tag `wharf-sha256-<hex>` (set at
//!   upload through `x-amz-meta-tag`, so it is there even if wharf crashes before `batch/edit`).
//!   Before uploading, a new asset is looked up by `search?keyword=<tag>` (same file name);
//!   a version by the asset's details (its tags hold the tag). A hit is this delivery, made
//!   before a crash: only the metadata is set again.
//! - **Policy expiry**: a 403 "expired" from the storage fetches a fresh setting and posts once
//!   more; a second expiry is an exception.
//! - **Status**: `Error` and an upload still `Initial` after `upload_status_timeout_secs` are
//!   exceptions with reasons a person can act on.
//!
//! Receipt: id = asset id, path = `scheme/id`.

pub mod client;
pub mod edit;
pub mod status;
pub mod upload;

use super::{Delivery, Document, Receipt, Target};
use crate::config::canto::CantoConfig;
use client::{ApiError, Client};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The tag prefix marking what wharf delivered.
pub const SHA_TAG: &str = "wharf-sha256-";

/// A Canto target.
pub struct CantoTarget {
    name: String,
    cfg: CantoConfig,
    client: Arc<Client>,
}

/// The scheme Canto files a name under, by extension.
pub fn scheme_of(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" | "png" | "gif" | "tif" | "tiff" | "webp" | "psd" | "svg" => "image",
        "mp4" | "mov" | "avi" | "mkv" => "video",
        "mp3" | "wav" | "aac" => "audio",
        "pdf" | "doc" | "docx" | "txt" | "xls" | "xlsx" | "csv" | "rtf" => "document",
        "ppt" | "pptx" | "key" => "presentation",
        _ => "other",
    }
}

enum Failure {
    Retry(String),
    Except(String),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Transient(m) => Failure::Retry(m),
            e => Failure::Except(e.to_string()),
        }
    }
}

impl CantoTarget {
    /// Reads the secret and prepares the connection (nothing is sent yet).
    ///
    /// # Errors
    /// The secret is missing or unreadable.
    pub fn new(name: &str, cfg: CantoConfig) -> Result<Self, client::SetupError> {
        let client = Arc::new(Client::new(&cfg)?);
        Ok(Self { name: name.to_string(), cfg, client })
    }

    /// The connection (sources and tests).
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    fn receipt(&self, scheme: &str, id: &str, already: bool) -> Receipt {
        Receipt {
            target: self.name.clone(),
            id: id.to_string(),
            path: format!("{scheme}/{id}"),
            version: None,
            already_delivered: already,
        }
    }

    /// An asset of this name carrying `tag`, if any (a delivery made before a crash).
    async fn find_delivered(&self, name: &str, tag: &str) -> Result<Option<(String, String)>, ApiError> {
        let q = [("keyword", tag.to_string()), ("start", "0".into()), ("limit", "100".into())];
        let v = self.client.get_json("/api/v1/search", &q).await?;
        let hit = v["results"].as_array().into_iter().flatten().find(|r| {
            r["name"].as_str() == Some(name)
                && r["tag"].as_array().is_some_and(|t| t.iter().any(|x| x.as_str() == Some(tag)))
        });
        Ok(hit.and_then(|r| Some((r["scheme"].as_str()?.to_string(), r["id"].as_str()?.to_string()))))
    }

    /// Steps 1-3, with one fresh setting after an expired policy.
    async fn upload(&self, doc: &Document, f: &upload::UploadFile<'_>) -> Result<String, Failure> {
        let mut attempt = 0;
        let before = status::snapshot(&self.client, f.name).await?;
        loop {
            attempt += 1;
            let setting = upload::setting(&self.client).await?;
            match upload::post(&self.client, &setting, f).await {
                Ok(()) => break,
                Err(upload::PostError::Expired) if attempt == 1 => {
                    tracing::info!(transfer = %doc.transfer_id, "Canto upload policy expired; fetching a fresh one");
                }
                Err(upload::PostError::Expired) => {
                    return Err(Failure::Except(
                        "Canto's storage refused two fresh upload policies as expired: check the clock of this host"
                            .into(),
                    ));
                }
                Err(upload::PostError::Api(e)) => return Err(e.into()),
            }
        }
        let (t, every) = (self.cfg.upload_status_timeout, self.cfg.upload_status_poll);
        match status::wait(&self.client, f.name, &before, t, every).await? {
            status::Outcome::Done(id) => Ok(id),
            status::Outcome::Error => Err(Failure::Except(format!(
                "Canto reported the upload of {} as Error (upload/status); check the file in Canto and resubmit",
                f.name
            ))),
            status::Outcome::Stuck => Err(Failure::Except(format!(
                "upload stuck in Initial for {} s: Canto has not processed {} yet; resubmit when Canto shows it \
                 (the resubmit finds it by its tag and does not upload twice)",
                t.as_secs(),
                f.name
            ))),
        }
    }

    async fn deliver_inner(&self, doc: &Document) -> Result<Receipt, Failure> {
        let name = doc.destination.rsplit('/').next().unwrap_or(&doc.destination).to_string();
        if name.is_empty() {
            return Err(Failure::Except("the destination has no file name".into()));
        }
        let tag = format!("{SHA_TAG}{}", doc.sha256);
        let version_of = doc.metadata.get("canto_id").filter(|s| !s.is_empty());
        let scheme = doc
            .metadata
            .get("canto_scheme")
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| scheme_of(&name).to_string());
        let (scheme, id, already) = match version_of {
            Some(id) => {
                let details = match self.client.get_json(&format!("/api/v1/{scheme}/{id}"), &[]).await {
                    Err(ApiError::NotFound) => {
                        return Err(Failure::Except(format!(
                            "Canto has no {scheme} asset {id} (metadata canto_id) to add a version to"
                        )));
                    }
                    other => other?,
                };
                let has = details["tag"].as_array().is_some_and(|t| t.iter().any(|x| x.as_str() == Some(&tag)));
                if !has {
                    let f = upload::UploadFile {
                        body: &doc.body,
                        size: doc.size,
                        name: &name,
                        scheme: &scheme,
                        version_of: Some(id),
                        tags: &tag,
                    };
                    self.upload(doc, &f).await?;
                }
                (scheme, id.clone(), has)
            }
            None => match self.find_delivered(&name, &tag).await? {
                Some((s, id)) => (s, id, true),
                None => {
                    let f = upload::UploadFile {
                        body: &doc.body,
                        size: doc.size,
                        name: &name,
                        scheme: &scheme,
                        version_of: None,
                        tags: &tag,
                    };
                    let id = self.upload(doc, &f).await?;
                    (scheme, id, false)
                }
            },
        };
        let props = edit::properties(&self.cfg, &doc.metadata);
        edit::edit(&self.client, &scheme, &id, props, None, &BTreeMap::new()).await?;
        Ok(self.receipt(&scheme, &id, already))
    }
}

#[async_trait::async_trait]
impl Target for CantoTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, doc: &Document) -> Delivery {
        let span = tracing::info_span!("canto", target = %self.name, transfer = %doc.transfer_id);
        match tracing::Instrument::instrument(self.deliver_inner(doc), span).await {
            Ok(r) => Delivery::Delivered(r),
            Err(Failure::Retry(m)) => Delivery::Retry(m),
            Err(Failure::Except(m)) => Delivery::Except(m),
        }
    }
}
