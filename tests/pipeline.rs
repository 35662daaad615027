//! The inbound pipeline end to end: upload with a real client, rules decide, the fs target or an
//! exception folder receives the file.

use crate::support::{Gateway, Options, random_file, sha256_file, text};
use std::path::Path;

pub(crate) fn pdf(path: &Path, seed: u64) -> String {
    let mut body = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    let filler = path.with_extension("filler");
    random_file(&filler, 20_000, seed);
    body.extend(std::fs::read(&filler).expect("filler"));
    body.extend_from_slice(b"\ntrailer << /Root 1 0 R >>\n%%EOF\n");
    std::fs::write(path, &body).expect("pdf");
    sha256_file(path)
}

fn pipeline() -> Gateway {
    Gateway::start(Options { pipeline: true, ..Options::default() })
}

#[test]
fn a_good_invoice_is_delivered_with_its_metadata_over_sftp_and_ftp() {
    let gw = pipeline();
    let a = gw.dir.path().join("INV-ACME-2026-0001.pdf");
    let sha = pdf(&a, 1);
    let out = gw.sftp("acme", &format!("put {} /invoices/\n", a.display()));
    assert!(out.status.success(), "{}", text(&out));
    let b = gw.dir.path().join("INV-GLOBEX-2026-0002.pdf");
    let sha_b = pdf(&b, 2);
    let up = crate::support::curl(&["-T", &b.display().to_string(), &gw.ftp_url("globex", "/invoices/")]);
    assert!(up.status.success(), "{}", text(&up));

    gw.wait_for(30, "both deliveries", || gw.in_state("delivered").len() == 2);
    let ecm = gw.dir.path().join("ecm");
    let got = ecm.join("2026/ACME/INV-ACME-2026-0001.pdf");
    assert_eq!(sha256_file(&got), sha);
    assert_eq!(sha256_file(&ecm.join("2026/GLOBEX/INV-GLOBEX-2026-0002.pdf")), sha_b);
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ecm.join("2026/ACME/INV-ACME-2026-0001.pdf.metadata.json")).expect("metadata"),
    )
    .expect("json");
    assert_eq!(meta["sha256"], sha.as_str());
    assert_eq!(meta["account"], "acme");
    assert_eq!(meta["metadata"]["vendor"], "ACME");
    assert!(meta["metadata"].as_object().is_some_and(|m| m.len() > 2), "{meta}");
    // The journal has the receipt; the body left the spool; the inbound folder no longer lists it.
    let row = gw.in_state("delivered").into_iter().find(|t| t.account == "acme").expect("row");
    assert!(row.receipt.as_deref().is_some_and(|r| r.contains("2026/ACME/INV-ACME-2026-0001.pdf")), "{row:?}");
    assert!(!gw.spool().join(&row.body_path).exists());
    let ls = gw.sftp("acme", "ls /invoices\n");
    assert!(!String::from_utf8_lossy(&ls.stdout).contains("INV-ACME"), "{}", text(&ls));
    assert!(gw.audit().iter().any(|e| e["event"] == "delivered" && e["transfer_id"] == row.id.as_str()));
    assert!(wharf::audit::verify(&gw.spool().join("audit.jsonl")).is_ok());
}

