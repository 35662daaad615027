//! Request and reply plumbing: Dropbox's error replies (400 plain text, 401/409/429 JSON), argument
//! validation with Dropbox's 400 messages, header-safe JSON, and bodies streamed to disk.

use super::hash::Hasher;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// "A single request should not upload more than 150 MiB" (SPEC `upload`, sessions).
pub const MAX_REQUEST_DATA: u64 = 150 * 1024 * 1024;

/// A JSON reply with a status.
pub fn json_reply(status: u16, v: Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(v)).into_response()
}

/// A plain-text reply (Dropbox's 400s and 5xx are plain text).
pub fn plain(status: u16, text: impl Into<String>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text.into()).into_response()
}

/// 400 `Error in call to API function "{route}": {text}`.
pub fn bad_request(route: &str, text: impl std::fmt::Display) -> Response {
    plain(400, format!("Error in call to API function \"{route}\": {text}"))
}

/// 409 endpoint error: `{"error_summary": "{summary}/..", "error": error}` (parse `error`, not the summary).
pub fn endpoint_error(summary: &str, error: Value) -> Response {
    json_reply(409, json!({"error_summary": format!("{summary}/.."), "error": error}))
}

/// Adds a `Retry-After` header.
pub fn with_retry_after(mut r: Response, secs: u32) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// 429 RateLimitError with reason `too_many_write_operations` and `Retry-After: 1`.
pub fn too_many_write_operations() -> Response {
    let body = json!({"error_summary": "too_many_write_operations/..",
        "error": {"reason": {".tag": "too_many_write_operations"}, "retry_after": 1}});
    with_retry_after(json_reply(429, body), 1)
}

/// 429 RateLimitError with reason `too_many_requests`.
pub fn too_many_requests(secs: u32) -> Response {
    let body = json!({"error_summary": "too_many_requests/..",
        "error": {"reason": {".tag": "too_many_requests"}, "retry_after": secs}});
    with_retry_after(json_reply(429, body), secs)
}

/// Marker extension on a reply: close the connection instead of sending it.
#[derive(Clone, Copy)]
pub struct DropConnection;

/// Marks a reply as "never delivered".
pub fn dropped(mut r: Response) -> Response {
    r.extensions_mut().insert(DropConnection);
    r
}

/// JSON text with U+007F and every non-ASCII character escaped as `\uXXXX` (UTF-16 units), so it
/// fits an HTTP header (`Dropbox-API-Result`).
pub fn header_safe(v: &Value) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if (c as u32) < 0x7f {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// A `.tag` of a union value: `"add"` or `{".tag": "add", ...}`.
pub fn tag(v: &Value) -> Option<&str> {
    v.as_str().or_else(|| v.get(".tag").and_then(Value::as_str))
}

/// A struct argument being validated: errors are the 400s Dropbox sends for a bad argument,
/// `Error in call to API function "files/upload": HTTP header "Dropbox-API-Arg": cursor: ...`.
#[derive(Clone, Copy)]
pub struct Arg<'a> {
    pub obj: &'a Map<String, Value>,
    pub route: &'a str,
    /// `request body` or `HTTP header "Dropbox-API-Arg"`.
    pub ctx: &'a str,
}

impl<'a> Arg<'a> {
    /// The top-level argument; it must be a JSON object.
    pub fn new(v: &'a Value, route: &'a str, ctx: &'a str) -> Result<Arg<'a>, Response> {
        match v.as_object() {
            Some(obj) => Ok(Arg { obj, route, ctx }),
            None => Err(bad_request(route, format!("{ctx}: expected object, got {}", kind(v)))),
        }
    }

    /// A 400 about this argument.
    pub fn err(&self, text: impl std::fmt::Display) -> Response {
        bad_request(self.route, format!("{}: {text}", self.ctx))
    }

    fn present(&self, k: &str) -> Option<&'a Value> {
        self.obj.get(k).filter(|v| !v.is_null())
    }

