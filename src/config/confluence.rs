//! `[targets.confluence]`: the settings of a Confluence Cloud target (REST v2, with v1 for CQL
//! search, labels and attachment uploads).
//!
//! ```toml
//! [[targets]]
//! name = "confluence-eng"
//! type = "confluence"
//! [targets.confluence]
//! base_url = "https://example.atlassian.net"   # the site (web links; the API for Basic auth)
//! email = "wharf@example.com"                  # Basic email:api_token ...
//! api_token_env = "WHARF_CONFLUENCE_TOKEN"     # ... or api_token_file
//! # oauth_token_env = "WHARF_CONFLUENCE_OAUTH" # or: an OAuth 2.0 (3LO) access token (or oauth_token_file)
//! # cloud_id = "a1b2c3d4-..."                  # with it, calls go to api.atlassian.com/ex/confluence/{cloudId}
//! # oauth_base_url = "http://127.0.0.1:8383/ex/confluence/a1b2..."  # emulators and proxies
//! # oauth_refresh_token_file = "secrets/confluence.refresh"  # or: refresh the access token (3LO, offline_access);
//! # oauth_client_id = "..."                                 #   the rotated refresh token is written back
//! # oauth_client_secret_env = "WHARF_CONFLUENCE_CLIENT_SECRET"  # (or oauth_client_secret_file)
//! # oauth_token_url = "https://auth.atlassian.com/oauth/token"  # the default
//! space = "ENG"                                # the space deliveries go to (key)
//! parent_page = "98305"                        # new pages go under it (default: the space homepage)
//! timeout_secs = 120                           # per request (an upload streams within it)
//! concurrency = 4                              # requests in flight at most
//! ```
//! Secrets are never in the file itself, so they never appear in a config dump or an error.

use super::locate::{Checker, KeyPath};
use super::secret::{SecretSource, from_keys as secret, http_url as url};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// `[targets.confluence]` as written.
#[derive(Debug, Deserialize)]
pub struct RawConfluence {
    /// `https://site.atlassian.net`.
    pub base_url: String,
    /// Basic auth: the account's email.
    pub email: Option<String>,
    /// Basic auth: environment variable holding the API token.
    pub api_token_env: Option<String>,
    /// Basic auth: file holding the API token.
    pub api_token_file: Option<String>,
    /// OAuth: environment variable holding the access token.
    pub oauth_token_env: Option<String>,
    /// OAuth: file holding the access token.
    pub oauth_token_file: Option<String>,
    /// OAuth: the site's cloudId.
    pub cloud_id: Option<String>,
    /// OAuth: the API base instead of `https://api.atlassian.com/ex/confluence/{cloud_id}`.
    pub oauth_base_url: Option<String>,
    /// OAuth refresh: file holding the (rotating) refresh token; wharf rewrites it.
    pub oauth_refresh_token_file: Option<String>,
    /// OAuth refresh: the app's client id.
    pub oauth_client_id: Option<String>,
    /// OAuth refresh: environment variable holding the client secret.
    pub oauth_client_secret_env: Option<String>,
    /// OAuth refresh: file holding the client secret.
    pub oauth_client_secret_file: Option<String>,
    /// OAuth refresh: the token endpoint (default `https://auth.atlassian.com/oauth/token`).
    pub oauth_token_url: Option<String>,
    /// Space key deliveries go to.
    pub space: Option<String>,
    /// Page id new pages are created under.
    pub parent_page: Option<String>,
    /// Per-request timeout.
    pub timeout_secs: Option<u64>,
    /// Requests in flight at most.
    pub concurrency: Option<usize>,
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfluenceAuth {
    /// `Authorization: Basic base64(email:api_token)` against the site.
    Basic {
        /// The account's email.
        email: String,
        /// Where the API token is.
        token: SecretSource,
    },
    /// `Authorization: Bearer <token>` against `api.atlassian.com/ex/confluence/{cloudId}`.
    Bearer {
        /// Where the access token is.
        token: SecretSource,
    },
    /// Bearer tokens obtained (and renewed before they expire, and on a 401) with the refresh
    /// grant; Atlassian rotates the refresh token, so the new one replaces the file's.
    Refresh(OAuthRefresh),
}

/// The OAuth 2.0 (3LO) refresh grant's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthRefresh {
    /// The token endpoint.
    pub token_url: String,
    /// The app's client id.
    pub client_id: String,
    /// Where the client secret is.
    pub client_secret: SecretSource,
    /// The file holding the current refresh token (rewritten atomically on rotation).
    pub refresh_token_file: std::path::PathBuf,
}

/// A validated Confluence target.
#[derive(Debug, Clone)]
pub struct ConfluenceConfig {
    /// The site, `https://site.atlassian.net` (web links).
    pub site_url: String,
    /// The base the API paths (`/wiki/...`) are appended to.
    pub api_base: String,
    /// Credentials.
    pub auth: ConfluenceAuth,
    /// Space key deliveries go to.
    pub space: Option<String>,
    /// Page new pages go under.
    pub parent_page: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
}

