//! Write semantics on the namespace (SPEC `WriteMode`, `CommitInfo`, `WriteError`, `RelocationError`):
//! what is a conflict for `add` / `overwrite` / `update`, `strict_conflict`, autorename, parent
//! folders created on the way, moves of whole trees.

use super::http::{Arg, tag};
use super::paths::{self, PathError, Target};
use super::state::{Entry, FileData, Kind, State, now_string};
use axum::response::Response;
use serde_json::{Value, json};
use std::path::Path;

/// `WriteMode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Add,
    Overwrite,
    Update(String),
}

/// `CommitInfo` (the `path` as sent: a path or an `id:`).
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub path: String,
    pub mode: Mode,
    pub autorename: bool,
    pub client_modified: Option<String>,
    pub strict_conflict: bool,
}

impl CommitInfo {
    /// Validates a `CommitInfo` argument (bad values are 400s, like Dropbox's argument checks).
    pub fn parse(a: &Arg) -> Result<CommitInfo, Response> {
        let path = a.str("path")?;
        if !(path.starts_with('/') || path.starts_with("id:")) {
            return Err(
                a.err(format!("path: '{path}' did not match pattern '(/(.|[\\r\\n])*)|(ns:[0-9]+(/.*)?)|(id:.*)'"))
            );
        }
        let mode = match a.obj.get("mode").filter(|v| !v.is_null()) {
            None => Mode::Add,
            Some(m) => match tag(m) {
                Some("add") => Mode::Add,
                Some("overwrite") => Mode::Overwrite,
                Some("update") => {
                    let rev = m.get("update").and_then(Value::as_str).unwrap_or("");
                    let ok = rev.len() >= 9 && rev.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                    if !ok {
                        return Err(
                            a.err(format!("mode: update: '{rev}' did not match pattern '[0-9a-f]+' (at least 9)"))
                        );
                    }
                    Mode::Update(rev.to_string())
                }
                _ => return Err(a.err(format!("mode: unknown tag in {m}"))),
            },
        };
        let client_modified = match a.opt_str("client_modified")? {
            None => None,
            Some(t) => {
                if chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%SZ").is_err() {
                    return Err(a.err(format!("client_modified: '{t}' does not match format '%Y-%m-%dT%H:%M:%SZ'")));
                }
                Some(t.to_string())
            }
        };
        Ok(CommitInfo {
            path: path.to_string(),
            mode,
            autorename: a.bool("autorename", false)?,
            client_modified,
            strict_conflict: a.bool("strict_conflict", false)?,
        })
    }
}

/// `WriteError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    Malformed,
    /// `file`, `folder` or `file_ancestor`.
    Conflict(&'static str),
    Disallowed,
}

impl From<PathError> for WriteError {
    fn from(e: PathError) -> Self {
        match e {
            PathError::Malformed(_) => WriteError::Malformed,
            PathError::Disallowed => WriteError::Disallowed,
        }
    }
}

impl WriteError {
    /// The union value, e.g. `{".tag": "conflict", "conflict": {".tag": "file"}}`.
    pub fn json(&self) -> Value {
        match self {
            WriteError::Malformed => json!({".tag": "malformed_path"}),
            WriteError::Conflict(c) => json!({".tag": "conflict", "conflict": {".tag": c}}),
            WriteError::Disallowed => json!({".tag": "disallowed_name"}),
        }
    }

    /// The tags for `error_summary`, e.g. `conflict/file`.
    pub fn summary(&self) -> String {
        match self {
            WriteError::Malformed => "malformed_path".into(),
            WriteError::Conflict(c) => format!("conflict/{c}"),
            WriteError::Disallowed => "disallowed_name".into(),
        }
    }
}

/// Uploaded content ready to commit: a file under the temp dir and its hashes.
pub struct Content<'a> {
    pub src: &'a Path,
    pub size: u64,
    pub content_hash: String,
    pub sha256: String,
}

/// `RelocationError` variants a move can produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveError {
    To(WriteError),
    IntoItself,
    Duplicated,
}

impl State {
    /// The display path a write names (an `id:` must be an existing file).
    fn write_display(&self, raw: &str) -> Result<String, WriteError> {
        if raw.starts_with("id:") {
            let key = self.find(&Target::Id(raw.to_string())).ok_or(WriteError::Malformed)?;
            let e = self.entries.get(&key).ok_or(WriteError::Malformed)?;
            return if e.file().is_some() { Ok(e.display.clone()) } else { Err(WriteError::Conflict("folder")) };
        }
        paths::check_write_path(raw)?;
        Ok(self.canonical_display(raw))
    }

    /// The first autorename alternative that is free.
    fn free_alternative(&self, display: &str, conflicted: bool, is_file: bool) -> String {
        let mut n = if conflicted { 1 } else { 2 };
        loop {
            let alt = paths::alternative(display, n, conflicted, is_file);
            if !self.entries.contains_key(&paths::lower(&alt)) {
                return alt;
            }
            n += 1;
        }
    }

