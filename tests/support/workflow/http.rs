//! Request and reply plumbing: query strings and the three error shapes.
//!
//! Decision (UNVERIFIED: TARGETS.md §3 gives only the field names): a 400 from the service is
//! `{"exception": "<message>"}` (what the vendor demo reads on 400s); 404, 409, 415 and 5xx are
//! `{"details": "<message>"}`; the API gateway in front (missing or dead bearer, 429) answers
//! Apigee-style `{"fault": {"faultstring": "<message>", "detail": {"errorcode": ".."}}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
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

    /// A boolean parameter (`true`/`false`); anything else is a 400.
    pub fn flag(&self, k: &str) -> Result<bool, Response> {
        match self.get(k) {
            None => Ok(false),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(exception(&format!("Failed to convert value '{v}' of parameter '{k}' to boolean"))),
        }
    }

    /// A non-negative integer parameter with a default and a maximum; anything else is a 400.
    pub fn number(&self, k: &str, default: usize, max: usize) -> Result<usize, Response> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(exception(&format!("Parameter '{k}' must be an integer between 0 and {max}, not '{v}'"))),
            },
        }
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// 400 `{"exception": message}`.
pub fn exception(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({ "exception": message }))).into_response()
}

/// `{"details": message}` with this status.
pub fn details(code: u16, message: &str) -> Response {
    (status(code), axum::Json(json!({ "details": message }))).into_response()
}

/// The gateway's `{"fault": ...}` with this status.
pub fn fault(code: u16, message: &str, errorcode: &str) -> Response {
    (status(code), axum::Json(json!({ "fault": { "faultstring": message, "detail": { "errorcode": errorcode } } })))
        .into_response()
}

/// A JSON reply with this status.
pub fn reply(code: u16, body: serde_json::Value) -> Response {
    (status(code), axum::Json(body)).into_response()
}
