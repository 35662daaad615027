//! The `contentstack` target against the strict Contentstack emulator (`support::contentstack`):
//! entries created then updated in place, assets referenced by the entry, publish to every
//! environment × locale, the shared rate limiter under 100 deliveries, 429 backoff, a publish
//! failing for one locale, a bad token, idempotency after a crash, rich text from HTML, and two
//! flows through a real gateway (SFTP upload → published entry).

use crate::support::contentstack::{Emulator, Seed};
use crate::support::random_file;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wharf::targets::contentstack::ContentstackTarget;
use wharf::targets::{Conflict, Delivery, Document, Receipt, Target};

const CT: &str = "campaign_asset";

struct Cs {
    emu: Emulator,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

/// The `[targets.contentstack]` table (without its header) for an emulator.
fn table(emu: &Emulator, token_file: &std::path::Path, envs: &str, locales: &str, rate: u32) -> String {
    format!(
        "base_url = \"{}\"\napi_key = \"{}\"\nmanagement_token_file = \"{}\"\ncontent_type = \"{CT}\"\n\
         unique_field = \"source_id\"\nenvironments = {envs}\nlocales = {locales}\n\
         asset_folder = \"bltfolder0000000001\"\nreads_per_sec = {rate}\nwrites_per_sec = {rate}\ntimeout_secs = 10\n\
         [targets.contentstack.fields]\ntitle = {{ type = \"text\", from = \"{{title}}\" }}\n\
         source_id = {{ type = \"text\", from = \"{{document_id}}\" }}\n\
         summary = {{ type = \"text\", from = \"{{summary}}\" }}\nbody = {{ type = \"rich_text\" }}\n\
         file = {{ type = \"asset\" }}\n\
         campaign = {{ type = \"reference\", content_type = \"campaign\", from = \"{{campaign_uid}}\" }}\n",
        emu.base_url(),
        emu.seed().api_key,
        token_file.display()
    )
}

impl Cs {
    fn start() -> Cs {
        Cs::start_with(Seed::default())
    }

    fn start_with(seed: Seed) -> Cs {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let emu = rt.block_on(Emulator::start(seed));
        Cs { emu, dir: tempfile::tempdir().expect("dir"), rt }
    }

    fn token_file(&self, token: &str) -> std::path::PathBuf {
        let file = self.dir.path().join(format!("token-{}", token.len()));
        std::fs::write(&file, format!("{token}\n")).expect("token");
        file
    }

    fn target_with(&self, token: &str, envs: &str, locales: &str, rate: u32) -> Arc<ContentstackTarget> {
        let text = format!(
            "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n\n[[targets]]\nname = \"cs\"\n\
             type = \"contentstack\"\n[targets.contentstack]\n{}",
            table(&self.emu, &self.token_file(token), envs, locales, rate)
        );
        let config = wharf::config::Config::parse(&self.dir.path().join("w.toml"), &text).expect("config");
        let wharf::config::TargetKind::Contentstack(cfg) = &config.targets[0].kind else { panic!("contentstack") };
        Arc::new(ContentstackTarget::new("cs", (**cfg).clone()).expect("target"))
    }

    /// Two environments × two locales, 10/s like the emulator.
    fn target(&self) -> Arc<ContentstackTarget> {
        let token = self.emu.seed().management_tokens[0].clone();
        self.target_with(&token, "[\"staging\", \"production\"]", "[\"en-us\", \"de-de\"]", 10)
    }