    /// Commits a file: returns its key and whether anything was written (identical content at the
    /// target is "nothing gets written; no conflict"). On success the content file is moved away.
    /// Decision (UNVERIFIED): `strict_conflict` turns "identical content" into a conflict for `add`
    /// and for `update` with another rev (and `update` onto nothing into a conflict); `overwrite`
    /// never conflicts with a file.
    pub fn write_file(&mut self, info: &CommitInfo, c: &Content) -> Result<(String, bool), WriteError> {
        let display = self.write_display(&info.path)?;
        let key = paths::lower(&display);
        if self.file_ancestor(&key).is_some() {
            return Err(WriteError::Conflict("file_ancestor"));
        }
        let conflict = match self.entries.get(&key).map(|e| &e.kind) {
            None => matches!(info.mode, Mode::Update(_)) && info.strict_conflict,
            Some(Kind::Folder) => {
                if !info.autorename {
                    return Err(WriteError::Conflict("folder"));
                }
                true
            }
            Some(Kind::File(f)) => {
                let same = f.content_hash == c.content_hash;
                let conflict = match &info.mode {
                    Mode::Overwrite => false,
                    Mode::Add => !same || info.strict_conflict,
                    Mode::Update(rev) => rev != &f.rev && (!same || info.strict_conflict),
                };
                if same && !conflict {
                    return Ok((key, false));
                }
                conflict
            }
        };
        let (key, display) = if conflict {
            if !info.autorename {
                return Err(WriteError::Conflict("file"));
            }
            let alt = self.free_alternative(&display, matches!(info.mode, Mode::Update(_)), true);
            (paths::lower(&alt), alt)
        } else {
            (key, display)
        };
        let blob = self.new_blob("blob");
        std::fs::rename(c.src, &blob).map_err(|_| WriteError::Conflict("file"))?;
        self.ensure_parents(&display);
        let old = self.entries.get(&key).cloned();
        let id = match &old {
            Some(e) => e.id.clone(),
            None => self.new_id(),
        };
        if let Some(f) = old.as_ref().and_then(Entry::file) {
            let _ = std::fs::remove_file(&f.blob);
        }
        let now = now_string();
        let file = FileData {
            rev: self.new_rev(),
            size: c.size,
            content_hash: c.content_hash.clone(),
            sha256: c.sha256.clone(),
            client_modified: info.client_modified.clone().unwrap_or_else(|| now.clone()),
            server_modified: now,
            blob,
        };
        self.put(key.clone(), Entry { id, display, seq: 0, kind: Kind::File(file) });
        Ok((key, true))
    }

    /// Creates a folder (and its missing parents); returns its key.
    pub fn create_folder(&mut self, raw: &str, autorename: bool) -> Result<String, WriteError> {
        if raw.starts_with("id:") {
            return Err(WriteError::Malformed);
        }
        paths::check_write_path(raw)?;
        let mut display = self.canonical_display(raw);
        let key = paths::lower(&display);
        if self.file_ancestor(&key).is_some() {
            return Err(WriteError::Conflict("file_ancestor"));
        }
        if let Some(e) = self.entries.get(&key) {
            if !autorename {
                return Err(WriteError::Conflict(if e.file().is_some() { "file" } else { "folder" }));
            }
            display = self.free_alternative(&display, false, false);
        }
        let key = paths::lower(&display);
        self.ensure_parents(&display);
        let id = self.new_id();
        self.put(key.clone(), Entry { id, display, seq: 0, kind: Kind::Folder });
        Ok(key)
    }

    /// Moves an entry (with everything under it) to `to_raw`; returns the new key. Moved entries
    /// keep their ids; files get a new rev (Decision (UNVERIFIED): a move is a new revision at the
    /// new path; `server_modified` and the content stay). A case-only rename is allowed.
    pub fn relocate(&mut self, from_key: &str, to_raw: &str, autorename: bool) -> Result<String, MoveError> {
        if to_raw.starts_with("id:") {
            return Err(MoveError::To(WriteError::Malformed));
        }
        paths::check_write_path(to_raw).map_err(|e| MoveError::To(e.into()))?;
        let Some(from) = self.entries.get(from_key).cloned() else { return Err(MoveError::To(WriteError::Malformed)) };
        let mut to_display = self.canonical_display(to_raw);
        let mut to_key = paths::lower(&to_display);
        if to_key == from_key && to_display == from.display {
            return Err(MoveError::Duplicated);
        }
        if paths::is_under(&to_key, from_key) {
            return Err(MoveError::IntoItself);
        }
        if self.file_ancestor(&to_key).is_some() {
            return Err(MoveError::To(WriteError::Conflict("file_ancestor")));
        }
        if to_key != from_key
            && let Some(e) = self.entries.get(&to_key)
        {
            if !autorename {
                return Err(MoveError::To(WriteError::Conflict(if e.file().is_some() { "file" } else { "folder" })));
            }
            to_display = self.free_alternative(&to_display, false, from.file().is_some());
            to_key = paths::lower(&to_display);
        }
        let from_depth = from.display.split('/').count();
        let moved = self.remove_tree(from_key);
        self.ensure_parents(&to_display);
        for (_, mut e) in moved {
            let rest: Vec<&str> = e.display.split('/').skip(from_depth).collect();
            let display = if rest.is_empty() { to_display.clone() } else { format!("{to_display}/{}", rest.join("/")) };
            let new_rev = if e.file().is_some() { Some(self.new_rev()) } else { None };
            if let (Kind::File(f), Some(r)) = (&mut e.kind, new_rev) {
                f.rev = r;
            }
            e.display = display;
            self.put(paths::lower(&e.display), e);
        }
        Ok(to_key)
    }
}
