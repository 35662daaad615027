//! Tests of the OpenText emulator itself, driven over HTTP with reqwest.

use super::{Emulator, Seed};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// reqwest is built without its `form` feature: urlencoded bodies by hand.
trait UrlForm {
    fn urlform<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self;
}

impl UrlForm for reqwest::RequestBuilder {
    fn urlform<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        let enc = super::http::percent_encode;
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", enc(k.as_ref()), enc(v.as_ref()))).collect();
        self.header("content-type", "application/x-www-form-urlencoded").body(body.join("&"))
    }
}

struct C {
    http: reqwest::Client,
    api: String,
    ticket: String,
}

impl C {
    async fn login(e: &Emulator) -> C {
        let http = reqwest::Client::new();
        let api = format!("{}/api", e.base_url());
        let r = http.post(format!("{api}/v1/auth")).urlform(&[("username", "wharf"), ("password", "wharf-pw")]);
        let v: Value = r.send().await.expect("auth").json().await.expect("json");
        let ticket = v["ticket"].as_str().expect("ticket").to_string();
        C { http, api, ticket }
    }
    fn get(&self, p: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{p}", self.api)).header("OTCSTicket", &self.ticket)
    }
    fn post(&self, p: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{p}", self.api)).header("OTCSTicket", &self.ticket)
    }
    fn put(&self, p: &str) -> reqwest::RequestBuilder {
        self.http.put(format!("{}{p}", self.api)).header("OTCSTicket", &self.ticket)
    }
    async fn doc(&self, parent: i64, name: &str, bytes: &[u8], extra: Value) -> (u16, Value) {
        let mut body = json!({"type": 144, "parent_id": parent, "name": name});
        if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(x.clone());
        }
        let form = Form::new()
            .text("body", body.to_string())
            .part("file", Part::bytes(bytes.to_vec()).file_name(name.to_string()));
        send(self.post("/v2/nodes").multipart(form)).await
    }
}

