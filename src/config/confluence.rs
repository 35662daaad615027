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

/// Validates `[targets.confluence]`; every problem is reported with its key.
pub fn build(raw: &RawConfluence, key: &KeyPath, base: &Path, ck: &mut Checker<'_>) -> Option<ConfluenceConfig> {
    let before = ck.problems.len();
    let site_url = url(&raw.base_url, &key.key("base_url"), ck);
    let site_url = site_url.strip_suffix("/wiki").unwrap_or(&site_url).to_string();
    let basic = secret(&raw.api_token_env, &raw.api_token_file, key, ("api_token_env", "api_token_file"), base, ck);
    let bearer =
        secret(&raw.oauth_token_env, &raw.oauth_token_file, key, ("oauth_token_env", "oauth_token_file"), base, ck);
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
        (None, Some(token)) => {
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
            (Some(ConfluenceAuth::Bearer { token }), base)
        }
        (Some(_), Some(_)) => {
            ck.report(&key.key("oauth_token_env"), "give Basic (`email` + `api_token_env`) or OAuth, not both");
            (None, String::new())
        }
        (None, None) => {
            if raw.api_token_env.is_none() && raw.oauth_token_env.is_none() {
                ck.report(
                    &key.key("api_token_env"),
                    "give `email` + `api_token_env`/`_file`, or `oauth_token_env` + `cloud_id`",
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
