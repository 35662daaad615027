//! Tests of the Confluence emulator itself, driven over HTTP with reqwest.

use super::http::base64_encode;
use super::{Emulator, Seed};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ENG: &str = "65537";

struct C {
    http: reqwest::Client,
    base: String,
    auth: String,
}

impl C {
    fn new(e: &Emulator) -> C {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let auth = format!("Basic {}", base64_encode(b"wharf@example.com:wharf-api-token"));
        C { http, base: e.base_url(), auth }
    }
    fn url(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }
    fn get(&self, p: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(p)).header("authorization", &self.auth)
    }
    fn post(&self, p: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(p)).header("authorization", &self.auth)
    }
    fn put(&self, p: &str) -> reqwest::RequestBuilder {
        self.http.put(self.url(p)).header("authorization", &self.auth)
    }
}

async fn send(r: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = r.send().await.expect("send");
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

fn code(v: &Value) -> &str {
    v["errors"][0]["code"].as_str().unwrap_or("")
}

fn page_id(e: &Emulator, title: &str) -> String {
    e.pages_in("ENG").into_iter().find(|p| p.title == title).map(|p| p.id).expect("seeded page")
}

#[tokio::test]
async fn confluence_emulator_auth_both_url_forms() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e);
    let (s, v) = send(c.get("/wiki/api/v2/spaces?keys=ENG")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["id"], ENG);
    assert!(v["_links"].get("next").is_none());
    let (s, v) = send(c.http.get(c.url("/wiki/api/v2/spaces"))).await;
    assert_eq!((s, code(&v)), (401, "UNAUTHORIZED"));
    let bad = format!("Basic {}", base64_encode(b"wharf@example.com:nope"));
    assert_eq!(send(c.http.get(c.url("/wiki/api/v2/spaces")).header("authorization", bad)).await.0, 401);
    // A 3LO token on the site form is 401; on the /ex/ form it works; Basic there is 401.
    let site_bearer = c.http.get(c.url("/wiki/api/v2/spaces")).bearer_auth("wharf-oauth-access-token");
    assert_eq!(send(site_bearer).await.0, 401);
    let ex = format!("{}/wiki/api/v2/spaces", e.oauth_base_url());
    assert_eq!(send(c.http.get(&ex).bearer_auth("wharf-oauth-access-token")).await.0, 200);
    assert_eq!(send(c.http.get(&ex).header("authorization", &c.auth)).await.0, 401);
    let other_cloud = c.url("/ex/confluence/00000000-dead/wiki/api/v2/spaces");
    assert_eq!(send(c.http.get(other_cloud).bearer_auth("wharf-oauth-access-token")).await.0, 404);
    // Expired tokens: 401 until refreshed; the refresh token rotates.
    e.faults().expire_tokens();
    assert_eq!(send(c.http.get(&ex).bearer_auth("wharf-oauth-access-token")).await.0, 401);
    let body = json!({"grant_type": "refresh_token", "client_id": "wharf-oauth-client",
                      "client_secret": "wharf-oauth-secret", "refresh_token": "wharf-oauth-refresh-token"});
    let (s, t) = send(c.http.post(c.url("/oauth/token")).json(&body)).await;
    assert_eq!(s, 200, "{t}");
    let fresh = t["access_token"].as_str().expect("token");
    assert_eq!(send(c.http.get(&ex).bearer_auth(fresh)).await.0, 200);
    assert_eq!(send(c.http.post(c.url("/oauth/token")).json(&body)).await.0, 403, "used refresh token");
    let (s, r) = send(c.http.get(c.url("/oauth/token/accessible-resources")).bearer_auth(fresh)).await;
    assert_eq!((s, r[0]["id"].as_str()), (200, Some("a1b2c3d4-0000-4000-8000-00000000c0de")));
    let log = e.requests();
    assert!(
        log.iter().any(
            |r| r.status == 401 && r.headers_of_interest.get("authorization").map(String::as_str) == Some("Bearer")
        )
    );
}