#[test]
fn a_misnamed_file_goes_to_the_exception_folder_with_its_reason() {
    let gw = pipeline();
    let f = gw.dir.path().join("invoice march.pdf");
    pdf(&f, 3);
    let out = gw.sftp("acme", &format!("put \"{}\" \"/invoices/invoice march.pdf\"\n", f.display()));
    assert!(out.status.success(), "{}", text(&out));
    let dir = gw.spool().join("exceptions/invoices/acme");
    // The journal records `excepted` before the file moves: wait for the file itself.
    gw.wait_for(30, "the exception file", || dir.join("invoice march.pdf").exists());
    assert_eq!(gw.in_state("excepted").len(), 1);
    let txt = std::fs::read_to_string(dir.join("invoice march.pdf.error.txt")).expect("error.txt");
    assert!(txt.contains("What is wrong") && txt.contains("What to do"), "{txt}");
    assert!(txt.contains("INV-"), "the reason quotes what is expected: {txt}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("invoice march.pdf.error.json")).expect("error.json"))
            .expect("json");
    assert_eq!(json["account"], "acme");
    assert!(json["rule"].as_str().is_some_and(|r| !r.is_empty()));

    // The partner sees it read-only; ops see it under the account; another partner does not.
    let back = gw.dir.path().join("back.pdf");
    let acme = gw.sftp(
        "acme",
        &format!("ls /exceptions/invoices\nget \"/exceptions/invoices/invoice march.pdf\" {}\n", back.display()),
    );
    assert!(acme.status.success(), "{}", text(&acme));
    assert!(String::from_utf8_lossy(&acme.stdout).contains("invoice march.pdf.error.txt"), "{}", text(&acme));
    let rm = gw.sftp("acme", "rm \"/exceptions/invoices/invoice march.pdf\"\n");
    assert!(!rm.status.success(), "partners cannot delete their exceptions");
    let ops = gw.sftp("ops", "ls /exceptions/invoices/acme\n");
    assert!(String::from_utf8_lossy(&ops.stdout).contains("invoice march.pdf"), "{}", text(&ops));
    let globex = gw.sftp("globex", "ls -R /exceptions\n");
    assert!(!String::from_utf8_lossy(&globex.stdout).contains("march"), "{}", text(&globex));
    assert!(gw.audit().iter().any(|e| e["event"] == "excepted"));
}

#[test]
fn wrong_content_behind_a_pdf_name_is_excepted() {
    let gw = pipeline();
    let f = gw.dir.path().join("INV-ACME-2026-0003.pdf");
    random_file(&f, 5000, 4);
    let out = gw.sftp("acme", &format!("put {} /invoices/\n", f.display()));
    assert!(out.status.success(), "{}", text(&out));
    gw.wait_for(30, "the exception", || gw.in_state("excepted").len() == 1);
    let reason = gw.in_state("excepted")[0].reason.clone().unwrap_or_default();
    assert!(reason.to_lowercase().contains("pdf"), "{reason}");
    assert!(!gw.dir.path().join("ecm/2026/ACME/INV-ACME-2026-0003.pdf").exists());
}

#[test]
fn kill_9_while_processing_delivers_each_file_exactly_once() {
    let mut gw = pipeline();
    let mut batch = String::new();
    let mut shas = Vec::new();
    for i in 0..20 {
        let f = gw.dir.path().join(format!("INV-ACME-2026-{:04}.pdf", 100 + i));
        shas.push(pdf(&f, 10 + i));
        batch.push_str(&format!("put {} /invoices/\n", f.display()));
    }
    let out = gw.sftp("acme", &batch);
    assert!(out.status.success(), "{}", text(&out));
    gw.restart();
    gw.wait_for(60, "all 20 deliveries", || gw.in_state("delivered").len() == 20);
    let dir = gw.dir.path().join("ecm/2026/ACME");
    for (i, sha) in shas.iter().enumerate() {
        assert_eq!(&sha256_file(&dir.join(format!("INV-ACME-2026-{:04}.pdf", 100 + i))), sha);
    }
    let copies = std::fs::read_dir(&dir)
        .expect("ls")
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".json"))
        .count();
    assert_eq!(copies, 20, "no second copies (.v2) after the crash");
}

fn with_contracts_mount() -> Gateway {
    let extra = format!(
        "[[accounts]]\nname = \"legal\"\npassword_hash = \"{}\"\nmounts = [{{ path = \"/contracts\", box = \"inbound\", channel = \"contracts\", permissions = [\"list\", \"write\"] }}]\n",
        wharf::accounts::hash_password("legal-pw").expect("hash")
    );
    Gateway::start(Options { pipeline: true, extra, ..Options::default() })
}

