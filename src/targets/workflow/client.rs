//! The HTTP side of the Workflow Service: every call carries the bearer token; a 401 renews the
//! token once and repeats the call; a 429 is waited out in place when its `Retry-After` is short
//! (at most `max_retry_after`, up to [`MAX_THROTTLED`] times), else handed back as transient with
//! the wait; other failures are classified by [`super::error::classify`].

use super::auth::Auth;
use super::error::{Error, SetupError, classify, redact, short};
use crate::config::workflow::WorkflowConfig;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// 429s waited out in place per call.
pub const MAX_THROTTLED: u32 = 3;

/// One connection to a Workflow Service tenant.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    api: String,
    auth: Auth,
    max_retry_after: Duration,
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (at.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

impl Client {
    /// Reads the secret and builds the HTTP client (nothing is sent yet).
    ///
    /// # Errors
    /// The secret is missing or unreadable, or the HTTP client cannot be built.
    pub fn new(cfg: &WorkflowConfig) -> Result<Self, SetupError> {
        let secret =
            cfg.client_secret.read().map_err(|source| SetupError::Secret { service: cfg.name.clone(), source })?;
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .build()?;
        Ok(Self {
            http,
            api: cfg.api_url.clone(),
            auth: Auth::new(cfg.token_url.clone(), cfg.client_id.clone(), secret),
            max_retry_after: cfg.max_retry_after,
        })
    }

    /// `{api}{path}`, e.g. `…/workflow/v1/tasks`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// Sends one call and returns its JSON reply (`Value::Null` for an empty one). `what` names
    /// the call in errors ("to start process definition `approval` …").
    ///
    /// # Errors
    /// The classified failure, with secrets removed from every message.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, Error> {
        self.call_inner(method, path, query, body, what).await.map_err(|e| self.scrub(e))
    }

    fn scrub(&self, e: Error) -> Error {
        let s = self.auth.secret();
        match e {
            Error::Transient { message, retry_after } => Error::Transient { message: redact(&message, s), retry_after },
            Error::Refused { status, what, message } => {
                Error::Refused { status, what: redact(&what, s), message: redact(&message, s) }
            }
            Error::Credentials(m) => Error::Credentials(redact(&m, s)),
            Error::Protocol(m) => Error::Protocol(redact(&m, s)),
            Error::Invalid(m) => Error::Invalid(redact(&m, s)),
            e @ Error::NotFound { .. } => e,
        }
    }

    async fn call_inner(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, Error> {
        let url = self.url(path);
        let (mut rejected, mut renewed, mut throttled): (Option<String>, bool, u32) = (None, false, 0);
        loop {
            let token = self.auth.bearer(&self.http, rejected.as_deref()).await?;
            let mut req = self.http.request(method.clone(), &url).query(query).bearer_auth(&token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| Error::Transient { message: format!("{} ({what})", short(&e)), retry_after: None })?;
            let status = resp.status().as_u16();
            let wait = retry_after(resp.headers());
            let text = resp
                .text()
                .await
                .map_err(|e| Error::Transient { message: format!("{} ({what})", short(&e)), retry_after: None })?;
            if (200..300).contains(&status) {
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                return serde_json::from_str(&text)
                    .map_err(|_| Error::Protocol(format!("the reply {what} is not JSON")));
            }
            if status == 401 && !renewed {
                tracing::info!("workflow service refused the bearer token (401); renewing it once");
                renewed = true;
                rejected = Some(token);
                continue;
            }
            if status == 429 {
                let w = wait.unwrap_or(Duration::from_secs(1));
                if throttled < MAX_THROTTLED && w <= self.max_retry_after {
                    throttled += 1;
                    tracing::info!(
                        wait_secs = w.as_secs(),
                        "workflow service is rate limiting (429); waiting as asked"
                    );
                    tokio::time::sleep(w).await;
                    continue;
                }
                return Err(classify(status, &text, what, Some(w)));
            }
            if status == 401 {
                return Err(Error::Credentials(format!(
                    "a freshly issued token was refused too ({})",
                    super::error::message_of(&text)
                )));
            }
            return Err(classify(status, &text, what, wait));
        }
    }
}
