//! The `dropbox` target and the Dropbox source poll against the strict Dropbox emulator
//! (`support::dropbox`): content hashes, sessions above the single-upload limit, batched commits
//! under the namespace write lock, conflict policies, token refresh, 429, idempotency; and a
//! polled folder feeding a channel across a kill -9, with write-back.

use crate::pipeline::pdf;
use crate::support::dropbox::{Emulator, Seed};
use crate::support::{Gateway, Options, random_file, sha256_file};
use std::path::PathBuf;
use std::sync::Arc;
use wharf::targets::dropbox::DropboxTarget;
use wharf::targets::{Conflict, Delivery, Document, Target};

/// The emulator on its own runtime (the harness and clients are blocking).
struct Dbx {
    emu: Emulator,
    secrets: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Dbx {
    fn start() -> Dbx {
        Dbx::start_with(Seed::default())
    }

    fn start_with(seed: Seed) -> Dbx {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let emu = rt.block_on(Emulator::start(seed));
        Dbx { emu, secrets: tempfile::tempdir().expect("secrets"), rt }
    }

    /// `[[targets]] dbx` for the emulator, with `extra` lines in `[targets.dropbox]`.
    fn target_toml(&self, extra: &str) -> String {
        let token = self.secrets.path().join("refresh");
        std::fs::write(&token, "wharf-refresh\n").expect("token");
        let secret = self.secrets.path().join("secret");
        std::fs::write(&secret, "wharf-secret\n").expect("secret");
        format!(
            "\n[[targets]]\nname = \"dbx\"\ntype = \"dropbox\"\n[targets.dropbox]\napp_key = \"wharf-app\"\n\
             app_secret_file = \"{}\"\nrefresh_token_file = \"{}\"\nroot = \"/wharf\"\napi_url = \"{url}\"\ncontent_url = \"{url}\"\n\
             timeout_secs = 30\nbatch_wait_ms = 50\n{extra}\n",
            secret.display(),
            token.display(),
            url = self.emu.base_url()
        )
    }

    fn target(&self, extra: &str) -> Arc<DropboxTarget> {
        let text = format!(
            "[spool]\nroot = \"s\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n{}",
            self.target_toml(extra)
        );
        let config = wharf::config::Config::parse(&self.secrets.path().join("w.toml"), &text).expect("config");
        let wharf::config::TargetKind::Dropbox(cfg) = &config.targets[0].kind else { panic!("dropbox") };
        Arc::new(DropboxTarget::new("dbx", (**cfg).clone()).expect("target"))
    }

    fn doc(&self, name: &str, len: usize, seed: u64, conflict: Conflict) -> Document {
        let body = self.secrets.path().join(format!("body-{seed}"));
        let sha256 = random_file(&body, len, seed);
        Document {
            transfer_id: format!("T{seed}"),
            body,
            destination: name.to_string(),
            sha256,
            size: len as u64,
            account: "acme".into(),
            channel: "invoices".into(),
            metadata: Default::default(),
            conflict,
        }
    }

    fn deliver(&self, t: &DropboxTarget, doc: &Document) -> Delivery {
        self.rt.block_on(t.deliver(doc))
    }

    fn calls(&self, route: &str) -> usize {
        self.emu.requests().iter().filter(|r| r.path.ends_with(route)).count()
    }
}

fn delivered(d: &Delivery) -> &wharf::targets::Receipt {
    match d {
        Delivery::Delivered(r) => r,
        other => panic!("not delivered: {other:?}"),
    }
}

fn sha_of(dbx: &Dbx, path: &str) -> String {
    let bytes = dbx.emu.content(path).unwrap_or_else(|| panic!("{path} is in Dropbox"));
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
}

#[test]
fn dropbox_a_small_file_is_committed_with_its_content_hash() {
    let dbx = Dbx::start();
    let t = dbx.target("");
    let doc = dbx.doc("2026/ACME/INV-1.pdf", 30_000, 1, Conflict::Version);
    let r = dbx.deliver(&t, &doc);
    assert_eq!(delivered(&r).path, "/wharf/2026/ACME/INV-1.pdf");
    assert_eq!(sha_of(&dbx, "/wharf/2026/ACME/INV-1.pdf"), doc.sha256);
    let start = dbx.emu.requests().into_iter().find(|r| r.path.ends_with("upload_session/start")).expect("a session");
    assert!(
        start.arg.as_deref().is_some_and(|a| a.contains("content_hash") && a.contains("\"close\":true")),
        "{start:?}"
    );
    assert_eq!(dbx.calls("upload_session/finish_batch_v2"), 1);
}

#[test]
fn dropbox_a_body_above_the_single_upload_limit_goes_through_an_appended_session() {
    let dbx = Dbx::start();
    let t = dbx.target("single_upload_max_bytes = 65536\nchunk_mib = 4\n");
    let doc = dbx.doc("big.bin", 9 * 1024 * 1024 + 123, 2, Conflict::Version);
    let r = dbx.deliver(&t, &doc);
    assert_eq!(delivered(&r).path, "/wharf/big.bin");
    assert_eq!(sha_of(&dbx, "/wharf/big.bin"), doc.sha256);
    assert_eq!(dbx.calls("upload_session/start"), 1);
    assert_eq!(dbx.calls("upload_session/append_v2"), 2, "4 MiB + 4 MiB + the rest, the last one closing");
}

#[test]
fn dropbox_200_small_files_are_committed_in_batches_under_the_write_lock() {
    let dbx = Dbx::start();
    let t = dbx.target("batch_max = 100\nconcurrency = 16\n");
    let docs: Vec<Document> =
        (0..200).map(|i| dbx.doc(&format!("batch/F-{i:03}.pdf"), 2048, 100 + i, Conflict::Version)).collect();
    let results = dbx.rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for d in docs.clone() {
            let t = t.clone();
            set.spawn(async move { t.deliver(&d).await });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.push(r.expect("task"));
        }
        out
    });
    assert!(
        results.iter().all(|r| matches!(r, Delivery::Delivered(_))),
        "{:?}",
        results.iter().find(|r| !matches!(r, Delivery::Delivered(_)))
    );
    assert_eq!(dbx.emu.list("/wharf/batch").len(), 200);
    let batches = dbx.calls("upload_session/finish_batch_v2");
    assert!(batches <= 20, "{batches} batch commits for 200 files");
    assert_eq!(dbx.emu.max_concurrent_commits(), 1);
}

