//! A strict, stateful emulator of the Confluence Cloud REST API (v2 spaces, pages, labels,
//! content properties, attachments; the v1 parts v2 lacks: CQL search, adding labels, attachment
//! upload and download), for testing the wharf Confluence connector (and for running alone:
//! `cargo run --example confluence-emulator`).
//!
//! `base_url` (`http://127.0.0.1:PORT`) stands for both `https://{site}.atlassian.net` (paths
//! `/wiki/...`, Basic `email:api_token`) and `https://api.atlassian.com` (paths
//! `/ex/confluence/{cloudId}/wiki/...`, OAuth bearer tokens; `/oauth/token` stands for
//! `auth.atlassian.com`). Attachment downloads redirect to `/media/...` (api.media.atlassian.com).
//! Facts and "strict emulator must reject" rules: `/work/shared/api/TARGETS.md` §5. Decisions on
//! points marked UNVERIFIED there are written next to the code that implements them.
#![allow(dead_code)]
// Handlers return a ready axum `Response` as their error (the API's error reply).
#![allow(clippy::result_large_err)]

mod attachments;
mod auth;
mod cql;
mod faults;
mod http;
mod meta;
mod pages;
mod paging;
mod router;
mod search;
mod seed;
mod spaces;
mod state;

#[cfg(test)]
mod tests;

pub use faults::Faults;
#[allow(unused_imports)]
pub use seed::{Seed, SeedAttachment, SeedOAuth, SeedPage, SeedSpace, SeedUser};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

/// A running emulator; dropping it stops the server and deletes the stored attachments.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// Inspection view of a page (what a test asserts on); restricted pages included.
#[derive(Debug, Clone, PartialEq)]
pub struct PageView {
    pub id: String,
    pub space_key: String,
    pub title: String,
    /// `current`, `draft`, …
    pub status: String,
    pub parent_id: Option<String>,
    pub version: u32,
    pub body_storage: String,
    /// The API user may not see it (404 everywhere, absent from lists and searches).
    pub restricted: bool,
    /// Label names (lowercase), in the order they were added.
    pub labels: Vec<String>,
    /// Content properties, key → value.
    pub properties: BTreeMap<String, serde_json::Value>,
    pub attachments: Vec<AttachmentView>,
    /// Account id of the creator.
    pub author: String,
    /// Account id of the author of the current version.
    pub last_editor: String,
    /// The current version's date (`2024-03-04T15:30:00.000Z`).
    pub last_modified: String,
}

/// Inspection view of an attachment (its current version).
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentView {
    /// e.g. `att98310`.
    pub id: String,
    pub title: String,
    pub size: u64,
    /// SHA-256 of the current version's bytes, lowercase hex.
    pub sha256: String,
    pub version: u32,
    pub media_type: String,
    pub comment: String,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// Full path, e.g. `/wiki/api/v2/pages/98305`.
    pub path: String,
    pub query: String,
    /// The reply's status; 0 when the connection was closed without a reply (fault injection).
    pub status: u16,
    /// `authorization` (the scheme only, never the secret), `x-atlassian-token`, `content-type`,
    /// `accept`, when sent.
    pub headers_of_interest: BTreeMap<String, String>,
}

/// What the handlers share: state, faults, the request log and the fixed configuration.
pub struct Shared {
    state: Mutex<state::State>,
    faults: Faults,
    requests: Mutex<Vec<RequestRecord>>,
    dir: PathBuf,
    seq: AtomicU64,
    secret: u64,
    base_url: String,
    users: Vec<SeedUser>,
    oauth: SeedOAuth,
    other_account_id: String,
    max_attachment_bytes: u64,
}

