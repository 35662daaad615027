//! RPC routes on the namespace: `list_folder` (+ `/continue`, cursors into the change sequence),
//! `get_metadata`, `create_folder_v2`, `move_v2`, `delete_v2`.

use super::Shared;
use super::http::{Arg, endpoint_error, json_reply, too_many_write_operations};
use super::paths::{self, Target};
use super::state::State;
use super::write::{MoveError, WriteError};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const BODY: &str = "request body";

/// 409 `{".tag": outer, outer: {".tag": inner}}`, e.g. `path/not_found`.
pub fn lookup_error(outer: &str, inner: &str) -> Response {
    endpoint_error(&format!("{outer}/{inner}"), json!({".tag": outer, outer: {".tag": inner}}))
}

/// 409 with a `WriteError` under `outer` (e.g. `path/conflict/folder`).
pub fn write_error(outer: &str, e: &WriteError) -> Response {
    endpoint_error(&format!("{outer}/{}", e.summary()), json!({".tag": outer, outer: e.json()}))
}

/// What a list cursor holds; encoded as opaque text.
#[derive(Serialize, Deserialize)]
struct Cursor {
    /// Epoch (`reset_cursors` moves it on).
    e: u64,
    /// Scope key (`""` = root).
    p: String,
    r: bool,
    d: bool,
    /// Changes up to this sequence number have been delivered.
    s: u64,
    l: usize,
}

impl Cursor {
    fn encode(&self) -> String {
        format!("AAH{}", hex::encode(serde_json::to_vec(self).unwrap_or_default()))
    }

    fn decode(s: &str) -> Option<Cursor> {
        let c: Cursor = serde_json::from_slice(&hex::decode(s.strip_prefix("AAH")?).ok()?).ok()?;
        (1..=2000).contains(&c.l).then_some(c)
    }
}

/// The key of a folder to list, or the 409 (`path/not_found`, `path/not_folder`, `path/malformed_path`).
fn scope(st: &State, t: &Target) -> Result<String, Response> {
    if let Target::Path(p) = t
        && !p.is_empty()
        && paths::check_write_path(p).is_err()
    {
        return Err(lookup_error("path", "malformed_path"));
    }
    let key = st.find(t).ok_or_else(|| lookup_error("path", "not_found"))?;
    if !key.is_empty() && st.entries.get(&key).is_some_and(|e| e.file().is_some()) {
        return Err(lookup_error("path", "not_folder"));
    }
    Ok(key)
}

fn page(st: &State, c: &mut Cursor) -> Value {
    let (entries, s, has_more) = st.changes(&c.p, c.r, c.d, c.s, c.l);
    c.s = s;
    json!({"entries": entries, "cursor": c.encode(), "has_more": has_more})
}

/// `files/list_folder`. Decision (UNVERIFIED): without `limit` a page holds up to 2000 entries;
/// `path: "/"` is the 400 Dropbox gives ("Specify the root folder as an empty string").
pub fn list_folder(sh: &Shared, route: &str, v: Value) -> Response {
    let a = match Arg::new(&v, route, BODY) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let parsed = (|| {
        let path = a.str("path")?;
        if path == "/" {
            return Err(a.err("path: Specify the root folder as an empty string rather than as \"/\"."));
        }
        let t = paths::target(path, true, false).map_err(|m| a.err(format!("path: {m}")))?;
        let limit = a.opt_u64("limit")?.unwrap_or(2000);
        if !(1..=2000).contains(&limit) {
            return Err(a.err(format!("limit: {limit} is not between 1 and 2000")));
        }
        Ok((t, a.bool("recursive", false)?, a.bool("include_deleted", false)?, limit as usize))
    })();
    let (t, recursive, include_deleted, limit) = match parsed {
        Ok(x) => x,
        Err(r) => return r,
    };
    let st = sh.st();
    let key = match scope(&st, &t) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let mut c = Cursor { e: st.epoch, p: key, r: recursive, d: include_deleted, s: 0, l: limit };
    json_reply(200, page(&st, &mut c))
}

/// `files/list_folder/continue`: changes since the cursor (new or changed entries, `deleted` ones).
/// A cursor from before `reset_cursors` is 409 `reset`. Decision (UNVERIFIED): a cursor that does
/// not decode is a 400; a cursor whose folder is gone is 409 `path/not_found`.
pub fn list_continue(sh: &Shared, route: &str, v: Value) -> Response {
    let a = match Arg::new(&v, route, BODY) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let text = match a.str("cursor") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(mut c) = Cursor::decode(text) else { return a.err("cursor: invalid cursor") };
    let st = sh.st();
    if c.e != st.epoch {
        return endpoint_error("reset", json!({".tag": "reset"}));
    }
    if !c.p.is_empty() && !st.entries.contains_key(&c.p) {
        return lookup_error("path", "not_found");
    }
    json_reply(200, page(&st, &mut c))
}