    /// A document `name` with `bytes` as body, for source document `doc_id`.
    fn doc_bytes(&self, name: &str, doc_id: &str, bytes: &[u8], meta: &[(&str, &str)]) -> Document {
        let body = self.dir.path().join(format!("body-{}-{name}", bytes.len()));
        std::fs::write(&body, bytes).expect("body");
        let mut metadata: BTreeMap<String, String> =
            [("title", "Spring launch"), ("document_id", doc_id), ("campaign_uid", "bltcampaign01")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        metadata.extend(meta.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Document {
            transfer_id: format!("T-{doc_id}-{}", bytes.len()),
            body,
            destination: format!("campaigns/{name}"),
            sha256: wharf_sha(bytes),
            size: bytes.len() as u64,
            account: "acme".into(),
            channel: "approved".into(),
            metadata,
            conflict: Conflict::Version,
        }
    }

    fn doc(&self, name: &str, doc_id: &str, seed: u64) -> Document {
        let body = self.dir.path().join(format!("rand-{seed}"));
        random_file(&body, 20_000 + seed as usize, seed);
        let bytes = std::fs::read(&body).expect("body");
        self.doc_bytes(name, doc_id, &bytes, &[])
    }

    fn deliver(&self, t: &ContentstackTarget, doc: &Document) -> Delivery {
        self.rt.block_on(t.deliver(doc))
    }

    fn calls(&self, method: &str, path: &str) -> usize {
        self.emu.requests().iter().filter(|r| r.method == method && r.path == path).count()
    }
}

fn wharf_sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn delivered(d: Delivery) -> Receipt {
    match d {
        Delivery::Delivered(r) => r,
        other => panic!("not delivered: {other:?}"),
    }
}

fn excepted(d: Delivery) -> String {
    match d {
        Delivery::Except(m) => m,
        other => panic!("not an exception: {other:?}"),
    }
}

#[test]
fn contentstack_entry_is_created_then_updated_in_place_without_duplicates() {
    let c = Cs::start();
    let t = c.target();
    let first = delivered(c.deliver(&t, &c.doc("brief.pdf", "DOC-1", 1)));
    assert!(!first.already_delivered);
    assert_eq!(first.version, Some(1));
    let asset_uid = c.emu.assets()[0].uid.clone();
    let mut v2 = c.doc("brief.pdf", "DOC-1", 2);
    v2.metadata.insert("title".into(), "Spring launch (v2)".into());
    let second = delivered(c.deliver(&t, &v2));
    assert_eq!(second.id, first.id, "the same entry");
    assert_eq!(second.version, Some(2));
    let entries = c.emu.entries(CT);
    assert_eq!(entries.len(), 1, "no second entry");
    assert_eq!(entries[0].fields["title"], "Spring launch (v2)");
    let assets = c.emu.assets();
    assert_eq!(assets.len(), 1, "the asset replaced in place, not a second one");
    assert_eq!((assets[0].uid.as_str(), assets[0].version), (asset_uid.as_str(), 2));
    assert_eq!(c.emu.asset_bytes(&asset_uid).expect("bytes"), std::fs::read(&v2.body).expect("v2"));
    assert_eq!(second.path, format!("{CT}/{}?asset={asset_uid}", first.id));
}

#[test]
fn contentstack_publishes_entry_and_asset_to_two_environments_by_two_locales() {
    let c = Cs::start();
    let t = c.target();
    let r = delivered(c.deliver(&t, &c.doc("poster.jpg", "DOC-2", 3)));
    let mut pairs = c.emu.published(&r.id);
    pairs.sort();
    let want: Vec<(String, String, u64)> =
        [("production", "de-de"), ("production", "en-us"), ("staging", "de-de"), ("staging", "en-us")]
            .iter()
            .map(|(e, l)| (e.to_string(), l.to_string(), 1))
            .collect();
    assert_eq!(pairs, want);
    let asset = c.emu.assets()[0].uid.clone();
    assert_eq!(c.emu.published(&asset).len(), 4, "the asset too");
    let entry_publishes = format!("/v3/content_types/{CT}/entries/{}/publish", r.id);
    assert_eq!(c.calls("POST", &entry_publishes), 2, "one call per locale");
}

#[test]
fn contentstack_entry_references_its_asset_and_the_campaign() {
    let c = Cs::start();
    let t = c.target();
    let doc = c.doc("hero.png", "DOC-3", 4);
    let r = delivered(c.deliver(&t, &doc));
    let a = &c.emu.assets()[0];
    let e = &c.emu.entries(CT)[0];
    assert_eq!(e.uid, r.id);
    assert_eq!(e.fields["file"], a.uid.as_str(), "the entry's asset field holds the uploaded asset");
    assert_eq!(e.fields["campaign"], serde_json::json!([{"uid": "bltcampaign01", "_content_type_uid": "campaign"}]));
    assert_eq!(e.fields["source_id"], "DOC-3");
    assert!(e.fields.get("body").is_none(), "an image gives no rich text");
    assert_eq!(c.emu.asset_bytes(&a.uid).expect("bytes"), std::fs::read(&doc.body).expect("body"));
    assert_eq!(a.filename, "hero.png");
    assert_eq!(a.title, "Spring launch");
    assert_eq!(a.parent_uid.as_deref(), Some("bltfolder0000000001"));
    assert_eq!(a.tags.len(), 2);
    assert!(
        a.tags[0] == format!("wharf-sha256-{}", doc.sha256) && a.tags[1].starts_with("wharf-entry-"),
        "{:?}",
        a.tags
    );
}

#[test]
fn contentstack_hundred_deliveries_under_the_rate_limit_see_no_429() {
    let seed = Seed { reads_per_sec: 50, writes_per_sec: 50, ..Seed::default() };
    let c = Cs::start_with(seed);
    let token = c.emu.seed().management_tokens[0].clone();
    let t = c.target_with(&token, "[\"production\"]", "[\"en-us\"]", 50);
    let docs: Vec<Document> = (0..100)
        .map(|i| c.doc_bytes(&format!("doc-{i}.pdf"), &format!("DOC-R{i}"), format!("%PDF-1.7 {i}").as_bytes(), &[]))
        .collect();
    let docs = Arc::new(docs);
    let started = Instant::now();
    // eight workers sharing the one target, as the pipeline's workers do
    let outcomes: Vec<Delivery> = c.rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (t, docs) = (t.clone(), docs.clone());
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for d in docs.iter().skip(w).step_by(8) {
                    out.push(t.deliver(d).await);
                }
                out
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("worker"));
        }
        all
    });
    let took = started.elapsed();
    let bad: Vec<&Delivery> = outcomes.iter().filter(|d| !matches!(d, Delivery::Delivered(_))).collect();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(outcomes.len(), 100);
    // The limiter keeps every call under the emulator's sliding second (0 429s measured, alone
    // and beside the other contentstack tests). On two cores shared with the whole suite a
    // starved emulator may admit a burst late; the odd 429 that causes is backed off inside the
    // client and never surfaces (every delivery above is Delivered). With the target's rate at
    // 1000/s instead (no effective limiter) this run ends in Retry outcomes after 429s.
    let (r429, w429) = c.emu.throttled();
    assert!(r429 + w429 <= 3, "the client-side limiter let {r429} reads and {w429} writes be throttled");
    assert_eq!(c.emu.entries(CT).len(), 100);
    assert_eq!(c.emu.assets().len(), 100);
    // 400 writes at 50/s: about 8.4 s
    assert!(took >= Duration::from_secs(7), "faster than the limit allows: {took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    eprintln!("contentstack: 100 deliveries (400 writes, 200 reads) at 50/s took {took:?}, 429s: {r429}/{w429}");
}

