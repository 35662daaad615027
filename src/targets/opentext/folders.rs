//! Finding nodes by name under a parent, and making folders: the destination path of a rule is
//! resolved folder by folder through the children API (`GET /api/v2/nodes/{id}/nodes` with
//! `where_name`), creating missing ones (`POST /api/v2/nodes`, type 0) when the target allows.
//! Resolved folder ids are cached; a race with another worker creating the same folder is
//! settled by looking again.

use super::client::{ApiError, Client};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use tokio::sync::Mutex;

/// Subtype of a folder.
pub const FOLDER: i64 = 0;
/// Subtype of a document.
pub const DOCUMENT: i64 = 144;

/// A child node as the children API lists it (`results[].data.properties`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// Node id.
    pub id: i64,
    /// Subtype.
    pub kind: i64,
    /// Name.
    pub name: String,
    /// Description (where wharf may keep its checksum).
    pub description: String,
}

/// Reads `results[].data.properties` of a children reply.
pub fn children_of(reply: &Value) -> Vec<Child> {
    reply["results"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| &r["data"]["properties"])
                .filter_map(|p| {
                    Some(Child {
                        id: p["id"].as_i64()?,
                        kind: p["type"].as_i64().unwrap_or(-1),
                        name: p["name"].as_str()?.to_string(),
                        description: p["description"].as_str().unwrap_or_default().to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The child of `parent` named `name` (Content Server compares names without case).
///
/// # Errors
/// The classified failure.
pub async fn find_child(client: &Client, parent: i64, name: &str) -> Result<Option<Child>, ApiError> {
    let reply = client
        .get(
            &format!("/v2/nodes/{parent}/nodes"),
            &[("where_name", name.to_string()), ("fields", "properties".to_string())],
        )
        .await?;
    Ok(children_of(&reply).into_iter().find(|c| c.name.eq_ignore_ascii_case(name)))
}

/// Creates a folder and returns its id.
///
/// # Errors
/// The classified failure (a name conflict when it exists already).
pub async fn create_folder(client: &Client, parent: i64, name: &str) -> Result<i64, ApiError> {
    let body = json!({ "type": FOLDER, "parent_id": parent, "name": name }).to_string();
    let reply = client
        .send(|| async { Ok(client.request(Method::POST, "/v2/nodes").form(&[("body", body.as_str())])) })
        .await?;
    new_id(&reply)
}

/// The id of a created node (`results.data.properties.id`; v1 replies `{"id": n}`).
///
/// # Errors
/// The reply has no id.
pub fn new_id(reply: &Value) -> Result<i64, ApiError> {
    reply["results"]["data"]["properties"]["id"]
        .as_i64()
        .or_else(|| reply["results"]["id"].as_i64())
        .or_else(|| reply["id"].as_i64())
        .ok_or_else(|| ApiError::Transient(format!("Content Server's reply has no node id: {reply}")))
}

/// Resolves (and, if allowed, makes) folders by path below a node.
#[derive(Debug, Default)]
pub struct Folders {
    cache: Mutex<HashMap<(i64, String), i64>>,
}

impl Folders {
    /// The id of the folder `segments` below `root`.
    ///
    /// # Errors
    /// A missing folder when `create` is off (permanent), or the classified failure.
    pub async fn resolve(&self, client: &Client, root: i64, segments: &[&str], create: bool) -> Result<i64, ApiError> {
        let mut parent = root;
        for seg in segments {
            let key = (parent, seg.to_lowercase());
            if let Some(id) = self.cache.lock().await.get(&key).copied() {
                parent = id;
                continue;
            }
            let id = match find_child(client, parent, seg).await? {
                Some(c) if c.kind == DOCUMENT => {
                    return Err(ApiError::Permanent {
                        status: 0,
                        message: format!("`{seg}` under node {parent} is a document, not a folder"),
                    });
                }
                Some(c) => c.id,
                None if create => match create_folder(client, parent, seg).await {
                    Ok(id) => id,
                    // Another worker made it a moment ago.
                    Err(ApiError::NameConflict(_)) => {
                        find_child(client, parent, seg).await?.map(|c| c.id).ok_or_else(|| {
                            ApiError::Transient(format!("folder `{seg}` under node {parent} exists but is not listed"))
                        })?
                    }
                    Err(e) => return Err(e),
                },
                None => {
                    return Err(ApiError::Permanent {
                        status: 0,
                        message: format!(
                            "there is no folder `{seg}` under node {parent}, and the target does not create folders \
                             (create_folders = false)"
                        ),
                    });
                }
            };
            self.cache.lock().await.insert(key, id);
            parent = id;
        }
        Ok(parent)
    }

    /// Forgets the cached folders (one was deleted or moved on the server).
    pub async fn forget(&self) {
        self.cache.lock().await.clear();
    }
}