/// `oauth_refresh_token_file` with the client id and secret, or none of them.
fn refresh_settings(raw: &RawConfluence, key: &KeyPath, base: &Path, ck: &mut Checker<'_>) -> Option<OAuthRefresh> {
    let secret_keys = ("oauth_client_secret_env", "oauth_client_secret_file");
    let Some(file) = &raw.oauth_refresh_token_file else {
        if raw.oauth_client_id.is_some()
            || raw.oauth_client_secret_env.is_some()
            || raw.oauth_client_secret_file.is_some()
        {
            ck.report(&key.key("oauth_client_id"), "the client id and secret belong to `oauth_refresh_token_file`");
        }
        return None;
    };
    let client_id = raw.oauth_client_id.clone().filter(|c| !c.trim().is_empty());
    if client_id.is_none() {
        ck.report(&key.key("oauth_client_id"), "the refresh grant needs the app's `oauth_client_id`");
    }
    let client_secret = secret(&raw.oauth_client_secret_env, &raw.oauth_client_secret_file, key, secret_keys, base, ck);
    if client_secret.is_none() && raw.oauth_client_secret_env.is_none() && raw.oauth_client_secret_file.is_none() {
        ck.report(&key.key("oauth_client_secret_env"), "the refresh grant needs `oauth_client_secret_env` or `_file`");
    }
    let token_url = match &raw.oauth_token_url {
        Some(u) => url(u, &key.key("oauth_token_url"), ck),
        None => "https://auth.atlassian.com/oauth/token".to_string(),
    };
    Some(OAuthRefresh {
        token_url,
        client_id: client_id?,
        client_secret: client_secret?,
        refresh_token_file: super::resolve(base, file),
    })
}

/// Validates `[targets.confluence]`; every problem is reported with its key.
pub fn build(raw: &RawConfluence, key: &KeyPath, base: &Path, ck: &mut Checker<'_>) -> Option<ConfluenceConfig> {
    let before = ck.problems.len();
    let site_url = url(&raw.base_url, &key.key("base_url"), ck);
    let site_url = site_url.strip_suffix("/wiki").unwrap_or(&site_url).to_string();
    let basic = secret(&raw.api_token_env, &raw.api_token_file, key, ("api_token_env", "api_token_file"), base, ck);
    let bearer =
        secret(&raw.oauth_token_env, &raw.oauth_token_file, key, ("oauth_token_env", "oauth_token_file"), base, ck);
    let refresh = refresh_settings(raw, key, base, ck);
    let bearer = match (bearer, refresh) {
        (Some(_), Some(_)) => {
            ck.report(
                &key.key("oauth_refresh_token_file"),
                "give an access token (`oauth_token_env`) or the refresh grant (`oauth_refresh_token_file`), not both",
            );
            None
        }
        (Some(token), None) => Some(ConfluenceAuth::Bearer { token }),
        (None, Some(r)) => Some(ConfluenceAuth::Refresh(r)),
        (None, None) => None,
    };
    let (auth, api_base) = match (basic, bearer) {
        (Some(token), None) => {
            let email = raw.email.clone().unwrap_or_default();
            if !email.contains('@') {
                ck.report(&key.key("email"), "Basic auth needs the account's `email` with `api_token_env`");
            }
            if raw.cloud_id.is_some() || raw.oauth_base_url.is_some() {
                ck.report(&key.key("cloud_id"), "`cloud_id` and `oauth_base_url` belong to OAuth (`oauth_token_env`)");
            }
            (Some(ConfluenceAuth::Basic { email, token }), site_url.clone())
        }
        (None, Some(oauth)) => {
            if raw.email.is_some() {
                ck.report(&key.key("email"), "`email` belongs to Basic auth (`api_token_env`), not OAuth");
            }
            let base = match (&raw.cloud_id, &raw.oauth_base_url) {
                (_, Some(b)) => url(b, &key.key("oauth_base_url"), ck),
                (Some(c), None) if !c.trim().is_empty() && c.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
                    format!("https://api.atlassian.com/ex/confluence/{}", c.trim())
                }
                _ => {
                    ck.report(&key.key("cloud_id"), "OAuth needs the site's `cloud_id` (from accessible-resources)");
                    String::new()
                }
            };
            (Some(oauth), base)
        }
        (Some(_), Some(_)) => {
            ck.report(&key.key("oauth_token_env"), "give Basic (`email` + `api_token_env`) or OAuth, not both");
            (None, String::new())
        }
        (None, None) => {
            if raw.api_token_env.is_none()
                && raw.api_token_file.is_none()
                && raw.oauth_token_env.is_none()
                && raw.oauth_token_file.is_none()
                && raw.oauth_refresh_token_file.is_none()
            {
                ck.report(
                    &key.key("api_token_env"),
                    "give `email` + `api_token_env`/`_file`, or `oauth_token_env` (or `oauth_refresh_token_file`) + `cloud_id`",
                );
            }
            (None, String::new())
        }
    };
    if let Some(s) = &raw.space
        && (s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '~' || c == '_'))
    {
        ck.report(&key.key("space"), "must be a space key such as `ENG`");
    }
    if let Some(p) = &raw.parent_page
        && (p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        ck.report(&key.key("parent_page"), "must be a page id (digits)");
    }
    let concurrency = raw.concurrency.unwrap_or(4);
    if concurrency == 0 || concurrency > 64 {
        ck.report(&key.key("concurrency"), "must be between 1 and 64");
    }
    let timeout = raw.timeout_secs.unwrap_or(120);
    if timeout == 0 || timeout > 3600 {
        ck.report(&key.key("timeout_secs"), "must be between 1 and 3600");
    }
    if ck.problems.len() != before {
        return None;
    }
    Some(ConfluenceConfig {
        site_url,
        api_base,
        auth: auth?,
        space: raw.space.clone(),
        parent_page: raw.parent_page.clone(),
        timeout: Duration::from_secs(timeout),
        concurrency,
    })
}
