//! `/v2/nodes`: get, children (paged), create folder/document, delete; document content intake.

use super::categories::{CategoryValues, invalid_spec};
use super::http::{Fields, FileLimits, Pairs, TempFile, dropped, error, guess_mime, json_reply, not_accessible};
use super::http::{drain, read_fields};
use super::router::node_id;
use super::state::{DOCUMENT, FOLDER, Node, State, Version, is_container, now_string, type_name};
use super::{Shared, multipart_upload};
use axum::extract::Request;
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::cmp::Ordering;

/// Decision (UNVERIFIED): default page size of children listings is 25.
pub const DEFAULT_LIMIT: u64 = 25;
/// Decision: Content Server's name limit (248 characters) is enforced with a 400.
pub const MAX_NAME: usize = 248;

/// What `fields=` asked for (no `fields` = all properties only).
pub struct FieldSel {
    /// None = no properties; Some(None) = all; Some(Some(names)) = those.
    props: Option<Option<Vec<String>>>,
    categories: bool,
    versions: Option<bool>,
}

impl FieldSel {
    /// Parses `fields` values: `properties`, `properties{id,name}`, `categories`, `versions`,
    /// `versions.element(0)` (the latest version only, as an object).
    pub fn parse(q: &Pairs) -> FieldSel {
        let vals = q.all("fields");
        if vals.is_empty() {
            return FieldSel { props: Some(None), categories: false, versions: None };
        }
        let mut s = FieldSel { props: None, categories: false, versions: None };
        for v in vals {
            let (head, list) = match v.split_once('{') {
                Some((h, rest)) => {
                    let inner = rest.split('}').next().unwrap_or("");
                    (h, Some(inner.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()))
                }
                None => (v, None),
            };
            match head {
                "properties" => s.props = Some(list),
                "categories" => s.categories = true,
                _ if head.starts_with("versions") => s.versions = Some(v.contains("element(0)")),
                _ => {}
            }
        }
        s
    }
}

/// The `data` object of a node for the given field selection.
pub fn node_data(st: &State, n: &Node, sel: &FieldSel) -> Value {
    let mut data = Map::new();
    if let Some(list) = &sel.props {
        let mut p = st.properties(n);
        if let Some(names) = list {
            p.retain(|k, _| names.iter().any(|x| x == k));
        }
        data.insert("properties".into(), Value::Object(p));
    }
    if sel.categories {
        // Decision: a flat object `{"9830_6":"Approved",..}` over all applied categories.
        data.insert("categories".into(), json!(n.categories));
    }
    if let Some(latest_only) = sel.versions {
        let vs: Vec<Value> = n.versions.iter().map(|v| version_json(n.id, v)).collect();
        let v = if latest_only { vs.last().cloned().unwrap_or(Value::Null) } else { json!(vs) };
        data.insert("versions".into(), v);
    }
    Value::Object(data)
}

/// One version as `GET /v2/nodes/{id}/versions` lists it.
pub fn version_json(id: i64, v: &Version) -> Value {
    json!({"id": id, "version_id": id * 1000 + v.number as i64, "version_number": v.number,
        "version_number_major": v.number, "version_number_minor": 0, "file_name": v.file_name,
        "file_size": v.size, "mime_type": v.mime, "description": v.description, "create_date": v.create_date,
        "owner_id": 1000})
}

/// `GET /v2/nodes/{id}`.
pub fn get(sh: &Shared, id: &str, q: &Pairs) -> Response {
    let id = match node_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let st = sh.st();
    match st.nodes.get(&id) {
        Some(n) => json_reply(200, json!({"links": {}, "results": {"data": node_data(&st, n, &FieldSel::parse(q))}})),
        None => error(400, format!("Could not get a node for {id}")),
    }
}

/// `DELETE /v2/nodes/{id}` (with the subtree; the Enterprise volume cannot be deleted).
pub fn delete(sh: &Shared, id: &str) -> Response {
    let id = match node_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let files = {
        let mut st = sh.st();
        if !st.nodes.contains_key(&id) || id == super::ENTERPRISE_ID {
            return not_accessible(400);
        }
        st.remove_tree(id)
    };
    for f in files {
        let _ = std::fs::remove_file(f);
    }
    json_reply(200, json!({"links": {}, "results": {}}))
}

