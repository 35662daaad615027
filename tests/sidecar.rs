//! Sidecars: `<name>.meta.json` uploaded beside a file, in either order, paired with it by the
//! pipeline; waited for, required, kept beside the file in its exception folder and resubmitted.

use crate::pipeline::pdf;
use crate::support::{Gateway, Options, text};

/// A gateway whose `invoices` channel reads sidecars with this policy (`sidecar = {...}`).
fn with_sidecar_policy(policy: &str) -> Gateway {
    let gw = Gateway::start(Options { pipeline: true, own_rules: true, ..Options::default() });
    let rules = gw.dir.path().join("rules/invoices.toml");
    let shipped = std::fs::read_to_string(&rules).expect("rules");
    let edited = shipped.replace("sidecar = { policy = \"optional\", wait_secs = 0 }", &format!("sidecar = {policy}"));
    assert_ne!(edited, shipped, "the shipped sidecar policy changed; update this test");
    std::fs::write(&rules, edited).expect("edit");
    gw.wait_for(20, "the reload", || gw.log().contains("rules reloaded"));
    gw
}

fn metadata(gw: &Gateway, path: &str) -> serde_json::Value {
    let bytes = std::fs::read(gw.dir.path().join("ecm").join(format!("{path}.metadata.json"))).expect("metadata");
    serde_json::from_slice(&bytes).expect("json")
}

#[test]
fn a_file_waits_for_a_sidecar_sent_after_it_and_delivers_its_fields() {
    let gw = with_sidecar_policy("{ policy = \"required\", wait_secs = 60 }");
    let f = gw.dir.path().join("INV-ACME-2026-0301.pdf");
    pdf(&f, 301);
    assert!(gw.sftp("acme", &format!("put {} /invoices/\n", f.display())).status.success());
    gw.wait_for(30, "the file to wait for its sidecar", || {
        gw.received().iter().any(|t| t.reason.as_deref().is_some_and(|r| r.contains("waiting for its sidecar")))
    });
    assert!(gw.in_state("delivered").is_empty(), "delivered without its required sidecar");

    let meta = gw.dir.path().join("INV-ACME-2026-0301.pdf.meta.json");
    std::fs::write(&meta, br#"{ "po_number": "4500012345", "doc_type": "Credit note" }"#).expect("sidecar");
    assert!(gw.sftp("acme", &format!("put {} /invoices/\n", meta.display())).status.success());
    gw.wait_for(30, "the delivery", || gw.in_state("delivered").len() == 1);

    let m = metadata(&gw, "2026/ACME/INV-ACME-2026-0301.pdf");
    assert_eq!(
        (m["metadata"]["po_number"].as_str(), m["metadata"]["doc_type"].as_str()),
        (Some("4500012345"), Some("Credit note"))
    );
    let attached = gw.in_state("attached");
    assert_eq!(attached.len(), 1, "the sidecar is attached, not delivered on its own");
    assert!(!gw.spool().join(&attached[0].body_path).exists(), "the sidecar's body left the spool");
    assert!(!gw.dir.path().join("ecm/2026/ACME/INV-ACME-2026-0301.pdf.meta.json").exists());
    assert!(gw.audit().iter().any(|e| e["event"] == "sidecar_attached"));
    assert!(gw.in_state("excepted").is_empty());
}

#[test]
fn a_sidecar_sent_first_is_taken_by_its_file() {
    // The shipped policy: optional, nothing waited for; a sidecar already there is used.
    let gw = Gateway::start(Options { pipeline: true, ..Options::default() });
    let f = gw.dir.path().join("INV-ACME-2026-0302.pdf");
    pdf(&f, 302);
    let meta = gw.dir.path().join("INV-ACME-2026-0302.pdf.meta.json");
    std::fs::write(&meta, br#"{ "po_number": "4500099999" }"#).expect("sidecar");
    let out = gw.sftp("acme", &format!("put {} /invoices/\nput {} /invoices/\n", meta.display(), f.display()));
    assert!(out.status.success(), "{}", text(&out));
    gw.wait_for(30, "the delivery", || gw.in_state("delivered").len() == 1);
    assert_eq!(metadata(&gw, "2026/ACME/INV-ACME-2026-0302.pdf")["metadata"]["po_number"], "4500099999");
    assert_eq!(gw.in_state("attached").len(), 1);
}

#[test]
fn a_required_sidecar_that_never_comes_sends_the_file_to_exceptions() {
    let gw = with_sidecar_policy("{ policy = \"required\", wait_secs = 2 }");
    let f = gw.dir.path().join("INV-ACME-2026-0303.pdf");
    pdf(&f, 303);
    assert!(gw.sftp("acme", &format!("put {} /invoices/\n", f.display())).status.success());
    gw.wait_for(30, "the exception", || gw.in_state("excepted").len() == 1);
    let reason = gw.in_state("excepted")[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("requires a sidecar INV-ACME-2026-0303.pdf.meta.json"), "{reason}");
    let waited = gw.audit().iter().filter(|e| e["event"] == "delivery_retry").count();
    assert_eq!(waited, 0, "waiting for a sidecar is not a failed delivery attempt");
}

#[test]
fn an_excepted_file_keeps_its_sidecar_beside_it_and_a_fixed_sidecar_resubmits_with_it() {
    let gw = Gateway::start(Options { pipeline: true, ..Options::default() });
    let f = gw.dir.path().join("INV-ACME-2026-0304.pdf");
    pdf(&f, 304);
    let meta = gw.dir.path().join("INV-ACME-2026-0304.pdf.meta.json");
    std::fs::write(&meta, br#"{ "po_number": "PO-1" }"#).expect("sidecar");
    let out = gw.sftp("acme", &format!("put {} /invoices/\nput {} /invoices/\n", meta.display(), f.display()));
    assert!(out.status.success(), "{}", text(&out));
    let dir = gw.spool().join("exceptions/invoices/acme");
    gw.wait_for(30, "the exception", || dir.join("INV-ACME-2026-0304.pdf.error.txt").exists());
    let why = std::fs::read_to_string(dir.join("INV-ACME-2026-0304.pdf.error.txt")).expect("reason");
    assert!(why.contains("po_number"), "{why}");
    let kept = dir.join("INV-ACME-2026-0304.pdf.meta.json");
    assert_eq!(std::fs::read(&kept).expect("the sidecar is beside the file"), br#"{ "po_number": "PO-1" }"#);
    // The partner sees both in its exception folder.
    let ls = gw.sftp("acme", "ls /exceptions/invoices\n");
    assert!(String::from_utf8_lossy(&ls.stdout).contains("INV-ACME-2026-0304.pdf.meta.json"), "{}", text(&ls));

    // Ops fix the sidecar and resubmit: the CLI moves the sidecar with the file.
    std::fs::write(&kept, br#"{ "po_number": "4500054321" }"#).expect("fix");
    let id = gw.in_state("excepted")[0].id.clone();
    let retry = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["exceptions", "retry", "--config", &gw.config.display().to_string(), &id])
        .output()
        .expect("wharf runs");
    assert!(retry.status.success(), "{}", text(&retry));
    gw.wait_for(30, "the resubmitted delivery", || gw.in_state("delivered").len() == 1);
    assert_eq!(metadata(&gw, "2026/ACME/INV-ACME-2026-0304.pdf")["metadata"]["po_number"], "4500054321");
    assert!(!kept.exists());
}
