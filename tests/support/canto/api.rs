//! The REST calls: search, details, direct URI + download, batch edit.
//!
//! Decision (UNVERIFIED): details and search results carry the approval status as
//! `approvalStatus` with Canto's UI spelling (`Approved`, `Pending`, `Restricted`); the search
//! filter `approval=` takes the lowercase values (`approved|pending|restricted|expired`), and
//! `batch/edit` sets it with `propertyId: "approvalStatus"` (any casing of the value). Custom
//! fields appear in `additional` by display name and are edited by field id with
//! `customField: true`.

use super::Shared;
use super::http::{Query, json_error, text};
use super::state::{Asset, SCHEMES, is_stamp};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The JSON of one asset (details, and each search result).
pub fn asset_json(sh: &Shared, a: &Asset) -> Value {
    let additional: serde_json::Map<String, Value> = a
        .custom
        .iter()
        .map(|(id, v)| (sh.seed.custom_fields.get(id).cloned().unwrap_or_else(|| id.clone()), json!(v)))
        .collect();
    let base = sh.base();
    json!({
        "id": a.id,
        "scheme": a.scheme,
        "name": a.name,
        "size": a.bytes.len().to_string(),
        "tag": a.tags,
        "keyword": a.keywords,
        "description": a.description,
        "approvalStatus": a.approval,
        "versionHistory": [{ "version": a.version }],
        "default": {
            "Date modified": a.modified,
            "Date uploaded": a.modified,
            "Copyright": "",
            "Content Type": "application/octet-stream",
        },
        "additional": additional,
        "url": {
            "directUrlOriginal": format!("{base}/direct/{}/{}", a.scheme, a.id),
            "directUrlPreview": format!("{base}/direct/{}/{}?preview", a.scheme, a.id),
            "preview": format!("{base}/api_binary/v1/{}/{}/preview", a.scheme, a.id),
        },
    })
}

fn matches_keyword(a: &Asset, kw: &str) -> bool {
    let kw = kw.to_lowercase();
    a.name.to_lowercase().contains(&kw)
        || a.description.to_lowercase().contains(&kw)
        || a.keywords.iter().chain(&a.tags).any(|k| k.to_lowercase() == kw)
}

/// `GET /api/v1/search`.
pub fn search(sh: &Shared, q: &Query) -> Response {
    let schemes: Vec<&str> = match q.get("scheme") {
        Some(s) if !s.is_empty() => s.split('|').collect(),
        _ => SCHEMES.to_vec(),
    };
    if let Some(bad) = schemes.iter().find(|s| !SCHEMES.contains(s)) {
        return json_error(400, &format!("Invalid scheme: {bad}"));
    }
    let approval = q.get("approval").map(str::to_lowercase);
    if let Some(a) = &approval
        && !["approved", "pending", "restricted", "expired"].contains(&a.as_str())
    {
        return json_error(400, &format!("Invalid approval: {a}"));
    }
    let range = match q.get("lastModified") {
        None => None,
        Some(r) => match r.split_once("..") {
            Some((s, e)) if is_stamp(s) && is_stamp(e) => Some((s.to_string(), e.to_string())),
            _ => return json_error(400, "Invalid lastModified: expected yyyyMMddHHmmssSSS..yyyyMMddHHmmssSSS"),
        },
    };
    let start: usize = match q.get("start").unwrap_or("0").parse() {
        Ok(s) => s,
        Err(_) => return json_error(400, "Invalid start"),
    };
    let limit: usize = match q.get("limit").unwrap_or("100").parse() {
        Ok(l) if (1..=1000).contains(&l) => l,
        _ => return json_error(400, "Invalid limit: 1..1000"),
    };
    let sort_by = q.get("sortBy").unwrap_or("time");
    if !["time", "name", "scheme", "owner", "size"].contains(&sort_by) {
        return json_error(400, "Invalid sortBy");
    }
    let descending = match q.get("sortDirection").unwrap_or("descending") {
        "ascending" => false,
        "descending" => true,
        _ => return json_error(400, "Invalid sortDirection"),
    };
    let st = sh.st();
    let mut found: Vec<&Asset> = st
        .assets
        .values()
        .filter(|a| schemes.contains(&a.scheme.as_str()))
        .filter(|a| approval.as_ref().is_none_or(|x| a.approval.to_lowercase() == *x))
        .filter(|a| q.get("keyword").is_none_or(|k| k.is_empty() || matches_keyword(a, k)))
        .filter(|a| range.as_ref().is_none_or(|(s, e)| a.modified >= *s && a.modified <= *e))
        .collect();
    found.sort_by(|x, y| {
        let o = match sort_by {
            "name" => x.name.cmp(&y.name),
            "scheme" => x.scheme.cmp(&y.scheme),
            "size" => x.bytes.len().cmp(&y.bytes.len()),
            _ => x.modified.cmp(&y.modified),
        };
        o.then_with(|| x.id.cmp(&y.id))
    });
    if descending {
        found.reverse();
    }
    let total = found.len();
    let results: Vec<Value> = found.into_iter().skip(start).take(limit).map(|a| asset_json(sh, a)).collect();
    axum::Json(json!({
        "facets": [],
        "results": results,
        "limit": limit,
        "start": start,
        "found": total,
        "sortBy": sort_by,
        "sortDirection": if descending { "descending" } else { "ascending" },
        "matchExpr": "",
    }))
    .into_response()
}

