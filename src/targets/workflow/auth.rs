//! OAuth2 client credentials against the tenant's token endpoint, with the token kept until
//! shortly before it expires and renewed on demand (after a 401).
//!
//! Decided (TARGETS.md §3 marks the reply UNVERIFIED): the request is the vendor demo's JSON
//! body `{"client_id","client_secret","grant_type":"client_credentials"}` (the documented form);
//! the reply is read as RFC 6749 §5.1 `access_token` + `expires_in` (default 3600 s when absent),
//! because the tenant's authority is OTDS, a standard OAuth server. There is no refresh token
//! in client credentials: renewal is a new grant.

use super::error::{Error, message_of, redact, short};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Renew at most this long before expiry (less for short-lived tokens: a fifth of their life).
const EARLY: Duration = Duration::from_secs(60);

struct Token {
    access: String,
    renew_at: Instant,
}

/// The credentials and the current token.
pub struct Auth {
    token_url: String,
    client_id: String,
    client_secret: String,
    token: Mutex<Option<Token>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("workflow::Auth").field("token_url", &self.token_url).finish_non_exhaustive()
    }
}

impl Auth {
    /// Credentials for `token_url` (the secret already read).
    pub fn new(token_url: String, client_id: String, client_secret: String) -> Self {
        Self { token_url, client_id, client_secret, token: Mutex::new(None) }
    }

    /// The secret, for scrubbing messages.
    pub fn secret(&self) -> &str {
        &self.client_secret
    }

    async fn grant(&self, http: &reqwest::Client) -> Result<Token, Error> {
        let body = json!({
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "grant_type": "client_credentials",
        });
        let resp = http.post(&self.token_url).json(&body).send().await.map_err(|e| Error::Transient {
            message: format!("token endpoint unreachable: {}", short(&e)),
            retry_after: None,
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let said = || redact(&message_of(&text), &self.client_secret);
        match status {
            200..=299 => {}
            429 | 500..=599 => {
                return Err(Error::Transient {
                    message: format!("token endpoint answered {status}: {}", said()),
                    retry_after: None,
                });
            }
            _ => return Err(Error::Credentials(format!("token request answered {status}: {}", said()))),
        }
        let j: Value =
            serde_json::from_str(&text).map_err(|_| Error::Protocol("the token reply is not JSON".into()))?;
        let access = j["access_token"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::Protocol("the token reply has no access_token".into()))?
            .to_string();
        let ttl = j["expires_in"].as_u64().or_else(|| j["expires_in"].as_str().and_then(|s| s.parse().ok()));
        let ttl = Duration::from_secs(ttl.unwrap_or(3600));
        let early = EARLY.min(ttl / 5);
        Ok(Token { access, renew_at: Instant::now() + ttl - early })
    }

    /// The current token, or a new one when it is (nearly) expired, or when `renew` is set
    /// and the caller's `rejected` token is still the current one (another task may have
    /// renewed it already).
    ///
    /// # Errors
    /// The token endpoint failed or refused the client.
    pub async fn bearer(&self, http: &reqwest::Client, rejected: Option<&str>) -> Result<String, Error> {
        let mut token = self.token.lock().await;
        if let Some(t) = token.as_ref()
            && Instant::now() < t.renew_at
            && rejected != Some(t.access.as_str())
        {
            return Ok(t.access.clone());
        }
        let fresh = self.grant(http).await?;
        let access = fresh.access.clone();
        *token = Some(fresh);
        Ok(access)
    }
}