async fn send(r: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = r.send().await.expect("send");
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

async fn dl(c: &C, p: String) -> Vec<u8> {
    let r = c.get(&p).send().await.expect("dl");
    assert_eq!(r.status(), 200);
    r.bytes().await.expect("bytes").to_vec()
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[tokio::test]
async fn opentext_emulator_auth_rotation_and_expiry() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::login(&e).await;
    let api = &c.api;
    let (s, v) = send(c.http.post(format!("{api}/v1/auth")).urlform(&[("username", "wharf"), ("password", "x")])).await;
    assert_eq!((s, v["error"].as_str()), (401, Some("Invalid username/password specified")));
    let (s, v) = send(c.http.post(format!("{api}/v1/auth")).urlform(&[("password", "x")])).await;
    assert_eq!((s, v["error"].as_str()), (500, Some("Argument username is required")));
    let multipart = Form::new().text("username", "wharf").text("password", "wharf-pw");
    assert_eq!(send(c.http.post(format!("{api}/v1/auth")).multipart(multipart)).await.0, 200);

    let r = c.get("/v2/nodes/2000").send().await.expect("get");
    assert_eq!(r.status(), 200);
    let fresh = r.headers().get("otcsticket").expect("fresh ticket").to_str().expect("ascii").to_string();
    assert_ne!(fresh, c.ticket);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["results"]["data"]["properties"]["name"], "Enterprise");
    // The old ticket still works (concurrent requests), and so does the fresh one, under any header case.
    assert_eq!(c.get("/v2/nodes/2001").send().await.expect("old").status(), 200);
    let r = c.http.get(format!("{api}/v2/nodes/2001")).header("otcsticket", &fresh).send().await.expect("fresh");
    assert_eq!(r.status(), 200);
    let (s, v) = send(c.http.get(format!("{api}/v2/nodes/2001"))).await;
    assert_eq!((s, v["error"].as_str()), (401, Some("Authentication Required")));
    let (s, _) = send(c.http.get(format!("{api}/v2/nodes/2001")).header("OTCSTicket", "bogus")).await;
    assert_eq!(s, 401);
    let (s, v) = send(c.get("/v2/nodes/99999")).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("Could not get a node for 99999")));

    e.expire_tickets();
    assert_eq!(send(c.get("/v2/nodes/2000")).await.0, 401);
    let r = c.http.get(format!("{api}/v1/auth")).bearer_auth("wharf-otds-token").send().await.expect("otds");
    assert_eq!(r.status(), 200);
    let t = r.headers().get("OTCSTicket").expect("ticket header").to_str().expect("ascii").to_string();
    let (s, _) = send(c.http.get(format!("{api}/v2/nodes/2000")).header("OTCSTicket", t)).await;
    assert_eq!(s, 200);
    let r = c.http.get(format!("{api}/v1/auth")).bearer_auth("nope").send().await.expect("otds");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn opentext_emulator_ticket_ttl() {
    let seed = Seed { ticket_ttl_secs: 1, ..Seed::default() };
    let e = Emulator::start(seed).await;
    let c = C::login(&e).await;
    assert_eq!(send(c.get("/v2/nodes/2000")).await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(send(c.get("/v2/nodes/2000")).await.0, 401);
}

#[tokio::test]
async fn opentext_emulator_create_refusals() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::login(&e).await;
    let (s, v) = send(c.post("/v2/nodes").json(&json!({"type": 0, "parent_id": 2001, "name": "X"}))).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("Missing required parameter 'body'")));
    let (s, _) = send(c.post("/v2/nodes").urlform(&[("type", "0"), ("parent_id", "2001"), ("name", "X")])).await;
    assert_eq!(s, 400);
    let form = |b: Value| vec![("body".to_string(), b.to_string())];
    let (s, v) = send(c.post("/v2/nodes").urlform(&form(json!({"type": 0, "parent_id": 2001})))).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("Missing required parameter 'name'")));
    let (s, v) = send(c.post("/v2/nodes").urlform(&form(json!({"type": 4711, "parent_id": 2001, "name": "X"})))).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("Subtype 4711 not registered")));
    let (s, v) = send(c.post("/v2/nodes").urlform(&form(json!({"type": 0, "parent_id": 5, "name": "X"})))).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap_or("").starts_with("Sorry, the item you requested could not be accessed."));
    // A document without a part named exactly `file`.
    let body = json!({"type": 144, "parent_id": 2001, "name": "a.pdf"}).to_string();
    let f = Form::new().text("body", body.clone()).part("upload", Part::bytes(b"x".to_vec()).file_name("a.pdf"));
    let (s, v) = send(c.post("/v2/nodes").multipart(f)).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("Missing required parameter 'file'")));
    assert!(e.find_path("Enterprise/Invoices/a.pdf").is_none());
    // Folder ok, then the same name in another case → 500 with OpenText's text.
    let (s, v) = send(c.post("/v2/nodes").urlform(&form(json!({"type": 0, "parent_id": 2001, "name": "ACME"})))).await;
    assert_eq!(s, 200);
    let id = v["results"]["data"]["properties"]["id"].as_i64().expect("id");
    assert_eq!(e.find_path("Enterprise/Invoices/ACME").map(|n| n.id), Some(id));
    let (s, v) = send(c.post("/v2/nodes").urlform(&form(json!({"type": 0, "parent_id": 2001, "name": "acme"})))).await;
    assert_eq!((s, v["error"].as_str()), (500, Some("An item with the name 'acme' already exists.")));
    let (s, v) = c.doc(id, "big.bin", &[0u8; 10], json!({})).await;
    assert_eq!((s, v["results"]["data"]["properties"]["size"].as_u64()), (200, Some(10)));
    let (s, v) = c.doc(id, "big.bin", &[1u8; 10], json!({})).await;
    assert_eq!((s, v["error"].as_str()), (500, Some("An item with the name 'big.bin' already exists.")));
}