#[tokio::test]
async fn confluence_emulator_pages_create_update_and_not_found() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e);
    let ds1 = page_id(&e, "Design Spec DS-001");
    let (s, v) = send(c.get(&format!("/wiki/api/v2/pages/{ds1}?body-format=storage"))).await;
    assert_eq!(s, 200);
    assert_eq!(
        (v["title"].as_str(), v["spaceId"].as_str(), v["version"]["number"].as_u64()),
        (Some("Design Spec DS-001"), Some(ENG), Some(3))
    );
    assert!(v["body"]["storage"]["value"].as_str().expect("body").contains("Harbor"));
    assert!(v["_links"]["webui"].as_str().expect("webui").starts_with("/spaces/ENG/pages/"));
    let (_, v) = send(c.get(&format!("/wiki/api/v2/pages/{ds1}"))).await;
    assert_eq!(v["body"], json!({}));
    let restricted = e.pages_in("ENG").into_iter().find(|p| p.title == "HR Salary Review").expect("seeded").id;
    for id in [restricted.as_str(), "424242"] {
        let (s, v) = send(c.get(&format!("/wiki/api/v2/pages/{id}"))).await;
        assert_eq!(
            (s, v),
            (404, json!({"errors":[{"status":404,"code":"NOT_FOUND","title":"Not Found","detail":null}]}))
        );
    }
    assert_eq!(send(c.get("/wiki/api/v2/pages/abc")).await.0, 400);

    let body = json!({"representation": "storage", "value": "<p>hi</p>"});
    let (s, v) = send(c.post("/wiki/api/v2/pages").json(&json!({"title": "No space", "body": body}))).await;
    assert_eq!((s, code(&v)), (400, "INVALID_REQUEST_PARAMETER"));
    let (s, _) = send(c.post("/wiki/api/v2/pages").json(&json!({"spaceId": ENG, "body": body}))).await;
    assert_eq!(s, 400, "title required unless draft");
    let (s, _) = send(c.post("/wiki/api/v2/pages").json(&json!({"spaceId": 999, "title": "x", "body": body}))).await;
    assert_eq!(s, 404);
    let (s, _) =
        send(c.post("/wiki/api/v2/pages").json(&json!({"spaceId": ENG, "title": "design spec ds-001", "body": body})))
            .await;
    assert_eq!(s, 400, "duplicate title");
    let (s, v) = send(
        c.post("/wiki/api/v2/pages")
            .json(&json!({"spaceId": 65537, "status": "current", "title": "Delivered", "parentId": ds1, "body": body})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    assert_eq!((v["version"]["number"].as_u64(), v["parentId"].as_str()), (Some(1), Some(ds1.as_str())));
    let big = "x".repeat(5 * 1024 * 1024 + 1);
    let (s, _) = send(
        c.post("/wiki/api/v2/pages")
            .json(&json!({"spaceId": ENG, "title": "Big", "body": {"representation": "storage", "value": big}})),
    )
    .await;
    assert_eq!(s, 413);

    let upd = |n: u64| json!({"id": id, "status": "current", "title": "Delivered", "body": {"representation": "storage", "value": "<p>v2</p>"}, "version": {"number": n, "message": "wharf"}});
    let (s, v) = send(c.put(&format!("/wiki/api/v2/pages/{id}")).json(&upd(3))).await;
    assert_eq!((s, code(&v)), (409, "CONFLICT"));
    let (s, v) = send(c.put(&format!("/wiki/api/v2/pages/{id}")).json(&json!({"id": id, "title": "x"}))).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = send(c.put(&format!("/wiki/api/v2/pages/{id}")).json(&upd(2))).await;
    assert_eq!((s, v["version"]["number"].as_u64()), (200, Some(2)));
    let view = e.page(&id).expect("view");
    assert_eq!(
        (view.version, view.body_storage.as_str(), view.last_editor.as_str()),
        (2, "<p>v2</p>", "557058:0a1b2c3d-wharf")
    );
    // Another user edits: the version moves on and our stale update conflicts.
    assert_eq!(e.edit_page(&id, "<p>theirs</p>"), Some(3));
    assert_eq!(send(c.put(&format!("/wiki/api/v2/pages/{id}")).json(&upd(3))).await.0, 409);
}

#[tokio::test]
async fn confluence_emulator_cursor_paging() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e);
    for i in 0..5 {
        e.add_page("ENG", &format!("Extra {i}"), "<p>x</p>", &[]);
    }
    let total = e.pages_in("ENG").len() - 1; // the restricted page is not listed
    let mut next = format!("/wiki/api/v2/spaces/{ENG}/pages?limit=3&sort=-modified-date");
    let (mut seen, mut pages) = (vec![], 0);
    loop {
        let r = c.get(&next).send().await.expect("page");
        assert_eq!(r.status(), 200);
        let link = r.headers().get("link").map(|l| l.to_str().expect("ascii").to_string());
        let v: Value = r.json().await.expect("json");
        pages += 1;
        seen.extend(
            v["results"].as_array().expect("results").iter().map(|p| p["id"].as_str().expect("id").to_string()),
        );
        match v["_links"]["next"].as_str() {
            Some(n) => {
                assert!(link.expect("Link header").contains(&format!("<{n}>; rel=\"next\"")));
                next = n.to_string();
            }
            None => {
                assert!(link.is_none());
                break;
            }
        }
    }
    assert_eq!((seen.len(), pages), (total, total.div_ceil(3)));
    let first: Value =
        c.get(&format!("/wiki/api/v2/spaces/{ENG}/pages?limit=3")).send().await.expect("p").json().await.expect("j");
    let n = first["_links"]["next"].as_str().expect("next");
    let cursor = n.split("cursor=").nth(1).expect("cursor");
    for bad in [
        format!("/wiki/api/v2/spaces/65538/pages?limit=3&cursor={cursor}"),
        format!("/wiki/api/v2/spaces/{ENG}/pages?sort=title&cursor={cursor}"),
        format!("/wiki/api/v2/spaces/{ENG}/pages?cursor=bogus"),
    ] {
        let (s, v) = send(c.get(&bad)).await;
        assert_eq!((s, code(&v)), (400, "INVALID_REQUEST_PARAMETER"), "{bad}");
    }
    assert_eq!(send(c.get(&format!("/wiki/api/v2/spaces/{ENG}/pages?limit=251"))).await.0, 400);
    assert_eq!(send(c.get(&format!("/wiki/api/v2/spaces/{ENG}/pages?sort=size"))).await.0, 400);
    let (_, v) = send(c.get(&format!("/wiki/api/v2/spaces/{ENG}/pages?depth=root"))).await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(1), "only the homepage is at the root");
}

