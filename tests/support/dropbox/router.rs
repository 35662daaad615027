//! One entry point for both hosts: records the request, applies faults and the bearer check,
//! checks the route style's Content-Type and argument (RPC JSON body, or `Dropbox-API-Arg` header /
//! `arg` URL parameter for content routes), dispatches, adds latency, and drops the connection when
//! a fault asks to.

use super::http::{DropConnection, bad_request, drain, dropped, pairs, plain, too_many_requests};
use super::{RequestRecord, Shared, auth, download, faults, files, sessions, upload};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use serde_json::Value;
use std::sync::Arc;

/// How a route takes its argument (SPEC `style`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Rpc,
    Upload,
    Download,
}

fn style(route: &str) -> Option<Style> {
    Some(match route {
        "files/list_folder"
        | "files/list_folder/continue"
        | "files/get_metadata"
        | "files/create_folder_v2"
        | "files/move_v2"
        | "files/delete_v2"
        | "files/upload_session/finish_batch_v2"
        | "files/upload_session/start_batch" => Style::Rpc,
        "files/upload"
        | "files/upload_session/start"
        | "files/upload_session/append_v2"
        | "files/upload_session/finish" => Style::Upload,
        "files/download" => Style::Download,
        _ => return None,
    })
}

/// The axum fallback handler serving every path.
pub async fn entry(
    State(sh): State<Arc<Shared>>,
    ConnectInfo(kill): ConnectInfo<faults::KillSwitch>,
    req: Request,
) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let mut arg = None;
    let resp = dispatch(&sh, req, &mut arg).await;
    let latency = sh.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let is_dropped = resp.extensions().get::<DropConnection>().is_some();
    let status = if is_dropped { 0 } else { resp.status().as_u16() };
    sh.requests.lock().unwrap_or_else(|e| e.into_inner()).push(RequestRecord { method, path, status, arg });
    if is_dropped {
        kill.kill();
    }
    resp
}

async fn dispatch(sh: &Arc<Shared>, req: Request, arg_log: &mut Option<String>) -> Response {
    let path = req.uri().path().to_string();
    if path == "/oauth2/token" {
        return auth::token(sh, req).await;
    }
    let Some(route) = path.strip_prefix("/2/").map(str::to_string) else {
        drain(req.into_body()).await;
        return plain(404, "Not Found");
    };
    let Some(style) = style(&route) else {
        drain(req.into_body()).await;
        return bad_request(&route, "Unknown API function (not emulated)");
    };
    let get_ok = style == Style::Download && req.method() == Method::GET;
    if req.method() != Method::POST && !get_ok {
        let m = req.method().clone();
        drain(req.into_body()).await;
        return plain(405, format!("Method {m} not allowed for {route}"));
    }
    let (parts, body) = req.into_parts();
    if style != Style::Rpc {
        *arg_log = raw_arg(&parts.headers, parts.uri.query());
    }
    // Decision: faults skip /oauth2/token, so "the next n calls" are the calls a test is about,
    // whatever token refreshes the connector does.
    if let Some(f) = sh.faults.take() {
        drain(body).await;
        return match f {
            faults::Fault::Drop => dropped(plain(500, "dropped")),
            faults::Fault::Throttle(secs) => too_many_requests(secs),
            faults::Fault::Fail(status) => plain(status, "Internal Server Error (injected)"),
        };
    }
    if let Err(r) = auth::check(sh, &parts.headers, &route) {
        drain(body).await;
        return r;
    }
    match style {
        Style::Rpc => {
            let bytes = match rpc_body(&parts.headers, body, &route).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            *arg_log = Some(String::from_utf8_lossy(&bytes).into_owned());
            let v: Value = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(_) => return bad_request(&route, "request body: could not decode input as JSON"),
            };
            rpc(sh, &route, v).await
        }
        Style::Upload => {
            if let Err(r) = check_octet(&parts.headers, &route) {
                drain(body).await;
                return r;
            }
            let arg = match content_arg(&parts.headers, parts.uri.query(), &route) {
                Ok(a) => a,
                Err(r) => {
                    drain(body).await;
                    return r;
                }
            };
            match route.as_str() {
                "files/upload" => upload::upload(sh, &route, arg, body).await,
                "files/upload_session/start" => sessions::start(sh, &route, arg, body).await,
                "files/upload_session/append_v2" => sessions::append(sh, &route, arg, body).await,
                _ => sessions::finish(sh, &route, arg, body).await,
            }
        }
        Style::Download => {
            let arg = content_arg(&parts.headers, parts.uri.query(), &route);
            drain(body).await;
            match arg {
                Ok(a) => download::download(sh, &route, a, &parts.headers),
                Err(r) => r,
            }
        }
    }
}

