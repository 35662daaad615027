//! A strict, stateful emulator of the Dropbox API v2 (files upload/sessions/download/list/move/
//! delete, OAuth2 refresh), for testing the wharf Dropbox connector (and for running alone:
//! `cargo run --example dropbox-emulator`).
//!
//! One server plays both hosts (`api.dropboxapi.com` and `content.dropboxapi.com`): configure the
//! connector with `api_url = content_url = emu.base_url()`. Routes: `POST /oauth2/token`,
//! `POST /2/files/{list_folder, list_folder/continue, get_metadata, create_folder_v2, move_v2,
//! delete_v2, upload_session/start_batch, upload_session/finish_batch_v2}` (RPC, JSON body),
//! `POST /2/files/{upload, upload_session/start, upload_session/append_v2, upload_session/finish}`
//! (upload style: `Dropbox-API-Arg` header or `arg` URL parameter, octet-stream body) and
//! `POST|GET /2/files/download` (download style, result in `Dropbox-API-Result`).
//!
//! Facts and "strict emulator must reject" rules: `../shared/api/TARGETS.md` §6. Decisions on
//! points not established there are written next to the code, starting `Decision (UNVERIFIED):`.
//! File bodies are stored on disk in a temp dir (never whole in memory).
#![allow(dead_code)]
// Handlers return a ready axum `Response` as their error (the API's error reply); boxing it would
// only add noise in a test emulator.
#![allow(clippy::result_large_err)]

mod auth;
mod download;
mod faults;
mod files;
mod finish;
mod hash;
mod http;
mod lock;
mod paths;
mod router;
mod seed;
mod sessions;
mod state;
mod upload;
mod write;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_uploads;

pub use faults::Faults;
#[allow(unused_imports)]
pub use seed::{Seed, SeedFile};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A running emulator; dropping it stops the server and deletes the stored content.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// Inspection view of a file (what a test asserts on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileView {
    /// `id:...`, kept across overwrites and moves.
    pub id: String,
    /// The cased path, e.g. `/Projects/V10001/Final/Contract-2026-001.pdf`.
    pub path_display: String,
    /// Hex revision; changes with every write (and move).
    pub rev: String,
    /// Size in bytes.
    pub size: u64,
    /// Dropbox content hash (lowercase hex).
    pub content_hash: String,
    /// Plain SHA-256 of the content (lowercase hex).
    pub sha256: String,
    /// `client_modified` as stored (`%Y-%m-%dT%H:%M:%SZ`).
    pub client_modified: String,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `POST` or `GET`.
    pub method: String,
    /// e.g. `/2/files/upload`, `/oauth2/token`.
    pub path: String,
    /// The reply's status; 0 when the connection was closed without a reply (fault injection).
    pub status: u16,
    /// The `Dropbox-API-Arg` header (or `arg` URL parameter) of content routes, the JSON body of
    /// RPC routes that got past the auth check; `None` otherwise.
    pub arg: Option<String>,
}

/// What the handlers share: state, faults, the write lock, the request log and the configuration.
struct Shared {
    state: Mutex<state::State>,
    faults: Faults,
    lock: lock::WriteLock,
    requests: Mutex<Vec<RequestRecord>>,
    app_key: String,
    app_secret: String,
    refresh_token: String,
    ttl_secs: u64,
    session_ttl: Duration,
}

