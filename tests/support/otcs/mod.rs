//! A strict, stateful emulator of the OpenText Extended ECM Content Server REST API (v1/v2 nodes,
//! versions, categories, Large File Upload) and the Business Workspaces API, for testing the wharf
//! OpenText connector (and for running alone: `cargo run --example otcs-emulator`).
//!
//! The API lives under `{base_url}/api/v1` and `/api/v2`, `base_url` = `http://127.0.0.1:PORT/otcs/cs.exe`.
//! Facts and "strict emulator must reject" rules: `../shared/api/TARGETS.md` §1, §2. Decisions on
//! points marked UNVERIFIED there are written next to the code that implements them.
#![allow(dead_code)]
// Handlers return a ready axum `Response` as their error (the API's error reply); boxing it would
// only add noise in a test emulator.
#![allow(clippy::result_large_err)]

mod auth;
mod categories;
mod faults;
mod http;
mod multipart_upload;
mod nodes;
mod records;
mod router;
mod seed;
mod state;
mod versions;
mod workspaces;

#[cfg(test)]
mod tests;

pub use faults::Faults;
#[allow(unused_imports)]
pub use seed::{
    AttrType, CLASSIFICATION_VOLUME_ID, ENTERPRISE_ID, MultipartSettings, Seed, SeedAttribute, SeedCategory,
    SeedClassification, SeedFolder, SeedTemplate, SeedToken, SeedUser, SeedWorkspace, SeedWorkspaceType,
};
pub use state::BusinessProperties;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Path prefix of the API on the emulated server.
pub const API_PREFIX: &str = "/otcs/cs.exe/api/";

/// A running emulator; dropping it stops the server and deletes the stored content.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// Inspection view of a node (what a test asserts on).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub id: i64,
    pub parent_id: i64,
    pub name: String,
    pub type_: i64,
    pub description: String,
    /// Latest version's size for documents, the number of children for containers.
    pub size: u64,
    pub versions: Vec<VersionView>,
    /// `"{cat}_{attr}"` → value.
    pub categories: BTreeMap<String, serde_json::Value>,
    pub business_properties: Option<BusinessProperties>,
    /// Records Management classification node ids the document was created with.
    pub classifications: Vec<i64>,
    pub modify_date: String,
    pub external_create_date: Option<String>,
    pub external_modify_date: Option<String>,
    pub external_source: Option<String>,
}

/// Inspection view of one document version.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionView {
    pub number: u32,
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    pub mime: String,
    pub file_name: String,
    pub description: String,
    /// The content came from a Large File Upload session (`upload_key`), not a `file` part.
    pub via_upload_key: bool,
}

/// One request as the server saw it (for "no duplicate create" assertions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// Full path, e.g. `/otcs/cs.exe/api/v2/nodes`.
    pub path: String,
    pub query: String,
    /// The reply's status; 0 when the connection was closed without a reply (fault injection).
    pub status: u16,
}

/// What the handlers share: state, faults, the request log and the fixed configuration.
struct Shared {
    state: Mutex<state::State>,
    faults: Faults,
    requests: Mutex<Vec<RequestRecord>>,
    dir: PathBuf,
    seq: AtomicU64,
    random: u64,
    users: Vec<SeedUser>,
    tokens: Vec<SeedToken>,
    ttl: Duration,
    multipart: MultipartSettings,
}

impl Shared {
    fn st(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Emulator {
    /// Binds 127.0.0.1:0 and serves in a tokio task; dropped = shut down. Panics on an invalid seed.
    pub async fn start(seed: Seed) -> Emulator {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Emulator::start_on(addr, seed).await {
            Ok(e) => e,
            Err(e) => panic!("otcs emulator: {e}"),
        }
    }

    /// Binds the given address (the example uses this); an invalid seed is `InvalidData`.
    pub async fn start_on(addr: SocketAddr, seed: Seed) -> std::io::Result<Emulator> {
        seed.check().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        let dir = tempfile::Builder::new().prefix("otcs-emulator-").tempdir()?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let random = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(addr.port() as u64);
            h.finish()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state::State::from_seed(&seed)),
            faults: Faults::default(),
            requests: Mutex::new(vec![]),
            dir: dir.path().to_path_buf(),
            seq: AtomicU64::new(1),
            random,
            users: seed.users.clone(),
            tokens: seed.otds_tokens.clone(),
            ttl: Duration::from_secs(seed.ticket_ttl_secs),
            multipart: seed.multipart.clone(),
        });
        let app = axum::Router::new()
            .fallback(router::entry)
            .with_state(shared.clone())
            .layer(axum::extract::DefaultBodyLimit::disable());
        let make = app.into_make_service_with_connect_info::<faults::KillSwitch>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(faults::KillableListener(listener), make).await;
        });
        Ok(Emulator { shared, addr, task, _dir: dir })
    }

    /// e.g. `http://127.0.0.1:40123/otcs/cs.exe` (the API lives under `{base_url}/api/v1` and `/api/v2`).
    pub fn base_url(&self) -> String {
        format!("http://{}/otcs/cs.exe", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Fault injection, shared with the running server.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// A node with properties, categories and versions.
    pub fn node(&self, id: i64) -> Option<NodeView> {
        self.shared.st().view(id)
    }

    /// The children of a node, ordered by id (creation order).
    pub fn children(&self, parent_id: i64) -> Vec<NodeView> {
        let st = self.shared.st();
        let mut ids: Vec<i64> = st.children_of(parent_id).iter().map(|n| n.id).collect();
        ids.sort_unstable();
        ids.into_iter().filter_map(|i| st.view(i)).collect()
    }

    /// A node by path from the Enterprise volume, e.g. `"Enterprise/Invoices/ACME"` (names ignore case;
    /// a leading `Enterprise/` is optional).
    pub fn find_path(&self, path: &str) -> Option<NodeView> {
        let st = self.shared.st();
        let mut parts = path.split('/').filter(|p| !p.is_empty()).peekable();
        if parts.peek().is_some_and(|p| p.eq_ignore_ascii_case("Enterprise")) {
            parts.next();
        }
        let mut id = ENTERPRISE_ID;
        for p in parts {
            id = st.child_named(id, p)?;
        }
        st.view(id)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every issued ticket becomes invalid now.
    pub fn expire_tickets(&self) {
        self.shared.st().tickets.clear();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
