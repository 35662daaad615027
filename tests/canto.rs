//! The `canto` target against the strict Canto emulator (`support::canto`): the three-step
//! upload of a new asset and of a new version, policy expiry, uploads stuck in `Initial` or
//! ending in `Error`, token expiry mid-run, metadata through batch/edit, idempotency after a
//! crash, and secrets kept out of every reason.

use crate::support::canto::{Emulator, Seed};
use crate::support::random_file;
use std::collections::BTreeMap;
use std::sync::Arc;
use wharf::targets::canto::CantoTarget;
use wharf::targets::{Conflict, Delivery, Document, Target};

const KNOWN: &str = "a1000000000000000000000000000001";

struct Canto {
    emu: Emulator,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Canto {
    fn start() -> Canto {
        Canto::start_with(Seed::default())
    }

    fn start_with(seed: Seed) -> Canto {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let emu = rt.block_on(Emulator::start(seed));
        Canto { emu, dir: tempfile::tempdir().expect("dir"), rt }
    }

    fn target_with(&self, secret: &str, extra: &str) -> Arc<CantoTarget> {
        let file = self.dir.path().join("secret");
        std::fs::write(&file, format!("{secret}\n")).expect("secret");
        let text = format!(
            "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n\n[[targets]]\nname = \"canto\"\ntype = \"canto\"\n\
             [targets.canto]\nbase_url = \"{url}\"\noauth_url = \"{url}\"\napp_id = \"{id}\"\napp_secret_file = \"{}\"\n\
             timeout_secs = 10\nupload_status_poll_ms = 20\nupload_status_timeout_secs = 5\n\
             keywords = [\"campaign\"]\ntags = [\"region\"]\n{extra}\n[targets.canto.custom]\nmeta_region = \"{{region}}\"\n",
            file.display(),
            url = self.emu.base_url(),
            id = self.emu.seed().app_id,
        );
        let config = wharf::config::Config::parse(&self.dir.path().join("w.toml"), &text).expect("config");
        let wharf::config::TargetKind::Canto(cfg) = &config.targets[0].kind else { panic!("canto") };
        Arc::new(CantoTarget::new("canto", (**cfg).clone()).expect("target"))
    }

    fn target(&self) -> Arc<CantoTarget> {
        self.target_with(&self.emu.seed().app_secret.clone(), "")
    }

    fn doc(&self, name: &str, seed: u64, meta: &[(&str, &str)]) -> Document {
        let body = self.dir.path().join(format!("body-{seed}"));
        let sha256 = random_file(&body, 50_000 + seed as usize, seed);
        let metadata: BTreeMap<String, String> = meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Document {
            transfer_id: format!("T{seed}"),
            body,
            destination: format!("campaign/{name}"),
            sha256,
            size: 50_000 + seed,
            account: "acme".into(),
            channel: "assets".into(),
            metadata,
            conflict: Conflict::Version,
        }
    }

    fn deliver(&self, t: &CantoTarget, doc: &Document) -> Delivery {
        self.rt.block_on(t.deliver(doc))
    }

    fn calls(&self, path: &str) -> usize {
        self.emu.requests().iter().filter(|r| r.path == path).count()
    }
}

fn delivered(d: Delivery) -> wharf::targets::Receipt {
    match d {
        Delivery::Delivered(r) => r,
        other => panic!("not delivered: {other:?}"),
    }
}

#[test]
fn canto_three_step_upload_makes_a_new_asset_with_its_bytes_and_metadata() {
    let c = Canto::start();
    let t = c.target();
    let doc = c.doc("poster.jpg", 1, &[("campaign", "spring-26"), ("region", "DE")]);
    let r = delivered(c.deliver(&t, &doc));
    let a = c.emu.asset(&r.id).expect("asset in Canto");
    assert_eq!(r.path, format!("image/{}", r.id));
    assert_eq!(a.name, "poster.jpg");
    assert_eq!(a.bytes, std::fs::read(&doc.body).expect("body"), "bytes match");
    assert_eq!(a.keywords, ["spring-26"]);
    assert!(a.tags.contains(&"DE".to_string()) && a.tags.contains(&format!("wharf-sha256-{}", doc.sha256)));
    assert_eq!(a.custom["meta_region"], "DE");
    assert!(
        c.emu.requests().iter().filter(|r| r.path == "/s3-upload/").all(|r| !r.authorization),
        "no Authorization to the storage"
    );
}

#[test]
fn canto_known_asset_gets_a_new_version_once() {
    let c = Canto::start();
    let t = c.target();
    let doc = c.doc("hero-spring.jpg", 2, &[("canto_id", KNOWN), ("canto_scheme", "image")]);
    let r = delivered(c.deliver(&t, &doc));
    assert_eq!((r.id.as_str(), r.already_delivered), (KNOWN, false));
    let a = c.emu.asset(KNOWN).expect("asset");
    assert_eq!(a.version, 2);
    assert_eq!(a.bytes, std::fs::read(&doc.body).expect("body"));
    assert_eq!(c.emu.assets().len(), 4, "no new asset");
    let again = delivered(c.deliver(&t, &doc));
    assert!(again.already_delivered);
    assert_eq!(c.emu.asset(KNOWN).expect("asset").version, 2, "no second version");
}

#[test]
fn canto_unknown_asset_id_is_an_exception() {
    let c = Canto::start();
    let t = c.target();
    let doc = c.doc("x.jpg", 3, &[("canto_id", "ffff"), ("canto_scheme", "image")]);
    match c.deliver(&t, &doc) {
        Delivery::Except(m) => assert!(m.contains("ffff"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn canto_redelivery_after_a_crash_finds_the_asset_by_its_tag() {
    let c = Canto::start();
    let t = c.target();
    let doc = c.doc("flyer.pdf", 4, &[]);
    let first = delivered(c.deliver(&t, &doc));
    let second = delivered(c.deliver(&t, &doc));
    assert_eq!(first.id, second.id);
    assert!(second.already_delivered);
    assert_eq!(c.emu.assets_named("flyer.pdf").len(), 1, "one asset");
    assert_eq!(c.calls("/s3-upload/"), 1, "one upload");
}

#[test]
fn canto_expired_policy_gets_a_fresh_setting_once() {
    let c = Canto::start();
    let t = c.target();
    c.emu.faults().expire_next_posts(1);
    let r = delivered(c.deliver(&t, &c.doc("a.jpg", 5, &[])));
    assert!(c.emu.asset(&r.id).is_some());
    assert_eq!(c.calls("/api/v1/upload/setting"), 2, "a fresh setting after the expiry");
    c.emu.faults().expire_policies(true);
    match c.deliver(&t, &c.doc("b.jpg", 6, &[])) {
        Delivery::Except(m) => assert!(m.contains("expired"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(c.emu.assets_named("b.jpg").is_empty());
}

#[test]
fn canto_upload_stuck_in_initial_is_an_exception_with_the_reason() {
    let c = Canto::start();
    let t = c.target_with(&c.emu.seed().app_secret.clone(), "");
    c.emu.faults().stuck_initial(true);
    let started = std::time::Instant::now();
    match c.deliver(&t, &c.doc("slow.jpg", 7, &[])) {
        Delivery::Except(m) => assert!(m.contains("upload stuck in Initial for 5 s") && m.contains("slow.jpg"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(9));
    assert!(c.emu.assets_named("slow.jpg").is_empty());
}

#[test]
fn canto_upload_status_error_is_an_exception() {
    let c = Canto::start();
    let t = c.target();
    c.emu.faults().upload_error(true);
    match c.deliver(&t, &c.doc("bad.jpg", 8, &[])) {
        Delivery::Except(m) => assert!(m.contains("Error") && m.contains("bad.jpg"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn canto_token_expiry_mid_run_renews_and_delivers() {
    let c = Canto::start();
    let t = c.target();
    delivered(c.deliver(&t, &c.doc("one.jpg", 9, &[])));
    assert_eq!(c.emu.tokens_issued(), 1);
    c.emu.expire_tokens();
    let r = delivered(c.deliver(&t, &c.doc("two.jpg", 10, &[])));
    assert!(c.emu.asset(&r.id).is_some());
    assert_eq!(c.emu.tokens_issued(), 2, "renewed once");
    assert!(c.emu.requests().iter().any(|r| r.query.contains("grant_type=refresh_token") && r.status == 200));
}

#[test]
fn canto_5xx_is_a_retry_and_the_secret_is_never_in_a_reason() {
    let c = Canto::start();
    let t = c.target();
    c.emu.faults().fail_next(5, 503);
    let d = c.deliver(&t, &c.doc("r.jpg", 11, &[]));
    assert!(matches!(&d, Delivery::Retry(m) if m.contains("503")), "{d:?}");
    c.emu.faults().reset();
    let secret = "very-secret-app-secret-1234";
    let bad = c.target_with(secret, "");
    let d = c.deliver(&bad, &c.doc("s.jpg", 12, &[]));
    let reason = match &d {
        Delivery::Except(m) | Delivery::Retry(m) => m.clone(),
        other => panic!("{other:?}"),
    };
    assert!(reason.contains("token request refused"), "{reason}");
    assert!(!reason.contains(secret), "{reason}");
    let late = c.doc("u.jpg", 13, &[]);
    let Canto { emu, dir: _dir, rt } = c;
    let addr = emu.addr();
    drop(emu);
    // the server task is aborted, not joined: wait until the port is really closed, or the
    // token request could still reach it and be refused (an exception, not a retry)
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_err() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let d = rt.block_on(bad.deliver(&late));
    let Delivery::Retry(m) = d else { panic!("unreachable is a retry") };
    assert!(!m.contains(secret) && !m.contains("app_secret"), "{m}");
}

/// End to end through a real gateway: an agency's localised file `<asset id>_<region>.jpg`
/// uploaded over SFTP becomes a new version of that Canto asset with the region as tag and
/// custom field (scenario 003, localisation).
#[test]
fn canto_gateway_sftp_localised_file_becomes_a_new_version_with_region() {
    let c = Canto::start();
    let rules = c.dir.path().join("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    std::fs::write(
        rules.join("invoices.toml"),
        r#"
[[accept]]
name = "localised"
pattern = '^(?P<asset>[0-9a-f]{32})_(?P<region>[A-Z]{2})\.(?P<ext>jpg|png)$'
max_size = "100 MiB"

[metadata]
fields = { canto_id = "{asset}", canto_scheme = "image", region = "{region}" }

[target]
name = "canto"
destination = "{file.name}"
conflict = "version"
retry = { attempts = 3, backoff_secs = 1, max_age_secs = 600 }
"#,
    )
    .expect("rule");
    let secret = c.dir.path().join("secret");
    std::fs::write(&secret, format!("{}\n", c.emu.seed().app_secret)).expect("secret");
    let extra = format!(
        "[pipeline]\nrules = \"{}\"\nworkers = 1\n\n[[targets]]\nname = \"canto\"\ntype = \"canto\"\n[targets.canto]\n\
         base_url = \"{url}\"\noauth_url = \"{url}\"\napp_id = \"{}\"\napp_secret_file = \"{}\"\nupload_status_poll_ms = 20\n\
         tags = [\"region\"]\n[targets.canto.custom]\nmeta_region = \"{{region}}\"\n",
        rules.display(),
        c.emu.seed().app_id,
        secret.display(),
        url = c.emu.base_url()
    );
    let gw = crate::support::Gateway::start(crate::support::Options { extra, ..Default::default() });
    let local = gw.dir.path().join(format!("{KNOWN}_DE.jpg"));
    random_file(&local, 30_000, 77);
    let out = gw.sftp("acme", &format!("put {} /invoices/{KNOWN}_DE.jpg\n", local.display()));
    assert!(out.status.success(), "{}", crate::support::text(&out));
    gw.wait_for(30, "the localised file delivered", || gw.in_state("delivered").len() == 1);
    let a = c.emu.asset(KNOWN).expect("asset");
    assert_eq!(a.version, 2);
    assert_eq!(a.bytes, std::fs::read(&local).expect("local"));
    assert!(a.tags.contains(&"DE".to_string()), "{:?}", a.tags);
    assert_eq!(a.custom["meta_region"], "DE");
    assert!(!gw.log().contains(&c.emu.seed().app_secret), "the secret is not logged");
}

/// The rules of the poll tests: channel `approved` (and the harness's `invoices`) into an fs target.
fn poll_rules(dir: &std::path::Path) -> std::path::PathBuf {
    let rules = dir.join("poll-rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    for channel in ["approved", "invoices"] {
        std::fs::write(
            rules.join(format!("{channel}.toml")),
            r#"
[[accept]]
name = "any"
pattern = '^(?P<stem>[^/]+)\.(?P<ext>jpg|pdf|png)$'

[metadata]
fields = { region = "{transfer.source.region}", canto_id = "{transfer.source.id}" }

[target]
name = "ecm"
destination = "{file.name}"
conflict = "version"
"#,
        )
        .expect("rule");
    }
    rules
}

/// A gateway polling the emulator for approved images and documents every second; after
/// delivery the poll writes `meta_rights_status = filed` back (and approval on exceptions).
fn poll_gateway(c: &Canto) -> crate::support::Gateway {
    let secret = c.dir.path().join("secret");
    std::fs::write(&secret, format!("{}\n", c.emu.seed().app_secret)).expect("secret");
    let extra = format!(
        "[pipeline]\nrules = \"{}\"\nworkers = 2\n\n[[targets]]\nname = \"ecm\"\ntype = \"fs\"\nroot = \"ecm\"\n\n\
         [[targets]]\nname = \"canto\"\ntype = \"canto\"\n[targets.canto]\nbase_url = \"{url}\"\noauth_url = \"{url}\"\n\
         app_id = \"{}\"\napp_secret_file = \"{}\"\n\n\
         [[accounts]]\nname = \"canto-intake\"\ndisabled = true\n\n\
         [[polls]]\nname = \"canto-approved\"\nchannel = \"approved\"\naccount = \"canto-intake\"\nevery_secs = 1\n\
         [polls.source]\ntype = \"canto\"\ntarget = \"canto\"\nscheme = \"image|document\"\napproval = \"approved\"\n\
         [polls.write_back]\nfields = {{ meta_rights_status = \"filed\" }}\nexcepted_approval = \"restricted\"\n",
        poll_rules(c.dir.path()).display(),
        c.emu.seed().app_id,
        secret.display(),
        url = c.emu.base_url()
    );
    crate::support::Gateway::start(crate::support::Options { extra, ..Default::default() })
}

#[test]
fn canto_poll_takes_approved_assets_once_and_writes_back_once() {
    let c = Canto::start();
    let gw = poll_gateway(&c);
    gw.wait_for(30, "both approved assets delivered", || gw.in_state("delivered").len() == 2);
    let ecm = gw.dir.path().join("ecm");
    assert_eq!(
        std::fs::read(ecm.join("hero-spring.jpg")).expect("delivered file"),
        c.emu.asset(KNOWN).expect("asset").bytes,
        "the original's bytes"
    );
    assert!(ecm.join("brand-guide.pdf").exists());
    let written = |id: &str| c.emu.asset(id).expect("asset").custom.get("meta_rights_status").cloned();
    gw.wait_for(30, "write-back", || {
        written(KNOWN).as_deref() == Some("filed")
            && written("d1000000000000000000000000000001").as_deref() == Some("filed")
    });
    assert_eq!(written("a1000000000000000000000000000002"), None, "a pending asset is left alone");
    let edits = || c.emu.requests().iter().filter(|r| r.path == "/api/v1/batch/edit").count();
    let before = edits();
    let searches = || c.emu.requests().iter().filter(|r| r.path == "/api/v1/search").count();
    let s0 = searches();
    gw.wait_for(30, "two more polls", || searches() >= s0 + 2);
    assert_eq!(gw.transfers().len(), 2, "nothing taken twice");
    assert_eq!(edits(), before, "written back once");
    let t = &gw.transfers()[0];
    let fields = format!("{t:?}");
    assert!(fields.contains("canto"), "{fields}");
}

#[test]
fn canto_poll_takes_a_modified_asset_again_and_keeps_equal_timestamps() {
    let c = Canto::start();
    // two approved assets sharing one Date modified (d1 and d2 do in the seed; approve d2)
    c.emu.edit("d1000000000000000000000000000002", |a| a.approval = "Approved".into());
    let gw = poll_gateway(&c);
    gw.wait_for(30, "three approved assets delivered", || gw.in_state("delivered").len() == 3);
    gw.wait_for(30, "write-back", || {
        c.emu.asset(KNOWN).expect("asset").custom.get("meta_rights_status").map(String::as_str) == Some("filed")
    });
    // a Canto user changes the asset and resets the status: it is taken again
    c.emu.edit(KNOWN, |a| {
        a.bytes = b"retouched".to_vec();
        a.custom.remove("meta_rights_status");
    });
    gw.wait_for(30, "the modified asset taken again", || gw.in_state("delivered").len() == 4);
    assert_eq!(gw.transfers().len(), 4);
}

#[test]
fn canto_example_config_and_its_rules_pass_check_and_their_tests() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/canto.example.toml");
    for args in [vec!["check", "--config", config], vec!["rules", "test", "--config", config]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wharf")).args(&args).output().expect("wharf runs");
        assert!(out.status.success(), "{args:?}: {}", crate::support::text(&out));
    }
}
