//! Dropbox as a source: the files of a folder and what changed since a cursor
//! (`files/list_folder`, `files/list_folder/continue`), and a file's content, streamed
//! (`files/download`). A cursor Dropbox no longer accepts (`reset`) is reported as such, so the
//! caller lists again from scratch and deduplicates against what it already took.

use super::client::{ApiError, Client};
use bytes::Bytes;
use futures_util::Stream;
use serde_json::{Value, json};

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// `id:...`, stable across renames.
    pub id: String,
    /// Revision: changes with each new content.
    pub rev: String,
    /// Display path.
    pub path: String,
    /// Name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Dropbox content hash.
    pub content_hash: String,
    /// When the server stored it (ISO 8601).
    pub server_modified: String,
    /// When the client says it changed (ISO 8601).
    pub client_modified: String,
}

/// A page of changes.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// New and changed files (deleted entries and folders are left out).
    pub files: Vec<Listed>,
    /// The cursor after them: the watermark.
    pub cursor: String,
}

/// Why listing stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// The cursor is no longer valid: list again from scratch.
    #[error("Dropbox reset the listing cursor")]
    Reset,
    /// Any other failure.
    #[error(transparent)]
    Api(#[from] ApiError),
}

fn listed(e: &Value) -> Option<Listed> {
    if e[".tag"] != "file" || e["is_downloadable"] == false {
        return None;
    }
    Some(Listed {
        id: e["id"].as_str()?.to_string(),
        rev: e["rev"].as_str()?.to_string(),
        path: e["path_display"].as_str()?.to_string(),
        name: e["name"].as_str()?.to_string(),
        size: e["size"].as_u64().unwrap_or(0),
        content_hash: e["content_hash"].as_str().unwrap_or_default().to_string(),
        server_modified: e["server_modified"].as_str().unwrap_or_default().to_string(),
        client_modified: e["client_modified"].as_str().unwrap_or_default().to_string(),
    })
}

/// Every change since `cursor` (or the whole folder when there is none), all pages.
///
/// # Errors
/// [`ListError::Reset`] for a cursor Dropbox dropped; otherwise the classified failure.
pub async fn changes(
    client: &Client,
    folder: &str,
    recursive: bool,
    cursor: Option<&str>,
) -> Result<Changes, ListError> {
    let mut out = Changes::default();
    let mut reply = match cursor {
        Some(c) => continue_from(client, c).await?,
        None => {
            let arg = json!({ "path": folder, "recursive": recursive, "include_deleted": false, "limit": 500 });
            client.rpc("files/list_folder", &arg).await?
        }
    };
    loop {
        out.files.extend(reply["entries"].as_array().into_iter().flatten().filter_map(listed));
        out.cursor = reply["cursor"].as_str().unwrap_or_default().to_string();
        if reply["has_more"] != true {
            return Ok(out);
        }
        reply = continue_from(client, &out.cursor).await?;
    }
}

async fn continue_from(client: &Client, cursor: &str) -> Result<Value, ListError> {
    match client.rpc("files/list_folder/continue", &json!({ "cursor": cursor })).await {
        Err(ApiError::Endpoint { tag, .. }) if tag == "reset" => Err(ListError::Reset),
        other => Ok(other?),
    }
}

/// A file's content (`rev:` pins the version that was listed), as a stream of chunks.
///
/// # Errors
/// The classified failure of the request.
pub async fn download(
    client: &Client,
    rev: &str,
) -> Result<impl Stream<Item = Result<Bytes, reqwest::Error>> + use<>, ApiError> {
    let (_, resp) = client.download(&json!({ "path": format!("rev:{rev}") })).await?;
    Ok(resp.bytes_stream())
}
