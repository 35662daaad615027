//! Contentstack as a poll [`Source`]: the entries of a content type matching a CMA `query`,
//! changed since the cursor (`updated_at`), each taken as its JSON (scenario 000's "collect":
//! content that lives in Contentstack filed elsewhere).
//!
//! - **Query**: `GET /v3/content_types/{ct}/entries?query=...&skip=&limit=100&include_count=true`,
//!   the configured query `$and` `{"updated_at": {"$gte": <cursor time>}}`; pages until `count`.
//! - **Cursor**: `{"t": <latest updated_at>, "uids": [entries seen at that time]}`: the next poll
//!   starts AT `t` (inclusive) and skips those uids, so entries sharing a time are never lost.
//! - **Item**: id = `uid/locale`, rev = `_version`; the body is the entry JSON as listed;
//!   `transfer.source.*` = uid, title, version, locale, updated_at, content_type, url, tags.
//! - **Write-back**: none (Contentstack is the system of record; the receipt is in the journal).

use crate::config::polls::ContentstackPoll;
use crate::intake::poll::{Item, ItemError, Listing, Source};
use crate::spool::Upload;
use crate::spool::journal::SourceItem;
use crate::targets::contentstack::client::Client;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Entries per page (the CMA's maximum).
const PAGE: usize = 100;
/// Pages per poll at most (the cursor continues where a poll stopped).
const MAX_PAGES: usize = 50;

/// The Contentstack side of a poll.
pub struct ContentstackSource {
    poll: ContentstackPoll,
    client: Arc<Client>,
}

impl ContentstackSource {
    /// The source for `poll`, reading through `client`.
    pub fn new(poll: ContentstackPoll, client: Arc<Client>) -> Self {
        Self { poll, client }
    }
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Cursor {
    t: String,
    uids: Vec<String>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A uid or locale fit for names and keys.
fn token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

#[async_trait::async_trait]
impl Source for ContentstackSource {
    fn system(&self) -> &'static str {
        "contentstack"
    }

    async fn list(&self, cursor: Option<&str>) -> Result<Listing, String> {
        let cur: Cursor = cursor.and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
        let mut parts = Vec::new();
        if !self.poll.query.is_empty() {
            parts.push(Value::Object(self.poll.query.clone()));
        }
        if !cur.t.is_empty() {
            parts.push(json!({ "updated_at": { "$gte": cur.t } }));
        }
        let query = match parts.len() {
            0 => json!({}),
            1 => parts.remove(0),
            _ => json!({ "$and": parts }),
        };
        let path = format!("/v3/content_types/{}/entries", self.poll.content_type);
        let mut entries = Vec::new();
        for page in 0..MAX_PAGES {
            let q = [
                ("query", query.to_string()),
                ("skip", (page * PAGE).to_string()),
                ("limit", PAGE.to_string()),
                ("include_count", "true".to_string()),
            ];
            let v = self.client.get_json(&path, &q).await.map_err(|e| e.to_string())?;
            let got = v["entries"].as_array().cloned().unwrap_or_default();
            let n = got.len();
            entries.extend(got);
            let count = v["count"].as_u64().unwrap_or(0) as usize;
            if n < PAGE || entries.len() >= count {
                break;
            }
        }
        entries.sort_by(|a, b| text(&a["updated_at"]).cmp(&text(&b["updated_at"])));
        let mut out = Listing::default();
        let mut next = Cursor { t: cur.t.clone(), uids: cur.uids.clone() };
        for e in entries {
            let (uid, updated) = (text(&e["uid"]), text(&e["updated_at"]));
            let locale = Some(text(&e["locale"])).filter(|l| !l.is_empty()).unwrap_or_else(|| "default".into());
            if !token(&uid) || !token(&locale) {
                out.filtered += 1;
                continue;
            }
            if updated == cur.t && cur.uids.contains(&uid) {
                out.filtered += 1;
                continue;
            }
            if updated > next.t {
                next = Cursor { t: updated.clone(), uids: vec![] };
            }
            if updated == next.t && !next.uids.contains(&uid) {
                next.uids.push(uid.clone());
            }
            let version = text(&e["_version"]);
            let fields: BTreeMap<String, String> = [
                ("id", uid.clone()),
                ("uid", uid.clone()),
                ("title", text(&e["title"])),
                ("version", version.clone()),
                ("locale", locale.clone()),
                ("updated_at", updated.clone()),
                ("content_type", self.poll.content_type.clone()),
                ("url", text(&e["url"])),
                ("tags", text(&e["tags"])),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.chars().filter(|c| !c.is_control()).collect()))
            .collect();
            let body = serde_json::to_vec_pretty(&e).map_err(|e| e.to_string())?;
            out.items.push(Item {
                id: format!("{uid}/{locale}"),
                rev: if version.is_empty() { updated.clone() } else { version.clone() },
                name: format!("{}-{uid}-{locale}-v{version}.json", self.poll.content_type),
                path: format!("{}/{uid}/{locale}", self.poll.content_type),
                fields,
                body: Some(body),
            });
        }
        out.cursor = Some(serde_json::to_string(&next).map_err(|e| e.to_string())?);
        Ok(out)
    }

    async fn fetch(&self, item: &Item, upload: &Upload) -> Result<bool, ItemError> {
        let Some(body) = &item.body else {
            return Err(ItemError::Refused(format!("{}: listed without its JSON", item.path)));
        };
        upload.write_at(0, body.clone()).await.map_err(|e| ItemError::Transient(format!("{}: {e}", item.path)))?;
        Ok(true)
    }

    async fn write_back(&self, _item: &SourceItem, state: &str, _detail: Option<&str>) -> Result<String, String> {
        Ok(format!("{state}: none"))
    }
}
