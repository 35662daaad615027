//! `files/download`: the result (`FileMetadata`) as header-safe JSON in `Dropbox-API-Result`, the
//! bytes streamed from disk as the body; `Range` (one range) and `If-None-Match` (the rev as ETag).

use super::Shared;
use super::http::{Arg, header_safe, plain};
use super::paths::{self, Target};
use super::sessions::HDR;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::io::{Seek, SeekFrom};
use tokio::io::AsyncReadExt;

/// A single byte range of a file of `size` bytes: `Ok(None)` = whole file; `Err(())` = 416.
/// Decision: several ranges (`bytes=0-1,5-6`) or a malformed header are ignored (whole file), as
/// HTTP allows.
fn range(h: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else { return Ok(None) };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(s), Some(e)) if s <= e => (s, e.min(size.saturating_sub(1))),
        (Some(s), None) if b.is_empty() => (s, size.saturating_sub(1)),
        (None, Some(n)) if a.is_empty() && n > 0 => (size.saturating_sub(n), size.saturating_sub(1)),
        _ => return Ok(None),
    };
    if start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// `files/download` (POST or GET) with arg `{"path": "/x" | "id:.." | "rev:.."}`. Errors: 409
/// `path/not_found`, `path/not_file`, `path/malformed_path`; a range past the end → 416.
/// Decision (UNVERIFIED): only current revisions are downloadable by `rev:` (older ones are
/// `not_found`); the deprecated `rev` field must equal the current rev of `path`.
pub fn download(sh: &Shared, route: &str, arg: Value, headers: &HeaderMap) -> Response {
    let parsed = (|| {
        let a = Arg::new(&arg, route, HDR)?;
        let path = a.str("path")?;
        let t = paths::target(path, false, true).map_err(|m| a.err(format!("path: {m}")))?;
        Ok((t, a.opt_str("rev")?.map(str::to_string)))
    })();
    let (t, rev) = match parsed {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Target::Path(p) = &t
        && paths::check_write_path(p).is_err()
    {
        return super::files::lookup_error("path", "malformed_path");
    }
    let st = sh.st();
    let Some(key) = st.find(&t) else { return super::files::lookup_error("path", "not_found") };
    let Some(f) = st.entries.get(&key).and_then(|e| e.file()).cloned() else {
        return super::files::lookup_error("path", "not_file");
    };
    if rev.is_some_and(|r| r != f.rev) {
        return super::files::lookup_error("path", "not_found");
    }
    let meta = header_safe(&st.metadata(&key, false));
    drop(st);
    let etag = format!("W/\"{}\"", f.rev);
    let mut resp = if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() == etag)
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let r = match range(headers, f.size) {
            Ok(r) => r,
            Err(()) => {
                let mut resp = plain(416, "Requested Range Not Satisfiable");
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", f.size)) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return resp;
            }
        };
        let mut file = match std::fs::File::open(&f.blob) {
            Ok(x) => x,
            Err(e) => return plain(500, format!("could not read the file: {e}")),
        };
        let (start, len) = match r {
            Some((s, e)) => (s, e - s + 1),
            None => (0, f.size),
        };
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            return plain(500, format!("could not read the file: {e}"));
        }
        let reader = tokio::fs::File::from_std(file).take(len);
        let mut resp = Body::from_stream(tokio_util::io::ReaderStream::new(reader)).into_response();
        resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        if r.is_some() {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{}", start + len - 1, f.size)) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
        }
        resp
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&meta) {
        h.insert("dropbox-api-result", v);
    }
    resp
}
