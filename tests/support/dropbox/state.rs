//! The namespace: entries keyed by `path_lower`, tombstones of deleted paths, the change sequence
//! that list cursors point into, access tokens and upload sessions.
//!
//! Every change (a file written, a folder created, a path deleted) takes the next sequence number
//! and stamps it on the entry or tombstone; a cursor is a sequence number, and "changes since S" are
//! the entries and tombstones in scope stamped after S, oldest first (so a page boundary never skips
//! a change, and an entry changed twice is reported once, as it is now).

use super::hash::Hasher;
use super::paths::{self, Target};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;

/// The current time as Dropbox prints it (`DropboxTimestamp`, UTC, second precision).
pub fn now_string() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A stored file revision; the bytes live in `blob` under the emulator's temp dir.
#[derive(Clone, Debug)]
pub struct FileData {
    pub rev: String,
    pub size: u64,
    pub content_hash: String,
    pub sha256: String,
    pub client_modified: String,
    pub server_modified: String,
    pub blob: PathBuf,
}

/// A file or a folder.
#[derive(Clone, Debug)]
pub enum Kind {
    File(FileData),
    Folder,
}

/// One entry of the namespace.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: String,
    /// `path_display`.
    pub display: String,
    /// Sequence number of the entry's last change.
    pub seq: u64,
    pub kind: Kind,
}

impl Entry {
    /// The file data, if a file.
    pub fn file(&self) -> Option<&FileData> {
        match &self.kind {
            Kind::File(f) => Some(f),
            Kind::Folder => None,
        }
    }
}

/// A deleted path.
#[derive(Clone, Debug)]
pub struct Tomb {
    pub seq: u64,
    pub display: String,
}

/// An issued access token.
#[derive(Clone, Debug)]
pub struct Token {
    pub expires: Instant,
    /// `Faults::token_generation` at issuance; older generations are expired.
    pub generation: u64,
}

/// An upload session; its data is stored in `blob`.
pub struct Session {
    pub blob: PathBuf,
    /// Bytes received (sequential) or the end of the closing append (concurrent, once known).
    pub size: u64,
    pub closed: bool,
    pub concurrent: bool,
    pub created: Instant,
    /// Sequential sessions hash as data arrives; concurrent ones at finish.
    pub hasher: Option<Hasher>,
    /// Concurrent sessions: offset → length of every append received.
    pub pieces: BTreeMap<u64, u64>,
    /// A request is writing to it now (a second one at the same time is `incorrect_offset`).
    pub busy: bool,
}

/// Everything mutable, behind one mutex (never held across an await).
pub struct State {
    pub entries: BTreeMap<String, Entry>,
    pub tombs: BTreeMap<String, Tomb>,
    pub seq: u64,
    /// Cursors from another epoch answer `reset`.
    pub epoch: u64,
    next: u64,
    random: u64,
    pub dir: PathBuf,
    pub tokens: HashMap<String, Token>,
    pub refresh_revoked: bool,
    pub sessions: HashMap<String, Session>,
    /// Session ids that were committed (appending to them is `closed`).
    pub committed_sessions: std::collections::HashSet<String>,
}

impl State {
    /// An empty namespace storing blobs under `dir`.
    pub fn new(dir: PathBuf, random: u64) -> State {
        State {
            entries: BTreeMap::new(),
            tombs: BTreeMap::new(),
            seq: 0,
            epoch: 1,
            next: 1,
            random,
            dir,
            tokens: HashMap::new(),
            refresh_revoked: false,
            sessions: HashMap::new(),
            committed_sessions: Default::default(),
        }
    }

