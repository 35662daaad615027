//! Request and reply plumbing: error bodies, query strings, and form/multipart bodies with file parts
//! streamed to disk (hashed while written, never buffered whole).

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// A JSON reply with a status.
pub fn json_reply(status: u16, v: Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(v)).into_response()
}

/// Content Server's error body `{"error": text}`.
pub fn error(status: u16, text: impl Into<String>) -> Response {
    json_reply(status, json!({ "error": text.into() }))
}

/// 400 "Sorry, the item you requested could not be accessed…" (not found or forbidden).
pub fn not_accessible(status: u16) -> Response {
    error(
        status,
        "Sorry, the item you requested could not be accessed. Either it does not exist or you do not have permission to access it.",
    )
}

/// Marker extension on a reply: close the connection instead of sending it.
#[derive(Clone, Copy)]
pub struct DropConnection;

/// Marks a reply as "never delivered".
pub fn dropped(mut r: Response) -> Response {
    r.extensions_mut().insert(DropConnection);
    r
}

/// Adds a `Retry-After` header (for 429s).
pub fn with_retry_after(mut r: Response, secs: u32) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
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

/// Percent-encodes a query value.
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

/// Ordered name/value pairs (query string or form), names may repeat.
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

    /// Every value of a name.
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect()
    }

    /// Whether a name is present (valueless flags such as `metadata`).
    pub fn has(&self, k: &str) -> bool {
        self.0.iter().any(|(n, _)| n == k)
    }
}

/// A file written under the emulator's temp dir; removed on drop unless persisted.
pub struct TempFile {
    pub path: PathBuf,
    keep: bool,
}

impl TempFile {
    /// A temp file name (not created yet).
    pub fn new(path: PathBuf) -> TempFile {
        TempFile { path, keep: false }
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

/// A file part received in full.
pub struct FilePart {
    pub field: String,
    pub file_name: String,
    pub mime: Option<String>,
    pub tmp: TempFile,
    pub size: u64,
    pub sha256: String,
}

/// How the request body was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Json,
    UrlEncoded,
    Multipart,
    Other,
}

/// A parsed write request: text fields, accepted file parts and the names of other file parts.
pub struct Fields {
    pub kind: BodyKind,
    pub text: Pairs,
    pub files: Vec<FilePart>,
    pub stray_files: Vec<String>,
}

impl Fields {
    /// The accepted file part with this field name.
    pub fn take_file(&mut self, name: &str) -> Option<FilePart> {
        let i = self.files.iter().position(|f| f.field == name)?;
        Some(self.files.remove(i))
    }
}

/// Reads and discards a body (so the client finishes sending before we answer).
pub async fn drain(body: Body) {
    let mut s = body.into_data_stream();
    while let Some(Ok(_)) = s.next().await {}
}

/// Where and how big file parts may be.
pub struct FileLimits<'a> {
    pub dir: &'a Path,
    pub file_fields: &'a [&'a str],
    pub max_size: u64,
    pub seq: &'a std::sync::atomic::AtomicU64,
}

/// Parses a form or multipart body; parts named in `file_fields` are streamed to temp files.
/// A file part over `max_size` → 500 (after the body was read).
pub async fn read_fields(req: Request, lim: FileLimits<'_>) -> Result<Fields, Response> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let kind = if ct.is_empty() {
        BodyKind::None
    } else if ct.starts_with("application/json") {
        BodyKind::Json
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        BodyKind::UrlEncoded
    } else if ct.starts_with("multipart/form-data") {
        BodyKind::Multipart
    } else {
        BodyKind::Other
    };
    let mut out = Fields { kind, text: Pairs::default(), files: vec![], stray_files: vec![] };
    match kind {
        BodyKind::UrlEncoded => {
            let bytes = axum::body::to_bytes(req.into_body(), 64 << 20)
                .await
                .map_err(|_| error(400, "Could not read the request body"))?;
            out.text = Pairs::parse(&String::from_utf8_lossy(&bytes));
        }
        BodyKind::Multipart => {
            let mut mp =
                Multipart::from_request(req, &()).await.map_err(|_| error(400, "Invalid multipart/form-data body"))?;
            let mut too_large: Option<u64> = None;
            loop {
                let field = match mp.next_field().await {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(_) => return Err(error(400, "Invalid multipart/form-data body")),
                };
                let name = field.name().unwrap_or("").to_string();
                let is_file_field = lim.file_fields.contains(&name.as_str());
                if is_file_field || field.file_name().is_some() {
                    let part = stream_part(field, &name, &lim, is_file_field).await?;
                    match part {
                        Some(p) if p.size > lim.max_size => too_large = Some(p.size),
                        Some(p) => out.files.push(p),
                        None => out.stray_files.push(name),
                    }
                } else {
                    let v = field.text().await.map_err(|_| error(400, "Invalid multipart/form-data body"))?;
                    out.text.0.push((name, v));
                }
            }
            if let Some(n) = too_large {
                return Err(error(
                    500,
                    format!("File size {n} exceeds the maximum allowed size of {} bytes.", lim.max_size),
                ));
            }
        }
        _ => drain(req.into_body()).await,
    }
    Ok(out)
}

/// Streams one part to a temp file (when `keep`) or discards it; hashes and counts it.
async fn stream_part(
    mut field: axum::extract::multipart::Field<'_>,
    name: &str,
    lim: &FileLimits<'_>,
    keep: bool,
) -> Result<Option<FilePart>, Response> {
    let file_name = field.file_name().unwrap_or("").to_string();
    let mime = field.content_type().map(str::to_string);
    let bad = || error(400, "Invalid multipart/form-data body");
    if !keep {
        while field.chunk().await.map_err(|_| bad())?.is_some() {}
        return Ok(None);
    }
    let n = lim.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let tmp = TempFile::new(lim.dir.join(format!("incoming-{n}")));
    let io_err = |e: std::io::Error| error(500, format!("Could not store the upload: {e}"));
    let mut f = tokio::fs::File::create(&tmp.path).await.map_err(io_err)?;
    let mut h = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(|_| bad())? {
        size += chunk.len() as u64;
        if size <= lim.max_size {
            h.update(&chunk);
            f.write_all(&chunk).await.map_err(io_err)?;
        }
    }
    f.flush().await.map_err(io_err)?;
    drop(f);
    Ok(Some(FilePart { field: name.to_string(), file_name, mime, tmp, size, sha256: hex::encode(h.finalize()) }))
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

/// Parses a boolean form value (`true`/`1`/`false`/`0`).
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" | "" => Some(false),
        _ => None,
    }
}
