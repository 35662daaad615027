//! The Content Server REST client: tickets, one concurrency limit, and error classification.
//!
//! - **Auth**: `POST /api/v1/auth` (form `username`, `password`) gives a ticket, sent as the
//!   `OTCSTicket` header; with an OTDS token, `GET /api/v1/auth` with `Authorization: Bearer`
//!   returns the ticket in the `OTCSTicket` response header. Every reply may carry a refreshed
//!   ticket in that header; it replaces the stored one. A 401 re-authenticates once and repeats
//!   the request.
//! - **Errors**: Content Server reports most failures as 400 *or 500* with `{"error": "..."}`.
//!   [`ApiError`] says which are permanent (the file goes to exceptions quoting the server), which
//!   is the name conflict (the rule's conflict policy decides) and which are transient (the
//!   pipeline retries): other 5xx, timeouts, connection errors, and 429 (its `Retry-After` is
//!   honoured here, in place, when it is short).
//! - Writes are form or multipart encoded, never JSON: Content Server does not accept JSON bodies.

use crate::config::opentext::{Credentials, OpenTextConfig};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use std::future::Future;
use std::time::Duration;
use tokio::sync::{Mutex, RwLock, Semaphore};

/// The ticket header, request and reply.
const TICKET: &str = "OTCSTicket";
/// Longest `Retry-After` waited for in place; a longer one becomes a pipeline retry.
const MAX_IN_PLACE_WAIT: Duration = Duration::from_secs(30);
/// 429 replies waited out in place per request at most.
const MAX_THROTTLED: u32 = 3;

/// Why a Content Server call failed, classified for the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Worth retrying later: 5xx without a known permanent text, 429, timeouts, connection errors.
    #[error("{0}")]
    Transient(String),
    /// The server refused the request for good; its message is quoted.
    #[error("Content Server answered {status}: {message}")]
    Permanent {
        /// HTTP status.
        status: u16,
        /// The server's `error` text.
        message: String,
    },
    /// `An item with the name '...' already exists.`
    #[error("Content Server answered 500: {0}")]
    NameConflict(String),
}

/// Texts that Content Server returns with a 500 that will not change on a retry.
const PERMANENT_500: &[&str] = &[
    "Invalid specification",
    "Could not get a node",
    "Could not locate node",
    "Sorry, the item you requested could not be accessed",
    "Missing required parameter",
    "Subtype",
    "Invalid block size",
    "Invalid BlockID",
    "has already been uploaded",
    "Argument username is required",
    "Argument password is required",
    "The attribute group",
];

/// Classifies a non-success reply by status and the server's text.
pub fn classify(status: StatusCode, message: String) -> ApiError {
    let code = status.as_u16();
    if message.contains("already exists")
        && (code == 500 || code == 400)
        && message.starts_with("An item with the name")
    {
        return ApiError::NameConflict(message);
    }
    match code {
        400 | 403 | 404 | 405 | 409 | 413 | 415 | 422 => ApiError::Permanent { status: code, message },
        500 if PERMANENT_500.iter().any(|t| message.contains(t)) => ApiError::Permanent { status: code, message },
        _ => ApiError::Transient(format!("Content Server answered {code}: {message}")),
    }
}

/// Errors building the client at start-up (credentials, CA, TLS).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The environment variable with the secret is not set.
    #[error("environment variable {0} (the Content Server secret) is not set")]
    MissingEnv(String),
    /// The secret or CA file cannot be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client could not be built (bad CA file, TLS setup).
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

enum Secret {
    Password { username: String, password: String },
    Bearer(String),
}

/// One authenticated connection to a Content Server.
pub struct Client {
    http: reqwest::Client,
    api: String,
    secret: Secret,
    ticket: RwLock<Option<String>>,
    auth: Mutex<()>,
    limit: Semaphore,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret or the ticket.
        f.debug_struct("Client").field("api", &self.api).finish_non_exhaustive()
    }
}

fn read_secret_file(path: &std::path::Path) -> Result<String, SetupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| SetupError::File { path: path.display().to_string(), source })?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

impl Client {
    /// Reads the credentials and builds the HTTP client (timeouts, extra CA).
    ///
    /// # Errors
    /// A secret or CA file is missing or unreadable.
    pub fn new(cfg: &OpenTextConfig) -> Result<Self, SetupError> {
        let env = |var: &str| std::env::var(var).map_err(|_| SetupError::MissingEnv(var.to_string()));
        let secret = match &cfg.credentials {
            Credentials::PasswordEnv { username, var } => {
                Secret::Password { username: username.clone(), password: env(var)? }
            }
            Credentials::PasswordFile { username, path } => {
                Secret::Password { username: username.clone(), password: read_secret_file(path)? }
            }
            Credentials::OtdsTokenEnv { var } => Secret::Bearer(env(var)?),
        };
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(cfg.concurrency);
        if let Some(ca) = &cfg.ca_file {
            let pem =
                std::fs::read(ca).map_err(|source| SetupError::File { path: ca.display().to_string(), source })?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Self {
            http: builder.build()?,
            api: format!("{}/api", cfg.base_url),
            secret,
            ticket: RwLock::new(None),
            auth: Mutex::new(()),
            limit: Semaphore::new(cfg.concurrency),
        })
    }