impl Shared {
    fn st(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One authenticated request's context.
pub struct Ctx {
    sh: Arc<Shared>,
    /// The caller's account id.
    account: String,
    /// `{base_url}/wiki` (`_links.base`).
    wiki_base: String,
}

impl Emulator {
    /// Binds 127.0.0.1:0 and serves in a tokio task; dropped = shut down. Panics on an invalid seed.
    pub async fn start(seed: Seed) -> Emulator {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Emulator::start_on(addr, seed).await {
            Ok(e) => e,
            Err(e) => panic!("confluence emulator: {e}"),
        }
    }

    /// Binds the given address (the example uses this); an invalid seed is `InvalidData`.
    pub async fn start_on(addr: SocketAddr, seed: Seed) -> std::io::Result<Emulator> {
        let invalid = |e: anyhow::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string());
        seed.check().map_err(invalid)?;
        let dir = tempfile::Builder::new().prefix("confluence-emulator-").tempdir()?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let secret = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(addr.port() as u64);
            h.finish()
        };
        let state = state::State::from_seed(&seed, dir.path()).map_err(invalid)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            faults: Faults::default(),
            requests: Mutex::new(vec![]),
            dir: dir.path().to_path_buf(),
            seq: AtomicU64::new(1),
            secret,
            base_url: format!("http://{addr}"),
            users: seed.users.clone(),
            oauth: seed.oauth.clone(),
            other_account_id: seed.other_account_id.clone(),
            max_attachment_bytes: seed.max_attachment_bytes,
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

    /// `http://127.0.0.1:PORT`, standing for `https://{site}.atlassian.net` (API under `/wiki/...`)
    /// and for `https://api.atlassian.com` (API under `/ex/confluence/{cloudId}/wiki/...`).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `{base_url}/ex/confluence/{cloudId}`: the base of 3LO calls (append `/wiki/api/v2/...`).
    pub fn oauth_base_url(&self) -> String {
        format!("{}/ex/confluence/{}", self.shared.base_url, self.shared.oauth.cloud_id)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Fault injection, shared with the running server.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every OAuth access token issued so far is expired (same as `faults().expire_tokens()`).
    pub fn expire_tokens(&self) {
        self.shared.faults.expire_tokens();
    }

    /// A page by id (restricted pages too).
    pub fn page(&self, id: &str) -> Option<PageView> {
        self.shared.st().view(id.parse().ok()?)
    }

    /// Every page of a space (homepage included), by id (creation order).
    pub fn pages_in(&self, space_key: &str) -> Vec<PageView> {
        let st = self.shared.st();
        let Some(space) = st.space_by_key(space_key).map(|s| s.id) else { return vec![] };
        let ids: Vec<u64> = st.pages.values().filter(|p| p.space_id == space).map(|p| p.id).collect();
        ids.into_iter().filter_map(|i| st.view(i)).collect()
    }

    /// Creates a page as another user would (under the space homepage, dated now, global labels);
    /// returns its id. Panics on an unknown space or a title already taken (a test bug).
    pub fn add_page(&self, space_key: &str, title: &str, body: &str, labels: &[&str]) -> String {
        let mut st = self.shared.st();
        let space = st.space_by_key(space_key).map(|s| (s.id, s.homepage_id));
        let Some((space, home)) = space else { panic!("confluence emulator: no space {space_key}") };
        assert!(!st.title_taken(space, title, None), "confluence emulator: title {title:?} taken in {space_key}");
        let other = self.shared.other_account_id.clone();
        let id = st.new_page(space, Some(home), title, body, &other, chrono::Utc::now());
        for l in labels {
            st.add_label(id, "global", l);
        }
        id.to_string()
    }

    /// Edits a page's body as another user would: version + 1, last modified now. Returns the new
    /// version number, `None` for an unknown page.
    pub fn edit_page(&self, id: &str, new_body: &str) -> Option<u32> {
        let id: u64 = id.parse().ok()?;
        let other = self.shared.other_account_id.clone();
        let mut st = self.shared.st();
        let p = st.pages.get_mut(&id)?;
        p.body = new_body.to_string();
        p.version = state::version(p.version.number + 1, &other, chrono::Utc::now(), "", false);
        Some(p.version.number)
    }

    /// Adds labels to a page as another user would (no version change, like in Confluence).
    pub fn label_page(&self, id: &str, labels: &[&str]) -> bool {
        let Ok(id) = id.parse::<u64>() else { return false };
        let mut st = self.shared.st();
        labels.iter().all(|l| st.add_label(id, "global", l))
    }

    /// Attaches `bytes` to a page as another user would (a new attachment, or a new version of
    /// the one with that title; the page's version stays). Returns the attachment id (`att…`).
    pub fn attach(&self, page_id: &str, title: &str, bytes: &[u8]) -> Option<String> {
        let id: u64 = page_id.parse().ok()?;
        let other = self.shared.other_account_id.clone();
        let mut st = self.shared.st();
        let existing = st.pages.get(&id)?.attachments.iter().position(|a| a.title == title);
        let aid = match existing {
            Some(ix) => st.pages.get(&id)?.attachments[ix].id,
            None => st.next(),
        };
        let number = existing.and_then(|ix| st.pages.get(&id)?.attachments[ix].current().map(|v| v.version.number));
        let number = number.map_or(1, |n| n + 1);
        let path = self.shared.dir.join(format!("att{aid}-v{number}"));
        std::fs::write(&path, bytes).ok()?;
        let now = chrono::Utc::now();
        let v = state::AttVersion {
            version: state::version(number, &other, now, "", false),
            size: bytes.len() as u64,
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)),
            media_type: http::guess_mime(title, None),
            path,
        };
        let file_id = state::uuid_from(aid, u64::from(number));
        let p = st.pages.get_mut(&id)?;
        match existing {
            Some(ix) => {
                p.attachments[ix].versions.push(v);
                p.attachments[ix].file_ids.push(file_id);
            }
            None => p.attachments.push(state::Attachment {
                id: aid,
                file_ids: vec![file_id],
                title: title.to_string(),
                comment: String::new(),
                created_at: now,
                versions: vec![v],
            }),
        }
        Some(format!("att{aid}"))
    }

    /// The bytes of an attachment's current version.
    pub fn attachment_bytes(&self, page_id: &str, title: &str) -> Option<Vec<u8>> {
        let st = self.shared.st();
        let p = st.pages.get(&page_id.parse().ok()?)?;
        let a = p.attachments.iter().find(|a| a.title == title)?;
        std::fs::read(&a.current()?.path).ok()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
