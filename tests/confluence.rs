//! The `confluence` target and the Confluence source poll against the strict Confluence
//! emulator (`support::confluence`): attachments uploaded with the headers the API requires,
//! pages created or updated with the next version number (a 409 race included), conflict
//! policies, 429, credentials; CQL-selected pages feeding a channel across a kill -9, with the
//! write-back (label + receipt property) done once, and an edited page coming again.

use crate::support::confluence::{Emulator, PageView, Seed};
use crate::support::{Gateway, Options, random_file};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wharf::targets::confluence::ConfluenceTarget;
use wharf::targets::{Conflict, Delivery, Document, Target};

/// The emulator on its own runtime (the harness and clients are blocking).
pub(crate) struct Cfl {
    pub(crate) emu: Emulator,
    pub(crate) dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Cfl {
    pub(crate) fn start() -> Cfl {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let emu = rt.block_on(Emulator::start(Seed::default()));
        Cfl { emu, dir: tempfile::tempdir().expect("dir"), rt }
    }

    /// `[[targets]] <name>` (Basic auth with `token`) for the emulator, `extra` lines in its table.
    fn target_toml_as(&self, name: &str, token: &str, extra: &str) -> String {
        let file = self.dir.path().join(format!("token-{name}"));
        std::fs::write(&file, format!("{token}\n")).expect("token");
        format!(
            "\n[[targets]]\nname = \"{name}\"\ntype = \"confluence\"\n[targets.confluence]\nbase_url = \"{}\"\n\
             email = \"wharf@example.com\"\napi_token_file = \"{}\"\nspace = \"ENG\"\ntimeout_secs = 30\n{extra}\n",
            self.emu.base_url(),
            file.display()
        )
    }

    pub(crate) fn target_toml(&self, extra: &str) -> String {
        self.target_toml_as("wiki", "wharf-api-token", extra)
    }

    fn target_from(&self, toml: &str) -> Arc<ConfluenceTarget> {
        let text = format!("[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n{toml}");
        let config = wharf::config::Config::parse(&self.dir.path().join("w.toml"), &text).expect("config");
        let wharf::config::TargetKind::Confluence(cfg) = &config.targets[0].kind else { panic!("confluence") };
        Arc::new(ConfluenceTarget::new("wiki", (**cfg).clone()).expect("target"))
    }

    fn target(&self, extra: &str) -> Arc<ConfluenceTarget> {
        self.target_from(&self.target_toml(extra))
    }

    fn doc(&self, destination: &str, seed: u64, conflict: Conflict, metadata: &[(&str, &str)]) -> Document {
        let body = self.dir.path().join(format!("body-{seed}"));
        let sha256 = random_file(&body, 20_000 + seed as usize, seed);
        Document {
            transfer_id: format!("T{seed}"),
            body,
            destination: destination.to_string(),
            sha256,
            size: 20_000 + seed,
            account: "acme".into(),
            channel: "docs".into(),
            metadata: metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            conflict,
        }
    }

    fn deliver(&self, t: &ConfluenceTarget, doc: &Document) -> Delivery {
        self.rt.block_on(t.deliver(doc))
    }

    fn page_titled(&self, title: &str) -> Option<PageView> {
        self.emu.pages_in("ENG").into_iter().find(|p| p.title == title)
    }

    fn sha_of(&self, page: &str, file: &str) -> String {
        let bytes = self.emu.attachment_bytes(page, file).unwrap_or_else(|| panic!("{file} is attached to {page}"));
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    }
}

fn delivered(d: &Delivery) -> &wharf::targets::Receipt {
    match d {
        Delivery::Delivered(r) => r,
        other => panic!("not delivered: {other:?}"),
    }
}

#[test]
fn confluence_a_document_becomes_an_attachment_of_a_new_page_sent_as_the_api_requires() {
    let c = Cfl::start();
    let parent = c.page_titled("Design Spec DS-001").expect("seeded").id;
    let t = c.target(&format!("parent_page = \"{parent}\"\n"));
    let doc = c.doc("Harbor Deliveries/DS-001-review.pdf", 1, Conflict::Version, &[("project", "Harbor <&>")]);
    let r = c.deliver(&t, &doc);
    let receipt = delivered(&r);
    assert_eq!(receipt.path, "ENG/Harbor Deliveries/DS-001-review.pdf");
    assert_eq!(receipt.version, Some(1));
    let page = c.page_titled("Harbor Deliveries").expect("the page was created");
    assert_eq!(page.parent_id.as_deref(), Some(parent.as_str()), "under parent_page");
    assert!(
        page.body_storage.contains("<th><p>project</p></th><td><p>Harbor &lt;&amp;&gt;</p></td>"),
        "{}",
        page.body_storage
    );
    assert_eq!(c.sha_of(&page.id, "DS-001-review.pdf"), doc.sha256);
    let att = &page.attachments[0];
    assert!(att.comment.contains("T1") && att.comment.contains(&doc.sha256), "{att:?}");
    assert_eq!(att.media_type, "application/pdf");
    let upload = c.emu.requests().into_iter().find(|r| r.path.ends_with("/child/attachment")).expect("an upload");
    assert_eq!(upload.method, "POST");
    assert_eq!(upload.status, 200);
    assert_eq!(upload.headers_of_interest.get("x-atlassian-token").map(String::as_str), Some("nocheck"));
    assert_eq!(upload.headers_of_interest.get("authorization").map(String::as_str), Some("Basic"));
    assert!(upload.headers_of_interest.get("content-type").is_some_and(|c| c.starts_with("multipart/form-data")));
    // the same transfer again (a lost reply): found by its checksum, nothing uploaded twice
    let again = c.deliver(&t, &doc);
    assert!(delivered(&again).already_delivered, "{again:?}");
    assert_eq!(c.emu.requests().iter().filter(|r| r.path.ends_with("/child/attachment")).count(), 1);
}

#[test]
fn confluence_conflict_version_puts_a_new_attachment_version() {
    let c = Cfl::start();
    let t = c.target("");
    let first = c.doc("Specs/spec.pdf", 2, Conflict::Version, &[]);
    delivered(&c.deliver(&t, &first));
    let second = c.doc("Specs/spec.pdf", 3, Conflict::Version, &[]);
    let r = c.deliver(&t, &second);
    assert_eq!(delivered(&r).version, Some(2), "{r:?}");
    let page = c.page_titled("Specs").expect("page");
    assert_eq!(page.attachments.len(), 1);
    assert_eq!(page.attachments[0].version, 2);
    assert_eq!(c.sha_of(&page.id, "spec.pdf"), second.sha256);
    let put = c.emu.requests().into_iter().rfind(|r| r.path.ends_with("/child/attachment")).expect("upload");
    assert_eq!((put.method.as_str(), put.status), ("PUT", 200));
}

#[test]
fn confluence_conflict_reject_is_an_exception_and_rename_finds_a_free_name() {
    let c = Cfl::start();
    let t = c.target("");
    delivered(&c.deliver(&t, &c.doc("Specs/a.pdf", 4, Conflict::Version, &[])));
    match c.deliver(&t, &c.doc("Specs/a.pdf", 5, Conflict::Reject, &[])) {
        Delivery::Except(why) => assert!(why.contains("already attached") && why.contains("reject"), "{why}"),
        other => panic!("{other:?}"),
    }
    let renamed = c.deliver(&t, &c.doc("Specs/a.pdf", 6, Conflict::Rename, &[]));
    assert_eq!(delivered(&renamed).path, "ENG/Specs/a (2).pdf");
    let titles: Vec<String> = c.page_titled("Specs").expect("page").attachments.into_iter().map(|a| a.title).collect();
    assert_eq!(titles, ["a.pdf", "a (2).pdf"]);
}

#[test]
fn confluence_an_existing_page_gets_its_metadata_table_as_the_next_version_even_after_a_409_race() {
    let c = Cfl::start();
    let id = c.emu.add_page("ENG", "Vendor Files", "<p>Written by a person.</p>", &[]);
    let t = c.target("");
    delivered(&c.deliver(&t, &c.doc("Vendor Files/one.pdf", 7, Conflict::Version, &[("vendor", "Acme")])));
    let page = c.emu.page(&id).expect("page");
    assert_eq!(page.version, 2, "one update: current + 1");
    assert!(page.body_storage.starts_with("<p>Written by a person.</p>"), "kept: {}", page.body_storage);
    assert!(page.body_storage.contains("<td><p>Acme</p></td>"), "{}", page.body_storage);
    // same metadata: no update
    delivered(&c.deliver(&t, &c.doc("Vendor Files/two.pdf", 8, Conflict::Version, &[("vendor", "Acme")])));
    assert_eq!(c.emu.page(&id).expect("page").version, 2);
    // someone edits the page between wharf's read and its update: 409, read again, version 4
    c.emu.faults().race_next_update(id.parse().expect("id"));
    delivered(&c.deliver(&t, &c.doc("Vendor Files/three.pdf", 9, Conflict::Version, &[("vendor", "Globex")])));
    let page = c.emu.page(&id).expect("page");
    assert_eq!(page.version, 4, "2 + the other user's edit + wharf's");
    assert!(page.body_storage.contains("<td><p>Globex</p></td>") && !page.body_storage.contains("Acme"));
    let puts: Vec<u16> = c
        .emu
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path == format!("/wiki/api/v2/pages/{id}"))
        .map(|r| r.status)
        .collect();
    assert_eq!(puts, [200, 409, 200]);
    assert_eq!(page.attachments.len(), 3);
}

