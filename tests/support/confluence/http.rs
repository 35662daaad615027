//! Request and reply plumbing: the two error dialects (v2 `errors[]`, v1 `statusCode`/`message`),
//! query strings, bounded JSON bodies, multipart bodies with file parts streamed to disk, Basic
//! credentials (base64) and timestamps.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Which API a request addressed (decides the error dialect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/wiki/api/v2/...`: `{"errors":[{status,code,title,detail}]}`.
    V2,
    /// `/wiki/rest/api/...` and the rest: `{"statusCode","data","message"}`.
    V1,
}

/// A JSON reply with a status.
pub fn json_reply(status: u16, v: Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(v)).into_response()
}

/// The v2 error body.
pub fn v2_error(status: u16, code: &str, title: impl Into<String>) -> Response {
    json_reply(status, json!({"errors": [{"status": status, "code": code, "title": title.into(), "detail": null}]}))
}

/// The v1 error body (`authorized` is false only for 401/403).
pub fn v1_error(status: u16, message: impl Into<String>) -> Response {
    let authorized = !matches!(status, 401 | 403);
    json_reply(
        status,
        json!({"statusCode": status,
               "data": {"authorized": authorized, "valid": status != 400, "errors": [], "successful": false},
               "message": message.into()}),
    )
}

/// An error in the dialect of `api`; `code` is used by v2 only.
pub fn error(api: Api, status: u16, code: &str, text: impl Into<String>) -> Response {
    match api {
        Api::V2 => v2_error(status, code, text),
        Api::V1 => v1_error(status, text),
    }
}

/// 404 `NOT_FOUND` (also for content the user may not see; never 403).
pub fn not_found(api: Api) -> Response {
    match api {
        Api::V2 => v2_error(404, "NOT_FOUND", "Not Found"),
        Api::V1 => {
            v1_error(404, "com.atlassian.confluence.api.service.exceptions.NotFoundException: No content found with id")
        }
    }
}

/// 400 `INVALID_REQUEST_PARAMETER` (v2) or a v1 bad request.
pub fn bad_request(api: Api, text: impl Into<String>) -> Response {
    match api {
        Api::V2 => v2_error(400, "INVALID_REQUEST_PARAMETER", text),
        Api::V1 => v1_error(
            400,
            format!("com.atlassian.confluence.api.service.exceptions.BadRequestException: {}", text.into()),
        ),
    }
}

/// Marker extension on a reply: close the connection instead of sending it.
#[derive(Clone, Copy)]
pub struct DropConnection;

/// Marks a reply as "never delivered".
pub fn dropped(mut r: Response) -> Response {
    r.extensions_mut().insert(DropConnection);
    r
}

/// Sets a header when the value is valid.
pub fn set_header(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// A 302 to `location`.
pub fn redirect(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    set_header(&mut r, "location", location);
    r
}

/// Decodes percent-encoding (`+` is a space, as in query strings and forms).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
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

/// Decodes a path segment (`+` stays a plus).
pub fn path_decode(s: &str) -> String {
    percent_decode(&s.replace('+', "%2B"))
}

/// Percent-encodes a query value or path segment.
pub fn percent_encode(s: &str) -> String {
    let mut o = String::new();
    for c in s.bytes() {
        if c.is_ascii_alphanumeric() || b"-_.~".contains(&c) {
            o.push(c as char);
        } else {
            o.push_str(&format!("%{c:02X}"));
        }
    }
    o
}

/// Ordered name/value pairs of a query string; names may repeat.
#[derive(Default, Debug, Clone)]
pub struct Pairs(pub Vec<(String, String)>);

impl Pairs {
    /// Parses `a=1&b=2` (percent-decoded).
    pub fn parse(s: &str) -> Pairs {
        Pairs(
            s.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (percent_decode(k), percent_decode(v)),
                    None => (percent_decode(p), String::new()),
                })
                .collect(),
        )
    }

    /// The first value of a name.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// Every value of a name, comma-separated lists split (`status=current,archived` or repeated).
    pub fn list(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>())
            .collect()
    }

    /// The pairs without the named ones, encoded again (`a=1&b=2`).
    pub fn encode_without(&self, skip: &[&str]) -> String {
        self.0
            .iter()
            .filter(|(n, _)| !skip.contains(&n.as_str()))
            .map(|(n, v)| format!("{}={}", percent_encode(n), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Reads and discards a body (so the client finishes sending before we answer).
pub async fn drain(body: Body) {
    let mut s = body.into_data_stream();
    while let Some(Ok(_)) = s.next().await {}
}

/// Reads a body of at most `max` bytes. Larger: the rest is read and discarded, then
/// `Err(true)`; a broken body: `Err(false)`.
pub async fn read_limited(body: Body, max: usize) -> Result<Vec<u8>, bool> {
    let mut s = body.into_data_stream();
    let mut out = Vec::new();
    let mut over = false;
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|_| false)?;
        if over || out.len() + chunk.len() > max {
            over = true;
            out.clear();
            continue;
        }
        out.extend_from_slice(&chunk);
    }
    if over { Err(true) } else { Ok(out) }
}

/// Decodes standard base64 (with or without padding); `None` when malformed.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return None;
    }
    Some(out)
}

