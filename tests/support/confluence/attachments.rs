//! Attachments: v2 list, v1 upload (`POST` create, `PUT` create-or-new-version, multipart `file` +
//! `minorEdit`, `X-Atlassian-Token` required), v1 download (302 to a signed media URL) and the
//! media endpoint serving the stored bytes.

use super::http::{Api, Form, Pairs, bad_request, drain, guess_mime, iso, json_reply, not_found, percent_encode};
use super::http::{read_multipart, redirect, v1_error};
use super::paging::v2_list;
use super::router::content_id;
use super::state::{AttVersion, Attachment, Page, uuid_from, version};
use super::{Ctx, Shared};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn download_link(p: &Page, a: &Attachment, v: &AttVersion) -> String {
    format!(
        "/download/attachments/{}/{}?version={}&modificationDate={}&cacheVersion=1&api=v2",
        p.id,
        percent_encode(&a.title),
        v.version.number,
        v.version.created_at.timestamp_millis()
    )
}

fn webui_link(p: &Page, a: &Attachment) -> String {
    format!(
        "/pages/viewpageattachments.action?pageId={}&preview=%2F{}%2F{}%2F{}",
        p.id,
        p.id,
        a.id,
        percent_encode(&a.title)
    )
}

fn v2_json(p: &Page, a: &Attachment) -> Option<Value> {
    let v = a.current()?;
    Some(json!({
        "id": format!("att{}", a.id), "status": "current", "title": a.title, "createdAt": iso(&a.created_at),
        "pageId": p.id.to_string(), "mediaType": v.media_type, "mediaTypeDescription": null, "comment": a.comment,
        "fileId": a.file_ids.last(), "fileSize": v.size, "webuiLink": webui_link(p, a), "downloadLink": download_link(p, a, v),
        "version": {"createdAt": iso(&v.version.created_at), "message": v.version.message, "number": v.version.number,
                    "minorEdit": v.version.minor_edit, "authorId": v.version.author_id},
        "_links": {"webui": webui_link(p, a), "download": download_link(p, a, v)},
    }))
}

fn v1_json(ctx: &Ctx, p: &Page, a: &Attachment) -> Option<Value> {
    let v = a.current()?;
    Some(json!({
        "id": format!("att{}", a.id), "type": "attachment", "status": "current", "title": a.title,
        "version": {"by": {"type": "known", "accountId": v.version.author_id}, "when": iso(&v.version.created_at),
                    "number": v.version.number, "minorEdit": v.version.minor_edit, "message": v.version.message},
        "container": {"id": p.id.to_string(), "type": "page", "status": p.status, "title": p.title},
        "metadata": {"mediaType": v.media_type, "comment": a.comment, "labels": {"results": [], "size": 0}},
        "extensions": {"mediaType": v.media_type, "fileSize": v.size, "comment": a.comment,
                       "fileId": a.file_ids.last(), "collectionName": format!("contentId-{}", p.id)},
        "_links": {"webui": webui_link(p, a), "download": download_link(p, a, v),
                   "self": format!("{}/rest/api/content/att{}", ctx.wiki_base, a.id)},
    }))
}

/// `GET /pages/{id}/attachments?filename=&mediaType=&status=&sort=&cursor=&limit=` (default 50, max 250).
pub fn list(ctx: &Ctx, id: &str, q: &Pairs) -> Response {
    let id = match content_id(id, Api::V2) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let sort = q.get("sort").unwrap_or("created-date");
    if !["created-date", "-created-date", "modified-date", "-modified-date"].contains(&sort) {
        return bad_request(Api::V2, format!("Provided value for 'sort' is not valid: {sort}"));
    }
    for s in q.list("status") {
        if !["current", "archived", "trashed"].contains(&s.as_str()) {
            return bad_request(Api::V2, format!("Provided value for 'status' is not valid: {s}"));
        }
    }
    let (filename, media) = (q.get("filename"), q.get("mediaType"));
    let st = ctx.sh.st();
    let Some(p) = st.visible(id) else { return not_found(Api::V2) };
    let mut atts: Vec<&Attachment> = p
        .attachments
        .iter()
        .filter(|a| filename.is_none_or(|f| a.title == f))
        .filter(|a| media.is_none_or(|m| a.current().is_some_and(|v| v.media_type == m)))
        .collect();
    if sort.ends_with("modified-date") {
        atts.sort_by_key(|a| (a.current().map(|v| v.version.created_at), a.id));
    } else {
        atts.sort_by_key(|a| (a.created_at, a.id));
    }
    if sort.starts_with('-') {
        atts.reverse();
    }
    let items = atts.into_iter().filter_map(|a| v2_json(p, a)).collect();
    drop(st);
    v2_list(ctx, &format!("/api/v2/pages/{id}/attachments"), q, items, 50, 250)
}

