//! Entries: create, read, update (version + 1), delete, query (JSON `query`, `skip`/`limit` ≤ 100,
//! `include_count`), publish and unpublish per environment × locale.

use super::Shared;
use super::http::{Reply, error, invalid, not_found};
use super::state::{Entry, Published, now};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

type Params = Query<HashMap<String, String>>;

/// Environments, locales and the optional version of a publish body.
pub type PublishTargets = (Vec<String>, Vec<String>, Option<u64>);

/// The `{"entry": {...}}` wrapper's content, checked against the content type's fields.
fn entry_body(shared: &Shared, ct: &str, body: &Value) -> Result<Map<String, Value>, axum::response::Response> {
    let fields = shared.seed.content_types.get(ct).ok_or_else(|| not_found("content type"))?;
    let Some(entry) = body.get("entry").and_then(Value::as_object) else {
        return Err(invalid("Entry creation failed. Please enter valid data.", "entry", "is required."));
    };
    for key in entry.keys() {
        if key != "title" && key != "url" && key != "tags" && !fields.contains(key) {
            return Err(invalid(
                "Entry creation failed. Please enter valid data.",
                key,
                "is not a field of the content type.",
            ));
        }
    }
    Ok(entry.clone())
}

fn locale(shared: &Shared, p: &HashMap<String, String>) -> Result<String, axum::response::Response> {
    let l = p.get("locale").cloned().unwrap_or_else(|| "en-us".into());
    if shared.seed.locales.contains(&l) {
        Ok(l)
    } else {
        Err(invalid("Language was not found.", "locale", "is not valid."))
    }
}

/// `POST /v3/content_types/{ct}/entries`.
pub async fn create(State(s): State<Arc<Shared>>, Path(ct): Path<String>, p: Params, body: Json<Value>) -> Reply {
    let fields = entry_body(&s, &ct, &body)?;
    if fields.get("title").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(invalid("Entry creation failed. Please enter valid data.", "title", "is a required field."));
    }
    let locale = locale(&s, &p)?;
    let mut st = s.st();
    let uid = st.uid();
    let t = now();
    let e =
        Entry { uid: uid.clone(), content_type: ct, locale, version: 1, fields, created_at: t.clone(), updated_at: t };
    let json = st.entry_json(&e);
    st.entries.insert(uid, e);
    Ok((StatusCode::CREATED, Json(json!({"notice": "Entry created successfully.", "entry": json}))).into_response())
}

/// `PUT /v3/content_types/{ct}/entries/{uid}`: merges the given fields, version + 1.
pub async fn update(
    State(s): State<Arc<Shared>>,
    Path((ct, uid)): Path<(String, String)>,
    p: Params,
    body: Json<Value>,
) -> Reply {
    let fields = entry_body(&s, &ct, &body)?;
    let _ = locale(&s, &p)?;
    let mut st = s.st();
    let e = st.entries.get_mut(&uid).filter(|e| e.content_type == ct).ok_or_else(|| not_found("entry"))?;
    for (k, v) in fields {
        e.fields.insert(k, v);
    }
    e.version += 1;
    e.updated_at = now();
    let e = e.clone();
    Ok(Json(json!({"notice": "Entry updated successfully.", "entry": st.entry_json(&e)})).into_response())
}

/// `GET /v3/content_types/{ct}/entries/{uid}`.
pub async fn get(State(s): State<Arc<Shared>>, Path((ct, uid)): Path<(String, String)>) -> Reply {
    let st = s.st();
    let e = st.entries.get(&uid).filter(|e| e.content_type == ct).ok_or_else(|| not_found("entry"))?;
    Ok(Json(json!({"entry": st.entry_json(e)})).into_response())
}

/// `DELETE /v3/content_types/{ct}/entries/{uid}`.
pub async fn delete(State(s): State<Arc<Shared>>, Path((ct, uid)): Path<(String, String)>) -> Reply {
    let mut st = s.st();
    if st.entries.get(&uid).is_none_or(|e| e.content_type != ct) {
        return Err(not_found("entry"));
    }
    st.entries.remove(&uid);
    st.published.retain(|(u, _, _), _| u != &uid);
    Ok(Json(json!({"notice": "Entry deleted successfully."})).into_response())
}

/// Parses `query` (JSON object), `skip`, `limit` (≤ 100) and `include_count`.
pub fn paging(
    p: &HashMap<String, String>,
) -> Result<(Map<String, Value>, usize, usize, bool), axum::response::Response> {
    let query = match p.get("query") {
        None => Map::new(),
        Some(q) => match serde_json::from_str::<Value>(q) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    141,
                    "Please send a valid JSON query.",
                    json!({"query": ["is not valid JSON."]}),
                ));
            }
        },
    };
    let num = |k: &str, d: usize| -> Result<usize, axum::response::Response> {
        p.get(k).map_or(Ok(d), |v| v.parse().map_err(|_| invalid("Invalid paging.", k, "is not a number.")))
    };
    let skip = num("skip", 0)?;
    let limit = num("limit", 100)?;
    if limit > 100 {
        return Err(invalid("Limit can't be more than 100.", "limit", "must be at most 100."));
    }
    let count = p.get("include_count").is_some_and(|v| v == "true");
    Ok((query, skip, limit, count))
}

