//! Tests of the Dropbox emulator itself, driven over HTTP with reqwest.

use super::{Emulator, Seed};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub struct C {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

pub async fn send(r: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = r.send().await.expect("send");
    let s = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (s, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

impl C {
    pub async fn new(e: &Emulator) -> C {
        let http = reqwest::Client::new();
        let base = e.base_url();
        let form = [("grant_type", "refresh_token"), ("refresh_token", "wharf-refresh"), ("client_id", "wharf-app")];
        let (s, v) = send(http.post(format!("{base}/oauth2/token")).form(&form)).await;
        assert_eq!(s, 200, "{v}");
        let token = v["access_token"].as_str().expect("access_token").to_string();
        C { http, base, token }
    }
    pub fn rpc(&self, route: &str, body: Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/2/{route}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body.to_string())
    }
    pub fn content(&self, route: &str, arg: Value, bytes: Vec<u8>) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/2/{route}", self.base))
            .bearer_auth(&self.token)
            .header("Dropbox-API-Arg", super::http::header_safe(&arg))
            .header("content-type", "application/octet-stream")
            .body(bytes)
    }
    pub async fn upload(&self, arg: Value, bytes: &[u8]) -> (u16, Value) {
        send(self.content("files/upload", arg, bytes.to_vec())).await
    }
    pub async fn start(&self, bytes: &[u8], close: bool) -> String {
        let (s, v) = send(self.content("files/upload_session/start", json!({"close": close}), bytes.to_vec())).await;
        assert_eq!(s, 200, "{v}");
        v["session_id"].as_str().expect("session_id").to_string()
    }
}

/// An independent implementation of the content hash, for cross-checking.
pub fn dropbox_hash(b: &[u8]) -> String {
    let mut all = vec![];
    for block in b.chunks(4 << 20) {
        all.extend_from_slice(&Sha256::digest(block));
    }
    hex::encode(Sha256::digest(&all))
}

pub fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[tokio::test]
async fn dropbox_emulator_refresh_and_expired_token() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e).await;
    let url = format!("{}/oauth2/token", c.base);
    let (s, v) = send(c.http.post(&url).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "nope"),
        ("client_id", "wharf-app"),
    ]))
    .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
    let basic = c.http.post(&url).basic_auth("wharf-app", Some("wharf-secret"));
    let (s, v) = send(basic.form(&[("grant_type", "refresh_token"), ("refresh_token", "wharf-refresh")])).await;
    assert_eq!((s, v["token_type"].as_str(), v["expires_in"].as_u64()), (200, Some("bearer"), Some(14400)), "{v}");
    let basic = c.http.post(&url).basic_auth("wharf-app", Some("wrong"));
    let (s, v) = send(basic.form(&[("grant_type", "refresh_token"), ("refresh_token", "wharf-refresh")])).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_client")));

    let (s, _) = send(c.rpc("files/list_folder", json!({"path": ""}))).await;
    assert_eq!(s, 200);
    e.expire_tokens();
    let (s, v) = send(c.rpc("files/list_folder", json!({"path": ""}))).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"][".tag"], "expired_access_token");
    assert!(v["error_summary"].as_str().expect("summary").starts_with("expired_access_token/"));
    let bogus = C { http: c.http.clone(), base: c.base.clone(), token: "sl.nope".into() };
    let (s, v) = send(bogus.rpc("files/list_folder", json!({"path": ""}))).await;
    assert_eq!((s, v["error"][".tag"].as_str()), (401, Some("invalid_access_token")));
    let (s, _) = send(
        c.http.post(format!("{}/2/files/list_folder", c.base)).header("content-type", "application/json").body("{}"),
    )
    .await;
    assert_eq!(s, 400, "no Authorization header is an argument error");
    let c2 = C::new(&e).await;
    let (s, _) = send(c2.rpc("files/list_folder", json!({"path": ""}))).await;
    assert_eq!(s, 200);
    e.revoke_refresh_token();
    let (s, v) = send(c.http.post(&url).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "wharf-refresh"),
        ("client_id", "wharf-app"),
    ]))
    .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn dropbox_emulator_conflict_union_and_modes() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e).await;
    let p = "/Projects/V10001/Final/Contract-2026-001.pdf";
    let old = e.file(p).expect("seeded");
    let (s, v) = c.upload(json!({"path": p, "mode": "add"}), b"new content").await;
    assert_eq!(s, 409, "{v}");
    assert!(v["error_summary"].as_str().expect("summary").starts_with("path/conflict/file/"));
    assert_eq!(v["error"][".tag"], "path");
    assert_eq!(v["error"]["reason"], json!({".tag": "conflict", "conflict": {".tag": "file"}}));
    let sid = v["error"]["upload_session_id"].as_str().expect("upload_session_id").to_string();
    // The session holds the data: retry the commit as an overwrite.
    let arg =
        json!({"cursor": {"session_id": sid, "offset": 11}, "commit": {"path": p, "mode": {".tag": "overwrite"}}});
    let (s, v) = send(c.content("files/upload_session/finish", arg, vec![])).await;
    assert_eq!(s, 200, "{v}");
    let now = e.file(p).expect("file");
    assert_eq!((now.id.as_str(), now.size), (old.id.as_str(), 11));
    assert_ne!(now.rev, old.rev);
    // Identical content: nothing written, no conflict (unless strict_conflict).
    let (s, v) = c.upload(json!({"path": p}), b"new content").await;
    assert_eq!((s, v["rev"].as_str()), (200, Some(now.rev.as_str())));
    let (s, _) = c.upload(json!({"path": p, "strict_conflict": true}), b"new content").await;
    assert_eq!(s, 409);
    let (s, v) = c.upload(json!({"path": p, "autorename": true}), b"third").await;
    assert_eq!((s, v["path_display"].as_str()), (200, Some("/Projects/V10001/Final/Contract-2026-001 (2).pdf")));
    // update: stale rev conflicts (autorename → conflicted copy), the current one overwrites.
    let (s, v) = c.upload(json!({"path": p, "mode": {".tag": "update", "update": old.rev}}), b"fourth").await;
    assert_eq!((s, v["error"]["reason"]["conflict"][".tag"].as_str()), (409, Some("file")));
    let (s, v) =
        c.upload(json!({"path": p, "mode": {".tag": "update", "update": old.rev}, "autorename": true}), b"x").await;
    assert_eq!((s, v["name"].as_str()), (200, Some("Contract-2026-001 (conflicted copy).pdf")));
    let (s, _) = c.upload(json!({"path": p, "mode": {".tag": "update", "update": now.rev}}), b"fifth").await;
    assert_eq!(s, 200);
    let (s, v) = c.upload(json!({"path": "/Projects/V10001/Final", "mode": "overwrite"}), b"x").await;
    assert_eq!((s, v["error"]["reason"]["conflict"][".tag"].as_str()), (409, Some("folder")));
    let (s, v) = c.upload(json!({"path": format!("{p}/under")}), b"x").await;
    assert_eq!((s, v["error"]["reason"]["conflict"][".tag"].as_str()), (409, Some("file_ancestor")));
    let (s, v) = c.upload(json!({"path": "/In/desktop.ini"}), b"x").await;
    assert_eq!((s, v["error"]["reason"][".tag"].as_str()), (409, Some("disallowed_name")));
    let (s, v) = c.upload(json!({"path": "/In//x"}), b"x").await;
    assert_eq!((s, v["error"]["reason"][".tag"].as_str()), (409, Some("malformed_path")));
}

