//! A strict, stateful emulator of the Canto DAM API (OAuth2 client credentials, search,
//! asset details, direct download, batch edit, the three-step upload with its S3-style storage
//! form POST and the asynchronous upload status), for testing the wharf Canto connector (and
//! for running alone: `cargo run --example canto-emulator`).
//!
//! One server plays every host: `https://oauth.{domain}` (`/oauth/api/oauth2/token`), the
//! tenant `https://{account}.{domain}` (`/api/v1/...`, `/api_binary/v1/...`), the storage
//! (`/s3-upload/`) and pre-signed download URLs (`/direct/{scheme}/{id}`).
//! Facts and "strict emulator must reject" rules: `/work/shared/api/TARGETS.md` §7. Decisions
//! on points marked UNVERIFIED there are written next to the code, starting `Decision (UNVERIFIED)`.
#![allow(dead_code)]
// Handlers return a ready axum `Response` as their error.
#![allow(clippy::result_large_err)]

mod api;
mod auth;
mod crypto;
mod faults;
mod http;
mod router;
mod seed;
mod state;
mod upload;

#[cfg(test)]
mod tests;

pub use faults::Faults;
#[allow(unused_imports)]
pub use seed::{Seed, SeedAsset};
#[allow(unused_imports)]
pub use state::Asset;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// A running emulator; dropping it stops the server.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`, `PUT`.
    pub method: String,
    /// e.g. `/api/v1/search`.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The reply's status.
    pub status: u16,
    /// Whether an `Authorization` header was sent.
    pub authorization: bool,
}

/// One upload as the status endpoint reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadView {
    /// File name.
    pub name: String,
    /// `Initial`, `Done`, `Error`.
    pub status: String,
    /// The asset a version was added to, if asked.
    pub version_of: Option<String>,
    /// The resulting asset.
    pub id: Option<String>,
}

/// What the handlers share.
struct Shared {
    state: Mutex<state::State>,
    faults: Faults,
    requests: Mutex<Vec<RequestRecord>>,
    seed: Seed,
    storage_secret: String,
    addr: SocketAddr,
}

impl Shared {
    fn st(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Emulator {
    /// Binds 127.0.0.1:0 and serves in a tokio task. Panics on an invalid seed.
    pub async fn start(seed: Seed) -> Emulator {
        match Emulator::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), seed).await {
            Ok(e) => e,
            Err(e) => panic!("canto emulator: {e}"),
        }
    }

    /// Binds the given address (the example uses this); an invalid seed is `InvalidData`.
    pub async fn start_on(addr: SocketAddr, seed: Seed) -> std::io::Result<Emulator> {
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        let mut st = state::State::default();
        for a in &seed.assets {
            if !state::SCHEMES.contains(&a.scheme.as_str()) || !state::is_stamp(&a.modified) || a.id.is_empty() {
                return Err(bad(format!("seed asset {:?}: bad scheme, id or modified stamp", a.id)));
            }
            if let Some(f) = a.custom.keys().find(|k| !seed.custom_fields.contains_key(*k)) {
                return Err(bad(format!("seed asset {}: unknown custom field {f}", a.id)));
            }
            st.assets.insert(
                a.id.clone(),
                Asset {
                    id: a.id.clone(),
                    scheme: a.scheme.clone(),
                    name: a.name.clone(),
                    bytes: a.content.as_bytes().to_vec(),
                    version: 1,
                    approval: a.approval.clone(),
                    keywords: a.keywords.clone(),
                    tags: a.tags.clone(),
                    description: a.description.clone(),
                    custom: a.custom.clone(),
                    modified: a.modified.clone(),
                },
            );
            if a.modified > st.last_modified {
                st.last_modified = a.modified.clone();
            }
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let storage_secret = st.next("storage-secret-");
        let shared = Arc::new(Shared {
            state: Mutex::new(st),
            faults: Faults::default(),
            requests: Mutex::new(vec![]),
            seed,
            storage_secret,
            addr,
        });
        let app = axum::Router::new()
            .fallback(router::entry)
            .with_state(shared.clone())
            .layer(axum::extract::DefaultBodyLimit::disable());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Emulator { shared, addr, task })
    }

    /// e.g. `http://127.0.0.1:40123`: the API, OAuth and storage host alike.
    pub fn base_url(&self) -> String {
        self.shared.base()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Fault injection.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The seed it runs with.
    pub fn seed(&self) -> &Seed {
        &self.shared.seed
    }

    /// One asset.
    pub fn asset(&self, id: &str) -> Option<Asset> {
        self.shared.st().assets.get(id).cloned()
    }

    /// Every asset, by id.
    pub fn assets(&self) -> Vec<Asset> {
        self.shared.st().assets.values().cloned().collect()
    }

    /// Assets with this file name.
    pub fn assets_named(&self, name: &str) -> Vec<Asset> {
        self.shared.st().assets.values().filter(|a| a.name == name).cloned().collect()
    }

    /// Changes an asset as a Canto user would (a new `Date modified`); panics if absent.
    pub fn edit(&self, id: &str, f: impl FnOnce(&mut Asset)) {
        let mut st = self.shared.st();
        let stamp = st.touch();
        let a = st.assets.get_mut(id).unwrap_or_else(|| panic!("no asset {id}"));
        f(a);
        a.modified = stamp;
    }

    /// Uploads so far, oldest first.
    pub fn uploads(&self) -> Vec<UploadView> {
        self.shared
            .st()
            .uploads
            .iter()
            .map(|u| UploadView {
                name: u.name.clone(),
                status: u.status.clone(),
                version_of: u.version_of.clone(),
                id: u.id.clone(),
            })
            .collect()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every access token issued so far is dead from now on (401).
    pub fn expire_tokens(&self) {
        self.shared.st().generation += 1;
    }

    /// Access tokens issued so far.
    pub fn tokens_issued(&self) -> usize {
        self.requests().iter().filter(|r| r.path == "/oauth/api/oauth2/token" && r.status == 200).count()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
