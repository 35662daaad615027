//! A Confluence page's attachments through a poll: as their own transfers after their page
//! (`attachments = "items"`, once each across a restart, a new attachment version taken with
//! the page's next version), or zipped with the page (`attachments = "zip"`, hostile file names
//! kept inside the package, a manifest with checksums); the `excepted_label` write-back; and a
//! page missing a required field, fixed by a `.meta.json` override at its resubmission.

use crate::confluence::{Cfl, count, in_target, poll_gateway};
use crate::support::{Gateway, text};
use std::io::Read;

const RULES: &str = r#"
[[accept]]
name = "page"
pattern = '^(Design Spec|Runbook) (?P<doc>[A-Z]+-\d+)\.(html|zip)$'
max_size = "10 MiB"
extensions = ["html", "zip"]

[[accept]]
name = "attachment"
pattern = '^(?P<file>[^/]+)\.pdf$'
extensions = ["pdf"]
content = "pdf"

[metadata]
fields = { space = "{transfer.source.space}", source_id = "{transfer.source.id}" }

[target]
name = "demo-ecm"
destination = "confluence/{transfer.source.space}/{file.name}"
conflict = "version"
"#;

/// A gateway polling the approved ENG pages with `attachments = "<mode>"`, the write-back label
/// `filed-in-ecm` and `excepted_label = "wharf-rejected"`.
fn gateway(c: &Cfl, mode: &str) -> Gateway {
    gateway_with(c, mode, RULES)
}

/// [`gateway`] with `rules_text` as the channel's rule file.
fn gateway_with(c: &Cfl, mode: &str, rules_text: &str) -> Gateway {
    let source = format!("cql = 'type=page AND space=\"ENG\" AND label=\"approved\"'\nattachments = \"{mode}\"\n");
    poll_gateway(c, rules_text, &source, "label = \"filed-in-ecm\"\nexcepted_label = \"wharf-rejected\"\n")
}

fn attachment_listings(c: &Cfl) -> usize {
    count(c, "GET", "/attachments")
        + c.emu.requests().iter().filter(|r| r.method == "GET" && r.path.contains("/attachments?")).count()
}

