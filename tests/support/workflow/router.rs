//! Routes, the fault layer and the request log.

use super::faults::Fault;
use super::http::{Query, details, fault};
use super::{RequestRecord, Shared, auth, instances, tasks};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
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
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), 4 << 20).await {
        Ok(b) => b,
        Err(_) => return details(413, "Request body too large"),
    };
    let q = Query::parse(query.as_deref());
    let (resp, dropped) = route(&sh, &method, &path, &q, &headers, &body);
    let body_text = String::from_utf8_lossy(&body).to_string();
    sh.requests.lock().unwrap_or_else(|e| e.into_inner()).push(RequestRecord {
        method: method.to_string(),
        path,
        query: query.unwrap_or_default(),
        status: if dropped { 0 } else { resp.status().as_u16() },
        authorization: headers.contains_key("authorization"),
        body: body_text,
    });
    if dropped {
        // Ends this connection's task: the client sees the connection close with no reply.
        panic!("workflow emulator fault: connection dropped without a reply");
    }
    resp
}

fn route(sh: &Shared, method: &Method, path: &str, q: &Query, headers: &HeaderMap, body: &[u8]) -> (Response, bool) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let ["tenants", tenant, "oauth2", "token"] = parts.as_slice() {
        return if method == Method::POST {
            (auth::token(sh, tenant, headers, body), false)
        } else {
            (details(405, "Method Not Allowed"), false)
        };
    }
    let ["workflow", "v1", rest @ ..] = parts.as_slice() else {
        return (details(404, "No such resource"), false);
    };
    if let Err(r) = auth::check(sh, headers) {
        return (r, false);
    }
    let mut drop_after = false;
    match sh.faults.take(method == Method::POST) {
        Some(Fault::DropBefore) => return (details(500, "dropped"), true),
        Some(Fault::DropAfter) => drop_after = true,
        Some(Fault::Throttle(secs)) => {
            let mut r =
                fault(429, "Rate limit quota violation. Quota limit exceeded.", "policies.ratelimit.QuotaViolation");
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert("retry-after", v);
            }
            return (r, false);
        }
        Some(Fault::Fail(s)) => return (details(s, "The service is temporarily unavailable (injected)"), false),
        None => {}
    }
    if method == Method::POST {
        let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !ct.to_ascii_lowercase().starts_with("application/json") {
            return (details(415, &format!("Content type '{ct}' not supported; send application/json")), drop_after);
        }
    }
    let resp = match (method.clone(), rest) {
        (Method::POST, ["process-instances"]) => instances::start(sh, body),
        (Method::GET, ["process-instances"]) => instances::list(sh, q),
        (Method::GET, ["process-instances", id]) => instances::get(sh, id, q),
        (Method::GET, ["process-instances", id, "variables"]) => instances::variables(sh, id, q),
        (Method::GET, ["tasks"]) => tasks::list(sh, q),
        (Method::POST, ["tasks", id]) => tasks::action(sh, id, body),
        (_, ["process-instances" | "tasks", ..]) => details(405, "Method Not Allowed"),
        _ => details(404, "No such resource"),
    };
    (resp.into_response(), drop_after)
}