/// A sort order for listings: `name`, `asc_name`, `desc_name`, `asc_|desc_` + id, modify_date,
/// create_date, size, type. Decision (UNVERIFIED): anything else is a 400.
pub fn sorter(sort: Option<&str>) -> Result<(String, bool), Response> {
    let s = sort.unwrap_or("name");
    let (key, desc) = match s.split_once('_') {
        Some(("asc", k)) => (k, false),
        Some(("desc", k)) => (k, true),
        _ => (s, false),
    };
    match key {
        "name" | "id" | "modify_date" | "create_date" | "size" | "type" => Ok((key.to_string(), desc)),
        _ => Err(error(400, format!("Invalid sort parameter '{s}'"))),
    }
}

/// Compares two nodes by a sort key (names ignore case; ties by id).
pub fn compare(st: &State, a: &Node, b: &Node, key: &str) -> Ordering {
    let size = |n: &Node| n.versions.last().map(|v| v.size).unwrap_or(0);
    let o = match key {
        "id" => a.id.cmp(&b.id),
        "modify_date" => a.modify_date.cmp(&b.modify_date),
        "create_date" => a.create_date.cmp(&b.create_date),
        "size" => size(a).cmp(&size(b)),
        "type" => a.type_.cmp(&b.type_),
        _ => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
    };
    let _ = st;
    o.then(a.id.cmp(&b.id))
}

/// Reads `page` (1-based) and `limit`; a non-positive or non-numeric value is a 400.
pub fn paging_params(q: &Pairs, default_limit: u64) -> Result<(u64, u64), Response> {
    let num = |k: &str, d: u64| match q.get(k) {
        None | Some("") => Ok(d),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| error(400, format!("Invalid value for parameter '{k}'"))),
    };
    Ok((num("page", 1)?, num("limit", default_limit)?))
}

/// The paging object shared by node listings and workspace search.
pub fn paging(total: u64, page: u64, limit: u64) -> Map<String, Value> {
    let page_total = total.div_ceil(limit);
    let (min, max) = if total == 0 || (page - 1) * limit >= total {
        (0, 0)
    } else {
        ((page - 1) * limit + 1, (page * limit).min(total))
    };
    let v = json!({"limit": limit, "page": page, "page_total": page_total, "range_min": min, "range_max": max,
        "total_count": total});
    v.as_object().cloned().unwrap_or_default()
}

/// `GET /v2/nodes/{id}/nodes` with `where_type`, `where_name`, `sort`, `page`, `limit`, `fields`.
pub fn children(sh: &Shared, id: &str, q: &Pairs) -> Response {
    let id = match node_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let types: Result<Vec<i64>, _> = q.all("where_type").iter().map(|t| t.parse::<i64>()).collect();
    let Ok(types) = types else { return error(400, "Invalid value for parameter 'where_type'") };
    let (sort_key, desc) = match sorter(q.get("sort")) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (page, limit) = match paging_params(q, DEFAULT_LIMIT) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let sel = FieldSel::parse(q);
    let st = sh.st();
    if !st.nodes.contains_key(&id) {
        return error(500, format!("Could not get a node for {id}"));
    }
    let name = q.get("where_name").filter(|n| !n.is_empty()).map(str::to_lowercase);
    let mut kids: Vec<&Node> = st
        .children_of(id)
        .into_iter()
        .filter(|n| {
            types.is_empty()
                || types.iter().any(|t| match *t {
                    -1 => is_container(n.type_),
                    -2 => true,
                    -3 => !is_container(n.type_),
                    t => n.type_ == t,
                })
        })
        .filter(|n| name.as_ref().is_none_or(|x| n.name.to_lowercase() == *x))
        .collect();
    kids.sort_by(|a, b| {
        let o = compare(&st, a, b, &sort_key);
        if desc { o.reverse() } else { o }
    });
    let total = kids.len() as u64;
    let results: Vec<Value> = kids
        .iter()
        .skip(((page - 1) * limit) as usize)
        .take(limit as usize)
        .map(|n| json!({"data": node_data(&st, n, &sel)}))
        .collect();
    json_reply(
        200,
        json!({"collection": {"paging": paging(total, page, limit), "sorting": {"sort": [format!("{}_{}", if desc {"desc"} else {"asc"}, sort_key)]}},
            "links": {"data": {}}, "results": results}),
    )
}

