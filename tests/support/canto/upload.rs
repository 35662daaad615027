//! The three-step upload: `GET /api/v1/upload/setting` (a signed form for the storage host),
//! `POST /s3-upload/` (the storage: S3 form POST rules) and `GET /api/v1/upload/status`.

use super::Shared;
use super::crypto;
use super::http::{Query, json_error, s3_error};
use super::state::{Setting, Upload, now_stamp};
use axum::extract::Multipart;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::BTreeMap;

/// How long a policy is valid (Canto's are about 5 h).
const POLICY_HOURS: i64 = 5;

/// `GET /api/v1/upload/setting`.
pub fn setting(sh: &Shared) -> Response {
    let mut st = sh.st();
    let uuid = st.next("");
    let prefix = format!("{}-{}-{}/{}/", &uuid[..8], &uuid[8..12], &uuid[12..], sh.seed.user);
    let expires = chrono::Utc::now() + chrono::Duration::hours(POLICY_HOURS);
    let doc = json!({
        "expiration": expires.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "conditions": [
            {"bucket": "canto-emulator"},
            ["starts-with", "$key", prefix],
            {"acl": "private"},
        ],
    });
    let policy = crypto::base64(doc.to_string().as_bytes());
    let signature = crypto::sign(&sh.storage_secret, &policy);
    st.settings.insert(policy.clone(), Setting { prefix: prefix.clone(), expires });
    axum::Json(json!({
        "url": format!("{}/s3-upload/", sh.base()),
        "key": format!("{prefix}${{filename}}"),
        "acl": "private",
        "AWSAccessKeyId": "AKIAEMULATOR0000",
        "Policy": policy,
        "Signature": signature,
        "x-amz-meta-file_name": "${filename}",
        "x-amz-meta-tag": "",
        "x-amz-meta-scheme": "",
        "x-amz-meta-id": "",
        "x-amz-meta-album_id": "",
    }))
    .into_response()
}

/// `POST /s3-upload/`: checked like S3 checks a browser form POST; 204 on success.
pub async fn storage(sh: &Shared, headers: &HeaderMap, mut form: Multipart) -> Response {
    if headers.contains_key("authorization") {
        return s3_error(400, "InvalidArgument", "Unsupported Authorization Type");
    }
    let mut fields = BTreeMap::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return s3_error(400, "MalformedPOSTRequest", "The body of your POST request is not well-formed"),
        };
        if file.is_some() {
            // S3 ignores everything after the file part, so a form with fields after it is
            // missing them: the policy cannot be satisfied
            return s3_error(403, "AccessDenied", "Invalid according to Policy: fields after the file part");
        }
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let filename = field.file_name().unwrap_or_default().to_string();
            let Ok(bytes) = field.bytes().await else {
                return s3_error(400, "MalformedPOSTRequest", "The body of your POST request is not well-formed");
            };
            file = Some((filename, bytes.to_vec()));
        } else {
            let Ok(v) = field.text().await else {
                return s3_error(400, "MalformedPOSTRequest", "The body of your POST request is not well-formed");
            };
            fields.insert(name, v);
        }
    }
    let Some((filename, bytes)) = file else {
        return s3_error(400, "InvalidArgument", "POST requires exactly one file upload per request.");
    };
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
    let policy = get("Policy");
    let mut st = sh.st();
    let Some(setting) = st.settings.get(policy) else {
        return s3_error(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed");
    };
    if crypto::sign(&sh.storage_secret, policy) != get("Signature") || get("AWSAccessKeyId").is_empty() {
        return s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match");
    }
    if sh.faults.policies_expired() || setting.expires <= chrono::Utc::now() {
        return s3_error(403, "AccessDenied", "Invalid according to Policy: Policy expired.");
    }
    let key = get("key").replace("${filename}", &filename);
    let rest = key.strip_prefix(setting.prefix.as_str()).unwrap_or_default();
    if rest.is_empty() || rest.contains('/') || rest.contains("..") {
        return s3_error(
            403,
            "AccessDenied",
            "Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$key\"]",
        );
    }
    if get("acl") != "private" {
        return s3_error(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: acl");
    }
    let version_of = Some(get("x-amz-meta-id").to_string()).filter(|s| !s.is_empty());
    if let Some(id) = &version_of
        && !st.assets.contains_key(id)
    {
        // the storage takes it; Canto's processing then fails
        st.uploads.push(upload(rest, &fields, None, bytes, "Error", 0));
        return axum::http::StatusCode::NO_CONTENT.into_response();
    }
    let polls = sh.seed.initial_polls;
    st.uploads.push(upload(rest, &fields, version_of, bytes, "Initial", polls));
    axum::http::StatusCode::NO_CONTENT.into_response()
}

fn upload(
    name: &str,
    fields: &BTreeMap<String, String>,
    version_of: Option<String>,
    bytes: Vec<u8>,
    status: &str,
    polls: u32,
) -> Upload {
    let meta_name = fields.get("x-amz-meta-file_name").filter(|n| !n.is_empty() && *n != "${filename}");
    Upload {
        name: meta_name.cloned().unwrap_or_else(|| name.to_string()),
        scheme: fields.get("x-amz-meta-scheme").cloned().unwrap_or_default(),
        version_of,
        tags: fields
            .get("x-amz-meta-tag")
            .map(|t| t.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default(),
        bytes,
        time: now_stamp(),
        status: status.into(),
        polls_left: polls,
        id: None,
    }
}

/// `GET /api/v1/upload/status?hours=N`: uploads of the last N hours, newest first.
pub fn status(sh: &Shared, q: &Query) -> Response {
    match q.get("hours").map(str::parse::<u32>) {
        Some(Ok(h)) if (1..=72).contains(&h) => {}
        None => {}
        _ => return json_error(400, "Invalid hours"),
    }
    let mut st = sh.st();
    st.process(sh.faults.uploads_fail(), sh.faults.uploads_stuck());
    let results: Vec<_> = st
        .uploads
        .iter()
        .rev()
        .map(|u| {
            json!({
                "name": u.name,
                "time": u.time,
                "status": u.status,
                "scheme": u.scheme,
                "id": u.id.clone().unwrap_or_default(),
            })
        })
        .collect();
    axum::Json(json!({ "found": results.len(), "results": results })).into_response()
}
