//! The Contentstack Content Management API client: the stack's `api_key` and the credential on
//! every call (a management token raw in `authorization`, no `Bearer`; or a session `authtoken`),
//! every call through the target's shared read or write [`Limiter`], 429s backed off
//! (exponential with jitter, bounded: Contentstack sends no `Retry-After`), and failures
//! classified from `error_message` / `error_code` / `errors`. No error text ever holds a header
//! value or a URL, so the token cannot leak through a reason.
//!
//! Decided (TARGETS.md §4 marks these UNVERIFIED): any 2xx is success (create answers 201 or
//! 200); failures are classified by HTTP status, not by `error_code` (whose values for auth are
//! not established): 401 is the credential, 412 the stack's `api_key`, both exceptions (a
//! management token does not expire mid-run, so there is nothing to renew); 408, 429 (after the
//! backoff) and 5xx are transient; every other 4xx (422 validation / not found, 409 conflicts)
//! is an exception quoting `error_message` and the field `errors`. The backoff is the SDK's shape
//! (it retries 429 five times from 300 ms) made exponential with jitter, since several workers
//! hitting one limit at once must not retry in step.

use super::limiter::Limiter;
use crate::config::contentstack::{ContentstackConfig, Credential};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Calls made for one request while Contentstack answers 429 (the first one included).
pub const MAX_ATTEMPTS: u32 = 5;
/// The first wait after a 429; doubled for each further one, with up to 50 % jitter.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Why a Contentstack call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Worth trying again later: network, 5xx, 429 after the backoff.
    #[error("{0}")]
    Transient(String),
    /// The stack refused the API key or the credential (401, 412).
    #[error("Contentstack refused the {what} ({status}, error_code {code}): {message}")]
    Auth {
        /// `management token`, `authtoken` or `stack api_key`.
        what: &'static str,
        /// HTTP status.
        status: u16,
        /// Contentstack's `error_code`.
        code: i64,
        /// Contentstack's `error_message` and field errors.
        message: String,
    },
    /// Refused for good (4xx): validation, not found, permissions.
    #[error("Contentstack answered {status} (error_code {code}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Contentstack's `error_code` (0 when there was none).
        code: i64,
        /// Contentstack's `error_message` and field errors.
        message: String,
    },
}

/// The connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The token could not be read.
    #[error("contentstack credential: {0}")]
    Secret(#[from] crate::config::secret::SecretError),
    /// The token cannot be sent as a header (control characters).
    #[error("contentstack credential: the token is not a valid header value")]
    BadToken,
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// A reqwest error in a few words, never with its URL.
pub fn short(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        // reqwest prints "... for url (http://...)": cut it off
        e.to_string().split(" for url (").next().unwrap_or_default().to_string()
    }
}

/// `error_message` (or `message`, `error`) and the field errors of a reply body, in one line.
pub fn error_text(body: &str) -> (i64, String) {
    let Ok(j) = serde_json::from_str::<Value>(body) else {
        let text: String = body.chars().filter(|c| !c.is_control()).take(200).collect();
        return (0, if text.trim().is_empty() { "no error message".into() } else { text });
    };
    let code = j["error_code"].as_i64().unwrap_or(0);
    let mut message = ["error_message", "message", "error"]
        .iter()
        .find_map(|k| j[*k].as_str())
        .unwrap_or("no error message")
        .to_string();
    if let Some(errors) = j["errors"].as_object().filter(|e| !e.is_empty()) {
        let parts: Vec<String> = errors
            .iter()
            .map(|(field, why)| {
                let why = match why {
                    Value::Array(list) => {
                        list.iter().map(|w| w.as_str().map_or_else(|| w.to_string(), str::to_string)).collect()
                    }
                    Value::String(s) => vec![s.clone()],
                    other => vec![other.to_string()],
                };
                format!("{field} {}", why.join(", "))
            })
            .collect();
        message = format!("{message} ({})", parts.join("; "));
    }
    (code, message)
}

