//! Labels (v2 list, v1 list and add) and content properties (v2 list, get, create, update, delete).

use super::Ctx;
use super::http::{Api, Pairs, bad_request, iso, json_reply, not_found, read_limited, v1_error, v2_error};
use super::pages::read_json;
use super::paging::v2_list;
use super::router::content_id;
use super::seed::valid_label;
use super::state::{Label, Property, version};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

fn label_json(l: &Label) -> Value {
    json!({"id": l.id.to_string(), "name": l.name, "prefix": l.prefix})
}

fn v1_label_json(l: &Label) -> Value {
    json!({"prefix": l.prefix, "name": l.name, "id": l.id.to_string(), "label": l.name})
}

/// `GET /pages/{id}/labels?prefix=&sort=&cursor=&limit=` (default 25, max 250).
pub fn labels(ctx: &Ctx, id: &str, q: &Pairs) -> Response {
    let id = match content_id(id, Api::V2) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let prefix = q.get("prefix");
    if let Some(p) = prefix
        && !["my", "team", "global", "system"].contains(&p)
    {
        return bad_request(Api::V2, format!("Provided value for 'prefix' is not valid: {p}"));
    }
    let st = ctx.sh.st();
    let Some(p) = st.visible(id) else { return not_found(Api::V2) };
    let items = p.labels.iter().filter(|l| prefix.is_none_or(|x| l.prefix == x)).map(label_json).collect();
    drop(st);
    v2_list(ctx, &format!("/api/v2/pages/{id}/labels"), q, items, 25, 250)
}

fn v1_label_list(ctx: &Ctx, labels: &[Label], id: u64) -> Response {
    let results: Vec<Value> = labels.iter().map(v1_label_json).collect();
    json_reply(
        200,
        json!({"results": results, "start": 0, "limit": 200, "size": results.len(),
               "_links": {"base": ctx.wiki_base, "context": "/wiki", "self": format!("{}/rest/api/content/{id}/label", ctx.wiki_base)}}),
    )
}

/// v1 `GET /content/{id}/label`.
pub fn v1_labels(ctx: &Ctx, id: &str) -> Response {
    let Ok(id) = id.parse::<u64>() else { return not_found(Api::V1) };
    let st = ctx.sh.st();
    match st.visible(id) {
        Some(p) => v1_label_list(ctx, &p.labels.clone(), id),
        None => not_found(Api::V1),
    }
}

/// v1 `POST /content/{id}/label` with `[{"prefix":"global","name":"filed-in-ecm"}]` (or one object)
/// → every label of the page. Names are lowercased; adding a present label changes nothing.
pub async fn add_labels(ctx: &Ctx, id: &str, req: Request) -> Response {
    let Ok(id) = id.parse::<u64>() else { return not_found(Api::V1) };
    let body = match read_limited(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => return v1_error(400, "Could not read the request body"),
    };
    let items = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(a)) => a,
        Ok(o @ Value::Object(_)) => vec![o],
        _ => return v1_error(400, "Invalid label list: expected [{\"prefix\":\"global\",\"name\":\"…\"}]"),
    };
    if items.is_empty() {
        return v1_error(400, "At least one label is required");
    }
    let mut wanted = vec![];
    for it in &items {
        let prefix = it.get("prefix").and_then(Value::as_str).unwrap_or("global");
        let Some(name) = it.get("name").and_then(Value::as_str) else { return v1_error(400, "Label name is required") };
        if !["global", "my", "team"].contains(&prefix) {
            return v1_error(400, format!("Invalid label prefix: {prefix}"));
        }
        if !valid_label(name) {
            return v1_error(400, format!("Label '{name}' contains invalid characters or is too long"));
        }
        wanted.push((prefix.to_string(), name.to_string()));
    }
    let mut st = ctx.sh.st();
    if st.visible(id).is_none() {
        return not_found(Api::V1);
    }
    for (prefix, name) in wanted {
        st.add_label(id, &prefix, &name);
    }
    let labels = st.visible(id).map(|p| p.labels.clone()).unwrap_or_default();
    v1_label_list(ctx, &labels, id)
}

/// The v2 content property object.
pub fn property_json(p: &Property) -> Value {
    json!({"id": p.id.to_string(), "key": p.key, "value": p.value,
           "version": {"createdAt": iso(&p.version.created_at), "message": p.version.message,
                       "number": p.version.number, "minorEdit": p.version.minor_edit, "authorId": p.version.author_id}})
}

