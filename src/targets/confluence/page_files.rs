//! A page's attachments as a source reads them: the v2 listing (current versions, with size,
//! media type and version number) and the v1 download of one version (a 302 to the file,
//! followed by the client), so a poll can send them as their own transfers or zip them with
//! their page.

use super::client::{ApiError, Client, enc};
use super::id_string;
use futures_util::Stream;
use serde_json::Value;

/// Most attachments of one page a poll takes (a page with more is refused with a reason).
pub const MAX_ATTACHMENTS: usize = 1000;

/// One attachment (its current version) of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageFile {
    /// Attachment id (`att…`).
    pub id: String,
    /// File name as Confluence shows it.
    pub title: String,
    /// Version number of the attachment.
    pub version: u64,
    /// Size in bytes of that version, when the listing gives it.
    pub size: Option<u64>,
    /// Media type.
    pub media_type: String,
    /// The comment given with the upload.
    pub comment: String,
}

/// The current attachments of a page, oldest first.
///
/// # Errors
/// The classified failure; a page with more than [`MAX_ATTACHMENTS`] is a permanent 413.
pub async fn list(client: &Client, page: &str) -> Result<Vec<PageFile>, ApiError> {
    let path = format!("/wiki/api/v2/pages/{}/attachments?status=current&limit=250", enc(page));
    let results = client.all(&path).await?;
    if results.len() > MAX_ATTACHMENTS {
        return Err(ApiError::Permanent {
            status: 413,
            message: format!("page {page} has {} attachments; at most {MAX_ATTACHMENTS} are taken", results.len()),
        });
    }
    results
        .iter()
        .map(|r| {
            let file = (|| {
                Some(PageFile {
                    id: id_string(r.get("id")?)?,
                    title: r["title"].as_str().filter(|t| !t.is_empty())?.to_string(),
                    version: r.pointer("/version/number").and_then(Value::as_u64)?,
                    size: r["fileSize"].as_u64(),
                    media_type: r["mediaType"].as_str().unwrap_or("application/octet-stream").to_string(),
                    comment: r["comment"].as_str().unwrap_or_default().to_string(),
                })
            })();
            file.ok_or_else(|| ApiError::Permanent {
                status: 422,
                message: format!("page {page}: attachment {} is listed without id, title or version", r["id"]),
            })
        })
        .collect()
}

/// The bytes of one attachment version, as a stream.
///
/// # Errors
/// The classified failure (404 when the attachment or that version is gone).
pub async fn download(
    client: &Client,
    page: &str,
    file: &PageFile,
) -> Result<impl Stream<Item = reqwest::Result<bytes::Bytes>> + use<>, ApiError> {
    let url = client.url(&format!(
        "/wiki/rest/api/content/{}/child/attachment/{}/download?version={}",
        enc(page),
        enc(&file.id),
        file.version
    ));
    let resp = client.send(|http| std::future::ready(Ok(http.get(&url)))).await?;
    Ok(resp.bytes_stream())
}