#[tokio::test]
async fn confluence_emulator_cql_search() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e);
    let search = |cql: &str| c.get("/wiki/rest/api/content/search").query(&[("cql", cql), ("expand", "space,version")]);
    let (s, v) = send(search("type=page AND space=\"ENG\" AND label=\"approved\" ORDER BY lastmodified DESC")).await;
    assert_eq!(s, 200, "{v}");
    let titles: Vec<&str> =
        v["results"].as_array().expect("results").iter().filter_map(|r| r["title"].as_str()).collect();
    assert_eq!(titles, ["Design Spec DS-001", "Runbook RB-010"], "restricted page hidden, newest first");
    assert_eq!(
        (v["results"][0]["space"]["key"].as_str(), v["results"][0]["version"]["number"].as_u64()),
        (Some("ENG"), Some(3))
    );
    let (_, v) = send(search("space.key=ENG and label in (\"draft\",\"runbook\") and title ~ \"spec\"")).await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(1));
    let (_, v) = send(search("label = approved AND lastmodified > \"2024-03-01 00:00\"")).await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(1));
    let (_, v) = send(search("label = approved AND lastmodified >= \"2024-03-04T15:30:00Z\"")).await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(1));
    let (_, v) = send(search("space = TPL OR label = runbook")).await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(3), "TPL home, the template, the runbook");
    for bad in
        ["creator = currentUser()", "type = page AND lastmodified > now(\"-1d\")", "text ~ \"x\"", "space = ENG AND"]
    {
        let (s, v) = send(search(bad)).await;
        assert_eq!((s, v["statusCode"].as_u64()), (400, Some(400)), "{bad}: {v}");
    }
    // Without expand, space/version are only expandable; paging uses a cursor relative to /wiki.
    let (_, v) = send(c.get("/wiki/rest/api/content/search").query(&[("cql", "type=page"), ("limit", "2")])).await;
    assert!(v["results"][0].get("space").is_none() && v["results"][0]["_expandable"].get("space").is_some());
    let next = v["_links"]["next"].as_str().expect("next");
    assert!(next.starts_with("/rest/api/content/search?"));
    let (s, v) = send(c.get(&format!("/wiki{next}"))).await;
    assert_eq!((s, v["start"].as_u64()), (200, Some(2)));
}

