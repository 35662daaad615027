//! Cursor paging: opaque cursors bound to the endpoint and its query, `limit` checks, and the
//! v2 list reply with `_links.next` and the `Link` header.
//!
//! A cursor is 32 hex digits: 8 bytes of a keyed hash of (route, query minus `cursor`/`limit`)
//! and the offset masked with 8 more bytes of it. A cursor made for another endpoint or query,
//! or not made by this server, is 400 `INVALID_REQUEST_PARAMETER`. `limit` may change between
//! pages (it is not part of the binding).

use super::Ctx;
use super::http::{Api, Pairs, bad_request, json_reply, set_header};
use axum::response::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn binding(ctx: &Ctx, route: &str, q: &Pairs) -> [u8; 16] {
    let mut params: Vec<(String, String)> =
        q.0.iter().filter(|(k, _)| k != "cursor" && k != "limit").cloned().collect();
    params.sort();
    let mut h = Sha256::new();
    h.update(ctx.sh.secret.to_le_bytes());
    h.update(route.as_bytes());
    for (k, v) in params {
        h.update([0u8]);
        h.update(k.as_bytes());
        h.update([1u8]);
        h.update(v.as_bytes());
    }
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The cursor for `offset` in this query.
pub fn encode(ctx: &Ctx, route: &str, q: &Pairs, offset: usize) -> String {
    let b = binding(ctx, route, q);
    let mut out = b[..8].to_vec();
    let off = (offset as u64).to_be_bytes();
    out.extend(off.iter().zip(&b[8..]).map(|(x, k)| x ^ k));
    hex::encode(out)
}

/// The offset of the request's `cursor` (0 without one).
pub fn offset(ctx: &Ctx, route: &str, q: &Pairs, api: Api) -> Result<usize, Response> {
    let Some(c) = q.get("cursor") else { return Ok(0) };
    let bad = || bad_request(api, "Provided value for 'cursor' is not the correct type or is not a valid cursor");
    let raw = hex::decode(c).map_err(|_| bad())?;
    if raw.len() != 16 {
        return Err(bad());
    }
    let b = binding(ctx, route, q);
    if raw[..8] != b[..8] {
        return Err(bad());
    }
    let mut off = [0u8; 8];
    for (i, (x, k)) in raw[8..].iter().zip(&b[8..]).enumerate() {
        off[i] = x ^ k;
    }
    usize::try_from(u64::from_be_bytes(off)).map_err(|_| bad())
}

/// `limit` (default `default`); not a number, < 1 or > `max` → 400.
/// Decision (UNVERIFIED): v2 rejects `limit` > 250 with 400 rather than clamping: the OpenAPI
/// schema declares `maximum: 250`, and a client that stays within it works against both behaviours.
pub fn limit(q: &Pairs, default: usize, max: usize, api: Api) -> Result<usize, Response> {
    let Some(v) = q.get("limit") else { return Ok(default) };
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(bad_request(api, format!("Provided value for 'limit' must be an integer between 1 and {max}"))),
    }
}

/// One page of a v2 list: `{"results":[…],"_links":{"next"?, "base"}}` plus `Link` when more exist.
/// `route` is the path after `/wiki` (e.g. `/api/v2/spaces`); the next link is `/wiki{route}?…&cursor=…`
/// on both URL forms (a 3LO client prefixes it with its `/ex/confluence/{cloudId}` base).
pub fn v2_list(ctx: &Ctx, route: &str, q: &Pairs, items: Vec<Value>, default: usize, max: usize) -> Response {
    let lim = match limit(q, default, max, Api::V2) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let off = match offset(ctx, route, q, Api::V2) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(off).take(lim).collect();
    let mut links = json!({"base": ctx.wiki_base});
    let mut next_url = None;
    if off + lim < total {
        let cursor = encode(ctx, route, q, off + lim);
        let rest = q.encode_without(&["cursor"]);
        let sep = if rest.is_empty() { "" } else { "&" };
        let next = format!("/wiki{route}?{rest}{sep}cursor={cursor}");
        links["next"] = json!(next);
        next_url = Some(next);
    }
    let mut r = json_reply(200, json!({"results": page, "_links": links}));
    if let Some(n) = next_url {
        set_header(&mut r, "link", &format!("<{n}>; rel=\"next\", <{}>; rel=\"base\"", ctx.wiki_base));
    }
    r
}
