//! The Dropbox API v2 client: access tokens from the refresh token, the three call styles, and
//! error classification.
//!
//! - **Auth**: `POST {api}/oauth2/token` (`grant_type=refresh_token`) gives a short-lived access
//!   token; it is renewed a minute before it expires, and once more on a 401
//!   `expired_access_token`.
//! - **Styles**: RPC (JSON body), upload (`Dropbox-API-Arg` header with header-safe JSON,
//!   `application/octet-stream` body), download (result in the `Dropbox-API-Result` header).
//! - **Errors** come from the `error` union, never `error_summary` (its suffix varies): 409 is an
//!   endpoint error ([`ApiError::Endpoint`] with the tag path such as `path/conflict/file`); 429
//!   (`too_many_requests`, `too_many_write_operations`) is waited out in place when
//!   `retry_after` is short; 5xx, timeouts and connection errors are transient; 400 (plain text)
//!   and the rest are permanent.

use crate::config::dropbox::DropboxConfig;
use crate::config::secret::SecretError;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// Longest `retry_after` waited for in place.
const MAX_IN_PLACE_WAIT: Duration = Duration::from_secs(30);
/// Throttled replies waited out in place per call.
const MAX_THROTTLED: u32 = 5;
/// A token is renewed this long before it expires.
const EARLY: Duration = Duration::from_secs(60);

/// Why a Dropbox call failed, classified for the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Worth retrying later.
    #[error("{0}")]
    Transient(String),
    /// 409: the endpoint's own error; `tag` is the union path (`path/conflict/file`).
    #[error("Dropbox refused the request: {tag}")]
    Endpoint {
        /// Tag path of the `error` union.
        tag: String,
        /// The error value as sent.
        error: Value,
    },
    /// Refused for good (bad input, no permission, revoked token).
    #[error("Dropbox answered {status}: {message}")]
    Permanent {
        /// HTTP status.
        status: u16,
        /// What it said.
        message: String,
    },
}

/// A secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A secret cannot be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The HTTP client cannot be built.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// The tag path of an `error` union: `{".tag":"path","reason":{".tag":"conflict","conflict":{".tag":"file"}}}`
/// is `path/conflict/file`. A variant's value sits under its tag's name (or `reason`).
pub fn tag_path(error: &Value) -> String {
    let mut parts = Vec::new();
    let mut v = error;
    for _ in 0..8 {
        let Some(tag) = v.get(".tag").and_then(Value::as_str) else { break };
        parts.push(tag.to_string());
        match v
            .get(tag)
            .filter(|n| n.get(".tag").is_some())
            .or_else(|| v.get("reason").filter(|n| n.get(".tag").is_some()))
        {
            Some(next) => v = next,
            None => break,
        }
    }
    if parts.is_empty()
        && let Some(reason) = v.get("reason")
    {
        return tag_path(reason);
    }
    parts.join("/")
}

