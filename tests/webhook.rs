//! Webhook intake on the admin listener: Contentstack's `entries.unpublish` / `entries.delete`
//! events become transfers of a channel (delivered by its rules), and everything else (a wrong
//! secret, a replay, a malformed or foreign payload) gets a 4xx and changes nothing.

use crate::support::contentstack::{Emulator, Seed, WEBHOOK_SECRET_HEADER, hmac_sha256_hex};
use crate::support::{Gateway, Options, curl};
use serde_json::{Value, json};
use std::path::PathBuf;

const SECRET: &str = "s3cret-webhook-value-7f2a";
const API_KEY: &str = "blt0123456789abcdef";

/// Scenario 000 (retire): the retired entry's payload is filed for retention under its content
/// type and entry uid.
const RULES: &str = r#"
[[accept]]
name = "retired-entry"
pattern = '^(?P<stem>[A-Za-z0-9_-]+)\.(json|zip)$'
max_size = "64 MiB"
extensions = ["json", "zip"]

[metadata]
fields = { event = "{transfer.source.event}", entry_uid = "{transfer.source.entry_uid}", content_type = "{transfer.source.content_type}", locale = "{transfer.source.locale}", title = "{transfer.source.title}", sha256 = "{transfer.sha256}" }
required = ["entry_uid", "event"]

[target]
name = "demo-ecm"
destination = "Retired/{transfer.source.content_type}/{transfer.source.entry_uid}/{file.name}"
conflict = "version"
"#;

struct Hooked {
    gw: Gateway,
    _secret_dir: tempfile::TempDir,
}

impl Hooked {
    fn start(auth: &str) -> Hooked {
        Self::start_with(auth, "")
    }

    /// With `extra` config appended (a Contentstack target for `package_from`).
    fn start_with(auth: &str, extra_config: &str) -> Hooked {
        let secret_dir = tempfile::tempdir().expect("dir");
        let secret: PathBuf = secret_dir.path().join("webhook.secret");
        std::fs::write(&secret, format!("{SECRET}\n")).expect("secret");
        let extra = format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 65536\n\n\
             [[accounts]]\nname = \"cs-intake\"\ndisabled = true\n\n\
             [[webhooks]]\nname = \"cs-retired\"\ntype = \"contentstack\"\nchannel = \"retired-entries\"\n\
             account = \"cs-intake\"\nsecret_file = \"{}\"\napi_key = \"{API_KEY}\"\nmax_age_secs = 3600\n{auth}\n\n{extra_config}",
            secret.display()
        );
        let gw = Gateway::start(Options {
            extra,
            pipeline: true,
            own_rules: true,
            extra_rules: vec![("retired-entries.toml", RULES.to_string())],
            ..Options::default()
        });
        assert!(gw.admin_port > 0, "the admin listener is announced; log:\n{}", gw.log());
        Hooked { gw, _secret_dir: secret_dir }
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/webhooks/{name}", self.gw.admin_port)
    }

    /// POSTs `body` with `headers`; returns (status, reply JSON or text).
    fn post(&self, name: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        let file = self.gw.dir.path().join("webhook-body");
        std::fs::write(&file, body).expect("body");
        let data = format!("@{}", file.display());
        let url = self.url(name);
        let hs: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let mut args: Vec<&str> = vec!["-o", "-", "-w", "\n%{http_code}", "-X", "POST", "--data-binary", &data];
        for h in &hs {
            args.extend(["-H", h.as_str()]);
        }
        args.push(&url);
        let out = curl(&args);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (reply, code) = text.rsplit_once('\n').expect("status line");
        (code.trim().parse().expect("status"), reply.to_string())
    }

    fn post_json(&self, body: &Value) -> (u16, String) {
        let bytes = serde_json::to_vec(body).expect("json");
        self.post("cs-retired", &[("Content-Type", "application/json"), (WEBHOOK_SECRET_HEADER, SECRET)], &bytes)
    }

    fn transfers(&self) -> usize {
        self.gw.transfers().iter().filter(|t| t.channel == "retired-entries").count()
    }
}

