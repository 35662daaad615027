//! The emulator's own tests: what it accepts and what it rejects.

use super::{Emulator, Seed};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

async fn token(emu: &Emulator) -> String {
    let s = emu.seed();
    let url = format!(
        "{}/oauth/api/oauth2/token?app_id={}&app_secret={}&grant_type=client_credentials&scope=admin",
        emu.base_url(),
        s.app_id,
        s.app_secret
    );
    let v: Value = reqwest::Client::new().post(url).send().await.expect("token").json().await.expect("json");
    v["accessToken"].as_str().expect("accessToken").to_string()
}

async fn get(emu: &Emulator, tok: &str, path: &str) -> (u16, String) {
    let r = reqwest::Client::new().get(format!("{}{path}", emu.base_url())).bearer_auth(tok).send().await.expect("get");
    (r.status().as_u16(), r.text().await.expect("text"))
}

fn form(setting: &Value, file_last: bool, key: Option<&str>, id: &str, bytes: &[u8]) -> Form {
    let mut f = Form::new();
    if !file_last {
        f = f.part("file", Part::bytes(bytes.to_vec()).file_name("x.jpg"));
    }
    for k in ["acl", "AWSAccessKeyId", "Policy", "Signature", "x-amz-meta-file_name", "x-amz-meta-tag"] {
        f = f.text(k, setting[k].as_str().expect("field").to_string());
    }
    f = f.text("key", key.map_or_else(|| setting["key"].as_str().expect("key").to_string(), str::to_string));
    f = f.text("x-amz-meta-id", id.to_string());
    if file_last {
        f = f.part("file", Part::bytes(bytes.to_vec()).file_name("x.jpg"));
    }
    f
}

async fn setting(emu: &Emulator, tok: &str) -> Value {
    let (s, body) = get(emu, tok, "/api/v1/upload/setting").await;
    assert_eq!(s, 200, "{body}");
    serde_json::from_str(&body).expect("setting json")
}

async fn post(setting: &Value, f: Form) -> u16 {
    let url = setting["url"].as_str().expect("url");
    reqwest::Client::new().post(url).multipart(f).send().await.expect("post").status().as_u16()
}

#[tokio::test]
async fn canto_token_query_parameters_and_bearer_are_required() {
    let emu = Emulator::start(Seed::default()).await;
    let bad = format!(
        "{}/oauth/api/oauth2/token?app_id=wharf-demo-app&app_secret=nope&grant_type=client_credentials",
        emu.base_url()
    );
    assert_eq!(reqwest::Client::new().post(bad).send().await.expect("post").status(), 401);
    let wrong_grant = format!(
        "{}/oauth/api/oauth2/token?app_id=wharf-demo-app&app_secret=wharf-demo-app-secret&grant_type=password",
        emu.base_url()
    );
    assert_eq!(reqwest::Client::new().post(wrong_grant).send().await.expect("post").status(), 400);
    let (s, _) = get(&emu, "nonsense", "/api/v1/search").await;
    assert_eq!(s, 401);
    let tok = token(&emu).await;
    assert_eq!(get(&emu, &tok, "/api/v1/search").await.0, 200);
    emu.expire_tokens();
    assert_eq!(get(&emu, &tok, "/api/v1/search").await.0, 401);
}

#[tokio::test]
async fn canto_search_filters_pages_and_rejects_bad_parameters() {
    let emu = Emulator::start(Seed::default()).await;
    let tok = token(&emu).await;
    let (_, b) = get(
        &emu,
        &tok,
        "/api/v1/search?scheme=image|document&approval=approved&sortBy=time&sortDirection=ascending&start=0&limit=1",
    )
    .await;
    let v: Value = serde_json::from_str(&b).expect("json");
    assert_eq!(v["found"], 2, "{v}");
    assert_eq!(v["results"][0]["name"], "hero-spring.jpg");
    assert_eq!(v["results"][0]["approvalStatus"], "Approved");
    assert_eq!(v["results"][0]["additional"]["Region"], "EU");
    let (_, b) =
        get(&emu, &tok, "/api/v1/search?approval=approved&lastModified=20260111000000000..20260113000000000").await;
    let v: Value = serde_json::from_str(&b).expect("json");
    assert_eq!(v["found"], 1, "{v}");
    assert_eq!(get(&emu, &tok, "/api/v1/search?scheme=photo").await.0, 400);
    assert_eq!(get(&emu, &tok, "/api/v1/search?lastModified=2026..x").await.0, 400);
    assert_eq!(get(&emu, &tok, "/api/v1/image/a1000000000000000000000000000001").await.0, 200);
    assert_eq!(get(&emu, &tok, "/api/v1/document/a1000000000000000000000000000001").await.0, 404);
    let (s, url) = get(&emu, &tok, "/api_binary/v1/image/a1000000000000000000000000000001/directuri").await;
    assert_eq!(s, 200);
    let body = reqwest::get(url).await.expect("download").text().await.expect("text");
    assert_eq!(body, "demo content of hero-spring.jpg\n");
}

