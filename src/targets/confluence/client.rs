//! The Confluence Cloud REST client: authentication, JSON calls, cursor paging and error
//! classification.
//!
//! - **Auth**: Basic `email:api_token` against the site, or an OAuth 2.0 (3LO) bearer token
//!   against `https://api.atlassian.com/ex/confluence/{cloudId}` (3LO calls must go there),
//!   given as is or renewed with the refresh grant ([`super::oauth`]).
//! - **Paths** are given from `/wiki` on: `/wiki/api/v2/pages/1`, `/wiki/rest/api/content/search`.
//! - **Paging** follows `_links.next` until it is absent: v2 gives it from `/wiki` on
//!   (`/wiki/api/v2/...?cursor=`), v1 relative to `_links.base`, i.e. to `/wiki`
//!   (`/rest/api/content/search?...&cursor=`).
//! - **Errors**: 429 (and 503) with a short `Retry-After` (≤ 30 s) are waited out in place a few
//!   times; 5xx, timeouts and connection failures are transient; other 4xx are permanent and
//!   carry the server's words (v2 `errors[].title`, v1 `message`). Secrets never appear: they
//!   travel in the `Authorization` header only, and messages are built from the reply bodies.

use crate::config::confluence::{ConfluenceAuth, ConfluenceConfig};
use crate::config::secret::SecretError;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::future::Future;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Longest `Retry-After` waited for in place.
const MAX_IN_PLACE_WAIT: Duration = Duration::from_secs(30);
/// Throttled replies waited out in place per call.
const MAX_THROTTLED: u32 = 4;
/// Pages of one listing followed at most (a loop guard).
const MAX_PAGES: usize = 10_000;

/// Why a Confluence call failed, classified for the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Worth retrying later (5xx, 429 with a long wait, timeouts, connection failures).
    #[error("{0}")]
    Transient(String),
    /// Refused for good (bad input, no permission, bad credentials, conflict).
    #[error("Confluence answered {status}: {message}")]
    Permanent {
        /// HTTP status.
        status: u16,
        /// What the server said.
        message: String,
    },
}

impl ApiError {
    /// The HTTP status of a permanent refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Permanent { status, .. } => Some(*status),
            ApiError::Transient(_) => None,
        }
    }
}

/// A secret could not be read, or the HTTP client not built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A secret cannot be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The HTTP client cannot be built.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// The server's own words from an error body: v2 `errors[].title` (and `detail`), v1 `message`,
/// otherwise the start of the text.
pub fn server_message(body: &str) -> String {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let from_json = json.as_ref().and_then(|j| {
        if let Some(errors) = j.get("errors").and_then(Value::as_array) {
            let parts: Vec<String> = errors
                .iter()
                .filter_map(|e| {
                    let title = e.get("title").and_then(Value::as_str)?;
                    Some(match e.get("detail").and_then(Value::as_str).filter(|d| !d.is_empty()) {
                        Some(d) => format!("{title} ({d})"),
                        None => title.to_string(),
                    })
                })
                .collect();
            if !parts.is_empty() {
                return Some(parts.join("; "));
            }
        }
        j.get("message").and_then(Value::as_str).map(str::to_string)
    });
    from_json.unwrap_or_else(|| body.trim().chars().take(300).collect())
}

/// Classifies a failed reply.
pub fn classify(status: StatusCode, body: &str) -> ApiError {
    let message = server_message(body);
    match status.as_u16() {
        429 => ApiError::Transient(format!("Confluence is rate limiting ({message})")),
        408 => ApiError::Transient(format!("Confluence answered 408 ({message})")),
        s if s >= 500 => ApiError::Transient(format!("Confluence answered {s} ({message})")),
        s => ApiError::Permanent { status: s, message },
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A reqwest error in a few words (URLs carry no secrets: credentials are in a header).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        e.to_string()
    }
}

#[derive(Clone)]
enum Auth {
    Basic(String, String),
    Bearer(String),
    Refresh(std::sync::Arc<super::oauth::Refresher>),
}

/// One connection to a Confluence Cloud site.
pub struct Client {
    http: reqwest::Client,
    api: String,
    site: String,
    auth: Auth,
    limit: Semaphore,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("confluence::Client").field("api", &self.api).finish_non_exhaustive()
    }
}

