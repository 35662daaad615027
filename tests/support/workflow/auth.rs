//! The tenant's OAuth2 token endpoint (`POST /tenants/{tenant}/oauth2/token`, client
//! credentials) and the bearer check of every `/workflow/v1` call.
//!
//! Decision (UNVERIFIED: TARGETS.md §3 "token response fields and form-encoded acceptance"):
//! the endpoint takes the vendor demo's JSON body `{"client_id","client_secret","grant_type"}`
//! **and** the RFC 6749 §4.4 form (`application/x-www-form-urlencoded`), because the tenant's
//! authority is OTDS, whose token endpoint is form-based (PYX `otds.py`); any other content type
//! is 400 `invalid_request`. The reply is RFC 6749 §5.1: `{"access_token","token_type":"Bearer",
//! "expires_in","scope"}`. A wrong client or secret is 401 `invalid_client`, another grant 400
//! `unsupported_grant_type`, an unknown tenant 404 (no such authority). The wharf client sends JSON.

use super::Shared;
use super::http::{fault, reply};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    reply(status, json!({ "error": error, "error_description": description }))
}

/// The credentials of a token request, from a JSON or a form body.
fn fields(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, Response> {
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("application/json") {
        let v: Value = serde_json::from_slice(body)
            .map_err(|_| oauth_error(400, "invalid_request", "The request body is not valid JSON"))?;
        let obj =
            v.as_object().ok_or_else(|| oauth_error(400, "invalid_request", "The request body must be an object"))?;
        Ok(obj.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        let text = String::from_utf8_lossy(body);
        Ok(super::http::Query::parse(Some(&text)).0.into_iter().collect())
    } else {
        Err(oauth_error(400, "invalid_request", "Send the token request as application/json or a form"))
    }
}

/// `POST /tenants/{tenant}/oauth2/token`.
pub fn token(sh: &Shared, tenant: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    if tenant != sh.seed.tenant {
        return reply(404, json!({ "error": "not_found", "error_description": "Unknown tenant" }));
    }
    let f = match fields(headers, body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("grant_type") {
        Some("client_credentials") => {}
        None => return oauth_error(400, "invalid_request", "grant_type is required"),
        Some(_) => return oauth_error(400, "unsupported_grant_type", "Only client_credentials is enabled"),
    }
    if get("client_id") != Some(sh.seed.client_id.as_str()) || get("client_secret") != Some(&sh.seed.client_secret) {
        return oauth_error(401, "invalid_client", "Client authentication failed");
    }
    let mut st = sh.st();
    let access = format!("wf-at-{}", st.next_id(9));
    let generation = st.generation;
    let ttl = sh.seed.token_ttl_secs;
    st.tokens
        .insert(access.clone(), super::state::Token { generation, until: Instant::now() + Duration::from_secs(ttl) });
    reply(
        200,
        json!({ "access_token": access, "token_type": "Bearer", "expires_in": ttl, "scope": "openid otds:groups" }),
    )
}

/// `Ok` when the request carries a live bearer token of this tenant.
pub fn check(sh: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(token) = token else {
        return Err(fault(401, "Invalid access token", "keymanagement.service.invalid_access_token"));
    };
    let st = sh.st();
    match st.tokens.get(token) {
        Some(t) if t.generation == st.generation && Instant::now() < t.until => Ok(()),
        Some(_) => Err(fault(401, "Access Token expired", "keymanagement.service.access_token_expired")),
        None => Err(fault(401, "Invalid access token", "keymanagement.service.invalid_access_token")),
    }
}
