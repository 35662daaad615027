//! The `opentext` target end to end: a real gateway delivers uploads into the Content Server
//! emulator (`support::otcs`, the documented REST API, strict), with faults injected.

use crate::pipeline::pdf;
use crate::support::otcs::{Emulator, Seed};
use crate::support::{Gateway, Options, text};

/// The emulator on its own runtime (the harness and clients are blocking).
pub(crate) struct Ecm {
    pub(crate) emu: Emulator,
    /// Holds the password file the gateway reads at every start.
    pub(crate) secrets: tempfile::TempDir,
    /// Serves the emulator; dropped after it.
    pub(crate) _rt: tokio::runtime::Runtime,
}

impl Ecm {
    pub(crate) fn start() -> Ecm {
        Ecm::start_with(Seed::default())
    }

    fn start_with(seed: Seed) -> Ecm {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let emu = rt.block_on(Emulator::start(seed));
        Ecm { emu, secrets: tempfile::tempdir().expect("secrets"), _rt: rt }
    }

    /// An emulator whose Large File Upload takes files from 1 KiB, in parts of 8 KiB.
    fn with_small_lfu_parts() -> Ecm {
        let mut seed = Seed::default();
        seed.multipart.min_size = 1024;
        seed.multipart.part_size = LFU_PART;
        Ecm::start_with(seed)
    }

    pub(crate) fn folder_id(&self, path: &str) -> i64 {
        self.emu.find_path(path).unwrap_or_else(|| panic!("the seed has {path}")).id
    }
}

/// The emulator's part size in the Large File Upload tests; the test PDFs are about 20 KB.
const LFU_PART: u64 = 8192;

/// `[[targets]] otcs` for the emulator, with `extra` lines in `[targets.opentext]`.
pub(crate) fn target(ecm: &Ecm, extra: &str) -> String {
    let secret = ecm.secrets.path().join("otcs.secret");
    std::fs::write(&secret, "wharf-pw\n").expect("secret");
    format!(
        "\n[[targets]]\nname = \"otcs\"\ntype = \"opentext\"\n[targets.opentext]\nbase_url = \"{}\"\nusername = \"wharf\"\n\
         password_file = \"{}\"\ntimeout_secs = 10\n{extra}\n",
        ecm.emu.base_url(),
        secret.display()
    )
}

/// Rules of `invoices` sent to `otcs` (fast retries) instead of the demo folder.
fn to_otcs() -> Vec<(&'static str, String, String)> {
    vec![
        ("invoices.toml", "name = \"demo-ecm\"".into(), "name = \"otcs\"".into()),
        ("invoices.toml", "backoff_secs = 30".into(), "backoff_secs = 1".into()),
    ]
}