/// JSON for an HTTP header: U+007F and every non-ASCII character as `\uXXXX` (UTF-16), as
/// Dropbox requires for `Dropbox-API-Arg`.
pub fn header_safe_json(v: &Value) -> String {
    let text = v.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if (c as u32) < 0x7f {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Classifies a failed reply.
pub fn classify(status: StatusCode, body: &str) -> ApiError {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let error = json.as_ref().and_then(|j| j.get("error")).cloned().unwrap_or(Value::Null);
    match status.as_u16() {
        409 => ApiError::Endpoint { tag: tag_path(&error), error },
        401 => {
            let tag = tag_path(&error);
            ApiError::Permanent { status: 401, message: if tag.is_empty() { "unauthorized".into() } else { tag } }
        }
        429 => ApiError::Transient(format!("Dropbox is rate limiting ({})", tag_path(&error))),
        s if s >= 500 => ApiError::Transient(format!("Dropbox answered {s}")),
        s => ApiError::Permanent {
            status: s,
            message: json
                .as_ref()
                .and_then(|j| j.get("error_summary").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| body.chars().take(300).collect()),
        },
    }
}

fn retry_after(resp_headers: &reqwest::header::HeaderMap, body: &str) -> Duration {
    let from_body =
        serde_json::from_str::<Value>(body).ok().and_then(|j| j.pointer("/error/retry_after").and_then(Value::as_u64));
    let from_header =
        resp_headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    Duration::from_secs(from_body.or(from_header).unwrap_or(1))
}

/// One connection to Dropbox.
pub struct Client {
    http: reqwest::Client,
    api: String,
    content: String,
    app_key: String,
    app_secret: Option<String>,
    refresh_token: String,
    token: Mutex<Option<(String, Instant)>>,
    limit: Semaphore,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("dropbox::Client").field("api", &self.api).finish_non_exhaustive()
    }
}

/// Which host a route lives on.
#[derive(Debug, Clone, Copy)]
pub enum Host {
    /// `api.dropboxapi.com`: RPC.
    Api,
    /// `content.dropboxapi.com`: upload and download.
    Content,
}

impl Client {
    /// Reads the secrets and builds the HTTP client.
    ///
    /// # Errors
    /// A secret is missing or unreadable.
    pub fn new(cfg: &DropboxConfig) -> Result<Self, SetupError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(cfg.concurrency)
            .build()?;
        Ok(Self {
            http,
            api: cfg.api_url.clone(),
            content: cfg.content_url.clone(),
            app_key: cfg.app_key.clone(),
            app_secret: cfg.app_secret.as_ref().map(|s| s.read()).transpose()?,
            refresh_token: cfg.refresh_token.read()?,
            token: Mutex::new(None),
            limit: Semaphore::new(cfg.concurrency),
        })
    }

    async fn access_token(&self, renew: bool) -> Result<String, ApiError> {
        let mut token = self.token.lock().await;
        if !renew
            && let Some((t, until)) = token.as_ref()
            && Instant::now() + EARLY < *until
        {
            return Ok(t.clone());
        }
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", self.refresh_token.clone()),
            ("client_id", self.app_key.clone()),
        ];
        if let Some(s) = &self.app_secret {
            form.push(("client_secret", s.clone()));
        }
        let resp = self
            .http
            .post(format!("{}/oauth2/token", self.api))
            .form(&form)
            .send()
            .await
            .map_err(|e| ApiError::Transient(format!("Dropbox token endpoint unreachable: {e}")))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                ApiError::Transient(format!("Dropbox token endpoint answered {status}"))
            } else {
                // e.g. invalid_grant: the refresh token was revoked; never echo the token
                let what = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|j| j.get("error").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_default();
                ApiError::Permanent { status: status.as_u16(), message: format!("token refresh refused ({what})") }
            });
        }
        let j: Value = serde_json::from_str(&body)
            .map_err(|_| ApiError::Transient("Dropbox token endpoint sent no JSON".into()))?;
        let access =
            j["access_token"].as_str().ok_or_else(|| ApiError::Transient("no access_token in reply".into()))?;
        let ttl = Duration::from_secs(j["expires_in"].as_u64().unwrap_or(14_400));
        *token = Some((access.to_string(), Instant::now() + ttl));
        Ok(access.to_string())
    }

    /// `{host}/2/{route}`.
    pub fn url(&self, host: Host, route: &str) -> String {
        let base = match host {
            Host::Api => &self.api,
            Host::Content => &self.content,
        };
        format!("{base}/2/{route}")
    }

    /// Sends a request built by `build` (called again for each attempt) with the bearer token;
    /// renews the token once on 401, waits out short 429s. Returns the successful response.
    ///
    /// # Errors
    /// The classified failure.
    pub async fn send<F, Fut>(&self, build: F) -> Result<Response, ApiError>
    where
        F: Fn(reqwest::Client) -> Fut,
        Fut: Future<Output = Result<RequestBuilder, ApiError>>,
    {
        let _permit = self.limit.acquire().await.map_err(|_| ApiError::Transient("client closed".into()))?;
        let mut renewed = false;
        let mut throttled = 0;
        loop {
            let token = self.access_token(false).await?;
            let resp = build(self.http.clone())
                .await?
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|e| ApiError::Transient(format!("Dropbox unreachable: {}", without_url(&e))))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            let headers = resp.headers().clone();
            let body = resp.text().await.unwrap_or_default();
            if status == StatusCode::UNAUTHORIZED && !renewed && body.contains("expired_access_token") {
                renewed = true;
                self.access_token(true).await?;
                continue;
            }
            if status == StatusCode::TOO_MANY_REQUESTS && throttled < MAX_THROTTLED {
                let wait = retry_after(&headers, &body);
                if wait <= MAX_IN_PLACE_WAIT {
                    throttled += 1;
                    tracing::debug!(wait_s = wait.as_secs(), "Dropbox asked to slow down");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Err(classify(status, &body));
        }
    }

    /// An RPC call with a JSON body.
    ///
    /// # Errors
    /// The classified failure, or a reply that is not JSON.
    pub async fn rpc(&self, route: &str, arg: &Value) -> Result<Value, ApiError> {
        let url = self.url(Host::Api, route);
        let resp = self.send(|http| std::future::ready(Ok(http.post(&url).json(arg)))).await?;
        let text = resp.text().await.map_err(|e| ApiError::Transient(without_url(&e)))?;
        if text.trim().is_empty() || text.trim() == "null" {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|_| ApiError::Transient(format!("{route}: the reply is not JSON")))
    }

    /// An upload-style call: `arg` in `Dropbox-API-Arg`, the body from `body` (made again for
    /// each attempt, so a file part can be reopened).
    ///
    /// # Errors
    /// The classified failure.
    pub async fn upload<B, BF>(&self, route: &str, arg: &Value, body: B) -> Result<Value, ApiError>
    where
        B: Fn() -> BF,
        BF: Future<Output = Result<reqwest::Body, ApiError>>,
    {
        let url = self.url(Host::Content, route);
        let header = header_safe_json(arg);
        let resp = self
            .send(|http| {
                let (url, header) = (url.clone(), header.clone());
                let b = body();
                async move {
                    Ok(http
                        .post(url)
                        .header("Dropbox-API-Arg", header)
                        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                        .body(b.await?))
                }
            })
            .await?;
        let text = resp.text().await.map_err(|e| ApiError::Transient(without_url(&e)))?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A download-style call: the result from `Dropbox-API-Result`, and the response to stream.
    ///
    /// # Errors
    /// The classified failure.
    pub async fn download(&self, arg: &Value) -> Result<(Value, Response), ApiError> {
        let url = self.url(Host::Content, "files/download");
        let header = header_safe_json(arg);
        let resp =
            self.send(|http| std::future::ready(Ok(http.post(&url).header("Dropbox-API-Arg", header.clone())))).await?;
        let result = resp
            .headers()
            .get("dropbox-api-result")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or(Value::Null);
        Ok((result, resp))
    }
}

/// A reqwest error in a few words.
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        // Dropbox URLs carry no arguments or secrets (those travel in headers)
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_error_union_gives_the_tag_path() {
        let conflict =
            json!({".tag":"path","reason":{".tag":"conflict","conflict":{".tag":"file"}},"upload_session_id":null});
        assert_eq!(tag_path(&conflict), "path/conflict/file");
        assert_eq!(tag_path(&json!({".tag":"path","path":{".tag":"not_found"}})), "path/not_found");
        assert_eq!(
            tag_path(&json!({"reason":{".tag":"too_many_write_operations"},"retry_after":1})),
            "too_many_write_operations"
        );
        assert_eq!(tag_path(&json!({".tag":"reset"})), "reset");
        let body = r#"{"error_summary":"path/conflict/file/..","error":{".tag":"path","reason":{".tag":"conflict","conflict":{".tag":"file"}}}}"#;
        assert!(
            matches!(classify(StatusCode::CONFLICT, body), ApiError::Endpoint { tag, .. } if tag == "path/conflict/file")
        );
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, "Error in call to API function"),
            ApiError::Permanent { status: 400, .. }
        ));
        assert!(matches!(classify(StatusCode::SERVICE_UNAVAILABLE, ""), ApiError::Transient(_)));
    }

    #[test]
    fn header_json_escapes_everything_outside_ascii() {
        let v = json!({"path": "/Fakturor/Räkning 😀.pdf"});
        let h = header_safe_json(&v);
        assert!(h.is_ascii(), "{h}");
        assert!(h.contains("R\\u00e4kning \\ud83d\\ude00.pdf"), "{h}");
        assert_eq!(serde_json::from_str::<Value>(&h).expect("still JSON"), v);
        assert!(header_safe_json(&json!({"p": "\u{7f}"})).contains("\\u007f"));
    }

    #[test]
    fn retry_after_comes_from_the_body_or_the_header() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h, r#"{"error":{"retry_after":7}}"#), Duration::from_secs(7));
        h.insert("retry-after", reqwest::header::HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h, "not json"), Duration::from_secs(3));
        assert_eq!(retry_after(&reqwest::header::HeaderMap::new(), ""), Duration::from_secs(1));
    }
}