#[tokio::test]
async fn dropbox_emulator_list_folder_paging_continue_reset() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e).await;
    let (s, v) = send(c.rpc("files/list_folder", json!({"path": "/Projects", "recursive": true, "limit": 2}))).await;
    assert_eq!((s, v["has_more"].as_bool()), (200, Some(true)), "{v}");
    let mut names: Vec<String> = vec![];
    let mut page = v;
    loop {
        for en in page["entries"].as_array().expect("entries") {
            names.push(format!("{}:{}", en[".tag"].as_str().expect("tag"), en["path_lower"].as_str().expect("path")));
        }
        if !page["has_more"].as_bool().expect("has_more") {
            break;
        }
        let (s, v) = send(c.rpc("files/list_folder/continue", json!({"cursor": page["cursor"]}))).await;
        assert_eq!(s, 200);
        page = v;
    }
    assert!(names.contains(&"file:/projects/v10001/final/contract-2026-001.pdf".to_string()), "{names:?}");
    assert!(names.contains(&"folder:/projects/v10001/final/filed".to_string()));
    assert_eq!(names.len(), 8, "{names:?}");
    let cursor = page["cursor"].clone();
    let (s, v) = send(c.rpc("files/list_folder/continue", json!({"cursor": cursor}))).await;
    assert_eq!((s, v["entries"].as_array().map(Vec::len)), (200, Some(0)));
    e.put_file("/Projects/V10001/Final/New.pdf", b"new");
    e.put_file("/Elsewhere/x.txt", b"not in scope");
    assert!(e.remove("/Projects/V10001/Drafts/Contract-2026-001-draft.docx"));
    let (s, v) = send(c.rpc("files/list_folder/continue", json!({"cursor": cursor}))).await;
    assert_eq!(s, 200);
    let got: Vec<(String, String)> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|x| (x[".tag"].as_str().unwrap_or("").to_string(), x["path_display"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("file".into(), "/Projects/V10001/Final/New.pdf".into()),
            ("deleted".into(), "/Projects/V10001/Drafts/Contract-2026-001-draft.docx".into())
        ]
    );
    let (s, _) = send(c.rpc("files/list_folder/continue", json!({"cursor": "garbage"}))).await;
    assert_eq!(s, 400);
    let forged = format!("AAH{}", hex::encode(r#"{"e":1,"p":"","r":true,"d":false,"s":0,"l":0}"#));
    let (s, _) = send(c.rpc("files/list_folder/continue", json!({"cursor": forged}))).await;
    assert_eq!(s, 400);
    e.reset_cursors();
    let (s, v) = send(c.rpc("files/list_folder/continue", json!({"cursor": v["cursor"]}))).await;
    assert_eq!((s, v["error"][".tag"].as_str()), (409, Some("reset")));
    let (s, v) = send(c.rpc("files/list_folder", json!({"path": "/"}))).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = send(c.rpc("files/list_folder", json!({"path": "/nope"}))).await;
    assert_eq!((s, &v["error"]), (409, &json!({".tag": "path", "path": {".tag": "not_found"}})));
    let (s, v) = send(c.rpc("files/list_folder", json!({"path": "", "limit": 0}))).await;
    assert_eq!(s, 400, "{v}");
}

#[tokio::test]
async fn dropbox_emulator_download_with_result_header_and_range() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e).await;
    let (s, _) = c.upload(json!({"path": "/In/Café ☕.txt"}), b"0123456789").await;
    assert_eq!(s, 200);
    let dl = |range: Option<&str>| {
        let mut r = c
            .http
            .post(format!("{}/2/files/download", c.base))
            .bearer_auth(&c.token)
            .header("Dropbox-API-Arg", super::http::header_safe(&json!({"path": "/in/café ☕.TXT"})));
        if let Some(x) = range {
            r = r.header("Range", x);
        }
        r.send()
    };
    let r = dl(None).await.expect("download");
    assert_eq!(r.status(), 200);
    let raw = r.headers().get("dropbox-api-result").expect("result header").to_str().expect("ascii").to_string();
    assert!(raw.contains("\\u00e9") && raw.contains("\\u2615"), "{raw}");
    let meta: Value = serde_json::from_str(&raw).expect("json");
    assert_eq!((meta["name"].as_str(), meta["size"].as_u64()), (Some("Café ☕.txt"), Some(10)));
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"0123456789");
    let r = dl(Some("bytes=2-5")).await.expect("download");
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 2-5/10");
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"2345");
    let r = dl(Some("bytes=-3")).await.expect("download");
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"789");
    let r = dl(Some("bytes=10-")).await.expect("download");
    assert_eq!(r.status(), 416);
    let (s, v) = send(
        c.http
            .post(format!("{}/2/files/download", c.base))
            .bearer_auth(&c.token)
            .header("Dropbox-API-Arg", r#"{"path":"/In"}"#),
    )
    .await;
    assert_eq!((s, &v["error"]), (409, &json!({".tag": "path", "path": {".tag": "not_file"}})));
    let url = format!("{}/2/files/download?arg={}", c.base, "%7B%22path%22%3A%22%2Fin%2Fnope%22%7D");
    let (s, v) = send(c.http.get(url).bearer_auth(&c.token)).await;
    assert_eq!((s, v["error"]["path"][".tag"].as_str()), (409, Some("not_found")));
}