fn lookup<'a>(st: &'a super::state::State, scheme: &str, id: &str) -> Result<&'a Asset, Response> {
    if !SCHEMES.contains(&scheme) {
        return Err(json_error(400, &format!("Invalid scheme: {scheme}")));
    }
    match st.assets.get(id) {
        Some(a) if a.scheme == scheme => Ok(a),
        _ => Err(json_error(404, "Not found")),
    }
}

/// `GET /api/v1/{scheme}/{id}`.
pub fn details(sh: &Shared, scheme: &str, id: &str) -> Response {
    let st = sh.st();
    match lookup(&st, scheme, id) {
        Ok(a) => axum::Json(asset_json(sh, a)).into_response(),
        Err(r) => r,
    }
}

/// `GET /api_binary/v1/{scheme}/{id}/directuri`: the download URL as text.
pub fn directuri(sh: &Shared, scheme: &str, id: &str) -> Response {
    let st = sh.st();
    match lookup(&st, scheme, id) {
        Ok(a) => text(200, format!("{}/direct/{}/{}", sh.base(), a.scheme, a.id)),
        Err(r) => r,
    }
}

/// `GET /direct/{scheme}/{id}`: the original (a pre-signed storage URL: no bearer needed).
pub fn download(sh: &Shared, scheme: &str, id: &str) -> Response {
    let st = sh.st();
    match lookup(&st, scheme, id) {
        Ok(a) => ([("content-type", "application/octet-stream")], a.bytes.clone()).into_response(),
        Err(r) => r,
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn apply_list(to: &mut Vec<String>, action: &str, values: Vec<String>) {
    match action {
        "add" => {
            for v in values {
                if !to.contains(&v) {
                    to.push(v);
                }
            }
        }
        "remove" => to.retain(|t| !values.contains(t)),
        _ => *to = values,
    }
}

/// `PUT /api/v1/batch/edit`: `{"contents":[{id,scheme}],"properties":[{propertyId,
/// propertyValue,action,customField}]}` → `success` (text/plain). Checked whole before any change.
pub fn batch_edit(sh: &Shared, body: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return json_error(400, "Request body is not JSON") };
    let (Some(contents), Some(props)) = (v["contents"].as_array(), v["properties"].as_array()) else {
        return json_error(400, "contents and properties are required");
    };
    if contents.is_empty() || props.is_empty() {
        return json_error(400, "contents and properties must not be empty");
    }
    let mut st = sh.st();
    for c in contents {
        let (Some(id), Some(scheme)) = (c["id"].as_str(), c["scheme"].as_str()) else {
            return json_error(400, "each content needs id and scheme");
        };
        if let Err(r) = lookup(&st, scheme, id) {
            return r;
        }
    }
    for p in props {
        let Some(pid) = p["propertyId"].as_str() else { return json_error(400, "propertyId is required") };
        if p["propertyValue"].as_str().is_none() {
            return json_error(400, "propertyValue must be a string");
        }
        let custom = p["customField"].as_bool().unwrap_or(false);
        let known = if custom {
            sh.seed.custom_fields.contains_key(pid)
        } else {
            ["keyword", "tag", "description", "approvalStatus", "copyright", "name"].contains(&pid)
        };
        if !known {
            return json_error(400, &format!("Unknown property: {pid}"));
        }
        if pid == "approvalStatus" && !custom {
            let val = p["propertyValue"].as_str().unwrap_or_default().to_lowercase();
            if !["approved", "pending", "restricted"].contains(&val.as_str()) {
                return json_error(400, &format!("Invalid approval status: {val}"));
            }
        }
    }
    let modified = st.touch();
    for c in contents {
        let id = c["id"].as_str().unwrap_or_default();
        let Some(a) = st.assets.get_mut(id) else { continue };
        for p in props {
            let pid = p["propertyId"].as_str().unwrap_or_default();
            let val = p["propertyValue"].as_str().unwrap_or_default();
            let action = p["action"].as_str().unwrap_or("");
            if p["customField"].as_bool().unwrap_or(false) {
                a.custom.insert(pid.to_string(), val.to_string());
                continue;
            }
            match pid {
                "keyword" => apply_list(&mut a.keywords, action, list(val)),
                "tag" => apply_list(&mut a.tags, action, list(val)),
                "description" => a.description = val.to_string(),
                "name" => a.name = val.to_string(),
                "approvalStatus" => {
                    let mut s = val.to_lowercase();
                    if let Some(f) = s.get_mut(0..1) {
                        f.make_ascii_uppercase();
                    }
                    a.approval = s;
                }
                _ => {}
            }
        }
        a.modified = modified.clone();
    }
    text(200, "success")
}
