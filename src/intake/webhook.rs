//! Webhook intake: an event pushed by a connected system (Contentstack's `entries.unpublish` and
//! `entries.delete`) becomes a transfer of a channel, with the payload as its body and the
//! event's facts as `transfer.source.*` fields; from there the rules decide (a retention
//! package into the campaign's Business Workspace, in scenario 000).
//!
//! A request is taken only when it proves its origin (the shared secret, compared in constant
//! time, or the HMAC-SHA256 signature of the body), names an accepted event of the configured
//! stack, is well formed and recent, and was not taken before. Anything else is answered with
//! a 4xx and changes nothing (refusals are audited, without the secret).
//!
//! Decision (UNVERIFIED in ../shared/api/TARGETS.md): Contentstack's documented protection is
//! basic auth or custom headers set on the webhook; the `X-Contentstack-Signature` HMAC comes
//! from an advisory source only. wharf checks a custom header by default and offers the HMAC.
//!
//! Exactly once: the event (item `content type/entry/locale`, revision `event@triggered_at`) is
//! recorded in the journal's source items before the transfer commits, so a replayed request is
//! answered 409. Contentstack retries only what was not answered 2xx, so a genuine retry never
//! meets a 409 unless the first attempt was in fact taken.

use crate::audit::Event;
use crate::config::secret::SecretError;
use crate::config::webhooks::{WebhookAuth, WebhookConfig};
use crate::intake::poll::spool_name;
use crate::spool::{Origin, Spool};
use axum::http::{HeaderMap, StatusCode};
use hmac::{KeyInit, Mac};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The header Contentstack's signature would come in (`auth = "hmac-sha256"`).
pub const SIGNATURE_HEADER: &str = "x-contentstack-signature";

/// Why a request was not taken; each maps to one HTTP status.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// No secret, the wrong secret, or a bad signature.
    #[error("{0}")]
    Unauthorized(String),
    /// Not JSON, or not the shape of a webhook payload.
    #[error("{0}")]
    Malformed(String),
    /// Not `application/json`.
    #[error("{0}")]
    UnsupportedType(String),
    /// Well formed but not for this intake: another stack, an event not accepted, too old.
    #[error("{0}")]
    NotAccepted(String),
    /// The same event was taken before.
    #[error("{0}")]
    Replayed(String),
    /// The spool or the journal failed: the sender should retry.
    #[error("{0}")]
    Unavailable(String),
}

impl Refusal {
    /// The HTTP status answering this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotAccepted(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Replayed(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// One event read from a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// `entries.unpublish`.
    pub event: String,
    /// Content type uid.
    pub content_type: String,
    /// Entry uid.
    pub entry: String,
    /// Locale of the event.
    pub locale: String,
    /// `triggered_at` as sent.
    pub triggered_at: String,
    /// `transfer.source.*` fields.
    pub fields: BTreeMap<String, String>,
    /// The whole payload as parsed (a retention package is built from it).
    pub payload: Value,
}

/// A webhook intake, ready to take requests.
pub struct Webhook {
    spool: Arc<Spool>,
    cfg: WebhookConfig,
    secret: String,
    /// One request at a time: the replay check and the record are one step.
    taking: tokio::sync::Mutex<()>,
    /// Builds the retention package, when the webhook has `package_from`.
    packager: Option<super::webhook_package::Packager>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("name", &self.cfg.name).finish_non_exhaustive()
    }
}

