//! The OpenText Workflow Service client (`wharf::targets::workflow`) against the strict emulator
//! (`support::workflow`): token renewal, idempotent start by business key (also after a lost
//! reply), readable refusals, the approval loop with a reviewer completing tasks through the
//! API, strictness about variables, 429 with Retry-After, 5xx as transient, secrets kept out.

use crate::support::workflow::{Emulator, Seed};
use serde_json::json;
use std::time::{Duration, Instant};
use wharf::targets::workflow::{Error, Variable, WorkflowClient};

struct Wf {
    emu: Emulator,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Wf {
    fn start() -> Wf {
        Wf::start_with(Seed::default())
    }

    fn start_with(seed: Seed) -> Wf {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let emu = rt.block_on(Emulator::start(seed));
        Wf { emu, dir: tempfile::tempdir().expect("dir"), rt }
    }

    fn client_with(&self, secret: &str) -> WorkflowClient {
        let file = self.dir.path().join("secret");
        std::fs::write(&file, format!("{secret}\n")).expect("secret");
        let text = format!(
            "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n\n[[workflows]]\nname = \"otws\"\n\
             base_url = \"{}\"\ntenant = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"{}\"\ntimeout_secs = 10\n",
            self.emu.base_url(),
            self.emu.seed().tenant,
            self.emu.seed().client_id,
            file.display(),
        );
        let config = wharf::config::Config::parse(&self.dir.path().join("w.toml"), &text).expect("config");
        WorkflowClient::new(config.workflow("otws").expect("otws")).expect("client")
    }

    fn client(&self) -> WorkflowClient {
        self.client_with(&self.emu.seed().client_secret.clone())
    }

    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    fn statuses(&self, path_end: &str) -> Vec<u16> {
        self.emu.requests().iter().filter(|r| r.path.ends_with(path_end)).map(|r| r.status).collect()
    }
}

fn vars() -> Vec<Variable> {
    vec![Variable::string("asset_id", "a100"), Variable::string("market", "DE")]
}

#[test]
fn workflow_token_is_renewed_once_after_it_expires_and_the_call_succeeds() {
    let w = Wf::start();
    let c = w.client();
    let s = w.block(c.start("approval", "asset-a100", &vars())).expect("start");
    assert_eq!(w.emu.tokens_issued(), 1);
    w.emu.expire_tokens();
    let i = w.block(c.instance(&s.instance.id)).expect("read after expiry");
    assert_eq!(i.id, s.instance.id);
    assert_eq!(w.emu.tokens_issued(), 2, "one renewal");
    let rejected = w.emu.requests().iter().filter(|r| r.status == 401).count();
    assert_eq!(rejected, 1, "exactly one 401, then the renewed token worked");
}

#[test]
fn workflow_token_is_renewed_before_it_expires() {
    let w = Wf::start_with(Seed { token_ttl_secs: 2, ..Seed::default() });
    let c = w.client();
    w.block(c.tasks("none")).expect("first call");
    // a 2 s token is renewed a fifth of its life (400 ms) early: at 1.6 s
    std::thread::sleep(Duration::from_millis(1700));
    w.block(c.tasks("none")).expect("second call");
    assert_eq!(w.emu.tokens_issued(), 2, "renewed");
    assert!(w.emu.requests().iter().all(|r| r.status != 401), "never sent a dying token");
}

#[test]
fn workflow_start_is_idempotent_by_business_key() {
    let w = Wf::start();
    let c = w.client();
    let first = w.block(c.start("approval", "asset-a100", &vars())).expect("first");
    let second = w.block(c.start("approval", "asset-a100", &vars())).expect("second");
    assert!(!first.reused && second.reused);
    assert_eq!(first.instance.id, second.instance.id);
    assert_eq!(w.emu.instances_started("asset-a100"), 1, "one instance only");
    assert_eq!(first.instance.var("market").as_deref(), Some("DE"), "variables returned");
    let other = w.block(c.start("rights_review", "asset-a100", &vars())).expect("other definition");
    assert!(!other.reused && other.instance.id != first.instance.id, "another definition is another workflow");
}

#[test]
fn workflow_start_reuses_an_ended_instance_instead_of_starting_again() {
    let w = Wf::start();
    let c = w.client();
    let first = w.block(c.start("approval", "asset-ended", &vars())).expect("start");
    w.block(w.emu.complete_task(&first.instance.id, "approved", &[])).expect("review");
    let again = w.block(c.start("approval", "asset-ended", &vars())).expect("again");
    assert!(again.reused && again.instance.ended);
    assert_eq!(again.instance.id, first.instance.id);
    assert_eq!(w.emu.instances_started("asset-ended"), 1);
}

#[test]
fn workflow_start_after_a_lost_reply_finds_the_instance_it_made() {
    let w = Wf::start();
    let c = w.client();
    // the lookup goes through; the POST takes effect but its reply is lost
    w.emu.faults().drop_after_next_post(1);
    let err = w.block(c.start("approval", "asset-lost", &vars())).expect_err("lost reply");
    assert!(err.is_transient(), "{err}");
    assert_eq!(w.emu.instances_started("asset-lost"), 1, "the instance was made");
    let retry = w.block(c.start("approval", "asset-lost", &vars())).expect("retry");
    assert!(retry.reused);
    assert_eq!(w.emu.instances_started("asset-lost"), 1, "and not made twice");
}

#[test]
fn workflow_start_of_an_unknown_definition_is_refused_with_a_readable_reason() {
    let w = Wf::start();
    let c = w.client();
    let err = w.block(c.start("no_such_flow", "asset-x", &vars())).expect_err("refused");
    assert!(!err.is_transient());
    assert!(matches!(err, Error::Refused { status: 400, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("no_such_flow") && text.contains("No process definition found"), "{text}");
    assert!(text.contains("asset-x"), "names the business key: {text}");
    assert_eq!(w.emu.instances_started("asset-x"), 0);
}

#[test]
fn workflow_reviewer_approves_and_the_outcome_is_read_back() {
    let w = Wf::start();
    let c = w.client();
    let s = w.block(c.start("approval", "asset-ok", &vars())).expect("start");
    let tasks = w.block(c.tasks(&s.instance.id)).expect("tasks");
    assert_eq!(tasks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["review"]);
    let open = w.block(c.instance(&s.instance.id)).expect("open");
    assert!(!open.ended && open.outcome().is_none());
    w.block(w.emu.complete_task(&s.instance.id, "approved", &[("reviewer", "rita@example.com")])).expect("approve");
    let done = w.block(c.instance(&s.instance.id)).expect("ended");
    assert!(done.ended && done.completed);
    assert_eq!(done.outcome().as_deref(), Some("approved"));
    assert_eq!(done.var("reviewer").as_deref(), Some("rita@example.com"));
    assert_eq!(done.var("asset_id").as_deref(), Some("a100"), "start variables kept");
    assert!(w.block(c.tasks(&s.instance.id)).expect("tasks").is_empty(), "no open task left");
}

#[test]
fn workflow_reviewer_rejects_with_a_comment_that_is_read_back() {
    let w = Wf::start();
    let c = w.client();
    let s = w.block(c.start("approval", "asset-no", &vars())).expect("start");
    let comment = "Logo too small for the DE market; use the 2026 master";
    w.block(w.emu.complete_task(&s.instance.id, "rejected", &[("comment", comment)])).expect("reject");
    let done = w.block(c.instance(&s.instance.id)).expect("ended");
    assert!(done.ended);
    assert_eq!(done.outcome().as_deref(), Some("rejected"));
    assert_eq!(done.var("comment").as_deref(), Some(comment));
    let unknown = w.block(c.instance("no-such-instance")).expect_err("unknown");
    assert!(matches!(unknown, Error::NotFound { .. }), "{unknown:?}");
}

#[test]
fn workflow_variables_as_a_map_are_refused_and_the_client_sends_the_list_form() {
    let w = Wf::start();
    let c = w.client();
    w.block(c.start("approval", "asset-list", &vars())).expect("list form accepted");
    let posted = w.emu.requests().into_iter().find(|r| r.method == "POST" && r.path.ends_with("/process-instances"));
    let body: serde_json::Value = serde_json::from_str(&posted.expect("posted").body).expect("json body");
    assert!(body["variables"].is_array(), "{body}");
    assert_eq!(body["variables"][0], json!({ "name": "asset_id", "value": "a100", "type": "string" }));
    // the same start with a map is refused by the emulator
    let s = w.emu.seed().clone();
    let status = w.block(async {
        let http = reqwest::Client::new();
        let tok: serde_json::Value = http
            .post(w.emu.token_url())
            .json(&json!({ "client_id": s.client_id, "client_secret": s.client_secret, "grant_type": "client_credentials" }))
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("json");
        let r = http
            .post(format!("{}/workflow/v1/process-instances", w.emu.base_url()))
            .bearer_auth(tok["access_token"].as_str().expect("token"))
            .json(&json!({ "processDefinitionKey": "approval", "businessKey": "asset-map", "variables": { "asset_id": "a100" } }))
            .send()
            .await
            .expect("post");
        (r.status().as_u16(), r.text().await.expect("text"))
    });
    assert_eq!(status.0, 400, "{}", status.1);
    assert!(status.1.contains("exception"), "{}", status.1);
    assert_eq!(w.emu.instances_started("asset-map"), 0);
}

#[test]
fn workflow_429_retry_after_is_honoured_and_a_long_one_is_handed_back() {
    let w = Wf::start();
    let c = w.client();
    w.block(c.tasks("warm-up")).expect("token");
    w.emu.faults().throttle_next(1, 1);
    let t0 = Instant::now();
    let s = w.block(c.start("approval", "asset-429", &vars())).expect("start after waiting");
    assert!(t0.elapsed() >= Duration::from_secs(1), "waited the Retry-After: {:?}", t0.elapsed());
    assert!(!s.reused);
    assert_eq!(w.statuses("/process-instances").first(), Some(&429));
    w.emu.faults().throttle_next(1, 120);
    let t0 = Instant::now();
    let err = w.block(c.instance(&s.instance.id)).expect_err("too long to wait in place");
    assert!(t0.elapsed() < Duration::from_secs(10), "did not sleep 120 s");
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
}

#[test]
fn workflow_5xx_and_dropped_connections_are_transient_and_a_retry_starts_once() {
    let w = Wf::start();
    let c = w.client();
    w.block(c.tasks("warm-up")).expect("token");
    w.emu.faults().fail_next(1, 503);
    let err = w.block(c.start("approval", "asset-5xx", &vars())).expect_err("503");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("503"), "{err}");
    w.emu.faults().drop_next(1);
    let err = w.block(c.start("approval", "asset-5xx", &vars())).expect_err("dropped");
    assert!(err.is_transient(), "{err}");
    assert_eq!(w.emu.instances_started("asset-5xx"), 0, "nothing happened yet");
    let ok = w.block(c.start("approval", "asset-5xx", &vars())).expect("retry");
    assert!(!ok.reused);
    assert_eq!(w.emu.instances_started("asset-5xx"), 1);
}

#[test]
fn workflow_secrets_never_appear_in_errors_or_debug_output() {
    let w = Wf::start();
    let wrong = "wrong-secret-do-not-print-7f3a";
    let c = w.client_with(wrong);
    let health = w.block(c.healthcheck()).expect_err("healthcheck sees the bad secret");
    assert!(matches!(health, Error::Credentials(_)) && health.to_string().contains("client_id"), "{health}");
    assert!(!health.to_string().contains(wrong));
    w.block(w.client().healthcheck()).expect("a good client is healthy");
    let err = w.block(c.start("approval", "asset-s", &vars())).expect_err("bad secret");
    assert!(matches!(err, Error::Credentials(_)), "{err:?}");
    for text in [err.to_string(), format!("{err:?}"), format!("{c:?}")] {
        assert!(!text.contains(wrong), "secret leaked: {text}");
    }
    let good = w.client();
    w.block(good.tasks("warm-up")).expect("token");
    let secret = w.emu.seed().client_secret.clone();
    let secrets: Vec<String> = vec![secret.clone()];
    w.emu.faults().fail_next(1, 500);
    let e1 = w.block(good.start("approval", "asset-s2", &vars())).expect_err("500");
    w.emu.expire_tokens();
    w.emu.faults().drop_next(1);
    let e2 = w.block(good.instance("x")).expect_err("dropped");
    let e3 = w.block(good.start("nope", "asset-s3", &vars())).expect_err("refused");
    for e in [e1, e2, e3] {
        for t in [e.to_string(), format!("{e:?}")] {
            assert!(secrets.iter().all(|s| !t.contains(s.as_str())), "secret leaked: {t}");
            assert!(!t.contains("wf-at-"), "token leaked: {t}");
        }
    }
    assert!(!format!("{good:?}").contains(&secret));
}
