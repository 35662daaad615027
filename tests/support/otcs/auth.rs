//! `/v1/auth` (password login, OTDS token exchange, logout) and the ticket store with rotation.

use super::Shared;
use super::http::{FileLimits, error, json_reply, read_fields};
use super::state::Ticket;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A ticket's owner and session (rotated tickets share the session; logout ends all of them).
pub type Session = (String, u64);

/// Issues a fresh ticket for a user's session; the old ones stay valid until their own expiry.
pub fn issue(sh: &Shared, user: &str, session: u64) -> String {
    let n = sh.seq.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut h = Sha256::new();
    h.update(sh.random.to_le_bytes());
    h.update(n.to_le_bytes());
    h.update(nanos.to_le_bytes());
    let ticket = hex::encode(h.finalize());
    let now = Instant::now();
    let mut st = sh.st();
    if st.tickets.len() > 20_000 {
        st.tickets.retain(|_, t| t.expires > now);
    }
    let t = Ticket { user: format!("{session}\u{0}{user}"), expires: now + sh.ttl };
    st.tickets.insert(ticket.clone(), t);
    ticket
}

/// The session of a valid `OTCSTicket` header (the name is case-insensitive).
pub fn check(sh: &Shared, headers: &HeaderMap) -> Option<Session> {
    let t = headers.get("otcsticket")?.to_str().ok()?;
    let st = sh.st();
    let tk = st.tickets.get(t)?;
    if tk.expires <= Instant::now() {
        return None;
    }
    let (session, user) = tk.user.split_once('\u{0}')?;
    Some((user.to_string(), session.parse().ok()?))
}

fn new_session(sh: &Shared) -> u64 {
    sh.seq.fetch_add(1, Ordering::SeqCst)
}

fn with_ticket(mut r: Response, t: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(t) {
        r.headers_mut().insert("OTCSTicket", v);
    }
    r
}

/// `POST|GET|DELETE /v1/auth`.
pub async fn handle(sh: &Shared, req: Request) -> Response {
    match *req.method() {
        Method::POST => login(sh, req).await,
        Method::GET => exchange(sh, req.headers()),
        Method::DELETE => match check(sh, req.headers()) {
            Some((_, session)) => {
                sh.st().tickets.retain(|_, t| !t.user.starts_with(&format!("{session}\u{0}")));
                json_reply(200, json!({}))
            }
            None => error(401, "Authentication Required"),
        },
        _ => error(404, "Not found"),
    }
}

/// Password login. A JSON body is not parsed (CS reads only form fields), so it lacks `username`.
async fn login(sh: &Shared, req: Request) -> Response {
    let lim = FileLimits { dir: &sh.dir, file_fields: &[], max_size: 0, seq: &sh.seq };
    let f = match read_fields(req, lim).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(user) = f.text.get("username").filter(|u| !u.is_empty()) else {
        return error(500, "Argument username is required");
    };
    let Some(pw) = f.text.get("password").filter(|p| !p.is_empty()) else {
        return error(500, "Argument password is required");
    };
    if !sh.users.iter().any(|u| u.username == user && u.password == pw) {
        return error(401, "Invalid username/password specified");
    }
    let t = issue(sh, user, new_session(sh));
    json_reply(200, json!({ "ticket": t }))
}

/// `GET /v1/auth`: with `Authorization: Bearer <OTDS token>` or `OTDSTicket: <token>` (seeded tokens)
/// → a new CS ticket in the `OTCSTicket` header; with a valid `OTCSTicket` → the session's user.
fn exchange(sh: &Shared, h: &HeaderMap) -> Response {
    let bearer = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let otds = h.get("otdsticket").and_then(|v| v.to_str().ok());
    if let Some(tok) = bearer.or(otds) {
        return match sh.tokens.iter().find(|t| t.token == tok.trim()) {
            Some(t) => {
                let ticket = issue(sh, &t.username, new_session(sh));
                with_ticket(json_reply(200, json!({ "data": { "id": 1000, "name": t.username } })), &ticket)
            }
            None => error(401, "Authentication Required"),
        };
    }
    match check(sh, h) {
        Some((user, session)) => {
            let ticket = issue(sh, &user, session);
            with_ticket(json_reply(200, json!({ "data": { "id": 1000, "name": user } })), &ticket)
        }
        None => error(401, "Authentication Required"),
    }
}