    /// `{base_url}/api` + `path` (`/v2/nodes/2000`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// A request builder on the shared HTTP client.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    async fn authenticate(&self, stale: Option<&str>) -> Result<String, ApiError> {
        let _one = self.auth.lock().await;
        // Another request re-authenticated while this one waited.
        if let Some(t) = self.ticket.read().await.clone()
            && Some(t.as_str()) != stale
        {
            return Ok(t);
        }
        let req = match &self.secret {
            Secret::Password { username, password } => self
                .request(Method::POST, "/v1/auth")
                .form(&[("username", username.as_str()), ("password", password.as_str())]),
            Secret::Bearer(token) => self.request(Method::GET, "/v1/auth").bearer_auth(token),
        };
        let resp = req.send().await.map_err(|e| ApiError::Transient(format!("authentication: {e}")))?;
        let status = resp.status();
        let header = resp.headers().get(TICKET).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = error_text(&body);
            return Err(match status.as_u16() {
                401 => ApiError::Permanent { status: 401, message: format!("authentication refused: {message}") },
                _ => classify(status, format!("authentication: {message}")),
            });
        }
        let ticket = body["ticket"].as_str().map(str::to_string).or(header).ok_or_else(|| ApiError::Permanent {
            status: status.as_u16(),
            message: "authentication succeeded but no ticket came back".into(),
        })?;
        *self.ticket.write().await = Some(ticket.clone());
        tracing::debug!("authenticated to Content Server");
        Ok(ticket)
    }

    async fn current_ticket(&self) -> Result<String, ApiError> {
        if let Some(t) = self.ticket.read().await.clone() {
            return Ok(t);
        }
        self.authenticate(None).await
    }

    /// Sends the request `build` makes (called again for a repeat: after a 401 and a fresh ticket,
    /// or after a short 429), with the ticket, under the concurrency limit; returns the reply once
    /// it is neither of those, whatever its status.
    async fn dispatch<F, Fut>(&self, build: F) -> Result<reqwest::Response, ApiError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, ApiError>>,
    {
        let mut reauthenticated = false;
        let mut throttled = 0;
        loop {
            let ticket = self.current_ticket().await?;
            let resp = {
                let _permit = self.limit.acquire().await.map_err(|_| ApiError::Transient("client closed".into()))?;
                build().await?.header(TICKET, &ticket).send().await
            };
            let resp =
                resp.map_err(|e| ApiError::Transient(format!("Content Server unreachable: {}", describe(&e))))?;
            if let Some(fresh) = resp.headers().get(TICKET).and_then(|v| v.to_str().ok())
                && fresh != ticket
            {
                *self.ticket.write().await = Some(fresh.to_string());
            }
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !reauthenticated {
                reauthenticated = true;
                tracing::info!("Content Server ticket refused; authenticating again");
                self.authenticate(Some(&ticket)).await?;
                continue;
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(&resp);
                if throttled < MAX_THROTTLED && wait.is_some_and(|w| w <= MAX_IN_PLACE_WAIT) {
                    throttled += 1;
                    let wait = wait.unwrap_or_default();
                    tracing::warn!(?wait, "Content Server is throttling (429); waiting as asked");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                let after = wait.map_or(String::new(), |w| format!("; Retry-After {} s", w.as_secs()));
                return Err(ApiError::Transient(format!("Content Server answered 429 Too Many Requests{after}")));
            }
            return Ok(resp);
        }
    }

    /// Sends the request `build` makes (see [`Self::dispatch`] for repeats) and returns the JSON
    /// reply (`Null` for an empty one).
    ///
    /// # Errors
    /// The classified failure.
    pub async fn send<F, Fut>(&self, build: F) -> Result<Value, ApiError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, ApiError>>,
    {
        let resp = self.dispatch(build).await?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| ApiError::Transient(format!("reply cut off: {}", describe(&e))))?;
        let body: Value =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        if status.is_success() {
            return Ok(body);
        }
        let text = if body.is_null() {
            String::from_utf8_lossy(&bytes).chars().take(300).collect()
        } else {
            error_text(&body)
        };
        Err(classify(status, text))
    }

    /// A request whose reply body is streamed (downloads), repeated like [`Self::send`].
    ///
    /// # Errors
    /// The classified failure of the status (errors mid-stream come through the stream).
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
    ) -> Result<impl futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + use<>, ApiError> {
        let resp = self.dispatch(|| async { Ok(self.request(method.clone(), path)) }).await?;
        let status = resp.status();
        if !status.is_success() {
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            return Err(classify(status, error_text(&body)));
        }
        Ok(resp.bytes_stream())
    }

    /// GET with query parameters, JSON reply.
    ///
    /// # Errors
    /// The classified failure.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        self.send(|| async { Ok(self.request(Method::GET, path).query(query)) }).await
    }
}

/// The server's `error` text (plus `errorDetail`), or the whole reply.
fn error_text(body: &Value) -> String {
    match (body["error"].as_str(), body["errorDetail"].as_str()) {
        (Some(e), Some(d)) if !d.is_empty() => format!("{e} ({d})"),
        (Some(e), _) => e.to_string(),
        _ if body.is_null() => "(no message)".into(),
        _ => body.to_string().chars().take(300).collect(),
    }
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opentext_errors_are_classified_by_status_and_text() {
        let c = |s: u16, m: &str| classify(StatusCode::from_u16(s).expect("status"), m.to_string());
        assert!(matches!(c(500, "An item with the name 'a.pdf' already exists."), ApiError::NameConflict(_)));
        assert!(matches!(c(400, "Missing required parameter 'name'"), ApiError::Permanent { status: 400, .. }));
        assert!(matches!(
            c(500, "Invalid specification. Invalid attribute entry found."),
            ApiError::Permanent { status: 500, .. }
        ));
        assert!(matches!(c(500, "Sorry, the item you requested could not be accessed."), ApiError::Permanent { .. }));
        assert!(matches!(c(500, "database deadlock, try again"), ApiError::Transient(_)));
        assert!(matches!(c(503, "Service Unavailable"), ApiError::Transient(_)));
        assert!(matches!(c(502, ""), ApiError::Transient(_)));
    }
}
