//! Outbound jobs end to end: `wharf outbound run` beside a running gateway publishes packages
//! that partners download with OpenSSH `sftp` and curl (FTP, SFTP), verified against their
//! manifest; crashes while packaging, isolation, delete-after-download, the scheduler inside
//! `wharf serve`, config errors, and a Content Server source.

use crate::opentext::{Ecm, direct_target, target};
use crate::support::{Gateway, Options, curl, random_file, sha256_file, text};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn job(name: &str, body: &str) -> String {
    format!("\n[[jobs]]\nname = \"{name}\"\naccount = \"acme\"\n{body}\n")
}

/// The job's source: `exports/` in the gateway's folder (relative paths resolve against the
/// config's folder).
const DIR_SOURCE: &str = "[jobs.source]\ntype = \"dir\"\npath = \"exports\"\n";

fn start(extra: String) -> Gateway {
    Gateway::start(Options { extra, ..Options::default() })
}

fn export(gw: &Gateway, name: &str, len: usize, seed: u64) -> String {
    let p = gw.dir.path().join("exports").join(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    random_file(&p, len, seed)
}

fn wharf(gw: &Gateway, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(args)
        .arg("--config")
        .arg(&gw.config)
        .stdin(Stdio::null())
        .output()
        .expect("wharf runs")
}

fn run_job(gw: &Gateway, name: &str) -> Output {
    wharf(gw, &["outbound", "run", name])
}

fn boxed(gw: &Gateway, owner: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(gw.spool().join("outbound").join(owner))
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn today() -> String {
    chrono::Utc::now().format("%Y%m%d").to_string()
}

/// Opens a downloaded zip and checks every entry against `manifest.json`; returns the
/// manifest's files as (name, sha256).
fn verify_zip(path: &Path) -> Vec<(String, String)> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).expect("zip")).expect("a zip");
    let mut manifest = String::new();
    zip.by_name("manifest.json").expect("manifest.json").read_to_string(&mut manifest).expect("read");
    let m: serde_json::Value = serde_json::from_str(&manifest).expect("json");
    let mut out = Vec::new();
    for f in m["files"].as_array().expect("files") {
        let name = f["name"].as_str().expect("name").to_string();
        let mut body = Vec::new();
        zip.by_name(&name).expect("entry").read_to_end(&mut body).expect("read");
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
        assert_eq!(f["sha256"].as_str(), Some(sha.as_str()), "{name}");
        assert_eq!(f["size"].as_u64(), Some(body.len() as u64), "{name}");
        out.push((name, sha));
    }
    assert!(zip.by_name("manifest.csv").is_ok());
    out.sort();
    out
}