fn gateway(ecm: &Ecm, target_extra: &str, edits: Vec<(&'static str, String, String)>) -> Gateway {
    let extra = target(ecm, target_extra);
    Gateway::start(Options { pipeline: true, own_rules: true, rules_edits: edits, extra, ..Options::default() })
}

fn invoice_target(ecm: &Ecm) -> String {
    format!(
        "root_folder = {}\ncreate_folders = true\ncategory = {{ id = 9830, attributes = {{ vendor = 2, invoice_number = 3 }} }}\nchecksum_attribute = 5\n",
        ecm.folder_id("Enterprise/Invoices")
    )
}

fn upload(gw: &Gateway, name: &str, seed: u64) -> String {
    let f = gw.dir.path().join(name);
    let sha = pdf(&f, seed);
    let out = gw.sftp("acme", &format!("put {} /invoices/\n", f.display()));
    assert!(out.status.success(), "{}", text(&out));
    sha
}

/// The documents named `name` in the invoices folder of ACME for 2026, with their versions.
fn documents(ecm: &Ecm, name: &str) -> Vec<crate::support::otcs::NodeView> {
    let folder = ecm.folder_id("Enterprise/Invoices/2026/ACME");
    ecm.emu.children(folder).into_iter().filter(|c| c.name.starts_with(name.trim_end_matches(".pdf"))).collect()
}

#[test]
fn opentext_first_delivery_sets_category_attributes_from_metadata() {
    let ecm = Ecm::start();
    let gw = gateway(&ecm, &invoice_target(&ecm), to_otcs());
    let sha = upload(&gw, "INV-ACME-2026-0401.pdf", 401);
    gw.wait_for(30, "the delivery", || gw.in_state("delivered").len() == 1);
    let node = ecm.emu.find_path("Enterprise/Invoices/2026/ACME/INV-ACME-2026-0401.pdf").expect("the document");
    assert_eq!(node.type_, 144);
    assert_eq!(node.versions.len(), 1);
    assert_eq!(node.versions[0].sha256, sha, "the bytes arrived unchanged");
    assert_eq!(node.categories.get("9830_2"), Some(&serde_json::json!("ACME")));
    assert_eq!(node.categories.get("9830_3"), Some(&serde_json::json!("ACME-2026-0401")));
    assert_eq!(node.categories.get("9830_5"), Some(&serde_json::json!(sha)));
    let row = gw.in_state("delivered").pop().expect("row");
    let receipt: serde_json::Value = serde_json::from_str(row.receipt.as_deref().expect("receipt")).expect("json");
    assert_eq!(receipt["id"], node.id.to_string());
    assert_eq!(receipt["version"], 1);
    assert!(ecm.emu.find_path("Enterprise/Invoices/2026/ACME").is_some_and(|f| f.type_ == 0), "folders were made");
}

#[test]
fn opentext_a_second_file_of_the_same_name_becomes_a_version() {
    let ecm = Ecm::start();
    let gw = gateway(&ecm, &invoice_target(&ecm), to_otcs());
    upload(&gw, "INV-ACME-2026-0402.pdf", 402);
    gw.wait_for(30, "the first delivery", || gw.in_state("delivered").len() == 1);
    let second = upload(&gw, "INV-ACME-2026-0402.pdf", 403);
    gw.wait_for(30, "the second delivery", || gw.in_state("delivered").len() == 2);
    let node = ecm.emu.find_path("Enterprise/Invoices/2026/ACME/INV-ACME-2026-0402.pdf").expect("the document");
    assert_eq!(node.versions.len(), 2, "{node:?}");
    assert_eq!(node.versions[1].sha256, second);
    assert_eq!(node.categories.get("9830_5"), Some(&serde_json::json!(second)), "the checksum follows the version");
    assert_eq!(ecm.emu.children(ecm.folder_id("Enterprise/Invoices/2026/ACME")).len(), 1);
}

#[test]
fn opentext_reject_policy_sends_a_taken_name_to_exceptions() {
    let ecm = Ecm::start();
    let mut edits = to_otcs();
    edits.push(("invoices.toml", "conflict = \"version\"".into(), "conflict = \"reject\"".into()));
    let gw = gateway(&ecm, &invoice_target(&ecm), edits);
    upload(&gw, "INV-ACME-2026-0404.pdf", 404);
    gw.wait_for(30, "the first delivery", || gw.in_state("delivered").len() == 1);
    upload(&gw, "INV-ACME-2026-0404.pdf", 405);
    gw.wait_for(30, "the exception", || gw.in_state("excepted").len() == 1);
    let reason = gw.in_state("excepted")[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("already exists") && reason.contains("INV-ACME-2026-0404.pdf"), "{reason}");
}

#[test]
fn opentext_contracts_go_into_the_vendors_business_workspace_made_when_missing() {
    let ecm = Ecm::start();
    let mut edits = to_otcs();
    edits.push((
        "invoices.toml",
        "column = \"name\", missing = \"except\" },".into(),
        "column = \"name\", missing = \"except\" },\n  { field = \"vendor_key\", table = \"vendors\", key = \"{vendor}\", key_column = \"code\", column = \"vendor_key\", missing = \"except\" },".into(),
    ));
    edits.push((
        "invoices.toml",
        "destination = \"{year}/{vendor}/{file.name}\"".into(),
        "destination = \"{file.name}\"".into(),
    ));
    let ws = "root_folder = 2000\ncreate_folders = true\nworkspace = { type_id = 10, bo_id = \"{vendor_key}\", name = \"{vendor_name}\", template_id = 20, create = true, subfolder = \"Contracts\" }\n";
    let gw = gateway(&ecm, ws, edits);
    upload(&gw, "INV-ACME-2026-0406.pdf", 406);
    let g = gw.dir.path().join("INV-GLOBEX-2026-0407.pdf");
    pdf(&g, 407);
    assert!(gw.sftp("globex", &format!("put {} /invoices/\n", g.display())).status.success());
    gw.wait_for(30, "both deliveries", || gw.in_state("delivered").len() == 2);
    let made = ecm.emu.requests();
    let made = made.iter().filter(|r| r.method == "POST" && r.path.ends_with("/businessworkspaces") && r.status < 300);
    assert_eq!(made.count(), 1, "one workspace created (GLOBEX's); ACME's was found by its bo_id");
    let globex = workspace(&ecm, "Globex Inc.").expect("a workspace was made for GLOBEX from template 20");
    assert_eq!(globex.type_, 848);
    assert_eq!(globex.business_properties.as_ref().map(|b| b.bo_id.as_str()), Some("V10002"));
    let contracts =
        ecm.emu.children(globex.id).into_iter().find(|c| c.name == "Contracts").expect("the template's subfolder");
    assert!(ecm.emu.children(contracts.id).iter().any(|d| d.name == "INV-GLOBEX-2026-0407.pdf"));
    // ACME's existing workspace (bo_id V10001) got its document in Contracts.
    let acme_ws = workspace(&ecm, "ACME Corp").expect("seeded");
    let acme_contracts = ecm.emu.children(acme_ws.id).into_iter().find(|c| c.name == "Contracts").expect("subfolder");
    assert!(ecm.emu.children(acme_contracts.id).iter().any(|d| d.name == "INV-ACME-2026-0406.pdf"));
}

#[test]
fn opentext_an_expired_ticket_is_renewed_mid_run() {
    let ecm = Ecm::start();
    let gw = gateway(&ecm, &invoice_target(&ecm), to_otcs());
    upload(&gw, "INV-ACME-2026-0408.pdf", 408);
    gw.wait_for(30, "the first delivery", || gw.in_state("delivered").len() == 1);
    ecm.emu.expire_tickets();
    upload(&gw, "INV-ACME-2026-0409.pdf", 409);
    gw.wait_for(30, "the second delivery", || gw.in_state("delivered").len() == 2);
    let reqs = ecm.emu.requests();
    let auths = reqs.iter().filter(|r| r.method == "POST" && r.path.ends_with("/api/v1/auth")).count();
    assert_eq!(auths, 2, "authenticated once at first use and once after the expiry");
    assert!(reqs.iter().any(|r| r.status == 401), "the expired ticket was refused once");
    assert!(gw.in_state("excepted").is_empty() && gw.audit().iter().all(|e| e["event"] != "delivery_retry"));
}

#[test]
fn opentext_429_and_500_are_retried_until_delivered() {
    let ecm = Ecm::start();
    let gw = gateway(&ecm, &invoice_target(&ecm), to_otcs());
    ecm.emu.faults().throttle_next(2, 1);
    ecm.emu.faults().fail_next(1, 500, "Service temporarily unavailable");
    upload(&gw, "INV-ACME-2026-0410.pdf", 410);
    gw.wait_for(60, "the delivery", || gw.in_state("delivered").len() == 1);
    let reqs = ecm.emu.requests();
    assert!(reqs.iter().filter(|r| r.status == 429).count() >= 2 && reqs.iter().any(|r| r.status == 500));
    assert!(gw.audit().iter().any(|e| e["event"] == "delivery_retry"), "the 500 went through the pipeline's retry");
    let docs = documents(&ecm, "INV-ACME-2026-0410.pdf");
    assert_eq!((docs.len(), docs[0].versions.len()), (1, 1), "{docs:?}");
}

#[test]
fn opentext_a_400_ends_in_an_exception_quoting_the_server() {
    let ecm = Ecm::start();
    let gw = gateway(&ecm, &invoice_target(&ecm), to_otcs());
    ecm.emu.faults().fail_next(1, 400, "Sorry, the item you requested could not be accessed.");
    upload(&gw, "INV-ACME-2026-0411.pdf", 411);
    // The journal says excepted just before the file and its reason are placed.
    let reason = gw.spool().join("exceptions/invoices/acme/INV-ACME-2026-0411.pdf.error.txt");
    gw.wait_for(30, "the exception", || gw.in_state("excepted").len() == 1 && reason.exists());
    let why = std::fs::read_to_string(&reason).expect("reason file");
    assert!(why.contains("Content Server answered 400: Sorry, the item you requested could not be accessed."), "{why}");
}

#[test]
fn opentext_a_lost_reply_and_a_kill_9_never_make_a_second_document() {
    let ecm = Ecm::start();
    // A backoff long enough to kill the gateway before its retry.
    let edits = vec![
        ("invoices.toml", "name = \"demo-ecm\"".into(), "name = \"otcs\"".into()),
        ("invoices.toml", "backoff_secs = 30".into(), "backoff_secs = 8".into()),
    ];
    let mut gw = gateway(&ecm, &invoice_target(&ecm), edits);
    // The server creates the document, then the connection drops before the reply.
    ecm.emu.faults().fail_after_create(1);
    upload(&gw, "INV-ACME-2026-0412.pdf", 412);
    gw.wait_for(30, "the created document", || creates_committed(&ecm, "INV-ACME-2026-0412.pdf"));
    // The gateway never learnt of it; kill it before the retry and start again.
    gw.kill9();
    gw.restart();
    gw.wait_for(60, "the delivery after the restart", || gw.in_state("delivered").len() == 1);
    let docs = documents(&ecm, "INV-ACME-2026-0412.pdf");
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0].versions.len(), 1);
    let row = gw.in_state("delivered").pop().expect("row");
    assert!(row.receipt.as_deref().is_some_and(|r| r.contains("\"already_delivered\":true")), "{row:?}");
}

