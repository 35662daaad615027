//! One entry point: records the request, tells the URL forms apart, applies faults and
//! authentication, routes by path segments, adds latency, drops the connection when asked to.

use super::auth::{self, Form};
use super::http::{Api, DropConnection, Pairs, drain, dropped, error, iso, path_decode, set_header};
use super::{Ctx, RequestRecord, Shared, attachments, faults, meta, pages, search, spaces};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::Arc;

fn headers_of_interest(req: &Request) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for name in ["authorization", "x-atlassian-token", "content-type", "accept"] {
        if let Some(v) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
            let v = if name == "authorization" { v.split(' ').next().unwrap_or("").to_string() } else { v.to_string() };
            m.insert(name.to_string(), v);
        }
    }
    m
}

/// The axum fallback handler serving every path.
pub async fn entry(
    State(sh): State<Arc<Shared>>,
    ConnectInfo(kill): ConnectInfo<faults::KillSwitch>,
    req: Request,
) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers_of_interest = headers_of_interest(&req);
    let resp = dispatch(&sh, req).await;
    let latency = sh.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let is_dropped = resp.extensions().get::<DropConnection>().is_some();
    let status = if is_dropped { 0 } else { resp.status().as_u16() };
    let rec = RequestRecord { method, path, query, status, headers_of_interest };
    sh.requests.lock().unwrap_or_else(|e| e.into_inner()).push(rec);
    if is_dropped {
        kill.kill();
    }
    resp
}

/// The reply of an injected fault, in the dialect of the API addressed.
fn fault_reply(api: Api, f: faults::Fault) -> Response {
    match f {
        faults::Fault::Drop => dropped(error(api, 500, "INTERNAL_SERVER_ERROR", "dropped")),
        faults::Fault::Throttle(secs) => {
            let mut r = error(api, 429, "TOO_MANY_REQUESTS", "Rate limit exceeded");
            let reset = chrono::Utc::now() + chrono::Duration::seconds(i64::from(secs));
            set_header(&mut r, "retry-after", &secs.to_string());
            set_header(&mut r, "x-ratelimit-limit", "350");
            set_header(&mut r, "x-ratelimit-remaining", "0");
            set_header(&mut r, "x-ratelimit-reset", &iso(&reset));
            set_header(&mut r, "x-ratelimit-nearlimit", "true");
            r
        }
        faults::Fault::Fail(status) => {
            let (code, title) = match status {
                400 => ("INVALID_REQUEST_PARAMETER", "Bad Request"),
                401 => ("UNAUTHORIZED", "Unauthorized"),
                403 => ("PERMISSION_DENIED", "Forbidden"),
                404 => ("NOT_FOUND", "Not Found"),
                409 => ("CONFLICT", "Conflict"),
                502 => ("BAD_GATEWAY", "Bad Gateway"),
                503 => ("SERVICE_UNAVAILABLE", "Service Unavailable"),
                504 => ("GATEWAY_TIMEOUT", "Gateway Timeout"),
                _ => ("INTERNAL_SERVER_ERROR", "Internal Server Error"),
            };
            error(api, status, code, title)
        }
    }
}