#[test]
fn contentstack_429_is_backed_off_then_delivered_and_persistent_429_is_a_retry() {
    let c = Cs::start();
    let t = c.target();
    c.emu.faults().fail_next(2, 429);
    let r = delivered(c.deliver(&t, &c.doc("a.pdf", "DOC-4", 5)));
    assert_eq!(c.emu.entries(CT)[0].uid, r.id);
    assert_eq!(c.emu.requests().iter().filter(|r| r.status == 429).count(), 2);
    c.emu.faults().fail_next(1000, 429);
    let started = Instant::now();
    let d = c.deliver(&t, &c.doc("b.pdf", "DOC-5", 6));
    let Delivery::Retry(m) = d else { panic!("persistent 429 is a retry: {d:?}") };
    assert!(m.contains("429") && m.contains("5 attempts"), "{m}");
    // 200 + 400 + 800 + 1600 ms, each with up to 50 % jitter
    assert!(started.elapsed() >= Duration::from_millis(3000), "{:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(c.emu.entries(CT).len(), 1);
}

#[test]
fn contentstack_publish_failing_for_one_locale_is_an_exception_naming_it() {
    let c = Cs::start();
    let t = c.target();
    c.emu.faults().fail_publish_locale(Some("de-de"));
    let doc = c.doc("flyer.pdf", "DOC-6", 7);
    let m = excepted(c.deliver(&t, &doc));
    assert!(m.contains("locale de-de") && m.contains("Publishing failed for locale de-de"), "{m}");
    let asset = c.emu.assets()[0].uid.clone();
    assert_eq!(c.emu.published(&asset).len(), 2, "en-us published before de-de failed");
    // fixed in Contentstack: the resubmit publishes only what is missing, no second entry/asset
    c.emu.faults().fail_publish_locale(None);
    let r = delivered(c.deliver(&t, &doc));
    assert!(r.already_delivered);
    assert_eq!(c.emu.published(&r.id).len(), 4);
    assert_eq!(c.emu.published(&asset).len(), 4);
    assert_eq!((c.emu.entries(CT).len(), c.emu.assets().len()), (1, 1));
    assert_eq!(c.emu.entries(CT)[0].version, 1, "no update when nothing changed");
}

#[test]
fn contentstack_bad_management_token_is_an_exception_naming_the_auth_problem_not_the_token() {
    let c = Cs::start();
    let secret = "cs-wrong-token-very-secret-4242";
    let t = c.target_with(secret, "[\"staging\"]", "[\"en-us\"]", 10);
    let m = excepted(c.deliver(&t, &c.doc("x.pdf", "DOC-7", 8)));
    assert!(m.contains("refused the management token") && m.contains("401"), "{m}");
    assert!(!m.contains(secret), "{m}");
    assert!(c.emu.entries(CT).is_empty() && c.emu.assets().is_empty());
    let late = c.doc("y.pdf", "DOC-8", 9);
    let Cs { emu, dir: _dir, rt } = c;
    drop(emu);
    let d = rt.block_on(t.deliver(&late));
    let Delivery::Retry(m) = d else { panic!("an unreachable stack is a retry: {d:?}") };
    assert!(m.contains("unreachable") && !m.contains(secret), "{m}");
}

#[test]
fn contentstack_redelivery_after_a_crash_makes_no_second_asset_or_entry() {
    let c = Cs::start();
    let t = c.target();
    // the whole delivery done, the journal commit lost: delivered again
    let doc = c.doc("deck.pdf", "DOC-9", 10);
    let first = delivered(c.deliver(&t, &doc));
    let again = delivered(c.deliver(&t, &doc));
    assert_eq!((again.id.as_str(), again.already_delivered), (first.id.as_str(), true));
    assert_eq!((c.emu.entries(CT).len(), c.emu.assets().len()), (1, 1));
    assert_eq!(c.emu.entries(CT)[0].version, 1, "no new version either");
    // a crash between the asset upload and the entry create
    let doc = c.doc("sheet.pdf", "DOC-10", 11);
    c.emu.faults().fail_route("POST", "/entries", 1, 503);
    let d = c.deliver(&t, &doc);
    assert!(matches!(&d, Delivery::Retry(m) if m.contains("503")), "{d:?}");
    assert_eq!(c.emu.assets().len(), 2, "the asset was uploaded before the failure");
    let r = delivered(c.deliver(&t, &doc));
    assert_eq!((c.emu.entries(CT).len(), c.emu.assets().len()), (2, 2), "the asset found by its tag");
    assert_eq!(c.calls("POST", "/v3/assets"), 2, "two files, two uploads");
    let e = c.emu.entries(CT).into_iter().find(|e| e.uid == r.id).expect("entry");
    let a = c.emu.assets().into_iter().find(|a| a.tags.contains(&format!("wharf-sha256-{}", doc.sha256)));
    assert_eq!(e.fields["file"], a.expect("asset").uid.as_str());
}

#[test]
fn contentstack_rich_text_comes_from_a_sanitised_html_body() {
    let c = Cs::start();
    let t = c.target();
    let html = "<!DOCTYPE html><html><head><title>x</title><style>p{}</style></head><body>\
                <h1>Spring</h1><p onclick=\"steal()\">Fresh <b>colours</b></p><script>alert(1)</script></body></html>";
    let doc = c.doc_bytes("launch.html", "DOC-11", html.as_bytes(), &[("summary", "Launch copy")]);
    let r = delivered(c.deliver(&t, &doc));
    let e = c.emu.entries(CT).into_iter().find(|e| e.uid == r.id).expect("entry");
    assert_eq!(e.fields["body"], "<h1>Spring</h1><p>Fresh <b>colours</b></p>");
    assert_eq!(e.fields["summary"], "Launch copy");
    let text = c.doc_bytes("terms.txt", "DOC-12", b"Terms & conditions\n\nApply <always>.", &[]);
    let r = delivered(c.deliver(&t, &text));
    let e = c.emu.entries(CT).into_iter().find(|e| e.uid == r.id).expect("entry");
    assert_eq!(e.fields["body"], "<p>Terms &amp; conditions</p><p>Apply &lt;always&gt;.</p>");
}

/// A gateway whose `invoices` channel (the harness's inbound mount) delivers approved campaign
/// content to the emulator, like deploy/contentstack-rules/ does.
fn gateway(c: &Cs, token: &str) -> crate::support::Gateway {
    let rules = c.dir.path().join("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    std::fs::write(
        rules.join("invoices.toml"),
        r#"
[[accept]]
name = "approved"
pattern = '^(?P<campaign>[A-Z0-9]{2,12})-(?P<doc>\d{1,9})-(?P<title>[A-Za-z0-9_-]{1,80})\.(?P<ext>html|pdf)$'
max_size = "10 MiB"

[metadata]
fields = { document_id = "{campaign}-{doc}", title = "{title}", campaign_uid = "blt{campaign}" }

[target]
name = "cs"
destination = "{file.name}"
conflict = "version"
retry = { attempts = 3, backoff_secs = 1, max_age_secs = 600 }
"#,
    )
    .expect("rule");
    let extra = format!(
        "[pipeline]\nrules = \"{}\"\nworkers = 4\n\n[[targets]]\nname = \"cs\"\ntype = \"contentstack\"\n\
         [targets.contentstack]\n{}",
        rules.display(),
        table(&c.emu, &c.token_file(token), "[\"staging\", \"production\"]", "[\"en-us\", \"de-de\"]", 10)
    );
    crate::support::Gateway::start(crate::support::Options { extra, ..Default::default() })
}

/// End to end: an approved HTML page uploaded over SFTP becomes a published entry with its rich
/// text and asset; a new version of the same document updates that entry in place.
#[test]
fn contentstack_gateway_sftp_upload_becomes_a_published_entry_then_an_update_in_place() {
    let c = Cs::start();
    let token = c.emu.seed().management_tokens[0].clone();
    let gw = gateway(&c, &token);
    let local = gw.dir.path().join("SPRING26-42-Launch_page.html");
    std::fs::write(&local, "<html><body><p>Version one</p><script>x()</script></body></html>").expect("file");
    let put = format!("put {} /invoices/SPRING26-42-Launch_page.html\n", local.display());
    let out = gw.sftp("acme", &put);
    assert!(out.status.success(), "{}", crate::support::text(&out));
    gw.wait_for(30, "the page delivered", || gw.in_state("delivered").len() == 1);
    let e = &c.emu.entries(CT)[0];
    assert_eq!(
        (e.fields["source_id"].as_str(), e.fields["title"].as_str()),
        (Some("SPRING26-42"), Some("Launch_page"))
    );
    assert_eq!(e.fields["body"], "<p>Version one</p>");
    assert_eq!(c.emu.published(&e.uid).len(), 4);
    std::fs::write(&local, "<html><body><p>Version two</p></body></html>").expect("file");
    let out = gw.sftp("acme", &put);
    assert!(out.status.success(), "{}", crate::support::text(&out));
    gw.wait_for(30, "the new version delivered", || gw.in_state("delivered").len() == 2);
    let entries = c.emu.entries(CT);
    assert_eq!(entries.len(), 1, "updated in place");
    assert_eq!((entries[0].version, entries[0].fields["body"].as_str()), (2, Some("<p>Version two</p>")));
    assert_eq!(c.emu.assets().len(), 1);
    assert_eq!(c.emu.published(&entries[0].uid).iter().filter(|(_, _, v)| *v == 2).count(), 4);
    assert!(!gw.log().contains(&token), "the token is not logged");
}

/// End to end: a wrong token sends the upload to the exception folder with a reason a person
/// can act on, and the token is in neither the reason files nor the log.
#[test]
fn contentstack_gateway_bad_token_puts_the_file_in_exceptions_with_the_reason() {
    let c = Cs::start();
    let secret = "cs-wrong-token-from-the-vault-7777";
    let gw = gateway(&c, secret);
    let local = gw.dir.path().join("SPRING26-43-Teaser.pdf");
    std::fs::write(&local, "%PDF-1.7 teaser").expect("file");
    let out = gw.sftp("acme", &format!("put {} /invoices/SPRING26-43-Teaser.pdf\n", local.display()));
    assert!(out.status.success(), "{}", crate::support::text(&out));
    // the journal says excepted just before the file and its reasons are placed
    let dir = gw.spool().join("exceptions/invoices/acme");
    let placed = || {
        dir.join("SPRING26-43-Teaser.pdf.error.txt").exists() && dir.join("SPRING26-43-Teaser.pdf.error.json").exists()
    };
    gw.wait_for(30, "the upload excepted", || gw.in_state("excepted").len() == 1 && placed());
    let txt = std::fs::read_to_string(dir.join("SPRING26-43-Teaser.pdf.error.txt")).expect("reason");
    let json = std::fs::read_to_string(dir.join("SPRING26-43-Teaser.pdf.error.json")).expect("reason json");
    assert!(txt.contains("refused the management token"), "{txt}");
    for text in [&txt, &json, &gw.log()] {
        assert!(!text.contains(secret), "the token leaked: {text}");
    }
    assert!(c.emu.entries(CT).is_empty());
}

#[test]
fn contentstack_example_config_and_its_rules_pass_check_and_their_tests() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/contentstack.example.toml");
    for args in [vec!["check", "--config", config], vec!["rules", "test", "--config", config]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args(&args)
            .env("WHARF_CS_TOKEN", "cs-mgmt-token-0001")
            .output()
            .expect("wharf runs");
        assert!(out.status.success(), "{args:?}: {}", crate::support::text(&out));
    }
}

