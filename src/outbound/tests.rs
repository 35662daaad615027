//! Runs of real jobs on a temporary spool: scheduling with a hand-moved clock, catch-up,
//! splitting, `files` packaging, retention, and recovery of interrupted publishes.

use super::schedule::{Clock, ManualClock};
use super::*;
use crate::audit::Audit;
use chrono::TimeZone;
use std::path::Path;
use std::time::Duration;

fn config(dir: &Path, job: &str) -> Config {
    let hash = crate::accounts::hash_password("pw").expect("hash");
    let text = format!(
        r#"
[spool]
root = "spool"
[sftp]
listen = "127.0.0.1:0"
host_key = "host_key"
[[accounts]]
name = "acme"
password_hash = "{hash}"
attributes = {{ partner_id = "ACME" }}
mounts = [{{ path = "/outbound", box = "outbound", permissions = ["list", "read"] }}]
[[jobs]]
name = "daily"
account = "acme"
{job}
"#
    );
    let path = dir.join("wharf.toml");
    std::fs::write(&path, &text).expect("write config");
    Config::load(&path).unwrap_or_else(|e| panic!("config: {e}"))
}

async fn outbound(dir: &Path, job: &str) -> Arc<Outbound> {
    let cfg = config(dir, job);
    let audit = Arc::new(Audit::open(&cfg.spool.audit_log).expect("audit"));
    let spool = Spool::open(&cfg.spool, audit).await.expect("spool");
    Arc::new(Outbound::new(spool, &cfg).expect("outbound"))
}

const DIR_SOURCE: &str = "[jobs.source]\ntype = \"dir\"\npath = \"exports\"\n";

fn write(dir: &Path, name: &str, body: &[u8]) {
    let p = dir.join("exports").join(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, body).expect("write");
}

fn published(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("spool/outbound/acme"))
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn quiet() -> Arc<dyn Progress> {
    Arc::new(Quiet)
}

/// Polls `f` for up to 30 s: generous, because CI machines are shared and a run that is merely
/// slow must not read as a failure (a run that never happens still fails).
async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_job_fires_at_its_time_in_its_zone_and_not_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = format!("schedule = \"0 6 * * *\"\ntime_zone = \"Europe/Berlin\"\n{DIR_SOURCE}");
    let ob = outbound(dir.path(), &job).await;
    write(dir.path(), "a.csv", b"1");
    let berlin = |h, m, s| {
        chrono_tz::Europe::Berlin.with_ymd_and_hms(2026, 12, 2, h, m, s).single().expect("valid").with_timezone(&Utc)
    };
    let clock = Arc::new(ManualClock::new(berlin(5, 0, 0)));
    // Recorded before the scheduler starts: a job it sees for the first time counts from the
    // clock's *current* time, and on a loaded machine that first read could come after the
    // clock was moved to 06:00 below (then 06:00 would count as already past).
    ob.spool().journal().set_last_fire("daily", berlin(5, 0, 0)).await.expect("set");
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(scheduler::run(ob.clone(), clock.clone() as Arc<dyn Clock>, stop.clone()));
    clock.set(berlin(5, 59, 59));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(published(dir.path()).is_empty(), "nothing before 06:00");
    clock.set(berlin(6, 0, 0));
    wait_until("the 06:00 run", || published(dir.path()) == ["ACME-20261202-0001.zip"]).await;
    let state = ob.spool().journal().job_state("daily").await.expect("state");
    assert_eq!(state.last_fire.as_deref(), Some("2026-12-02T05:00:00.000Z"), "06:00 CET is 05:00 UTC");
    // the same minute again fires nothing more
    clock.set(berlin(6, 0, 30));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ob.spool().journal().packages("daily").await.expect("packages").len(), 1);
    stop.cancel();
    task.await.expect("scheduler ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_downtime_a_job_catches_up_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = format!("schedule = \"0 6 * * *\"\ntime_zone = \"UTC\"\n{DIR_SOURCE}");
    let ob = outbound(dir.path(), &job).await;
    let journal = ob.spool().journal();
    // the last fire was four days ago: three occurrences were missed
    let last = Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).single().expect("valid");
    journal.set_last_fire("daily", last).await.expect("set");
    write(dir.path(), "a.csv", b"1");
    let now = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).single().expect("valid");
    let clock = Arc::new(ManualClock::new(now));
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(scheduler::run(ob.clone(), clock.clone() as Arc<dyn Clock>, stop.clone()));
    wait_until("the catch-up run", || journal_has_run(&ob)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let state = journal.job_state("daily").await.expect("state");
    assert_eq!(state.last_fire.as_deref(), Some("2026-12-02T06:00:00.000Z"), "the latest missed occurrence");
    assert_eq!(journal.packages("daily").await.expect("packages").len(), 1, "one run, not three");
    stop.cancel();
    task.await.expect("scheduler ends");
}

