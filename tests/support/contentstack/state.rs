//! The stack's content: entries per content type, assets, and publish state per
//! (entry or asset, environment, locale) with the published version.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// One entry (all locales share the uid; the emulator keeps one body per entry).
#[derive(Debug, Clone)]
pub struct Entry {
    pub uid: String,
    pub content_type: String,
    pub locale: String,
    pub version: u64,
    pub fields: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
}

/// One uploaded asset.
#[derive(Debug, Clone)]
pub struct Asset {
    pub uid: String,
    pub version: u64,
    pub filename: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub parent_uid: Option<String>,
    pub content_type: String,
    pub data: Vec<u8>,
    pub created_at: String,
}

/// One published (environment, locale) of an entry or asset: the version and the JSON sent.
#[derive(Debug, Clone)]
pub struct Published {
    pub version: u64,
    pub time: String,
    pub body: Value,
}

/// Everything the stack holds.
#[derive(Default)]
pub struct State {
    pub entries: BTreeMap<String, Entry>,
    pub assets: BTreeMap<String, Asset>,
    /// (uid, environment, locale) → published version.
    pub published: BTreeMap<(String, String, String), Published>,
    /// Entry uid → the JSON of its last publish (kept after unpublish/delete, for webhooks).
    pub last_published: BTreeMap<String, Value>,
    /// Base of asset `url`s: the emulator's own `/cdn` (Contentstack's is images.contentstack.io,
    /// served without the API's credentials).
    pub cdn: String,
    next: u64,
}

/// Now, as Contentstack writes times.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl State {
    /// An empty stack whose asset `url`s start with `cdn`.
    pub fn with_cdn(cdn: String) -> Self {
        Self { cdn, ..Self::default() }
    }

    /// A fresh `blt…` uid (16 hex digits after the prefix, like Contentstack's).
    pub fn uid(&mut self) -> String {
        self.next += 1;
        format!("blt{:016x}", 0x5a5a_0000_0000_0000u64 + self.next)
    }

    fn publish_details(&self, uid: &str) -> Value {
        let list: Vec<Value> = self
            .published
            .iter()
            .filter(|((u, _, _), _)| u == uid)
            .map(|((_, env, loc), p)| {
                json!({"environment": env, "locale": loc, "time": p.time, "version": p.version, "user": "blt-emulator"})
            })
            .collect();
        Value::Array(list)
    }

    /// An entry as the API returns it.
    pub fn entry_json(&self, e: &Entry) -> Value {
        let mut m = e.fields.clone();
        m.insert("uid".into(), json!(e.uid));
        m.insert("locale".into(), json!(e.locale));
        m.insert("_version".into(), json!(e.version));
        m.insert("created_at".into(), json!(e.created_at));
        m.insert("updated_at".into(), json!(e.updated_at));
        m.insert("publish_details".into(), self.publish_details(&e.uid));
        Value::Object(m)
    }

    /// An asset as the API returns it.
    pub fn asset_json(&self, a: &Asset) -> Value {
        json!({
            "uid": a.uid, "_version": a.version, "filename": a.filename, "title": a.title,
            "description": a.description, "tags": a.tags, "parent_uid": a.parent_uid,
            "content_type": a.content_type, "file_size": a.data.len().to_string(),
            "url": format!("{}/v3/assets/{}/{}", self.cdn, a.uid, a.filename),
            "created_at": a.created_at, "updated_at": a.created_at,
            "publish_details": self.publish_details(&a.uid),
        })
    }
}

/// Whether `doc` matches a Contentstack `query` object: per key, equality (an array field matches
/// when it contains the value), `{"$in": [..]}`, `{"$regex": ".."}` (substring, simplified) and
/// `$and`/`$or` lists. Unknown operators are an error (the caller answers 422).
pub fn matches(doc: &Value, query: &Map<String, Value>) -> Result<bool, String> {
    for (key, cond) in query {
        let ok = match key.as_str() {
            "$and" | "$or" => {
                let list = cond.as_array().ok_or(format!("{key} takes an array"))?;
                let mut results = Vec::new();
                for q in list {
                    let q = q.as_object().ok_or(format!("{key} takes objects"))?;
                    results.push(matches(doc, q)?);
                }
                if key == "$and" { results.iter().all(|b| *b) } else { results.iter().any(|b| *b) }
            }
            _ => field_matches(doc.get(key), cond)?,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn equal(field: Option<&Value>, v: &Value) -> bool {
    match field {
        Some(Value::Array(items)) => items.contains(v) || field == Some(v),
        Some(f) => f == v,
        None => v.is_null(),
    }
}

fn field_matches(field: Option<&Value>, cond: &Value) -> Result<bool, String> {
    let Some(ops) = cond.as_object() else { return Ok(equal(field, cond)) };
    let mut ok = true;
    for (op, arg) in ops {
        ok &= match op.as_str() {
            "$in" => arg.as_array().ok_or("$in takes an array")?.iter().any(|v| equal(field, v)),
            "$nin" => !arg.as_array().ok_or("$nin takes an array")?.iter().any(|v| equal(field, v)),
            "$ne" => !equal(field, arg),
            "$exists" => field.is_some() == arg.as_bool().unwrap_or(true),
            "$regex" => {
                let needle = arg.as_str().ok_or("$regex takes a string")?;
                field.and_then(Value::as_str).is_some_and(|s| s.contains(needle))
            }
            // comparisons of strings (ISO times compare as text) or numbers, as the CMA's
            "$gt" | "$gte" | "$lt" | "$lte" => {
                let ord = match (field, arg) {
                    (Some(Value::String(a)), Value::String(b)) => a.as_str().cmp(b.as_str()),
                    (Some(Value::Number(a)), Value::Number(b)) => {
                        a.as_f64().unwrap_or(0.0).total_cmp(&b.as_f64().unwrap_or(0.0))
                    }
                    _ => return Ok(false),
                };
                match op.as_str() {
                    "$gt" => ord.is_gt(),
                    "$gte" => ord.is_ge(),
                    "$lt" => ord.is_lt(),
                    _ => ord.is_le(),
                }
            }
            other => return Err(format!("unsupported query operator {other}")),
        };
    }
    Ok(ok)
}
