//! `[targets.dropbox]`: the settings of a Dropbox target (API v2, OAuth2 refresh token).
//!
//! ```toml
//! [[targets]]
//! name = "dropbox-projects"
//! type = "dropbox"
//! [targets.dropbox]
//! app_key = "abc123"                              # the app's key (OAuth client_id)
//! app_secret_env = "WHARF_DROPBOX_SECRET"         # or app_secret_file; absent for a PKCE app
//! refresh_token_env = "WHARF_DROPBOX_REFRESH"     # or refresh_token_file
//! root = "/wharf"                                 # the rules' destinations are resolved under it
//! timeout_secs = 120
//! concurrency = 8                                 # requests in flight at most
//! single_upload_max_mib = 150                     # larger bodies go through upload sessions
//! chunk_mib = 8                                   # session chunk (a multiple of 4 MiB)
//! batch_max = 100                                 # files committed per finish_batch_v2 (1: no batching)
//! batch_wait_ms = 200                             # how long a commit waits for company
//! # api_url = "https://api.dropboxapi.com"        # emulators and proxies
//! # content_url = "https://content.dropboxapi.com"
//! ```
//! Secrets are never in the file itself, so they never appear in a config dump or an error.

use super::locate::{Checker, KeyPath};
use super::secret::{self, SecretSource};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// `[targets.dropbox]` as written.
#[derive(Debug, Deserialize)]
pub struct RawDropbox {
    /// OAuth client id.
    pub app_key: String,
    /// Environment variable holding the app secret.
    pub app_secret_env: Option<String>,
    /// File holding the app secret.
    pub app_secret_file: Option<String>,
    /// Environment variable holding the refresh token.
    pub refresh_token_env: Option<String>,
    /// File holding the refresh token.
    pub refresh_token_file: Option<String>,
    /// Folder destinations are resolved under.
    pub root: Option<String>,
    /// Per-request timeout.
    pub timeout_secs: Option<u64>,
    /// Requests in flight at most.
    pub concurrency: Option<usize>,
    /// Largest body sent in one `upload` call, MiB.
    pub single_upload_max_mib: Option<u64>,
    /// The same in bytes (tests).
    pub single_upload_max_bytes: Option<u64>,
    /// Upload session chunk, MiB.
    pub chunk_mib: Option<u64>,
    /// Files per `finish_batch_v2`.
    pub batch_max: Option<usize>,
    /// Wait for more files to batch, ms.
    pub batch_wait_ms: Option<u64>,
    /// RPC host.
    pub api_url: Option<String>,
    /// Content host.
    pub content_url: Option<String>,
}

/// A validated Dropbox target.
#[derive(Debug, Clone)]
pub struct DropboxConfig {
    /// OAuth client id.
    pub app_key: String,
    /// App secret, if the app has one.
    pub app_secret: Option<SecretSource>,
    /// The refresh token.
    pub refresh_token: SecretSource,
    /// Root folder (`/wharf`, or empty for the whole Dropbox).
    pub root: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Largest single `upload`, bytes.
    pub single_upload_max: u64,
    /// Session chunk, bytes.
    pub chunk: u64,
    /// Files per batch commit.
    pub batch_max: usize,
    /// Wait for company before a batch commit.
    pub batch_wait: Duration,
    /// RPC base URL.
    pub api_url: String,
    /// Content base URL.
    pub content_url: String,
}

/// Dropbox's limit for one upload request.
pub const MAX_SINGLE: u64 = 150 << 20;
const BLOCK: u64 = 4 << 20;

fn url(raw: &Option<String>, default: &str, key: &KeyPath, ck: &mut Checker<'_>) -> String {
    secret::http_url(raw.as_deref().unwrap_or(default), key, ck)
}

/// Validates `[targets.dropbox]`; every problem is reported with its key.
pub fn build(raw: &RawDropbox, key: &KeyPath, base: &Path, ck: &mut Checker<'_>) -> Option<DropboxConfig> {
    let before = ck.problems.len();
    if raw.app_key.trim().is_empty() {
        ck.report(&key.key("app_key"), "must be the app key (OAuth client_id)");
    }
    let app_secret = secret::from_keys(
        &raw.app_secret_env,
        &raw.app_secret_file,
        key,
        ("app_secret_env", "app_secret_file"),
        base,
        ck,
    );
    let refresh = secret::from_keys(
        &raw.refresh_token_env,
        &raw.refresh_token_file,
        key,
        ("refresh_token_env", "refresh_token_file"),
        base,
        ck,
    );
    if refresh.is_none() && raw.refresh_token_env.is_none() && raw.refresh_token_file.is_none() {
        ck.report(&key.key("refresh_token_env"), "give `refresh_token_env` or `refresh_token_file`");
    }
    let root = raw.root.as_deref().unwrap_or("").trim_end_matches('/').to_string();
    if !root.is_empty()
        && (!root.starts_with('/') || root[1..].split('/').any(|c| c.is_empty() || c == ".." || c == "."))
    {
        ck.report(&key.key("root"), "must be an absolute Dropbox folder such as `/wharf` (no `.` or `..`)");
    }
    let single_upload_max = match (raw.single_upload_max_mib, raw.single_upload_max_bytes) {
        (Some(_), Some(_)) => {
            ck.report(&key.key("single_upload_max_bytes"), "give `single_upload_max_mib` or `_bytes`, not both");
            MAX_SINGLE
        }
        (Some(m), None) => m.saturating_mul(1 << 20),
        (None, Some(b)) => b,
        (None, None) => MAX_SINGLE,
    };
    if single_upload_max == 0 || single_upload_max > MAX_SINGLE {
        ck.report(&key.key("single_upload_max_mib"), "must be between 1 byte and 150 MiB (Dropbox's limit)");
    }
    let chunk = raw.chunk_mib.unwrap_or(8).saturating_mul(1 << 20);
    if chunk == 0 || !chunk.is_multiple_of(BLOCK) || chunk > MAX_SINGLE {
        ck.report(&key.key("chunk_mib"), "must be a multiple of 4 up to 148 (MiB)");
    }
    let batch_max = raw.batch_max.unwrap_or(100);
    if batch_max == 0 || batch_max > 1000 {
        ck.report(&key.key("batch_max"), "must be between 1 and 1000 (finish_batch_v2's limit)");
    }
    let concurrency = raw.concurrency.unwrap_or(8);
    if concurrency == 0 || concurrency > 256 {
        ck.report(&key.key("concurrency"), "must be between 1 and 256");
    }
    let timeout = raw.timeout_secs.unwrap_or(120);
    if timeout == 0 || timeout > 3600 {
        ck.report(&key.key("timeout_secs"), "must be between 1 and 3600");
    }
    let api_url = url(&raw.api_url, "https://api.dropboxapi.com", &key.key("api_url"), ck);
    let content_url = url(&raw.content_url, "https://content.dropboxapi.com", &key.key("content_url"), ck);
    if ck.problems.len() != before {
        return None;
    }
    Some(DropboxConfig {
        app_key: raw.app_key.clone(),
        app_secret,
        refresh_token: refresh?,
        root,
        timeout: Duration::from_secs(timeout),
        concurrency,
        single_upload_max,
        chunk,
        batch_max,
        batch_wait: Duration::from_millis(raw.batch_wait_ms.unwrap_or(200)),
        api_url,
        content_url,
    })
}