fn xsrf_ok(req: &Request) -> bool {
    req.headers()
        .get("x-atlassian-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("nocheck") || v.trim().eq_ignore_ascii_case("no-check"))
}

/// v1 `POST|PUT /content/{id}/child/attachment`: multipart `file` (one or more, required),
/// `minorEdit` (required, `true`/`false`), `comment` (optional, one per file in order).
/// POST with a file name the page already has → 400; PUT adds a new version instead.
/// Without `X-Atlassian-Token: nocheck` (or `no-check`) → 403 "XSRF check failed" (plain text).
/// Over `max_attachment_bytes` → 404, as the v1 spec documents.
pub async fn upload(ctx: &Ctx, id: &str, put: bool, req: Request) -> Response {
    if !xsrf_ok(&req) {
        drain(req.into_body()).await;
        let mut r = (StatusCode::FORBIDDEN, "XSRF check failed").into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain;charset=UTF-8"));
        return r;
    }
    let Ok(id) = id.parse::<u64>() else {
        drain(req.into_body()).await;
        return not_found(Api::V1);
    };
    if ctx.sh.st().visible(id).is_none() {
        drain(req.into_body()).await;
        return not_found(Api::V1);
    }
    let form: Form = match read_multipart(req, &ctx.sh.dir, &ctx.sh.seq).await {
        Ok(f) => f,
        Err(None) => return v1_error(415, "Unsupported Media Type: multipart/form-data is required"),
        Err(Some(r)) => return r,
    };
    if form.files.is_empty() {
        return v1_error(400, "At least one file must be provided in the 'file' part");
    }
    let minor = match form.text.get("minorEdit") {
        Some("true") => true,
        Some("false") => false,
        Some(v) => return v1_error(400, format!("minorEdit must be 'true' or 'false', not '{v}'")),
        None => return v1_error(400, "minorEdit is required"),
    };
    let comments: Vec<String> = form.text.0.iter().filter(|(k, _)| k == "comment").map(|(_, v)| v.clone()).collect();
    let mut names = std::collections::BTreeSet::new();
    for f in &form.files {
        if f.file_name.trim().is_empty() {
            return v1_error(400, "Every file part needs a filename");
        }
        if !names.insert(f.file_name.clone()) {
            return v1_error(400, format!("Cannot add two attachments with the same file name: {}", f.file_name));
        }
        if f.size > ctx.sh.max_attachment_bytes {
            return v1_error(404, format!("The attachment {} exceeds the maximum attachment size", f.file_name));
        }
    }
    let mut st = ctx.sh.st();
    let Some(p) = st.visible(id) else { return not_found(Api::V1) };
    if !put && let Some(f) = form.files.iter().find(|f| p.attachments.iter().any(|a| a.title == f.file_name)) {
        return v1_error(
            400,
            format!("Cannot add a new attachment with same file name as an existing attachment: {}", f.file_name),
        );
    }
    let now = chrono::Utc::now();
    let mut touched = vec![];
    for (i, f) in form.files.into_iter().enumerate() {
        let comment = comments.get(i).cloned();
        let existing = st.visible(id).and_then(|p| p.attachments.iter().position(|a| a.title == f.file_name));
        let aid = match existing {
            Some(ix) => st.visible(id).map(|p| p.attachments[ix].id).unwrap_or(0),
            None => st.next(),
        };
        let n =
            existing.and_then(|ix| st.visible(id).and_then(|p| p.attachments[ix].current().map(|v| v.version.number)));
        let number = n.map_or(1, |n| n + 1);
        let path = ctx.sh.dir.join(format!("att{aid}-v{number}"));
        let media_type = guess_mime(&f.file_name, f.mime.as_deref());
        let (size, sha256, file_name) = (f.size, f.sha256.clone(), f.file_name.clone());
        if let Err(e) = f.tmp.persist(&path) {
            return v1_error(500, format!("Could not store the attachment: {e}"));
        }
        let v = AttVersion {
            version: version(number, &ctx.account, now, comment.as_deref().unwrap_or(""), minor),
            size,
            sha256,
            media_type,
            path,
        };
        let file_id = uuid_from(aid, u64::from(number));
        let Some(p) = st.visible_mut(id) else { return not_found(Api::V1) };
        match existing {
            Some(ix) => {
                let a = &mut p.attachments[ix];
                a.versions.push(v);
                a.file_ids.push(file_id);
                if let Some(c) = comment {
                    a.comment = c;
                }
            }
            None => p.attachments.push(Attachment {
                id: aid,
                file_ids: vec![file_id],
                title: file_name,
                comment: comment.unwrap_or_default(),
                created_at: now,
                versions: vec![v],
            }),
        }
        touched.push(aid);
    }
    let Some(p) = st.visible(id) else { return not_found(Api::V1) };
    let results: Vec<Value> = touched
        .iter()
        .filter_map(|aid| p.attachments.iter().find(|a| a.id == *aid))
        .filter_map(|a| v1_json(ctx, p, a))
        .collect();
    let size = results.len();
    json_reply(200, json!({"results": results, "size": size, "_links": {"base": ctx.wiki_base, "context": "/wiki"}}))
}

fn media_token(sh: &Shared, file_id: &str, expires: i64) -> String {
    let mut h = Sha256::new();
    h.update(sh.secret.to_le_bytes());
    h.update(file_id.as_bytes());
    h.update(expires.to_le_bytes());
    hex::encode(&h.finalize()[..16])
}

/// The 302 to the signed media URL of an attachment version (`version=` or the current one).
fn redirect_to_media(ctx: &Ctx, a: &Attachment, q: &Pairs) -> Response {
    let ix = match q.get("version") {
        None => a.versions.len().saturating_sub(1),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 && n <= a.versions.len() => n - 1,
            _ => return not_found(Api::V1),
        },
    };
    let Some(file_id) = a.file_ids.get(ix) else { return not_found(Api::V1) };
    let expires = chrono::Utc::now().timestamp() + 600;
    let token = media_token(&ctx.sh, file_id, expires);
    redirect(&format!(
        "{}/media/file/{file_id}/binary?token={token}&expires={expires}&client=wharf-emulator&name={}&dl=true",
        ctx.sh.base_url,
        percent_encode(&a.title)
    ))
}

