//! Committing upload sessions: `upload_session/finish` (upload style, may carry the last data) and
//! `upload_session/finish_batch_v2` (RPC, every session closed, all entries committed as ONE write,
//! which is why batching avoids `too_many_write_operations`).
//!
//! Decision (UNVERIFIED): a finish that fails (argument, hash, 429, write conflict) leaves the
//! session as it was before the request, so the same request can simply be retried.

use super::Shared;
use super::hash::{self, Hasher};
use super::http::{Arg, drain, json_reply, too_many_write_operations};
use super::sessions::{
    Busy, HDR, append_data, check_received, cursor, lookup, lookup_reply, rollback, void, void_error,
};
use super::state::{Session, State};
use super::write::{CommitInfo, Content};
use axum::body::Body;
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

fn commit_arg(a: &Arg) -> Result<CommitInfo, Response> {
    let mut ctx = String::new();
    let c = a.sub("commit", &mut ctx)?;
    CommitInfo::parse(&c)
}

/// Whether a concurrent session's appends tile `[0, size)` exactly.
fn complete(s: &Session) -> bool {
    let mut at = 0;
    for (&o, &l) in &s.pieces {
        if o != at {
            return false;
        }
        at += l;
    }
    at == s.size
}

/// The session taken for a finish request.
struct Claim {
    id: String,
    blob: PathBuf,
    concurrent: bool,
    closed: bool,
    size: u64,
    hasher: Option<Hasher>,
}

/// `upload_session/finish` → `FileMetadata`. Errors (UploadSessionFinishError): `lookup_failed`
/// (`not_found`, `incorrect_offset`, `closed` when data is sent to a closed session),
/// `path` (WriteError), `payload_too_large`, `content_hash_mismatch` (of the whole file),
/// `concurrent_session_data_not_allowed`, `concurrent_session_not_closed`,
/// `concurrent_session_missing_data`; 429 `too_many_write_operations`.
pub async fn finish(sh: &Arc<Shared>, route: &str, arg: Value, body: Body) -> Response {
    let parsed = (|| {
        let a = Arg::new(&arg, route, HDR)?;
        Ok((cursor(&a)?, commit_arg(&a)?, a.content_hash()?))
    })();
    let ((id, offset), info, expect) = match parsed {
        Ok(x) => x,
        Err(r) => {
            drain(body).await;
            return r;
        }
    };
    let claim = {
        let mut st = sh.st();
        match lookup(&mut st, &id, sh.session_ttl, false) {
            Ok(s) if !s.concurrent && offset != s.size => {
                Err(json!({".tag": "incorrect_offset", "correct_offset": s.size}))
            }
            Ok(s) => {
                s.busy = !s.concurrent;
                Ok(Claim {
                    id: id.clone(),
                    blob: s.blob.clone(),
                    concurrent: s.concurrent,
                    closed: s.closed,
                    size: s.size,
                    hasher: s.hasher.clone(),
                })
            }
            Err(l) => Err(l),
        }
    };
    let claim = match claim {
        Ok(c) => c,
        Err(l) => {
            drain(body).await;
            return lookup_reply(&l, true);
        }
    };
    let _busy = Busy { sh, id: claim.id.clone() };
    match finish_claimed(sh, route, &claim, body, &info, expect).await {
        Ok(resp) => resp,
        Err(resp) => {
            rollback(&claim.blob, claim.concurrent, claim.size);
            resp
        }
    }
}

async fn finish_claimed(
    sh: &Arc<Shared>,
    route: &str,
    c: &Claim,
    body: Body,
    info: &CommitInfo,
    expect: Option<String>,
) -> Result<Response, Response> {
    let mut hasher = c.hasher.clone();
    let (size, content_hash, sha256) = if c.concurrent {
        let mut sent = 0u64;
        let mut s = body.into_data_stream();
        while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut s).await {
            sent += chunk.len() as u64;
        }
        if sent > 0 {
            return Err(void_error("concurrent_session_data_not_allowed"));
        }
        let ok = sh.st().sessions.get(&c.id).map(|s| (s.closed, complete(s)));
        match ok {
            Some((false, _)) => return Err(void_error("concurrent_session_not_closed")),
            Some((true, false)) => return Err(void_error("concurrent_session_missing_data")),
            Some((true, true)) => {}
            None => return Err(lookup_reply(&void("not_found"), true)),
        }
        let (ch, sha) = hash_file(c.blob.clone(), c.size).await?;
        (c.size, ch, sha)
    } else {
        let r = append_data(&c.blob, c.size, true, body, route, hasher.as_mut()).await?;
        check_received(&r, None)?;
        if c.closed && r.size > 0 {
            return Err(lookup_reply(&void("closed"), true));
        }
        let (ch, sha) = hasher.unwrap_or_default().finish();
        (c.size + r.size, ch, sha)
    };
    if expect.is_some_and(|h| h != content_hash) {
        return Err(void_error("content_hash_mismatch"));
    }
    let Some(held) = sh.lock.acquire().await else { return Err(too_many_write_operations()) };
    let mut st = sh.st();
    let content = Content { src: &c.blob, size, content_hash, sha256 };
    match st.write_file(info, &content) {
        Ok((key, _)) => {
            held.committed();
            consume(&mut st, &c.id);
            Ok(json_reply(200, st.metadata(&key, false)))
        }
        Err(e) => Err(super::files::write_error("path", &e)),
    }
}

