//! OAuth 2.0 (3LO) access tokens for Confluence Cloud, renewed with the refresh grant.
//!
//! Atlassian's access tokens live an hour and its refresh tokens rotate: every refresh answers a
//! new refresh token and the old one stops working. So the refresher keeps the access token in
//! memory (renewed a minute before `expires_in` runs out, and at once after a 401) and writes
//! each rotated refresh token to its file atomically (temporary file in the same folder, 0600,
//! fsync, rename, folder fsync) before it uses the new access token.
//!
//! Decision (UNVERIFIED): Atlassian documents a reuse interval for rotating refresh tokens;
//! wharf does not rely on it. A crash between the token endpoint's answer and the rename can
//! still lose the rotated token; the error then says to authorise the app again.

use super::client::ApiError;
use crate::config::confluence::OAuthRefresh;
use serde_json::{Value, json};
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Renew this long before the access token expires.
const EARLY: Duration = Duration::from_secs(60);

/// A cached access token and when it stops being used.
struct Current {
    token: String,
    renew_at: Instant,
}

/// Obtains and renews access tokens with the refresh grant (one refresh at a time).
pub struct Refresher {
    cfg: OAuthRefresh,
    client_secret: String,
    current: Mutex<Option<Current>>,
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher").field("token_url", &self.cfg.token_url).finish_non_exhaustive()
    }
}

impl Refresher {
    /// A refresher reading the client secret now (the refresh token is read at each refresh).
    ///
    /// # Errors
    /// The client secret cannot be read.
    pub fn new(cfg: &OAuthRefresh) -> Result<Self, crate::config::secret::SecretError> {
        Ok(Self { client_secret: cfg.client_secret.read()?, cfg: cfg.clone(), current: Mutex::new(None) })
    }

    /// A valid access token: the cached one, or a fresh one after a refresh.
    ///
    /// # Errors
    /// The token endpoint refused (permanent) or could not be reached (transient).
    pub async fn token(&self, http: &reqwest::Client) -> Result<String, ApiError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(c.token.clone());
        }
        let fresh = self.refresh(http).await?;
        let token = fresh.token.clone();
        *current = Some(fresh);
        Ok(token)
    }

    /// Forgets the cached token (after a 401), unless another call already replaced `used`.
    pub async fn invalidate(&self, used: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| c.token == used) {
            *current = None;
        }
    }

    async fn refresh(&self, http: &reqwest::Client) -> Result<Current, ApiError> {
        let file = &self.cfg.refresh_token_file;
        let refresh_token = std::fs::read_to_string(file)
            .map_err(|e| ApiError::Permanent {
                status: 0,
                message: format!("cannot read the refresh token file {}: {e}", file.display()),
            })?
            .trim()
            .to_string();
        let body = json!({
            "grant_type": "refresh_token",
            "client_id": self.cfg.client_id,
            "client_secret": self.client_secret,
            "refresh_token": refresh_token,
        });
        let resp = http.post(&self.cfg.token_url).json(&body).send().await.map_err(|e| {
            ApiError::Transient(format!(
                "the OAuth token endpoint: {}",
                if e.is_timeout() { "timed out" } else { "unreachable" }
            ))
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let reply: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            // OAuth errors: `error` + `error_description`; neither carries a secret
            let why = [reply["error"].as_str(), reply["error_description"].as_str()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            let message = format!(
                "the OAuth token endpoint refused the refresh ({}); authorise the app again and put its refresh token in {}",
                if why.is_empty() { status.to_string() } else { why },
                file.display()
            );
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                ApiError::Transient(message)
            } else {
                ApiError::Permanent { status: status.as_u16(), message }
            });
        }
        let token = reply["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Transient("the OAuth token endpoint answered without an access_token".into()))?;
        if let Some(rotated) = reply["refresh_token"].as_str().filter(|r| !r.is_empty() && *r != refresh_token) {
            write_secret(file, rotated).map_err(|e| ApiError::Permanent {
                status: 0,
                message: format!("cannot store the rotated refresh token in {}: {e}", file.display()),
            })?;
        }
        let lifetime = Duration::from_secs(reply["expires_in"].as_u64().unwrap_or(3600));
        tracing::info!(expires_in_s = lifetime.as_secs(), "Confluence access token renewed");
        Ok(Current { token: token.to_string(), renew_at: Instant::now() + lifetime.saturating_sub(EARLY) })
    }
}

/// Replaces `path` with `value` atomically and durably, readable by its owner only.
fn write_secret(path: &std::path::Path, value: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(value.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_secret_replaces_the_file_privately() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("refresh");
        std::fs::write(&path, "old\n").expect("write");
        write_secret(&path, "new-token").expect("rotate");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new-token\n");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1, "no temporary file left");
    }
}