#[tokio::test]
async fn canto_upload_creates_an_asset_after_initial_and_a_version_for_a_known_id() {
    let emu = Emulator::start(Seed::default()).await;
    let tok = token(&emu).await;
    let s = setting(&emu, &tok).await;
    assert_eq!(post(&s, form(&s, true, None, "", b"new bytes")).await, 204);
    let (_, b) = get(&emu, &tok, "/api/v1/upload/status?hours=1").await;
    assert!(b.contains("\"Initial\""), "{b}");
    let (_, b) = get(&emu, &tok, "/api/v1/upload/status?hours=1").await;
    let v: Value = serde_json::from_str(&b).expect("json");
    assert_eq!(v["results"][0]["status"], "Done", "{v}");
    let id = v["results"][0]["id"].as_str().expect("id");
    assert_eq!(emu.asset(id).expect("asset").bytes, b"new bytes");
    let known = "a1000000000000000000000000000001";
    let s = setting(&emu, &tok).await;
    assert_eq!(post(&s, form(&s, true, None, known, b"v2")).await, 204);
    get(&emu, &tok, "/api/v1/upload/status?hours=1").await;
    get(&emu, &tok, "/api/v1/upload/status?hours=1").await;
    let a = emu.asset(known).expect("asset");
    assert_eq!((a.version, a.bytes.as_slice()), (2, b"v2".as_slice()));
}

#[tokio::test]
async fn canto_storage_post_rules_file_last_prefix_signature_expiry_no_auth() {
    let emu = Emulator::start(Seed::default()).await;
    let tok = token(&emu).await;
    let s = setting(&emu, &tok).await;
    assert_eq!(post(&s, form(&s, false, None, "", b"x")).await, 403, "file part first");
    assert_eq!(post(&s, form(&s, true, Some("other/user/x.jpg"), "", b"x")).await, 403, "outside the prefix");
    let mut forged = s.clone();
    forged["Signature"] = json!("AAAA");
    assert_eq!(post(&s, form(&forged, true, None, "", b"x")).await, 403, "bad signature");
    let url = s["url"].as_str().expect("url");
    let with_auth =
        reqwest::Client::new().post(url).bearer_auth(&tok).multipart(form(&s, true, None, "", b"x")).send().await;
    assert_eq!(with_auth.expect("post").status(), 400, "Authorization header");
    emu.faults().expire_policies(true);
    assert_eq!(post(&s, form(&s, true, None, "", b"x")).await, 403, "expired");
    emu.faults().expire_policies(false);
    assert_eq!(post(&s, form(&s, true, None, "", b"x")).await, 204);
    assert_eq!(emu.uploads().len(), 1, "only the good one was taken");
}

#[tokio::test]
async fn canto_upload_status_error_and_stuck_faults() {
    let emu = Emulator::start(Seed { initial_polls: 0, ..Seed::default() }).await;
    let tok = token(&emu).await;
    emu.faults().stuck_initial(true);
    let s = setting(&emu, &tok).await;
    post(&s, form(&s, true, None, "", b"x")).await;
    for _ in 0..3 {
        assert!(get(&emu, &tok, "/api/v1/upload/status").await.1.contains("Initial"));
    }
    emu.faults().stuck_initial(false);
    emu.faults().upload_error(true);
    assert!(get(&emu, &tok, "/api/v1/upload/status").await.1.contains("\"Error\""));
    assert_eq!(emu.assets().len(), 4, "no asset made");
}

#[tokio::test]
async fn canto_batch_edit_sets_keywords_tags_custom_fields_and_approval() {
    let emu = Emulator::start(Seed::default()).await;
    let tok = token(&emu).await;
    let id = "a1000000000000000000000000000002";
    let edit = |body: String| {
        reqwest::Client::new()
            .put(format!("{}/api/v1/batch/edit", emu.base_url()))
            .bearer_auth(&tok)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let body = json!({"contents":[{"id":id,"scheme":"image"}],"properties":[
        {"propertyId":"keyword","propertyValue":"k1,k2","action":"","customField":false},
        {"propertyId":"tag","propertyValue":"de","action":"add","customField":false},
        {"propertyId":"meta_region","propertyValue":"DE","action":"","customField":true},
        {"propertyId":"approvalStatus","propertyValue":"approved","action":"","customField":false}]});
    let r = edit(body.to_string()).await.expect("edit");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text"), "success");
    let a = emu.asset(id).expect("asset");
    assert_eq!(a.keywords, ["k1", "k2"]);
    assert_eq!(a.tags, ["master", "de"]);
    assert_eq!(a.custom["meta_region"], "DE");
    assert_eq!(a.approval, "Approved");
    assert_eq!(edit("not json".into()).await.expect("edit").status(), 400);
    assert_eq!(edit(json!({"contents":[]}).to_string()).await.expect("edit").status(), 400);
    let unknown = json!({"contents":[{"id":id,"scheme":"image"}],"properties":[
        {"propertyId":"meta_nope","propertyValue":"x","customField":true}]});
    assert_eq!(edit(unknown.to_string()).await.expect("edit").status(), 400);
}

#[tokio::test]
async fn canto_faults_answer_429_and_5xx_without_effect() {
    let emu = Emulator::start(Seed::default()).await;
    let tok = token(&emu).await;
    emu.faults().throttle_next(1);
    assert_eq!(get(&emu, &tok, "/api/v1/search").await.0, 429);
    emu.faults().fail_next(2, 503);
    assert_eq!(get(&emu, &tok, "/api/v1/search").await.0, 503);
    assert_eq!(get(&emu, &tok, "/api/v1/search").await.0, 503);
    assert_eq!(get(&emu, &tok, "/api/v1/search").await.0, 200);
}