    /// A required field.
    pub fn value(&self, k: &str) -> Result<&'a Value, Response> {
        self.present(k).ok_or_else(|| self.err(format!("missing required field '{k}'")))
    }

    /// A required string.
    pub fn str(&self, k: &str) -> Result<&'a str, Response> {
        let v = self.value(k)?;
        v.as_str().ok_or_else(|| self.err(format!("{k}: expected string, got {}", kind(v))))
    }

    /// An optional string (absent or null = `None`).
    pub fn opt_str(&self, k: &str) -> Result<Option<&'a str>, Response> {
        match self.present(k) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| self.err(format!("{k}: expected string, got {}", kind(v)))),
        }
    }

    /// A boolean with its default.
    pub fn bool(&self, k: &str, default: bool) -> Result<bool, Response> {
        match self.present(k) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.err(format!("{k}: expected boolean, got {}", kind(v)))),
        }
    }

    /// An optional unsigned integer.
    pub fn opt_u64(&self, k: &str) -> Result<Option<u64>, Response> {
        match self.present(k) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| self.err(format!("{k}: expected integer, got {}", kind(v)))),
        }
    }

    /// A required nested struct (its errors are prefixed with the field name).
    pub fn sub(&self, k: &str, ctx: &'a mut String) -> Result<Arg<'a>, Response> {
        let v = self.value(k)?;
        *ctx = format!("{}: {k}", self.ctx);
        match v.as_object() {
            Some(obj) => Ok(Arg { obj, route: self.route, ctx: ctx.as_str() }),
            None => Err(self.err(format!("{k}: expected object, got {}", kind(v)))),
        }
    }

    /// An optional `content_hash` (64 characters, Sha256HexHash).
    pub fn content_hash(&self) -> Result<Option<String>, Response> {
        match self.opt_str("content_hash")? {
            None => Ok(None),
            Some(h) if h.len() == 64 => Ok(Some(h.to_ascii_lowercase())),
            Some(h) => Err(self.err(format!("content_hash: '{h}' must be exactly 64 characters"))),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// A file under the emulator's temp dir; removed on drop unless persisted.
pub struct TempFile {
    pub path: PathBuf,
    keep: bool,
}

impl TempFile {
    /// A temp file name (not created yet).
    pub fn new(path: PathBuf) -> TempFile {
        TempFile { path, keep: false }
    }

    /// Keeps the file where it is and hands over its path.
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        std::mem::take(&mut self.path)
    }

    /// Moves the file to `dest` and keeps it.
    pub fn persist(mut self, dest: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, dest)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A request body received in full.
pub struct Received {
    pub size: u64,
    /// More than `MAX_REQUEST_DATA` arrived (nothing beyond the limit was stored).
    pub too_large: bool,
    pub hasher: Hasher,
}

/// Streams a body into `file` (opened for append or at an offset by the caller), hashing it (and
/// feeding `also`, a session's running hash, the same bytes); stops
/// storing past `MAX_REQUEST_DATA` but reads the rest. A broken body is 400.
pub async fn receive(
    body: Body,
    file: &mut tokio::fs::File,
    route: &str,
    mut also: Option<&mut Hasher>,
) -> Result<Received, Response> {
    let mut s = body.into_data_stream();
    let mut out = Received { size: 0, too_large: false, hasher: Hasher::default() };
    let io_err = |e: std::io::Error| plain(500, format!("could not store the upload: {e}"));
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| bad_request(route, format!("could not read the request body: {e}")))?;
        out.size += chunk.len() as u64;
        if out.size > MAX_REQUEST_DATA {
            out.too_large = true;
            continue;
        }
        out.hasher.update(&chunk);
        if let Some(h) = also.as_deref_mut() {
            h.update(&chunk);
        }
        file.write_all(&chunk).await.map_err(io_err)?;
    }
    file.flush().await.map_err(io_err)?;
    Ok(out)
}

/// Reads and discards a body (so the client finishes sending before we answer).
pub async fn drain(body: Body) {
    let mut s = body.into_data_stream();
    while let Some(Ok(_)) = s.next().await {}
}

/// Decodes standard base64 (HTTP Basic credentials); `None` if invalid.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = vec![];
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim().bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Name/value pairs of a query string or form body (percent-decoded).
pub fn pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}