fn payload(event: &str, uid: &str, triggered_at: &str) -> Value {
    json!({
        "module": "entry", "api_key": API_KEY, "event": event, "triggered_at": triggered_at,
        "data": {
            "entry": {"uid": uid, "title": "Spring campaign", "locale": "en-us", "_version": 4},
            "content_type": {"uid": "campaign"},
            "environment": {"name": "production"}
        }
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[test]
fn a_contentstack_webhook_event_becomes_a_transfer_the_rules_deliver() {
    let h = Hooked::start("");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let emu = rt.block_on(Emulator::start(Seed::default()));
    let mut fields = serde_json::Map::new();
    fields.insert("title".into(), json!("Spring campaign"));
    let uid = emu.insert_entry("campaign", fields);
    // the emulator's webhook sender: Contentstack's payload, the custom secret header
    let status = rt.block_on(emu.send_webhook(&h.url("cs-retired"), SECRET, "entries.unpublish", &uid)).expect("sent");
    assert_eq!(status, 202, "log:\n{}", h.gw.log());
    let dest = h.gw.dir.path().join(format!("ecm/Retired/campaign/{uid}"));
    h.gw.wait_for(20, "the retired entry's delivery", || {
        h.gw.transfers().iter().any(|t| t.channel == "retired-entries" && t.state == "delivered")
    });
    let files: Vec<String> = std::fs::read_dir(&dest)
        .expect("delivered folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    let body_name = format!("campaign-{uid}-en-us-entries-unpublish.json");
    assert!(files.contains(&body_name), "{files:?}");
    let body: Value = serde_json::from_slice(&std::fs::read(dest.join(&body_name)).expect("body")).expect("json");
    assert_eq!(body["data"]["entry"]["uid"], json!(uid), "the payload is the body, as sent");
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dest.join(format!("{body_name}.metadata.json"))).expect("metadata"))
            .expect("json");
    assert_eq!(meta["metadata"]["event"], "entries.unpublish", "{meta}");
    assert_eq!(meta["metadata"]["entry_uid"], json!(uid), "{meta}");
    assert_eq!(meta["metadata"]["title"], "Spring campaign", "{meta}");
    let audit = h.gw.audit();
    assert!(audit.iter().any(|e| e["event"] == "upload_completed" && e["protocol"] == "webhook"), "{audit:?}");
    // a later event of the same entry (delete after unpublish) is a new transfer
    let (code, reply) = h.post_json(&payload("delete", &uid, &now()));
    assert_eq!(code, 202, "{reply}");
    assert_eq!(h.transfers(), 2);
}

#[test]
fn webhooks_with_a_wrong_or_missing_secret_are_refused_and_change_nothing() {
    let h = Hooked::start("");
    let body = serde_json::to_vec(&payload("unpublish", "blt1a2b3c", &now())).expect("json");
    let json_type = ("Content-Type", "application/json");
    let (code, reply) = h.post("cs-retired", &[json_type], &body);
    assert_eq!(code, 401, "{reply}");
    assert!(reply.contains("header is missing"), "{reply}");
    let (code, reply) = h.post("cs-retired", &[json_type, (WEBHOOK_SECRET_HEADER, "guess")], &body);
    assert_eq!(code, 401, "{reply}");
    let almost = &SECRET[..SECRET.len() - 1];
    let (code, _) = h.post("cs-retired", &[json_type, (WEBHOOK_SECRET_HEADER, almost)], &body);
    assert_eq!(code, 401, "a prefix of the secret is not the secret");
    assert_eq!(h.transfers(), 0);
    let audit = h.gw.audit();
    assert_eq!(audit.iter().filter(|e| e["event"] == "webhook_refused").count(), 3, "{audit:?}");
    let trail = std::fs::read_to_string(h.gw.spool().join("audit.jsonl")).expect("audit");
    assert!(!trail.contains(SECRET) && !h.gw.log().contains(SECRET), "the secret never appears");
    // the right secret: taken
    let (code, reply) = h.post_json(&payload("unpublish", "blt1a2b3c", &now()));
    assert_eq!(code, 202, "{reply}");
    assert_eq!(h.transfers(), 1, "{:?}", h.gw.transfers());
}

#[test]
fn a_replayed_webhook_is_refused_with_409_and_taken_once() {
    let h = Hooked::start("");
    let event = payload("unpublish", "blt9z8y7x", &now());
    let (code, reply) = h.post_json(&event);
    assert_eq!(code, 202, "{reply}");
    let id: Value = serde_json::from_str(&reply).expect("json reply");
    assert!(id["transfer"].as_str().is_some_and(|t| t.len() == 26), "{reply}");
    let (code, reply) = h.post_json(&event);
    assert_eq!(code, 409, "{reply}");
    assert!(reply.contains("received before"), "{reply}");
    assert_eq!(h.transfers(), 1);
}

#[test]
fn malformed_or_foreign_webhook_payloads_get_a_4xx_and_change_nothing() {
    let h = Hooked::start("");
    let auth = (WEBHOOK_SECRET_HEADER, SECRET);
    let json_type = ("Content-Type", "application/json");
    type Case<'a> = (Vec<u8>, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (b"{not json".to_vec(), vec![json_type, auth], 400, "not JSON"),
        (
            serde_json::to_vec(&payload("unpublish", "blt1", &now())).expect("json"),
            vec![("Content-Type", "text/plain"), auth],
            415,
            "application/json",
        ),
        (
            serde_json::to_vec(&json!({"module": "entry", "api_key": "bltOTHERSTACK", "event": "unpublish",
                "triggered_at": now(), "data": {"entry": {"uid": "blt1"}, "content_type": {"uid": "campaign"}}}))
            .expect("json"),
            vec![json_type, auth],
            422,
            "not the configured one",
        ),
        (
            serde_json::to_vec(&payload("publish", "blt1", &now())).expect("json"),
            vec![json_type, auth],
            422,
            "not accepted here",
        ),
        (
            serde_json::to_vec(&payload("unpublish", "blt1", "2020-01-01T00:00:00Z")).expect("json"),
            vec![json_type, auth],
            422,
            "more than 3600 s ago",
        ),
        (
            serde_json::to_vec(&payload("unpublish", "../../etc/passwd", &now())).expect("json"),
            vec![json_type, auth],
            400,
            "must be uids",
        ),
        (serde_json::to_vec(&json!({"module": "entry"})).expect("json"), vec![json_type, auth], 400, "is missing"),
        (vec![b' '; 70_000], vec![json_type, auth], 413, ""),
    ];
    for (body, headers, want, says) in &cases {
        let (code, reply) = h.post("cs-retired", headers, body);
        assert_eq!(code, *want, "{says}: {reply}");
        assert!(reply.contains(says), "{want}: expected {says:?} in {reply}");
    }
    let (code, _) = h.post("no-such-hook", &[json_type, auth], b"{}");
    assert_eq!(code, 404);
    assert_eq!(h.transfers(), 0, "nothing was spooled");
}

#[test]
fn hmac_signed_webhooks_are_verified_against_the_body() {
    let h = Hooked::start("auth = \"hmac-sha256\"");
    let body = serde_json::to_vec(&payload("delete", "bltsigned1", &now())).expect("json");
    let sig = hmac_sha256_hex(SECRET.as_bytes(), &body);
    let json_type = ("Content-Type", "application/json");
    let (code, reply) = h.post("cs-retired", &[json_type, ("X-Contentstack-Signature", &sig)], &body);
    assert_eq!(code, 202, "{reply}");
    // the same signature over a changed body, or no signature: refused
    let tampered = serde_json::to_vec(&payload("delete", "bltsigned2", &now())).expect("json");
    let (code, reply) = h.post("cs-retired", &[json_type, ("X-Contentstack-Signature", &sig)], &tampered);
    assert_eq!(code, 401, "{reply}");
    let (code, _) = h.post("cs-retired", &[json_type, (WEBHOOK_SECRET_HEADER, SECRET)], &tampered);
    assert_eq!(code, 401, "in hmac mode the bare secret header is not enough");
    assert_eq!(h.transfers(), 1);
}

#[test]
fn the_admin_listener_answers_health_and_metrics() {
    let h = Hooked::start("");
    let base = format!("http://127.0.0.1:{}", h.gw.admin_port);
    let out = curl(&["-w", "\n%{http_code}", &format!("{base}/healthz")]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n\n200");
    let (code, _) = h.post_json(&payload("unpublish", "bltmetrics", &now()));
    assert_eq!(code, 202);
    h.gw.wait_for(20, "the delivery", || h.gw.transfers().iter().any(|t| t.state == "delivered"));
    let out = curl(&[&format!("{base}/metrics")]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("# TYPE wharf_transfers gauge"), "{text}");
    assert!(text.contains("wharf_transfers{state=\"delivered\"} 1"), "{text}");
}

#[test]
fn a_retired_entry_becomes_a_retention_package_with_its_assets() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let emu = rt.block_on(Emulator::start(Seed::default()));
    let token_dir = tempfile::tempdir().expect("dir");
    let token = token_dir.path().join("cs.token");
    std::fs::write(&token, format!("{}\n", emu.seed().management_tokens[0])).expect("token");
    let cs = format!(
        "[[targets]]\nname = \"cs\"\ntype = \"contentstack\"\n[targets.contentstack]\nbase_url = \"{}\"\n\
         api_key = \"{}\"\nmanagement_token_file = \"{}\"\ncontent_type = \"campaign\"\nunique_field = \"source_id\"\n\
         environments = [\"production\"]\nlocales = [\"en-us\"]\n[targets.contentstack.fields]\n\
         title = {{ type = \"text\", from = \"{{title}}\" }}\nsource_id = {{ type = \"text\", from = \"{{id}}\" }}\n",
        emu.base_url(),
        emu.seed().api_key,
        token.display()
    );
    let h = Hooked::start_with("package_from = \"cs\"", &cs);
    let hero = emu.insert_asset("hero spring.jpg", "image/jpeg", b"\xff\xd8\xff jpeg bytes of the hero");
    let gone = emu.insert_asset("old.pdf", "application/pdf", b"%PDF-1.7 old");
    let mut fields = serde_json::Map::new();
    fields.insert("title".into(), json!("Spring campaign"));
    fields.insert("hero".into(), json!({"uid": hero, "filename": "hero spring.jpg"}));
    fields.insert("downloads".into(), json!([{"uid": gone, "filename": "old.pdf"}]));
    let uid = emu.insert_entry("campaign", fields);
    emu.remove_asset(&gone);
    // the sender uses the stack's own api_key; the webhook accepts only API_KEY: make them one
    assert_eq!(emu.seed().api_key, API_KEY, "the emulator's demo stack is the configured one");
    let status = rt.block_on(emu.send_webhook(&h.url("cs-retired"), SECRET, "entries.delete", &uid)).expect("sent");
    assert_eq!(status, 202, "log:\n{}", h.gw.log());
    let name = format!("campaign-{uid}-en-us-entries-delete.zip");
    let path = h.gw.dir.path().join(format!("ecm/Retired/campaign/{uid}/{name}"));
    h.gw.wait_for(20, "the retention package delivered", || path.exists());
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).expect("zip")).expect("a zip");
    let mut read = |n: &str| {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name(n).unwrap_or_else(|_| panic!("{n} in the package")), &mut s)
            .expect("read");
        s
    };
    let entry: Value = serde_json::from_slice(&read("entry.json")).expect("json");
    assert_eq!(entry["uid"], json!(uid));
    assert_eq!(read(&format!("assets/{hero}/hero_spring.jpg")), b"\xff\xd8\xff jpeg bytes of the hero");
    let manifest: Value = serde_json::from_slice(&read("manifest.json")).expect("json");
    assert_eq!(manifest["missing"], json!([gone]), "{manifest}");
    assert_eq!(manifest["assets"][0]["size"], json!(b"\xff\xd8\xff jpeg bytes of the hero".len()), "{manifest}");
    assert!(read("webhook.json").starts_with(b"{"));
    // Contentstack down while a package is built: 503 (Contentstack retries), nothing spooled
    let before = h.transfers();
    emu.faults().fail_next(5, 503);
    let status = rt.block_on(emu.send_webhook(&h.url("cs-retired"), SECRET, "entries.unpublish", &uid)).expect("sent");
    assert_eq!(status, 503);
    assert_eq!(h.transfers(), before);
}