#[tokio::test]
async fn opentext_emulator_category_validation() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::login(&e).await;
    let cats = |v: Value| json!({"roles": {"categories": v}});
    for bad in [
        json!({"9830-2": "ACME"}),
        json!({"9830_99": "x", "9830_2": "ACME"}),
        json!({"9999_2": "x"}),
        json!({"9830_3": "123"}),
        json!({"9830_2": "ACME", "9830_4": "31.01.2024"}),
        json!({"9830_2": "ACME", "9830_6": "Paid"}),
        json!({"9830_2_1_3": "x"}),
    ] {
        let (s, v) = c.doc(2001, "inv.pdf", b"pdf", cats(bad.clone())).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (500, Some("Invalid specification. Invalid attribute entry found.")),
            "{bad}"
        );
    }
    let good = json!({"9830_2": "ACME", "9830_3": "INV-1", "9830_4": "2024-01-31T00:00:00", "9830_6": "Draft"});
    let (s, v) = c.doc(2001, "inv.pdf", b"pdf", cats(good)).await;
    assert_eq!(s, 200, "{v}");
    let id = v["results"]["data"]["properties"]["id"].as_i64().expect("id");
    let nested = json!({"9830": {"9830_2": "Globex"}});
    assert_eq!(c.doc(2001, "inv2.pdf", b"pdf", cats(nested)).await.0, 200);
    assert_eq!(e.node(id).expect("node").categories["9830_6"], "Draft");
    // Update Status, then list children with categories.
    let (s, _) = send(c.put(&format!("/v2/nodes/{id}/categories/9830")).urlform(&[("9830_6", "Approved")])).await;
    assert_eq!(s, 200);
    let (s, _) = send(c.put(&format!("/v2/nodes/{id}/categories/9830")).urlform(&[("9830_6", "Nope")])).await;
    assert_eq!(s, 500);
    let (s, v) = send(c.get("/v2/nodes/2001/nodes?fields=properties&fields=categories&where_type=144")).await;
    assert_eq!(s, 200);
    let hit = v["results"].as_array().expect("results").iter().find(|r| r["data"]["properties"]["id"] == id);
    assert_eq!(hit.expect("child")["data"]["categories"]["9830_6"], "Approved");
    let (_, v) = send(c.get(&format!("/v2/nodes/{id}/categories"))).await;
    assert_eq!(v["results"][0]["data"]["categories"]["9830_2"], "ACME");
    assert_eq!(v["results"][0]["metadata"]["categories"]["9830_2"]["required"], true);
}

#[tokio::test]
async fn opentext_emulator_versions_roundtrip() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::login(&e).await;
    let v1: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let (s, v) = c.doc(2002, "c.pdf", &v1, json!({"description": "first"})).await;
    assert_eq!(s, 200);
    let id = v["results"]["data"]["properties"]["id"].as_i64().expect("id");
    let v2 = b"second version".to_vec();
    let (s, v) =
        send(c.post(&format!("/v2/nodes/{id}/versions")).multipart(Form::new().text("description", "x"))).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("Missing required parameter 'File'")));
    let f = Form::new().text("add_major_version", "true").part("file", Part::bytes(v2.clone()).file_name("c.pdf"));
    let (s, v) = send(c.post(&format!("/v2/nodes/{id}/versions")).multipart(f)).await;
    assert_eq!((s, v["version_number"].as_u64()), (200, Some(2)));
    let (_, v) = send(c.get(&format!("/v2/nodes/{id}/versions"))).await;
    assert_eq!(v["results"].as_array().map(Vec::len), Some(2));
    assert_eq!(sha(&dl(&c, format!("/v1/nodes/{id}/versions/1/content")).await), sha(&v1));
    assert_eq!(sha(&dl(&c, format!("/v2/nodes/{id}/content")).await), sha(&v2));
    assert_eq!(sha(&dl(&c, format!("/v1/nodes/{id}/content?action=download")).await), sha(&v2));
    let n = e.node(id).expect("node");
    assert_eq!(n.versions.iter().map(|v| v.sha256.clone()).collect::<Vec<_>>(), vec![sha(&v1), sha(&v2)]);
}