/// `GET /pages/{id}/properties?key=&sort=&cursor=&limit=`.
/// Decision (UNVERIFIED): default 25, max 250 like the other v2 lists.
pub fn properties(ctx: &Ctx, id: &str, q: &Pairs) -> Response {
    let id = match content_id(id, Api::V2) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let key = q.get("key");
    let st = ctx.sh.st();
    let Some(p) = st.visible(id) else { return not_found(Api::V2) };
    let items = p.properties.iter().filter(|x| key.is_none_or(|k| x.key == k)).map(property_json).collect();
    drop(st);
    v2_list(ctx, &format!("/api/v2/pages/{id}/properties"), q, items, 25, 250)
}

/// `GET /pages/{id}/properties/{property-id}`.
pub fn property(ctx: &Ctx, id: &str, pid: &str) -> Response {
    let (id, pid) = match (content_id(id, Api::V2), content_id(pid, Api::V2)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let st = ctx.sh.st();
    match st.visible(id).and_then(|p| p.properties.iter().find(|x| x.id == pid)) {
        Some(x) => json_reply(200, property_json(x)),
        None => not_found(Api::V2),
    }
}

fn key_of(m: &serde_json::Map<String, Value>) -> Result<String, Response> {
    match m.get("key").and_then(Value::as_str) {
        Some(k) if !k.trim().is_empty() && k.len() <= 255 => Ok(k.to_string()),
        _ => Err(bad_request(Api::V2, "key is required (1..255 characters)")),
    }
}

/// `POST /pages/{id}/properties` `{"key","value"}`.
/// Decision (UNVERIFIED): a key already present on the page is 409 CONFLICT; a missing `value` 400.
pub async fn create_property(ctx: &Ctx, id: &str, req: Request) -> Response {
    let id = match content_id(id, Api::V2) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let m = match read_json(req, Api::V2).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let key = match key_of(&m) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let Some(value) = m.get("value").cloned() else { return bad_request(Api::V2, "value is required") };
    let mut st = ctx.sh.st();
    let pid = st.next();
    let Some(p) = st.visible_mut(id) else { return not_found(Api::V2) };
    if p.properties.iter().any(|x| x.key == key) {
        return v2_error(409, "CONFLICT", format!("A property with key '{key}' already exists on this content"));
    }
    let prop = Property { id: pid, key, value, version: version(1, &ctx.account, chrono::Utc::now(), "", false) };
    let out = property_json(&prop);
    p.properties.push(prop);
    json_reply(200, out)
}

/// `PUT /pages/{id}/properties/{property-id}` `{"key","value","version":{"number": current+1}}`;
/// a wrong number is 409, a different key 400.
pub async fn update_property(ctx: &Ctx, id: &str, pid: &str, req: Request) -> Response {
    let (id, pid) = match (content_id(id, Api::V2), content_id(pid, Api::V2)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let m = match read_json(req, Api::V2).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let key = match key_of(&m) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let Some(value) = m.get("value").cloned() else { return bad_request(Api::V2, "value is required") };
    let Some(number) = m.get("version").and_then(|v| v.get("number")).and_then(Value::as_u64) else {
        return bad_request(Api::V2, "version.number is required");
    };
    let message = m.get("version").and_then(|v| v.get("message")).and_then(Value::as_str).unwrap_or("").to_string();
    let mut st = ctx.sh.st();
    let Some(x) = st.visible_mut(id).and_then(|p| p.properties.iter_mut().find(|x| x.id == pid)) else {
        return not_found(Api::V2);
    };
    if x.key != key {
        return bad_request(Api::V2, format!("The key of property {pid} is '{}', not '{key}'", x.key));
    }
    if number != u64::from(x.version.number) + 1 {
        return v2_error(
            409,
            "CONFLICT",
            format!("Version must be incremented on update. Current version is: {}", x.version.number),
        );
    }
    x.value = value;
    x.version = version(number as u32, &ctx.account, chrono::Utc::now(), &message, false);
    json_reply(200, property_json(x))
}

/// `DELETE /pages/{id}/properties/{property-id}` → 204.
pub fn delete_property(ctx: &Ctx, id: &str, pid: &str) -> Response {
    let (id, pid) = match (content_id(id, Api::V2), content_id(pid, Api::V2)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let mut st = ctx.sh.st();
    let Some(p) = st.visible_mut(id) else { return not_found(Api::V2) };
    let before = p.properties.len();
    p.properties.retain(|x| x.id != pid);
    if p.properties.len() == before {
        return not_found(Api::V2);
    }
    StatusCode::NO_CONTENT.into_response()
}