#[tokio::test]
async fn dropbox_emulator_rejects_bad_headers_and_content_types() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e).await;
    let raw = reqwest::header::HeaderValue::from_bytes("{\"path\":\"/In/Café.txt\"}".as_bytes()).expect("obs-text");
    let r = c.http.post(format!("{}/2/files/upload", c.base)).bearer_auth(&c.token).header("Dropbox-API-Arg", raw);
    let (s, v) = send(r.header("content-type", "application/octet-stream").body("x")).await;
    assert_eq!(s, 400);
    assert!(v.as_str().expect("plain text").contains("Dropbox-API-Arg"), "{v}");
    assert!(e.file("/In/Café.txt").is_none());
    let r = c
        .http
        .post(format!("{}/2/files/upload", c.base))
        .bearer_auth(&c.token)
        .header("Dropbox-API-Arg", r#"{"path":"/In/a.txt"}"#);
    let (s, v) = send(r.header("content-type", "application/json").body("x")).await;
    assert_eq!(s, 400);
    assert!(v.as_str().expect("plain text").contains("Content-Type"));
    let r = c.http.post(format!("{}/2/files/upload", c.base)).bearer_auth(&c.token);
    let (s, _) = send(r.header("content-type", "application/octet-stream").body("x")).await;
    assert_eq!(s, 400, "no argument");
    let r =
        c.http.post(format!("{}/2/files/upload", c.base)).bearer_auth(&c.token).header("Dropbox-API-Arg", "{not json");
    let (s, _) = send(r.header("content-type", "application/octet-stream").body("x")).await;
    assert_eq!(s, 400);
    let r = c.http.post(format!("{}/2/files/list_folder", c.base)).bearer_auth(&c.token);
    let (s, v) = send(r.header("content-type", "text/plain").body(r#"{"path":""}"#)).await;
    assert_eq!(s, 400);
    assert!(v.as_str().expect("plain text").contains("Content-Type"));
    let (s, _) = send(c.rpc("files/list_folder", json!({"recursive": true}))).await;
    assert_eq!(s, 400, "path is required");
    let (s, _) = send(c.rpc("files/get_metadata", json!({"path": "/In", "include_deleted": "yes"}))).await;
    assert_eq!(s, 400, "wrong type");
    assert!(e.requests().iter().all(|r| r.status != 200 || r.path == "/oauth2/token"));
}

#[tokio::test]
async fn dropbox_emulator_folders_move_delete_metadata() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e).await;
    let (s, v) = send(c.rpc("files/create_folder_v2", json!({"path": "/Out/Sub"}))).await;
    assert_eq!((s, v["metadata"]["path_display"].as_str()), (200, Some("/Out/Sub")), "{v}");
    let (s, v) = send(c.rpc("files/create_folder_v2", json!({"path": "/out/sub"}))).await;
    assert_eq!((s, v["error_summary"].as_str()), (409, Some("path/conflict/folder/..")));
    let from = "/Projects/V10001/Final/Contract-2026-001.pdf";
    let id = e.file(from).expect("seeded").id;
    let to = "/Projects/V10001/Final/filed/Contract-2026-001.pdf";
    let (s, v) = send(c.rpc("files/move_v2", json!({"from_path": from, "to_path": to, "autorename": false}))).await;
    assert_eq!(
        (s, v["metadata"][".tag"].as_str(), v["metadata"]["id"].as_str()),
        (200, Some("file"), Some(id.as_str())),
        "{v}"
    );
    assert!(e.file(from).is_none() && e.file(to).is_some());
    let (s, v) = send(c.rpc("files/move_v2", json!({"from_path": from, "to_path": to}))).await;
    assert_eq!((s, &v["error"]), (409, &json!({".tag": "from_lookup", "from_lookup": {".tag": "not_found"}})));
    let annex = "/Projects/V10001/Final/Annex-A.pdf";
    let (s, v) = send(c.rpc("files/move_v2", json!({"from_path": annex, "to_path": to}))).await;
    assert_eq!(
        (s, v["error"][".tag"].as_str(), v["error"]["to"][".tag"].as_str()),
        (409, Some("to"), Some("conflict"))
    );
    let (s, v) = send(c.rpc("files/move_v2", json!({"from_path": annex, "to_path": to, "autorename": true}))).await;
    assert_eq!((s, v["metadata"]["name"].as_str()), (200, Some("Contract-2026-001 (2).pdf")));
    let (s, v) = send(c.rpc("files/move_v2", json!({"from_path": "/Projects", "to_path": "/Projects/V10001/x"}))).await;
    assert_eq!((s, v["error"][".tag"].as_str()), (409, Some("cant_move_folder_into_itself")));
    let (s, v) = send(c.rpc("files/get_metadata", json!({"path": format!("id:{}", &id[3..])}))).await;
    assert_eq!((s, v["path_lower"].as_str()), (200, Some(to.to_lowercase().as_str())));
    let (s, v) = send(c.rpc("files/delete_v2", json!({"path": "/Projects/V10001/Final"}))).await;
    assert_eq!((s, v["metadata"][".tag"].as_str()), (200, Some("folder")));
    assert!(e.list("/Projects/V10001/Final").is_empty());
    let (s, v) = send(c.rpc("files/get_metadata", json!({"path": to, "include_deleted": true}))).await;
    assert_eq!((s, v[".tag"].as_str()), (200, Some("deleted")));
    let (s, v) = send(c.rpc("files/delete_v2", json!({"path": to}))).await;
    assert_eq!((s, &v["error"]), (409, &json!({".tag": "path_lookup", "path_lookup": {".tag": "not_found"}})));
}