#[test]
fn early_refusal_rejects_an_unmatched_name_at_open_with_what_is_expected() {
    let gw = with_contracts_mount();
    let f = gw.dir.path().join("contract.pdf");
    pdf(&f, 40);
    // SFTP: the open for write is refused, with the expected pattern in the message.
    let out = gw.sftp_password("legal", "legal-pw", &format!("put {} /contracts/contract.pdf\n", f.display()));
    assert!(!out.status.success(), "{}", text(&out));
    // OpenSSH's sftp shows only the status name for a failed open; the full reason (quoting what
    // is expected) is in the status message, which the audit trail records.
    assert!(
        gw.audit().iter().any(|e| e["event"] == "upload_refused"
            && e["account"] == "legal"
            && e["reason"].as_str().is_some_and(|r| r.contains("CTR-"))),
        "{:?}",
        gw.audit()
    );
    // FTP: STOR gets 553.
    let url = format!("ftp://legal:legal-pw@127.0.0.1:{}/contracts/contract.pdf", gw.ftp_port);
    let up = crate::support::curl(&["-T", &f.display().to_string(), "-w", "%{response_code}", &url]);
    assert!(!up.status.success());
    assert!(String::from_utf8_lossy(&up.stdout).contains("553"), "{}", text(&up));
    assert!(gw.transfers().is_empty(), "nothing was received: {:?}", gw.transfers());
    // A good name on the same channel is accepted and delivered.
    let good = gw.dir.path().join("CTR-V10001-20260115-Master_Services.pdf");
    pdf(&good, 41);
    let out = gw.sftp_password("legal", "legal-pw", &format!("put {} /contracts/\n", good.display()));
    assert!(out.status.success(), "{}", text(&out));
    gw.wait_for(30, "the contract's delivery", || gw.in_state("delivered").len() == 1);
}

#[test]
fn resubmit_by_moving_the_fixed_file_into_retry_delivers_it_with_lineage() {
    let gw = pipeline();
    let f = gw.dir.path().join("march.pdf");
    let sha = pdf(&f, 50);
    let out = gw.sftp("acme", &format!("put {} /invoices/march.pdf\n", f.display()));
    assert!(out.status.success(), "{}", text(&out));
    let dir = gw.spool().join("exceptions/invoices/acme");
    gw.wait_for(30, "the exception", || dir.join("march.pdf.error.json").exists() && dir.join("march.pdf").exists());
    let original = gw.in_state("excepted").pop().expect("excepted row");

    // Ops fix the name by moving the file into retry/, with an override of an overridable field.
    let meta = gw.dir.path().join("m.json");
    std::fs::write(&meta, r#"{"po_number": "4500012345"}"#).expect("meta");
    let out = gw.sftp(
        "ops",
        &format!(
            "put {} /exceptions/invoices/acme/retry/INV-ACME-2026-0077.pdf.meta.json\nrename /exceptions/invoices/acme/march.pdf /exceptions/invoices/acme/retry/INV-ACME-2026-0077.pdf\n",
            meta.display()
        ),
    );
    assert!(out.status.success(), "{}", text(&out));
    gw.wait_for(30, "the resubmitted delivery", || gw.in_state("delivered").len() == 1);
    let delivered = gw.in_state("delivered").pop().expect("row");
    assert_eq!(delivered.attempt, 2);
    assert_eq!(delivered.parent_id.as_deref(), Some(original.id.as_str()));
    assert_eq!(delivered.protocol, "resubmit");
    let out = gw.dir.path().join("ecm/2026/ACME/INV-ACME-2026-0077.pdf");
    assert_eq!(sha256_file(&out), sha);
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(gw.dir.path().join("ecm/2026/ACME/INV-ACME-2026-0077.pdf.metadata.json")).expect("meta"),
    )
    .expect("json");
    assert_eq!(m["metadata"]["po_number"], "4500012345");
    // The folder is clean: the file and its reason files are gone, retry/ is empty.
    assert!(!dir.join("march.pdf.error.txt").exists() && !dir.join("march.pdf.error.json").exists());
    assert_eq!(std::fs::read_dir(dir.join("retry")).expect("retry/").count(), 0);
    assert!(gw.audit().iter().any(|e| e["event"] == "resubmitted"
        && e["reason"].as_str().is_some_and(|r| r.contains(&original.id) && r.contains("overrides"))));
}