#[test]
fn contentstack_equal_files_of_two_documents_get_two_assets_and_stay_apart() {
    let c = Cs::start();
    let t = c.target();
    let same = b"%PDF-1.7 shared legal text";
    let a = delivered(c.deliver(&t, &c.doc_bytes("legal.pdf", "DOC-30", same, &[])));
    let b = delivered(c.deliver(&t, &c.doc_bytes("legal.pdf", "DOC-31", same, &[])));
    assert_ne!(a.id, b.id);
    assert_eq!(c.emu.assets().len(), 2, "one asset per entry, even for equal bytes");
    // a new version of DOC-31 replaces DOC-31's asset only
    delivered(c.deliver(&t, &c.doc_bytes("legal.pdf", "DOC-31", b"%PDF-1.7 revised", &[])));
    let file_of = |uid: &str| {
        let e = c.emu.entries(CT).into_iter().find(|e| e.uid == uid).expect("entry");
        e.fields["file"].as_str().expect("asset uid").to_string()
    };
    assert_eq!(c.emu.asset_bytes(&file_of(&a.id)).expect("a"), same.to_vec(), "DOC-30's asset untouched");
    assert_eq!(c.emu.asset_bytes(&file_of(&b.id)).expect("b"), b"%PDF-1.7 revised".to_vec());
    // an asset an editor attached by hand is never replaced: a new one is uploaded
    let manual = c.emu.assets().len();
    let e = c.emu.entries(CT).into_iter().find(|e| e.uid == a.id).expect("entry");
    let mut fields = e.fields.clone();
    fields.insert("source_id".into(), "DOC-32".into());
    let hand = c.emu.insert_entry(CT, fields);
    assert!(!hand.is_empty());
    delivered(c.deliver(&t, &c.doc_bytes("legal.pdf", "DOC-32", b"%PDF-1.7 new", &[])));
    assert_eq!(c.emu.assets().len(), manual + 1);
    assert_eq!(c.emu.asset_bytes(&file_of(&a.id)).expect("a"), same.to_vec(), "the shared asset untouched");
}

