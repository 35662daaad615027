//! v2 spaces: `GET /spaces` (key → id) and `GET /spaces/{id}`.

use super::Ctx;
use super::http::{Api, Pairs, bad_request, iso, json_reply, not_found};
use super::paging::v2_list;
use super::router::content_id;
use super::state::Space;
use axum::response::Response;
use serde_json::{Value, json};

fn space_json(s: &Space, author: &str) -> Value {
    json!({"id": s.id.to_string(), "key": s.key, "name": s.name, "type": "global", "status": "current",
           "authorId": author, "createdAt": iso(&s.created_at), "homepageId": s.homepage_id.to_string(),
           "description": null, "icon": null, "_links": {"webui": format!("/spaces/{}", s.key)}})
}

/// `GET /spaces?keys=&ids=&sort=&cursor=&limit=` (default 25, max 250).
pub fn spaces(ctx: &Ctx, q: &Pairs) -> Response {
    let keys = q.list("keys");
    let ids = q.list("ids");
    let sort = q.get("sort").unwrap_or("id");
    if !["id", "-id", "key", "-key", "name", "-name"].contains(&sort) {
        return bad_request(Api::V2, format!("Provided value for 'sort' is not valid: {sort}"));
    }
    let st = ctx.sh.st();
    let mut list: Vec<&Space> = st
        .spaces
        .values()
        .filter(|s| keys.is_empty() || keys.contains(&s.key))
        .filter(|s| ids.is_empty() || ids.contains(&s.id.to_string()))
        .collect();
    match sort.trim_start_matches('-') {
        "key" => list.sort_by(|a, b| a.key.cmp(&b.key)),
        "name" => list.sort_by(|a, b| a.name.cmp(&b.name)),
        _ => list.sort_by_key(|s| s.id),
    }
    if sort.starts_with('-') {
        list.reverse();
    }
    let other = &ctx.sh.other_account_id;
    let items = list.into_iter().map(|s| space_json(s, other)).collect();
    drop(st);
    v2_list(ctx, "/api/v2/spaces", q, items, 25, 250)
}

/// `GET /spaces/{id}`.
pub fn space(ctx: &Ctx, id: &str) -> Response {
    let id = match content_id(id, Api::V2) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let st = ctx.sh.st();
    match st.spaces.get(&id) {
        Some(s) => json_reply(200, space_json(s, &ctx.sh.other_account_id)),
        None => not_found(Api::V2),
    }
}