fn journal_has_run(ob: &Outbound) -> bool {
    let rt = tokio::runtime::Handle::current();
    let j = ob.spool().journal().clone();
    tokio::task::block_in_place(|| rt.block_on(j.job_state("daily"))).map(|s| s.last_run.is_some()).unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_split_into_packages_by_count_and_bytes_and_go_out_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = format!("{DIR_SOURCE}[jobs.select]\nmax_files = 2\nmax_bytes = 1000\n");
    let ob = outbound(dir.path(), &job).await;
    for (i, len) in [10usize, 10, 10, 900, 5000].iter().enumerate() {
        write(dir.path(), &format!("f{i}.bin"), &vec![b'x'; *len]);
    }
    let r = ob.run("daily", quiet()).await.expect("runs");
    let sizes: Vec<usize> = r.packages.iter().map(|p| p.items).collect();
    // [10, 10] [10, 900→ too big with 10? 910 ≤ 1000 → together] then 5000 alone
    assert_eq!(sizes, [2, 2, 1], "{}", r.summary());
    assert_eq!(r.packages[0].path, format!("ACME-{}-0001.zip", Utc::now().format("%Y%m%d")));
    let again = ob.run("daily", quiet()).await.expect("runs");
    assert!(again.packages.is_empty(), "{}", again.summary());
    // a changed file is a new version: it goes out again, alone
    std::thread::sleep(Duration::from_millis(20));
    write(dir.path(), "f1.bin", b"changed");
    let third = ob.run("daily", quiet()).await.expect("runs");
    assert_eq!(third.packages.len(), 1);
    assert_eq!(third.packages[0].items, 1);
    assert!(third.packages[0].path.ends_with("-0004.zip"), "{}", third.packages[0].path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_packaging_publishes_each_file_with_a_ready_marker_into_a_subfolder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = format!("folder = \"/daily\"\n{DIR_SOURCE}[jobs.package]\nformat = \"files\"\nready_marker = true\n");
    let ob = outbound(dir.path(), &job).await;
    write(dir.path(), "a.csv", b"a");
    write(dir.path(), "b.csv", b"b");
    let r = ob.run("daily", quiet()).await.expect("runs");
    let mut paths: Vec<&str> = r.packages.iter().map(|p| p.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["daily/a.csv", "daily/b.csv"]);
    let sub = dir.path().join("spool/outbound/acme/daily");
    assert_eq!(std::fs::read(sub.join("a.csv")).expect("published"), b"a");
    assert!(sub.join("a.csv.ready").exists() && sub.join("b.csv.ready").exists());
    // a new version of a.csv does not overwrite the one not yet collected
    std::thread::sleep(Duration::from_millis(20));
    write(dir.path(), "a.csv", b"a2");
    let r = ob.run("daily", quiet()).await.expect("runs");
    assert_eq!(r.packages[0].path, "daily/a-2.csv");
    assert_eq!(std::fs::read(sub.join("a.csv")).expect("kept"), b"a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_expired_packages_and_audits_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = format!("{DIR_SOURCE}[jobs.package]\nretention_days = 2\nready_marker = true\n");
    let ob = outbound(dir.path(), &job).await;
    write(dir.path(), "a.csv", b"a");
    let r = ob.run("daily", quiet()).await.expect("runs");
    let name = r.packages[0].path.clone();
    ob.sweep(Utc::now() + chrono::Duration::days(1)).await;
    assert_eq!(published(dir.path()), [name.clone(), format!("{name}.ready")], "kept within retention");
    ob.sweep(Utc::now() + chrono::Duration::days(3)).await;
    assert!(published(dir.path()).is_empty(), "removed with its marker");
    let rows = ob.spool().journal().packages("daily").await.expect("rows");
    assert_eq!((rows[0].state.as_str(), rows[0].removed_why.as_deref()), ("removed", Some("expired")));
    let audit = std::fs::read_to_string(dir.path().join("spool/audit.jsonl")).expect("audit");
    assert!(audit.contains("\"event\":\"package_expired\""), "{audit}");
    // removed packages stay exported: the item does not come back
    assert!(ob.run("daily", quiet()).await.expect("runs").packages.is_empty());
}

/// Stages a package as a run would just before placing it, then "crashes".
async fn stage_only(ob: &Outbound, dir: &Path, with_build: bool) -> String {
    let journal = ob.spool().journal();
    let build = format!("{}crashed", publish::build_prefix("daily"));
    if with_build {
        std::fs::create_dir_all(dir.join("spool/outbound/acme")).expect("mkdir");
        std::fs::write(dir.join("spool/outbound/acme").join(&build), b"PK-ish").expect("write");
    }
    let item = ob.jobs().next().expect("job").source.list(None).await.expect("lists").remove(0);
    let p = NewPackage {
        id: "01CRASHED".into(),
        job: "daily".into(),
        run_id: "r".into(),
        owner: "acme".into(),
        path: "ACME-crashed.zip".into(),
        build_path: build,
        size: 6,
        sha256: "x".into(),
        items: 1,
        ready_marker: false,
        delete_after_download: false,
        expires_at: None,
    };
    journal.stage_package(&p, &[(item.key.clone(), item.fingerprint)], 1, None).await.expect("staged");
    item.key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_package_whose_file_exists_is_finished_by_the_next_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = outbound(dir.path(), DIR_SOURCE).await;
    write(dir.path(), "a.csv", b"a");
    stage_only(&ob, dir.path(), true).await;
    assert!(published(dir.path()).iter().all(|n| n.starts_with(".wharf")), "nothing visible yet");
    let r = ob.run("daily", quiet()).await.expect("runs");
    assert_eq!(r.recovered, 1);
    assert!(r.packages.is_empty(), "a.csv went out in the recovered package");
    assert_eq!(published(dir.path()), ["ACME-crashed.zip"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_package_whose_file_is_lost_is_rolled_back_and_its_items_go_out_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = outbound(dir.path(), DIR_SOURCE).await;
    write(dir.path(), "a.csv", b"a");
    stage_only(&ob, dir.path(), false).await;
    // a stray build of this job (a crash while packaging) is removed too
    std::fs::write(
        dir.path().join("spool/outbound/acme").join(format!("{}stray", publish::build_prefix("daily"))),
        b"",
    )
    .ok();
    let r = ob.run("daily", quiet()).await.expect("runs");
    assert_eq!(r.recovered, 0);
    assert_eq!(r.packages.len(), 1, "{}", r.summary());
    assert_eq!(published(dir.path()), [r.packages[0].path.clone()], "no stray build left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_a_job_while_one_holds_the_lock_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = outbound(dir.path(), DIR_SOURCE).await;
    let held = lock(ob.spool(), "daily").expect("lock").expect("free");
    assert!(matches!(ob.run("daily", quiet()).await, Err(RunError::Busy(_))));
    drop(held);
    assert!(ob.run("daily", quiet()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_changes_while_it_is_packaged_fails_the_run_and_goes_out_next_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = outbound(dir.path(), DIR_SOURCE).await;
    write(dir.path(), "steady.csv", b"1");
    write(dir.path(), "growing.log", b"start\n");
    // an exporter still appending to a file while the job runs
    let path = dir.path().join("exports/growing.log");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let appender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = f.write_all(&[b'x'; 4096]);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    // the appender must be running before the job lists (on a loaded machine the thread may
    // start late, and a job that packages a still file rightly succeeds)
    let grown = dir.path().join("exports/growing.log");
    wait_until("the appender to start", || std::fs::metadata(&grown).is_ok_and(|m| m.len() > 3 * 4096)).await;
    let r = ob.run("daily", quiet()).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    appender.join().expect("appender");
    match r {
        Err(RunError::Failed(why)) => assert!(why.contains("growing.log") && why.contains("changed"), "{why}"),
        other => panic!("the run must fail: {other:?}"),
    }
    assert!(published(dir.path()).is_empty(), "nothing half-published: {:?}", published(dir.path()));
    let audit = std::fs::read_to_string(dir.path().join("spool/audit.jsonl")).expect("audit");
    assert!(audit.contains("outbound_run_failed"), "{audit}");
    // once it is stable, the next run takes both
    let next = ob.run("daily", quiet()).await.expect("runs");
    assert_eq!(next.packages.len(), 1);
    assert_eq!(next.packages[0].items, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watermark_moves_only_when_a_package_is_published_and_never_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = outbound(dir.path(), DIR_SOURCE).await;
    let j = ob.spool().journal();
    let pkg = |id: &str| NewPackage {
        id: id.into(),
        job: "daily".into(),
        run_id: "r".into(),
        owner: "acme".into(),
        path: format!("{id}.zip"),
        build_path: format!("{}{id}", publish::build_prefix("daily")),
        size: 1,
        sha256: "x".into(),
        items: 1,
        ready_marker: false,
        delete_after_download: false,
        expires_at: None,
    };
    j.stage_package(&pkg("A"), &[("a".into(), "1".into())], 1, Some("2026-12-01T10:00:00Z")).await.expect("stage");
    assert_eq!(j.job_state("daily").await.expect("state").watermark, None, "staged is not published");
    // a rolled-back package leaves the watermark (and its items are due again)
    j.unstage_package("A").await.expect("unstage");
    assert_eq!(j.job_state("daily").await.expect("state").watermark, None);
    assert!(!j.exported("daily", "a", "1").await.expect("query"));
    j.stage_package(&pkg("B"), &[("b".into(), "1".into())], 2, Some("2026-12-02T10:00:00Z")).await.expect("stage");
    j.mark_published("B").await.expect("publish");
    assert_eq!(j.job_state("daily").await.expect("state").watermark.as_deref(), Some("2026-12-02T10:00:00Z"));
    j.stage_package(&pkg("C"), &[("c".into(), "1".into())], 3, Some("2026-11-30T10:00:00Z")).await.expect("stage");
    j.mark_published("C").await.expect("publish");
    assert_eq!(
        j.job_state("daily").await.expect("state").watermark.as_deref(),
        Some("2026-12-02T10:00:00Z"),
        "never back"
    );
    assert_eq!(j.job_state("daily").await.expect("state").seq, 3);
}