#[tokio::test]
async fn confluence_emulator_labels_and_properties() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e);
    let id = page_id(&e, "Design Spec DS-002");
    let (s, v) = send(
        c.post(&format!("/wiki/rest/api/content/{id}/label"))
            .json(&json!([{"prefix": "global", "name": "Filed-in-ECM"}])),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["results"].as_array().expect("labels").iter().any(|l| l["name"] == "filed-in-ecm"));
    assert_eq!(
        send(c.post(&format!("/wiki/rest/api/content/{id}/label")).json(&json!([{"name": "bad label"}]))).await.0,
        400
    );
    let (_, v) = send(c.get(&format!("/wiki/api/v2/pages/{id}/labels"))).await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(2));
    assert_eq!(e.page(&id).expect("page").labels, ["draft", "filed-in-ecm"]);

    let (s, v) = send(c.get(&format!("/wiki/api/v2/pages/{id}/properties?key=approval-status"))).await;
    assert_eq!((s, v["results"][0]["value"].as_str()), (200, Some("In Review")));
    let (s, p) = send(
        c.post(&format!("/wiki/api/v2/pages/{id}/properties"))
            .json(&json!({"key": "wharf-filed", "value": {"ecm_id": 42}})),
    )
    .await;
    assert_eq!((s, p["version"]["number"].as_u64()), (200, Some(1)));
    assert_eq!(
        send(c.post(&format!("/wiki/api/v2/pages/{id}/properties")).json(&json!({"key": "wharf-filed", "value": 1})))
            .await
            .0,
        409
    );
    let pid = p["id"].as_str().expect("id");
    let url = format!("/wiki/api/v2/pages/{id}/properties/{pid}");
    assert_eq!(
        send(c.put(&url).json(&json!({"key": "wharf-filed", "value": 2, "version": {"number": 1}}))).await.0,
        409
    );
    let (s, v) =
        send(c.put(&url).json(&json!({"key": "wharf-filed", "value": {"ecm_id": 43}, "version": {"number": 2}}))).await;
    assert_eq!((s, v["version"]["number"].as_u64()), (200, Some(2)));
    assert_eq!(e.page(&id).expect("page").properties["wharf-filed"], json!({"ecm_id": 43}));
}

fn file(name: &str, bytes: &[u8]) -> Part {
    Part::bytes(bytes.to_vec()).file_name(name.to_string()).mime_str("application/pdf").expect("mime")
}

