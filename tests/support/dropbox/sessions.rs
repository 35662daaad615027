//! Upload sessions: `upload_session/start`, `append_v2`, `start_batch`, and the session lookups
//! `finish` and `finish_batch_v2` share (SPEC `UploadSessionLookupError`).
//!
//! Sequential sessions take data in order (`offset` must equal the bytes received so far);
//! concurrent ones take appends at offsets that are multiples of 4 MiB, each a multiple of 4 MiB
//! long except the closing one, and no data on start or finish. Sessions live `session_ttl_secs`.

use super::Shared;
use super::hash::{BLOCK, Hasher};
use super::http::{Arg, Received, TempFile, endpoint_error, json_reply, receive, tag};
use super::state::{Session, State};
use axum::body::Body;
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the argument of an upload-style route comes from (for 400 texts).
pub const HDR: &str = "HTTP header \"Dropbox-API-Arg\"";

/// Largest file a session may build: 2^41 - 2^22 bytes (SPEC).
const MAX_SESSION: u64 = (1 << 41) - (1 << 22);

/// A void union value as JSON (`{".tag": t}`).
pub fn void(t: &str) -> Value {
    json!({ ".tag": t })
}

/// 409 with a void union error at the top level (`payload_too_large`, `closed`, ...).
pub fn void_error(t: &str) -> Response {
    endpoint_error(t, void(t))
}

/// 409 with an `UploadSessionLookupError` at the top level (append) or, with `wrap`, under
/// `lookup_failed` (finish).
pub fn lookup_reply(l: &Value, wrap: bool) -> Response {
    let t = tag(l).unwrap_or("other");
    if wrap {
        endpoint_error(&format!("lookup_failed/{t}"), json!({".tag": "lookup_failed", "lookup_failed": l}))
    } else {
        endpoint_error(t, l.clone())
    }
}

/// The `UploadSessionCursor` of an argument.
pub fn cursor(a: &Arg) -> Result<(String, u64), Response> {
    let mut ctx = String::new();
    let c = a.sub("cursor", &mut ctx)?;
    let id = c.str("session_id")?.to_string();
    let offset = c.opt_u64("offset")?.ok_or_else(|| c.err("missing required field 'offset'"))?;
    Ok((id, offset))
}

/// The session a cursor names, or its `UploadSessionLookupError` (committed → `closed` when
/// appending, `not_found` when finishing; expired → `not_found`; busy → `incorrect_offset`).
pub fn lookup<'a>(st: &'a mut State, id: &str, ttl: Duration, appending: bool) -> Result<&'a mut Session, Value> {
    if appending && st.committed_sessions.contains(id) {
        return Err(void("closed"));
    }
    let Some(s) = st.sessions.get_mut(id) else { return Err(void("not_found")) };
    if s.created.elapsed() > ttl {
        return Err(void("not_found"));
    }
    if s.busy && !s.concurrent {
        return Err(json!({".tag": "incorrect_offset", "correct_offset": s.size}));
    }
    Ok(s)
}

/// Registers a new session around a stored blob; returns its id.
pub fn register(st: &mut State, blob: TempFile, size: u64, closed: bool, concurrent: bool, hasher: Hasher) -> String {
    let id = st.secret("pid_upload_session:");
    let mut pieces = BTreeMap::new();
    if concurrent && size > 0 {
        pieces.insert(0, size);
    }
    let path = blob.keep();
    st.sessions.insert(
        id.clone(),
        Session {
            blob: path,
            size,
            closed,
            concurrent,
            created: Instant::now(),
            hasher: (!concurrent).then_some(hasher),
            pieces,
            busy: false,
        },
    );
    id
}

fn session_type(a: &Arg) -> Result<bool, Response> {
    match a.obj.get("session_type").filter(|v| !v.is_null()) {
        None => Ok(false),
        Some(v) => match tag(v) {
            Some("sequential") => Ok(false),
            Some("concurrent") => Ok(true),
            _ => Err(a.err(format!("session_type: unknown tag in {v}"))),
        },
    }
}

