//! The Canto API client: OAuth2 client credentials (query parameters, camelCase reply), the
//! token renewed before it expires (by its refresh token, else a new client-credentials grant)
//! and once more on a 401; short 429s waited out; failures classified for the pipeline.
//! The app secret travels in the token URL's query, so no error text ever includes a URL.

use crate::config::canto::CantoConfig;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Renew a token this long before it expires.
const EARLY: Duration = Duration::from_secs(60);
/// 429s waited out in place per call.
const MAX_THROTTLED: u32 = 3;

/// Why a Canto call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Worth trying again later (network, 429, 5xx).
    #[error("{0}")]
    Transient(String),
    /// The asset (or route) does not exist.
    #[error("Canto: not found")]
    NotFound,
    /// Refused for good.
    #[error("Canto answered {status}: {message}")]
    Permanent {
        /// HTTP status.
        status: u16,
        /// What it said (no secrets).
        message: String,
    },
}

/// The connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The secret could not be read.
    #[error("app secret: {0}")]
    Secret(#[from] crate::config::secret::SecretError),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

struct Token {
    access: String,
    until: Instant,
    refresh: Option<String>,
}

/// One connection to a Canto tenant.
pub struct Client {
    http: reqwest::Client,
    base: String,
    oauth: String,
    app_id: String,
    app_secret: String,
    scope: String,
    token: Mutex<Option<Token>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("canto::Client").field("base", &self.base).finish_non_exhaustive()
    }
}

/// A reqwest error in a few words, never with its URL (the token URL holds the secret).
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

/// Classifies a failed reply.
pub fn classify(status: StatusCode, body: &str) -> ApiError {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|j| j.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect());
    match status.as_u16() {
        404 => ApiError::NotFound,
        429 => ApiError::Transient("Canto is rate limiting (429)".into()),
        s if s >= 500 => ApiError::Transient(format!("Canto answered {s}")),
        s => ApiError::Permanent { status: s, message },
    }
}

impl Client {
    /// Reads the secret and builds the HTTP client.
    ///
    /// # Errors
    /// The secret is missing or unreadable.
    pub fn new(cfg: &CantoConfig) -> Result<Self, SetupError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .build()?;
        Ok(Self {
            http,
            base: cfg.base_url.clone(),
            oauth: cfg.oauth_url.clone(),
            app_id: cfg.app_id.clone(),
            app_secret: cfg.app_secret.read()?,
            scope: cfg.scope.clone(),
            token: Mutex::new(None),
        })
    }

    /// The plain HTTP client (the storage POST and pre-signed downloads carry no token).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `{base}{path}`, e.g. `/api/v1/search`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn grant(&self, refresh: Option<&str>) -> Result<Token, ApiError> {
        let mut q = vec![
            ("app_id", self.app_id.as_str()),
            ("app_secret", self.app_secret.as_str()),
            ("scope", self.scope.as_str()),
        ];
        match refresh {
            Some(r) => q.extend([("grant_type", "refresh_token"), ("refresh_token", r)]),
            None => q.push(("grant_type", "client_credentials")),
        }
        let resp = self
            .http
            .post(format!("{}/oauth/api/oauth2/token", self.oauth))
            .query(&q)
            .send()
            .await
            .map_err(|e| ApiError::Transient(format!("Canto token endpoint unreachable: {}", short(&e))))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(match classify(status, &body) {
                ApiError::Permanent { status, message } => {
                    ApiError::Permanent { status, message: format!("token request refused ({message})") }
                }
                ApiError::NotFound => ApiError::Permanent { status: 404, message: "no token endpoint".into() },
                t => t,
            });
        }
        let j: Value =
            serde_json::from_str(&body).map_err(|_| ApiError::Transient("Canto token endpoint sent no JSON".into()))?;
        let access = j["accessToken"]
            .as_str()
            .ok_or_else(|| ApiError::Transient("no accessToken in the token reply".into()))?
            .to_string();
        let ttl = j["expiresIn"].as_u64().or_else(|| j["expiresIn"].as_str().and_then(|s| s.parse().ok()));
        Ok(Token {
            access,
            until: Instant::now() + Duration::from_secs(ttl.unwrap_or(3600)),
            refresh: j["refreshToken"].as_str().map(str::to_string),
        })
    }

    async fn access_token(&self, renew: bool) -> Result<String, ApiError> {
        let mut token = self.token.lock().await;
        if let Some(t) = token.as_ref()
            && !renew
            && Instant::now() + EARLY < t.until
        {
            return Ok(t.access.clone());
        }
        let refresh = token.as_ref().and_then(|t| t.refresh.clone());
        let fresh = match refresh {
            Some(r) => match self.grant(Some(&r)).await {
                Ok(t) => t,
                Err(ApiError::Transient(m)) => return Err(ApiError::Transient(m)),
                // a refused refresh token: start over with the client credentials
                Err(_) => self.grant(None).await?,
            },
            None => self.grant(None).await?,
        };
        let access = fresh.access.clone();
        *token = Some(fresh);
        Ok(access)
    }

    /// Sends a request built by `build` (called again per attempt) with the bearer token;
    /// renews the token once on 401, waits out short 429s.
    ///
    /// # Errors
    /// The classified failure.
    pub async fn send<F>(&self, build: F) -> Result<Response, ApiError>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let (mut renewed, mut throttled) = (false, 0);
        loop {
            let token = self.access_token(false).await?;
            let resp = build(&self.http)
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|e| ApiError::Transient(format!("Canto unreachable: {}", short(&e))))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(1);
            let body = resp.text().await.unwrap_or_default();
            if status == StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                self.access_token(true).await?;
                continue;
            }
            if status == StatusCode::TOO_MANY_REQUESTS && throttled < MAX_THROTTLED && retry_after <= 10 {
                throttled += 1;
                tokio::time::sleep(Duration::from_secs(retry_after)).await;
                continue;
            }
            return Err(classify(status, &body));
        }
    }

    /// `GET {base}{path}` with query parameters, as JSON.
    ///
    /// # Errors
    /// The classified failure, or a reply that is not JSON.
    pub async fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        let url = self.url(path);
        let resp = self.send(|h| h.get(&url).query(query)).await?;
        let text = resp.text().await.map_err(|e| ApiError::Transient(short(&e)))?;
        serde_json::from_str(&text).map_err(|_| ApiError::Transient(format!("{path}: the reply is not JSON")))
    }

    /// `GET {base}{path}` as text.
    ///
    /// # Errors
    /// The classified failure.
    pub async fn get_text(&self, path: &str) -> Result<String, ApiError> {
        let url = self.url(path);
        let resp = self.send(|h| h.get(&url)).await?;
        resp.text().await.map_err(|e| ApiError::Transient(short(&e)))
    }

    /// `PUT {base}{path}` with a JSON body; the reply as text.
    ///
    /// # Errors
    /// The classified failure.
    pub async fn put_json(&self, path: &str, body: &Value) -> Result<String, ApiError> {
        let url = self.url(path);
        let resp = self.send(|h| h.put(&url).json(body)).await?;
        resp.text().await.map_err(|e| ApiError::Transient(short(&e)))
    }
}