#[tokio::test]
async fn confluence_emulator_attachments() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e);
    let id = page_id(&e, "Design Spec DS-002");
    let url = format!("/wiki/rest/api/content/{id}/child/attachment");
    let form = || Form::new().text("minorEdit", "true").part("file", file("report.pdf", b"%PDF v1"));
    let r = c.post(&url).multipart(form()).send().await.expect("send");
    assert_eq!((r.status().as_u16(), r.text().await.expect("text")), (403, "XSRF check failed".to_string()));
    let (s, v) = send(
        c.post(&url).header("X-Atlassian-Token", "no-check").multipart(Form::new().part("file", file("a.pdf", b"x"))),
    )
    .await;
    assert_eq!((s, v["statusCode"].as_u64()), (400, Some(400)), "minorEdit required");
    let (s, _) =
        send(c.post(&url).header("X-Atlassian-Token", "nocheck").multipart(Form::new().text("minorEdit", "true")))
            .await;
    assert_eq!(s, 400, "file required");
    let (s, v) =
        send(c.post(&url).header("X-Atlassian-Token", "nocheck").multipart(form().text("comment", "first"))).await;
    assert_eq!(s, 200, "{v}");
    let att = v["results"][0]["id"].as_str().expect("att id").to_string();
    assert_eq!(send(c.post(&url).header("X-Atlassian-Token", "nocheck").multipart(form())).await.0, 400, "duplicate");
    let second = Form::new().text("minorEdit", "false").part("file", file("report.pdf", b"%PDF version two"));
    let (s, v) = send(c.put(&url).header("X-Atlassian-Token", "nocheck").multipart(second)).await;
    assert_eq!(
        (s, v["results"][0]["version"]["number"].as_u64(), v["results"][0]["id"].as_str()),
        (200, Some(2), Some(att.as_str()))
    );
    let fresh = Form::new().text("minorEdit", "false").part("file", file("new.pdf", b"new"));
    let (s, v) = send(c.put(&url).header("X-Atlassian-Token", "nocheck").multipart(fresh)).await;
    assert_eq!((s, v["results"][0]["version"]["number"].as_u64()), (200, Some(1)), "PUT creates a missing one");
    let view = e.page(&id).expect("page");
    let a = view.attachments.iter().find(|a| a.title == "report.pdf").expect("attachment");
    assert_eq!((a.version, a.size, a.sha256.clone()), (2, 16, hex::encode(Sha256::digest(b"%PDF version two"))));

    let (s, v) = send(c.get(&format!("/wiki/api/v2/pages/{id}/attachments"))).await;
    assert_eq!((s, v["results"][0]["fileSize"].as_u64()), (200, Some(16)));
    let r = c.get(&format!("{url}/{att}/download")).send().await.expect("download");
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().expect("ascii").to_string();
    let bytes = c.http.get(&loc).send().await.expect("media").bytes().await.expect("bytes");
    assert_eq!(&bytes[..], b"%PDF version two");
    let r = c.get(&format!("{url}/{att}/download?version=1")).send().await.expect("download v1");
    let loc = r.headers()["location"].to_str().expect("ascii").to_string();
    assert_eq!(&c.http.get(&loc).send().await.expect("media").bytes().await.expect("bytes")[..], b"%PDF v1");
    assert_eq!(c.http.get(loc.replace("token=", "token=0")).send().await.expect("bad token").status(), 401);
}

#[tokio::test]
async fn confluence_emulator_faults() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e);
    e.faults().throttle_next(1, 7);
    let r = c.get("/wiki/api/v2/spaces").send().await.expect("send");
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert!(r.headers().contains_key("x-ratelimit-reset"));
    e.faults().fail_next(1, 503);
    assert_eq!(send(c.get("/wiki/api/v2/spaces")).await.0, 503);
    e.faults().drop_next(1);
    assert!(c.get("/wiki/api/v2/spaces").send().await.is_err());
    assert_eq!(send(c.get("/wiki/api/v2/spaces")).await.0, 200);
    let statuses: Vec<u16> = e.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 503, 0, 200]);
}

#[test]
fn confluence_emulator_seed_file_is_the_default() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/confluence-emulator.seed.json");
    let seed = Seed::from_file(&path).expect("seed file");
    assert_eq!(seed, Seed::default(), "regenerate with --print-default-seed");
    let mut bad = Seed::default();
    bad.spaces[0].pages[1].title = "Design Spec DS-001".into();
    assert!(bad.check().is_err());
}