#[test]
fn rules_reload_on_change_and_a_broken_edit_keeps_the_previous_rules() {
    let gw = Gateway::start(Options { pipeline: true, own_rules: true, ..Options::default() });
    let rules = gw.dir.path().join("rules/invoices.toml");
    let text = std::fs::read_to_string(&rules).expect("rules");
    let edited = text
        .replace("destination = \"{year}/{vendor}/{file.name}\"", "destination = \"reloaded/{vendor}/{file.name}\"");
    assert_ne!(edited, text, "the shipped destination template changed; update this test");
    std::fs::write(&rules, &edited).expect("edit");
    gw.wait_for(20, "the reload", || gw.log().contains("rules reloaded"));
    let f = gw.dir.path().join("INV-ACME-2026-0101.pdf");
    pdf(&f, 60);
    assert!(gw.sftp("acme", &format!("put {} /invoices/\n", f.display())).status.success());
    gw.wait_for(30, "the delivery under the new destination", || {
        gw.dir.path().join("ecm/reloaded/ACME/INV-ACME-2026-0101.pdf").exists()
    });

    // A broken edit (an unclosed regex group) is refused with its location; the rules stay.
    std::fs::write(&rules, edited.replace("(?P<seq>\\d{4})", "(?P<seq>\\d{4}")).expect("break");
    gw.wait_for(20, "the refused reload", || gw.log().contains("rules not reloaded"));
    assert!(gw.log().contains("invoices.toml:"), "the problem names the file and line: {}", gw.log());
    let g = gw.dir.path().join("INV-ACME-2026-0102.pdf");
    pdf(&g, 61);
    assert!(gw.sftp("acme", &format!("put {} /invoices/\n", g.display())).status.success());
    gw.wait_for(30, "the delivery with the previous rules", || {
        gw.dir.path().join("ecm/reloaded/ACME/INV-ACME-2026-0102.pdf").exists()
    });
}