#[test]
fn confluence_429_with_retry_after_is_waited_out_in_place() {
    let c = Cfl::start();
    let t = c.target("");
    c.emu.faults().throttle_next(3, 1);
    let started = std::time::Instant::now();
    delivered(&c.deliver(&t, &c.doc("Throttled/x.pdf", 10, Conflict::Version, &[])));
    assert!(started.elapsed() >= std::time::Duration::from_secs(3), "each Retry-After was honoured");
    assert_eq!(c.emu.requests().iter().filter(|r| r.status == 429).count(), 3);
}

#[test]
fn confluence_server_errors_are_retried_later() {
    let c = Cfl::start();
    let t = c.target("");
    c.emu.faults().fail_next(1, 502);
    match c.deliver(&t, &c.doc("Later/x.pdf", 11, Conflict::Version, &[])) {
        Delivery::Retry(why) => assert!(why.contains("502"), "{why}"),
        other => panic!("{other:?}"),
    }
    delivered(&c.deliver(&t, &c.doc("Later/x.pdf", 11, Conflict::Version, &[])));
}

#[test]
fn confluence_a_bad_token_is_an_exception_quoting_the_server_never_the_token() {
    let c = Cfl::start();
    let t = c.target_from(&c.target_toml_as("wiki", "not-the-token-s3cr3t", ""));
    match c.deliver(&t, &c.doc("Denied/x.pdf", 12, Conflict::Version, &[])) {
        Delivery::Except(why) => {
            assert!(why.contains("401") && why.contains("Basic email:api_token"), "{why}");
            assert!(!why.contains("s3cr3t"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn confluence_oauth_tokens_go_through_the_cloud_id_base() {
    let c = Cfl::start();
    let file = c.dir.path().join("oauth");
    std::fs::write(&file, "wharf-oauth-access-token\n").expect("token");
    let toml = format!(
        "\n[[targets]]\nname = \"wiki\"\ntype = \"confluence\"\n[targets.confluence]\nbase_url = \"{}\"\n\
         oauth_token_file = \"{}\"\noauth_base_url = \"{}\"\nspace = \"ENG\"\n",
        c.emu.base_url(),
        file.display(),
        c.emu.oauth_base_url()
    );
    let t = c.target_from(&toml);
    delivered(&c.deliver(&t, &c.doc("OAuth/x.pdf", 13, Conflict::Version, &[])));
    let reqs = c.emu.requests();
    assert!(reqs.iter().all(|r| r.path.starts_with("/ex/confluence/")), "{reqs:?}");
    assert!(reqs.iter().all(|r| r.headers_of_interest.get("authorization").map(String::as_str) == Some("Bearer")));
}

#[test]
fn confluence_oauth_access_tokens_are_renewed_with_the_rotating_refresh_token() {
    let c = Cfl::start();
    let refresh = c.dir.path().join("refresh");
    std::fs::write(&refresh, "wharf-oauth-refresh-token\n").expect("refresh");
    let secret = c.dir.path().join("client-secret");
    std::fs::write(&secret, "wharf-oauth-secret\n").expect("secret");
    let toml = |client: &str| {
        format!(
            "\n[[targets]]\nname = \"wiki\"\ntype = \"confluence\"\n[targets.confluence]\nbase_url = \"{base}\"\n\
             oauth_refresh_token_file = \"{}\"\noauth_client_id = \"{client}\"\noauth_client_secret_file = \"{}\"\n\
             oauth_token_url = \"{base}/oauth/token\"\noauth_base_url = \"{}\"\nspace = \"ENG\"\n",
            refresh.display(),
            secret.display(),
            c.emu.oauth_base_url(),
            base = c.emu.base_url(),
        )
    };
    let t = c.target_from(&toml("wharf-oauth-client"));
    delivered(&c.deliver(&t, &c.doc("OAuth/a.pdf", 21, Conflict::Version, &[])));
    let first = std::fs::read_to_string(&refresh).expect("read");
    assert_ne!(first.trim(), "wharf-oauth-refresh-token", "the rotated refresh token is stored");
    // every token expires: a 401, one refresh, the delivery goes through, the token rotates again
    c.emu.expire_tokens();
    delivered(&c.deliver(&t, &c.doc("OAuth/b.pdf", 22, Conflict::Version, &[])));
    let second = std::fs::read_to_string(&refresh).expect("read");
    assert_ne!(second, first);
    let refreshes = c.emu.requests().iter().filter(|r| r.path == "/oauth/token").count();
    assert_eq!(refreshes, 2, "one refresh at start, one after the expiry");
    // a refused refresh says what to do and shows no secret
    let bad = c.target_from(&toml("someone-else"));
    let Delivery::Except(why) = c.deliver(&bad, &c.doc("OAuth/c.pdf", 23, Conflict::Version, &[])) else {
        panic!("a refused refresh is an exception")
    };
    assert!(why.contains("authorise the app again"), "{why}");
    assert!(!why.contains("wharf-oauth-secret") && !why.contains(second.trim()), "{why}");
}

/// A copy of the shipped `rules/` (the harness's accounts upload into `invoices`).
fn shipped_rules_copy(dir: &Path) -> PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    for e in std::fs::read_dir(&shipped).expect("rules").flatten() {
        if e.path().extension().is_some_and(|x| x == "toml") {
            std::fs::copy(e.path(), rules.join(e.file_name())).expect("copy");
        }
    }
    std::os::unix::fs::symlink(shipped.join("tables"), rules.join("tables")).expect("symlink");
    rules
}

const PAGES_RULES: &str = r#"
[[accept]]
name = "page"
pattern = '^(?P<title>.+)\.html$'
max_size = "10 MiB"
extensions = ["html"]

[metadata]
fields = { page_id = "{transfer.source.id}", page_version = "{transfer.source.version}", space = "{transfer.source.space}", project = "{transfer.source.prop_project}", labels = "{transfer.source.labels}", link = "{transfer.source.link}", author = "{transfer.source.author}" }

[target]
name = "demo-ecm"
destination = "confluence/{transfer.source.space}/{file.name}"
conflict = "version"
"#;

/// A gateway whose channel `pages` is fed by a poll of the emulator (`source` lines), with the
/// write-back label `filed-in-ecm` and property `wharf-receipt`, delivering into the fs target.
fn polled_gateway(c: &Cfl, source: &str) -> Gateway {
    poll_gateway(c, PAGES_RULES, source, "label = \"filed-in-ecm\"\nproperty = \"wharf-receipt\"\n")
}

/// A gateway whose channel `pages` (rule file `rules_text`) is fed by the poll `approved-pages`
/// of the emulator (`source` and `write_back` lines of its tables), into the fs target `ecm/`.
pub(crate) fn poll_gateway(c: &Cfl, rules_text: &str, source: &str, write_back: &str) -> Gateway {
    let rules = shipped_rules_copy(c.dir.path());
    std::fs::write(rules.join("pages.toml"), rules_text).expect("rule file");
    let extra = format!(
        "[pipeline]\nrules = \"{}\"\nworkers = 2\n\n[[targets]]\nname = \"demo-ecm\"\ntype = \"fs\"\nroot = \"ecm\"\n{}\n\
         [[accounts]]\nname = \"confluence-intake\"\ndisabled = true\nattributes = {{ partner_id = \"WIKI\" }}\n\
         [[polls]]\nname = \"approved-pages\"\nchannel = \"pages\"\naccount = \"confluence-intake\"\nevery_secs = 1\n\
         [polls.source]\ntype = \"confluence\"\ntarget = \"wiki\"\n{source}\n[polls.write_back]\n{write_back}",
        rules.display(),
        c.target_toml("")
    );
    Gateway::start(Options { extra, ..Options::default() })
}

/// Documents delivered into the fs target (sidecars left out), with their text.
pub(crate) fn in_target(gw: &Gateway) -> BTreeMap<String, String> {
    let root = gw.dir.path().join("ecm");
    let mut out = BTreeMap::new();
    let mut todo = vec![root.clone()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                todo.push(e.path());
            } else if !e.file_name().to_string_lossy().ends_with(".metadata.json") {
                let rel = e.path().strip_prefix(&root).expect("under root").display().to_string();
                out.insert(rel, std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    out
}

pub(crate) fn count(c: &Cfl, method: &str, suffix: &str) -> usize {
    c.emu.requests().iter().filter(|r| r.method == method && r.path.ends_with(suffix) && r.status == 200).count()
}

#[test]
fn confluence_labelled_pages_feed_a_channel_once_across_a_kill_9() {
    let c = Cfl::start();
    // slow replies, so the kill lands while pages are being taken
    c.emu.faults().set_latency(std::time::Duration::from_millis(150));
    let mut gw = polled_gateway(&c, "space = \"ENG\"\nlabel = \"approved\"\n");
    gw.wait_for(30, "the first page taken", || !gw.transfers().is_empty());
    gw.kill9();
    c.emu.faults().set_latency(std::time::Duration::ZERO);
    gw.spawn();
    gw.wait_for(60, "both approved pages delivered", || gw.in_state("delivered").len() == 2);
    let docs = in_target(&gw);
    let ds = docs.get("confluence/ENG/Design Spec DS-001.html").unwrap_or_else(|| panic!("{docs:?}"));
    assert!(ds.contains("<h1>Design Spec DS-001</h1>") && ds.contains("version 3"), "{ds}");
    assert!(ds.contains("Architecture of the Harbor transfer gateway."), "{ds}");
    assert!(docs.contains_key("confluence/ENG/Runbook RB-010.html"), "{docs:?}");
    assert!(!docs.keys().any(|k| k.contains("HR Salary")), "a restricted page is never seen");
    // nothing lost after the restart either: a page approved now comes too
    let id = c.emu.add_page("ENG", "Release Notes 2.0", "<p>What changed.</p>", &[]);
    let prop = serde_json::json!({"key": "project", "value": "Harbor"});
    let path = format!("/wiki/api/v2/pages/{id}/properties");
    c.rt.block_on(c.target("").client().json(reqwest::Method::POST, &path, Some(&prop))).expect("property set");
    assert!(c.emu.label_page(&id, &["approved"]));
    gw.wait_for(30, "the new page delivered", || gw.in_state("delivered").len() == 3);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let delivered = gw.in_state("delivered");
    assert_eq!(delivered.len(), 3, "no duplicate: {:?}", delivered.iter().map(|t| &t.name).collect::<Vec<_>>());
    assert!(delivered.iter().all(|t| t.protocol == "confluence"));
    assert_eq!(in_target(&gw).len(), 3, "{:?}", in_target(&gw).keys().collect::<Vec<_>>());
    let meta = std::fs::read_to_string(gw.dir.path().join("ecm/confluence/ENG/Design Spec DS-001.html.metadata.json"))
        .expect("metadata sidecar");
    assert!(meta.contains("Harbor") && meta.contains("approved"), "{meta}");
    gw.wait_for(30, "the new page's write-back", || {
        c.emu.page(&id).is_some_and(|p| p.labels.contains(&"filed-in-ecm".to_string()))
    });
}

#[test]
fn confluence_write_back_is_done_once_and_an_edited_page_comes_again_as_a_new_version() {
    let c = Cfl::start();
    let gw = polled_gateway(&c, "cql = 'type=page AND space=\"ENG\" AND label=\"approved\"'\n");
    gw.wait_for(30, "both approved pages delivered", || gw.in_state("delivered").len() == 2);
    let ds = c.page_titled("Design Spec DS-001").expect("page");
    gw.wait_for(30, "the write-back", || {
        c.emu.pages_in("ENG").iter().filter(|p| p.properties.contains_key("wharf-receipt")).count() == 2
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(count(&c, "POST", "/label"), 2, "one label per page");
    assert_eq!(count(&c, "POST", "/properties"), 2, "one receipt per page");
    let page = c.emu.page(&ds.id).expect("page");
    assert_eq!(page.labels.iter().filter(|l| *l == "filed-in-ecm").count(), 1, "{:?}", page.labels);
    let receipt = &page.properties["wharf-receipt"];
    assert_eq!(receipt["target"], "demo-ecm", "{receipt}");
    assert_eq!(receipt["page_version"], "3", "{receipt}");
    assert!(receipt["path"].as_str().is_some_and(|p| p.ends_with("Design Spec DS-001.html")), "{receipt}");
    assert_eq!(page.version, 3, "labels and properties do not make a new page version");
    // an edit after it was taken: version 4 comes again, and gets its own receipt
    assert_eq!(c.emu.edit_page(&ds.id, "<p>Architecture, revised.</p>"), Some(4));
    gw.wait_for(30, "the edited page delivered", || gw.in_state("delivered").len() == 3);
    let docs = in_target(&gw);
    assert_eq!(docs.len(), 3, "{:?}", docs.keys().collect::<Vec<_>>());
    assert!(docs.values().any(|t| t.contains("Architecture, revised.") && t.contains("version 4")), "{docs:?}");
    gw.wait_for(30, "the new version's receipt", || {
        c.emu.page(&ds.id).is_some_and(|p| p.properties["wharf-receipt"]["page_version"] == "4")
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(gw.in_state("delivered").len(), 3, "nothing else taken");
    assert_eq!(count(&c, "POST", "/properties"), 2);
    let updates = c.emu.requests().iter().filter(|r| r.method == "PUT" && r.path.contains("/properties/")).count();
    assert_eq!(updates, 1, "the receipt property updated once for version 4");
}

#[test]
fn confluence_example_config_and_its_rules_pass_check_and_their_tests() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/confluence.example.toml");
    for args in [vec!["check", "--config", config], vec!["rules", "test", "--config", config]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wharf")).args(&args).output().expect("wharf runs");
        assert!(out.status.success(), "{args:?}: {}", crate::support::text(&out));
    }
}

#[test]
fn confluence_poll_settings_are_checked() {
    let c = Cfl::start();
    let bad = |source: &str, write_back: &str| {
        let text = format!(
            "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n[pipeline]\nrules = \"r\"\n{}\n\
             [[accounts]]\nname = \"intake\"\ndisabled = true\n\
             [[polls]]\nname = \"p\"\nchannel = \"pages\"\naccount = \"intake\"\n[polls.source]\ntype = \"confluence\"\n\
             target = \"wiki\"\n{source}\n[polls.write_back]\n{write_back}\n",
            c.target_toml("")
        );
        match wharf::config::Config::parse(&c.dir.path().join("w.toml"), &text) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    assert_eq!(bad("cql = 'label = \"approved\"'", "label = \"filed\"\nproperty = \"wharf-receipt\""), "");
    assert!(bad("space = \"ENG\"", "").contains("needs `cql`, or `space` and `label`"));
    assert!(bad("cql = 'label = \"a\" ORDER BY title'", "").contains("leave out ORDER BY"));
    assert!(bad("cql = 'label = \"a\"'", "label = \"filed in ecm\"").contains("must be a Confluence label"));
    assert!(bad("cql = 'label = \"a\"'", "delivered = \"filed\"").contains("not folders"));
    assert_eq!(bad("cql = 'label = \"a\"'\nattachments = \"zip\"", "excepted_label = \"wharf-rejected\""), "");
    let e = bad("cql = 'label = \"a\"'\nattachments = \"all\"", "");
    assert!(e.contains("polls[0].source.attachments") && e.contains("`none`, `items`, `zip`"), "{e}");
    let e = bad("cql = 'label = \"a\"'", "excepted_label = \"not ok\"");
    assert!(e.contains("polls[0].write_back.excepted_label"), "{e}");
}

#[test]
fn confluence_target_settings_are_checked_without_echoing_secrets() {
    let c = Cfl::start();
    let parse = |table: &str| {
        let text = format!(
            "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n\
             [[targets]]\nname = \"wiki\"\ntype = \"confluence\"\n[targets.confluence]\nbase_url = \"https://x.atlassian.net\"\n{table}\n"
        );
        match wharf::config::Config::parse(&c.dir.path().join("w.toml"), &text) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    assert_eq!(parse("email = \"a@b.c\"\napi_token_env = \"T\"\nspace = \"ENG\""), "");
    assert_eq!(parse("oauth_token_env = \"T\"\ncloud_id = \"a1b2-c3\""), "");
    assert!(parse("api_token_env = \"T\"").contains("email"));
    assert!(parse("oauth_token_env = \"T\"").contains("cloud_id"));
    assert!(parse("email = \"a@b.c\"\napi_token_env = \"T\"\noauth_token_env = \"U\"").contains("not both"));
    assert!(parse("email = \"a@b.c\"\napi_token_env = \"T\"\nparent_page = \"Home\"").contains("page id"));
    let refresh = "oauth_refresh_token_file = \"r\"\ncloud_id = \"a1\"\n";
    assert_eq!(parse(&format!("{refresh}oauth_client_id = \"app\"\noauth_client_secret_env = \"S\"")), "");
    assert!(parse(refresh).contains("targets[0].confluence.oauth_client_id: the refresh grant needs"));
    assert!(parse(&format!("{refresh}oauth_client_id = \"app\"")).contains("oauth_client_secret_env"));
    assert!(
        parse(&format!("{refresh}oauth_client_id = \"a\"\noauth_client_secret_env = \"S\"\noauth_token_env = \"T\""))
            .contains("targets[0].confluence.oauth_refresh_token_file: give an access token")
    );
    assert!(
        parse("email = \"a@b.c\"\napi_token_env = \"T\"\noauth_client_id = \"x\"")
            .contains("belong to `oauth_refresh_token_file`")
    );
    // the token read from its file never shows in the connection's debug output
    let toml = c.target_toml_as("wiki", "s3cr3t-token", "");
    let t = c.target_from(&toml);
    assert!(!format!("{:?}", t.client()).contains("s3cr3t"));
}

#[test]
fn confluence_scenario_001_approved_pages_reach_content_server_with_their_category_attributes() {
    let c = Cfl::start();
    let ecm = crate::opentext::Ecm::start();
    let rules = shipped_rules_copy(c.dir.path());
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/confluence-rules/approved-pages.toml");
    std::fs::copy(shipped, rules.join("approved-pages.toml")).expect("copy");
    let otcs = crate::opentext::target(
        &ecm,
        "root_folder = 2000\ncreate_folders = true\ncategory = { id = 9840, attributes = { project = 2, document_type = 3, owner = 4, approval_status = 5, retention_category = 6, page_id = 7, page_version = 8 } }\n",
    )
    .replace("name = \"otcs\"", "name = \"otcs-approved\"");
    let extra = format!(
        "[pipeline]\nrules = \"{}\"\nworkers = 2\n\n[[targets]]\nname = \"demo-ecm\"\ntype = \"fs\"\nroot = \"ecm\"\n{}\n{otcs}\n\
         [[accounts]]\nname = \"confluence-pages\"\ndisabled = true\n\
         [[polls]]\nname = \"approved-pages\"\nchannel = \"approved-pages\"\naccount = \"confluence-pages\"\n\
         schedule = \"* * * * * *\"\n\
         [polls.source]\ntype = \"confluence\"\ntarget = \"wiki\"\ncql = 'type=page AND space=\"ENG\" AND label=\"approved\"'\n\
         [polls.write_back]\nlabel = \"filed-in-ecm\"\nproperty = \"wharf-receipt\"\n",
        rules.display(),
        c.target_toml("")
    );
    let gw = Gateway::start(Options { extra, ..Options::default() });
    gw.wait_for(30, "both approved pages in Content Server", || gw.in_state("delivered").len() == 2);
    let doc = ecm.emu.find_path("Enterprise/Approved/ENG/Design Spec DS-001.html").expect("filed");
    assert_eq!(doc.categories.get("9840_2"), Some(&serde_json::json!("Harbor")), "{:?}", doc.categories);
    assert_eq!(doc.categories.get("9840_3"), Some(&serde_json::json!("Design Specification")));
    assert_eq!(doc.categories.get("9840_5"), Some(&serde_json::json!("Approved")));
    assert_eq!(doc.categories.get("9840_8"), Some(&serde_json::json!("3")));
    let ds = c.page_titled("Design Spec DS-001").expect("page");
    gw.wait_for(30, "the receipt on the page", || {
        c.emu.page(&ds.id).is_some_and(|p| p.properties.contains_key("wharf-receipt"))
    });
    let receipt = &c.emu.page(&ds.id).expect("page").properties["wharf-receipt"];
    assert_eq!(receipt["id"], doc.id.to_string(), "the node id: {receipt}");
    assert_eq!(receipt["target"], "otcs-approved");
}