/// v1 `GET /content/{id}/child/attachment/{attId}/download[?version=]` → 302 to the bytes.
pub fn download(ctx: &Ctx, id: &str, att: &str, q: &Pairs) -> Response {
    let (Ok(id), Ok(aid)) = (id.parse::<u64>(), att.trim_start_matches("att").parse::<u64>()) else {
        return not_found(Api::V1);
    };
    let st = ctx.sh.st();
    let Some(p) = st.visible(id) else { return not_found(Api::V1) };
    match p.attachments.iter().find(|a| a.id == aid) {
        Some(a) => redirect_to_media(ctx, a, q),
        None => not_found(Api::V1),
    }
}

/// `GET /wiki/download/attachments/{pageId}/{file name}[?version=]` (the v2 `downloadLink`) → 302.
pub fn download_by_name(ctx: &Ctx, id: &str, name: &str, q: &Pairs) -> Response {
    let Ok(id) = id.parse::<u64>() else { return not_found(Api::V1) };
    let st = ctx.sh.st();
    let Some(p) = st.visible(id) else { return not_found(Api::V1) };
    match p.attachments.iter().find(|a| a.title == name) {
        Some(a) => redirect_to_media(ctx, a, q),
        None => not_found(Api::V1),
    }
}

/// `GET /media/file/{fileId}/binary?token=&expires=`: the bytes (no auth; the token is the proof).
/// A bad or expired token is 401, an unknown file 404.
pub async fn media(sh: &Shared, segs: &[&str], req: Request) -> Response {
    let q = Pairs::parse(req.uri().query().unwrap_or(""));
    drain(req.into_body()).await;
    let ["file", file_id, "binary"] = segs else { return not_found(Api::V1) };
    let expires = q.get("expires").and_then(|e| e.parse::<i64>().ok()).unwrap_or(0);
    if q.get("token") != Some(media_token(sh, file_id, expires).as_str()) || expires < chrono::Utc::now().timestamp() {
        return json_reply(401, json!({"error": "token is invalid or expired"}));
    }
    let found = {
        let st = sh.st();
        st.pages.values().flat_map(|p| &p.attachments).find_map(|a| {
            let ix = a.file_ids.iter().position(|f| f == file_id)?;
            let v = a.versions.get(ix)?;
            Some((v.path.clone(), v.media_type.clone(), a.title.clone()))
        })
    };
    let Some((path, mime, title)) = found else { return not_found(Api::V1) };
    let Ok(bytes) = tokio::fs::read(&path).await else { return not_found(Api::V1) };
    let mut r = Response::new(Body::from(bytes));
    super::http::set_header(&mut r, "content-type", &mime);
    super::http::set_header(
        &mut r,
        "content-disposition",
        &format!("attachment; filename=\"{}\"", title.replace('"', "")),
    );
    r
}
