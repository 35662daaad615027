//! OAuth2 (`POST /oauth/api/oauth2/token`, query parameters, camelCase reply) and the bearer
//! check of every API call.
//!
//! Decision (UNVERIFIED): a wrong `app_id`/`app_secret` is 401 `{"error":"invalid_client"}`, an
//! unknown `grant_type` or `scope` 400 `{"error":"unsupported_grant_type"|"invalid_scope"}`, an
//! unknown refresh token 400 `{"error":"invalid_grant"}`; API calls without a valid bearer 401
//! `{"error":"Unauthorized"}` (FW maps 401 to "not authorized").

use super::Shared;
use super::http::{Query, json_error};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::{Duration, Instant};

/// `POST /oauth/api/oauth2/token?app_id=..&app_secret=..&grant_type=..&scope=..`.
pub fn token(sh: &Shared, q: &Query) -> Response {
    if q.get("app_id") != Some(sh.seed.app_id.as_str()) || q.get("app_secret") != Some(sh.seed.app_secret.as_str()) {
        return json_error(401, "invalid_client");
    }
    if let Some(scope) = q.get("scope")
        && !scope.split([' ', '+', ',']).all(|s| ["admin", "contributor", "consumer"].contains(&s))
    {
        return json_error(400, "invalid_scope");
    }
    let mut st = sh.st();
    match q.get("grant_type") {
        Some("client_credentials") => {}
        Some("refresh_token") => {
            let Some(r) = q.get("refresh_token") else { return json_error(400, "invalid_request") };
            if st.refresh_tokens.remove(r).is_none() {
                return json_error(400, "invalid_grant");
            }
        }
        _ => return json_error(400, "unsupported_grant_type"),
    }
    let access = st.next("at-");
    let refresh = st.next("rt-");
    let generation = st.generation;
    let ttl = sh.seed.token_ttl_secs;
    st.tokens
        .insert(access.clone(), super::state::Token { generation, until: Instant::now() + Duration::from_secs(ttl) });
    st.refresh_tokens.insert(refresh.clone(), ());
    axum::Json(json!({
        "accessToken": access,
        "expiresIn": ttl,
        "tokenType": "Bearer",
        "refreshToken": refresh,
    }))
    .into_response()
}

/// `Ok` when the request carries a live bearer token.
pub fn check(sh: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let st = sh.st();
    match token.and_then(|t| st.tokens.get(t)) {
        Some(t) if t.generation == st.generation && Instant::now() < t.until => Ok(()),
        _ => Err(json_error(401, "Unauthorized")),
    }
}
