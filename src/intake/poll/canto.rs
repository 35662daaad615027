//! Canto as a poll [`Source`]: `search` by scheme, keyword and approval, `lastModified` from the
//! cursor onwards, `start`/`limit` paging, oldest first; each asset's original downloaded through
//! `api_binary/.../directuri`; write-back sets the approval status and/or custom fields with
//! `batch/edit`.
//!
//! - **Cursor**: `{"t": <last Date modified>, "ids": [ids seen at that stamp]}`: the next search
//!   starts AT `t` (inclusive) and skips those ids, so assets sharing a stamp are never lost.
//! - **Item**: id = asset id, rev = `Date modified`, `transfer.source.*` = id, scheme, name,
//!   approval, keywords, tags, modified, size and each custom field (by its display name, in
//!   lowercase with `_` for blanks, e.g. `rights_expiry`).
//! - **Written back already** (decision): a batch/edit gives the asset a new `Date modified`, so
//!   an asset that already carries every value the delivered write-back sets is filtered out
//!   instead of taken again; clearing one of them in Canto (or a change that makes them differ)
//!   makes it eligible again.
//!
//! Declared from `targets::canto` (`source`), since `intake/poll.rs` is not this module's to edit;
//! the mod line belongs in `intake/poll.rs` as `pub mod canto;`.

use crate::config::polls::CantoPoll;
use crate::intake::poll::{Item, ItemError, Listing, Source};
use crate::spool::Upload;
use crate::spool::journal::SourceItem;
use crate::targets::canto::client::{ApiError, Client, short};
use crate::targets::canto::edit;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Results per search page.
const PAGE: usize = 100;
/// Pages per poll at most (the cursor continues where a poll stopped).
const MAX_PAGES: usize = 50;

/// The Canto side of a poll.
pub struct CantoSource {
    name: String,
    poll: CantoPoll,
    client: Arc<Client>,
}

impl CantoSource {
    /// The source of poll `name`, using `client`.
    pub fn new(name: &str, poll: CantoPoll, client: Arc<Client>) -> Self {
        Self { name: name.to_string(), poll, client }
    }

    fn written_back(&self, r: &Value) -> bool {
        let p = &self.poll;
        if p.delivered_approval.is_none() && p.delivered_fields.is_empty() {
            return false;
        }
        let approval_ok = p
            .delivered_approval
            .as_ref()
            .is_none_or(|a| r["approvalStatus"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(a)));
        approval_ok && p.delivered_fields.iter().all(|(k, v)| custom_value(r, k).as_deref() == Some(v.as_str()))
    }
}

/// A custom field's value in a result: by id, or by display name in `additional`.
fn custom_value(r: &Value, id: &str) -> Option<String> {
    if let Some(v) = r[id].as_str() {
        return Some(v.to_string());
    }
    r["additional"]
        .as_object()?
        .iter()
        .find(|(k, _)| field_key(k) == field_key(id))
        .and_then(|(_, v)| v.as_str().map(str::to_string))
}

/// `Rights expiry` → `rights_expiry`; `meta_rights_expiry` → `rights_expiry`.
fn field_key(name: &str) -> String {
    let n = name.trim().to_lowercase().replace([' ', '-'], "_");
    n.strip_prefix("meta_").map(str::to_string).unwrap_or(n)
}

fn list_of(v: &Value) -> String {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")).unwrap_or_default()
}

