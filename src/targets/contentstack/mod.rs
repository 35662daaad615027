//! The `contentstack` target: a document becomes a Contentstack asset and an entry of the
//! configured content type referencing it, published to every configured environment × locale
//! (Content Management API v3, <https://www.contentstack.com/docs/developers/apis/content-management-api>).
//!
//! One delivery, in order (see each module):
//! 1. the entry looked up by the unique field ([`entries`]); two or more hits are an exception;
//! 2. the asset ([`assets`], only when a field of type `asset` is mapped): found by its tags
//!    (`wharf-sha256-<hex>` and `wharf-entry-<hash of the unique value>`), else the entry's
//!    current asset replaced in place when wharf wrote it for this entry (same uid, new
//!    version), else uploaded new; streamed from the spool;
//! 3. the entry's fields ([`fields`]) from metadata templates, the body as rich text, the asset
//!    uid and references; the entry created, updated in place, or left alone when it already
//!    holds exactly these values (a redelivery adds no version);
//! 4. asset and entry published, one call per locale ([`publish`]).
//!
//! **Idempotent**: a redelivery after a crash at any point finds the asset by its tag and the
//! entry by its unique field, so there is never a second asset or entry; only what is missing
//! (update, publish pairs) is sent; two deliveries of the same entry in this process run one
//! after the other ([`serial`]). **Rate**: all calls pass the target's shared read and write
//! limiters ([`limiter`]); a 429 is backed off and then a retry ([`client`]).
//!
//! Outcomes: transient failures (5xx, 429 after the backoff, network) are `Retry`; refusals
//! (credentials, validation, one locale's publish) are `Except` with Contentstack's
//! `error_message`, and never the token. Receipt: id = entry uid, version = entry version,
//! path = `<content type>/<entry uid>?asset=<asset uid>`.

pub mod assets;
pub mod client;
pub mod entries;
pub mod fields;
pub mod limiter;
pub mod publish;
pub mod serial;

use super::{Delivery, Document, Receipt, Target};
use crate::config::contentstack::{ContentstackConfig, Credential, FieldSource};
use client::{ApiError, Client};
use publish::PublishError;
use serde_json::Value;
use std::sync::Arc;

/// A Contentstack target.
pub struct ContentstackTarget {
    name: String,
    cfg: ContentstackConfig,
    client: Arc<Client>,
    /// Deliveries of one entry (unique value) one at a time.
    serial: serial::KeyedLocks,
}

enum Failure {
    Retry(String),
    Except(String),
}

impl Failure {
    fn api(what: &str, e: ApiError, cfg: &ContentstackConfig) -> Failure {
        match e {
            ApiError::Transient(m) => Failure::Retry(format!("{what}: {m}")),
            e @ ApiError::Auth { .. } => {
                let hint = match &cfg.credential {
                    Credential::ManagementToken(_) => {
                        "check the management token (management_token_env/_file), that it belongs to this stack \
                         and has write access to its environments"
                    }
                    Credential::Authtoken(_) => "log in again for a fresh authtoken (authtoken_env/_file)",
                };
                Failure::Except(format!("{what}: {e}; {hint}, then resubmit"))
            }
            e => Failure::Except(format!("{what}: {e}")),
        }
    }
}

impl ContentstackTarget {
    /// Reads the credential and prepares the connection and its limiters (nothing is sent yet).
    ///
    /// # Errors
    /// The credential is missing or unreadable.
    pub fn new(name: &str, cfg: ContentstackConfig) -> Result<Self, client::SetupError> {
        let client = Arc::new(Client::new(&cfg)?);
        Ok(Self { name: name.to_string(), cfg, client, serial: serial::KeyedLocks::default() })
    }

    /// The connection (for sources and tests).
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    async fn rich_text(&self, doc: &Document, name: &str) -> Result<Option<String>, Failure> {
        let kind = fields::body_kind(name);
        if !fields::wants_rich_text(&self.cfg) || kind == fields::BodyKind::Binary {
            return Ok(None);
        }
        if doc.size > fields::MAX_RICH_TEXT {
            return Err(Failure::Except(format!(
                "{name} is {} bytes: larger than {} bytes, too large to become rich text",
                doc.size,
                fields::MAX_RICH_TEXT
            )));
        }
        let bytes = tokio::fs::read(&doc.body)
            .await
            .map_err(|e| Failure::Retry(format!("reading the spooled body: {}", e.kind())))?;
        fields::rich_text(kind, &bytes).map_err(|m| Failure::Except(format!("{name}: {m}")))
    }

    /// Finds this file's asset by its tags, else replaces the entry's asset (when wharf wrote it
    /// for this entry), else uploads it; the asset and whether it was written now.
    async fn asset(
        &self,
        doc: &Document,
        name: &str,
        title: &str,
        unique: &str,
        current: Option<String>,
    ) -> Result<(Value, bool), Failure> {
        let api = |what: &str, e| Failure::api(what, e, &self.cfg);
        let sha_tag = format!("{}{}", assets::SHA_TAG, doc.sha256);
        let entry_tag = assets::entry_tag(&self.cfg.content_type, unique);
        let found = assets::find(&self.client, &[&sha_tag, &entry_tag]).await;
        if let Some(a) = found.map_err(|e| api("looking up the asset", e))? {
            return Ok((a, false));
        }
        let replace = match current {
            Some(uid) => assets::get(&self.client, &uid)
                .await
                .map_err(|e| api("reading the entry's asset", e))?
                .filter(|a| assets::has_tag(a, &entry_tag))
                .and_then(|a| a["uid"].as_str().map(str::to_string)),
            None => None,
        };
        let description = format!("{name}, delivered by wharf (transfer {})", doc.transfer_id);
        let f = assets::AssetFile {
            body: &doc.body,
            size: doc.size,
            name,
            title,
            description: &description,
            tags: vec![sha_tag, entry_tag],
            folder: self.cfg.asset_folder.as_deref(),
        };
        let a = assets::upload(&self.client, &f, replace.as_deref())
            .await
            .map_err(|e| api(if replace.is_some() { "replacing the asset" } else { "uploading the asset" }, e))?;
        tracing::info!(asset = a["uid"].as_str().unwrap_or_default(), replaced = replace.is_some(), "asset written");
        Ok((a, true))
    }