/// A committed session is gone (its blob moved into the namespace or, if nothing was written, removed).
fn consume(st: &mut State, id: &str) {
    if let Some(s) = st.sessions.remove(id) {
        let _ = std::fs::remove_file(&s.blob);
    }
    st.committed_sessions.insert(id.to_string());
}

/// Hashes a concurrent session's blob (cut to its final size) off the async threads.
async fn hash_file(blob: PathBuf, size: u64) -> Result<(String, String), Response> {
    let err = |e: String| super::http::plain(500, format!("could not hash the session: {e}"));
    tokio::task::spawn_blocking(move || {
        let f = std::fs::OpenOptions::new().write(true).open(&blob)?;
        f.set_len(size)?;
        hash::of_file(&blob)
    })
    .await
    .map_err(|e| err(e.to_string()))?
    .map_err(|e| err(e.to_string()))
}

/// One parsed batch entry.
struct Entry {
    id: String,
    offset: u64,
    info: CommitInfo,
    expect: Option<String>,
}

/// `upload_session/finish_batch_v2` (RPC) `{"entries": [UploadSessionFinishArg, ≤ 1000]}` →
/// `{"entries": [{".tag": "success", ..FileMetadata} | {".tag": "failure", "failure": ..}]}` in
/// order. One namespace write for the whole batch; every session must be closed, else
/// `lookup_failed/not_closed`. Decision (UNVERIFIED): when the write lock is taken the whole call
/// answers 429 `too_many_write_operations` (one write, so one answer) rather than every entry
/// failing with `too_many_write_operations`.
pub async fn finish_batch(sh: &Arc<Shared>, route: &str, v: Value) -> Response {
    let parsed = (|| {
        let a = Arg::new(&v, route, "request body")?;
        let list = a.value("entries")?.as_array().ok_or_else(|| a.err("entries: expected list"))?;
        if list.len() > 1000 {
            return Err(a.err(format!("entries: {} items, at most 1000 allowed", list.len())));
        }
        let mut out = vec![];
        for e in list {
            let ea = Arg::new(e, route, "request body: entries")?;
            let (id, offset) = cursor(&ea)?;
            out.push(Entry { id, offset, info: commit_arg(&ea)?, expect: ea.content_hash()? });
        }
        Ok(out)
    })();
    let entries = match parsed {
        Ok(e) => e,
        Err(r) => return r,
    };
    let Some(held) = sh.lock.acquire().await else { return too_many_write_operations() };
    let concurrent: Vec<(String, PathBuf, u64)> = {
        let st = sh.st();
        entries
            .iter()
            .filter_map(|e| {
                st.sessions
                    .get(&e.id)
                    .filter(|s| s.concurrent && s.closed && complete(s))
                    .map(|s| (e.id.clone(), s.blob.clone(), s.size))
            })
            .collect()
    };
    let mut hashes = HashMap::new();
    for (id, blob, size) in concurrent {
        if let Ok(h) = hash_file(blob, size).await {
            hashes.insert(id, h);
        }
    }
    let mut st = sh.st();
    let mut results = vec![];
    let mut any = false;
    for e in &entries {
        let r = commit_entry(&mut st, sh, e, &hashes);
        any |= r.is_ok();
        results.push(match r {
            Ok(mut meta) => {
                if let Some(o) = meta.as_object_mut() {
                    o.insert(".tag".into(), json!("success"));
                }
                meta
            }
            Err(failure) => json!({".tag": "failure", "failure": failure}),
        });
    }
    if any {
        held.committed();
    }
    json_reply(200, json!({ "entries": results }))
}

fn commit_entry(
    st: &mut State,
    sh: &Shared,
    e: &Entry,
    hashes: &HashMap<String, (String, String)>,
) -> Result<Value, Value> {
    let lookup_failed = |l: Value| json!({".tag": "lookup_failed", "lookup_failed": l});
    let s = lookup(st, &e.id, sh.session_ttl, false).map_err(lookup_failed)?;
    if !s.closed {
        return Err(if s.concurrent {
            void("concurrent_session_not_closed")
        } else {
            lookup_failed(void("not_closed"))
        });
    }
    if s.concurrent && !complete(s) {
        return Err(void("concurrent_session_missing_data"));
    }
    if e.offset != s.size {
        return Err(lookup_failed(json!({".tag": "incorrect_offset", "correct_offset": s.size})));
    }
    let (content_hash, sha256) = if s.concurrent {
        hashes.get(&e.id).cloned().ok_or_else(|| void("concurrent_session_missing_data"))?
    } else {
        s.hasher.clone().unwrap_or_default().finish()
    };
    if e.expect.as_ref().is_some_and(|h| h != &content_hash) {
        return Err(void("content_hash_mismatch"));
    }
    let (blob, size) = (s.blob.clone(), s.size);
    let content = Content { src: &blob, size, content_hash, sha256 };
    match st.write_file(&e.info, &content) {
        Ok((key, _)) => {
            consume(st, &e.id);
            Ok(st.metadata(&key, false))
        }
        Err(w) => Err(json!({".tag": "path", "path": w.json()})),
    }
}
