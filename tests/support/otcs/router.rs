//! One entry point: records the request, applies faults and the ticket check, routes by path
//! segments, rotates the ticket, adds latency, and drops the connection when a handler asks to.

use super::http::{DropConnection, Pairs, drain, dropped, error, percent_decode, with_retry_after};
use super::{API_PREFIX, RequestRecord, Shared, auth, categories, faults, multipart_upload as lfu, nodes, records};
use super::{versions, workspaces as ws};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::response::Response;
use std::sync::Arc;

/// The axum fallback handler serving every path.
pub async fn entry(
    State(sh): State<Arc<Shared>>,
    ConnectInfo(kill): ConnectInfo<faults::KillSwitch>,
    req: Request,
) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let resp = dispatch(&sh, req).await;
    let latency = sh.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let is_dropped = resp.extensions().get::<DropConnection>().is_some();
    let status = if is_dropped { 0 } else { resp.status().as_u16() };
    sh.requests.lock().unwrap_or_else(|e| e.into_inner()).push(RequestRecord { method, path, query, status });
    if is_dropped {
        kill.kill();
    }
    resp
}

async fn dispatch(sh: &Arc<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(API_PREFIX) else {
        drain(req.into_body()).await;
        return error(404, "Not found");
    };
    let segs: Vec<String> = rest.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    if segs == ["v1", "auth"] {
        return auth::handle(sh, req).await;
    }
    // Decision: faults skip /v1/auth (all kinds, not only fail_next), so "the next n calls" are
    // the calls a test is about, whatever re-authentication the connector does.
    if let Some(f) = sh.faults.take() {
        drain(req.into_body()).await;
        return match f {
            faults::Fault::Drop => dropped(error(500, "dropped")),
            faults::Fault::Throttle(secs) => with_retry_after(error(429, "Too Many Requests"), secs),
            faults::Fault::Fail(status, text) => error(status, text),
        };
    }
    let Some(session) = auth::check(sh, req.headers()) else {
        drain(req.into_body()).await;
        return error(401, "Authentication Required");
    };
    let mut resp = route(sh, &segs, req).await;
    let fresh = auth::issue(sh, &session.0, session.1);
    if let Ok(v) = HeaderValue::from_str(&fresh) {
        resp.headers_mut().insert("OTCSTicket", v);
    }
    resp
}

async fn route(sh: &Arc<Shared>, segs: &[&str], req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let q = Pairs::parse(req.uri().query().unwrap_or(""));
    match (method.as_str(), segs) {
        ("POST", ["v2", "nodes"]) => nodes::create(sh, req).await,
        ("GET", ["v1" | "v2", "nodes", id]) => nodes::get(sh, id, &q),
        ("DELETE", ["v1" | "v2", "nodes", id]) => nodes::delete(sh, id),
        ("GET", ["v2", "nodes", id, "nodes"]) => nodes::children(sh, id, &q),
        ("GET", [_, "nodes", id, "versions"]) => versions::list(sh, id),
        ("POST", [v, "nodes", id, "versions"]) => versions::add(sh, *v == "v1", id, req).await,
        ("GET", [v, "nodes", id, "content"]) | ("GET", [v @ "v2", "nodes", id, "content", _]) => {
            versions::content(sh, *v == "v1", id, None)
        }
        ("GET", [v, "nodes", id, "versions", n, "content"]) => versions::content(sh, *v == "v1", id, Some(n)),
        ("GET", ["v2", "nodes", id, "categories"]) => categories::list(sh, id),
        ("GET", ["v1", "nodes", id, "classifications"]) => records::list(sh, id),
        ("POST", ["v2", "nodes", id, "categories"]) => categories::assign(sh, id, req).await,
        ("PUT", ["v2", "nodes", id, "categories", cat]) => categories::update(sh, id, cat, req).await,
        ("GET", ["v2", "multipart", "settings"]) => lfu::settings(sh),
        ("POST", ["v2", "multipart"]) => lfu::begin(sh, req).await,
        ("POST", ["v2", "multipart", key]) => lfu::complete(sh, key).await,
        ("DELETE", ["v2", "multipart", key]) => lfu::cancel(sh, key),
        ("POST", ["v2", "multipart", key, n]) => lfu::part(sh, key, n, req).await,
        ("GET", ["v2", "businessworkspacetypes"]) => ws::types(sh, &q),
        ("GET", ["v2", "businessworkspaces"]) => ws::search(sh, &q),
        ("POST", ["v2", "businessworkspaces"]) => ws::create(sh, req).await,
        ("GET", ["v2", "businessworkspaces", id]) => ws::get(sh, id),
        _ => {
            drain(req.into_body()).await;
            error(404, "Not found")
        }
    }
}

/// Parses a node id from the path; a non-number is "Could not get a node for {id}".
pub fn node_id(s: &str) -> Result<i64, Response> {
    s.parse::<i64>().map_err(|_| error(400, format!("Could not get a node for {s}")))
}
