//! Assets: the document's file uploaded as `POST /v3/assets` (multipart `asset[upload]`,
//! `asset[title]`, `asset[description]`, `asset[tags]` comma-joined, `asset[parent_uid]`), or as a
//! replacement of the asset the entry already holds (`PUT /v3/assets/{uid}`, same form, so the
//! asset keeps its uid and gains a version). The body is streamed from the spool, never read
//! whole.
//!
//! Idempotency (decided): every asset wharf writes carries two tags, `wharf-sha256-<hex of the
//! body>` and `wharf-entry-<16 hex>` (a hash of the content type and the entry's unique value:
//! the value itself may hold commas, which split tags). Before uploading, the stack is asked for
//! an asset with both (`GET /v3/assets?query={"$and":[{"tags":..},{"tags":..}]}`: an array field
//! matches when it contains the value); a hit is this very file for this very entry, uploaded
//! before a crash, and is reused. The SHA-256 is used rather than the transfer id because a
//! resubmitted transfer has a new id but the same file; the entry tag keeps two documents with
//! equal bytes on two assets, so replacing one in place never changes the other's, and only an
//! asset wharf wrote for this entry is ever replaced (never one an editor attached by hand).
//!
//! Decided (size, UNVERIFIED): no client-side size check. TARGETS.md cites 100 MB per asset via
//! the API and a newer vendor page 10 GB; the stack's own refusal (a 4xx with its message) becomes
//! the exception, and the rules' `max_size` is where a deployment sets its plan's limit.

use super::client::{ApiError, Client, json_of, short};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;

/// The tag prefix marking what wharf uploaded: the body's SHA-256.
pub const SHA_TAG: &str = "wharf-sha256-";
/// The tag prefix naming the entry an asset was uploaded for.
pub const ENTRY_TAG: &str = "wharf-entry-";

/// The entry tag of `content_type` / `unique` (the first 16 hex digits of their SHA-256).
pub fn entry_tag(content_type: &str, unique: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{content_type}\n{unique}").as_bytes());
    format!("{ENTRY_TAG}{}", &hex::encode(digest)[..16])
}

/// One upload's form fields.
pub struct AssetFile<'a> {
    /// The spooled body.
    pub body: &'a Path,
    /// Its size.
    pub size: u64,
    /// File name in Contentstack.
    pub name: &'a str,
    /// `asset[title]`.
    pub title: &'a str,
    /// `asset[description]`.
    pub description: &'a str,
    /// `asset[tags]` (joined with commas).
    pub tags: Vec<String>,
    /// `asset[parent_uid]`, the folder.
    pub folder: Option<&'a str>,
}

/// The asset carrying every tag of `tags`, if the stack has one.
///
/// # Errors
/// The classified failure.
pub async fn find(client: &Client, tags: &[&str]) -> Result<Option<Value>, ApiError> {
    let all: Vec<Value> = tags.iter().map(|t| json!({ "tags": t })).collect();
    let q = [("query", json!({ "$and": all }).to_string()), ("limit", "1".into())];
    let v = client.get_json("/v3/assets", &q).await?;
    Ok(v["assets"].as_array().and_then(|a| a.first()).cloned())
}

/// The asset `uid`, or `None` when the stack has no such asset.
///
/// # Errors
/// The classified failure.
pub async fn get(client: &Client, uid: &str) -> Result<Option<Value>, ApiError> {
    match client.get_json(&format!("/v3/assets/{uid}"), &[]).await {
        Ok(v) => Ok(Some(v["asset"].clone())),
        // Contentstack answers a missing asset with 422 (error_code 145 on the real API,
        // 141 in the emulator) or 404
        Err(ApiError::Rejected { status: 404 | 422, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn form(f: &AssetFile<'_>) -> Result<reqwest::multipart::Form, ApiError> {
    let file = std::fs::File::open(f.body)
        .map_err(|e| ApiError::Transient(format!("opening the spooled body: {}", e.kind())))?;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let mime = mime_of(f.name);
    let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), f.size)
        .file_name(f.name.to_string())
        .mime_str(mime)
        .map_err(|e| ApiError::Transient(short(&e)))?;
    let mut form = reqwest::multipart::Form::new()
        .text("asset[title]", f.title.to_string())
        .text("asset[description]", f.description.to_string())
        .text("asset[tags]", f.tags.join(","));
    if let Some(folder) = f.folder {
        form = form.text("asset[parent_uid]", folder.to_string());
    }
    Ok(form.part("asset[upload]", part))
}

/// Whether an asset (as the API returns it) carries `tag`.
pub fn has_tag(asset: &Value, tag: &str) -> bool {
    match &asset["tags"] {
        Value::Array(list) => list.iter().any(|t| t.as_str() == Some(tag)),
        Value::String(s) => s.split(',').any(|t| t.trim() == tag),
        _ => false,
    }
}

fn mime_of(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).as_deref() {
        Some("pdf") => "application/pdf",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("svg") => "image/svg+xml",
        Some("webp") => "image/webp",
        Some("html" | "htm") => "text/html",
        Some("txt" | "md") => "text/plain",
        Some("mp4") => "video/mp4",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ => "application/octet-stream",
    }
}

/// Uploads a new asset (`replace: None`) or replaces asset `replace`; the asset as returned.
///
/// # Errors
/// The classified failure, or a reply without the asset's uid.
pub async fn upload(client: &Client, f: &AssetFile<'_>, replace: Option<&str>) -> Result<Value, ApiError> {
    let (method, path) = match replace {
        Some(uid) => (Method::PUT, format!("/v3/assets/{uid}")),
        None => (Method::POST, "/v3/assets".to_string()),
    };
    let resp = client.send(method, &path, |r| Ok(r.multipart(form(f)?))).await?;
    let v = json_of(resp, &path).await?;
    if v["asset"]["uid"].as_str().is_none() {
        return Err(ApiError::Transient(format!("{path}: the reply names no asset uid")));
    }
    Ok(v["asset"].clone())
}
