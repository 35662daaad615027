//! How MFT gateways get broken, tried against wharf: traversal, cross-account access, symlinks
//! planted in the spool, reserved names, session floods.

use crate::support::{Gateway, Options, random_file, text};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn another_account_can_neither_list_read_nor_guess_files() {
    let gw = Gateway::start(Options::default());
    let f = gw.dir.path().join("secret.pdf");
    random_file(&f, 2048, 11);
    let out = gw.sftp("acme", &format!("put {} /invoices/acme-secret.pdf\n", f.display()));
    assert!(out.status.success(), "{}", text(&out));
    let pkg = gw.spool().join("outbound/acme/acme-export.zip");
    std::fs::create_dir_all(pkg.parent().expect("parent")).expect("mkdir");
    random_file(&pkg, 100, 12);
    let exc = gw.spool().join("exceptions/invoices/acme/acme-bad.pdf");
    std::fs::create_dir_all(exc.parent().expect("parent")).expect("mkdir");
    random_file(&exc, 100, 13);

    let listing = gw.sftp("globex", "ls -la /invoices\nls -la /outbound\nls -la /exceptions\n");
    assert!(listing.status.success(), "{}", text(&listing));
    let l = stdout(&listing);
    for name in ["acme-secret", "acme-export", "acme-bad", "invoices/acme"] {
        assert!(!l.contains(name), "globex sees {name}: {l}");
    }
    let dst = gw.dir.path().join("stolen");
    for path in [
        "/invoices/acme-secret.pdf",
        "/outbound/acme-export.zip",
        "/outbound/../acme/acme-export.zip",
        "/exceptions/invoices/acme-bad.pdf",
        "/exceptions/invoices/../acme/acme-bad.pdf",
        "/exceptions/../../exceptions/invoices/acme/acme-bad.pdf",
    ] {
        let out = gw.sftp("globex", &format!("get {path} {}\n", dst.display()));
        assert!(!out.status.success(), "globex read {path}: {}", text(&out));
        assert!(!dst.exists(), "{path} leaked");
    }
}

#[test]
fn traversal_variants_never_leave_the_account_tree() {
    let gw = Gateway::start(Options::default());
    let dst = gw.dir.path().join("passwd");
    for path in [
        "../../../../etc/passwd",
        "/../../etc/passwd",
        "/invoices/../../../etc/passwd",
        "/outbound/../../../../etc/passwd",
        "..\\..\\..\\etc\\passwd",
        "/invoices/..\\..\\etc\\passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "/outbound/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/exceptions/../../../../../../etc/passwd",
    ] {
        let out = gw.sftp("acme", &format!("get \"{path}\" {}\n", dst.display()));
        assert!(!out.status.success(), "{path}: {}", text(&out));
        assert!(!dst.exists(), "{path} escaped the jail");
    }
    // `cd ..` from a mount ends at the account's root, which lists only the mounts.
    let out = gw.sftp("acme", "cd /invoices\ncd ../../..\npwd\nls\n");
    assert!(out.status.success(), "{}", text(&out));
    let s = stdout(&out);
    assert!(s.contains("Remote working directory: /\n"), "{s}");
    assert!(!s.contains("etc") && !s.contains("spool") && !s.contains("journal"), "{s}");
}

#[test]
fn symlinks_planted_in_the_spool_are_never_followed() {
    let gw = Gateway::start(Options::default());
    let outside = gw.dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(outside.join("secret.txt"), "TOP SECRET").expect("write");
    let boxdir = gw.spool().join("outbound/acme");
    std::fs::create_dir_all(&boxdir).expect("mkdir");
    std::os::unix::fs::symlink(outside.join("secret.txt"), boxdir.join("file-link")).expect("symlink");
    std::os::unix::fs::symlink(&outside, boxdir.join("dir-link")).expect("symlink");

    let out = gw.sftp("acme", "ls -la /outbound\n");
    assert!(out.status.success(), "{}", text(&out));
    assert!(!stdout(&out).contains("link"), "links must not be listed: {}", text(&out));
    let dst = gw.dir.path().join("got");
    for path in ["/outbound/file-link", "/outbound/dir-link/secret.txt"] {
        let out = gw.sftp("acme", &format!("get {path} {}\n", dst.display()));
        assert!(!out.status.success(), "{path}: {}", text(&out));
        assert!(!dst.exists(), "{path} was followed");
    }
    // ops can write into exception boxes: a planted folder link must not redirect the write.
    let exc = gw.spool().join("exceptions/invoices");
    std::fs::create_dir_all(&exc).expect("mkdir");
    std::os::unix::fs::symlink(&outside, exc.join("acme")).expect("symlink");
    let f = gw.dir.path().join("f");
    random_file(&f, 10, 14);
    let out = gw.sftp("ops", &format!("put {} /exceptions/invoices/acme/planted.txt\n", f.display()));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!outside.join("planted.txt").exists(), "write followed a symlink out of the spool");
}

#[test]
fn reserved_and_hostile_names_are_refused_at_upload() {
    let gw = Gateway::start(Options::default());
    let f = gw.dir.path().join("f");
    random_file(&f, 10, 15);
    for name in [".wharf-tmp", "a\\b.pdf", &"x".repeat(256), "invoice\u{202e}fdp.exe"] {
        let out = gw.sftp("acme", &format!("put {} \"/invoices/{name}\"\n", f.display()));
        assert!(!out.status.success(), "{name}: {}", text(&out));
    }
    assert!(gw.received().is_empty());
}

