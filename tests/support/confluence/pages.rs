//! v2 spaces and pages: list spaces (key → id), list pages of a space or by filter, get, create
//! (`POST /pages`) and update (`PUT /pages/{id}`, optimistic versioning).

use super::Ctx;
use super::http::{Api, Pairs, bad_request, iso, json_reply, not_found, percent_encode, read_limited, v2_error};
use super::paging::v2_list;
use super::router::content_id;
use super::state::{Page, State, version};
use axum::extract::Request;
use axum::http::header;
use axum::response::Response;
use serde_json::{Value, json};

/// Largest accepted JSON body of a page create/update (documented: 413 over 5 MB).
pub const MAX_BODY: usize = 5 * 1024 * 1024;

/// Reads a JSON object body: not JSON → 415, over 5 MB → 413, malformed → 400.
pub async fn read_json(req: Request, api: Api) -> Result<serde_json::Map<String, Value>, Response> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    let body = read_limited(req.into_body(), MAX_BODY).await;
    if !is_json {
        return Err(super::http::error(api, 415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported Media Type"));
    }
    let bytes = match body {
        Ok(b) => b,
        Err(true) => {
            return Err(super::http::error(
                api,
                413,
                "REQUEST_ENTITY_TOO_LARGE",
                "Request entity too large (limit 5 MB)",
            ));
        }
        Err(false) => return Err(bad_request(api, "Could not read the request body")),
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad_request(api, "Invalid JSON in the request body")),
    }
}

/// An id in a JSON body: a string of digits or an integer.
/// Decision (UNVERIFIED): both accepted (the spec says strings, one report says integers).
pub fn id_value(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// `_links.webui` of a page.
pub fn webui(space_key: &str, p: &Page) -> String {
    format!("/spaces/{space_key}/pages/{}/{}", p.id, percent_encode(&p.title).replace("%20", "+"))
}

/// The v2 page object (`body` only with `body-format=storage`; `{}` otherwise, as v2 does).
pub fn page_json(ctx: &Ctx, st: &State, p: &Page, with_body: bool, single: bool) -> Value {
    let key = st.spaces.get(&p.space_id).map(|s| s.key.as_str()).unwrap_or("");
    let body = if with_body { json!({"storage": {"representation": "storage", "value": p.body}}) } else { json!({}) };
    let mut links = json!({"webui": webui(key, p), "editui": format!("/pages/resumedraft.action?draftId={}", p.id),
                           "tinyui": format!("/x/{:x}", p.id)});
    if single {
        links["base"] = json!(ctx.wiki_base);
    }
    json!({
        "id": p.id.to_string(), "status": p.status, "title": p.title, "spaceId": p.space_id.to_string(),
        "parentId": p.parent_id.map(|x| x.to_string()), "parentType": p.parent_id.map(|_| "page"),
        "position": p.id % 10_000, "authorId": p.author_id, "ownerId": p.owner_id, "lastOwnerId": null,
        "createdAt": iso(&p.created_at),
        "version": {"createdAt": iso(&p.version.created_at), "message": p.version.message, "number": p.version.number,
                    "minorEdit": p.version.minor_edit, "authorId": p.version.author_id},
        "body": body, "_links": links,
    })
}

/// Checks `body-format`: true for `storage`, false when absent; other documented values → 400
/// (Decision: the emulator keeps storage only and says so rather than inventing ADF or HTML).
fn body_format(q: &Pairs, allowed: &[&str]) -> Result<bool, Response> {
    match q.get("body-format") {
        None => Ok(false),
        Some("storage") => Ok(true),
        Some(f) if allowed.contains(&f) => {
            Err(bad_request(Api::V2, format!("body-format={f} is valid but this emulator serves only 'storage'")))
        }
        Some(f) => Err(bad_request(Api::V2, format!("Provided value for 'body-format' is not valid: {f}"))),
    }
}

/// Filters and sorts pages by the common list parameters (`sort`, `status`, `title`).
fn select<'a>(st: &'a State, q: &Pairs, keep: impl Fn(&Page) -> bool) -> Result<Vec<&'a Page>, Response> {
    let sort = q.get("sort").unwrap_or("id");
    let sorts = ["id", "-id", "created-date", "-created-date", "modified-date", "-modified-date", "title", "-title"];
    if !sorts.contains(&sort) {
        return Err(bad_request(Api::V2, format!("Provided value for 'sort' is not valid: {sort}")));
    }
    let mut status = q.list("status");
    for s in &status {
        if !["current", "archived", "deleted", "trashed", "draft"].contains(&s.as_str()) {
            return Err(bad_request(Api::V2, format!("Provided value for 'status' is not valid: {s}")));
        }
    }
    if status.is_empty() {
        status = vec!["current".into(), "archived".into()];
    }
    let title = q.get("title");
    let mut list: Vec<&Page> = st
        .pages
        .values()
        .filter(|p| !p.restricted && status.contains(&p.status) && title.is_none_or(|t| p.title == t) && keep(p))
        .collect();
    match sort.trim_start_matches('-') {
        "created-date" => list.sort_by_key(|p| (p.created_at, p.id)),
        "modified-date" => list.sort_by_key(|p| (p.version.created_at, p.id)),
        "title" => list.sort_by(|a, b| a.title.cmp(&b.title).then(a.id.cmp(&b.id))),
        _ => list.sort_by_key(|p| p.id),
    }
    if sort.starts_with('-') {
        list.reverse();
    }
    Ok(list)
}