    async fn publish(&self, what: &str, path: &str, module: &str, item: &Value) -> Result<(), Failure> {
        let (envs, locales) = (&self.cfg.environments, &self.cfg.locales);
        match publish::publish(&self.client, path, module, item, envs, locales).await {
            Ok(_) => Ok(()),
            Err(PublishError::Locale { locale, error }) => Err(Failure::Except(format!(
                "publishing the {what} to locale {locale} (environments {}) failed: {error}; fix the locale in \
                 Contentstack or in the target's `locales`, then resubmit (what is published stays published)",
                envs.join(", ")
            ))),
            Err(PublishError::Api(e)) => Err(Failure::api(&format!("publishing the {what}"), e, &self.cfg)),
        }
    }

    async fn deliver_inner(&self, doc: &Document) -> Result<Receipt, Failure> {
        let cfg = &self.cfg;
        let api = |what: &str, e| Failure::api(what, e, cfg);
        let name = doc.destination.rsplit('/').next().unwrap_or(&doc.destination).to_string();
        if name.is_empty() {
            return Err(Failure::Except("the destination has no file name".into()));
        }
        let master = cfg.locales.first().map(String::as_str).unwrap_or("en-us");
        let rich = self.rich_text(doc, &name).await?;
        let draft = fields::entry_fields(cfg, &doc.metadata, rich.as_deref(), None).map_err(Failure::Except)?;
        let unique = draft.get(&cfg.unique_field).and_then(Value::as_str).unwrap_or_default().to_string();
        let _one_at_a_time = self.serial.lock(&unique).await;
        let existing = match entries::find(&self.client, &cfg.content_type, master, &cfg.unique_field, &unique).await {
            Ok(entries::Found::None) => None,
            Ok(entries::Found::One(e)) => Some(e),
            Ok(entries::Found::Many(n)) => {
                return Err(Failure::Except(format!(
                    "{n} entries of {} have {} = {unique:?}: wharf cannot tell which to update; \
                         delete the duplicates in Contentstack and resubmit",
                    cfg.content_type, cfg.unique_field
                )));
            }
            Err(e) => return Err(api("looking up the entry", e)),
        };
        let wants_asset = cfg.fields.values().any(|f| *f == FieldSource::Asset);
        let asset = if wants_asset {
            let title = draft.get("title").and_then(Value::as_str).unwrap_or(&name).to_string();
            let current = existing.as_ref().and_then(|e| fields::asset_of(e, cfg));
            Some(self.asset(doc, &name, &title, &unique, current).await?)
        } else {
            None
        };
        let asset_uid = asset.as_ref().and_then(|(a, _)| a["uid"].as_str().map(str::to_string));
        let wanted =
            fields::entry_fields(cfg, &doc.metadata, rich.as_deref(), asset_uid.as_deref()).map_err(Failure::Except)?;
        let (entry, entry_written) = match existing {
            Some(e) if fields::holds(&e, &wanted, cfg) => (e, false),
            Some(e) => {
                let uid = e["uid"].as_str().unwrap_or_default().to_string();
                let e = entries::update(&self.client, &cfg.content_type, master, &uid, &wanted)
                    .await
                    .map_err(|e| api("updating the entry", e))?;
                (e, true)
            }
            None => {
                let e = entries::create(&self.client, &cfg.content_type, master, &wanted)
                    .await
                    .map_err(|e| api("creating the entry", e))?;
                (e, true)
            }
        };
        let entry_uid = entry["uid"].as_str().unwrap_or_default().to_string();
        tracing::info!(entry = %entry_uid, written = entry_written, "entry ready");
        if let (Some((a, _)), Some(uid)) = (&asset, &asset_uid) {
            self.publish(&format!("asset {uid}"), &format!("/v3/assets/{uid}"), "asset", a).await?;
        }
        let path = format!("/v3/content_types/{}/entries/{entry_uid}", cfg.content_type);
        self.publish(&format!("entry {entry_uid}"), &path, "entry", &entry).await?;
        let asset_written = asset.as_ref().is_some_and(|(_, w)| *w);
        Ok(Receipt {
            target: self.name.clone(),
            id: entry_uid.clone(),
            path: match &asset_uid {
                Some(a) => format!("{}/{entry_uid}?asset={a}", cfg.content_type),
                None => format!("{}/{entry_uid}", cfg.content_type),
            },
            version: entry["_version"].as_u64().and_then(|v| u32::try_from(v).ok()),
            already_delivered: !asset_written && !entry_written,
        })
    }
}

#[async_trait::async_trait]
impl Target for ContentstackTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, doc: &Document) -> Delivery {
        let span = tracing::info_span!("contentstack", target = %self.name, transfer = %doc.transfer_id);
        match tracing::Instrument::instrument(self.deliver_inner(doc), span).await {
            Ok(r) => Delivery::Delivered(r),
            Err(Failure::Retry(m)) => Delivery::Retry(m),
            Err(Failure::Except(m)) => Delivery::Except(m),
        }
    }
}