impl Client {
    /// Reads the secret and builds the HTTP client (nothing is sent yet).
    ///
    /// # Errors
    /// The secret is missing, unreadable or empty.
    pub fn new(cfg: &ConfluenceConfig) -> Result<Self, SetupError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(cfg.concurrency)
            .build()?;
        let auth = match &cfg.auth {
            ConfluenceAuth::Basic { email, token } => Auth::Basic(email.clone(), token.read()?),
            ConfluenceAuth::Bearer { token } => Auth::Bearer(token.read()?),
            ConfluenceAuth::Refresh(r) => Auth::Refresh(std::sync::Arc::new(super::oauth::Refresher::new(r)?)),
        };
        Ok(Self {
            http,
            api: cfg.api_base.clone(),
            site: cfg.site_url.clone(),
            auth,
            limit: Semaphore::new(cfg.concurrency),
        })
    }

    /// The absolute URL of a path given from `/wiki` on (or of an absolute URL, unchanged).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.api)
        }
    }

    /// The web address of a page from its `_links.webui` (relative to `/wiki`).
    pub fn web_link(&self, webui: &str) -> String {
        if webui.is_empty() { String::new() } else { format!("{}/wiki{webui}", self.site) }
    }

    /// Sends a request built by `build` (called again for each attempt, so a file part can be
    /// reopened) with the credentials; waits out short 429/503s. Returns the successful response.
    ///
    /// # Errors
    /// The classified failure.
    pub async fn send<F, Fut>(&self, build: F) -> Result<Response, ApiError>
    where
        F: Fn(reqwest::Client) -> Fut,
        Fut: Future<Output = Result<RequestBuilder, ApiError>>,
    {
        let _permit = self.limit.acquire().await.map_err(|_| ApiError::Transient("client closed".into()))?;
        let (mut throttled, mut renewed) = (0, false);
        loop {
            let req = build(self.http.clone()).await?.header(reqwest::header::ACCEPT, "application/json");
            let (req, refreshed) = match &self.auth {
                Auth::Basic(email, token) => (req.basic_auth(email, Some(token)), None),
                Auth::Bearer(token) => (req.bearer_auth(token), None),
                Auth::Refresh(r) => {
                    let token = r.token(&self.http).await?;
                    (req.bearer_auth(&token), Some((r, token)))
                }
            };
            let resp = req.send().await.map_err(|e| ApiError::Transient(format!("Confluence: {}", describe(&e))))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            // an access token revoked or expired early: renew it once and send again
            if status == StatusCode::UNAUTHORIZED
                && !renewed
                && let Some((r, token)) = refreshed
            {
                renewed = true;
                r.invalidate(&token).await;
                continue;
            }
            let wait = retry_after(resp.headers());
            let body = resp.text().await.unwrap_or_default();
            if matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE)
                && throttled < MAX_THROTTLED
                && let Some(wait) = wait.filter(|w| *w <= MAX_IN_PLACE_WAIT)
            {
                throttled += 1;
                tracing::debug!(wait_s = wait.as_secs(), status = status.as_u16(), "Confluence asked to slow down");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(classify(status, &body));
        }
    }

    /// A JSON call: `body` sent as JSON when given; the reply parsed (`Null` when empty).
    ///
    /// # Errors
    /// The classified failure, or a reply that is not JSON.
    pub async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, ApiError> {
        let url = self.url(path);
        let resp = self
            .send(|http| {
                let mut b = http.request(method.clone(), &url);
                if let Some(v) = body {
                    b = b.json(v);
                }
                std::future::ready(Ok(b))
            })
            .await?;
        let text = resp.text().await.map_err(|e| ApiError::Transient(describe(&e)))?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|_| ApiError::Transient(format!("{path}: the reply is not JSON")))
    }

    /// `GET path` as JSON.
    ///
    /// # Errors
    /// The classified failure.
    pub async fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.json(Method::GET, path, None).await
    }

    /// Every `results` entry of a listing, following `_links.next` until it is absent.
    ///
    /// # Errors
    /// The classified failure of any page.
    pub async fn all(&self, first: &str) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        let mut next = Some(first.to_string());
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(ApiError::Transient(format!("{first}: more than {MAX_PAGES} pages; giving up")));
            }
            let page = self.get(&path).await?;
            if let Some(r) = page.get("results").and_then(Value::as_array) {
                out.extend(r.iter().cloned());
            }
            next = page.pointer("/_links/next").and_then(Value::as_str).map(next_path);
        }
        Ok(out)
    }
}

/// `_links.next` as a path from `/wiki` on: v2 gives `/wiki/api/v2/...`, v1 `/rest/api/...`
/// (relative to `/wiki`); an absolute URL stays as it is.
pub fn next_path(next: &str) -> String {
    if next.starts_with("http://") || next.starts_with("https://") || next.starts_with("/wiki/") {
        next.to_string()
    } else {
        format!("/wiki{}{next}", if next.starts_with('/') { "" } else { "/" })
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_message_comes_from_either_dialect() {
        let v2 = r#"{"errors":[{"status":400,"code":"INVALID_REQUEST_PARAMETER","title":"Provided value for 'cursor' is not the correct type","detail":null}]}"#;
        assert_eq!(server_message(v2), "Provided value for 'cursor' is not the correct type");
        let v1 = r#"{"statusCode":404,"data":{"authorized":false},"message":"No content found with id"}"#;
        assert_eq!(server_message(v1), "No content found with id");
        assert_eq!(server_message("XSRF check failed"), "XSRF check failed");
        assert!(matches!(classify(StatusCode::UNAUTHORIZED, v1), ApiError::Permanent { status: 401, .. }));
        assert!(matches!(classify(StatusCode::BAD_GATEWAY, ""), ApiError::Transient(_)));
    }

    #[test]
    fn next_links_of_both_apis_become_wiki_paths() {
        assert_eq!(next_path("/wiki/api/v2/pages?cursor=abc"), "/wiki/api/v2/pages?cursor=abc");
        assert_eq!(
            next_path("/rest/api/content/search?cql=x&cursor=1"),
            "/wiki/rest/api/content/search?cql=x&cursor=1"
        );
        assert_eq!(next_path("https://x.atlassian.net/wiki/a"), "https://x.atlassian.net/wiki/a");
        assert_eq!(enc("type=page AND space=\"ENG\""), "type%3Dpage%20AND%20space%3D%22ENG%22");
    }
}
