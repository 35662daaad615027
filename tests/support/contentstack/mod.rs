//! A strict, stateful emulator of the Contentstack Content Management API (entries, assets,
//! publish state per environment × locale, the per-organisation rate limit, a webhook sender), for
//! testing the wharf Contentstack connector (and for running alone:
//! `cargo run --example contentstack-emulator`).
//!
//! Routes (under `/v3`): `content_types/{ct}/entries` (GET query, POST create),
//! `content_types/{ct}/entries/{uid}` (GET, PUT, DELETE), `.../{uid}/publish|unpublish` (POST),
//! `assets` (GET query, POST multipart), `assets/{uid}` (GET, PUT multipart),
//! `assets/{uid}/publish` (POST). Every call needs `api_key` and a raw management token in
//! `authorization` (or an `authtoken`). Facts and the must-reject list: `../shared/api/TARGETS.md`
//! §4; decisions on points not established there start `Decision (UNVERIFIED):`.
#![allow(dead_code)]
#![allow(clippy::result_large_err)]

mod assets;
mod entries;
mod faults;
mod http;
mod limits;
mod router;
mod seed;
mod state;
mod webhook;

#[cfg(test)]
mod tests;

pub use faults::Faults;
pub use seed::Seed;
#[allow(unused_imports)]
pub use webhook::hmac_sha256_hex;

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// The default header carrying the webhook's shared secret.
pub const WEBHOOK_SECRET_HEADER: &str = "x-wharf-webhook-secret";

/// A running emulator; dropping it stops the server.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

/// Inspection view of an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryView {
    /// `blt…`.
    pub uid: String,
    /// The content type uid.
    pub content_type: String,
    /// `_version`, 1 on create, + 1 per update.
    pub version: u64,
    /// The entry's fields (title included).
    pub fields: serde_json::Map<String, Value>,
}