impl Shared {
    fn st(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn view(e: &state::Entry) -> Option<FileView> {
    let f = e.file()?;
    Some(FileView {
        id: e.id.clone(),
        path_display: e.display.clone(),
        rev: f.rev.clone(),
        size: f.size,
        content_hash: f.content_hash.clone(),
        sha256: f.sha256.clone(),
        client_modified: f.client_modified.clone(),
    })
}

impl Emulator {
    /// Binds 127.0.0.1:0 and serves in a tokio task; dropped = shut down. Panics on an invalid seed.
    pub async fn start(seed: Seed) -> Emulator {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Emulator::start_on(addr, seed).await {
            Ok(e) => e,
            Err(e) => panic!("dropbox emulator: {e}"),
        }
    }

    /// Binds the given address (the example uses this); an invalid seed is `InvalidData`.
    pub async fn start_on(addr: SocketAddr, seed: Seed) -> std::io::Result<Emulator> {
        seed.check().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        let dir = tempfile::Builder::new().prefix("dropbox-emulator-").tempdir()?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let random = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(addr.port() as u64);
            h.finish()
        };
        let mut st = state::State::new(dir.path().to_path_buf(), random);
        for d in &seed.folders {
            st.create_folder(d, false).map_err(|e| std::io::Error::other(format!("seed folder {d}: {e:?}")))?;
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(st),
            faults: Faults::default(),
            lock: lock::WriteLock::new(
                seed.write_concurrency,
                Duration::from_millis(seed.write_lock_wait_ms),
                Duration::from_millis(seed.commit_ms),
            ),
            requests: Mutex::new(vec![]),
            app_key: seed.app_key.clone(),
            app_secret: seed.app_secret.clone(),
            refresh_token: seed.refresh_token.clone(),
            ttl_secs: seed.access_token_ttl_secs,
            session_ttl: Duration::from_secs(seed.session_ttl_secs),
        });
        let app = axum::Router::new()
            .fallback(router::entry)
            .with_state(shared.clone())
            .layer(axum::extract::DefaultBodyLimit::disable());
        let make = app.into_make_service_with_connect_info::<faults::KillSwitch>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(faults::KillableListener(listener), make).await;
        });
        let emu = Emulator { shared, addr, task, _dir: dir };
        for f in &seed.files {
            emu.try_put_file(&f.path, f.content.as_bytes())
                .map_err(|e| std::io::Error::other(format!("seed file {}: {e}", f.path)))?;
        }
        Ok(emu)
    }

    /// e.g. `http://127.0.0.1:40123` (both the API and the content host).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Fault injection, shared with the running server.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The file at a path (case-insensitive), if any.
    pub fn file(&self, path: &str) -> Option<FileView> {
        self.shared.st().entries.get(&paths::lower(path)).and_then(view)
    }

    /// Every file under a folder, recursively (`""` or `"/"` = everything), ordered by path.
    pub fn list(&self, path: &str) -> Vec<FileView> {
        let dir = paths::lower(path.trim_end_matches('/'));
        let st = self.shared.st();
        st.entries.iter().filter(|(k, _)| paths::is_under(k, &dir)).filter_map(|(_, e)| view(e)).collect()
    }

    /// The folders under a folder, recursively, as display paths.
    pub fn folders(&self, path: &str) -> Vec<String> {
        let dir = paths::lower(path.trim_end_matches('/'));
        let st = self.shared.st();
        st.entries
            .iter()
            .filter(|(k, e)| paths::is_under(k, &dir) && e.file().is_none())
            .map(|(_, e)| e.display.clone())
            .collect()
    }

    fn try_put_file(&self, path: &str, bytes: &[u8]) -> Result<FileView, String> {
        let (content_hash, sha256) = hash::of(bytes);
        let mut st = self.shared.st();
        let src = st.new_blob("put");
        std::fs::write(&src, bytes).map_err(|e| e.to_string())?;
        let info = write::CommitInfo {
            path: path.to_string(),
            mode: write::Mode::Overwrite,
            autorename: false,
            client_modified: None,
            strict_conflict: false,
        };
        let content = write::Content { src: &src, size: bytes.len() as u64, content_hash, sha256 };
        let res = st.write_file(&info, &content);
        let _ = std::fs::remove_file(&src);
        let (key, _) = res.map_err(|e| format!("{e:?}"))?;
        st.entries.get(&key).and_then(view).ok_or_else(|| "not a file".to_string())
    }

    /// Writes a file as if another user uploaded it (overwrite; parents created); it appears in the
    /// change log. Panics if the path is invalid or a folder is in the way.
    pub fn put_file(&self, path: &str, bytes: &[u8]) -> FileView {
        match self.try_put_file(path, bytes) {
            Ok(v) => v,
            Err(e) => panic!("put_file {path}: {e}"),
        }
    }

    /// Deletes a file or folder as if another user did (a `deleted` entry for cursors); false if absent.
    pub fn remove(&self, path: &str) -> bool {
        let mut st = self.shared.st();
        let removed = st.remove_tree(&paths::lower(path));
        for (_, e) in &removed {
            if let Some(f) = e.file() {
                let _ = std::fs::remove_file(&f.blob);
            }
        }
        !removed.is_empty()
    }

    /// The content of a file.
    pub fn content(&self, path: &str) -> Option<Vec<u8>> {
        let blob = self.shared.st().entries.get(&paths::lower(path))?.file()?.blob.clone();
        std::fs::read(blob).ok()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Writes committed so far (upload, finish, create_folder, move, delete; a batch counts once).
    pub fn commits(&self) -> usize {
        self.shared.lock.commits()
    }

    /// The most commits observed holding the namespace write lock at once.
    pub fn max_concurrent_commits(&self) -> usize {
        self.shared.lock.max_concurrent()
    }

    /// Every issued access token is expired from now on (same as `faults().expire_tokens()`).
    pub fn expire_tokens(&self) {
        self.shared.faults.expire_tokens();
    }

    /// The refresh token is revoked: `/oauth2/token` answers `invalid_grant` from now on.
    pub fn revoke_refresh_token(&self) {
        self.shared.st().refresh_revoked = true;
    }

    /// Every list cursor issued so far answers 409 `reset`.
    pub fn reset_cursors(&self) {
        self.shared.st().epoch += 1;
    }

    /// Every open upload session is expired (`not_found`), as after 7 days.
    pub fn expire_sessions(&self) {
        let mut st = self.shared.st();
        for (_, s) in st.sessions.drain() {
            let _ = std::fs::remove_file(&s.blob);
        }
    }

    /// Open (not committed) upload sessions.
    pub fn open_sessions(&self) -> usize {
        self.shared.st().sessions.len()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
