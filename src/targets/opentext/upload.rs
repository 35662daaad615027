//! Large File Upload (`/api/v2/multipart`): a body larger than the target's
//! `multipart_threshold` is sent as a session of parts instead of one multipart `file` part.
//!
//! 1. `GET /v2/multipart/settings`, once per target (the reply is cached): `is_enabled`,
//!    `min_size`, `max_size`. Disabled, or a server without the API (404, or the 400 "could not
//!    be found in the mappings registry" of an older Content Server): plain `file` parts from then
//!    on. A body below `min_size` goes as a plain part; one above `max_size` is refused here.
//! 2. `POST /v2/multipart`, form `file_name`, `file_size`, `mime_type` → `upload_key`,
//!    `num_parts`, `part_size`, `max_retries`.
//! 3. `POST /v2/multipart/{key}/{n}`, the part `part_content`, for n = 1..=num_parts; part n is
//!    streamed from the spool file at offset (n-1)·part_size (never the whole body in memory). A
//!    transient failure is retried in place up to `max_retries` times; "BlockID n has already been
//!    uploaded" on a retry means the lost reply of the attempt before succeeded.
//! 4. `POST /v2/multipart/{key}` completes the session; the caller then creates the document (the
//!    key in the `body` JSON) or adds the version (the plain field `upload_key`).
//!
//! Any failure cancels the session (`DELETE /v2/multipart/{key}`, best effort) and is returned.
//! This module does not decide where the document goes, nor retry a whole delivery (the pipeline
//! does).

use super::client::{ApiError, Client};
use super::find_key;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use std::io::SeekFrom;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::OnceCell;

/// Part retries when the server's reply does not say (`max_retries`).
const DEFAULT_MAX_RETRIES: u32 = 3;
/// Part retries at most, whatever the server says.
const MAX_RETRIES_CAP: u32 = 10;
/// First wait before a part is sent again; doubled per retry.
const FIRST_RETRY_WAIT: Duration = Duration::from_millis(250);
/// Longest wait before a part is sent again.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// The server's Large File Upload settings (`GET /v2/multipart/settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Sessions can be opened.
    pub enabled: bool,
    /// Smallest file a session takes (bytes).
    pub min_size: u64,
    /// Largest file a session takes (bytes); 0 = no limit given.
    pub max_size: u64,
}

impl Settings {
    const UNAVAILABLE: Settings = Settings { enabled: false, min_size: 0, max_size: 0 };

    /// Reads a settings reply; the keys may be flat or under `results.data`.
    /// Decision (shape UNVERIFIED): a reply without `is_enabled` means disabled.
    pub fn from_reply(reply: &Value) -> Settings {
        let data = &reply["results"]["data"];
        let field = |k: &str| if data.get(k).is_some() { data.get(k) } else { reply.get(k) };
        let enabled = match field("is_enabled") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true") || s == "1",
            Some(Value::Number(n)) => n.as_u64().is_some_and(|n| n != 0),
            _ => false,
        };
        Settings {
            enabled,
            min_size: field("min_size").and_then(number).unwrap_or(0),
            max_size: field("max_size").and_then(number).unwrap_or(0),
        }
    }
}

/// An open session as `POST /v2/multipart` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `upload_key`.
    pub key: String,
    /// Parts to send, numbered from 1.
    pub num_parts: u64,
    /// Bytes per part (the last one holds the rest).
    pub part_size: u64,
    /// Retries of one part.
    pub max_retries: u32,
}

impl Session {
    /// Reads the reply to `POST /v2/multipart` and checks that its parts cover `size` bytes.
    ///
    /// # Errors
    /// No key, or parts that do not add up to the file (permanent: the server disagrees with us).
    pub fn from_reply(reply: &Value, size: u64) -> Result<Session, ApiError> {
        let bad = |why: String| ApiError::Permanent {
            status: 0,
            message: format!("Content Server's Large File Upload session does not fit the file: {why} ({reply})"),
        };
        let key = find_key(reply, "upload_key").and_then(Value::as_str).filter(|k| !k.is_empty());
        let key = key.ok_or_else(|| bad("no upload_key".into()))?.to_string();
        let num_parts = find_key(reply, "num_parts").and_then(number).unwrap_or(0);
        let part_size = find_key(reply, "part_size").and_then(number).unwrap_or(0);
        let max_retries = find_key(reply, "max_retries")
            .and_then(number)
            .map_or(DEFAULT_MAX_RETRIES, |r| u32::try_from(r.min(u64::from(MAX_RETRIES_CAP))).unwrap_or(0));
        let covered = num_parts.checked_mul(part_size);
        let before_last = num_parts.checked_sub(1).and_then(|n| n.checked_mul(part_size));
        match (covered, before_last) {
            (Some(all), Some(head)) if part_size > 0 && head < size && size <= all => {}
            _ => return Err(bad(format!("{num_parts} parts of {part_size} bytes for {size} bytes"))),
        }
        Ok(Session { key, num_parts, part_size, max_retries })
    }