/// Inspection view of an asset.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetView {
    /// `blt…`.
    pub uid: String,
    /// The stored (sanitised) file name.
    pub filename: String,
    /// `asset[title]`.
    pub title: String,
    /// `asset[description]`.
    pub description: String,
    /// `asset[tags]`, split.
    pub tags: Vec<String>,
    /// `asset[parent_uid]`.
    pub parent_uid: Option<String>,
    /// Size in bytes.
    pub size: usize,
    /// `_version`.
    pub version: u64,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`, ...
    pub method: String,
    /// e.g. `/v3/assets`.
    pub path: String,
    /// The reply's status.
    pub status: u16,
}

/// What the handlers share.
struct Shared {
    seed: Seed,
    state: Mutex<state::State>,
    faults: Faults,
    reads: limits::Window,
    writes: limits::Window,
    requests: Mutex<Vec<RequestRecord>>,
}

impl Shared {
    fn st(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self, method: &axum::http::Method, path: &str, status: u16) {
        let r = RequestRecord { method: method.to_string(), path: path.to_string(), status };
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).push(r);
    }
}

impl Emulator {
    /// Binds 127.0.0.1:0 and serves in a tokio task; dropped = shut down.
    pub async fn start(seed: Seed) -> Emulator {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), seed).await.expect("bind emulator")
    }

    /// Binds `addr` and serves in a tokio task.
    pub async fn start_on(addr: SocketAddr, seed: Seed) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            reads: limits::Window::new(seed.reads_per_sec),
            writes: limits::Window::new(seed.writes_per_sec),
            seed,
            state: Mutex::new(state::State::with_cdn(format!("http://{addr}/cdn"))),
            faults: Faults::default(),
            requests: Mutex::new(Vec::new()),
        });
        let app = router::app(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Emulator { shared, addr, task })
    }

    /// `http://127.0.0.1:PORT` (the connector's `base_url`; paths start with `/v3`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The seed it runs with.
    pub fn seed(&self) -> &Seed {
        &self.shared.seed
    }

    /// Fault injection, shared with the running server.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// 429s sent for reads and for writes.
    pub fn throttled(&self) -> (u64, u64) {
        (self.shared.reads.refused(), self.shared.writes.refused())
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The entries of a content type.
    pub fn entries(&self, ct: &str) -> Vec<EntryView> {
        let st = self.shared.st();
        st.entries
            .values()
            .filter(|e| e.content_type == ct)
            .map(|e| EntryView {
                uid: e.uid.clone(),
                content_type: e.content_type.clone(),
                version: e.version,
                fields: e.fields.clone(),
            })
            .collect()
    }

    /// All assets.
    pub fn assets(&self) -> Vec<AssetView> {
        let st = self.shared.st();
        st.assets
            .values()
            .map(|a| AssetView {
                uid: a.uid.clone(),
                filename: a.filename.clone(),
                title: a.title.clone(),
                description: a.description.clone(),
                tags: a.tags.clone(),
                parent_uid: a.parent_uid.clone(),
                size: a.data.len(),
                version: a.version,
            })
            .collect()
    }

    /// The bytes of an asset.
    pub fn asset_bytes(&self, uid: &str) -> Option<Vec<u8>> {
        self.shared.st().assets.get(uid).map(|a| a.data.clone())
    }

    /// Published (environment, locale, version) of an entry or asset.
    pub fn published(&self, uid: &str) -> Vec<(String, String, u64)> {
        let st = self.shared.st();
        st.published
            .iter()
            .filter(|((u, _, _), _)| u == uid)
            .map(|((_, env, loc), p)| (env.clone(), loc.clone(), p.version))
            .collect()
    }

    /// Creates an asset directly; returns its uid.
    pub fn insert_asset(&self, filename: &str, content_type: &str, data: &[u8]) -> String {
        let mut st = self.shared.st();
        let uid = st.uid();
        let a = state::Asset {
            uid: uid.clone(),
            version: 1,
            filename: filename.into(),
            title: filename.into(),
            description: String::new(),
            tags: Vec::new(),
            parent_uid: None,
            content_type: content_type.into(),
            data: data.to_vec(),
            created_at: state::now(),
        };
        st.assets.insert(uid.clone(), a);
        uid
    }

    /// Deletes an asset directly (gone before a package is built).
    pub fn remove_asset(&self, uid: &str) {
        self.shared.st().assets.remove(uid);
    }

    /// Changes an entry directly, as an editor would: its next version, updated now.
    pub fn edit_entry(&self, uid: &str, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
        let mut st = self.shared.st();
        if let Some(e) = st.entries.get_mut(uid) {
            f(&mut e.fields);
            e.version += 1;
            e.updated_at = state::now();
        }
    }

    /// Creates an entry directly (a test's "already delivered before the crash"); returns its uid.
    pub fn insert_entry(&self, ct: &str, fields: serde_json::Map<String, Value>) -> String {
        let mut st = self.shared.st();
        let uid = st.uid();
        let t = state::now();
        let e = state::Entry {
            uid: uid.clone(),
            content_type: ct.into(),
            locale: "en-us".into(),
            version: 1,
            fields,
            created_at: t.clone(),
            updated_at: t,
        };
        st.entries.insert(uid.clone(), e);
        uid
    }

    /// POSTs the webhook payload for `event` (`entries.unpublish`, `entries.delete`, ...) about
    /// `entry_uid` (its last published JSON, else its current JSON) to `url`, with `secret` in
    /// [`WEBHOOK_SECRET_HEADER`] and `X-Contentstack-Signature`; returns the receiver's status.
    pub async fn send_webhook(&self, url: &str, secret: &str, event: &str, entry_uid: &str) -> Result<u16, String> {
        let (ct, entry) = {
            let st = self.shared.st();
            let current = st.entries.get(entry_uid);
            let ct = current.map(|e| e.content_type.clone());
            let json = st.last_published.get(entry_uid).cloned().or_else(|| current.map(|e| st.entry_json(e)));
            let ct = ct.or_else(|| Some(String::new()));
            (ct.unwrap_or_default(), json.ok_or_else(|| format!("no entry {entry_uid}"))?)
        };
        let body = webhook::payload(&self.shared.seed.api_key, event, &ct, entry);
        webhook::post(url, WEBHOOK_SECRET_HEADER, secret, &body).await.map_err(|e| e.to_string())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