/// A workspace of the seed's Vendor type (location: Enterprise/Vendors) by name.
fn workspace(ecm: &Ecm, name: &str) -> Option<crate::support::otcs::NodeView> {
    ecm.emu.children(ecm.folder_id("Enterprise/Vendors")).into_iter().find(|n| n.name == name)
}

fn creates_committed(ecm: &Ecm, name: &str) -> bool {
    ecm.emu.find_path(&format!("Enterprise/Invoices/2026/ACME/{name}")).is_some()
}

#[test]
fn opentext_example_config_passes_check() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["check", "--config", concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/opentext.example.toml")])
        .output()
        .expect("wharf runs");
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn opentext_outbound_listing_pages_and_filters_by_attribute_and_date() {
    use wharf::targets::opentext::listing;
    use wharf::targets::{Conflict, Delivery, Document, Target};
    let ecm = Ecm::start();
    let folder = ecm.folder_id("Enterprise/Invoices");
    let target = direct_target(
        &ecm,
        &format!("root_folder = {folder}\ncategory = {{ id = 9830, attributes = {{ vendor = 2, status = 6 }} }}\n"),
    );
    let body = ecm.secrets.path().join("body.pdf");
    std::fs::write(&body, b"%PDF-1.7\n%%EOF\n").expect("body");
    ecm._rt.block_on(async {
        for i in 0..7 {
            let status = if i % 2 == 0 { "Approved" } else { "Draft" };
            let doc = Document {
                transfer_id: format!("T{i}"),
                body: body.clone(),
                destination: format!("DOC-{i}.pdf"),
                sha256: format!("{i:064}"),
                size: 15,
                account: "acme".into(),
                channel: "invoices".into(),
                metadata: [("vendor".to_string(), "ACME".to_string()), ("status".to_string(), status.to_string())]
                    .into(),
                conflict: Conflict::Version,
            };
            assert!(matches!(target.deliver(&doc).await, Delivery::Delivered(_)), "DOC-{i}");
        }
        let approved = ("9830_6".to_string(), "Approved".to_string());
        let q = listing::Query { folder, attribute: Some(approved.clone()), page_size: 2, ..Default::default() };
        let got = listing::list(target.client(), &q).await.expect("list");
        let names: Vec<&str> = got.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(names.iter().all(|n| ["DOC-0.pdf", "DOC-2.pdf", "DOC-4.pdf", "DOC-6.pdf"].contains(n)), "{names:?}");
        let pages = ecm
            .emu
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(&format!("/nodes/{folder}/nodes")) && r.query.contains("limit=2"))
            .count();
        assert_eq!(pages, 4, "7 documents in pages of 2");
        // From the newest on (inclusive: `modify_date` has whole seconds, so the watermark's own
        // second is listed again): only documents of that second; the content streams back whole.
        let newest = got.iter().map(|d| d.modified.clone()).max().expect("dates");
        let from = listing::Query { folder, modified_after: Some(newest.clone()), page_size: 2, ..Default::default() };
        let later = listing::list(target.client(), &from).await.expect("list");
        assert!(!later.is_empty() && later.iter().all(|d| d.modified == newest), "{later:?}");
        let after = format!("{newest}~"); // sorts after every date of that second
        let none = listing::Query { folder, modified_after: Some(after), page_size: 2, ..Default::default() };
        let later = listing::list(target.client(), &none).await.expect("list");
        assert!(later.is_empty(), "nothing is newer than the newest: {later:?}");
        let all = listing::Query { folder, modified_after: Some("1970-01-01T00:00:00Z".into()), ..Default::default() };
        assert_eq!(listing::list(target.client(), &all).await.expect("list").len(), 7);
        let mut stream = listing::download(target.client(), got[0].id).await.expect("download");
        let mut bytes = Vec::new();
        while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
            bytes.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_eq!(bytes, b"%PDF-1.7\n%%EOF\n");
    });
}

