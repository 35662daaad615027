//! Crashes: a client killed mid-upload, the gateway killed with SIGKILL after acknowledged uploads
//! and during one, and start-up recovery of the spool (see the `wharf::spool` module documentation).

use crate::support::{Gateway, Options, random_file, sha256_file, ssh_opts, text};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use wharf::spool::journal::TransferRow;

/// Bandwidth limit (Kbit/s) for uploads that must still be running when the test acts:
/// 2000 Kbit/s is 250 kB/s, so the 16 MiB uploads below would take more than a minute.
const SLOW_KBIT: &str = "2000";
const BIG: usize = 16 * 1024 * 1024;

/// An OpenSSH `sftp -b` run in its own process group (so that it and its `ssh` child can be
/// SIGKILLed together), with the same options as `Gateway::sftp` plus a bandwidth limit.
struct SlowSftp {
    child: Child,
    stderr: PathBuf,
}

impl SlowSftp {
    fn start(gw: &Gateway, account: &str, batch: &str) -> SlowSftp {
        let id = ulid::Ulid::generate();
        let file = gw.dir.path().join(format!("slow-batch-{id}"));
        std::fs::write(&file, batch).expect("batch file");
        let stderr = gw.dir.path().join(format!("slow-sftp-{id}.err"));
        let child = Command::new("sftp")
            .args(ssh_opts(gw.sftp_port))
            .args(["-l", SLOW_KBIT])
            .arg("-i")
            .arg(&gw.keys[account])
            .arg("-b")
            .arg(&file)
            .arg(format!("{account}@127.0.0.1"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .process_group(0)
            .spawn()
            .expect("sftp starts");
        SlowSftp { child, stderr }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGKILL to the whole process group (sftp and the ssh it runs), then reap sftp.
    fn kill9(&mut self) -> ExitStatus {
        let st =
            Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status().expect("kill runs");
        assert!(st.success(), "kill -KILL of the sftp process group failed");
        self.child.wait().expect("reap sftp")
    }

    /// Waits (bounded) for sftp to exit by itself; kills it if it does not.
    fn wait(&mut self, secs: u64) -> Option<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        None
    }
}

impl Drop for SlowSftp {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
            let _ = self.child.wait();
        }
    }
}