#[tokio::test]
async fn opentext_emulator_large_file_upload() {
    let mut seed = Seed::default();
    seed.multipart.min_size = 10;
    seed.multipart.part_size = 100;
    seed.multipart.max_size = 1000;
    let e = Emulator::start(seed).await;
    let c = C::login(&e).await;
    let data: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
    let begin = |size: usize| {
        c.post("/v2/multipart").urlform(&[
            ("file_name", "l.bin".to_string()),
            ("file_size", size.to_string()),
            ("mime_type", "application/octet-stream".into()),
        ])
    };
    let (s, v) = send(begin(5000)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (500, Some("Invalid block size: File size must be between 10 and 1000 bytes."))
    );
    let (s, v) = send(begin(data.len())).await;
    assert_eq!((s, v["num_parts"].as_u64()), (200, Some(3)));
    let key = v["upload_key"].as_str().expect("key").to_string();
    let (s, v) = send(c.post(&format!("/v2/multipart/{key}"))).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (500, Some("Invalid status. Cannot close an empty or already closed upload."))
    );
    let part = |n: u32, b: &[u8]| {
        c.post(&format!("/v2/multipart/{key}/{n}"))
            .multipart(Form::new().part("part_content", Part::bytes(b.to_vec()).file_name("blob")))
    };
    let (s, v) = send(part(4, &data[..50])).await;
    assert_eq!((s, v["error"].as_str()), (500, Some("Invalid BlockID: Expected BlockID between 1 and 3.")));
    for (i, ch) in data.chunks(100).enumerate() {
        assert_eq!(send(part(i as u32 + 1, ch)).await.0, 200);
    }
    let (s, v) = send(part(2, &data[100..200])).await;
    assert_eq!((s, v["error"].as_str()), (500, Some("BlockID 2 has already been uploaded.")));
    assert_eq!(send(c.post(&format!("/v2/multipart/{key}"))).await.0, 200);
    let body = json!({"type": 144, "parent_id": 2001, "name": "l.bin"}).to_string();
    let (s, v) =
        send(c.post("/v2/nodes").multipart(Form::new().text("body", body).text("upload_key", key.clone()))).await;
    assert_eq!(s, 200, "{v}");
    let n = e.find_path("Invoices/l.bin").expect("doc");
    assert_eq!((n.size, n.versions[0].sha256.clone()), (250, sha(&data)));
    let (s, v) = send(c.post(&format!("/v2/multipart/{key}/1")).multipart(Form::new().text("x", "y"))).await;
    assert_eq!((s, v["error"].as_str()), (500, Some("Multipart Upload session expired.")));
    // Direct uploads are capped by max_size too.
    let (s, v) = c.doc(2001, "huge.bin", &[0u8; 1001], json!({})).await;
    assert_eq!(s, 500);
    assert!(v["error"].as_str().unwrap_or("").contains("exceeds the maximum"));
}

#[tokio::test]
async fn opentext_emulator_rm_classifications_are_validated_and_recorded() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::login(&e).await;
    let class = |v: Value| json!({"roles": {"classifications": v}});
    let (s, v) = c.doc(2001, "rm.pdf", b"%PDF", class(json!({"create_id": [], "id": [7000]}))).await;
    assert_eq!(s, 200, "{v}");
    let id = v["results"]["data"]["properties"]["id"].as_i64().expect("id");
    assert_eq!(e.node(id).expect("node").classifications, vec![7000]);
    let (s, v) = send(c.get(&format!("/v1/nodes/{id}/classifications"))).await;
    assert_eq!((s, v["data"][0]["id"].as_i64(), v["data"][0]["type"].as_i64()), (200, Some(7000), Some(199)));
    let (s, v) = c.doc(2001, "rm2.pdf", b"%PDF", class(json!({"id": [2001]}))).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("Classification 2001 does not exist or is not a Classification (subtype 199)."))
    );
    for bad in [json!([7000]), json!({"id": 7000}), json!({"id": ["7000"]}), json!({}), json!({"ids": [7000]})] {
        let (s, v) = c.doc(2001, "rm3.pdf", b"%PDF", class(bad.clone())).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("Invalid value for parameter 'classifications'")), "{bad}");
    }
    assert!(e.find_path("Invoices/rm2.pdf").is_none() && e.find_path("Invoices/rm3.pdf").is_none());
}

