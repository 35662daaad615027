//! The API's error replies, the header check (api_key + raw management token or authtoken) and the
//! middleware every `/v3` call passes: latency, injected faults, the rate limit.

use super::Shared;
use super::faults::Fault;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// Handler result: the reply or the API's error reply.
pub type Reply = Result<Response, Response>;

/// `{"error_message","error_code","errors"}` with a status.
pub fn error(status: StatusCode, code: u32, message: &str, errors: Value) -> Response {
    (status, axum::Json(json!({"error_message": message, "error_code": code, "errors": errors}))).into_response()
}

/// 422 with field errors (validation).
pub fn invalid(message: &str, field: &str, why: &str) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, 119, message, json!({ field: [why] }))
}

/// 422 "not found" (Contentstack answers missing entries/assets with 422, code 141).
pub fn not_found(what: &str) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, 141, &format!("The requested {what} doesn't exist."), json!({}))
}

/// Checks `api_key` and the credentials.
///
/// Decision (UNVERIFIED codes): a missing or wrong `api_key` answers 412 with error_code 109
/// ("api_key not valid"); missing credentials, a wrong token or a `Bearer …` value answer 401 with
/// error_code 105. The SDK sends the management token raw in `authorization`.
pub fn check_auth(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match get("api_key") {
        Some(k) if k == shared.seed.api_key => {}
        _ => {
            return Err(error(
                StatusCode::PRECONDITION_FAILED,
                109,
                "We can't find that Stack. Please try again.",
                json!({"api_key": ["is not valid."]}),
            ));
        }
    }
    let denied = || {
        error(
            StatusCode::UNAUTHORIZED,
            105,
            "You're not allowed in here unless you're logged in.",
            json!({"authorization": ["is not valid."]}),
        )
    };
    if let Some(token) = get("authorization") {
        if token.to_ascii_lowercase().starts_with("bearer ") {
            return Err(denied());
        }
        return if shared.seed.management_tokens.iter().any(|t| t == token) { Ok(()) } else { Err(denied()) };
    }
    if let Some(token) = get("authtoken") {
        return if shared.seed.authtokens.iter().any(|t| t == token) { Ok(()) } else { Err(denied()) };
    }
    Err(denied())
}

/// Latency, faults, rate limit, auth, and the request log, around every `/v3` call.
pub async fn guard(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let reply = guarded(&shared, req, next).await;
    shared.log(&method, &path, reply.status().as_u16());
    reply
}

async fn guarded(shared: &Arc<Shared>, req: Request, next: Next) -> Response {
    let window = if req.method() == Method::GET { &shared.reads } else { &shared.writes };
    let remaining = match window.admit() {
        Ok(r) => r,
        Err(()) => {
            let mut r =
                error(StatusCode::TOO_MANY_REQUESTS, 429, "Too many requests. Please try again later.", json!({}));
            r.headers_mut().insert("x-ratelimit-limit", HeaderValue::from(window.limit()));
            r.headers_mut().insert("x-ratelimit-remaining", HeaderValue::from(0));
            return r;
        }
    };
    if let Err(r) = check_auth(shared, req.headers()) {
        return r;
    }
    match shared.faults.take_for(req.method().as_str(), req.uri().path()) {
        Some(Fault::Drop) => panic!("emulator fault: dropping the connection without a reply"),
        Some(Fault::Fail(429)) => {
            // an injected throttle looks like the real one: no Retry-After
            window.count_refused();
            let mut r =
                error(StatusCode::TOO_MANY_REQUESTS, 429, "Too many requests. Please try again later.", json!({}));
            r.headers_mut().insert("x-ratelimit-limit", HeaderValue::from(window.limit()));
            r.headers_mut().insert("x-ratelimit-remaining", HeaderValue::from(0));
            return r;
        }
        Some(Fault::Fail(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, 500, "Internal server error (injected).", json!({}));
        }
        None => {}
    }
    let mut r = next.run(req).await;
    r.headers_mut().insert("x-ratelimit-limit", HeaderValue::from(window.limit()));
    r.headers_mut().insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    r
}