/// `files/get_metadata` (`include_deleted` gives `deleted` metadata for a deleted path).
pub fn get_metadata(sh: &Shared, route: &str, v: Value) -> Response {
    let a = match Arg::new(&v, route, BODY) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let parsed = (|| {
        let path = a.str("path")?;
        let t = paths::target(path, false, true).map_err(|m| a.err(format!("path: {m}")))?;
        Ok((t, a.bool("include_deleted", false)?))
    })();
    let (t, include_deleted) = match parsed {
        Ok(x) => x,
        Err(r) => return r,
    };
    let st = sh.st();
    if let Target::Path(p) = &t
        && paths::check_write_path(p).is_err()
    {
        return lookup_error("path", "malformed_path");
    }
    match st.find(&t) {
        Some(k) => json_reply(200, st.metadata(&k, true)),
        None => {
            if include_deleted
                && let Target::Path(p) = &t
                && let Some(tomb) = st.tombs.get(&paths::lower(p))
            {
                return json_reply(200, State::deleted_metadata(&paths::lower(p), tomb));
            }
            lookup_error("path", "not_found")
        }
    }
}

/// `files/create_folder_v2` → `{"metadata": FolderMetadata}` (a commit).
pub async fn create_folder(sh: &Shared, route: &str, v: Value) -> Response {
    let a = match Arg::new(&v, route, BODY) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (path, autorename) = match (a.str("path"), a.bool("autorename", false)) {
        (Ok(p), Ok(b)) if p.starts_with('/') => (p.to_string(), b),
        (Ok(p), Ok(_)) => {
            return a.err(format!("path: '{p}' did not match pattern '(/(.|[\\r\\n])*)|(ns:[0-9]+(/.*)?)'"));
        }
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let Some(held) = sh.lock.acquire().await else { return too_many_write_operations() };
    let mut st = sh.st();
    match st.create_folder(&path, autorename) {
        Ok(k) => {
            held.committed();
            json_reply(200, json!({"metadata": st.metadata(&k, false)}))
        }
        Err(e) => write_error("path", &e),
    }
}

/// `files/delete_v2` → `{"metadata": Metadata}` as it was (a commit; a folder goes with its content).
/// Decision (UNVERIFIED): a `parent_rev` that does not match is `path_write/conflict/file`; on a
/// folder it is `path_lookup/not_file`.
pub async fn delete(sh: &Shared, route: &str, v: Value) -> Response {
    let a = match Arg::new(&v, route, BODY) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let parsed = (|| {
        let path = a.str("path")?;
        let t = paths::target(path, false, false).map_err(|m| a.err(format!("path: {m}")))?;
        Ok((t, a.opt_str("parent_rev")?.map(str::to_string)))
    })();
    let (t, parent_rev) = match parsed {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(held) = sh.lock.acquire().await else { return too_many_write_operations() };
    let mut st = sh.st();
    if let Target::Path(p) = &t
        && paths::check_write_path(p).is_err()
    {
        return lookup_error("path_lookup", "malformed_path");
    }
    let Some(key) = st.find(&t) else { return lookup_error("path_lookup", "not_found") };
    if let Some(rev) = parent_rev {
        match st.entries.get(&key).and_then(|e| e.file()) {
            None => return lookup_error("path_lookup", "not_file"),
            Some(f) if f.rev != rev => return write_error("path_write", &WriteError::Conflict("file")),
            Some(_) => {}
        }
    }
    let meta = st.metadata(&key, true);
    for (_, e) in st.remove_tree(&key) {
        if let Some(f) = e.file() {
            let _ = std::fs::remove_file(&f.blob);
        }
    }
    held.committed();
    json_reply(200, json!({"metadata": meta}))
}

/// `files/move_v2` → `{"metadata": Metadata}` at the new place (a commit).
pub async fn move_v2(sh: &Shared, route: &str, v: Value) -> Response {
    let a = match Arg::new(&v, route, BODY) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let parsed = (|| {
        let from = a.str("from_path")?;
        let from = paths::target(from, false, false).map_err(|m| a.err(format!("from_path: {m}")))?;
        let to = a.str("to_path")?;
        paths::target(to, false, false).map_err(|m| a.err(format!("to_path: {m}")))?;
        Ok((from, to.to_string(), a.bool("autorename", false)?))
    })();
    let (from, to, autorename) = match parsed {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(held) = sh.lock.acquire().await else { return too_many_write_operations() };
    let mut st = sh.st();
    if let Target::Path(p) = &from
        && paths::check_write_path(p).is_err()
    {
        return lookup_error("from_lookup", "malformed_path");
    }
    let Some(from_key) = st.find(&from) else { return lookup_error("from_lookup", "not_found") };
    match st.relocate(&from_key, &to, autorename) {
        Ok(k) => {
            held.committed();
            json_reply(200, json!({"metadata": st.metadata(&k, true)}))
        }
        Err(MoveError::To(e)) => write_error("to", &e),
        Err(MoveError::IntoItself) => {
            endpoint_error("cant_move_folder_into_itself", json!({".tag": "cant_move_folder_into_itself"}))
        }
        Err(MoveError::Duplicated) => {
            endpoint_error("duplicated_or_nested_paths", json!({".tag": "duplicated_or_nested_paths"}))
        }
    }
}
