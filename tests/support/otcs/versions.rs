//! Document versions (add, list) and content download (latest or a given version, streamed).

use super::Shared;
use super::http::{FileLimits, dropped, error, json_reply, not_accessible, parse_bool, read_fields};
use super::nodes::{add_version, source, take_content, version_json};
use super::router::node_id;
use super::state::DOCUMENT;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::{Value, json};

/// `GET /v2/nodes/{id}/versions`: `results[].data.versions{..}` (decision: v2 list shape).
pub fn list(sh: &Shared, id: &str) -> Response {
    let id = match node_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let st = sh.st();
    let Some(n) = st.nodes.get(&id).filter(|n| n.type_ == DOCUMENT) else { return not_accessible(400) };
    let results: Vec<Value> = n.versions.iter().map(|v| json!({"data": {"versions": version_json(id, v)}})).collect();
    json_reply(200, json!({"links": {}, "results": results}))
}

/// `POST /v{1,2}/nodes/{id}/versions`: plain fields `file` | `upload_key`, `description`, `add_major_version`.
/// Decision: v2 replies `{"results":{"data":{"properties":{..node..,"version_number":N}}},"version_number":N}`;
/// v1 replies `{"id":..,"version_number":N}`.
pub async fn add(sh: &Shared, v1: bool, id: &str, req: Request) -> Response {
    let lim = FileLimits { dir: &sh.dir, file_fields: &["file"], max_size: sh.multipart.max_size, seq: &sh.seq };
    let mut f = match read_fields(req, lim).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let id = match node_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let src = match source(&mut f, None, "Missing required parameter 'File'") {
        Ok(s) => s,
        Err(r) => return r,
    };
    if f.text.get("add_major_version").is_some_and(|v| parse_bool(v).is_none()) {
        return error(400, "Invalid value for parameter 'add_major_version'");
    }
    let description = f.text.get("description").unwrap_or("").to_string();
    let mut st = sh.st();
    let Some(mut n) = st.nodes.get(&id).filter(|n| n.type_ == DOCUMENT).cloned() else { return not_accessible(400) };
    let name = n.name.clone();
    let c = match take_content(&mut st, src, &name) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let number = match add_version(sh, &mut n, c, &description) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(x) = f.text.get("external_modify_date") {
        n.external_modify_date = Some(x.to_string());
    }
    let mut props = st.properties(&n);
    st.nodes.insert(id, n);
    drop(st);
    let reply = if v1 {
        json_reply(200, json!({"id": id, "version_number": number}))
    } else {
        props.insert("version_number".into(), json!(number));
        json_reply(200, json!({"links": {}, "results": {"data": {"properties": props}}, "version_number": number}))
    };
    if sh.faults.take_after_version() { dropped(reply) } else { reply }
}

/// `GET /v{1,2}/nodes/{id}/content` and `/versions/{n}/content`: the bytes, streamed from disk.
pub fn content(sh: &Shared, v1: bool, id: &str, version: Option<&str>) -> Response {
    let missing = |id: &str| if v1 { error(500, format!("Could not locate node: {id}")) } else { not_accessible(500) };
    let Ok(nid) = id.parse::<i64>() else { return missing(id) };
    let st = sh.st();
    let Some(n) = st.nodes.get(&nid).filter(|n| n.type_ == DOCUMENT) else { return missing(id) };
    let v = match version {
        None => n.versions.last(),
        Some(s) => s.parse::<u32>().ok().and_then(|num| n.versions.iter().find(|v| v.number == num)),
    };
    let Some(v) = v.cloned() else { return missing(id) };
    drop(st);
    let file = match std::fs::File::open(&v.path) {
        Ok(f) => tokio::fs::File::from_std(f),
        Err(_) => return missing(id),
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 << 10));
    let mut r = Response::new(body);
    let h = r.headers_mut();
    if let Ok(m) = HeaderValue::from_str(&v.mime) {
        h.insert(header::CONTENT_TYPE, m);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(v.size));
    let disp = format!("attachment; filename=\"{}\"", v.file_name.replace(['"', '\\', '\r', '\n'], "_"));
    if let Ok(d) = HeaderValue::from_str(&disp) {
        h.insert(header::CONTENT_DISPOSITION, d);
    }
    r
}