#[test]
fn dropbox_conflict_policies_map_onto_modes() {
    let dbx = Dbx::start();
    let t = dbx.target("");
    let first = dbx.doc("c/A.pdf", 1000, 10, Conflict::Version);
    delivered(&dbx.deliver(&t, &first));
    let rev1 = dbx.emu.file("/wharf/c/A.pdf").expect("file").rev;
    // version: a new revision of the same file
    let v2 = dbx.doc("c/A.pdf", 1200, 11, Conflict::Version);
    delivered(&dbx.deliver(&t, &v2));
    let now = dbx.emu.file("/wharf/c/A.pdf").expect("file");
    assert_ne!(now.rev, rev1);
    assert_eq!(now.size, 1200);
    // rename: beside it
    let renamed = dbx.doc("c/A.pdf", 1300, 12, Conflict::Rename);
    assert_eq!(delivered(&dbx.deliver(&t, &renamed)).path, "/wharf/c/A (2).pdf");
    // reject: an exception naming the conflict
    let rejected = dbx.doc("c/A.pdf", 1400, 13, Conflict::Reject);
    match dbx.deliver(&t, &rejected) {
        Delivery::Except(why) => assert!(why.contains("already exists") && why.contains("path/conflict"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn dropbox_a_delivery_made_before_a_lost_reply_is_recognised() {
    let dbx = Dbx::start();
    let t = dbx.target("");
    let doc = dbx.doc("again/X.pdf", 5000, 20, Conflict::Rename);
    delivered(&dbx.deliver(&t, &doc));
    let again = dbx.deliver(&t, &doc);
    assert!(delivered(&again).already_delivered, "{again:?}");
    assert_eq!(dbx.emu.list("/wharf/again").len(), 1, "no `X (2).pdf`");
}

#[test]
fn dropbox_an_expired_token_is_refreshed_and_429_is_waited_out() {
    let dbx = Dbx::start();
    let t = dbx.target("");
    delivered(&dbx.deliver(&t, &dbx.doc("t/1.pdf", 100, 30, Conflict::Version)));
    dbx.emu.expire_tokens();
    dbx.emu.faults().throttle_next(2, 1);
    delivered(&dbx.deliver(&t, &dbx.doc("t/2.pdf", 100, 31, Conflict::Version)));
    assert_eq!(dbx.calls("/oauth2/token"), 2, "refreshed once more after the expiry");
    assert!(dbx.emu.requests().iter().filter(|r| r.status == 429).count() >= 2);
}

#[test]
fn dropbox_non_ascii_names_travel_as_header_safe_json() {
    let dbx = Dbx::start();
    let t = dbx.target("batch_max = 1\n");
    let doc = dbx.doc("Räkningar/Faktura-ü-😀.pdf", 700, 40, Conflict::Version);
    assert_eq!(delivered(&dbx.deliver(&t, &doc)).path, "/wharf/Räkningar/Faktura-ü-😀.pdf");
    assert_eq!(dbx.calls("files/upload"), 1, "batch_max = 1 uploads in one call");
}

/// A gateway whose `contracts`-style channel `dropped` is fed by a poll of `/Projects`, with the
/// shipped invoices rules delivering into the fs target.
fn polled_gateway(dbx: &Dbx) -> Gateway {
    let extra = format!(
        "{}\n[[accounts]]\nname = \"dropbox-intake\"\npassword_hash = \"{}\"\nattributes = {{ partner_id = \"ACME\" }}\n\
         [[polls]]\nname = \"projects\"\nchannel = \"invoices\"\naccount = \"dropbox-intake\"\nevery_secs = 1\n\
         [polls.source]\ntype = \"dropbox\"\ntarget = \"dbx\"\npath = \"/Inbox\"\nrecursive = true\n\
         [polls.write_back]\ndelivered = \"filed\"\nexcepted = \"rejected\"\n",
        dbx.target_toml(""),
        wharf::accounts::hash_password("unused-pw").expect("hash")
    );
    Gateway::start(Options { pipeline: true, extra, ..Options::default() })
}

fn in_target(gw: &Gateway) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![gw.dir.path().join("ecm")];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                todo.push(e.path());
            } else if !e.file_name().to_string_lossy().ends_with(".metadata.json") {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn dropbox_a_polled_folder_feeds_a_channel_once_across_a_kill_9_with_write_back() {
    let dbx = Dbx::start();
    let mut gw = polled_gateway(&dbx);
    let body = gw.dir.path().join("inv.pdf");
    let sha = pdf(&body, 7);
    dbx.emu.put_file("/Inbox/INV-ACME-2026-0701.pdf", &std::fs::read(&body).expect("read"));
    dbx.emu.put_file("/Inbox/holiday-photo.jpg", b"not an invoice");
    gw.wait_for(30, "the polled invoice delivered", || gw.in_state("delivered").len() == 1);
    let docs = in_target(&gw);
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(sha256_file(&docs[0]), sha);
    gw.wait_for(30, "the misnamed file excepted", || gw.in_state("excepted").len() == 1);
    // write-back: both moved out of the way, once
    gw.wait_for(30, "the write-back", || {
        dbx.emu.file("/Inbox/filed/INV-ACME-2026-0701.pdf").is_some()
            && dbx.emu.file("/Inbox/rejected/holiday-photo.jpg").is_some()
    });
    assert!(dbx.emu.file("/Inbox/INV-ACME-2026-0701.pdf").is_none());
    // journaled too (a kill before that would make the restart move again: harmless, the file is
    // `already gone`, but this test counts moves)
    gw.wait_for(30, "the write-backs journaled", || {
        gw.audit().iter().filter(|e| e["event"] == "source_written_back").count() == 2
    });
    // a restart (kill -9) neither takes them again nor loses the next one
    gw.restart();
    let body2 = gw.dir.path().join("inv2.pdf");
    pdf(&body2, 8);
    dbx.emu.put_file("/Inbox/INV-ACME-2026-0702.pdf", &std::fs::read(&body2).expect("read"));
    gw.wait_for(30, "the second invoice delivered", || gw.in_state("delivered").len() == 2);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(gw.transfers().len(), 3, "{:?}", gw.transfers().iter().map(|t| &t.name).collect::<Vec<_>>());
    let moves = dbx.emu.requests().iter().filter(|r| r.path.ends_with("files/move_v2")).count();
    assert_eq!(moves, 3, "one write-back per item");
    let row = gw.in_state("excepted").pop().expect("excepted");
    assert_eq!(row.protocol, "dropbox");
}

#[test]
fn dropbox_example_config_and_its_rules_pass_check_and_their_tests() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/dropbox.example.toml");
    for args in [vec!["check", "--config", config], vec!["rules", "test", "--config", config]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wharf")).args(&args).output().expect("wharf runs");
        assert!(out.status.success(), "{args:?}: {}", crate::support::text(&out));
    }
}

#[test]
fn dropbox_an_outbound_job_publishes_its_package_into_a_dropbox_folder_once() {
    let dbx = Dbx::start();
    let extra = format!(
        "{}\n[[jobs]]\nname = \"to-dropbox\"\naccount = \"acme\"\n[jobs.source]\ntype = \"dir\"\npath = \"exports\"\n\
         [jobs.destination]\ntype = \"dropbox\"\ntarget = \"dbx\"\nfolder = \"exports/ACME\"\n",
        dbx.target_toml("")
    );
    let gw = Gateway::start(Options { extra, ..Options::default() });
    std::fs::create_dir_all(gw.dir.path().join("exports")).expect("mkdir");
    let sha = random_file(&gw.dir.path().join("exports/catalogue.csv"), 50_000, 77);
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args(["outbound", "run", "to-dropbox", "--config"])
            .arg(&gw.config)
            .output()
            .expect("wharf runs")
    };
    // Dropbox failing: the run fails, nothing is there, nothing is marked exported
    dbx.emu.faults().fail_next(20, 503);
    let failed = run();
    assert!(!failed.status.success(), "{}", crate::support::text(&failed));
    assert!(dbx.emu.list("/wharf/exports").is_empty());
    dbx.emu.faults().reset();
    let out = run();
    assert!(out.status.success(), "{}", crate::support::text(&out));
    let files = dbx.emu.list("/wharf/exports/ACME");
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].path_display.ends_with("-0001.zip") || files[0].path_display.ends_with("-0002.zip"), "{files:?}");
    let zip_bytes = dbx.emu.content(&files[0].path_display).expect("content");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).expect("a zip");
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name("catalogue.csv").expect("entry"), &mut body).expect("read");
    assert_eq!(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)), sha);
    assert!(zip.by_name("manifest.json").is_ok());
    let again = run();
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing new"), "{}", crate::support::text(&again));
    assert_eq!(dbx.emu.list("/wharf/exports/ACME").len(), 1);
    assert!(gw.audit().iter().any(|e| e["event"] == "package_published"
        && e["path"].as_str().is_some_and(|p| p.starts_with("dropbox:/wharf/exports/ACME/"))));
    assert!(std::fs::read_dir(gw.spool().join("outbound/acme")).map(|d| d.count()).unwrap_or(0) == 0, "no build left");
}