async fn rpc(sh: &Arc<Shared>, route: &str, v: Value) -> Response {
    match route {
        "files/list_folder" => files::list_folder(sh, route, v),
        "files/list_folder/continue" => files::list_continue(sh, route, v),
        "files/get_metadata" => files::get_metadata(sh, route, v),
        "files/create_folder_v2" => files::create_folder(sh, route, v).await,
        "files/move_v2" => files::move_v2(sh, route, v).await,
        "files/delete_v2" => files::delete(sh, route, v).await,
        "files/upload_session/start_batch" => sessions::start_batch(sh, route, v),
        _ => sessions::finish_batch(sh, route, v).await,
    }
}

fn content_type(h: &HeaderMap) -> String {
    h.get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).unwrap_or_default()
}

/// RPC bodies: `Content-Type` must be JSON. Decision (UNVERIFIED on the exact list): Dropbox's 400
/// names the accepted values "application/json", "application/json; charset=utf-8" and
/// "text/plain; charset=dropbox-cors-hack"; we accept exactly those (compared case-insensitively).
async fn rpc_body(h: &HeaderMap, body: Body, route: &str) -> Result<axum::body::Bytes, Response> {
    let ct = content_type(h);
    let ok = ["application/json", "application/json; charset=utf-8", "text/plain; charset=dropbox-cors-hack"];
    if !ok.contains(&ct.to_ascii_lowercase().as_str()) {
        drain(body).await;
        return Err(bad_request(
            route,
            format!(
                "Bad HTTP \"Content-Type\" header: {ct:?}.  Expecting one of \"application/json\", \"application/json; charset=utf-8\", \"text/plain; charset=dropbox-cors-hack\"."
            ),
        ));
    }
    axum::body::to_bytes(body, 32 << 20).await.map_err(|_| bad_request(route, "request body: could not read it"))
}

/// Upload bodies: `application/octet-stream` (or the CORS hack Dropbox also accepts).
fn check_octet(h: &HeaderMap, route: &str) -> Result<(), Response> {
    let ct = content_type(h);
    if ["application/octet-stream", "text/plain; charset=dropbox-cors-hack"].contains(&ct.to_ascii_lowercase().as_str())
    {
        return Ok(());
    }
    Err(bad_request(
        route,
        format!(
            "Bad HTTP \"Content-Type\" header: {ct:?}.  Expecting one of \"application/octet-stream\", \"text/plain; charset=dropbox-cors-hack\"."
        ),
    ))
}

fn raw_arg(h: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = h.get("dropbox-api-arg") {
        return Some(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    pairs(query.unwrap_or("")).into_iter().find(|(k, _)| k == "arg").map(|(_, v)| v)
}

/// The argument of a content route. The header must be header-safe JSON: a raw byte of 0x7F or
/// above is 400. Decision (UNVERIFIED): both the header and the `arg` URL parameter at once is 400.
fn content_arg(h: &HeaderMap, query: Option<&str>, route: &str) -> Result<Value, Response> {
    let url = pairs(query.unwrap_or("")).into_iter().find(|(k, _)| k == "arg").map(|(_, v)| v);
    let (text, ctx) = match (h.get("dropbox-api-arg"), url) {
        (Some(_), Some(_)) => {
            return Err(bad_request(
                route,
                "Only one of HTTP header \"Dropbox-API-Arg\" and URL parameter \"arg\" may be given.",
            ));
        }
        (None, None) => {
            return Err(bad_request(route, "Must provide HTTP header \"Dropbox-API-Arg\" or URL parameter \"arg\"."));
        }
        (Some(v), None) => {
            if v.as_bytes().iter().any(|&b| b >= 0x7f) {
                return Err(bad_request(
                    route,
                    "HTTP header \"Dropbox-API-Arg\": non-ASCII characters must be escaped as \\uXXXX (header-safe JSON).",
                ));
            }
            (String::from_utf8_lossy(v.as_bytes()).into_owned(), "HTTP header \"Dropbox-API-Arg\"")
        }
        (None, Some(u)) => (u, "URL parameter \"arg\""),
    };
    serde_json::from_str(&text).map_err(|_| bad_request(route, format!("{ctx}: could not decode input as JSON")))
}