/// Bytes about to become a version: a `file` part or a completed Large File Upload.
pub struct Content {
    pub tmp: TempFile,
    pub size: u64,
    pub sha256: String,
    pub file_name: String,
    pub mime: String,
    /// Came from a Large File Upload session (`upload_key`).
    pub via_upload_key: bool,
}

/// Where the content will come from (checked before other validation, taken last).
pub enum Source {
    File(super::http::FilePart),
    UploadKey(String),
}

/// Finds `file` or `upload_key` (a plain field, or `body_key`: the key in the v2 `body` JSON) in
/// the fields; neither → 400 `missing` text.
/// Decision (UNVERIFIED): the v2 create takes `upload_key` in `body` (OAS lists it with the
/// body's fields) and, as the emulator always did, also as a plain field beside `body`.
pub fn source(f: &mut Fields, body_key: Option<&Value>, missing: &str) -> Result<Source, Response> {
    let from_body = match body_key {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(error(400, "Invalid value for parameter 'upload_key'")),
    };
    let key = from_body.or_else(|| f.text.get("upload_key").map(str::to_string)).filter(|k| !k.is_empty());
    match (f.take_file("file"), key) {
        (Some(_), Some(_)) => Err(error(400, "Specify either 'file' or 'upload_key', not both.")),
        (Some(p), None) => Ok(Source::File(p)),
        (None, Some(k)) => Ok(Source::UploadKey(k)),
        (None, None) => Err(error(400, missing)),
    }
}

/// Turns a source into content (an upload key is consumed here).
pub fn take_content(st: &mut State, src: Source, name_hint: &str) -> Result<Content, Response> {
    match src {
        Source::File(p) => {
            let file_name = if p.file_name.is_empty() { name_hint.to_string() } else { p.file_name.clone() };
            let mime = guess_mime(&file_name, p.mime.as_deref());
            Ok(Content { tmp: p.tmp, size: p.size, sha256: p.sha256, file_name, mime, via_upload_key: false })
        }
        Source::UploadKey(k) => multipart_upload::take_completed(st, &k, name_hint),
    }
}

/// Stores content as the node's next version.
pub fn add_version(sh: &Shared, n: &mut Node, c: Content, description: &str) -> Result<u32, Response> {
    let number = n.versions.last().map(|v| v.number).unwrap_or(0) + 1;
    let path = sh.dir.join(format!("content-{}-{number}", n.id));
    c.tmp.persist(&path).map_err(|e| error(500, format!("Could not store the version: {e}")))?;
    let now = now_string();
    n.versions.push(Version {
        number,
        size: c.size,
        sha256: c.sha256,
        mime: c.mime,
        file_name: c.file_name,
        description: description.to_string(),
        create_date: now.clone(),
        path,
        via_upload_key: c.via_upload_key,
    });
    n.modify_date = now;
    Ok(number)
}

/// Parses the v2 `body` field; a JSON request body or a missing field is the same 400.
/// Decision (UNVERIFIED): `application/json` → 400 "Missing required parameter 'body'".
pub fn body_json(f: &Fields) -> Result<Map<String, Value>, Response> {
    let missing = || error(400, "Missing required parameter 'body'");
    if f.kind == super::http::BodyKind::Json {
        return Err(missing());
    }
    let raw = f.text.get("body").ok_or_else(missing)?;
    // Decision: a `body` that is not a JSON object → 400 "Invalid JSON in parameter 'body'".
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(error(400, "Invalid JSON in parameter 'body'")),
    }
}