#[test]
fn dropbox_a_kill_9_while_a_polled_file_is_fetched_takes_it_once_after_the_restart() {
    let dbx = Dbx::start();
    let mut gw = polled_gateway(&dbx);
    let body = gw.dir.path().join("inv.pdf");
    let sha = pdf(&body, 9);
    // every call slow: the gateway is caught between recording the item and committing its body
    dbx.emu.faults().set_latency(std::time::Duration::from_millis(1500));
    dbx.emu.put_file("/Inbox/INV-ACME-2026-0901.pdf", &std::fs::read(&body).expect("read"));
    gw.wait_for(60, "the fetch in progress", || gw.in_state("receiving").len() == 1);
    gw.kill9();
    dbx.emu.faults().set_latency(std::time::Duration::ZERO);
    gw.spawn();
    gw.wait_for(30, "the delivery after the restart", || gw.in_state("delivered").len() == 1);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let states: Vec<String> = gw.transfers().iter().map(|t| t.state.clone()).collect();
    assert_eq!(states, ["aborted", "delivered"], "the half-fetched one is aborted, the item delivered once");
    let docs = in_target(&gw);
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(sha256_file(&docs[0]), sha);
}

#[test]
fn dropbox_a_resubmitted_exception_is_written_back_again_once_delivered() {
    let dbx = Dbx::start();
    let gw = polled_gateway(&dbx);
    let body = gw.dir.path().join("scan.pdf");
    let sha = pdf(&body, 11);
    // a real invoice under a name the rules do not accept: excepted, moved to rejected/
    dbx.emu.put_file("/Inbox/scan-0703.pdf", &std::fs::read(&body).expect("read"));
    gw.wait_for(30, "the misnamed scan excepted", || gw.in_state("excepted").len() == 1);
    gw.wait_for(30, "the excepted write-back", || dbx.emu.file("/Inbox/rejected/scan-0703.pdf").is_some());
    // ops resubmit it under its proper name: delivered, and the file moves on to filed/
    let id = gw.in_state("excepted").pop().expect("excepted").id;
    let config = gw.config.display().to_string();
    let retry = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["exceptions", "retry", "--config", &config, &id, "--as", "INV-ACME-2026-0703.pdf"])
        .output()
        .expect("wharf runs");
    assert!(retry.status.success(), "{}", crate::support::text(&retry));
    gw.wait_for(30, "the resubmission delivered", || gw.in_state("delivered").len() == 1);
    gw.wait_for(30, "the delivered write-back", || dbx.emu.file("/Inbox/filed/scan-0703.pdf").is_some());
    assert!(dbx.emu.file("/Inbox/rejected/scan-0703.pdf").is_none());
    assert_eq!(sha256_file(&gw.dir.path().join("ecm/2026/ACME/INV-ACME-2026-0703.pdf")), sha);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let moves = dbx.emu.requests().iter().filter(|r| r.path.ends_with("files/move_v2")).count();
    assert_eq!(moves, 2, "one write-back per outcome, each once");
    let written: Vec<_> = gw.audit().into_iter().filter(|e| e["event"] == "source_written_back").collect();
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(written[1]["reason"].as_str().is_some_and(|r| r.starts_with("delivered: moved to /Inbox/filed/")));
}