#[test]
fn opentext_an_otds_bearer_token_is_traded_for_a_ticket() {
    use wharf::targets::opentext::OpenTextTarget;
    use wharf::targets::{Conflict, Delivery, Document, Target};
    let ecm = Ecm::start();
    let var = format!("WHARF_TEST_OTDS_TOKEN_{}", std::process::id());
    // SAFETY: a variable of this test's own name, read by this test only.
    unsafe { std::env::set_var(&var, "wharf-otds-token") };
    let text = format!(
        "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n[[targets]]\nname = \"otcs\"\ntype = \"opentext\"\n\
         [targets.opentext]\nbase_url = \"{}\"\notds_token_env = \"{var}\"\nroot_folder = {}\n",
        ecm.emu.base_url(),
        ecm.folder_id("Enterprise/Contracts")
    );
    let config = wharf::config::Config::parse(&ecm.secrets.path().join("w.toml"), &text).expect("config");
    let wharf::config::TargetKind::OpenText(cfg) = &config.targets[0].kind else { panic!("opentext") };
    let target = OpenTextTarget::new("otcs", (**cfg).clone()).expect("target");
    let body = ecm.secrets.path().join("c.pdf");
    std::fs::write(&body, b"%PDF-1.7\n%%EOF\n").expect("body");
    let doc = Document {
        transfer_id: "T1".into(),
        body,
        destination: "CTR-1.pdf".into(),
        sha256: "ab".repeat(32),
        size: 15,
        account: "acme".into(),
        channel: "contracts".into(),
        metadata: Default::default(),
        conflict: Conflict::Reject,
    };
    let outcome = ecm._rt.block_on(target.deliver(&doc));
    assert!(matches!(outcome, Delivery::Delivered(_)), "{outcome:?}");
    let reqs = ecm.emu.requests();
    assert!(reqs.iter().any(|r| r.method == "GET" && r.path.ends_with("/api/v1/auth") && r.status == 200), "{reqs:?}");
    assert!(!reqs.iter().any(|r| r.method == "POST" && r.path.ends_with("/api/v1/auth")));
    assert!(ecm.emu.find_path("Enterprise/Contracts/CTR-1.pdf").is_some());
}

