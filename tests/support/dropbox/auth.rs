//! `POST /oauth2/token` (refresh-token grant, client auth in the form or HTTP Basic) and the bearer
//! check of every `/2/...` call.

use super::Shared;
use super::http::{bad_request, base64_decode, json_reply, pairs, plain};
use super::state::Token;
use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde_json::json;
use std::time::{Duration, Instant};

fn oauth_error(error: &str, description: &str) -> Response {
    json_reply(400, json!({"error": error, "error_description": description}))
}

/// `POST /oauth2/token`. Decision (UNVERIFIED): parameters are read from the form body and, like
/// Dropbox's examples that pass them in the URL, from the query string (the body wins); a wrong
/// client is 400 `invalid_client`; an unknown, revoked or missing refresh token is 400
/// `invalid_grant`; `client_secret` may be left out (PKCE apps refresh without it), but a wrong one
/// is `invalid_client`; grants other than `refresh_token` are `unsupported_grant_type`.
pub async fn token(sh: &Shared, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if parts.method != axum::http::Method::POST {
        return plain(405, "Method Not Allowed");
    }
    let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let bytes = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => b,
        Err(_) => return oauth_error("invalid_request", "could not read the request body"),
    };
    if !bytes.is_empty() && !ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return oauth_error("invalid_request", "the body must be application/x-www-form-urlencoded");
    }
    let mut params = pairs(parts.uri.query().unwrap_or(""));
    params.extend(pairs(&String::from_utf8_lossy(&bytes)));
    let get = |k: &str| params.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (mut client_id, mut secret) = (get("client_id"), get("client_secret"));
    if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
        let creds = auth
            .to_str()
            .ok()
            .and_then(|a| a.strip_prefix("Basic "))
            .and_then(base64_decode)
            .and_then(|b| String::from_utf8(b).ok());
        let Some((id, s)) = creds.as_deref().and_then(|c| c.split_once(':')) else {
            return oauth_error("invalid_client", "Invalid client authentication in the Authorization header");
        };
        client_id = Some(id.to_string());
        secret = Some(s.to_string());
    }
    let Some(client_id) = client_id else {
        return oauth_error("invalid_request", "No auth function available for given request");
    };
    if client_id != sh.app_key || secret.as_ref().is_some_and(|s| s != &sh.app_secret) {
        return oauth_error("invalid_client", "Invalid client_id or client_secret");
    }
    match get("grant_type").as_deref() {
        Some("refresh_token") => {}
        None => return oauth_error("invalid_request", "No grant_type provided"),
        Some(_) => return oauth_error("unsupported_grant_type", "only grant_type=refresh_token is emulated"),
    }
    let mut st = sh.st();
    if get("refresh_token").as_deref() != Some(sh.refresh_token.as_str()) || st.refresh_revoked {
        return oauth_error("invalid_grant", "refresh token is invalid or revoked");
    }
    let access = st.secret("sl.u.emu");
    let now = Instant::now();
    if st.tokens.len() > 10_000 {
        st.tokens.retain(|_, t| t.expires > now);
    }
    let ttl = Duration::from_secs(sh.ttl_secs);
    st.tokens.insert(access.clone(), Token { expires: now + ttl, generation: sh.faults.token_generation() });
    json_reply(200, json!({"access_token": access, "token_type": "bearer", "expires_in": sh.ttl_secs}))
}

fn auth_error(tag: &str) -> Response {
    json_reply(401, json!({"error_summary": format!("{tag}/.."), "error": {".tag": tag}}))
}

/// Checks `Authorization: Bearer <token>`: unknown → 401 `invalid_access_token`, expired (by ttl or
/// `expire_tokens`) → 401 `expired_access_token`. Decision (UNVERIFIED): as Dropbox does, a missing
/// header or one that is not `Bearer ...` is a 400 plain-text argument error, not a 401.
pub fn check(sh: &Shared, headers: &HeaderMap, route: &str) -> Result<(), Response> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Err(bad_request(
            route,
            "Must provide HTTP header \"Authorization\" or URL parameter \"authorization\".",
        ));
    };
    let text = String::from_utf8_lossy(v.as_bytes()).into_owned();
    let Some(tok) = text.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty()) else {
        return Err(plain(
            400,
            format!(
                "Error in call to API function \"{route}\": Invalid authorization value in HTTP header \"Authorization\": {text:?}.  Expecting \"Bearer <oauth2-access-token>\"."
            ),
        ));
    };
    let st = sh.st();
    let Some(t) = st.tokens.get(tok) else { return Err(auth_error("invalid_access_token")) };
    if t.expires <= Instant::now() || t.generation < sh.faults.token_generation() {
        return Err(auth_error("expired_access_token"));
    }
    Ok(())
}