#[test]
fn per_account_session_limit_refuses_the_extra_session() {
    let gw = Gateway::start(Options {
        sessions: Some("max_per_account = 1\nmax_per_address = 16\nauth_failure_delay_ms = 100\n".into()),
        ..Options::default()
    });
    // Hold one session open: an sftp reading its batch from a pipe we keep open.
    let key = &gw.keys["acme"];
    let mut holder = std::process::Command::new("sftp")
        .args(crate::support::ssh_opts(gw.sftp_port))
        .arg("-i")
        .arg(key)
        .arg("-b")
        .arg("-")
        .arg("acme@127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sftp");
    gw.wait_for(20, "the first session to log in", || {
        gw.audit().iter().any(|e| e["event"] == "login_ok" && e["account"] == "acme")
    });
    let second = gw.sftp("acme", "ls /\n");
    assert!(!second.status.success(), "second session must be refused: {}", text(&second));
    assert!(
        gw.audit()
            .iter()
            .any(|e| e["event"] == "login_failed" && e["reason"].as_str().is_some_and(|r| r.contains("sessions")))
    );
    // Another account is not affected.
    assert!(gw.sftp("globex", "ls /\n").status.success());
    drop(holder.stdin.take());
    let _ = holder.wait();
    gw.wait_for(20, "the slot to be released", || gw.sftp("acme", "ls /\n").status.success());
}

#[test]
fn login_from_outside_the_allowed_networks_is_refused() {
    let extra = format!(
        "[[accounts]]\nname = \"fenced\"\npassword_hash = \"{}\"\nallowed_networks = [\"192.0.2.0/24\"]\nmounts = [{{ path = \"/in\", box = \"inbound\", channel = \"c\", permissions = [\"list\"] }}]\n",
        wharf::accounts::hash_password("fenced-pw").expect("hash")
    );
    let gw = Gateway::start(Options { extra, ..Options::default() });
    let out = gw.sftp_password("fenced", "fenced-pw", "ls /\n");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(gw.audit().iter().any(|e| e["event"] == "login_failed"
        && e["account"] == "fenced"
        && e["reason"].as_str().is_some_and(|r| r.contains("allowed networks"))));
}

#[test]
fn a_failed_login_is_answered_only_after_the_configured_delay() {
    let gw = Gateway::start(Options {
        sessions: Some("max_per_account = 8\nmax_per_address = 16\nauth_failure_delay_ms = 1500\n".into()),
        ..Options::default()
    });
    let t = std::time::Instant::now();
    let out = gw.sftp_password("acme", "wrong", "ls /\n");
    assert!(!out.status.success());
    assert!(t.elapsed() >= std::time::Duration::from_millis(1400), "refused after only {:?}", t.elapsed());
    // FTP too, through the same setting.
    let t = std::time::Instant::now();
    let out = crate::support::curl(&[&format!("ftp://acme:wrong@127.0.0.1:{}/", gw.ftp_port)]);
    assert!(!out.status.success());
    assert!(t.elapsed() >= std::time::Duration::from_millis(1400), "FTP refused after only {:?}", t.elapsed());
}

#[test]
fn connections_beyond_the_per_address_limit_are_dropped() {
    let gw = Gateway::start(Options {
        sessions: Some("max_per_account = 8\nmax_per_address = 2\nauth_failure_delay_ms = 100\n".into()),
        ..Options::default()
    });
    let hold: Vec<_> =
        (0..2).map(|_| std::net::TcpStream::connect(("127.0.0.1", gw.sftp_port)).expect("connect")).collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let refused = gw.sftp("acme", "ls /\n");
    assert!(!refused.status.success(), "a third connection must be refused: {}", text(&refused));
    assert!(gw.log().contains("too many connections from this address"), "{}", gw.log());
    drop(hold);
    gw.wait_for(10, "the slots to be released", || gw.sftp("acme", "ls /\n").status.success());
}

#[test]
fn an_idle_sftp_session_is_closed() {
    let gw = Gateway::start(Options {
        sessions: Some(
            "max_per_account = 8\nmax_per_address = 16\nauth_failure_delay_ms = 100\nidle_timeout_secs = 2\n".into(),
        ),
        ..Options::default()
    });
    let mut idle = std::process::Command::new("sftp")
        .args(crate::support::ssh_opts(gw.sftp_port))
        .arg("-i")
        .arg(&gw.keys["acme"])
        .arg("-b")
        .arg("-")
        .arg("acme@127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sftp");
    // The client sends nothing for 4 s (twice the timeout), then asks for a listing: the session
    // must be gone by then, so the listing fails.
    gw.wait_for(20, "the session to log in", || gw.audit().iter().any(|e| e["event"] == "login_ok"));
    std::thread::sleep(std::time::Duration::from_secs(4));
    {
        use std::io::Write;
        let mut stdin = idle.stdin.take().expect("stdin");
        let _ = stdin.write_all(b"ls /\n");
    }
    let status = idle.wait().expect("sftp exits");
    assert!(!status.success(), "the idle session still answered after 4 s with idle_timeout_secs = 2");
    assert!(gw.log().contains("Inactivity timeout"), "{}", gw.log());
}

#[test]
fn the_host_key_is_generated_private() {
    use std::os::unix::fs::PermissionsExt;
    let gw = Gateway::start(Options::default());
    let mode = std::fs::metadata(gw.dir.path().join("host_key")).expect("host key generated").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "host key mode {mode:o}");
}
