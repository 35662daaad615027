//! Routes, the fault layer and the request log.

use super::http::{Query, json_error};
use super::{RequestRecord, Shared, api, auth, upload};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Every request enters here.
pub async fn entry(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let latency = sh.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let auth = req.headers().get("authorization").is_some();
    let resp = route(&sh, req, &method, &path, Query::parse(query.as_deref())).await;
    sh.requests.lock().unwrap_or_else(|e| e.into_inner()).push(RequestRecord {
        method: method.to_string(),
        path,
        query: query.unwrap_or_default(),
        status: resp.status().as_u16(),
        authorization: auth,
    });
    resp
}

async fn route(sh: &Arc<Shared>, req: Request, method: &Method, path: &str, q: Query) -> Response {
    if path == "/oauth/api/oauth2/token" {
        return if method == Method::POST { auth::token(sh, &q) } else { json_error(405, "Method Not Allowed") };
    }
    if path == "/s3-upload/" || path == "/s3-upload" {
        if method != Method::POST {
            return super::http::s3_error(405, "MethodNotAllowed", "The specified method is not allowed");
        }
        let headers = req.headers().clone();
        return match Multipart::from_request(req, &()).await {
            Ok(form) => upload::storage(sh, &headers, form).await,
            Err(_) => {
                super::http::s3_error(400, "MalformedPOSTRequest", "The body of your POST request is not well-formed")
            }
        };
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let ["direct", scheme, id] = parts.as_slice() {
        return api::download(sh, scheme, id);
    }
    if !(path.starts_with("/api/") || path.starts_with("/api_binary/")) {
        return json_error(404, "Not found");
    }
    if let Err(r) = auth::check(sh, req.headers()) {
        return r;
    }
    match sh.faults.take() {
        Some(super::faults::Fault::Throttle) => {
            return (axum::http::StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "Too Many Requests")
                .into_response();
        }
        Some(super::faults::Fault::Fail(s)) => return json_error(s, "Internal Server Error"),
        None => {}
    }
    match (method.clone(), parts.as_slice()) {
        (Method::GET, ["api", "v1", "search"]) => api::search(sh, &q),
        (Method::GET, ["api", "v1", "upload", "setting"]) => upload::setting(sh),
        (Method::GET, ["api", "v1", "upload", "status"]) => upload::status(sh, &q),
        (Method::PUT, ["api", "v1", "batch", "edit"]) => match axum::body::to_bytes(req.into_body(), 16 << 20).await {
            Ok(b) => api::batch_edit(sh, &b),
            Err(_) => json_error(400, "Bad body"),
        },
        (Method::GET, ["api", "v1", scheme, id]) => api::details(sh, scheme, id),
        (Method::GET, ["api_binary", "v1", scheme, id, "directuri"]) => api::directuri(sh, scheme, id),
        _ => json_error(404, "Not found"),
    }
}
