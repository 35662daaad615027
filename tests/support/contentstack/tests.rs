//! Unit tests of the emulator: auth strictness, entries, assets, publish, query, rate limit, faults.

use super::{Emulator, Seed};
use serde_json::{Value, json};

const KEY: &str = "blt0123456789abcdef";
const TOKEN: &str = "cs-mgmt-token-0001";

fn client(emu: &Emulator) -> (reqwest::Client, String) {
    (reqwest::Client::new(), emu.base_url())
}

async fn send(rb: reqwest::RequestBuilder) -> (u16, Value) {
    let r = rb.header("api_key", KEY).header("authorization", TOKEN).send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn rejects_bearer_missing_key_and_unwrapped_body() {
    let emu = Emulator::start(Seed::default()).await;
    let (c, base) = client(&emu);
    let url = format!("{base}/v3/content_types/boilerplate/entries");
    let r = c.get(&url).header("api_key", KEY).header("authorization", format!("Bearer {TOKEN}")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(body["error_message"].is_string() && body["error_code"].is_number() && body["errors"].is_object());
    let r = c.get(&url).header("authorization", TOKEN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 412);
    let (s, _) = send(c.post(&url).json(&json!({"title": "x"}))).await;
    assert_eq!(s, 422);
    let (s, _) = send(c.get(format!("{url}?query=notjson"))).await;
    assert_eq!(s, 400);
    assert!(emu.entries("boilerplate").is_empty());
}

#[tokio::test]
async fn entry_update_publish_and_query() {
    let emu = Emulator::start(Seed::default()).await;
    let (c, base) = client(&emu);
    let url = format!("{base}/v3/content_types/boilerplate/entries");
    let (s, b) = send(c.post(&url).json(&json!({"entry": {"title": "T", "source_id": "S1"}}))).await;
    assert_eq!(s, 201);
    let uid = b["entry"]["uid"].as_str().unwrap().to_string();
    assert!(uid.starts_with("blt"));
    let (s, b) = send(c.put(format!("{url}/{uid}")).json(&json!({"entry": {"text": "hello"}}))).await;
    assert_eq!(s, 200);
    assert_eq!(b["entry"]["_version"], 2);
    let q = json!({"source_id": {"$in": ["S1", "S2"]}}).to_string();
    let (s, b) = send(c.get(&url).query(&[("query", q.as_str()), ("include_count", "true")])).await;
    assert_eq!(s, 200);
    assert_eq!(b["count"], 1);
    let (s, _) =
        send(c.post(format!("{url}/{uid}/publish")).json(&json!({"entry": {"environments": ["staging"]}}))).await;
    assert_eq!(s, 422, "publish without locales");
    let body =
        json!({"entry": {"environments": ["staging", "production"], "locales": ["en-us", "de-de"]}, "version": 2});
    let (s, _) = send(c.post(format!("{url}/{uid}/publish")).json(&body)).await;
    assert_eq!(s, 200);
    assert_eq!(emu.published(&uid).len(), 4);
    emu.faults().fail_publish_locale(Some("de-de"));
    let (s, b) = send(c.post(format!("{url}/{uid}/unpublish")).json(&body)).await;
    assert_eq!(s, 422);
    assert!(b["error_message"].as_str().unwrap().contains("de-de"));
    let (s, _) = send(c.get(format!("{url}?limit=101"))).await;
    assert_eq!(s, 422);
}

#[tokio::test]
async fn asset_upload_limits_and_query() {
    let seed = Seed { max_asset_bytes: 10, ..Seed::default() };
    let emu = Emulator::start(seed).await;
    let (c, base) = client(&emu);
    let form = |n: usize| {
        reqwest::multipart::Form::new()
            .part("asset[upload]", reqwest::multipart::Part::bytes(vec![b'a'; n]).file_name("a b.pdf"))
            .text("asset[title]", "a.pdf")
            .text("asset[tags]", "x,sha256:abc")
    };
    let (s, _) = send(c.post(format!("{base}/v3/assets")).multipart(form(11))).await;
    assert_eq!(s, 422);
    let (s, _) = send(c.post(format!("{base}/v3/assets")).json(&json!({"asset": {}}))).await;
    assert_eq!(s, 422);
    let (s, b) = send(c.post(format!("{base}/v3/assets")).multipart(form(5))).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(emu.assets()[0].filename, "a_b.pdf");
    let q = json!({"title": "a.pdf", "tags": "sha256:abc"}).to_string();
    let (_, b) = send(c.get(format!("{base}/v3/assets")).query(&[("query", q.as_str())])).await;
    assert_eq!(b["assets"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn rate_limit_answers_429_without_retry_after() {
    let seed = Seed { reads_per_sec: 3, ..Seed::default() };
    let emu = Emulator::start(seed).await;
    let (c, base) = client(&emu);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = c
            .get(format!("{base}/v3/assets"))
            .header("api_key", KEY)
            .header("authorization", TOKEN)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status().as_u16() == 429 {
            assert!(r.headers().get("retry-after").is_none());
            assert_eq!(r.headers()["x-ratelimit-limit"], "3");
            assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(emu.throttled(), (1, 0));
}

#[tokio::test]
async fn faults_fail_and_drop() {
    let emu = Emulator::start(Seed::default()).await;
    let (c, base) = client(&emu);
    emu.faults().fail_next(1, 503);
    let (s, _) = send(c.get(format!("{base}/v3/assets"))).await;
    assert_eq!(s, 503);
    emu.faults().drop_next(1);
    let r = c.get(format!("{base}/v3/assets")).header("api_key", KEY).header("authorization", TOKEN).send().await;
    assert!(r.is_err(), "connection dropped");
    let (s, _) = send(c.get(format!("{base}/v3/assets"))).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn webhook_sends_payload_with_secret_and_signature() {
    use std::sync::{Arc, Mutex};
    let emu = Emulator::start(Seed::default()).await;
    type Got = Option<(String, String, Vec<u8>)>;
    let got: Arc<Mutex<Got>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: axum::http::HeaderMap, body: axum::body::Bytes| async move {
            let v = |n: &str| h.get(n).and_then(|x| x.to_str().ok()).unwrap_or("").to_string();
            *g.lock().unwrap() = Some((v(super::WEBHOOK_SECRET_HEADER), v("x-contentstack-signature"), body.to_vec()));
            "ok"
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let uid = emu.insert_entry("boilerplate", json!({"title": "T"}).as_object().unwrap().clone());
    let s = emu.send_webhook(&format!("http://{addr}/hook"), "s3cret", "entries.unpublish", &uid).await.unwrap();
    assert_eq!(s, 200);
    let (secret, sig, body) = got.lock().unwrap().clone().unwrap();
    assert_eq!(secret, "s3cret");
    assert_eq!(sig, super::hmac_sha256_hex(b"s3cret", &body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["event"], "unpublish");
    assert_eq!(v["module"], "entry");
    assert_eq!(v["api_key"], KEY);
    assert_eq!(v["data"]["entry"]["uid"], uid.as_str());
    assert!(v["triggered_at"].is_string());
}

#[test]
fn hmac_matches_rfc4231_case_2() {
    assert_eq!(
        super::hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}