    /// Offset and length of part `n` (1-based) of a `size`-byte file.
    pub fn slice(&self, n: u64, size: u64) -> (u64, u64) {
        let offset = (n - 1) * self.part_size;
        (offset, self.part_size.min(size - offset))
    }
}

/// Large File Upload for one target: its threshold and the server's cached settings.
#[derive(Debug)]
pub struct LargeFiles {
    threshold: Option<u64>,
    settings: OnceCell<Settings>,
}

impl LargeFiles {
    /// Sessions for bodies above `threshold` bytes (`None`: never).
    pub fn new(threshold: Option<u64>) -> Self {
        Self { threshold, settings: OnceCell::new() }
    }

    /// The server's settings, asked once; a transient failure is not cached.
    async fn settings(&self, client: &Client) -> Result<Settings, ApiError> {
        self.settings
            .get_or_try_init(|| async {
                match client.get("/v2/multipart/settings", &[]).await {
                    Ok(reply) => Ok(Settings::from_reply(&reply)),
                    Err(ApiError::Permanent { status, message })
                        if status == 404 || (status == 400 && message.contains("mappings registry")) =>
                    {
                        tracing::info!(status, "Content Server has no Large File Upload; sending files whole");
                        Ok(Settings::UNAVAILABLE)
                    }
                    Err(e) => Err(e),
                }
            })
            .await
            .copied()
    }

    /// Sends the body through a completed session when it should go that way and returns the
    /// session's `upload_key`; `None` when it is to be sent as a plain `file` part.
    ///
    /// # Errors
    /// The classified failure (the session is cancelled), or a body above the server's `max_size`.
    pub async fn upload(
        &self,
        client: &Client,
        body: &Path,
        size: u64,
        file_name: &str,
        mime: &str,
    ) -> Result<Option<String>, ApiError> {
        if self.threshold.is_none_or(|t| size <= t) {
            return Ok(None);
        }
        let settings = self.settings(client).await?;
        if !settings.enabled || size < settings.min_size {
            return Ok(None);
        }
        if settings.max_size > 0 && size > settings.max_size {
            return Err(ApiError::Permanent {
                status: 0,
                message: format!(
                    "the file has {size} bytes; Content Server's Large File Upload takes {} to {} bytes",
                    settings.min_size, settings.max_size
                ),
            });
        }
        let size_text = size.to_string();
        let fields = [("file_name", file_name), ("file_size", size_text.as_str()), ("mime_type", mime)];
        let reply = client.send(|| async { Ok(client.request(Method::POST, "/v2/multipart").form(&fields)) }).await?;
        let session = match Session::from_reply(&reply, size) {
            Ok(s) => s,
            Err(e) => {
                if let Some(key) = find_key(&reply, "upload_key").and_then(Value::as_str) {
                    cancel(client, key).await;
                }
                return Err(e);
            }
        };
        tracing::debug!(key = %session.key, parts = session.num_parts, "Large File Upload session opened");
        match send_all(client, &session, body, size, file_name).await {
            Ok(()) => Ok(Some(session.key)),
            Err(e) => {
                cancel(client, &session.key).await;
                Err(e)
            }
        }
    }
}

/// Every part, then the completing call.
async fn send_all(client: &Client, s: &Session, body: &Path, size: u64, file_name: &str) -> Result<(), ApiError> {
    for n in 1..=s.num_parts {
        let (offset, len) = s.slice(n, size);
        let path = format!("/v2/multipart/{}/{n}", s.key);
        with_retries(s.max_retries, &format!("part {n} of {}", s.num_parts), "has already been uploaded", || async {
            client
                .send(|| async {
                    let part = slice_part(body, offset, len, file_name).await?;
                    Ok(client.request(Method::POST, &path).multipart(Form::new().part("part_content", part)))
                })
                .await
                .map(drop)
        })
        .await?;
    }
    let path = format!("/v2/multipart/{}", s.key);
    with_retries(s.max_retries, "completing the upload", "already closed", || async {
        client.send(|| async { Ok(client.request(Method::POST, &path)) }).await.map(drop)
    })
    .await
}