/// `GET /spaces/{id}/pages?depth=all|root&sort=&status=&title=&body-format=&cursor=&limit=`.
pub fn space_pages(ctx: &Ctx, id: &str, q: &Pairs) -> Response {
    let id = match content_id(id, Api::V2) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let depth = q.get("depth").unwrap_or("all");
    if depth != "all" && depth != "root" {
        return bad_request(Api::V2, format!("Provided value for 'depth' is not valid: {depth}"));
    }
    let with_body = match body_format(q, &["atlas_doc_format"]) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let st = ctx.sh.st();
    if !st.spaces.contains_key(&id) {
        return not_found(Api::V2);
    }
    let list = match select(&st, q, |p| p.space_id == id && (depth == "all" || p.parent_id.is_none())) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let items = list.into_iter().map(|p| page_json(ctx, &st, p, with_body, false)).collect();
    drop(st);
    v2_list(ctx, &format!("/api/v2/spaces/{id}/pages"), q, items, 25, 250)
}

/// `GET /pages?id=&space-id=&sort=&status=&title=&body-format=&cursor=&limit=`.
pub fn all_pages(ctx: &Ctx, q: &Pairs) -> Response {
    let with_body = match body_format(q, &["atlas_doc_format"]) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let ids = q.list("id");
    let spaces = q.list("space-id");
    for v in ids.iter().chain(&spaces) {
        if v.parse::<u64>().is_err() {
            return bad_request(
                Api::V2,
                format!("Provided value '{v}' is not the correct type. Expected type is long"),
            );
        }
    }
    let st = ctx.sh.st();
    let keep = |p: &Page| {
        (ids.is_empty() || ids.contains(&p.id.to_string()))
            && (spaces.is_empty() || spaces.contains(&p.space_id.to_string()))
    };
    let list = match select(&st, q, keep) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let items = list.into_iter().map(|p| page_json(ctx, &st, p, with_body, false)).collect();
    drop(st);
    v2_list(ctx, "/api/v2/pages", q, items, 25, 250)
}

