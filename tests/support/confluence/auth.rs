//! Authentication of the two URL forms and the OAuth token endpoints.
//!
//! - `https://{site}.atlassian.net/wiki/...` (here `{base_url}/wiki/...`): Basic `email:api_token`
//!   only; a bearer token there is 401 (3LO calls must go through api.atlassian.com).
//! - `https://api.atlassian.com/ex/confluence/{cloudId}/wiki/...` (here `{base_url}/ex/...`): Bearer
//!   only; Basic there is 401; an unknown cloudId is 404.
//! - `POST /oauth/token` (refresh grant, rotating refresh tokens) and
//!   `GET /oauth/token/accessible-resources` stand for `auth.atlassian.com` / `api.atlassian.com`.

use super::Shared;
use super::http::{Api, Pairs, base64_decode, drain, error, json_reply};
use super::state::Token;
use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Which URL form a request used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// `/wiki/...` on the site.
    Site,
    /// `/ex/confluence/{cloudId}/wiki/...`.
    OAuth(String),
}

/// The API gateway's own error body (api.atlassian.com), used on the `/ex/` form.
fn gateway_error(status: u16, message: &str) -> Response {
    json_reply(status, json!({"code": status, "message": message}))
}

fn authorization(h: &HeaderMap) -> Option<(String, String)> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    Some((scheme.to_ascii_lowercase(), rest.trim().to_string()))
}

/// The account id of an authenticated request, or the 401/404 reply.
pub fn check(sh: &Shared, form: &Form, h: &HeaderMap, api: Api) -> Result<String, Response> {
    let auth = authorization(h);
    match form {
        Form::Site => {
            let unauthorized =
                || error(api, 401, "UNAUTHORIZED", "Unauthorized; the request needs Basic email:api_token");
            let Some((scheme, cred)) = auth else { return Err(unauthorized()) };
            if scheme != "basic" {
                return Err(unauthorized());
            }
            let decoded = base64_decode(&cred).and_then(|b| String::from_utf8(b).ok()).ok_or_else(unauthorized)?;
            let (email, token) = decoded.split_once(':').ok_or_else(unauthorized)?;
            sh.users
                .iter()
                .find(|u| u.email.eq_ignore_ascii_case(email) && u.api_token == token)
                .map(|u| u.account_id.clone())
                .ok_or_else(unauthorized)
        }
        Form::OAuth(cloud) => {
            // Decision (UNVERIFIED): an unknown cloudId is the gateway's 404 `{"code":404,"message":"Not Found"}`,
            // checked before the token (api.atlassian.com routes by cloudId first).
            if *cloud != sh.oauth.cloud_id {
                return Err(gateway_error(404, "Not Found"));
            }
            let Some((scheme, token)) = auth else { return Err(gateway_error(401, "Unauthorized")) };
            if scheme != "bearer" {
                return Err(gateway_error(401, "Unauthorized"));
            }
            let generation = sh.faults.token_generation();
            let st = sh.st();
            match st.access_tokens.get(&token) {
                Some(t) if t.generation == generation => Ok(t.account_id.clone()),
                _ => Err(gateway_error(401, "Unauthorized")),
            }
        }
    }
}

fn new_token(sh: &Shared, kind: &str) -> String {
    let n = sh.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let h = hex::encode(Sha256::digest([sh.secret.to_le_bytes(), n.to_le_bytes()].concat()));
    format!("{kind}-{h}")
}

fn oauth_error(status: u16, code: &str, text: &str) -> Response {
    json_reply(status, json!({"error": code, "error_description": text}))
}

/// `POST /oauth/token`: `grant_type=refresh_token` (JSON or form body) with the seeded client
/// credentials → a new access token and a rotated refresh token (the old one dies).
/// Decision (UNVERIFIED): an unknown/used refresh token is 403 `invalid_grant`; bad client
/// credentials 401 `access_denied`; other grants 400 `unsupported_grant_type`.
pub async fn token(sh: &Shared, req: Request) -> Response {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    let Ok(body) = super::http::read_limited(req.into_body(), 64 << 10).await else {
        return oauth_error(400, "invalid_request", "Unreadable body");
    };
    let get = |k: &str| -> Option<String> {
        if is_json {
            let v: Value = serde_json::from_slice(&body).ok()?;
            v.get(k)?.as_str().map(str::to_string)
        } else {
            Pairs::parse(&String::from_utf8_lossy(&body)).get(k).map(str::to_string)
        }
    };
    if get("grant_type").as_deref() != Some("refresh_token") {
        return oauth_error(400, "unsupported_grant_type", "Only grant_type=refresh_token is emulated");
    }
    if get("client_id").as_deref() != Some(&sh.oauth.client_id)
        || get("client_secret").as_deref() != Some(&sh.oauth.client_secret)
    {
        return oauth_error(401, "access_denied", "Unauthorized");
    }
    let Some(refresh) = get("refresh_token") else {
        return oauth_error(400, "invalid_request", "refresh_token is required");
    };
    let access = new_token(sh, "at");
    let rotated = new_token(sh, "rt");
    let generation = sh.faults.token_generation();
    let mut st = sh.st();
    let Some(account) = st.refresh_tokens.remove(&refresh) else {
        return oauth_error(403, "invalid_grant", "Unknown or invalid refresh token.");
    };
    st.access_tokens.insert(access.clone(), Token { account_id: account.clone(), generation });
    st.refresh_tokens.insert(rotated.clone(), account);
    json_reply(
        200,
        json!({"access_token": access, "refresh_token": rotated, "expires_in": 3600, "token_type": "Bearer",
               "scope": "read:page:confluence write:page:confluence read:attachment:confluence write:attachment:confluence offline_access"}),
    )
}

/// `GET /oauth/token/accessible-resources` with a valid bearer token → the one site.
pub async fn resources(sh: &Shared, req: Request) -> Response {
    let h = req.headers().clone();
    drain(req.into_body()).await;
    match check(sh, &Form::OAuth(sh.oauth.cloud_id.clone()), &h, Api::V1) {
        Ok(_) => json_reply(
            200,
            json!([{"id": sh.oauth.cloud_id, "url": sh.base_url, "name": "wharf-emulator",
                    "scopes": ["read:page:confluence", "write:page:confluence", "read:attachment:confluence",
                               "write:attachment:confluence"], "avatarUrl": ""}]),
        ),
        Err(r) => r,
    }
}