/// Regular files anywhere under `dir` (empty if it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The gateway log without ANSI colour sequences, so that `key=value` fields can be searched.
fn plain_log(gw: &Gateway) -> String {
    let log = gw.log();
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits for the `receiving` row of `name` and for its temporary file to hold some bytes, so the
/// upload is surely in the middle of its body.
fn wait_mid_upload(gw: &Gateway, name: &str, sftp: &mut SlowSftp) -> TransferRow {
    let mut row = None;
    gw.wait_for(30, "a `receiving` row", || {
        if let Ok(Some(st)) = sftp.child.try_wait() {
            panic!("sftp ended before the upload was seen ({st}): {}", sftp.stderr());
        }
        row = gw.transfers().into_iter().find(|t| t.name == name && t.state == "receiving");
        row.is_some()
    });
    let row = row.expect("receiving row");
    let tmp = gw.spool().join("tmp").join(format!("{}.part", row.id));
    gw.wait_for(30, "bytes in the temporary file", || std::fs::metadata(&tmp).is_ok_and(|m| m.len() > 0));
    let partial = std::fs::metadata(&tmp).expect("temporary file").len();
    assert!(partial < BIG as u64, "the upload must still be running ({partial} bytes already)");
    row
}

fn row(gw: &Gateway, id: &str) -> Option<TransferRow> {
    gw.transfers().into_iter().find(|t| t.id == id)
}

#[test]
fn a_client_killed_mid_upload_leaves_no_received_transfer() {
    let gw = Gateway::start(Options::default());
    let src = gw.dir.path().join("big.bin");
    random_file(&src, BIG, 21);
    let mut sftp = SlowSftp::start(&gw, "acme", &format!("put {} /invoices/big.bin\n", src.display()));
    let receiving = wait_mid_upload(&gw, "big.bin", &mut sftp);

    let st = sftp.kill9();
    assert!(!st.success(), "a killed sftp cannot have succeeded");

    gw.wait_for(30, "the transfer to become `aborted`", || {
        row(&gw, &receiving.id).is_some_and(|t| t.state == "aborted")
    });
    let aborted = row(&gw, &receiving.id).expect("row");
    assert!(aborted.reason.as_deref().is_some_and(|r| r.contains("not acknowledged")), "{aborted:?}");
    assert_eq!(aborted.sha256, None, "{aborted:?}");
    assert!(gw.received().is_empty(), "{:?}", gw.transfers());
    assert_eq!(files_under(&gw.spool().join("tmp")), Vec::<PathBuf>::new(), "tmp/ must be empty");
    assert_eq!(files_under(&gw.spool().join("inbound")), Vec::<PathBuf>::new(), "inbound/ must hold no body");
    assert!(
        gw.audit().iter().any(|e| e["event"] == "transfer_aborted" && e["transfer_id"] == receiving.id.as_str()),
        "{:#?}",
        gw.audit()
    );
    assert!(!gw.audit().iter().any(|e| e["event"] == "upload_completed"));
}

#[test]
fn kill9_after_acknowledged_uploads_keeps_every_one_of_them() {
    let mut gw = Gateway::start(Options::default());
    let mut sent = Vec::new();
    for i in 0..20u64 {
        let name = format!("INV-{i:04}.pdf");
        let src = gw.dir.path().join(&name);
        let len = usize::try_from(1 + i * 97_531).expect("size");
        let sha = random_file(&src, len, 100 + i);
        let out = gw.sftp("acme", &format!("put {} /invoices/{name}\n", src.display()));
        // Exit status 0: the CLOSE of the upload was answered "ok", i.e. acknowledged.
        assert!(out.status.success(), "upload {i}: {}", text(&out));
        sent.push((name, len, sha));
    }
    gw.kill9();
    gw.spawn();

    let rows = gw.transfers();
    assert_eq!(rows.len(), sent.len(), "{rows:#?}");
    for (name, len, sha) in &sent {
        let t = rows.iter().find(|t| &t.name == name).unwrap_or_else(|| panic!("{name} lost: {rows:#?}"));
        assert_eq!(t.state, "received", "{t:?}");
        assert_eq!(t.size, Some(i64::try_from(*len).expect("size")), "{t:?}");
        assert_eq!(t.sha256.as_deref(), Some(sha.as_str()), "{t:?}");
        assert_eq!(&sha256_file(&gw.spool().join(&t.body_path)), sha, "body of {name} on disk");
    }
    assert!(plain_log(&gw).contains("waiting=20"), "recovery counts the 20 received transfers:\n{}", gw.log());
}

#[test]
fn kill9_during_an_upload_is_aborted_by_recovery_and_the_gateway_works_after() {
    let mut gw = Gateway::start(Options::default());
    let src = gw.dir.path().join("big.bin");
    random_file(&src, BIG, 31);
    let mut sftp = SlowSftp::start(&gw, "acme", &format!("put {} /invoices/big.bin\n", src.display()));
    let receiving = wait_mid_upload(&gw, "big.bin", &mut sftp);
    let tmp = gw.spool().join("tmp").join(format!("{}.part", receiving.id));

    gw.kill9();
    let st = sftp.wait(30);
    assert!(st.is_some_and(|s| !s.success()), "sftp must fail when the gateway dies: {st:?} {}", sftp.stderr());
    // Nothing ran after the crash: the row is still `receiving` and the partial body is in tmp/.
    assert_eq!(row(&gw, &receiving.id).map(|t| t.state), Some("receiving".to_string()));
    assert!(tmp.exists(), "the partial body is still in tmp/ before recovery");

    gw.spawn();
    let after = row(&gw, &receiving.id).expect("row survives");
    assert_eq!(after.state, "aborted", "{after:?}");
    assert!(after.reason.as_deref().is_some_and(|r| r.contains("gateway stopped")), "{after:?}");
    assert!(!tmp.exists(), "recovery removes {}", tmp.display());
    assert_eq!(files_under(&gw.spool().join("tmp")), Vec::<PathBuf>::new());
    assert_eq!(files_under(&gw.spool().join("inbound")), Vec::<PathBuf>::new());
    let log = plain_log(&gw);
    assert!(
        log.lines().any(|l| l.contains("aborted unfinished upload") && l.contains(&receiving.id)),
        "the log names the aborted transfer:\n{log}"
    );
    assert!(log.contains("aborted=1"), "the recovery summary counts it:\n{log}");
    assert!(
        gw.audit().iter().any(|e| e["event"] == "transfer_aborted" && e["transfer_id"] == receiving.id.as_str()),
        "{:#?}",
        gw.audit()
    );

    let small = gw.dir.path().join("after.pdf");
    let sha = random_file(&small, 123_457, 32);
    let out = gw.sftp("acme", &format!("put {} /invoices/after.pdf\n", small.display()));
    assert!(out.status.success(), "{}", text(&out));
    let received = gw.received();
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(received[0].name, "after.pdf");
    assert_eq!(received[0].sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(sha256_file(&gw.spool().join(&received[0].body_path)), sha);
}

#[test]
fn recovery_keeps_committed_transfers_and_removes_stray_temporary_files() {
    let mut gw = Gateway::start(Options::default());
    let mut shas = Vec::new();
    for i in 0..3u64 {
        let src = gw.dir.path().join(format!("f{i}"));
        let sha = random_file(&src, 10_000 + usize::try_from(i).expect("i"), 40 + i);
        let out = gw.sftp("globex", &format!("put {} /invoices/f{i}.pdf\n", src.display()));
        assert!(out.status.success(), "{}", text(&out));
        shas.push(sha);
    }
    let before = gw.transfers();
    assert_eq!(before.len(), 3);

    gw.kill9();
    let junk = gw.spool().join("tmp/junk.part");
    std::fs::write(&junk, b"left over by something").expect("junk");
    gw.spawn();

    assert!(!junk.exists(), "recovery removes stray files in tmp/");
    assert_eq!(files_under(&gw.spool().join("tmp")), Vec::<PathBuf>::new());
    assert_eq!(gw.transfers(), before, "committed rows are untouched (not even updated_at)");
    for (t, sha) in before.iter().zip(&shas) {
        assert_eq!(t.sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(&sha256_file(&gw.spool().join(&t.body_path)), sha);
    }
    let log = plain_log(&gw);
    assert!(log.lines().any(|l| l.contains("removed stray temporary file") && l.contains("junk.part")), "{log}");
    assert!(log.contains("stray_temp_files=1"), "{log}");
    assert!(!gw.audit().iter().any(|e| e["event"] == "transfer_aborted"));
}
