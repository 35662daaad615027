//! The emulator's starting content and knobs, read from JSON (`deploy/dropbox-emulator.seed.json`).
//!
//! Format (every key optional; a missing key takes the default shown):
//! ```json
//! {
//!   "app_key": "wharf-app", "app_secret": "wharf-secret", "refresh_token": "wharf-refresh",
//!   "access_token_ttl_secs": 14400,
//!   "write_concurrency": 1, "write_lock_wait_ms": 0, "commit_ms": 10,
//!   "session_ttl_secs": 604800,
//!   "folders": ["/Inbox"],
//!   "files": [{"path": "/Projects/V10001/Final/Contract-2026-001.pdf", "content": "..."}]
//! }
//! ```
//! `write_concurrency` commits may hold the namespace write lock at once; a commit finding it taken
//! waits up to `write_lock_wait_ms`, then answers 429 `too_many_write_operations`. A commit holds
//! the lock for `commit_ms` (Dropbox commits take time; without it concurrent writers would never
//! collide). Parent folders of files and folders are created as needed.

use super::paths;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// Everything the emulator starts with: the app's credentials, the namespace lock, files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Seed {
    /// The app key (`client_id`).
    pub app_key: String,
    /// The app secret (`client_secret`).
    pub app_secret: String,
    /// The one refresh token `/oauth2/token` accepts.
    pub refresh_token: String,
    /// Lifetime of issued access tokens (`expires_in`).
    pub access_token_ttl_secs: u64,
    /// Commits allowed to hold the namespace write lock at once.
    pub write_concurrency: usize,
    /// How long a commit waits for the write lock before answering 429.
    pub write_lock_wait_ms: u64,
    /// How long a commit holds the write lock.
    pub commit_ms: u64,
    /// Upload sessions older than this answer `not_found`. Decision (UNVERIFIED): 7 days as in
    /// TARGETS.md; older SPEC versions say 48 hours.
    pub session_ttl_secs: u64,
    /// Empty folders to create (display paths).
    pub folders: Vec<String>,
    /// Files to create, in order (they appear in the change log as seeded).
    pub files: Vec<SeedFile>,
}

/// A seeded file: its display path and text content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    /// Display path, e.g. `/Projects/V10001/Final/Contract-2026-001.pdf`.
    pub path: String,
    /// Text content (stored as UTF-8 bytes).
    pub content: String,
}

fn file(path: &str, content: &str) -> SeedFile {
    SeedFile { path: path.to_string(), content: content.to_string() }
}

impl Default for Seed {
    /// The demo: a partner project folder with a final contract, drafts and an empty inbox.
    fn default() -> Self {
        Seed {
            app_key: "wharf-app".into(),
            app_secret: "wharf-secret".into(),
            refresh_token: "wharf-refresh".into(),
            access_token_ttl_secs: 14_400,
            write_concurrency: 1,
            write_lock_wait_ms: 0,
            commit_ms: 10,
            session_ttl_secs: 7 * 24 * 3600,
            folders: vec!["/Inbox".into(), "/Projects/V10001/Final/filed".into()],
            files: vec![
                file("/Projects/V10001/Final/Contract-2026-001.pdf", "%PDF-1.4\n% Contract 2026-001 ACME / V10001\n"),
                file("/Projects/V10001/Final/Annex-A.pdf", "%PDF-1.4\n% Annex A to contract 2026-001\n"),
                file("/Projects/V10001/Drafts/Contract-2026-001-draft.docx", "draft, not final\n"),
            ],
        }
    }
}

impl Seed {
    /// Reads and checks a seed file (JSON, format in the module comment).
    pub fn from_file(path: &Path) -> anyhow::Result<Seed> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let seed: Seed = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        seed.check()?;
        Ok(seed)
    }

    /// Consistency rules: credentials set, a usable lock, valid and non-clashing paths.
    pub fn check(&self) -> anyhow::Result<()> {
        for (k, v) in
            [("app_key", &self.app_key), ("app_secret", &self.app_secret), ("refresh_token", &self.refresh_token)]
        {
            anyhow::ensure!(!v.trim().is_empty(), "seed: {k} is empty");
        }
        anyhow::ensure!(self.access_token_ttl_secs > 0, "seed: access_token_ttl_secs must be > 0");
        anyhow::ensure!(self.write_concurrency >= 1, "seed: write_concurrency must be >= 1");
        anyhow::ensure!(self.session_ttl_secs > 0, "seed: session_ttl_secs must be > 0");
        let mut files = BTreeSet::new();
        for f in &self.files {
            paths::check_write_path(&f.path).map_err(|e| anyhow::anyhow!("seed: file {:?}: {e}", f.path))?;
            anyhow::ensure!(files.insert(f.path.to_lowercase()), "seed: duplicate file {:?}", f.path);
        }
        for d in &self.folders {
            paths::check_write_path(d).map_err(|e| anyhow::anyhow!("seed: folder {d:?}: {e}"))?;
            anyhow::ensure!(!files.contains(&d.to_lowercase()), "seed: folder {d:?} is also a file");
        }
        for p in self.files.iter().map(|f| &f.path).chain(&self.folders) {
            let mut anc = paths::parent(&p.to_lowercase()).to_string();
            while !anc.is_empty() {
                anyhow::ensure!(!files.contains(&anc), "seed: {p:?} lies under the file {anc:?}");
                anc = paths::parent(&anc).to_string();
            }
        }
        Ok(())
    }
}