/// An integer from a JSON number or numeric string.
pub fn int_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn str_of(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

/// Checks a new child name under a parent: container parent, name length, no same-name sibling.
pub fn check_new_child(st: &State, parent_id: i64, name: &str) -> Result<(), Response> {
    if !st.nodes.get(&parent_id).is_some_and(|p| is_container(p.type_)) {
        return Err(not_accessible(400));
    }
    if name.chars().count() > MAX_NAME {
        return Err(error(400, format!("The name is too long. It can have at most {MAX_NAME} characters.")));
    }
    if st.child_named(parent_id, name).is_some() {
        return Err(error(500, format!("An item with the name '{name}' already exists.")));
    }
    Ok(())
}

/// `POST /v2/nodes`: folder (0) or document (144) from the form field `body` (+ part `file` or `upload_key`).
pub async fn create(sh: &Shared, req: Request) -> Response {
    let lim = FileLimits { dir: &sh.dir, file_fields: &["file"], max_size: sh.multipart.max_size, seq: &sh.seq };
    let mut f = match read_fields(req, lim).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    match create_inner(sh, &mut f) {
        Ok((reply, true)) if sh.faults.take_after_create() => dropped(reply),
        Ok((reply, _)) => reply,
        Err(r) => r,
    }
}

fn create_inner(sh: &Shared, f: &mut Fields) -> Result<(Response, bool), Response> {
    let body = body_json(f)?;
    let missing = |p: &str| error(400, format!("Missing required parameter '{p}'"));
    let t = int_of(body.get("type")).ok_or_else(|| missing("type"))?;
    let parent_id = int_of(body.get("parent_id")).ok_or_else(|| missing("parent_id"))?;
    let name = str_of(body.get("name")).filter(|n| !n.trim().is_empty()).ok_or_else(|| missing("name"))?;
    let tn = type_name(t).ok_or_else(|| error(400, format!("Subtype {t} not registered")))?;
    // Decision: only folders and documents are created here (848 goes through /v2/businessworkspaces).
    if t != FOLDER && t != DOCUMENT {
        return Err(error(400, format!("Could not create a new {tn}")));
    }
    let src = if t == DOCUMENT {
        Some(source(f, body.get("upload_key"), "Missing required parameter 'file'")?)
    } else {
        None
    };
    let mut st = sh.st();
    check_new_child(&st, parent_id, &name)?;
    let cats = match body.get("roles").and_then(|r| r.get("categories")) {
        Some(c) => CategoryValues::from_roles(&st, c)?,
        None => CategoryValues::default(),
    };
    if !CategoryValues::check_required(&st, &cats.applied, &cats.values) {
        return Err(invalid_spec());
    }
    let classifications = match body.get("roles").and_then(|r| r.get("classifications")) {
        None | Some(Value::Null) => vec![],
        Some(c) => super::records::classifications_from_roles(&st, c)?,
    };
    let id = st.alloc_id();
    let mut n = Node::new(id, parent_id, &name, t);
    n.description = str_of(body.get("description")).unwrap_or_default();
    n.external_create_date = str_of(body.get("external_create_date"));
    n.external_modify_date = str_of(body.get("external_modify_date"));
    n.external_source = str_of(body.get("external_source"));
    n.categories = cats.values;
    n.applied = cats.applied;
    n.classifications = classifications;
    if let Some(src) = src {
        let c = take_content(&mut st, src, &name)?;
        add_version(sh, &mut n, c, "")?;
        n.modify_date = n.create_date.clone();
    }
    let props = st.properties(&n);
    st.insert(n);
    if let Some(p) = st.nodes.get(&parent_id).map(|p| p.id) {
        let now = now_string();
        if let Some(pn) = st.nodes.get_mut(&p) {
            pn.modify_date = now;
        }
    }
    let mut props = props;
    props.insert("container_size".into(), json!(0));
    Ok((json_reply(200, json!({"links": {}, "results": {"data": {"properties": props}}})), t == DOCUMENT))
}

/// Drains a body and answers "not found" (for handlers refusing early).
pub async fn refuse(req: Request, r: Response) -> Response {
    drain(req.into_body()).await;
    r
}