    /// A fresh number (ids, revs, blobs).
    pub fn next(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// The next change sequence number.
    pub fn bump(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A new file or folder id.
    pub fn new_id(&mut self) -> String {
        let n = self.next();
        format!("id:emu{:04x}{:012x}", self.random & 0xffff, n)
    }

    /// A new revision (hex, at least 9 characters, unique).
    pub fn new_rev(&mut self) -> String {
        let n = self.next();
        format!("{:05x}{:09x}", (self.random >> 16) & 0xfffff, n)
    }

    /// A new blob file name under the temp dir.
    pub fn new_blob(&mut self, what: &str) -> PathBuf {
        let n = self.next();
        self.dir.join(format!("{what}-{n}"))
    }

    /// A new random-looking secret (tokens, session ids).
    pub fn secret(&mut self, prefix: &str) -> String {
        use sha2::{Digest, Sha256};
        let n = self.next();
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let mut h = Sha256::new();
        h.update(self.random.to_le_bytes());
        h.update(n.to_le_bytes());
        h.update(nanos.to_le_bytes());
        format!("{prefix}{}", &hex::encode(h.finalize())[..40])
    }

    /// The key (`path_lower`) of what a path argument names, if it exists (`""` = root).
    pub fn find(&self, t: &Target) -> Option<String> {
        match t {
            Target::Path(p) if p.is_empty() => Some(String::new()),
            Target::Path(p) => {
                let k = paths::lower(p);
                self.entries.contains_key(&k).then_some(k)
            }
            Target::Id(id) => self.entries.iter().find(|(_, e)| &e.id == id).map(|(k, _)| k.clone()),
            Target::Rev(r) => {
                self.entries.iter().find(|(_, e)| e.file().is_some_and(|f| &f.rev == r)).map(|(k, _)| k.clone())
            }
        }
    }

    /// Metadata of an entry; `tagged` adds `.tag` (the `Metadata` union; `FileMetadata` and
    /// `FolderMetadata` structs have none).
    pub fn metadata(&self, key: &str, tagged: bool) -> Value {
        let Some(e) = self.entries.get(key) else { return Value::Null };
        let mut v = match &e.kind {
            Kind::File(f) => json!({
                ".tag": "file", "name": paths::name(&e.display), "id": e.id,
                "client_modified": f.client_modified, "server_modified": f.server_modified,
                "rev": f.rev, "size": f.size, "path_lower": key, "path_display": e.display,
                "is_downloadable": true, "content_hash": f.content_hash,
            }),
            Kind::Folder => json!({
                ".tag": "folder", "name": paths::name(&e.display), "id": e.id,
                "path_lower": key, "path_display": e.display,
            }),
        };
        if !tagged && let Some(o) = v.as_object_mut() {
            o.remove(".tag");
        }
        v
    }

    /// `DeletedMetadata` of a tombstone.
    pub fn deleted_metadata(key: &str, t: &Tomb) -> Value {
        json!({".tag": "deleted", "name": paths::name(&t.display), "path_lower": key, "path_display": t.display})
    }

    /// Inserts or replaces an entry as a new change (removes a tombstone of the path).
    pub fn put(&mut self, key: String, mut e: Entry) {
        e.seq = self.bump();
        self.tombs.remove(&key);
        self.entries.insert(key, e);
    }

    /// Creates the missing parent folders of a display path (the caller checked for file ancestors).
    pub fn ensure_parents(&mut self, display: &str) {
        let mut disp = String::new();
        let comps: Vec<&str> = display.split('/').skip(1).collect();
        for comp in &comps[..comps.len().saturating_sub(1)] {
            disp = format!("{disp}/{comp}");
            let key = paths::lower(&disp);
            if let Some(e) = self.entries.get(&key) {
                disp = e.display.clone();
                continue;
            }
            let id = self.new_id();
            self.put(key, Entry { id, display: disp.clone(), seq: 0, kind: Kind::Folder });
        }
    }

    /// The display path with the existing ancestors' casing (Dropbox keeps the first casing).
    pub fn canonical_display(&self, display: &str) -> String {
        let mut out = String::new();
        let comps: Vec<&str> = display.split('/').skip(1).collect();
        for (i, comp) in comps.iter().enumerate() {
            let cand = format!("{out}/{comp}");
            match self.entries.get(&paths::lower(&cand)) {
                Some(e) if i + 1 < comps.len() => out = e.display.clone(),
                _ => out = cand,
            }
        }
        out
    }

    /// The nearest ancestor of a key that is a file, if any.
    pub fn file_ancestor(&self, key: &str) -> Option<String> {
        paths::ancestors(key)
            .into_iter()
            .find(|a| self.entries.get(*a).is_some_and(|e| e.file().is_some()))
            .map(str::to_string)
    }

    /// Removes an entry and everything under it, leaving tombstones (the entry's first); returns
    /// the removed entries (the blobs are the caller's to delete).
    pub fn remove_tree(&mut self, key: &str) -> Vec<(String, Entry)> {
        let keys: Vec<String> = self
            .entries
            .range(key.to_string()..)
            .take_while(|(k, _)| k.starts_with(key))
            .filter(|(k, _)| k.as_str() == key || paths::is_under(k, key))
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = vec![];
        for k in keys {
            if let Some(e) = self.entries.remove(&k) {
                let seq = self.bump();
                self.tombs.insert(k.clone(), Tomb { seq, display: e.display.clone() });
                out.push((k, e));
            }
        }
        out
    }

    /// Changes in a scope since `since`, oldest first, at most `limit`: `(entries, cursor, has_more)`.
    /// Deleted entries come only after a first page (`since > 0`) or with `include_deleted`.
    /// Decision (UNVERIFIED): a recursive listing of a folder includes the folder itself (as
    /// Dropbox's does); a non-recursive one only its children.
    pub fn changes(
        &self,
        scope: &str,
        recursive: bool,
        include_deleted: bool,
        since: u64,
        limit: usize,
    ) -> (Vec<Value>, u64, bool) {
        let in_scope = |k: &str| {
            if recursive {
                paths::is_under(k, scope) || (!scope.is_empty() && k == scope)
            } else {
                !k.is_empty() && paths::parent(k) == scope
            }
        };
        let mut found: Vec<(u64, Value)> = vec![];
        for (k, e) in &self.entries {
            if e.seq > since && in_scope(k) {
                found.push((e.seq, self.metadata(k, true)));
            }
        }
        if since > 0 || include_deleted {
            for (k, t) in &self.tombs {
                if t.seq > since && in_scope(k) && k != scope {
                    found.push((t.seq, State::deleted_metadata(k, t)));
                }
            }
        }
        found.sort_by_key(|(s, _)| *s);
        let limit = limit.max(1);
        if found.len() > limit {
            let cursor = found[limit - 1].0;
            found.truncate(limit);
            return (found.into_iter().map(|(_, v)| v).collect(), cursor, true);
        }
        (found.into_iter().map(|(_, v)| v).collect(), self.seq.max(since), false)
    }
}