fn fields(r: &Value) -> BTreeMap<String, String> {
    let s = |k: &str| r[k].as_str().map(str::to_string).unwrap_or_else(|| r[k].to_string());
    let mut f: BTreeMap<String, String> = [
        ("id", s("id")),
        ("scheme", s("scheme")),
        ("name", s("name")),
        ("approval", r["approvalStatus"].as_str().unwrap_or_default().to_lowercase()),
        ("keywords", list_of(&r["keyword"])),
        ("tags", list_of(&r["tag"])),
        ("modified", r["default"]["Date modified"].as_str().unwrap_or_default().to_string()),
        ("size", s("size")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in r["additional"].as_object().into_iter().flatten() {
        if let Some(v) = v.as_str() {
            f.entry(field_key(k)).or_insert_with(|| v.to_string());
        }
    }
    f
}

/// The date a custom field holds: its first eight digits as `YYYYMMDD` (ISO `2027-01-31`, and
/// Canto's `yyyyMMddHHmmssSSS`, both read).
/// Decision (UNVERIFIED): Canto's docs do not fix the text of date custom fields; these two
/// forms are what its UI and API dates use.
fn field_date(v: &str) -> Option<chrono::NaiveDate> {
    let digits: String = v.chars().filter(char::is_ascii_digit).take(8).collect();
    chrono::NaiveDate::parse_from_str(&digits, "%Y%m%d").ok()
}

impl CantoSource {
    /// Fan-out mode: one item per configured region for a new or changed asset (id
    /// `<asset>/<region>`, rev its `Date modified`), the asset's metadata as the body, the
    /// region in `transfer.source.target_region`: a `[workflow]` per item then starts one
    /// localisation workflow per region.
    fn per_region(&self, r: &Value, f: &BTreeMap<String, String>) -> Vec<Item> {
        let (id, modified) = (f["id"].clone(), f["modified"].clone());
        self.poll
            .regions
            .iter()
            .map(|region| {
                let mut fields = f.clone();
                fields.insert("target_region".into(), region.clone());
                let body =
                    serde_json::to_vec_pretty(&json!({ "asset": r, "target_region": region })).unwrap_or_default();
                Item {
                    id: format!("{id}/{region}"),
                    rev: modified.clone(),
                    name: format!("{id}-{region}-localise.json"),
                    path: format!("{}/{id}/{region}", f["scheme"]),
                    fields,
                    body: Some(body),
                }
            })
            .collect()
    }

    /// Expiry mode: every asset the search finds whose `field` date is within `days` of `today`
    /// becomes one item per date (rev `expiry:<date>`): a poll never takes it twice for the same
    /// date, and a new date (rights extended, then expiring again) is a new item. The body is
    /// the asset's metadata as JSON.
    async fn list_expiring(&self, field: &str, days: u32, today: chrono::NaiveDate) -> Result<Listing, String> {
        let until = today + chrono::Days::new(u64::from(days));
        let mut out = Listing::default();
        for r in &self.search(None).await? {
            let mut f = fields(r);
            let date = f.get(&field_key(field)).and_then(|d| field_date(d));
            let Some(date) = date.filter(|d| *d >= today && *d <= until) else {
                out.filtered += 1;
                continue;
            };
            let id = f["id"].clone();
            let date = date.format("%Y-%m-%d").to_string();
            f.insert("expiry_date".into(), date.clone());
            let body = serde_json::to_vec_pretty(&json!({ "asset": r, "expiry_field": field, "expiry_date": date }))
                .map_err(|e| e.to_string())?;
            out.items.push(Item {
                id: id.clone(),
                rev: format!("expiry:{date}"),
                name: format!("{id}-expiry-{date}.json"),
                path: format!("{}/{id}", f["scheme"]),
                fields: f,
                body: Some(body),
            });
        }
        Ok(out)
    }

    /// Every search hit (the poll's scheme, keyword and approval filters; modified at or after
    /// `since` when given), oldest change first, page by page.
    async fn search(&self, since: Option<&str>) -> Result<Vec<Value>, String> {
        let mut base = vec![("sortBy", "time".to_string()), ("sortDirection", "ascending".to_string())];
        for (k, v) in
            [("scheme", &self.poll.scheme), ("keyword", &self.poll.keyword), ("approval", &self.poll.approval)]
        {
            if !v.is_empty() {
                base.push((k, v.clone()));
            }
        }
        if let Some(t) = since.filter(|t| !t.is_empty()) {
            base.push(("lastModified", format!("{t}..99991231235959999")));
        }
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut q = base.clone();
            q.push(("start", all.len().to_string()));
            q.push(("limit", PAGE.to_string()));
            let v = self.client.get_json("/api/v1/search", &q).await.map_err(|e| e.to_string())?;
            let results = v["results"].as_array().cloned().unwrap_or_default();
            let n = results.len();
            all.extend(results);
            let found = v["found"].as_u64().unwrap_or(0) as usize;
            if n == 0 || all.len() >= found {
                break;
            }
        }
        Ok(all)
    }
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Cursor {
    t: String,
    ids: Vec<String>,
}

#[async_trait::async_trait]
impl Source for CantoSource {
    fn system(&self) -> &'static str {
        "canto"
    }

    async fn list(&self, cursor: Option<&str>) -> Result<Listing, String> {
        if let Some((field, days)) = &self.poll.expiring {
            return self.list_expiring(field, *days, chrono::Utc::now().date_naive()).await;
        }
        let cur: Cursor = cursor.and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
        let mut out = Listing::default();
        let mut next = Cursor { t: cur.t.clone(), ids: cur.ids.clone() };
        for r in &self.search(Some(&cur.t)).await? {
            let f = fields(r);
            let (id, modified) = (f["id"].clone(), f["modified"].clone());
            if modified == cur.t && cur.ids.contains(&id) {
                continue;
            }
            if modified > next.t {
                next = Cursor { t: modified.clone(), ids: vec![] };
            }
            if modified == next.t && !next.ids.contains(&id) {
                next.ids.push(id.clone());
            }
            if self.written_back(r) {
                out.filtered += 1;
                continue;
            }
            if !self.poll.regions.is_empty() {
                out.items.extend(self.per_region(r, &f));
                continue;
            }
            out.items.push(Item {
                id: id.clone(),
                rev: modified,
                name: f["name"].clone(),
                path: format!("{}/{id}", f["scheme"]),
                fields: f,
                body: None,
            });
        }
        out.cursor = Some(serde_json::to_string(&next).map_err(|e| e.to_string())?);
        Ok(out)
    }

    async fn fetch(&self, item: &Item, upload: &Upload) -> Result<bool, ItemError> {
        if let Some(body) = &item.body {
            // expiry items: the asset's metadata is the body (the original is not needed to review rights)
            upload.write_at(0, body.clone()).await.map_err(|e| ItemError::Transient(format!("{}: {e}", item.path)))?;
            return Ok(true);
        }
        let (scheme, id) = (&item.fields["scheme"], &item.id);
        let url = match self.client.get_text(&format!("/api_binary/v1/{scheme}/{id}/directuri")).await {
            Ok(u) => u.trim().to_string(),
            Err(ApiError::NotFound) => return Err(ItemError::Refused(format!("{}: gone from Canto", item.path))),
            Err(e) => return Err(ItemError::Transient(format!("{}: {e}", item.path))),
        };
        let resp = self
            .client
            .http()
            .get(&url)
            .send()
            .await
            .map_err(|e| ItemError::Transient(format!("{}: download: {}", item.path, short(&e))))?;
        if !resp.status().is_success() {
            return Err(ItemError::Transient(format!("{}: download answered {}", item.path, resp.status())));
        }
        let mut stream = resp.bytes_stream();
        let mut offset = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| ItemError::Transient(format!("{}: download interrupted: {}", item.path, short(&e))))?;
            upload
                .write_at(offset, chunk.to_vec())
                .await
                .map_err(|e| ItemError::Transient(format!("{}: {e}", item.path)))?;
            offset += chunk.len() as u64;
        }
        let listed = item.fields.get("size").and_then(|s| s.trim_matches('"').parse::<u64>().ok());
        Ok(listed.is_none_or(|s| s == offset))
    }

    async fn write_back(&self, item: &SourceItem, state: &str, detail: Option<&str>) -> Result<String, String> {
        let (approval, custom) = if state == "delivered" {
            (&self.poll.delivered_approval, &self.poll.delivered_fields)
        } else {
            (&self.poll.excepted_approval, &self.poll.excepted_fields)
        };
        // `{reason}` in an excepted field's value is the exception's reason (a reviewer's
        // comment, a failed check), on one line and at most 1000 characters.
        let reason: String = detail
            .filter(|_| state == "excepted")
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(1000)
            .collect();
        let custom: BTreeMap<String, String> =
            custom.iter().map(|(k, v)| (k.clone(), v.replace("{reason}", reason.trim()))).collect();
        let custom = &custom;
        if approval.is_none() && custom.is_empty() {
            return Ok(format!("{state}: none"));
        }
        let f = item.field_map();
        let (Some(id), Some(scheme)) = (f.get("id"), f.get("scheme")) else {
            return Ok(format!("{state}: no asset id recorded"));
        };
        match edit::edit(&self.client, scheme, id, vec![], approval.as_deref(), custom).await {
            Ok(()) => {
                let what = json!({ "approval": approval, "fields": custom });
                tracing::info!(poll = %self.name, asset = %id, "written back to Canto");
                Ok(format!("{state}: {scheme}/{id} set {what}"))
            }
            Err(ApiError::NotFound) => Ok(format!("{state}: {scheme}/{id} is gone")),
            Err(e) => Err(format!("{scheme}/{id}: {e}")),
        }
    }
}