/// Runs `attempt` again after a transient failure, up to `retries` times; a failure whose text
/// contains `done_text` on a repeat means the attempt before succeeded (its reply was lost).
async fn with_retries<F, Fut>(retries: u32, what: &str, done_text: &str, attempt: F) -> Result<(), ApiError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    let mut tried = 0;
    loop {
        let err = match attempt().await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let text = match &err {
            ApiError::Transient(t) | ApiError::NameConflict(t) => t,
            ApiError::Permanent { message, .. } => message,
        };
        if tried > 0 && text.contains(done_text) {
            return Ok(());
        }
        if !matches!(err, ApiError::Transient(_)) || tried >= retries {
            return Err(err);
        }
        tried += 1;
        let wait = FIRST_RETRY_WAIT.saturating_mul(1 << (tried - 1).min(16)).min(MAX_RETRY_WAIT);
        tracing::warn!(%err, ?wait, "Large File Upload: {what} failed; sending it again ({tried} of {retries})");
        tokio::time::sleep(wait).await;
    }
}

/// `len` bytes of the spooled body from `offset`, as a streamed part.
async fn slice_part(body: &Path, offset: u64, len: u64, file_name: &str) -> Result<Part, ApiError> {
    let io = |e: std::io::Error| ApiError::Transient(format!("cannot read the spooled body: {e}"));
    let mut file = tokio::fs::File::open(body).await.map_err(io)?;
    file.seek(SeekFrom::Start(offset)).await.map_err(io)?;
    let stream = tokio_util::io::ReaderStream::new(file.take(len));
    Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
        .file_name(file_name.to_string())
        .mime_str("application/octet-stream")
        .map_err(|e| ApiError::Transient(format!("multipart: {e}")))
}

/// Cancels a session (best effort: a failure is only logged).
pub async fn cancel(client: &Client, key: &str) {
    let path = format!("/v2/multipart/{key}");
    if let Err(e) = client.send(|| async { Ok(client.request(Method::DELETE, &path)) }).await {
        tracing::debug!(%e, key, "cancelling the Large File Upload session failed");
    }
}

/// A non-negative integer from a JSON number or numeric string.
fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn opentext_lfu_settings_are_read_flat_or_nested() {
        let flat = json!({"is_enabled": true, "min_size": 1024, "max_size": "4096"});
        assert_eq!(Settings::from_reply(&flat), Settings { enabled: true, min_size: 1024, max_size: 4096 });
        let nested = json!({"results": {"data": {"is_enabled": false, "min_size": 1, "max_size": 2}}});
        assert_eq!(Settings::from_reply(&nested), Settings { enabled: false, min_size: 1, max_size: 2 });
        assert!(!Settings::from_reply(&json!({})).enabled);
    }

    #[test]
    fn opentext_lfu_sessions_must_cover_the_file_exactly() {
        let reply = |n: u64, p: u64| json!({"results": {"upload_key": "k1", "num_parts": n, "part_size": p}});
        let s = Session::from_reply(&reply(3, 100), 250).expect("fits");
        assert_eq!((s.key.as_str(), s.max_retries), ("k1", DEFAULT_MAX_RETRIES));
        assert_eq!((s.slice(1, 250), s.slice(3, 250)), ((0, 100), (200, 50)));
        assert!(Session::from_reply(&reply(2, 100), 250).is_err(), "too few parts");
        assert!(Session::from_reply(&reply(4, 100), 250).is_err(), "an empty last part");
        assert!(Session::from_reply(&reply(1, 0), 250).is_err());
        assert!(Session::from_reply(&json!({"num_parts": 1, "part_size": 300}), 250).is_err(), "no key");
        let capped = json!({"upload_key": "k", "num_parts": 1, "part_size": 300, "max_retries": 1000});
        assert_eq!(Session::from_reply(&capped, 250).expect("fits").max_retries, MAX_RETRIES_CAP);
    }
}