async fn dispatch(sh: &Arc<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    // Decision: faults apply to every call except the OAuth token endpoints, so "the next n calls"
    // are the API calls a test is about, whatever token refreshing the connector does.
    if path == "/oauth/token" && req.method() == Method::POST {
        return auth::token(sh, req).await;
    }
    if path == "/oauth/token/accessible-resources" && req.method() == Method::GET {
        return auth::resources(sh, req).await;
    }
    let (form, wiki_path) = if let Some(r) = path.strip_prefix("/ex/confluence/") {
        let (cloud, tail) = r.split_once('/').unwrap_or((r, ""));
        (Form::OAuth(cloud.to_string()), format!("/{tail}"))
    } else {
        (Form::Site, path.clone())
    };
    let segs: Vec<String> = wiki_path.split('/').filter(|s| !s.is_empty()).map(path_decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let api = if segs.starts_with(&["wiki", "api", "v2"]) { Api::V2 } else { Api::V1 };
    if let Some(f) = sh.faults.take(&wiki_path) {
        drain(req.into_body()).await;
        return fault_reply(api, f);
    }
    if form == Form::Site && segs.first() == Some(&"media") {
        return attachments::media(sh, &segs[1..], req).await;
    }
    if segs.first() != Some(&"wiki") {
        drain(req.into_body()).await;
        return error(api, 404, "NOT_FOUND", "Not Found");
    }
    let account = match auth::check(sh, &form, req.headers(), api) {
        Ok(a) => a,
        Err(r) => {
            drain(req.into_body()).await;
            return r;
        }
    };
    let ctx = Ctx { sh: sh.clone(), account, wiki_base: format!("{}/wiki", sh.base_url) };
    route(&ctx, &segs[1..], req).await
}

async fn route(ctx: &Ctx, segs: &[&str], req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let q = Pairs::parse(req.uri().query().unwrap_or(""));
    match (method.as_str(), segs) {
        ("GET", ["api", "v2", "spaces"]) => spaces::spaces(ctx, &q),
        ("GET", ["api", "v2", "spaces", id]) => spaces::space(ctx, id),
        ("GET", ["api", "v2", "spaces", id, "pages"]) => pages::space_pages(ctx, id, &q),
        ("GET", ["api", "v2", "pages"]) => pages::all_pages(ctx, &q),
        ("POST", ["api", "v2", "pages"]) => pages::create(ctx, &q, req).await,
        ("GET", ["api", "v2", "pages", id]) => pages::get(ctx, id, &q),
        ("PUT", ["api", "v2", "pages", id]) => {
            if let Ok(n) = id.parse::<u64>()
                && ctx.sh.faults.take_race(n)
            {
                let other = ctx.sh.other_account_id.clone();
                let mut st = ctx.sh.st();
                if let Some(p) = st.pages.get_mut(&n) {
                    p.version = super::state::version(p.version.number + 1, &other, chrono::Utc::now(), "", false);
                }
            }
            pages::update(ctx, id, &q, req).await
        }
        ("GET", ["api", "v2", "pages", id, "labels"]) => meta::labels(ctx, id, &q),
        ("GET", ["api", "v2", "pages", id, "properties"]) => meta::properties(ctx, id, &q),
        ("POST", ["api", "v2", "pages", id, "properties"]) => meta::create_property(ctx, id, req).await,
        ("GET", ["api", "v2", "pages", id, "properties", pid]) => meta::property(ctx, id, pid),
        ("PUT", ["api", "v2", "pages", id, "properties", pid]) => meta::update_property(ctx, id, pid, req).await,
        ("DELETE", ["api", "v2", "pages", id, "properties", pid]) => meta::delete_property(ctx, id, pid),
        ("GET", ["api", "v2", "pages", id, "attachments"]) => attachments::list(ctx, id, &q),
        ("GET", ["rest", "api", "content", "search"]) => search::search(ctx, &q),
        ("GET", ["rest", "api", "content", id, "label"]) => meta::v1_labels(ctx, id),
        ("POST", ["rest", "api", "content", id, "label"]) => meta::add_labels(ctx, id, req).await,
        ("POST", ["rest", "api", "content", id, "child", "attachment"]) => {
            attachments::upload(ctx, id, false, req).await
        }
        ("PUT", ["rest", "api", "content", id, "child", "attachment"]) => attachments::upload(ctx, id, true, req).await,
        ("GET", ["rest", "api", "content", id, "child", "attachment", att, "download"]) => {
            attachments::download(ctx, id, att, &q)
        }
        ("GET", ["download", "attachments", id, name]) => attachments::download_by_name(ctx, id, name, &q),
        _ => {
            let api = if segs.starts_with(&["api", "v2"]) { Api::V2 } else { Api::V1 };
            drain(req.into_body()).await;
            error(api, 404, "NOT_FOUND", "Not Found")
        }
    }
}

/// Parses a content id from the path (`98305`); anything else is 400 (v2) like Confluence's
/// "Provided value for 'id' is not the correct type".
pub fn content_id(s: &str, api: Api) -> Result<u64, Response> {
    s.parse::<u64>().map_err(|_| {
        super::http::bad_request(
            api,
            format!("Provided value for 'id' is not the correct type. Expected type is ContentId ({s})"),
        )
    })
}