#[test]
fn exceptions_cli_lists_resubmits_under_a_new_name_and_discards() {
    let gw = pipeline();
    for (name, seed) in [("first.pdf", 70), ("second.pdf", 71)] {
        let f = gw.dir.path().join(name);
        pdf(&f, seed);
        assert!(gw.sftp("acme", &format!("put {} /invoices/{name}\n", f.display())).status.success());
    }
    let dir = gw.spool().join("exceptions/invoices/acme");
    gw.wait_for(30, "two exceptions", || {
        dir.join("first.pdf.error.json").exists() && dir.join("second.pdf.error.json").exists()
    });
    let wharf = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wharf")).args(args).output().expect("wharf runs")
    };
    let config = gw.config.display().to_string();
    let list = wharf(&["exceptions", "list", "--config", &config]);
    let listing = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        listing.contains("first.pdf") && listing.contains("second.pdf") && listing.contains("2 file(s)"),
        "{listing}"
    );
    let id_of = |name: &str| {
        gw.in_state("excepted").into_iter().find(|t| t.name == name).map(|t| t.id).expect("excepted transfer")
    };
    let (first, second) = (id_of("first.pdf"), id_of("second.pdf"));

    let retry = wharf(&["exceptions", "retry", "--config", &config, &first, "--as", "INV-ACME-2026-0055.pdf"]);
    assert!(retry.status.success(), "{}", text(&retry));
    let discard = wharf(&["exceptions", "discard", "--config", &config, &second]);
    assert!(discard.status.success(), "{}", text(&discard));

    gw.wait_for(30, "the resubmitted delivery", || gw.dir.path().join("ecm/2026/ACME/INV-ACME-2026-0055.pdf").exists());
    gw.wait_for(30, "the discard", || gw.in_state("discarded").len() == 1);
    let delivered = gw.in_state("delivered").pop().expect("delivered");
    assert_eq!((delivered.attempt, delivered.parent_id.as_deref()), (2, Some(first.as_str())));
    assert_eq!(gw.in_state("discarded")[0].id, second);
    assert!(!dir.join("second.pdf.error.txt").exists() && !dir.join("discard/second.pdf").exists());
    assert!(gw.audit().iter().any(|e| e["event"] == "discarded" && e["transfer_id"] == second.as_str()));
    let after = wharf(&["exceptions", "list", "--config", &config]);
    assert!(String::from_utf8_lossy(&after.stdout).contains("0 file(s)"), "{}", text(&after));
    // An unknown id is a clear error.
    let unknown = wharf(&["exceptions", "retry", "--config", &config, "01NOSUCHTRANSFER"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn the_sender_collects_an_ack_or_nack_receipt_from_its_outbound_folder() {
    let gw = pipeline();
    let good = gw.dir.path().join("INV-ACME-2026-0201.pdf");
    pdf(&good, 80);
    let bad = gw.dir.path().join("scan.pdf");
    pdf(&bad, 81);
    let out = gw.sftp("acme", &format!("put {} /invoices/\nput {} /invoices/\n", good.display(), bad.display()));
    assert!(out.status.success(), "{}", text(&out));
    let receipts = gw.spool().join("outbound/acme/receipts");
    gw.wait_for(30, "both receipts", || {
        receipts.join("INV-ACME-2026-0201.pdf.ack.json").exists() && receipts.join("scan.pdf.nack.json").exists()
    });
    let (ack, nack) = (gw.dir.path().join("ack.json"), gw.dir.path().join("nack.json"));
    let out = gw.sftp(
        "acme",
        &format!(
            "get /outbound/receipts/INV-ACME-2026-0201.pdf.ack.json {}\nget /outbound/receipts/scan.pdf.nack.json {}\n",
            ack.display(),
            nack.display()
        ),
    );
    assert!(out.status.success(), "{}", text(&out));
    let ack: serde_json::Value = serde_json::from_slice(&std::fs::read(&ack).expect("ack")).expect("json");
    assert_eq!(ack["outcome"], "delivered");
    assert_eq!(ack["path"], "2026/ACME/INV-ACME-2026-0201.pdf");
    let nack: serde_json::Value = serde_json::from_slice(&std::fs::read(&nack).expect("nack")).expect("json");
    assert_eq!(nack["outcome"], "excepted");
    assert!(nack["reason"].as_str().is_some_and(|r| r.contains("INV-")), "{nack}");
    let globex = gw.sftp("globex", "ls -R /outbound\n");
    assert!(!String::from_utf8_lossy(&globex.stdout).contains("scan.pdf"), "{}", text(&globex));
}

#[test]
fn a_hot_folder_file_is_taken_once_complete_and_delivered() {
    let extra = "[[hot_folders]]\npath = \"scanner\"\nchannel = \"invoices\"\naccount = \"acme\"\n".to_string();
    let gw = Gateway::start(Options { pipeline: true, extra, ..Options::default() });
    let dir = gw.dir.path().join("scanner");
    gw.wait_for(10, "the hot folder", || dir.is_dir());
    // A dot-file (a copy in progress, by convention) is left alone; the finished file is taken.
    let src = gw.dir.path().join("INV-GLOBEX-2026-0301.pdf");
    let sha = pdf(&src, 90);
    std::fs::copy(&src, dir.join(".INV-GLOBEX-2026-0301.pdf.part")).expect("copy");
    std::fs::rename(dir.join(".INV-GLOBEX-2026-0301.pdf.part"), dir.join("INV-GLOBEX-2026-0301.pdf")).expect("rename");
    std::fs::write(dir.join(".in-progress"), b"x").expect("write");
    let out = gw.dir.path().join("ecm/2026/GLOBEX/INV-GLOBEX-2026-0301.pdf");
    gw.wait_for(30, "the delivery", || out.exists());
    assert_eq!(sha256_file(&out), sha);
    assert!(!dir.join("INV-GLOBEX-2026-0301.pdf").exists(), "taken files leave the hot folder");
    assert!(dir.join(".in-progress").exists(), "dot-files are left alone");
    let row = gw.in_state("delivered").pop().expect("row");
    assert_eq!((row.protocol.as_str(), row.account.as_str()), ("hotfolder", "acme"));
}