#[tokio::test]
async fn dropbox_emulator_faults() {
    let e = Emulator::start(Seed::default()).await;
    let c = C::new(&e).await;
    e.faults().throttle_next(1, 7);
    let r = c.rpc("files/list_folder", json!({"path": ""})).send().await.expect("send");
    assert_eq!((r.status().as_u16(), r.headers()["retry-after"].to_str().ok()), (429, Some("7")));
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["error"]["reason"][".tag"].as_str(), v["error"]["retry_after"].as_u64()),
        (Some("too_many_requests"), Some(7))
    );
    e.faults().fail_next(1, 503);
    let (s, _) = c.upload(json!({"path": "/F/a.txt"}), b"a").await;
    assert_eq!(s, 503);
    assert!(e.file("/F/a.txt").is_none());
    e.faults().drop_next(1);
    assert!(c.rpc("files/list_folder", json!({"path": ""})).send().await.is_err());
    let (s, _) = send(c.rpc("files/list_folder", json!({"path": ""}))).await;
    assert_eq!(s, 200);
    let log = e.requests();
    assert!(log.iter().any(|r| r.status == 0));
    let up = log.iter().find(|r| r.path == "/2/files/upload").expect("logged");
    assert_eq!((up.status, up.arg.as_deref()), (503, Some(r#"{"path":"/F/a.txt"}"#)));
    e.faults().set_latency(std::time::Duration::from_millis(120));
    let t = std::time::Instant::now();
    let (s, _) = send(c.rpc("files/list_folder", json!({"path": ""}))).await;
    assert!(s == 200 && t.elapsed() >= std::time::Duration::from_millis(120));
}

#[tokio::test]
async fn dropbox_emulator_access_token_ttl() {
    let e = Emulator::start(Seed { access_token_ttl_secs: 1, ..Seed::default() }).await;
    let c = C::new(&e).await;
    let (s, _) = send(c.rpc("files/get_metadata", json!({"path": "/Inbox"}))).await;
    assert_eq!(s, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, v) = send(c.rpc("files/get_metadata", json!({"path": "/Inbox"}))).await;
    assert_eq!((s, v["error"][".tag"].as_str()), (401, Some("expired_access_token")));
}
