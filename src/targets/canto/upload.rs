//! The three-step upload's first two steps: the upload setting (a signed form for the storage
//! host) and the storage form POST, with the spooled body streamed as the LAST part and no
//! `Authorization` header. An expired policy (403 mentioning expiry) is reported as such, so the
//! caller can fetch a fresh setting and try once more.

use super::client::{ApiError, Client, short};
use serde_json::Value;
use std::path::Path;

/// What the storage said.
#[derive(Debug)]
pub enum PostError {
    /// The policy expired before the POST (settings are valid ~5 h).
    Expired,
    /// Any other failure.
    Api(ApiError),
}

impl From<ApiError> for PostError {
    fn from(e: ApiError) -> Self {
        PostError::Api(e)
    }
}

/// The fields of one upload.
pub struct UploadFile<'a> {
    /// The spooled body.
    pub body: &'a Path,
    /// Its size.
    pub size: u64,
    /// File name in Canto.
    pub name: &'a str,
    /// Scheme (`image`, `document`, ...), or empty to let Canto decide.
    pub scheme: &'a str,
    /// The asset to add a version to, if any.
    pub version_of: Option<&'a str>,
    /// Tags set at upload (comma-separated).
    pub tags: &'a str,
}

/// Step 1: `GET /api/v1/upload/setting`.
///
/// # Errors
/// The classified failure.
pub async fn setting(client: &Client) -> Result<Value, ApiError> {
    let s = client.get_json("/api/v1/upload/setting", &[]).await?;
    if s["url"].as_str().is_none() || s["key"].as_str().is_none() {
        return Err(ApiError::Transient("upload/setting: no url or key in the reply".into()));
    }
    Ok(s)
}

/// Step 2: the form POST to the storage URL of `setting`.
///
/// # Errors
/// `Expired`, or the classified failure.
pub async fn post(client: &Client, setting: &Value, f: &UploadFile<'_>) -> Result<(), PostError> {
    let url = setting["url"].as_str().unwrap_or_default().to_string();
    let mut form = reqwest::multipart::Form::new();
    let overrides = [
        ("x-amz-meta-file_name", f.name.to_string()),
        ("x-amz-meta-tag", f.tags.to_string()),
        ("x-amz-meta-scheme", f.scheme.to_string()),
        ("x-amz-meta-id", f.version_of.unwrap_or_default().to_string()),
    ];
    if let Some(obj) = setting.as_object() {
        for (k, v) in obj {
            if k == "url" || overrides.iter().any(|(o, _)| o == k) {
                continue;
            }
            if let Some(v) = v.as_str() {
                form = form.text(k.clone(), v.to_string());
            }
        }
    }
    for (k, v) in overrides {
        form = form.text(k, v);
    }
    let file = tokio::fs::File::open(f.body)
        .await
        .map_err(|e| ApiError::Transient(format!("opening the spooled body: {e}")))?;
    let stream = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let part = reqwest::multipart::Part::stream_with_length(stream, f.size)
        .file_name(f.name.to_string())
        .mime_str("application/octet-stream")
        .map_err(|e| ApiError::Transient(short(&e)))?;
    // the file part LAST: S3 ignores every field after it
    form = form.part("file", part);
    let resp = client
        .http()
        .post(&url)
        .multipart(form)
        .send()
        .await
        .map_err(|e| ApiError::Transient(format!("Canto storage unreachable: {}", short(&e))))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    if status.as_u16() == 403 && body.to_lowercase().contains("expired") {
        return Err(PostError::Expired);
    }
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(ApiError::Transient(format!("Canto storage answered {status}")).into());
    }
    let code = body.split("<Code>").nth(1).and_then(|s| s.split("</Code>").next()).unwrap_or("").to_string();
    let message = body.split("<Message>").nth(1).and_then(|s| s.split("</Message>").next()).unwrap_or("");
    Err(ApiError::Permanent {
        status: status.as_u16(),
        message: format!("storage refused the upload: {code} {message}"),
    }
    .into())
}