#[test]
fn outbound_run_publishes_a_zip_that_the_partner_downloads_over_sftp_and_ftp_and_verifies() {
    let gw = start(job("daily", &format!("{DIR_SOURCE}[jobs.package]\nready_marker = true\n")));
    let a = export(&gw, "catalogue.csv", 20_000, 1);
    let b = export(&gw, "prices.xml", 300_000, 2);
    let out = run_job(&gw, "daily");
    assert!(out.status.success(), "{}", text(&out));
    let name = format!("ACME-{}-0001.zip", today());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&name), "{}", text(&out));
    assert_eq!(boxed(&gw, "acme"), [name.clone(), format!("{name}.ready")]);

    let local = gw.dir.path().join("got.zip");
    let got = gw.sftp("acme", &format!("ls -1 /outbound\nget /outbound/{name} {}\n", local.display()));
    assert!(got.status.success(), "{}", text(&got));
    assert!(String::from_utf8_lossy(&got.stdout).contains(&name));
    let files = verify_zip(&local);
    assert_eq!(files, [("catalogue.csv".to_string(), a.clone()), ("prices.xml".to_string(), b.clone())]);

    let ftp_copy = gw.dir.path().join("ftp.zip");
    let ftp = curl(&["-o", &ftp_copy.display().to_string(), &gw.ftp_url("acme", &format!("/outbound/{name}"))]);
    assert!(ftp.status.success(), "{}", text(&ftp));
    assert_eq!(sha256_file(&ftp_copy), sha256_file(&local));

    gw.wait_for(10, "the collection in the audit trail", || {
        gw.audit().iter().any(|e| e["event"] == "package_collected" && e["path"] == format!("outbound/acme/{name}"))
    });
    let published = gw.audit().into_iter().find(|e| e["event"] == "package_published").expect("published event");
    assert_eq!(published["sha256"].as_str(), Some(sha256_file(&local).as_str()));
    // the CLI and the gateway wrote the same trail; its chain is intact
    let verify = wharf(&gw, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    // nothing twice: a second run has nothing new
    let again = run_job(&gw, "daily");
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing new"), "{}", text(&again));
    let list = wharf(&gw, &["outbound", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("nothing new to export"), "{}", text(&list));
}

#[test]
fn outbound_a_crash_while_packaging_leaves_nothing_visible_and_the_next_run_publishes() {
    let gw = start(job("daily", DIR_SOURCE));
    export(&gw, "big.bin", 48 << 20, 3);
    export(&gw, "small.csv", 1000, 4);
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["outbound", "run", "daily", "--config"])
        .arg(&gw.config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("wharf runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !boxed(&gw, "acme").iter().any(|n| n.starts_with(".wharf-build")) {
        assert!(Instant::now() < deadline, "the build never started");
        assert!(child.try_wait().expect("wait").is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    // the partner sees nothing (the build file is hidden), not even a partial zip
    let ls = gw.sftp("acme", "ls -1a /outbound\n");
    assert!(ls.status.success(), "{}", text(&ls));
    let shown = String::from_utf8_lossy(&ls.stdout).to_string();
    assert!(!shown.contains(".wharf") && !shown.contains(".zip"), "{shown}");
    let out = run_job(&gw, "daily");
    assert!(out.status.success(), "{}", text(&out));
    let name = format!("ACME-{}-0001.zip", today());
    assert_eq!(boxed(&gw, "acme"), vec![name.clone()], "the stray build is gone");
    let files = verify_zip(&gw.spool().join("outbound/acme").join(&name));
    assert_eq!(files.len(), 2);
}

#[test]
fn outbound_a_partner_never_sees_or_reaches_another_partners_packages() {
    let gw = start(job("daily", DIR_SOURCE));
    export(&gw, "secret.csv", 500, 5);
    assert!(run_job(&gw, "daily").status.success());
    let name = format!("ACME-{}-0001.zip", today());
    let ls = gw.sftp("globex", "ls -1 /outbound\n");
    assert!(!String::from_utf8_lossy(&ls.stdout).contains("ACME"), "{}", text(&ls));
    for path in [format!("/outbound/../../outbound/acme/{name}"), format!("/outbound/acme/{name}")] {
        let get = gw.sftp("globex", &format!("get {path} {}\n", gw.dir.path().join("x").display()));
        assert!(!get.status.success(), "{path}: {}", text(&get));
    }
    let ftp = curl(&["-o", "/dev/null", &gw.ftp_url("globex", &format!("/outbound/{name}"))]);
    assert!(!ftp.status.success(), "{}", text(&ftp));
    assert_eq!(boxed(&gw, "globex"), Vec::<String>::new());
}

#[test]
fn outbound_delete_after_download_waits_for_a_complete_download() {
    let gw = start(job("daily", &format!("{DIR_SOURCE}[jobs.package]\ndelete_after_download = true\n")));
    export(&gw, "a.bin", 200_000, 6);
    assert!(run_job(&gw, "daily").status.success());
    let name = format!("ACME-{}-0001.zip", today());
    let key = gw.keys["acme"].display().to_string();
    let url = format!("sftp://127.0.0.1:{}/outbound/{name}", gw.sftp_port);
    let pubkey = format!("{key}.pub");
    let part = curl(&["-k", "--key", &key, "--pubkey", &pubkey, "-u", "acme:", "-r", "0-999", "-o", "/dev/null", &url]);
    assert!(part.status.success(), "{}", text(&part));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(boxed(&gw, "acme"), vec![name.clone()], "a partial download keeps the package");
    assert!(gw.audit().iter().any(|e| e["event"] == "download_incomplete"));
    let local: PathBuf = gw.dir.path().join("whole.zip");
    let get = gw.sftp("acme", &format!("get /outbound/{name} {}\n", local.display()));
    assert!(get.status.success(), "{}", text(&get));
    verify_zip(&local);
    gw.wait_for(10, "the package's removal", || gw.audit().iter().any(|e| e["event"] == "package_deleted"));
    assert!(boxed(&gw, "acme").is_empty(), "{:?}", boxed(&gw, "acme"));
    assert!(gw.audit().iter().any(|e| e["event"] == "package_collected"));
}

#[test]
fn outbound_delete_after_download_over_ftp_counts_only_what_the_data_connection_took() {
    let gw = start(job("daily", &format!("{DIR_SOURCE}[jobs.package]\ndelete_after_download = true\n")));
    // larger than loopback's socket buffers, so a client that stops early makes the server's write fail
    export(&gw, "big.bin", 24 << 20, 8);
    assert!(run_job(&gw, "daily").status.success());
    let name = format!("ACME-{}-0001.zip", today());
    let url = gw.ftp_url("acme", &format!("/outbound/{name}"));
    let part = curl(&["-r", "0-999", "-o", "/dev/null", &url]);
    assert!(part.status.success(), "{}", text(&part));
    gw.wait_for(10, "the partial download audited", || {
        gw.audit().iter().any(|e| e["event"] == "download_incomplete" && e["protocol"] == "ftp")
    });
    assert_eq!(boxed(&gw, "acme"), vec![name.clone()], "a partial FTP download keeps the package");
    let local = gw.dir.path().join("whole.zip");
    let get = curl(&["-o", &local.display().to_string(), &url]);
    assert!(get.status.success(), "{}", text(&get));
    verify_zip(&local);
    gw.wait_for(10, "the package's removal", || gw.audit().iter().any(|e| e["event"] == "package_deleted"));
    assert!(boxed(&gw, "acme").is_empty(), "{:?}", boxed(&gw, "acme"));
}

#[test]
fn outbound_a_scheduled_job_runs_inside_the_gateway() {
    let gw = start(job("tick", &format!("schedule = \"*/2 * * * * *\"\n{DIR_SOURCE}")));
    export(&gw, "a.csv", 100, 7);
    gw.wait_for(20, "a scheduled package", || boxed(&gw, "acme").iter().any(|n| n.ends_with("-0001.zip")));
    export(&gw, "b.csv", 100, 8);
    gw.wait_for(20, "the next scheduled package", || boxed(&gw, "acme").iter().any(|n| n.ends_with("-0002.zip")));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(boxed(&gw, "acme").len(), 2, "no empty packages in between: {:?}", boxed(&gw, "acme"));
}

#[test]
fn outbound_job_config_errors_name_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("wharf.toml");
    let hash = wharf::accounts::hash_password("pw").expect("hash");
    std::fs::write(
        &cfg,
        format!(
            "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n\
             [[accounts]]\nname = \"acme\"\npassword_hash = \"{hash}\"\nmounts = [{{ path = \"/outbound\", box = \"outbound\", permissions = [\"read\"] }}]\n\
             [[jobs]]\nname = \"bad\"\naccount = \"acme\"\nschedule = \"0 25 * * *\"\ntime_zone = \"Mars/Olympus\"\n\
             [jobs.source]\ntype = \"dir\"\npath = \"x\"\n[jobs.package]\nname = \"{{partner}}/../{{seq}}.zip\"\n\
             [[jobs]]\nname = \"other\"\naccount = \"globex\"\n[jobs.source]\ntype = \"ftp\"\n"
        ),
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_wharf")).args(["check", "--config"]).arg(&cfg).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    for want in [
        "jobs[0].time_zone: `Mars/Olympus` is not an IANA time zone",
        "jobs[0].package.name:",
        "jobs[1].account: no account named `globex`",
        "jobs[1].source.type: unknown source type `ftp`",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("wharf.toml:"), "{err}");
}

#[test]
fn outbound_a_content_server_folder_exports_only_approved_documents_once() {
    use wharf::targets::{Conflict, Delivery, Document, Target};
    let ecm = Ecm::start();
    let folder = ecm.folder_id("Enterprise/Invoices");
    let category = "category = { id = 9830, attributes = { vendor = 2, status = 6 } }";
    let direct = direct_target(&ecm, &format!("root_folder = {folder}\n{category}\n"));
    let body = ecm.secrets.path().join("c.pdf");
    std::fs::write(&body, b"%PDF-1.7\ncontract\n%%EOF\n").expect("body");
    let add = |name: &str, status: &str| {
        let doc = Document {
            transfer_id: name.into(),
            body: body.clone(),
            destination: name.into(),
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(name.as_bytes())),
            size: 24,
            account: "ops".into(),
            channel: "contracts".into(),
            metadata: [("vendor".to_string(), "ACME".to_string()), ("status".to_string(), status.to_string())].into(),
            conflict: Conflict::Reject,
        };
        let got = ecm._rt.block_on(direct.deliver(&doc));
        assert!(matches!(got, Delivery::Delivered(_)), "{name}: {got:?}");
    };
    add("C-1.pdf", "Approved");
    add("C-2.pdf", "Draft");
    add("C-3.pdf", "Approved");
    let ot = target(&ecm, &format!("root_folder = {folder}\n"));
    let source = format!(
        "[jobs.source]\ntype = \"opentext\"\ntarget = \"otcs\"\nfolder = {folder}\nattribute = \"9830_6\"\nvalue = \"Approved\"\n"
    );
    let gw = start(format!("{ot}{}", job("contracts", &source)));
    // a failing server: the run fails cleanly, nothing is published, the next run works
    ecm.emu.faults().fail_next(1, 500, "Internal server error");
    let failed = run_job(&gw, "contracts");
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(boxed(&gw, "acme").is_empty());
    assert!(gw.audit().iter().any(|e| e["event"] == "outbound_run_failed"));
    let out = run_job(&gw, "contracts");
    assert!(out.status.success(), "{}", text(&out));
    let name = format!("ACME-{}-0001.zip", today());
    let files = verify_zip(&gw.spool().join("outbound/acme").join(&name));
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["C-1.pdf", "C-3.pdf"]);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(gw.spool().join("outbound/acme").join(&name)).expect("zip"))
        .expect("zip");
    let mut csv = String::new();
    zip.by_name("manifest.csv").expect("csv").read_to_string(&mut csv).expect("read");
    assert!(csv.lines().next().is_some_and(|h| h.contains("9830_6") && h.contains("node_id")), "{csv}");
    let again = run_job(&gw, "contracts");
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing new"), "{}", text(&again));
}