/// A Contentstack uid or locale code: letters, digits, `_` and `-` (never a path).
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Webhook {
    /// The intake for `cfg`; reads its secret now.
    ///
    /// # Errors
    /// The secret cannot be read.
    pub fn new(spool: Arc<Spool>, cfg: WebhookConfig) -> Result<Self, SecretError> {
        let secret = cfg.secret.read()?;
        Ok(Self { spool, cfg, secret, taking: tokio::sync::Mutex::new(()), packager: None })
    }

    /// Each event becomes a retention package built by `packager` (see
    /// [`super::webhook_package`]).
    #[must_use]
    pub fn with_packager(mut self, packager: super::webhook_package::Packager) -> Self {
        self.packager = Some(packager);
        self
    }

    /// Its name (the URL segment).
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Checks the request's proof of origin.
    ///
    /// # Errors
    /// [`Refusal::Unauthorized`], naming the header, never the secret.
    pub fn authenticate(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
        match &self.cfg.auth {
            WebhookAuth::Header(name) => {
                let given = headers.get(name.as_str()).map(|v| v.as_bytes()).unwrap_or_default();
                if given.is_empty() {
                    return Err(Refusal::Unauthorized(format!("the {name} header is missing")));
                }
                if !bool::from(given.ct_eq(self.secret.as_bytes())) {
                    return Err(Refusal::Unauthorized(format!(
                        "the {name} header does not hold this webhook's secret"
                    )));
                }
            }
            WebhookAuth::HmacSha256 => {
                let given = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
                let Ok(given) = hex::decode(given.trim()) else {
                    return Err(Refusal::Unauthorized(format!("the {SIGNATURE_HEADER} header is missing or not hex")));
                };
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(self.secret.as_bytes())
                    .map_err(|_| Refusal::Unauthorized("the webhook's secret cannot key an HMAC".into()))?;
                mac.update(body);
                if mac.verify_slice(&given).is_err() {
                    return Err(Refusal::Unauthorized(format!(
                        "the {SIGNATURE_HEADER} header is not the HMAC-SHA256 of the body under this webhook's secret"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Reads and checks a payload (after [`Self::authenticate`]).
    ///
    /// # Errors
    /// [`Refusal::Malformed`] or [`Refusal::NotAccepted`], saying what is wrong.
    pub fn parse(&self, body: &[u8], now: chrono::DateTime<chrono::Utc>) -> Result<WebhookEvent, Refusal> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| Refusal::Malformed(format!("the body is not JSON: {e}")))?;
        let field = |name: &str| text(&v[name]).ok_or_else(|| Refusal::Malformed(format!("`{name}` is missing")));
        let module = field("module")?;
        let action = field("event")?;
        let api_key = field("api_key")?;
        let triggered_at = field("triggered_at")?;
        if let Some(want) = &self.cfg.api_key
            && !bool::from(api_key.as_bytes().ct_eq(want.as_bytes()))
        {
            return Err(Refusal::NotAccepted(format!("the event is from stack {api_key:?}, not the configured one")));
        }
        let event = match module.as_str() {
            "entry" | "entries" => format!("entries.{action}"),
            other => return Err(Refusal::NotAccepted(format!("module {other:?} is not accepted (only entries)"))),
        };
        if !self.cfg.events.contains(&event) {
            return Err(Refusal::NotAccepted(format!(
                "event {event} is not accepted here (accepted: {})",
                self.cfg.events.join(", ")
            )));
        }
        let at = chrono::DateTime::parse_from_rfc3339(&triggered_at)
            .map_err(|_| Refusal::Malformed(format!("`triggered_at` {triggered_at:?} is not an RFC 3339 time")))?
            .with_timezone(&chrono::Utc);
        let age = now.signed_duration_since(at);
        let max_age = chrono::Duration::from_std(self.cfg.max_age).unwrap_or(chrono::Duration::MAX);
        if age > max_age {
            return Err(Refusal::NotAccepted(format!(
                "the event was triggered at {triggered_at}, more than {} s ago (max_age_secs)",
                self.cfg.max_age.as_secs()
            )));
        }
        if age < -chrono::Duration::minutes(5) {
            return Err(Refusal::NotAccepted(format!("the event's `triggered_at` {triggered_at} is in the future")));
        }
        let data = &v["data"];
        let entry = &data["entry"];
        let uid = text(&entry["uid"]).filter(|u| is_token(u));
        let content_type = text(&data["content_type"]["uid"]).filter(|u| is_token(u));
        let (Some(uid), Some(content_type)) = (uid, content_type) else {
            return Err(Refusal::Malformed(
                "`data.entry.uid` and `data.content_type.uid` must be uids (letters, digits, `_`, `-`)".into(),
            ));
        };
        let locale = text(&data["locale"]).or_else(|| text(&entry["locale"])).unwrap_or_else(|| "default".into());
        if !is_token(&locale) {
            return Err(Refusal::Malformed(format!("locale {locale:?} is not a locale code")));
        }
        let mut fields = BTreeMap::from([
            ("event".to_string(), event.clone()),
            ("content_type".to_string(), content_type.clone()),
            ("entry_uid".to_string(), uid.clone()),
            ("id".to_string(), uid.clone()),
            ("locale".to_string(), locale.clone()),
            ("triggered_at".to_string(), triggered_at.clone()),
            ("webhook".to_string(), self.cfg.name.clone()),
        ]);
        for (key, value) in [
            ("title", &entry["title"]),
            ("version", &entry["_version"]),
            ("environment", &data["environment"]["name"]),
            ("url", &entry["url"]),
        ] {
            if let Some(t) = text(value).filter(|t| !t.chars().any(char::is_control)) {
                fields.insert(key.to_string(), t);
            }
        }
        Ok(WebhookEvent { event, content_type, entry: uid, locale, triggered_at, fields, payload: v })
    }

    /// Takes one request: authenticated, parsed, not seen before → a committed transfer of the
    /// channel. Returns the transfer id.
    ///
    /// # Errors
    /// A [`Refusal`]; nothing was spooled.
    pub async fn receive(&self, headers: &HeaderMap, body: &[u8], remote: Option<String>) -> Result<String, Refusal> {
        let result = self.take(headers, body, remote.clone()).await;
        if let Err(r) = &result {
            tracing::warn!(webhook = %self.cfg.name, remote = ?remote, reason = %r, "webhook refused");
            let mut e = Event::new("webhook_refused").account(&self.cfg.account).protocol("webhook").reason(&format!(
                "webhook {}: {} ({})",
                self.cfg.name,
                r,
                r.status().as_u16()
            ));
            if let Some(addr) = &remote {
                e = e.remote(Some(addr));
            }
            self.spool.audit().record(e);
        }
        result
    }

    async fn take(&self, headers: &HeaderMap, body: &[u8], remote: Option<String>) -> Result<String, Refusal> {
        self.authenticate(headers, body)?;
        let json = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
        if !json {
            return Err(Refusal::UnsupportedType("the body must be sent as application/json".into()));
        }
        let ev = self.parse(body, chrono::Utc::now())?;
        let item = format!("{}/{}/{}", ev.content_type, ev.entry, ev.locale);
        let rev = format!("{}@{}", ev.event, ev.triggered_at);
        let journal = self.spool.journal();
        let unavailable =
            |e: &dyn std::fmt::Display| Refusal::Unavailable(format!("the spool cannot take it now: {e}"));
        let _one = self.taking.lock().await;
        if journal.source_item_taken(&self.cfg.name, &item, &rev).await.map_err(|e| unavailable(&e))? {
            return Err(Refusal::Replayed(format!(
                "{} of {item} triggered at {} was received before",
                ev.event, ev.triggered_at
            )));
        }
        let (body, ext) = match &self.packager {
            Some(p) => (p.package(&ev.payload).await?, "zip"),
            None => (body.to_vec(), "json"),
        };
        let stem = format!("{}-{}-{}-{}", ev.content_type, ev.entry, ev.locale, ev.event.replace('.', "-"));
        let name = spool_name(&format!("{stem}.{ext}"));
        let origin = Origin { account: self.cfg.account.clone(), protocol: "webhook", remote_addr: remote };
        let upload = self
            .spool
            .begin_transfer(&self.cfg.channel, "contentstack", &name, &origin)
            .await
            .map_err(|e| unavailable(&e))?;
        let id = upload.id().to_string();
        let mut fields = ev.fields.clone();
        fields.insert("system".into(), "contentstack".into());
        fields.insert("path".into(), item.clone());
        journal.record_source_item(&self.cfg.name, &item, &rev, &id, &fields).await.map_err(|e| unavailable(&e))?;
        upload.write_at(0, body).await.map_err(|e| unavailable(&e))?;
        let committed = upload.commit().await.map_err(|e| unavailable(&e))?;
        self.spool.audit().record(
            Event::new("upload_completed")
                .account(&self.cfg.account)
                .protocol("webhook")
                .path(&item)
                .size(committed.written.size)
                .sha256(&committed.written.sha256)
                .transfer(&id)
                .reason(&format!("webhook {} took {} of {item}", self.cfg.name, ev.event)),
        );
        tracing::info!(webhook = %self.cfg.name, transfer = %id, channel = %self.cfg.channel, event = %ev.event, item = %item, "webhook event taken");
        self.spool.notify_received();
        Ok(id)
    }
}
