//! SFTP with OpenSSH's `sftp` (and curl's libssh2) against a live gateway.

use crate::support::{Gateway, Options, curl, random_file, sha256_file, text};

#[test]
fn upload_is_journaled_received_with_its_checksum_and_listed() {
    let gw = Gateway::start(Options::default());
    let src = gw.dir.path().join("inv.pdf");
    let sha = random_file(&src, 3 * 1024 * 1024 + 17, 1);
    let out = gw.sftp("acme", &format!("put {} /invoices/INV-ACME-2026-0001.pdf\nls -l /invoices\n", src.display()));
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("INV-ACME-2026-0001.pdf"), "{}", text(&out));

    let rows = gw.received();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let t = &rows[0];
    assert_eq!((t.account.as_str(), t.channel.as_str(), t.mount.as_str()), ("acme", "invoices", "invoices"));
    assert_eq!(t.name, "INV-ACME-2026-0001.pdf");
    assert_eq!(t.size, Some(3 * 1024 * 1024 + 17));
    assert_eq!(t.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(t.protocol, "sftp");
    assert_eq!(t.remote_addr.as_deref(), Some("127.0.0.1"));
    assert!(t.received_at.is_some());
    // The committed body is the uploaded file, byte for byte, and nothing is left in tmp/.
    assert_eq!(sha256_file(&gw.spool().join(&t.body_path)), sha);
    assert_eq!(std::fs::read_dir(gw.spool().join("tmp")).map(|d| d.count()).unwrap_or(0), 0);
    let audit = gw.audit();
    let up = audit.iter().find(|e| e["event"] == "upload_completed").expect("upload audited");
    assert_eq!(up["sha256"], sha.as_str());
    assert_eq!(up["account"], "acme");
    assert_eq!(up["path"], "/invoices/INV-ACME-2026-0001.pdf");
}

#[test]
fn download_round_trip_matches_byte_for_byte() {
    let gw = Gateway::start(Options::default());
    let src = gw.dir.path().join("a.bin");
    let sha = random_file(&src, 5 * 1024 * 1024 + 3, 2);
    let back = gw.dir.path().join("back.bin");
    let out =
        gw.sftp("acme", &format!("put {} /invoices/a.bin\nget /invoices/a.bin {}\n", src.display(), back.display()));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(sha256_file(&back), sha);

    // Outbound box: a package placed there by the gateway is collected intact.
    let pkg = gw.spool().join("outbound/acme/catalogue.zip");
    std::fs::create_dir_all(pkg.parent().expect("parent")).expect("mkdir");
    let pkg_sha = random_file(&pkg, 700_001, 3);
    let got = gw.dir.path().join("got.zip");
    let out = gw.sftp("acme", &format!("ls -l /outbound\nget /outbound/catalogue.zip {}\n", got.display()));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(sha256_file(&got), pkg_sha);
    let audit = gw.audit();
    assert!(
        audit.iter().any(|e| e["event"] == "download_completed"
            && e["path"] == "/outbound/catalogue.zip"
            && e["size"] == 700_001)
    );
}

#[test]
fn same_name_twice_is_two_transfers_never_an_overwrite() {
    let gw = Gateway::start(Options::default());
    let (a, b) = (gw.dir.path().join("a"), gw.dir.path().join("b"));
    let sha_a = random_file(&a, 1000, 4);
    let sha_b = random_file(&b, 2000, 5);
    let out =
        gw.sftp("acme", &format!("put {} /invoices/same.pdf\nput {} /invoices/same.pdf\n", a.display(), b.display()));
    assert!(out.status.success(), "{}", text(&out));
    let rows = gw.received();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].sha256.as_deref(), Some(sha_a.as_str()));
    assert_eq!(rows[1].sha256.as_deref(), Some(sha_b.as_str()));
    assert_ne!(rows[0].body_path, rows[1].body_path);
    // stat (and download) of the name serves the newest.
    let back = gw.dir.path().join("back");
    let out = gw.sftp("acme", &format!("get /invoices/same.pdf {}\n", back.display()));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(sha256_file(&back), sha_b);
}