/// `GET /v3/content_types/{ct}/entries?query=..&skip=..&limit=..&include_count=true`.
pub async fn list(State(s): State<Arc<Shared>>, Path(ct): Path<String>, p: Params) -> Reply {
    if !s.seed.content_types.contains_key(&ct) {
        return Err(not_found("content type"));
    }
    let (query, skip, limit, count) = paging(&p)?;
    let st = s.st();
    let mut hits = Vec::new();
    for e in st.entries.values().filter(|e| e.content_type == ct) {
        let json = st.entry_json(e);
        if super::state::matches(&json, &query).map_err(|m| invalid(&m, "query", "is not valid."))? {
            hits.push(json);
        }
    }
    let total = hits.len();
    let page: Vec<Value> = hits.into_iter().skip(skip).take(limit).collect();
    let mut reply = json!({"entries": page});
    if count {
        reply["count"] = json!(total);
    }
    Ok(Json(reply).into_response())
}

/// The publish/unpublish body, checked: `{"<module>": {"environments": [..], "locales": [..]}, "version": n?}`.
pub fn targets(s: &Shared, module: &str, body: &Value) -> Result<PublishTargets, axum::response::Response> {
    let inner = body.get(module).and_then(Value::as_object);
    let list = |k: &str| -> Option<Vec<String>> {
        let v: Vec<String> = inner?.get(k)?.as_array()?.iter().filter_map(|x| x.as_str().map(String::from)).collect();
        if v.is_empty() { None } else { Some(v) }
    };
    let msg = "Publishing failed. Please enter environments and locales.";
    let envs = list("environments").ok_or_else(|| invalid(msg, "environments", "is required."))?;
    let locales = list("locales").ok_or_else(|| invalid(msg, "locales", "is required."))?;
    if let Some(bad) = envs.iter().find(|e| !s.seed.environments.contains(e)) {
        return Err(invalid("Environment was not found.", "environments", &format!("{bad} is not valid.")));
    }
    if let Some(bad) = locales.iter().find(|l| !s.seed.locales.contains(l)) {
        return Err(invalid("Language was not found.", "locales", &format!("{bad} is not valid.")));
    }
    if let Some(fail) = s.faults.publish_fail_locale().filter(|f| locales.contains(f)) {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            141,
            &format!("Publishing failed for locale {fail}."),
            json!({"locales": [format!("{fail} could not be published.")]}),
        ));
    }
    Ok((envs, locales, body.get("version").and_then(Value::as_u64)))
}

/// `POST /v3/content_types/{ct}/entries/{uid}/publish`: all pairs or none.
pub async fn publish(
    State(s): State<Arc<Shared>>,
    Path((ct, uid)): Path<(String, String)>,
    body: Json<Value>,
) -> Reply {
    let (envs, locales, version) = targets(&s, "entry", &body)?;
    let mut st = s.st();
    let e = st.entries.get(&uid).filter(|e| e.content_type == ct).cloned().ok_or_else(|| not_found("entry"))?;
    let version = version.unwrap_or(e.version);
    if version != e.version {
        return Err(invalid("Publishing failed.", "version", "is not the entry's current version."));
    }
    let mut json = st.entry_json(&e);
    json.as_object_mut().map(|m| m.remove("publish_details"));
    st.last_published.insert(uid.clone(), json.clone());
    for env in &envs {
        for loc in &locales {
            let p = Published { version, time: now(), body: json.clone() };
            st.published.insert((uid.clone(), env.clone(), loc.clone()), p);
        }
    }
    Ok(Json(json!({"notice": "The requested action has been performed.", "job_id": st.uid()})).into_response())
}

/// `POST /v3/content_types/{ct}/entries/{uid}/unpublish`.
pub async fn unpublish(
    State(s): State<Arc<Shared>>,
    Path((ct, uid)): Path<(String, String)>,
    body: Json<Value>,
) -> Reply {
    let (envs, locales, _) = targets(&s, "entry", &body)?;
    let mut st = s.st();
    if st.entries.get(&uid).is_none_or(|e| e.content_type != ct) {
        return Err(not_found("entry"));
    }
    for env in &envs {
        for loc in &locales {
            st.published.remove(&(uid.clone(), env.clone(), loc.clone()));
        }
    }
    Ok(Json(json!({"notice": "The requested action has been performed."})).into_response())
}