#[tokio::test]
async fn opentext_emulator_workspaces() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::login(&e).await;
    let create = |name: &str, bo: &str, tpl: i64, t: i64| {
        let b = json!({"template_id": tpl, "wksp_type_id": t, "type": 848, "name": name, "bo_id": bo, "bo_type": "LFA1", "ext_system_id": "SAP"});
        c.post("/v2/businessworkspaces").urlform(&[("body", b.to_string())])
    };
    let (s, _) = send(c.post("/v2/businessworkspaces").json(&json!({"template_id": 20}))).await;
    assert_eq!(s, 400);
    assert_eq!(send(create("Globex", "V2", 20, 11)).await.0, 400);
    let (s, v) = send(create("Globex", "V2", 20, 10)).await;
    assert_eq!((s, v["results"]["direct_open"].as_bool()), (200, Some(true)));
    let id = v["results"]["id"].as_i64().expect("id");
    assert!(e.find_path("Vendors/Globex/Contracts").is_some());
    let (s, v) = send(create("globex", "V3", 20, 10)).await;
    assert_eq!((s, v["error"].as_str()), (500, Some("An item with the name 'globex' already exists.")));
    assert_eq!(send(create("Initech", "V3", 20, 10)).await.0, 200);
    let (_, v) = send(c.get("/v2/businessworkspaces?where_workspace_type_id=10")).await;
    assert_eq!(v["paging"]["total_count"], 0, "not expanded_view = recently accessed only");
    let (s, v) =
        send(c.get("/v2/businessworkspaces?where_workspace_type_id=10&expanded_view=true&limit=2&sort=asc_name")).await;
    assert_eq!(s, 200);
    assert_eq!((v["paging"]["total_count"].as_u64(), v["paging"]["page_total"].as_u64()), (Some(3), Some(2)));
    assert!(v.get("collection").is_none());
    let next = v["paging"]["actions"]["next"]["href"].as_str().expect("next").to_string();
    assert!(next.starts_with("/api/v2/businessworkspaces?") && next.contains("page=2"));
    let (_, v) = send(c.get(next.trim_start_matches("/api"))).await;
    assert_eq!(v["results"][0]["data"]["properties"]["name"], "Initech");
    let (_, v) = send(c.get("/v2/businessworkspaces?expanded_view=true&where_name=contains_acm")).await;
    assert_eq!(v["results"][0]["data"]["properties"]["id"], 3000);
    let (_, v) = send(c.get(
        "/v2/businessworkspaces?expanded_view=true&where_bo_id=V10001&where_bo_type=LFA1&where_ext_system_id=SAP",
    ))
    .await;
    assert_eq!(v["paging"]["total_count"], 1);
    let (_, v) = send(c.get(&format!("/v2/businessworkspaces/{id}"))).await;
    assert_eq!(v["results"][0]["data"]["business_properties"]["business_object_id"], "V2");
    let (s, _) = send(c.get("/v2/businessworkspacetypes?bo_type=LFA1")).await;
    assert_eq!(s, 400);
    let (_, v) = send(c.get("/v2/businessworkspacetypes?expand_templates=true&expand_wksp_info=true")).await;
    assert_eq!(v["results"][0]["data"]["properties"]["templates"][0]["id"], 20);
    assert_eq!(v["results"][0]["data"]["properties"]["wksp_creation"]["location"], 2003);
}

#[tokio::test]
async fn opentext_emulator_faults() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::login(&e).await;
    e.faults().throttle_next(1, 7);
    let r = c.get("/v2/nodes/2000").send().await.expect("429");
    assert_eq!((r.status().as_u16(), r.headers().get("retry-after").and_then(|v| v.to_str().ok())), (429, Some("7")));
    e.faults().fail_next(1, 503, "busy");
    let (s, v) = send(c.get("/v2/nodes/2000")).await;
    assert_eq!((s, v["error"].as_str()), (503, Some("busy")));
    e.faults().drop_next(1);
    assert!(c.get("/v2/nodes/2000").send().await.is_err());
    assert_eq!(send(c.get("/v2/nodes/2000")).await.0, 200);
    e.faults().fail_after_create(1);
    let body = json!({"type": 144, "parent_id": 2001, "name": "crash.pdf"}).to_string();
    let f = Form::new().text("body", body).part("file", Part::bytes(b"abc".to_vec()).file_name("crash.pdf"));
    assert!(c.post("/v2/nodes").multipart(f).send().await.is_err());
    assert!(e.find_path("Invoices/crash.pdf").is_some());
    let creates: Vec<_> =
        e.requests().into_iter().filter(|r| r.method == "POST" && r.path.ends_with("/v2/nodes")).collect();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].status, 0);
    e.faults().set_latency(std::time::Duration::from_millis(200));
    let t = std::time::Instant::now();
    assert_eq!(send(c.get("/v2/nodes/2000")).await.0, 200);
    assert!(t.elapsed() >= std::time::Duration::from_millis(200));
}

#[tokio::test]
async fn opentext_emulator_children_paging_and_seed_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/otcs-emulator.seed.json");
    assert_eq!(Seed::from_file(&path).expect("seed"), Seed::default());
    let e = Emulator::start(Seed::default()).await;
    let c = C::login(&e).await;
    let (s, v) = send(c.get("/v2/nodes/2000/nodes?limit=2&page=2&where_type=-1")).await;
    assert_eq!(s, 200);
    let p = &v["collection"]["paging"];
    assert_eq!(
        (p["total_count"].as_u64(), p["page_total"].as_u64(), p["range_min"].as_u64()),
        (Some(4), Some(2), Some(3))
    );
    assert_eq!(v["results"][0]["data"]["properties"]["name"], "Templates");
    let (_, v) = send(c.get("/v2/nodes/2000/nodes?where_name=invoices")).await;
    assert_eq!(v["results"][0]["data"]["properties"]["id"], 2001);
    assert_eq!(send(c.get("/v2/nodes/2000/nodes?page=0")).await.0, 400);
}
