//! Request and reply plumbing: query strings, error bodies, the request log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

/// A parsed query string (last value wins).
#[derive(Debug, Default, Clone)]
pub struct Query(pub BTreeMap<String, String>);

impl Query {
    /// Parses `a=1&b=x%20y`.
    pub fn parse(q: Option<&str>) -> Query {
        let pairs = reqwest::Url::parse(&format!("http://x/?{}", q.unwrap_or("")))
            .map(|u| u.query_pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect())
            .unwrap_or_default();
        Query(pairs)
    }

    /// One parameter.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
}

/// A JSON error reply `{"error": message}`.
pub fn json_error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// An S3-style XML error (the storage host).
pub fn s3_error(status: u16, code: &str, message: &str) -> Response {
    let code_s = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (code_s, [("content-type", "application/xml")], body).into_response()
}

/// A plain-text reply.
pub fn text(status: u16, body: impl Into<String>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (code, [("content-type", "text/plain;charset=UTF-8")], body.into()).into_response()
}
