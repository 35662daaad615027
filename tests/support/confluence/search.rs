//! v1 `GET /rest/api/content/search?cql=&cursor=&limit=&expand=`: runs a parsed CQL query (see
//! `cql.rs` for the subset) over the current, visible pages and replies in the v1 content shape.

use super::Ctx;
use super::cql::{self, Order};
use super::http::{Api, Pairs, iso, json_reply, v1_error};
use super::pages::webui;
use super::paging;
use super::state::{Page, State};
use axum::response::Response;
use serde_json::{Value, json};

fn content_json(ctx: &Ctx, st: &State, p: &Page, expand: &[String]) -> Value {
    let space = st.spaces.get(&p.space_id);
    let key = space.map(|s| s.key.as_str()).unwrap_or("");
    let mut v = json!({"id": p.id.to_string(), "type": "page", "status": p.status, "title": p.title,
        "_links": {"webui": webui(key, p), "editui": format!("/pages/resumedraft.action?draftId={}", p.id),
                   "tinyui": format!("/x/{:x}", p.id), "self": format!("{}/rest/api/content/{}", ctx.wiki_base, p.id)}});
    let mut expandable = serde_json::Map::new();
    for k in [
        "container",
        "metadata",
        "restrictions",
        "history",
        "body",
        "version",
        "descendants",
        "space",
        "children",
        "ancestors",
    ] {
        expandable.insert(k.into(), json!(format!("/rest/api/content/{}/{k}", p.id)));
    }
    let has = |k: &str| expand.iter().any(|e| e == k);
    if has("space")
        && let Some(s) = space
    {
        v["space"] = json!({"id": s.id, "key": s.key, "name": s.name, "type": "global", "status": "current",
                            "_links": {"webui": format!("/spaces/{}", s.key)}});
        expandable.remove("space");
    }
    if has("version") {
        v["version"] = json!({"by": {"type": "known", "accountId": p.version.author_id}, "when": iso(&p.version.created_at),
                              "message": p.version.message, "number": p.version.number, "minorEdit": p.version.minor_edit});
        expandable.remove("version");
    }
    if has("body.storage") {
        v["body"] = json!({"storage": {"value": p.body, "representation": "storage"}});
        expandable.remove("body");
    }
    if has("metadata.labels") {
        let l: Vec<Value> = p
            .labels
            .iter()
            .map(|l| json!({"prefix": l.prefix, "name": l.name, "id": l.id.to_string(), "label": l.name}))
            .collect();
        v["metadata"] = json!({"labels": {"results": l, "start": 0, "limit": 200, "size": p.labels.len()}});
        expandable.remove("metadata");
    }
    if has("history") {
        v["history"] = json!({"latest": true, "createdBy": {"type": "known", "accountId": p.author_id},
                              "createdDate": iso(&p.created_at)});
        expandable.remove("history");
    }
    v["_expandable"] = Value::Object(expandable);
    v
}

/// The search handler.
/// Decision: like Confluence, `space` and `version` (and `body.storage`, `metadata.labels`,
/// `history`) appear only when `expand` asks for them (`expand=space,version`); otherwise they are
/// listed in `_expandable`. `limit` defaults to 25 and is clamped to 200 (25 with `body.export_view`
/// or `body.view`, which the emulator does not render); `_links.next` is relative to `_links.base`
/// (`/rest/api/content/search?…&cursor=…`, without `/wiki`), as v1 does.
pub fn search(ctx: &Ctx, q: &Pairs) -> Response {
    let Some(cql) = q.get("cql").filter(|c| !c.trim().is_empty()) else {
        return v1_error(400, "com.atlassian.confluence.api.service.exceptions.BadRequestException: cql is required");
    };
    let (expr, order): (Option<cql::Expr>, Order) = match cql::parse(cql) {
        Ok(x) => x,
        Err(e) => {
            return v1_error(
                400,
                format!(
                    "com.atlassian.confluence.api.service.exceptions.BadRequestException: Could not parse cql : {cql} ({e})"
                ),
            );
        }
    };
    let expand: Vec<String> = q.list("expand");
    let cap = if expand.iter().any(|e| e == "body.export_view" || e == "body.view") { 25 } else { 200 };
    let limit = match q.get("limit") {
        None => 25.min(cap),
        Some(l) => match l.trim().parse::<usize>() {
            Ok(n) => n.clamp(1, cap),
            Err(_) => return v1_error(400, format!("Invalid limit: {l}")),
        },
    };
    let route = "/rest/api/content/search";
    let off = match paging::offset(ctx, route, q, Api::V1) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let st = ctx.sh.st();
    let mut hits: Vec<&Page> = st
        .pages
        .values()
        .filter(|p| !p.restricted && p.status == "current" && expr.as_ref().is_none_or(|e| cql::eval(e, &st, p)))
        .collect();
    hits.sort_by(|a, b| {
        for (f, desc) in &order {
            let o = match f.as_str() {
                "lastmodified" => a.version.created_at.cmp(&b.version.created_at),
                "created" => a.created_at.cmp(&b.created_at),
                "title" => a.title.to_lowercase().cmp(&b.title.to_lowercase()),
                _ => a.id.cmp(&b.id),
            };
            let o = if *desc { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        a.id.cmp(&b.id)
    });
    let total = hits.len();
    let results: Vec<Value> = hits.iter().skip(off).take(limit).map(|p| content_json(ctx, &st, p, &expand)).collect();
    drop(st);
    let size = results.len();
    let rest = q.encode_without(&["cursor", "limit"]);
    let mut links =
        json!({"base": ctx.wiki_base, "context": "/wiki", "self": format!("{}{route}?{rest}", ctx.wiki_base)});
    if off + limit < total {
        let cursor = paging::encode(ctx, route, q, off + limit);
        links["next"] = json!(format!("{route}?{rest}&limit={limit}&cursor={cursor}"));
    }
    json_reply(
        200,
        json!({"results": results, "start": off, "limit": limit, "size": size, "totalSize": total,
               "cqlQuery": cql, "searchDuration": 7, "_links": links}),
    )
}