/// One connection to a stack.
pub struct Client {
    http: reqwest::Client,
    base: String,
    api_key: String,
    credential: (&'static str, reqwest::header::HeaderValue),
    reads: Limiter,
    writes: Limiter,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("contentstack::Client").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Client {
    /// Reads the credential and builds the HTTP client and the two limiters.
    ///
    /// # Errors
    /// The credential is missing, unreadable or not a header value.
    pub fn new(cfg: &ContentstackConfig) -> Result<Self, SetupError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .build()?;
        let (name, secret) = match &cfg.credential {
            Credential::ManagementToken(s) => ("authorization", s.read()?),
            Credential::Authtoken(s) => ("authtoken", s.read()?),
        };
        let mut value = reqwest::header::HeaderValue::from_str(&secret).map_err(|_| SetupError::BadToken)?;
        value.set_sensitive(true);
        Ok(Self {
            http,
            base: cfg.base_url.clone(),
            api_key: cfg.api_key.clone(),
            credential: (name, value),
            reads: Limiter::per_sec(cfg.reads_per_sec),
            writes: Limiter::per_sec(cfg.writes_per_sec),
        })
    }

    fn classify(&self, status: StatusCode, body: &str) -> ApiError {
        let (code, message) = error_text(body);
        let s = status.as_u16();
        match s {
            401 => ApiError::Auth {
                what: if self.credential.0 == "authtoken" { "authtoken" } else { "management token" },
                status: s,
                code,
                message,
            },
            412 => ApiError::Auth { what: "stack api_key", status: s, code, message },
            408 => ApiError::Transient(format!("Contentstack answered 408 (request timeout): {message}")),
            s if s >= 500 => ApiError::Transient(format!("Contentstack answered {s}: {message}")),
            _ => ApiError::Rejected { status: s, code, message },
        }
    }

    /// Sends `method {base}{path}` built by `build` (called again for every attempt, so a
    /// streamed body is reopened), after waiting for a read (GET) or write slot; backs off on
    /// 429 and gives up after [`MAX_ATTEMPTS`] with a transient error.
    ///
    /// # Errors
    /// The classified failure.
    pub async fn send<F>(&self, method: Method, path: &str, build: F) -> Result<Response, ApiError>
    where
        F: Fn(RequestBuilder) -> Result<RequestBuilder, ApiError>,
    {
        let url = format!("{}{path}", self.base);
        let limiter = if method == Method::GET { &self.reads } else { &self.writes };
        let mut attempt = 0;
        loop {
            attempt += 1;
            limiter.acquire().await;
            let req = self
                .http
                .request(method.clone(), &url)
                .header("api_key", &self.api_key)
                .header(self.credential.0, self.credential.1.clone());
            let resp = build(req)?
                .send()
                .await
                .map_err(|e| ApiError::Transient(format!("Contentstack unreachable: {}", short(&e))))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            let body = resp.text().await.unwrap_or_default();
            if status != StatusCode::TOO_MANY_REQUESTS {
                return Err(self.classify(status, &body));
            }
            if attempt >= MAX_ATTEMPTS {
                return Err(ApiError::Transient(format!(
                    "Contentstack kept answering 429 (rate limit) for {method} {path} after {attempt} attempts"
                )));
            }
            let base = FIRST_BACKOFF * 2u32.pow(attempt - 1);
            let wait = base + base.mul_f64(rand::random::<f64>() * 0.5);
            tracing::info!(%method, path, attempt, wait_ms = wait.as_millis() as u64, "Contentstack 429: backing off");
            tokio::time::sleep(wait).await;
        }
    }

    /// `GET {base}{path}` with query parameters, as JSON.
    ///
    /// # Errors
    /// The classified failure, or a reply that is not JSON.
    pub async fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        let resp = self.send(Method::GET, path, |r| Ok(r.query(query))).await?;
        json_of(resp, path).await
    }

    /// `method {base}{path}?query` with a JSON body, the reply as JSON.
    ///
    /// # Errors
    /// The classified failure, or a reply that is not JSON.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: &Value,
    ) -> Result<Value, ApiError> {
        let resp = self.send(method, path, |r| Ok(r.query(query).json(body))).await?;
        json_of(resp, path).await
    }
}

/// The reply body as JSON.
///
/// # Errors
/// A reply that cannot be read or is not JSON (transient: a proxy's error page).
pub async fn json_of(resp: Response, path: &str) -> Result<Value, ApiError> {
    let text = resp.text().await.map_err(|e| ApiError::Transient(short(&e)))?;
    serde_json::from_str(&text).map_err(|_| ApiError::Transient(format!("{path}: the reply is not JSON")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contentstack_error_text_reads_message_code_and_field_errors() {
        let (code, m) = error_text(
            r#"{"error_message":"Entry creation failed.","error_code":119,"errors":{"title":["is a required field."]}}"#,
        );
        assert_eq!(code, 119);
        assert_eq!(m, "Entry creation failed. (title is a required field.)");
        assert_eq!(error_text(r#"{"message":"nope"}"#), (0, "nope".to_string()));
        assert_eq!(error_text("<html>bad gateway</html>").1, "<html>bad gateway</html>");
        assert_eq!(error_text("").1, "no error message");
    }
}