/// `GET /pages/{id}?body-format=&version=&include-labels=&include-properties=`.
pub fn get(ctx: &Ctx, id: &str, q: &Pairs) -> Response {
    let id = match content_id(id, Api::V2) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let all = ["atlas_doc_format", "view", "export_view", "anonymous_export_view", "styled_view", "editor"];
    let with_body = match body_format(q, &all) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let st = ctx.sh.st();
    let Some(p) = st.visible(id) else { return not_found(Api::V2) };
    // Decision: the emulator keeps the current version only; `version=` naming another is 404.
    if let Some(v) = q.get("version")
        && v.parse::<u32>().ok() != Some(p.version.number)
    {
        return not_found(Api::V2);
    }
    let mut v = page_json(ctx, &st, p, with_body, true);
    if q.get("include-labels") == Some("true") {
        let labels: Vec<Value> =
            p.labels.iter().map(|l| json!({"id": l.id.to_string(), "name": l.name, "prefix": l.prefix})).collect();
        v["labels"] = json!({"results": labels, "meta": {"hasMore": false, "cursor": null}, "_links": {}});
    }
    if q.get("include-properties") == Some("true") {
        let props: Vec<Value> = p.properties.iter().map(super::meta::property_json).collect();
        v["properties"] = json!({"results": props, "meta": {"hasMore": false, "cursor": null}, "_links": {}});
    }
    json_reply(200, v)
}

/// The storage value of a create/update `body`: `{representation, value}` or `{storage: {…}}`.
fn storage_value(body: Option<&Value>) -> Result<Option<String>, Response> {
    let Some(b) = body else { return Ok(None) };
    let inner = b.get("storage").unwrap_or(b);
    let rep = inner.get("representation").and_then(Value::as_str);
    match rep {
        Some("storage") => {}
        Some("atlas_doc_format" | "wiki") => {
            return Err(bad_request(Api::V2, "body.representation is valid but this emulator accepts only 'storage'"));
        }
        _ => return Err(bad_request(Api::V2, "body.representation must be one of storage, atlas_doc_format, wiki")),
    }
    match inner.get("value") {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        _ => Err(bad_request(Api::V2, "body.value is required and must be a string")),
    }
}

/// `POST /pages[?root-level=true]`: `spaceId` required, `title` unless draft; 404 unknown space
/// or parent; 400 duplicate title; 413 over 5 MB.
pub async fn create(ctx: &Ctx, q: &Pairs, req: Request) -> Response {
    let m = match read_json(req, Api::V2).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(space_v) = m.get("spaceId") else { return bad_request(Api::V2, "spaceId is required") };
    let Some(space_id) = id_value(space_v) else { return bad_request(Api::V2, "spaceId is not the correct type") };
    let status = m.get("status").and_then(Value::as_str).unwrap_or("current");
    if status != "current" && status != "draft" {
        return bad_request(Api::V2, format!("status must be current or draft, not {status}"));
    }
    let title = m.get("title").and_then(Value::as_str).map(str::trim).unwrap_or("");
    if title.is_empty() && status != "draft" {
        return bad_request(Api::V2, "Title is required for a page that is not a draft");
    }
    let body = match storage_value(m.get("body")) {
        Ok(b) => b.unwrap_or_default(),
        Err(r) => return r,
    };
    let parent = match m.get("parentId") {
        None | Some(Value::Null) => None,
        Some(v) => match id_value(v) {
            Some(i) => Some(i),
            None => return bad_request(Api::V2, "parentId is not the correct type"),
        },
    };
    let mut st = ctx.sh.st();
    let Some(home) = st.spaces.get(&space_id).map(|s| s.homepage_id) else { return not_found(Api::V2) };
    // Decision (UNVERIFIED): a parent that is missing, invisible or in another space is 404.
    if let Some(pid) = parent
        && st.visible(pid).is_none_or(|p| p.space_id != space_id)
    {
        return not_found(Api::V2);
    }
    if status == "current" && st.title_taken(space_id, title, None) {
        return bad_request(Api::V2, format!("A page with this title already exists: {title}"));
    }
    let parent = if q.get("root-level") == Some("true") { None } else { parent.or(Some(home)) };
    let now = chrono::Utc::now();
    let id = st.new_page(space_id, parent, title, &body, &ctx.account, now);
    if let Some(p) = st.pages.get_mut(&id) {
        p.status = status.to_string();
    }
    match st.pages.get(&id) {
        Some(p) => json_reply(200, page_json(ctx, &st, p, true, true)),
        None => not_found(Api::V2),
    }
}

