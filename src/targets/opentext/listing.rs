//! Content Server as a source: the documents of a folder, page by page
//! (`GET /api/v2/nodes/{id}/nodes`, `where_type=144`, `page`/`limit`, `collection.paging`), with
//! their category values (`fields=categories`), filtered by modification time and by one
//! attribute value (`Status = Approved`); and the content of one, streamed
//! (`GET /api/v1/nodes/{id}/content`: OpenText's own library downloads through v1).

use super::client::{ApiError, Client};
use super::folders::DOCUMENT;
use bytes::Bytes;
use futures_util::Stream;
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;

/// Documents asked for per page.
pub const PAGE_SIZE: u32 = 100;

/// One listed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Node id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Size in bytes (as the server reports it).
    pub size: u64,
    /// `modify_date` as the server gives it (ISO 8601).
    pub modified: String,
    /// Category values keyed `{category}_{attribute}`, as text.
    pub categories: BTreeMap<String, String>,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// The folder.
    pub folder: i64,
    /// Only documents modified at or after this (ISO 8601, compared as text, which orders ISO
    /// dates). Inclusive: `modify_date` has whole seconds, so a new version in the same second as
    /// the watermark must be listed again (callers drop what they already took by fingerprint).
    pub modified_after: Option<String>,
    /// Only documents whose category value `key` (`{cat}_{attr}`) equals the value.
    pub attribute: Option<(String, String)>,
    /// Documents per page; 0 means [`PAGE_SIZE`].
    pub page_size: u32,
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn listed(result: &Value) -> Option<Listed> {
    let p = &result["data"]["properties"];
    if p["type"].as_i64() != Some(DOCUMENT) {
        return None;
    }
    let mut categories = BTreeMap::new();
    // `data.categories` is an object, or (per category) an array of objects.
    let cats = &result["data"]["categories"];
    let objects: Vec<&serde_json::Map<String, Value>> = match cats {
        Value::Object(m) => vec![m],
        Value::Array(a) => a.iter().filter_map(Value::as_object).collect(),
        _ => Vec::new(),
    };
    for m in objects {
        for (k, v) in m {
            categories.insert(k.clone(), text_of(v));
        }
    }
    Some(Listed {
        id: p["id"].as_i64()?,
        name: p["name"].as_str()?.to_string(),
        size: p["size"].as_u64().unwrap_or(0),
        modified: p["modify_date"].as_str().unwrap_or_default().to_string(),
        categories,
    })
}

/// Every document of the folder that passes the filters, oldest change first.
///
/// # Errors
/// The classified failure of any page.
pub async fn list(client: &Client, q: &Query) -> Result<Vec<Listed>, ApiError> {
    let mut out = Vec::new();
    let mut page = 1u32;
    loop {
        let reply = client
            .get(
                &format!("/v2/nodes/{}/nodes", q.folder),
                &[
                    ("where_type", DOCUMENT.to_string()),
                    ("fields", "properties".to_string()),
                    ("fields", "categories".to_string()),
                    ("sort", "asc_name".to_string()),
                    ("page", page.to_string()),
                    ("limit", if q.page_size == 0 { PAGE_SIZE } else { q.page_size }.to_string()),
                ],
            )
            .await?;
        let results = reply["results"].as_array().cloned().unwrap_or_default();
        out.extend(results.iter().filter_map(listed).filter(|d| {
            q.modified_after.as_ref().is_none_or(|after| d.modified.as_str() >= after.as_str())
                && q.attribute.as_ref().is_none_or(|(k, v)| d.categories.get(k) == Some(v))
        }));
        let total_pages = reply["collection"]["paging"]["page_total"].as_u64().unwrap_or(1);
        if results.is_empty() || u64::from(page) >= total_pages {
            break;
        }
        page += 1;
    }
    out.sort_by(|a, b| (&a.modified, a.id).cmp(&(&b.modified, b.id)));
    Ok(out)
}

/// The latest version's content, as a stream of chunks (never whole in memory).
///
/// # Errors
/// The classified failure of the request (errors mid-stream come through the stream).
pub async fn download(
    client: &Client,
    id: i64,
) -> Result<impl Stream<Item = Result<Bytes, reqwest::Error>> + use<>, ApiError> {
    client.stream(Method::GET, &format!("/v1/nodes/{id}/content")).await
}