#[test]
fn password_login_works_and_a_wrong_password_is_refused_and_audited() {
    let gw = Gateway::start(Options::default());
    let ok = gw.sftp_password("acme", "acme-pw", "ls /\n");
    assert!(ok.status.success(), "{}", text(&ok));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    for m in ["invoices", "outbound", "exceptions"] {
        assert!(stdout.contains(m), "root lists the mounts: {stdout}");
    }
    let bad = gw.sftp_password("acme", "wrong", "ls /\n");
    assert!(!bad.status.success());
    let unknown = gw.sftp_password("mallory", "acme-pw", "ls /\n");
    assert!(!unknown.status.success());
    let audit = gw.audit();
    assert!(audit.iter().any(|e| e["event"] == "login_ok" && e["account"] == "acme"));
    assert!(audit.iter().any(|e| e["event"] == "login_failed" && e["account"] == "acme"));
    assert!(audit.iter().any(|e| e["event"] == "login_failed" && e["account"] == "mallory"));
}

#[test]
fn permissions_are_enforced_per_mount_with_clear_messages() {
    let gw = Gateway::start(Options::default());
    let f = gw.dir.path().join("f");
    random_file(&f, 100, 6);
    for (cmd, expect) in [
        (format!("put {} /outbound/x", f.display()), "Permission denied"),
        (format!("put {} /exceptions/invoices/x", f.display()), "Permission denied"),
        (format!("put {} /x", f.display()), "Permission denied"),
        ("mkdir /invoices/sub".to_string(), "Permission denied"),
        ("rm /invoices/nothing".to_string(), ""),
        ("ln -s /etc/passwd /invoices/link".to_string(), "Permission denied"),
    ] {
        let out = gw.sftp("acme", &format!("{cmd}\n"));
        assert!(!out.status.success(), "`{cmd}` must be refused: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(expect), "`{cmd}`: {}", text(&out));
    }
    assert!(gw.received().is_empty());
}

#[test]
fn rename_of_a_received_upload_in_the_inbound_folder() {
    let gw = Gateway::start(Options::default());
    let f = gw.dir.path().join("f");
    let sha = random_file(&f, 4096, 7);
    let out = gw.sftp(
        "acme",
        &format!(
            "put {} /invoices/a.pdf.filepart\nrename /invoices/a.pdf.filepart /invoices/a.pdf\nls /invoices\n",
            f.display()
        ),
    );
    assert!(out.status.success(), "{}", text(&out));
    let rows = gw.received();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].name, "a.pdf");
    assert_eq!(rows[0].sha256.as_deref(), Some(sha.as_str()));
}

#[test]
fn shell_exec_and_port_forwarding_are_refused() {
    let gw = Gateway::start(Options::default());
    let key = &gw.keys["acme"];
    let base = |extra: &[&str]| {
        let mut c = std::process::Command::new("ssh");
        c.args(["-q", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"])
            .arg("-i")
            .arg(key)
            .args(["-p", &gw.sftp_port.to_string()])
            .args(extra)
            .arg("acme@127.0.0.1")
            .stdin(std::process::Stdio::null());
        c
    };
    let exec = base(&[]).arg("cat /etc/passwd").output().expect("ssh");
    assert!(!exec.status.success(), "exec must fail: {}", text(&exec));
    assert!(!String::from_utf8_lossy(&exec.stdout).contains("root:"), "{}", text(&exec));
    let shell = base(&["-tt"]).output().expect("ssh");
    assert!(!shell.status.success(), "shell must fail: {}", text(&shell));
    // Local forwarding: the channel open is refused, so nothing listens-through.
    let fwd = base(&["-N", "-o", "ExitOnForwardFailure=yes", "-W", "127.0.0.1:22"]).output().expect("ssh");
    assert!(!fwd.status.success(), "forwarding must fail: {}", text(&fwd));
}

#[test]
fn curl_libssh2_can_upload_and_download() {
    let gw = Gateway::start(Options::default());
    let f = gw.dir.path().join("c.bin");
    let sha = random_file(&f, 1_500_000, 8);
    let url = |p: &str| format!("sftp://127.0.0.1:{}{p}", gw.sftp_port);
    let key = gw.keys["acme"].display().to_string();
    let pubkey = format!("{key}.pub");
    let up = curl(&[
        "-k",
        "--key",
        &key,
        "--pubkey",
        &pubkey,
        "-u",
        "acme:",
        "-T",
        &f.display().to_string(),
        &url("/invoices/c.bin"),
    ]);
    assert!(up.status.success(), "{}", text(&up));
    let back = gw.dir.path().join("back.bin");
    let down = curl(&[
        "-k",
        "--key",
        &key,
        "--pubkey",
        &pubkey,
        "-u",
        "acme:",
        "-o",
        &back.display().to_string(),
        &url("/invoices/c.bin"),
    ]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(sha256_file(&back), sha);
    assert_eq!(gw.received().len(), 1);
}