/// The Large File Upload calls (`/api/v2/multipart...`) the emulator saw, in order.
fn lfu_calls(ecm: &Ecm) -> Vec<crate::support::otcs::RequestRecord> {
    ecm.emu.requests().into_iter().filter(|r| r.path.contains("/api/v2/multipart")).collect()
}

/// Sessions opened (`POST /api/v2/multipart`) and part uploads (`POST .../{key}/{n}`) of part `n`.
fn sessions_and_part(ecm: &Ecm, n: u64) -> (usize, Vec<u16>) {
    let calls = lfu_calls(ecm);
    let opened = calls.iter().filter(|r| r.method == "POST" && r.path.ends_with("/api/v2/multipart")).count();
    let part = calls
        .iter()
        .filter(|r| {
            r.method == "POST" && r.path.rsplit('/').nth(2) == Some("multipart") && r.path.ends_with(&format!("/{n}"))
        })
        .map(|r| r.status)
        .collect();
    (opened, part)
}

/// A target driven directly (no gateway): `[targets.opentext]` with the emulator's URL and
/// password file, plus `opentext` lines.
pub(crate) fn direct_target(ecm: &Ecm, opentext: &str) -> wharf::targets::opentext::OpenTextTarget {
    let secret = ecm.secrets.path().join("pw");
    std::fs::write(&secret, "wharf-pw\n").expect("secret");
    let text = format!(
        "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n[[targets]]\nname = \"otcs\"\ntype = \"opentext\"\n\
         [targets.opentext]\nbase_url = \"{}\"\nusername = \"wharf\"\npassword_file = \"{}\"\n{opentext}",
        ecm.emu.base_url(),
        secret.display()
    );
    let config = wharf::config::Config::parse(&ecm.secrets.path().join("w.toml"), &text).expect("config");
    let wharf::config::TargetKind::OpenText(cfg) = &config.targets[0].kind else { panic!("opentext") };
    wharf::targets::opentext::OpenTextTarget::new("otcs", (**cfg).clone()).expect("target")
}

fn lfu_target(ecm: &Ecm) -> String {
    format!("{}multipart_threshold_bytes = {LFU_PART}\n", invoice_target(ecm))
}

