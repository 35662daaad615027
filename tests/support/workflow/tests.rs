//! The emulator's own tests: what it accepts and what it rejects.

use super::{Emulator, Seed};
use serde_json::{Value, json};

async fn token(emu: &Emulator) -> String {
    let s = emu.seed();
    let body =
        json!({ "client_id": s.client_id, "client_secret": s.client_secret, "grant_type": "client_credentials" });
    let v: Value = reqwest::Client::new()
        .post(emu.token_url())
        .json(&body)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    v["access_token"].as_str().expect("access_token").to_string()
}

async fn call(emu: &Emulator, tok: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}/workflow/v1{path}", emu.base_url());
    let http = reqwest::Client::new();
    let mut req = if method == "POST" { http.post(url) } else { http.get(url) };
    if !tok.is_empty() {
        req = req.bearer_auth(tok);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("send");
    let status = r.status().as_u16();
    let text = r.text().await.expect("text");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn start(emu: &Emulator, tok: &str, key: &str, bk: &str) -> Value {
    let body = json!({ "processDefinitionKey": key, "businessKey": bk, "variables": [{"name": "asset", "value": bk}], "returnVariables": true });
    let (s, v) = call(emu, tok, "POST", "/process-instances", Some(body)).await;
    assert_eq!(s, 201, "{v}");
    v
}

#[tokio::test]
async fn workflow_emulator_token_takes_json_or_form_and_refuses_bad_clients() {
    let emu = Emulator::start(Seed::default()).await;
    let http = reqwest::Client::new();
    let s = emu.seed().clone();
    let form = [("grant_type", "client_credentials"), ("client_id", &s.client_id), ("client_secret", &s.client_secret)];
    let r = http.post(emu.token_url()).form(&form).send().await.expect("form");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    let bad = json!({ "client_id": s.client_id, "client_secret": "nope", "grant_type": "client_credentials" });
    let r = http.post(emu.token_url()).json(&bad).send().await.expect("bad");
    assert_eq!(r.status(), 401);
    let grant = json!({ "client_id": s.client_id, "client_secret": s.client_secret, "grant_type": "password" });
    assert_eq!(http.post(emu.token_url()).json(&grant).send().await.expect("grant").status(), 400);
    assert_eq!(http.post(emu.token_url()).body("x").send().await.expect("plain").status(), 400);
    let other = format!("{}/tenants/other/oauth2/token", emu.base_url());
    assert_eq!(http.post(other).form(&form).send().await.expect("tenant").status(), 404);
}

#[tokio::test]
async fn workflow_emulator_api_needs_a_live_bearer() {
    let emu = Emulator::start(Seed::default()).await;
    let (s, v) = call(&emu, "", "GET", "/tasks", None).await;
    assert_eq!(s, 401);
    assert!(v["fault"]["faultstring"].is_string(), "{v}");
    let tok = token(&emu).await;
    assert_eq!(call(&emu, &tok, "GET", "/tasks", None).await.0, 200);
    emu.expire_tokens();
    let (s, v) = call(&emu, &tok, "GET", "/tasks", None).await;
    assert_eq!(s, 401);
    assert_eq!(v["fault"]["faultstring"], "Access Token expired");
}

#[tokio::test]
async fn workflow_emulator_start_is_strict_about_key_and_variables() {
    let emu = Emulator::start(Seed::default()).await;
    let tok = token(&emu).await;
    let (s, v) = call(&emu, &tok, "POST", "/process-instances", Some(json!({ "businessKey": "b" }))).await;
    assert_eq!(s, 400);
    assert!(v["exception"].as_str().expect("exception").contains("processDefinitionKey"), "{v}");
    let (s, v) = call(&emu, &tok, "POST", "/process-instances", Some(json!({ "processDefinitionKey": "nope" }))).await;
    assert_eq!(s, 400);
    assert!(v["exception"].as_str().expect("exception").contains("nope"), "{v}");
    let map = json!({ "processDefinitionKey": "approval", "variables": { "asset": "a1" } });
    let (s, v) = call(&emu, &tok, "POST", "/process-instances", Some(map)).await;
    assert_eq!(s, 400, "{v}");
    let typed =
        json!({ "processDefinitionKey": "approval", "variables": [{ "name": "n", "value": "x", "type": "integer" }] });
    assert_eq!(call(&emu, &tok, "POST", "/process-instances", Some(typed)).await.0, 400);
    let plain = reqwest::Client::new()
        .post(format!("{}/workflow/v1/process-instances", emu.base_url()))
        .bearer_auth(&tok)
        .body("{\"processDefinitionKey\":\"approval\"}")
        .send()
        .await
        .expect("send");
    assert_eq!(plain.status(), 415);
    assert!(emu.instances().is_empty(), "nothing was started");
    let v = start(&emu, &tok, "approval", "asset-1").await;
    assert_eq!(v["variables"][0]["name"], "asset");
    assert_eq!(v["ended"], false);
    assert_eq!(emu.instances_started("asset-1"), 1);
}

#[tokio::test]
async fn workflow_emulator_completing_the_last_task_ends_the_instance_with_its_outcome() {
    let emu = Emulator::start(Seed::default()).await;
    let tok = token(&emu).await;
    let id = start(&emu, &tok, "approval", "asset-2").await["id"].as_str().expect("id").to_string();
    let (s, list) = call(&emu, &tok, "GET", "/tasks?processInstanceBusinessKey=asset-2", None).await;
    assert_eq!(s, 200);
    assert_eq!(list["page"]["totalElements"], 1);
    let task = list["_embedded"]["tasks"][0]["id"].as_str().expect("task").to_string();
    assert_eq!(list["_embedded"]["tasks"][0]["name"], "review");
    let (s, _) = call(&emu, &tok, "POST", &format!("/tasks/{task}"), Some(json!({ "action": "approve" }))).await;
    assert_eq!(s, 400);
    let done =
        json!({ "action": "complete", "outcome": "approved", "variables": [{ "name": "comment", "value": "ok" }] });
    assert_eq!(call(&emu, &tok, "POST", &format!("/tasks/{task}"), Some(done.clone())).await.0, 204);
    assert_eq!(call(&emu, &tok, "POST", &format!("/tasks/{task}"), Some(done)).await.0, 404, "finished task");
    let (s, v) = call(&emu, &tok, "GET", &format!("/process-instances/{id}?includeProcessVariables=true"), None).await;
    assert_eq!(s, 200);
    assert_eq!((v["ended"].as_bool(), v["completed"].as_bool()), (Some(true), Some(true)));
    let vars: Vec<(&str, &str)> = v["variables"]
        .as_array()
        .expect("vars")
        .iter()
        .map(|x| (x["name"].as_str().expect("n"), x["value"].as_str().unwrap_or("")))
        .collect();
    assert!(vars.contains(&("outcome", "approved")) && vars.contains(&("comment", "ok")), "{vars:?}");
    let (_, page) = call(&emu, &tok, "GET", &format!("/process-instances/{id}/variables?count=1"), None).await;
    assert_eq!(page["content"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn workflow_emulator_walks_tasks_in_order_and_handles_claim_delegate_resolve() {
    let emu = Emulator::start(Seed::default()).await;
    let tok = token(&emu).await;
    let id = start(&emu, &tok, "localisation", "asset-3").await["id"].as_str().expect("id").to_string();
    let first = |v: &Value| v["_embedded"]["tasks"][0]["id"].as_str().expect("task").to_string();
    let (_, list) = call(&emu, &tok, "GET", &format!("/tasks?processInstanceId={id}"), None).await;
    let t1 = first(&list);
    let post = |t: &str| format!("/tasks/{t}");
    assert_eq!(call(&emu, &tok, "POST", &post(&t1), Some(json!({"action":"claim","assignee":"a@x"}))).await.0, 200);
    assert_eq!(call(&emu, &tok, "POST", &post(&t1), Some(json!({"action":"claim","assignee":"b@x"}))).await.0, 409);
    assert_eq!(call(&emu, &tok, "POST", &post(&t1), Some(json!({"action":"resolve"}))).await.0, 400);
    assert_eq!(call(&emu, &tok, "POST", &post(&t1), Some(json!({"action":"delegate","assignee":"c@x"}))).await.0, 200);
    assert_eq!(call(&emu, &tok, "POST", &post(&t1), Some(json!({"action":"complete"}))).await.0, 400, "delegated");
    let (s, v) = call(&emu, &tok, "POST", &post(&t1), Some(json!({"action":"resolve"}))).await;
    assert_eq!((s, v["assignee"].as_str()), (200, Some("a@x")));
    assert_eq!(call(&emu, &tok, "POST", &post(&t1), Some(json!({"action":"complete"}))).await.0, 204);
    let (_, list) = call(&emu, &tok, "GET", &format!("/tasks?processInstanceId={id}"), None).await;
    assert_eq!(list["_embedded"]["tasks"][0]["name"], "check");
    assert_eq!(emu.instance(&id).map(|i| i.ended), Some(false));
    emu.complete_task(&id, "done", &[]).await.expect("second task");
    assert_eq!(emu.instance(&id).map(|i| i.ended), Some(true));
}

#[tokio::test]
async fn workflow_emulator_lists_instances_by_key_and_business_key_with_paging() {
    let emu = Emulator::start(Seed::default()).await;
    let tok = token(&emu).await;
    for bk in ["a", "b", "a"] {
        start(&emu, &tok, "approval", bk).await;
    }
    start(&emu, &tok, "rights_review", "a").await;
    let (_, v) = call(&emu, &tok, "GET", "/process-instances?processDefinitionKey=approval&businessKey=a", None).await;
    assert_eq!(v["page"]["totalElements"], 2);
    assert_eq!(v["_embedded"]["process-instances"].as_array().map(Vec::len), Some(2));
    let (_, v) = call(&emu, &tok, "GET", "/process-instances?offset=3&count=2", None).await;
    assert_eq!(
        (v["page"]["totalElements"].as_u64(), v["_embedded"]["process-instances"].as_array().map(Vec::len)),
        (Some(4), Some(1))
    );
    assert_eq!(call(&emu, &tok, "GET", "/process-instances?count=many", None).await.0, 400);
    assert_eq!(call(&emu, &tok, "GET", "/process-instances/nope", None).await.0, 404);
}

#[tokio::test]
async fn workflow_emulator_faults_throttle_fail_and_drop_after_effect() {
    let emu = Emulator::start(Seed::default()).await;
    let tok = token(&emu).await;
    emu.faults().throttle_next(1, 7);
    let r = reqwest::Client::new()
        .get(format!("{}/workflow/v1/tasks", emu.base_url()))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("7"));
    emu.faults().fail_next(1, 503);
    assert_eq!(call(&emu, &tok, "GET", "/tasks", None).await.0, 503);
    emu.faults().drop_after_next(1);
    let lost = reqwest::Client::new()
        .post(format!("{}/workflow/v1/process-instances", emu.base_url()))
        .bearer_auth(&tok)
        .json(&json!({ "processDefinitionKey": "approval", "businessKey": "dropped" }))
        .send()
        .await;
    assert!(lost.is_err(), "no reply: {lost:?}");
    assert_eq!(emu.instances_started("dropped"), 1, "but the instance exists");
}
