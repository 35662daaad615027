//! The `confluence` target and the Confluence source poll against the strict Confluence
//! emulator (`support::confluence`): attachments uploaded with the headers the API requires,
//! pages created or updated with the next version number (a 409 race included), conflict
//! policies, 429, credentials; CQL-selected pages feeding a channel across a kill -9, with the
//! write-back (label + receipt property) done once, and an edited page coming again.

use crate::support::confluence::{Emulator, PageView, Seed};
use crate::support::random_file;
use std::sync::Arc;
use wharf::targets::confluence::ConfluenceTarget;
use wharf::targets::{Conflict, Delivery, Document, Target};

/// The emulator on its own runtime (the harness and clients are blocking).
struct Cfl {
    emu: Emulator,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Cfl {
    fn start() -> Cfl {
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

    fn target_toml(&self, extra: &str) -> String {
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