#[test]
fn opentext_a_file_above_the_threshold_is_sent_through_a_large_file_upload_session() {
    let ecm = Ecm::with_small_lfu_parts();
    let gw = gateway(&ecm, &lfu_target(&ecm), to_otcs());
    let sha = upload(&gw, "INV-ACME-2026-0420.pdf", 420);
    gw.wait_for(30, "the delivery", || gw.in_state("delivered").len() == 1);
    let node = ecm.emu.find_path("Enterprise/Invoices/2026/ACME/INV-ACME-2026-0420.pdf").expect("the document");
    assert_eq!(node.versions.len(), 1);
    assert_eq!(node.versions[0].sha256, sha, "the parts add up to the upload");
    assert!(node.versions[0].via_upload_key, "created from the session's upload_key, not a file part");
    assert_eq!(node.categories.get("9830_5"), Some(&serde_json::json!(sha)), "the create carried the categories");
    let parts = node.size.div_ceil(LFU_PART);
    assert!(parts >= 2, "the test file spans several parts ({} bytes)", node.size);
    let calls = lfu_calls(&ecm);
    let shape: Vec<(&str, String)> = calls
        .iter()
        .map(|r| {
            let tail = r.path.split("/api/v2/multipart").nth(1).unwrap_or_default();
            // The key varies; keep the shape: "", "/settings", "/{key}", "/{key}/{n}".
            let tail = match tail.split('/').collect::<Vec<_>>()[..] {
                ["", "settings"] => "/settings".to_string(),
                ["", _key] => "/{key}".to_string(),
                ["", _key, n] => format!("/{{key}}/{n}"),
                _ => tail.to_string(),
            };
            (r.method.as_str(), tail)
        })
        .collect();
    let mut expected = vec![("GET", "/settings".to_string()), ("POST", String::new())];
    expected.extend((1..=parts).map(|n| ("POST", format!("/{{key}}/{n}"))));
    expected.push(("POST", "/{key}".to_string()));
    assert_eq!(shape, expected, "settings, begin, every part in order, complete");
    assert!(calls.iter().all(|r| r.status == 200), "{calls:?}");

    // A body under the threshold still goes as one `file` part.
    let small = gw.dir.path().join("INV-ACME-2026-0421.pdf");
    std::fs::write(&small, b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
        .expect("pdf");
    assert!(gw.sftp("acme", &format!("put {} /invoices/\n", small.display())).status.success());
    gw.wait_for(30, "the small delivery", || gw.in_state("delivered").len() == 2);
    let node = ecm.emu.find_path("Enterprise/Invoices/2026/ACME/INV-ACME-2026-0421.pdf").expect("the small document");
    assert!(!node.versions[0].via_upload_key);
    assert_eq!(lfu_calls(&ecm).len(), calls.len(), "no session for a small file");
}

#[test]
fn opentext_a_large_file_of_a_taken_name_becomes_a_version_through_upload_key() {
    let ecm = Ecm::with_small_lfu_parts();
    let gw = gateway(&ecm, &lfu_target(&ecm), to_otcs());
    upload(&gw, "INV-ACME-2026-0422.pdf", 422);
    gw.wait_for(30, "the first delivery", || gw.in_state("delivered").len() == 1);
    let second = upload(&gw, "INV-ACME-2026-0422.pdf", 423);
    gw.wait_for(30, "the second delivery", || gw.in_state("delivered").len() == 2);
    let node = ecm.emu.find_path("Enterprise/Invoices/2026/ACME/INV-ACME-2026-0422.pdf").expect("the document");
    assert_eq!(node.versions.len(), 2, "{node:?}");
    assert_eq!(node.versions[1].sha256, second);
    assert!(node.versions.iter().all(|v| v.via_upload_key), "{:?}", node.versions);
    assert_eq!(node.categories.get("9830_5"), Some(&serde_json::json!(second)), "the values follow the version");
    let reqs = ecm.emu.requests();
    let versions = format!("/api/v2/nodes/{}/versions", node.id);
    assert!(reqs.iter().any(|r| r.method == "POST" && r.path.ends_with(&versions) && r.status == 200), "{reqs:?}");
    let settings = reqs.iter().filter(|r| r.path.ends_with("/api/v2/multipart/settings")).count();
    assert_eq!(settings, 1, "the settings are asked once per target");
    assert_eq!(sessions_and_part(&ecm, 1).0, 2, "one session per delivery");
}

#[test]
fn opentext_a_large_file_upload_part_failing_once_is_sent_again_in_place() {
    let ecm = Ecm::with_small_lfu_parts();
    let gw = gateway(&ecm, &lfu_target(&ecm), to_otcs());
    ecm.emu.faults().fail_part(2, 1, 500, "Service temporarily unavailable");
    let sha = upload(&gw, "INV-ACME-2026-0424.pdf", 424);
    gw.wait_for(30, "the delivery", || gw.in_state("delivered").len() == 1);
    let node = ecm.emu.find_path("Enterprise/Invoices/2026/ACME/INV-ACME-2026-0424.pdf").expect("the document");
    assert_eq!((node.versions.len(), node.versions[0].sha256.as_str()), (1, sha.as_str()));
    assert!(node.versions[0].via_upload_key);
    let (opened, part2) = sessions_and_part(&ecm, 2);
    assert_eq!(part2, vec![500, 200], "part 2 failed once and was sent again");
    assert_eq!(opened, 1, "within the same session");
    assert!(gw.audit().iter().all(|e| e["event"] != "delivery_retry"), "no pipeline retry was needed");
    assert!(!lfu_calls(&ecm).iter().any(|r| r.method == "DELETE"), "the session was not cancelled");
}

#[test]
fn opentext_a_server_with_large_file_upload_disabled_gets_whole_files() {
    use wharf::targets::{Conflict, Delivery, Document, Target};
    let mut seed = Seed::default();
    seed.multipart.is_enabled = false;
    let ecm = Ecm::start_with(seed);
    let folder = ecm.folder_id("Enterprise/Contracts");
    let target = direct_target(&ecm, &format!("root_folder = {folder}\nmultipart_threshold_bytes = 100\n"));
    let body = ecm.secrets.path().join("c.pdf");
    let sha = pdf(&body, 425);
    let size = std::fs::metadata(&body).expect("body").len();
    for i in 0..2 {
        let doc = Document {
            transfer_id: format!("T{i}"),
            body: body.clone(),
            destination: format!("CTR-{i}.pdf"),
            sha256: sha.clone(),
            size,
            account: "acme".into(),
            channel: "contracts".into(),
            metadata: Default::default(),
            conflict: Conflict::Reject,
        };
        let outcome = ecm._rt.block_on(target.deliver(&doc));
        assert!(matches!(outcome, Delivery::Delivered(_)), "{outcome:?}");
        let node = ecm.emu.find_path(&format!("Enterprise/Contracts/CTR-{i}.pdf")).expect("delivered");
        assert_eq!(node.versions[0].sha256, sha);
        assert!(!node.versions[0].via_upload_key, "a plain file part");
    }
    let calls = lfu_calls(&ecm);
    assert_eq!(calls.len(), 1, "only the settings, once: {calls:?}");
    assert!(calls[0].path.ends_with("/settings"));
}

#[test]
fn opentext_a_document_is_created_with_the_targets_rm_classification() {
    let ecm = Ecm::start();
    let gw = gateway(&ecm, &format!("{}rm_classification = 7000\n", invoice_target(&ecm)), to_otcs());
    upload(&gw, "INV-ACME-2026-0430.pdf", 430);
    gw.wait_for(30, "the delivery", || gw.in_state("delivered").len() == 1);
    let node = ecm.emu.find_path("Enterprise/Invoices/2026/ACME/INV-ACME-2026-0430.pdf").expect("the document");
    assert_eq!(node.classifications, vec![7000], "classified as the target says");
    assert_eq!(node.categories.get("9830_2"), Some(&serde_json::json!("ACME")), "with its categories too");
}

#[test]
fn opentext_an_unknown_rm_classification_ends_in_an_exception_quoting_the_server() {
    let ecm = Ecm::start();
    let gw = gateway(&ecm, &format!("{}rm_classification = 7001\n", invoice_target(&ecm)), to_otcs());
    upload(&gw, "INV-ACME-2026-0431.pdf", 431);
    let reason = gw.spool().join("exceptions/invoices/acme/INV-ACME-2026-0431.pdf.error.txt");
    gw.wait_for(30, "the exception", || gw.in_state("excepted").len() == 1 && reason.exists());
    let why = std::fs::read_to_string(&reason).expect("reason file");
    assert!(
        why.contains(
            "Content Server answered 400: Classification 7001 does not exist or is not a Classification (subtype 199)."
        ),
        "{why}"
    );
    assert!(ecm.emu.find_path("Enterprise/Invoices/2026/ACME/INV-ACME-2026-0431.pdf").is_none(), "nothing was made");
    assert!(gw.audit().iter().all(|e| e["event"] != "delivery_retry"), "a permanent refusal is not retried");
}

#[test]
fn opentext_a_kill_9_between_a_version_and_its_categories_leaves_one_version_with_the_new_values() {
    let ecm = Ecm::start();
    // A backoff long enough to kill the gateway before its retry.
    let edits = vec![
        ("invoices.toml", "name = \"demo-ecm\"".into(), "name = \"otcs\"".into()),
        ("invoices.toml", "backoff_secs = 30".into(), "backoff_secs = 8".into()),
    ];
    let mut gw = gateway(&ecm, &invoice_target(&ecm), edits);
    let first = upload(&gw, "INV-ACME-2026-0440.pdf", 440);
    gw.wait_for(30, "the first delivery", || gw.in_state("delivered").len() == 1);
    // The server adds the version, then the connection drops before the reply: the gateway
    // never gets to put the category values.
    ecm.emu.faults().fail_after_version(1);
    let second = upload(&gw, "INV-ACME-2026-0440.pdf", 441);
    let path = "Enterprise/Invoices/2026/ACME/INV-ACME-2026-0440.pdf";
    gw.wait_for(30, "the added version", || ecm.emu.find_path(path).is_some_and(|n| n.versions.len() == 2));
    let node = ecm.emu.find_path(path).expect("the document");
    assert_eq!(node.categories.get("9830_5"), Some(&serde_json::json!(first)), "the crash window: old values");
    gw.kill9();
    let puts =
        |ecm: &Ecm| ecm.emu.requests().iter().filter(|r| r.method == "PUT" && r.path.contains("/categories/")).count();
    assert_eq!(puts(&ecm), 0, "killed before any category update");
    gw.restart();
    gw.wait_for(60, "the delivery after the restart", || gw.in_state("delivered").len() == 2);
    let node = ecm.emu.find_path(path).expect("the document");
    assert_eq!(node.versions.len(), 2, "no second copy of the version: {node:?}");
    assert_eq!(node.versions[1].sha256, second);
    assert_eq!(node.categories.get("9830_5"), Some(&serde_json::json!(second)), "the values follow the version");
    assert_eq!(puts(&ecm), 1, "the values were put once, after the restart");
    let receipts: Vec<serde_json::Value> =
        gw.in_state("delivered").iter().filter_map(|r| serde_json::from_str(r.receipt.as_deref()?).ok()).collect();
    assert!(receipts.iter().any(|r| r["already_delivered"] == true && r["version"] == 2), "{receipts:?}");
}

#[test]
fn opentext_a_redelivered_older_version_leaves_the_newer_versions_values_alone() {
    use wharf::targets::{Conflict, Delivery, Document, Target};
    let ecm = Ecm::start();
    let folder = ecm.folder_id("Enterprise/Invoices");
    let opentext = format!(
        "root_folder = {folder}\ncategory = {{ id = 9830, attributes = {{ vendor = 2 }} }}\nchecksum_attribute = 5\n"
    );
    let target = direct_target(&ecm, &opentext);
    let body = ecm.secrets.path().join("x.pdf");
    std::fs::write(&body, b"%PDF-1.7\n%%EOF\n").expect("body");
    let doc = |i: u32| Document {
        transfer_id: format!("T{i}"),
        body: body.clone(),
        destination: "X.pdf".into(),
        sha256: format!("{i:064}"),
        size: 15,
        account: "acme".into(),
        channel: "invoices".into(),
        metadata: [("vendor".to_string(), "ACME".to_string())].into(),
        conflict: Conflict::Version,
    };
    let deliver = |d: &Document| match ecm._rt.block_on(target.deliver(d)) {
        Delivery::Delivered(r) => r,
        other => panic!("{other:?}"),
    };
    for i in 0..3 {
        assert!(!deliver(&doc(i)).already_delivered);
    }
    let checksum = || ecm.emu.find_path("Enterprise/Invoices/X.pdf").expect("doc").categories.get("9830_5").cloned();
    assert_eq!(checksum(), Some(serde_json::json!(format!("{:064}", 2))));
    // Transfer 1 again (its version 2 is no longer the latest): found, nothing put.
    let again = deliver(&doc(1));
    assert_eq!((again.already_delivered, again.version), (true, Some(2)));
    assert_eq!(checksum(), Some(serde_json::json!(format!("{:064}", 2))), "the newer version's values stay");
    assert_eq!(ecm.emu.find_path("Enterprise/Invoices/X.pdf").expect("doc").versions.len(), 3);
}