/// Checks what a request sent: over 150 MiB → `payload_too_large`; a `content_hash` of this
/// request's data that does not match → `content_hash_mismatch`.
pub fn check_received(r: &Received, expect: Option<&str>) -> Result<(), Response> {
    if r.too_large {
        return Err(void_error("payload_too_large"));
    }
    if let Some(h) = expect
        && r.hasher.clone().finish().0 != h
    {
        return Err(void_error("content_hash_mismatch"));
    }
    Ok(())
}

/// `upload_session/start` → `{"session_id"}`.
pub async fn start(sh: &Arc<Shared>, route: &str, arg: Value, body: Body) -> Response {
    let parsed = (|| {
        let a = Arg::new(&arg, route, HDR)?;
        Ok((a.bool("close", false)?, session_type(&a)?, a.content_hash()?))
    })();
    let (close, concurrent, expect) = match parsed {
        Ok(x) => x,
        Err(r) => {
            super::http::drain(body).await;
            return r;
        }
    };
    let tmp = TempFile::new(sh.st().new_blob("session"));
    let mut f = match tokio::fs::File::create(&tmp.path).await {
        Ok(f) => f,
        Err(e) => return super::http::plain(500, format!("could not store the upload: {e}")),
    };
    let r = match receive(body, &mut f, route, None).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    drop(f);
    if concurrent && r.size > 0 {
        return void_error("concurrent_session_data_not_allowed");
    }
    if concurrent && close {
        return void_error("concurrent_session_close_not_allowed");
    }
    if let Err(resp) = check_received(&r, expect.as_deref()) {
        return resp;
    }
    let mut st = sh.st();
    let id = register(&mut st, tmp, r.size, close, concurrent, r.hasher);
    json_reply(200, json!({ "session_id": id }))
}

