//! Assets: multipart upload (`asset[upload]`, `asset[title]`, `asset[description]`, `asset[tags]`
//! comma-joined, `asset[parent_uid]`), replace with PUT, read, query, publish.
//!
//! Decision (UNVERIFIED code): an asset over the size limit answers 422 with error_code 141 and a
//! field error on `asset.upload`; a JSON body or a form without `asset[upload]` answers 422.

use super::Shared;
use super::entries::{paging, targets};
use super::http::{Reply, invalid, not_found};
use super::state::{Asset, Published, now};
use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// The parsed form.
#[derive(Default)]
struct Form {
    upload: Option<(String, String, Vec<u8>)>,
    title: Option<String>,
    description: Option<String>,
    tags: Option<Vec<String>>,
    parent_uid: Option<String>,
}

async fn read_form(s: &Shared, mut mp: Multipart) -> Result<Form, axum::response::Response> {
    let mut f = Form::default();
    let bad = |_| invalid("Asset upload failed: the form could not be read.", "asset", "is not valid multipart.");
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "asset[upload]" => {
                let filename = field.file_name().unwrap_or("upload").to_string();
                let ctype = field.content_type().unwrap_or("application/octet-stream").to_string();
                let data = field.bytes().await.map_err(bad)?.to_vec();
                if data.len() as u64 > s.seed.max_asset_bytes {
                    return Err(invalid(
                        "Asset upload failed: the file is too large.",
                        "asset.upload",
                        "exceeds the maximum file size.",
                    ));
                }
                let filename = sanitize(&filename);
                f.upload = Some((filename, ctype, data));
            }
            "asset[title]" => f.title = Some(field.text().await.map_err(bad)?),
            "asset[description]" => f.description = Some(field.text().await.map_err(bad)?),
            "asset[tags]" => {
                let t = field.text().await.map_err(bad)?;
                f.tags = Some(t.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect());
            }
            "asset[parent_uid]" => f.parent_uid = Some(field.text().await.map_err(bad)?),
            other => return Err(invalid("Asset upload failed.", other, "is not a known form field.")),
        }
    }
    Ok(f)
}

/// Contentstack replaces `# % ^ + \ / ? * : | " ' < > space { } = ,` in file names with `_`.
fn sanitize(name: &str) -> String {
    name.chars().map(|c| if "#%^+\\/?*:|\"'<> {}=,".contains(c) { '_' } else { c }).collect()
}

fn check_folder(s: &Shared, parent: &Option<String>) -> Result<(), axum::response::Response> {
    match parent {
        Some(p) if !s.seed.folders.contains(p) => {
            Err(invalid("Asset upload failed.", "parent_uid", "is not a folder."))
        }
        _ => Ok(()),
    }
}

/// `POST /v3/assets` (multipart only).
pub async fn upload(
    State(s): State<Arc<Shared>>,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Reply {
    let mp =
        mp.map_err(|_| invalid("Asset upload failed: send multipart/form-data.", "asset[upload]", "is required."))?;
    let f = read_form(&s, mp).await?;
    let Some((filename, ctype, data)) = f.upload else {
        return Err(invalid("Asset upload failed.", "asset[upload]", "is required."));
    };
    check_folder(&s, &f.parent_uid)?;
    let mut st = s.st();
    let uid = st.uid();
    let a = Asset {
        uid: uid.clone(),
        version: 1,
        title: f.title.unwrap_or_else(|| filename.clone()),
        filename,
        description: f.description.unwrap_or_default(),
        tags: f.tags.unwrap_or_default(),
        parent_uid: f.parent_uid,
        content_type: ctype,
        data,
        created_at: now(),
    };
    let json = st.asset_json(&a);
    st.assets.insert(uid, a);
    Ok((StatusCode::CREATED, Json(json!({"notice": "Asset created successfully.", "asset": json}))).into_response())
}

/// `PUT /v3/assets/{uid}`: replaces the file and/or the given properties, version + 1.
pub async fn replace(
    State(s): State<Arc<Shared>>,
    Path(uid): Path<String>,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Reply {
    let mp = mp.map_err(|_| invalid("Asset update failed: send multipart/form-data.", "asset", "is required."))?;
    let f = read_form(&s, mp).await?;
    check_folder(&s, &f.parent_uid)?;
    let mut st = s.st();
    let a = st.assets.get_mut(&uid).ok_or_else(|| not_found("asset"))?;
    if let Some((filename, ctype, data)) = f.upload {
        a.filename = filename;
        a.content_type = ctype;
        a.data = data;
    }
    if let Some(t) = f.title {
        a.title = t;
    }
    if let Some(d) = f.description {
        a.description = d;
    }
    if let Some(t) = f.tags {
        a.tags = t;
    }
    if f.parent_uid.is_some() {
        a.parent_uid = f.parent_uid;
    }
    a.version += 1;
    let a = a.clone();
    Ok(Json(json!({"notice": "Asset updated successfully.", "asset": st.asset_json(&a)})).into_response())
}

/// `GET /v3/assets/{uid}`.
pub async fn get(State(s): State<Arc<Shared>>, Path(uid): Path<String>) -> Reply {
    let st = s.st();
    let a = st.assets.get(&uid).ok_or_else(|| not_found("asset"))?;
    Ok(Json(json!({"asset": st.asset_json(a)})).into_response())
}

/// `GET /cdn/v3/assets/{uid}/{filename}`: the file behind an asset's `url`.
pub async fn download(State(s): State<Arc<Shared>>, Path((uid, filename)): Path<(String, String)>) -> Reply {
    let st = s.st();
    let a = st.assets.get(&uid).filter(|a| a.filename == filename).ok_or_else(|| not_found("asset"))?;
    Ok(([(axum::http::header::CONTENT_TYPE, a.content_type.clone())], a.data.clone()).into_response())
}

/// `GET /v3/assets?query=..&skip=..&limit=..&include_count=true`.
pub async fn list(State(s): State<Arc<Shared>>, p: Query<HashMap<String, String>>) -> Reply {
    let (query, skip, limit, count) = paging(&p)?;
    let st = s.st();
    let mut hits = Vec::new();
    for a in st.assets.values() {
        let json = st.asset_json(a);
        if super::state::matches(&json, &query).map_err(|m| invalid(&m, "query", "is not valid."))? {
            hits.push(json);
        }
    }
    let total = hits.len();
    let mut reply = json!({"assets": hits.into_iter().skip(skip).take(limit).collect::<Vec<Value>>()});
    if count {
        reply["count"] = json!(total);
    }
    Ok(Json(reply).into_response())
}

/// `POST /v3/assets/{uid}/publish`.
pub async fn publish(State(s): State<Arc<Shared>>, Path(uid): Path<String>, body: Json<Value>) -> Reply {
    let (envs, locales, _) = targets(&s, "asset", &body)?;
    let mut st = s.st();
    let a = st.assets.get(&uid).cloned().ok_or_else(|| not_found("asset"))?;
    let json = st.asset_json(&a);
    for env in &envs {
        for loc in &locales {
            let p = Published { version: a.version, time: now(), body: json.clone() };
            st.published.insert((uid.clone(), env.clone(), loc.clone()), p);
        }
    }
    Ok(Json(json!({"notice": "Asset sent for publishing.", "job_id": st.uid()})).into_response())
}