#[test]
fn confluence_attachments_as_items_follow_their_page_once_across_a_restart() {
    let c = Cfl::start();
    let ds = c.emu.pages_in("ENG").into_iter().find(|p| p.title == "Design Spec DS-001").expect("page");
    let rb = c.emu.pages_in("ENG").into_iter().find(|p| p.title == "Runbook RB-010").expect("page");
    c.emu.attach(&rb.id, "restart.exe", b"MZ\x90\x00 not a pdf").expect("attached");
    let odd = c.emu.add_page("ENG", "Untitled draft", "<p>No document number.</p>", &["approved"]);
    let mut gw = gateway(&c, "items");
    gw.wait_for(60, "3 delivered and 2 excepted", || {
        gw.in_state("delivered").len() == 3 && gw.in_state("excepted").len() == 2
    });
    let docs = in_target(&gw);
    let pdf = &docs["confluence/ENG/DS-001-architecture.pdf"];
    assert_eq!(pdf.as_bytes(), c.emu.attachment_bytes(&ds.id, "DS-001-architecture.pdf").expect("bytes").as_slice());
    let meta = std::fs::read_to_string(gw.dir.path().join("ecm/confluence/ENG/DS-001-architecture.pdf.metadata.json"))
        .expect("sidecar");
    let meta: serde_json::Value = serde_json::from_str(&meta).expect("json");
    assert_eq!(meta["metadata"]["space"], "ENG", "{meta}");
    let own_id = meta["metadata"]["source_id"].as_str().unwrap_or_default();
    assert!(own_id.starts_with("att"), "the attachment's own id: {meta}");
    let excepted: Vec<String> = gw.in_state("excepted").into_iter().map(|t| t.name).collect();
    assert!(excepted.contains(&"restart.exe".to_string()) && excepted.contains(&"Untitled draft.html".to_string()));
    // write-back: the excepted page gets the excepted label, delivered attachments nothing
    gw.wait_for(30, "the excepted page's label", || {
        c.emu.page(&odd).is_some_and(|p| p.labels.contains(&"wharf-rejected".to_string()))
    });
    gw.wait_for(30, "the delivered pages' label", || {
        [&ds.id, &rb.id].iter().all(|id| c.emu.page(id).is_some_and(|p| p.labels.contains(&"filed-in-ecm".to_string())))
    });
    // the excepted attachment marks its page too
    gw.wait_for(30, "the excepted attachment's label on its page", || {
        c.emu.page(&rb.id).is_some_and(|p| p.labels.contains(&"wharf-rejected".to_string()))
    });
    assert_eq!(count(&c, "POST", "/label"), 4, "one label per page, one for the excepted attachment");
    // a restart lists the pages' attachments again, and takes nothing twice
    let listed_before = attachment_listings(&c);
    gw.kill9();
    gw.spawn();
    gw.wait_for(30, "the attachments listed again", || attachment_listings(&c) > listed_before);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(gw.transfers().len(), 5, "nothing taken twice");
    // a new version of the pdf comes with the page's next version
    c.emu.attach(&ds.id, "DS-001-architecture.pdf", b"%PDF-1.4\n% revised diagram\n%%EOF\n").expect("v2");
    assert_eq!(c.emu.edit_page(&ds.id, "<p>Architecture, revised.</p>"), Some(4));
    gw.wait_for(60, "the page and its new attachment version", || gw.in_state("delivered").len() == 5);
    let docs = in_target(&gw);
    let v2 = docs.get("confluence/ENG/DS-001-architecture.v2.pdf").map(String::as_str).unwrap_or_default();
    assert!(v2.contains("revised diagram"), "a new version beside the first: {docs:?}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(gw.transfers().len(), 7, "page v4 and the pdf v2, nothing else");
}

#[test]
fn confluence_a_page_as_zip_carries_its_attachments_with_safe_names_and_a_manifest() {
    let c = Cfl::start();
    let ds = c.emu.pages_in("ENG").into_iter().find(|p| p.title == "Design Spec DS-001").expect("page");
    c.emu.attach(&ds.id, "../../../etc/cron.d/evil", b"* * * * * root sh").expect("attached");
    c.emu.attach(&ds.id, "notes.txt", b"release notes").expect("attached");
    let gw = gateway(&c, "zip");
    gw.wait_for(60, "both pages delivered", || gw.in_state("delivered").len() == 2);
    let zip_path = gw.dir.path().join("ecm/confluence/ENG/Design Spec DS-001.zip");
    let bytes =
        std::fs::read(&zip_path).unwrap_or_else(|e| panic!("{}: {e}: {:?}", zip_path.display(), in_target(&gw).keys()));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let names: Vec<String> =
        (0..archive.len()).map(|i| archive.by_index(i).expect("entry").name().expect("name").to_string()).collect();
    assert_eq!(names.first().map(String::as_str), Some("Design Spec DS-001.html"), "{names:?}");
    assert!(names.contains(&"attachments/DS-001-architecture.pdf".to_string()), "{names:?}");
    assert!(names.contains(&"attachments/notes.txt".to_string()), "{names:?}");
    assert!(names.iter().all(|n| !n.contains("..") && !n.starts_with('/')), "nothing escapes: {names:?}");
    assert_eq!(names.iter().filter(|n| n.starts_with("attachments/") && n.ends_with("evil")).count(), 1, "{names:?}");
    let mut text = String::new();
    archive.by_name("manifest.json").expect("manifest").read_to_string(&mut text).expect("read");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(manifest["attachments"], 3, "{manifest}");
    let pdf = c.emu.attachment_bytes(&ds.id, "DS-001-architecture.pdf").expect("bytes");
    let entry = manifest["files"].as_array().expect("files").iter().find(|f| f["title"] == "DS-001-architecture.pdf");
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&pdf));
    assert_eq!(entry.map(|e| e["sha256"].clone()), Some(serde_json::json!(sha)), "{manifest}");
    let mut html = String::new();
    archive.by_name("Design Spec DS-001.html").expect("page").read_to_string(&mut html).expect("read");
    assert!(html.contains("Architecture of the Harbor transfer gateway."), "{html}");
    assert_eq!(gw.transfers().len(), 2, "one transfer per page");
}