/// `upload_session/start_batch` (RPC) `{"num_sessions": 1..1000, "session_type"}` → `{"session_ids"}`.
pub fn start_batch(sh: &Shared, route: &str, v: Value) -> Response {
    let parsed = (|| {
        let a = Arg::new(&v, route, "request body")?;
        let n = a.opt_u64("num_sessions")?.ok_or_else(|| a.err("missing required field 'num_sessions'"))?;
        if !(1..=1000).contains(&n) {
            return Err(a.err(format!("num_sessions: {n} is not between 1 and 1000")));
        }
        Ok((n, session_type(&a)?))
    })();
    let (n, concurrent) = match parsed {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut st = sh.st();
    let mut ids = vec![];
    for _ in 0..n {
        let tmp = TempFile::new(st.new_blob("session"));
        if let Err(e) = std::fs::File::create(&tmp.path) {
            return super::http::plain(500, format!("could not create a session: {e}"));
        }
        ids.push(register(&mut st, tmp, 0, false, concurrent, Hasher::default()));
    }
    json_reply(200, json!({ "session_ids": ids }))
}

/// `upload_session/append_v2` → `null`. Errors (UploadSessionAppendError): `not_found`,
/// `incorrect_offset{correct_offset}`, `closed`, `too_large`, `payload_too_large`,
/// `content_hash_mismatch`, `concurrent_session_invalid_offset`, `concurrent_session_invalid_data_size`.
/// A failed append leaves the session as it was.
pub async fn append(sh: &Arc<Shared>, route: &str, arg: Value, body: Body) -> Response {
    let parsed = (|| {
        let a = Arg::new(&arg, route, HDR)?;
        Ok((cursor(&a)?, a.bool("close", false)?, a.content_hash()?))
    })();
    let ((id, offset), close, expect) = match parsed {
        Ok(x) => x,
        Err(r) => {
            super::http::drain(body).await;
            return r;
        }
    };
    let claimed = {
        let mut st = sh.st();
        match lookup(&mut st, &id, sh.session_ttl, true) {
            Err(l) => Err(l),
            // A concurrent session's closing append may overtake earlier pieces: after it, only
            // pieces below the end it fixed are accepted.
            Ok(s) if s.closed && (!s.concurrent || close || offset >= s.size) => Err(void("closed")),
            Ok(s) if s.concurrent && offset % BLOCK as u64 != 0 => Err(void("concurrent_session_invalid_offset")),
            Ok(s) if !s.concurrent && offset != s.size => {
                Err(json!({".tag": "incorrect_offset", "correct_offset": s.size}))
            }
            Ok(s) => {
                s.busy = !s.concurrent;
                Ok((s.blob.clone(), s.concurrent, s.size, s.hasher.clone()))
            }
        }
    };
    let (blob, concurrent, old_size, mut hasher) = match claimed {
        Ok(x) => x,
        Err(l) => {
            super::http::drain(body).await;
            return lookup_reply(&l, false);
        }
    };
    let _busy = Busy { sh, id: id.clone() };
    let res = append_data(&blob, offset, !concurrent, body, route, hasher.as_mut()).await;
    let mut st = sh.st();
    let Some(s) = st.sessions.get_mut(&id) else { return void_error("not_found") };
    let r = match res {
        Ok(r) => r,
        Err(resp) => {
            rollback(&blob, concurrent, old_size);
            return resp;
        }
    };
    let fail = if let Err(resp) = check_received(&r, expect.as_deref()) {
        Some(resp)
    } else if concurrent && !close && r.size % BLOCK as u64 != 0 {
        Some(void_error("concurrent_session_invalid_data_size"))
    } else if concurrent && s.closed && offset + r.size > s.size {
        Some(void_error("closed"))
    } else if offset + r.size > MAX_SESSION {
        Some(void_error("too_large"))
    } else {
        None
    };
    if let Some(resp) = fail {
        rollback(&blob, concurrent, old_size);
        return resp;
    }
    if concurrent {
        s.pieces.insert(offset, r.size);
        if close {
            s.size = offset + r.size;
        }
    } else {
        s.size += r.size;
        s.hasher = hasher;
    }
    s.closed |= close;
    json_reply(200, Value::Null)
}

/// Clears a sequential session's `busy` flag when the request ends, however it ends (a client
/// that goes away mid-body must not leave the session blocked). Declare it before taking the
/// state lock in the same scope, so the lock is released first.
pub struct Busy<'a> {
    pub sh: &'a Shared,
    pub id: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.sh.st().sessions.get_mut(&self.id) {
            s.busy = false;
        }
    }
}

/// Writes a request's data into a session blob at `offset`; `truncate` (sequential sessions) first
/// cuts the blob to `offset`, dropping whatever a failed or abandoned request left behind.
pub async fn append_data(
    blob: &std::path::Path,
    offset: u64,
    truncate: bool,
    body: Body,
    route: &str,
    hasher: Option<&mut Hasher>,
) -> Result<Received, Response> {
    use tokio::io::AsyncSeekExt;
    let io_err = |e: std::io::Error| super::http::plain(500, format!("could not store the upload: {e}"));
    let mut f = tokio::fs::OpenOptions::new().write(true).open(blob).await.map_err(io_err)?;
    if truncate {
        f.set_len(offset).await.map_err(io_err)?;
    }
    f.seek(std::io::SeekFrom::Start(offset)).await.map_err(io_err)?;
    receive(body, &mut f, route, hasher).await
}

/// Undoes a failed sequential append (the blob is cut back to what the session had).
pub fn rollback(blob: &std::path::Path, concurrent: bool, old_size: u64) {
    if !concurrent && let Ok(f) = std::fs::OpenOptions::new().write(true).open(blob) {
        let _ = f.set_len(old_size);
    }
}

pub use super::finish::{finish, finish_batch};