#[test]
fn contentstack_concurrent_versions_of_one_document_make_one_entry() {
    let c = Cs::start();
    let t = c.target();
    let docs: Vec<Document> = (0..4).map(|i| c.doc("brief.pdf", "DOC-20", 30 + i)).collect();
    let outcomes: Vec<Delivery> = c.rt.block_on(async {
        let tasks: Vec<_> = docs
            .into_iter()
            .map(|d| {
                let t = t.clone();
                tokio::spawn(async move { t.deliver(&d).await })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.expect("worker"));
        }
        out
    });
    assert!(outcomes.iter().all(|d| matches!(d, Delivery::Delivered(_))), "{outcomes:?}");
    let entries = c.emu.entries(CT);
    assert_eq!(entries.len(), 1, "four versions at once, one entry");
    // each version replaced the asset in place (same uid), so the entry itself did not change
    assert_eq!(entries[0].version, 1);
    let assets = c.emu.assets();
    assert_eq!((assets.len(), assets[0].version), (1, 4), "one asset, replaced three times");
}

/// A crash between the remote calls and the journal commit: the gateway is killed with SIGKILL
/// after Contentstack stored the asset but before the delivery was journaled; after the restart
/// the transfer is delivered again and finds its asset (and entry), so there is one of each.
#[test]
fn contentstack_gateway_kill9_after_the_asset_upload_leaves_no_duplicate() {
    let c = Cs::start();
    let token = c.emu.seed().management_tokens[0].clone();
    let mut gw = gateway(&c, &token);
    // every call takes 150 ms: after the upload, four more calls keep the delivery open ≥ 600 ms
    c.emu.faults().set_latency(Duration::from_millis(150));
    let local = gw.dir.path().join("SPRING26-44-Crash_test.pdf");
    std::fs::write(&local, "%PDF-1.7 crash test").expect("file");
    let out = gw.sftp("acme", &format!("put {} /invoices/SPRING26-44-Crash_test.pdf\n", local.display()));
    assert!(out.status.success(), "{}", crate::support::text(&out));
    let uploaded = || c.emu.requests().iter().any(|r| r.method == "POST" && r.path == "/v3/assets" && r.status == 201);
    gw.wait_for(30, "the asset stored in Contentstack", uploaded);
    gw.kill9();
    assert!(gw.in_state("delivered").is_empty(), "killed before the delivery was journaled");
    assert_eq!(c.emu.assets().len(), 1);
    c.emu.faults().set_latency(Duration::ZERO);
    gw.spawn();
    gw.wait_for(30, "delivered after the restart", || gw.in_state("delivered").len() == 1);
    assert_eq!((c.emu.entries(CT).len(), c.emu.assets().len()), (1, 1), "no second asset or entry");
    assert_eq!(c.calls("POST", "/v3/assets"), 1, "the asset was found by its tags, not uploaded again");
    let e = &c.emu.entries(CT)[0];
    assert_eq!(e.fields["file"], c.emu.assets()[0].uid.as_str());
    assert_eq!(c.emu.published(&e.uid).len(), 4);
}