#[test]
fn confluence_a_page_missing_a_required_field_is_fixed_by_a_meta_json_override_and_written_back() {
    const OWNED: &str = r#"
[[accept]]
name = "page"
pattern = '^(?P<title>.+)\.html$'
extensions = ["html"]

[metadata]
fields = { owner = "{transfer.source.prop_owner}", title = "{title}" }
required = ["owner"]
overridable = ["owner"]

[target]
name = "demo-ecm"
destination = "confluence/{transfer.source.space}/{file.name}"
conflict = "version"
"#;
    let c = Cfl::start();
    let id = c.emu.add_page("ENG", "Orphan Note", "<p>Nobody owns this yet.</p>", &["approved"]);
    let gw = gateway_with(&c, "none", OWNED);
    gw.wait_for(60, "the seeded pages delivered and the orphan excepted", || {
        gw.in_state("delivered").len() == 2 && gw.in_state("excepted").len() == 1
    });
    let dir = gw.spool().join("exceptions/pages/confluence-intake");
    let reason = std::fs::read_to_string(dir.join("Orphan Note.html.error.txt")).expect("reason file");
    assert!(reason.contains("owner"), "the reason names the missing field: {reason}");
    gw.wait_for(30, "the excepted label", || {
        c.emu.page(&id).is_some_and(|p| p.labels.contains(&"wharf-rejected".to_string()))
    });
    // ops give the owner in an override and resubmit the page
    let meta = gw.dir.path().join("owner.json");
    std::fs::write(&meta, r#"{"owner": "Jane Doe"}"#).expect("meta");
    let folder = "/exceptions/pages/confluence-intake";
    let out = gw.sftp(
        "ops",
        &format!(
            "put {} \"{folder}/retry/Orphan Note.html.meta.json\"\nrename \"{folder}/Orphan Note.html\" \"{folder}/retry/Orphan Note.html\"\n",
            meta.display()
        ),
    );
    assert!(out.status.success(), "{}", text(&out));
    gw.wait_for(30, "the resubmitted page delivered", || gw.in_state("delivered").len() == 3);
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(gw.dir.path().join("ecm/confluence/ENG/Orphan Note.html.metadata.json")).expect("sidecar"),
    )
    .expect("json");
    assert_eq!(m["metadata"]["owner"], "Jane Doe", "{m}");
    gw.wait_for(30, "the delivered write-back after the resubmission", || {
        c.emu.page(&id).is_some_and(|p| p.labels.contains(&"filed-in-ecm".to_string()))
    });
}

#[test]
fn confluence_a_page_is_written_back_only_after_its_attachments_are_in() {
    let c = Cfl::start();
    let rb = c.emu.pages_in("ENG").into_iter().find(|p| p.title == "Runbook RB-010").expect("page");
    c.emu.attach(&rb.id, "restart-steps.pdf", b"%PDF-1.4\n% restart steps\n%%EOF\n").expect("attached");
    // the attachment listings fail at first, after the pages themselves were taken
    c.emu.faults().fail_path("/attachments", 2, 500);
    // a query that drops a page once it carries the write-back label: labelled too early, its
    // attachments would never be listed again
    let source = "cql = 'type=page AND space=\"ENG\" AND label=\"approved\" AND label != \"filed-in-ecm\"'\n\
                  attachments = \"items\"\n";
    let gw = poll_gateway(&c, RULES, source, "label = \"filed-in-ecm\"\n");
    gw.wait_for(60, "both pages and both attachments delivered", || gw.in_state("delivered").len() == 4);
    let docs = in_target(&gw);
    assert!(docs.contains_key("confluence/ENG/restart-steps.pdf"), "{:?}", docs.keys());
    assert!(docs.contains_key("confluence/ENG/DS-001-architecture.pdf"), "{:?}", docs.keys());
    gw.wait_for(30, "the pages labelled", || {
        c.emu.page(&rb.id).is_some_and(|p| p.labels.contains(&"filed-in-ecm".to_string()))
    });
    let log = c.emu.requests();
    let first_label = log.iter().position(|r| r.method == "POST" && r.path.ends_with("/label")).expect("a label");
    let listed = log.iter().position(|r| r.path.contains("/attachments") && r.status == 200).expect("a listing");
    assert!(listed < first_label, "a page is labelled only after its attachments were listed");
}