/// Encodes standard base64 with padding (the tests build Basic headers with it).
pub fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                o.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// Timestamps as Confluence prints them in v2 and v1 (`2024-03-01T09:00:00.000Z`).
pub fn iso(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A file written under the emulator's temp dir; removed on drop unless persisted.
pub struct TempFile {
    pub path: PathBuf,
    keep: bool,
}

impl TempFile {
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

/// A file part received in full (streamed to disk, hashed on the way).
pub struct FilePart {
    pub file_name: String,
    pub mime: Option<String>,
    pub tmp: TempFile,
    pub size: u64,
    pub sha256: String,
}

/// A parsed multipart body: text fields in order, and the `file` parts.
pub struct Form {
    pub text: Pairs,
    pub files: Vec<FilePart>,
}

/// Parses a `multipart/form-data` body; parts named `file` are streamed to temp files under `dir`.
/// Not multipart → `Err(None)`; malformed → `Err(Some(reply))`.
pub async fn read_multipart(
    req: Request,
    dir: &Path,
    seq: &std::sync::atomic::AtomicU64,
) -> Result<Form, Option<Response>> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if !ct.starts_with("multipart/form-data") {
        drain(req.into_body()).await;
        return Err(None);
    }
    let bad = || Some(v1_error(400, "Invalid multipart/form-data body"));
    let mut mp = Multipart::from_request(req, &()).await.map_err(|_| bad())?;
    let mut out = Form { text: Pairs::default(), files: vec![] };
    loop {
        let mut field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return Err(bad()),
        };
        let name = field.name().unwrap_or("").to_string();
        if name != "file" {
            let v = field.text().await.map_err(|_| bad())?;
            out.text.0.push((name, v));
            continue;
        }
        let file_name = field.file_name().unwrap_or("").to_string();
        let mime = field.content_type().map(str::to_string);
        let n = seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let tmp = TempFile { path: dir.join(format!("incoming-{n}")), keep: false };
        let io_err = |e: std::io::Error| Some(v1_error(500, format!("Could not store the upload: {e}")));
        let mut f = tokio::fs::File::create(&tmp.path).await.map_err(io_err)?;
        let mut h = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(|_| bad())? {
            size += chunk.len() as u64;
            h.update(&chunk);
            f.write_all(&chunk).await.map_err(io_err)?;
        }
        f.flush().await.map_err(io_err)?;
        drop(f);
        out.files.push(FilePart { file_name, mime, tmp, size, sha256: hex::encode(h.finalize()) });
    }
    Ok(out)
}

/// A MIME type from a file name, for parts sent as `application/octet-stream` or without a type.
pub fn guess_mime(file_name: &str, sent: Option<&str>) -> String {
    if let Some(s) = sent
        && !s.is_empty()
        && s != "application/octet-stream"
    {
        return s.to_string();
    }
    let ext = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "xml" => "application/xml",
        "json" => "application/json",
        "csv" => "text/csv",
        "zip" => "application/zip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
    .to_string()
}