/// `PUT /pages/{id}`: `id`, `status`, `title`, `body`, `version.number` (= current + 1) required.
pub async fn update(ctx: &Ctx, id: &str, _q: &Pairs, req: Request) -> Response {
    let id = match content_id(id, Api::V2) {
        Ok(i) => i,
        Err(r) => return r,
    };
    if ctx.sh.st().visible(id).is_none() {
        super::http::drain(req.into_body()).await;
        return not_found(Api::V2);
    }
    let m = match read_json(req, Api::V2).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    for k in ["id", "status", "title", "body", "version"] {
        if m.get(k).is_none_or(Value::is_null) {
            return bad_request(Api::V2, format!("{k} is required"));
        }
    }
    if m.get("id").and_then(id_value) != Some(id) {
        return bad_request(Api::V2, "id in the body does not match the id in the path");
    }
    let status = m.get("status").and_then(Value::as_str).unwrap_or("");
    if status != "current" && status != "draft" {
        return bad_request(Api::V2, format!("status must be current or draft, not {status}"));
    }
    let title = m.get("title").and_then(Value::as_str).map(str::trim).unwrap_or("").to_string();
    if title.is_empty() {
        return bad_request(Api::V2, "Title is required");
    }
    let body = match storage_value(m.get("body")) {
        Ok(b) => b.unwrap_or_default(),
        Err(r) => return r,
    };
    let ver = m.get("version").cloned().unwrap_or(Value::Null);
    let Some(number) = ver.get("number").and_then(Value::as_u64) else {
        return bad_request(Api::V2, "version.number is required and must be an integer");
    };
    let message = ver.get("message").and_then(Value::as_str).unwrap_or("").to_string();
    let minor = ver.get("minorEdit").and_then(Value::as_bool).unwrap_or(false);
    let mut st = ctx.sh.st();
    let Some(p) = st.visible(id) else { return not_found(Api::V2) };
    let (space_id, cur, cur_status) = (p.space_id, p.version.number, p.status.clone());
    if let Some(s) = m.get("spaceId").and_then(id_value)
        && s != space_id
    {
        return bad_request(Api::V2, "Moving a page to another space is not supported by this emulator");
    }
    // Decision (UNVERIFIED): a wrong version.number is 409 CONFLICT (v1 documents 409 for it; the v2
    // spec is silent). A draft is published or saved with version 1, as the spec says.
    let expected = if cur_status == "draft" || status == "draft" { 1 } else { u64::from(cur) + 1 };
    if number != expected {
        return v2_error(409, "CONFLICT", format!("Version must be incremented on update. Current version is: {cur}"));
    }
    if status == "current" && st.title_taken(space_id, &title, Some(id)) {
        return bad_request(Api::V2, format!("A page with this title already exists: {title}"));
    }
    let parent = match m.get("parentId") {
        None | Some(Value::Null) => None,
        Some(v) => match id_value(v) {
            Some(pid)
                if pid != id && st.visible(pid).is_some_and(|x| x.space_id == space_id) && !descends(&st, pid, id) =>
            {
                Some(pid)
            }
            _ => return bad_request(Api::V2, "parentId must be another page of the same space, not a descendant"),
        },
    };
    let account = ctx.account.clone();
    let Some(p) = st.visible_mut(id) else { return not_found(Api::V2) };
    p.title = title;
    p.body = body;
    p.status = status.to_string();
    if parent.is_some() {
        p.parent_id = parent;
    }
    p.version = version(number as u32, &account, chrono::Utc::now(), &message, minor);
    match st.pages.get(&id) {
        Some(p) => json_reply(200, page_json(ctx, &st, p, true, true)),
        None => not_found(Api::V2),
    }
}

/// Whether `page` lies under `ancestor`.
fn descends(st: &State, page: u64, ancestor: u64) -> bool {
    let mut cur = st.pages.get(&page).and_then(|p| p.parent_id);
    let mut hops = 0;
    while let Some(c) = cur {
        if c == ancestor || hops > 10_000 {
            return true;
        }
        hops += 1;
        cur = st.pages.get(&c).and_then(|p| p.parent_id);
    }
    false
}
