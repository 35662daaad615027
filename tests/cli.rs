//! The `wharf` command line: `check`, `user hash-password`, `audit verify` and start-up failures of
//! `serve`, run as the real binary.

use crate::support::{Gateway, Options, random_file, text};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$P/D8olxJ9zwCWKvm5ScxGg$ud14Z/JxP6qnZ16h++2SkqW6oUqY1Gq33M9tt2R8yqw";

fn wharf(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("wharf runs")
}

fn wharf_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wharf runs");
    child.stdin.take().expect("stdin").write_all(input).expect("write stdin");
    child.wait_with_output().expect("wharf output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// 1-based line of the first line of `text` containing `needle`, and the column of `needle`.
fn position(text: &str, needle: &str) -> (usize, usize) {
    text.lines()
        .enumerate()
        .find_map(|(i, l)| l.find(needle).map(|c| (i + 1, l[..c].chars().count() + 1)))
        .unwrap_or_else(|| panic!("{needle:?} not in the config"))
}

/// The problem lines of a `check` run (without the summary line).
fn problem_lines(out: &Output) -> Vec<String> {
    stderr(out).lines().filter(|l| !l.contains("problem(s); nothing was started")).map(str::to_string).collect()
}

/// A config that is valid except for what `sftp` and `accounts` say.
fn config_text(sftp: &str, accounts: &str) -> String {
    format!("[spool]\nroot = \"spool\"\n\n[sftp]\n{sftp}\n{accounts}")
}

fn account(name: &str, permissions: &str) -> String {
    format!(
        "\n[[accounts]]\nname = \"{name}\"\npassword_hash = \"{HASH}\"\nmounts = [\n  {{ path = \"/invoices\", box = \"inbound\", channel = \"invoices\", permissions = [{permissions}] }},\n]\n"
    )
}

const GOOD_SFTP: &str = "listen = \"127.0.0.1:2222\"\nhost_key = \"host_key\"\n";
const BAD_SFTP: &str = "listen = \"localhost\"\nhost_key = \"host_key\"\n";

#[test]
fn check_reports_every_problem_of_a_broken_config_in_one_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = account("acme", "\"list\", \"fly\"") + &account("acme", "\"list\", \"write\"");
    let toml = config_text(&format!("{BAD_SFTP}hostkey = \"typo\"\n"), &accounts);
    std::fs::write(dir.path().join("broken.toml"), &toml).expect("write");
    let out = wharf(&["check", "--config", "broken.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let lines = problem_lines(&out);
    // Regression: an unknown key used to stop parsing and hide every other problem.
    assert_eq!(lines.len(), 4, "unknown key, bad listen address, unknown permission, duplicate account:\n{lines:#?}");
    let (l, c) = position(&toml, "hostkey");
    assert!(
        lines.iter().any(|p| p.starts_with(&format!("broken.toml:{l}:{c}: sftp.hostkey: unknown field"))),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|p| p.contains(": sftp.listen: `localhost` is not an address")), "{lines:#?}");
    assert!(
        lines.iter().any(|p| p.contains(": accounts[0].mounts[0].permissions[1]: unknown permission")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|p| p.contains(": accounts[1].name: account `acme` is defined twice")), "{lines:#?}");
}

#[test]
fn check_names_the_exact_line_of_an_unknown_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = config_text(&format!("{GOOD_SFTP}hostkey = \"typo\"\n"), &account("acme", "\"list\", \"write\""));
    std::fs::write(dir.path().join("broken.toml"), &toml).expect("write");
    let out = wharf(&["check", "--config", "broken.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let lines = problem_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(position(&toml, "hostkey"), (7, 1));
    assert!(lines[0].starts_with("broken.toml:7:1: sftp.hostkey: unknown field `hostkey`"), "{}", lines[0]);
    assert!(stderr(&out).contains("broken.toml: 1 problem(s); nothing was started"), "{}", text(&out));
    assert!(stdout(&out).is_empty(), "{}", text(&out));
}

#[test]
fn check_reports_all_semantic_problems_together_each_at_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = account("acme", "\"list\", \"fly\"") + &account("globex", "\"list\"") + &account("acme", "\"list\"");
    let toml = config_text(BAD_SFTP, &accounts);
    std::fs::write(dir.path().join("broken.toml"), &toml).expect("write");
    let out = wharf(&["check", "--config", "broken.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let lines = problem_lines(&out);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let (l, c) = position(&toml, "listen");
    let listen = format!("broken.toml:{l}:{c}: sftp.listen: `localhost` is not an address with a port");
    assert!(lines.iter().any(|p| p.starts_with(&listen)), "{listen}\n{lines:#?}");
    let (l, c) = position(&toml, "\"fly\"");
    let permission = format!(
        "broken.toml:{l}:{c}: accounts[0].mounts[0].permissions[1]: unknown permission `fly`; use any of list read write rename delete mkdir"
    );
    assert!(lines.contains(&permission), "{permission}\n{lines:#?}");
    // The third account's `name` line: the third `name = "` in the file.
    let dup = toml.match_indices("name = \"").nth(2).map(|(i, _)| toml[..i].lines().count() + 1).expect("third name");
    let twice = format!("broken.toml:{dup}:1: accounts[2].name: account `acme` is defined twice");
    assert!(lines.contains(&twice), "{twice}\n{lines:#?}");
    assert!(stderr(&out).contains("broken.toml: 3 problem(s); nothing was started"), "{}", text(&out));
}

#[test]
fn check_accepts_the_demo_config_and_an_unreadable_file_is_exit_2() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/demo.toml");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = wharf(&["check", "--config", demo.to_str().expect("utf-8 path")], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("ok (3 accounts, 3 rule files)"), "{}", text(&out));

    let out = wharf(&["check", "--config", "missing.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).starts_with("missing.toml:0:0: (file): cannot read config"), "{}", text(&out));
}

/// Checks `password` against `hash` the way the gateway does: through `Accounts::login_password`.
fn library_accepts(hash: &str, password: &str) -> bool {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[spool]\nroot = \"spool\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"host_key\"\n[[accounts]]\nname = \"acme\"\npassword_hash = \"{hash}\"\n"
    );
    let config = wharf::config::Config::parse(&dir.path().join("wharf.toml"), &text).expect("config with the hash");
    let audit = Arc::new(wharf::audit::Audit::open(&dir.path().join("audit.jsonl")).expect("audit"));
    let accounts = wharf::accounts::Accounts::new(&config, audit).expect("accounts");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(accounts.login_password("acme", password, IpAddr::V4(Ipv4Addr::LOCALHOST), "sftp")).is_ok()
}

#[test]
fn hash_password_prints_an_argon2id_hash_the_library_accepts() {
    let out = wharf_stdin(&["user", "hash-password"], b"correct horse battery\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let hash = stdout(&out).trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert_eq!(stdout(&out).lines().count(), 1, "{}", text(&out));
    assert!(wharf::accounts::parse_password_hash(&hash).is_ok(), "{hash}");
    assert!(library_accepts(&hash, "correct horse battery"));
    assert!(!library_accepts(&hash, "correct horse battery\n"), "the newline is not part of the password");
    assert!(!library_accepts(&hash, "wrong"));

    // CRLF line end and no line end at all.
    let crlf = stdout(&wharf_stdin(&["user", "hash-password"], b"pw-crlf\r\n")).trim().to_string();
    assert!(library_accepts(&crlf, "pw-crlf"), "{crlf}");
    let bare = stdout(&wharf_stdin(&["user", "hash-password"], b"pw-bare")).trim().to_string();
    assert!(library_accepts(&bare, "pw-bare"), "{bare}");
    // Two runs salt differently.
    let again = stdout(&wharf_stdin(&["user", "hash-password"], b"correct horse battery\n")).trim().to_string();
    assert_ne!(again, hash);
}

#[test]
fn hash_password_refuses_an_empty_password() {
    for input in [&b""[..], b"\n", b"\r\n"] {
        let out = wharf_stdin(&["user", "hash-password"], input);
        assert_eq!(out.status.code(), Some(2), "{input:?}: {}", text(&out));
        assert!(stdout(&out).is_empty(), "{input:?}: {}", text(&out));
        assert!(stderr(&out).contains("empty password refused"), "{input:?}: {}", text(&out));
    }
}

/// `audit verify --file`, returning (exit code, stdout, stderr).
fn verify_file(path: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["audit", "verify", "--file"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("wharf runs");
    (out.status.code(), stdout(&out), stderr(&out))
}

#[test]
fn audit_verify_accepts_an_intact_trail_and_names_the_first_broken_line() {
    let mut gw = Gateway::start(Options::default());
    for (i, account) in ["acme", "globex", "acme"].iter().enumerate() {
        let f = gw.dir.path().join(format!("f{i}"));
        random_file(&f, 1000 + i, 50 + u64::try_from(i).expect("i"));
        let out = gw.sftp(account, &format!("put {} /invoices/f{i}.pdf\n", f.display()));
        assert!(out.status.success(), "{}", text(&out));
    }
    assert!(!gw.sftp_password("acme", "wrong", "ls /\n").status.success());
    gw.kill9();
    let trail = gw.spool().join("audit.jsonl");
    let original = std::fs::read_to_string(&trail).expect("trail");
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 7, "{original}");

    let (code, out, err) = verify_file(&trail);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("{} lines, chain intact", lines.len())), "{out}");

    let cfg = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["audit", "verify", "--config"])
        .arg(&gw.config)
        .output()
        .expect("wharf runs");
    assert_eq!(cfg.status.code(), Some(0), "{}", text(&cfg));
    assert!(stdout(&cfg).contains("chain intact"), "{}", text(&cfg));

    let tampered = gw.dir.path().join("tampered.jsonl");
    let broken_at = |edited: &[String]| {
        std::fs::write(&tampered, edited.join("\n") + "\n").expect("write copy");
        verify_file(&tampered)
    };
    let owned: Vec<String> = lines.iter().map(ToString::to_string).collect();

    // A size changed by one digit in the first upload (not the last line).
    let k = owned.iter().position(|l| l.contains("\"event\":\"upload_completed\"")).expect("an upload line");
    assert!(k + 1 < owned.len());
    let mut edited = owned.clone();
    edited[k] = edited[k].replacen("\"size\":1000", "\"size\":1001", 1);
    assert_ne!(edited[k], owned[k]);
    let (code, out, err) = broken_at(&edited);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains(&format!(": line {} is broken:", k + 2)), "line {} edited (1-based): {err}", k + 1);
    assert!(out.is_empty(), "{out}");

    // One letter of an account name in a middle line.
    let m = lines.len() / 2;
    let mut edited = owned.clone();
    edited[m] = edited[m].replacen("\"account\":\"acme\"", "\"account\":\"acmf\"", 1);
    if edited[m] == owned[m] {
        edited[m] = edited[m].replacen("\"account\":\"globex\"", "\"account\":\"globey\"", 1);
    }
    assert_ne!(edited[m], owned[m], "middle line has an account: {}", owned[m]);
    let (code, _, err) = broken_at(&edited);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!(": line {} is broken:", m + 2)), "line {} edited: {err}", m + 1);

    // A deleted middle line: the line that followed it (now at its place) no longer chains.
    let mut edited = owned.clone();
    edited.remove(m);
    let (code, _, err) = broken_at(&edited);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!(": line {} is broken:", m + 1)), "line {} deleted: {err}", m + 1);

    // The first line deleted, two lines swapped, a line that is not JSON.
    let (code, _, err) = broken_at(&owned[1..]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(": line 1 is broken:"), "{err}");
    let mut edited = owned.clone();
    edited.swap(m, m + 1);
    let (code, _, err) = broken_at(&edited);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!(": line {} is broken:", m + 1)), "{err}");
    let mut edited = owned.clone();
    edited[m].pop();
    let (code, _, err) = broken_at(&edited);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!(": line {} is broken: not JSON", m + 1)), "{err}");

    // The real trail was never touched.
    assert_eq!(std::fs::read_to_string(&trail).expect("trail"), original);
}

/// Runs `wharf serve` and waits at most `secs` for it to exit.
fn serve_exits_within(config: &Path, secs: u64) -> (Option<i32>, String, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wharf starts");
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("wharf serve still running after {secs} s: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    (out.status.code(), stdout(&out), stderr(&out), started.elapsed())
}

#[test]
fn serve_with_a_spool_that_cannot_be_created_fails_fast_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("blocker"), b"a regular file, not a folder").expect("blocker");
    let sftp = "listen = \"127.0.0.1:0\"\nhost_key = \"host_key\"\n";
    for (name, extra) in [("default-audit", ""), ("audit-elsewhere", "audit_log = \"audit.jsonl\"\n")] {
        let cfg = dir.path().join(format!("{name}.toml"));
        let toml = format!("[spool]\nroot = \"blocker/spool\"\n{extra}\n[sftp]\n{sftp}{}", account("acme", "\"list\""));
        std::fs::write(&cfg, toml).expect("config");
        let check = wharf(&["check", "--config", cfg.to_str().expect("utf-8")], dir.path());
        assert_eq!(check.status.code(), Some(0), "check never touches the spool: {}", text(&check));

        let (code, out, err, took) = serve_exits_within(&cfg, 20);
        assert!(code.is_some_and(|c| c != 0), "{name}: exit {code:?}\n{out}\n{err}");
        assert!(took < Duration::from_secs(10), "{name}: took {took:?}");
        assert!(!out.contains("listening"), "{name}: {out}");
        assert!(err.contains("cannot start the gateway"), "{name}: {err}");
        assert!(err.contains("blocker/spool") && err.contains("Not a directory"), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

#[test]
fn serve_start_up_error_states_its_cause_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("blocker"), b"a regular file").expect("blocker");
    let cfg = dir.path().join("wharf.toml");
    let toml = format!(
        "[spool]\nroot = \"blocker/spool\"\n\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"host_key\"\n{}",
        account("acme", "\"list\"")
    );
    std::fs::write(&cfg, toml).expect("config");
    let (code, _, err, _) = serve_exits_within(&cfg, 20);
    assert_eq!(code, Some(1), "{err}");
    // Regression: the cause used to be printed twice (in Display and again as the source chain).
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
}

#[test]
fn rules_test_runs_the_shipped_inline_tests_and_explain_shows_the_decision() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/demo.toml");
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = demo.to_str().expect("utf-8 path");
    let out = wharf(&["rules", "test", "--config", demo], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).lines().any(|l| l.ends_with("0 failed (3 channels)")), "{}", text(&out));

    let out = wharf(
        &["rules", "explain", "--config", demo, "--channel", "invoices", "--account", "acme", "INV-ACME-2026-0001.pdf"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = stdout(&out);
    assert!(
        s.contains("ACCEPTED") && s.contains("2026/ACME/INV-ACME-2026-0001.pdf") && s.contains("Acme Corporation"),
        "{s}"
    );
    let out = wharf(&["rules", "explain", "--config", demo, "--channel", "invoices", "invoice.pdf"], dir.path());
    assert!(stdout(&out).contains("EXCEPTED"), "{}", text(&out));

    // A failing inline test makes `rules test` exit 1.
    std::fs::create_dir_all(dir.path().join("rules/tables")).expect("mkdir");
    std::fs::write(
        dir.path().join("rules/c.toml"),
        "[[accept]]\nname = \"any\"\npattern = '^.+\\.txt$'\n\n[target]\nname = \"t\"\ndestination = \"{file.name}\"\n\n[[test]]\nfile = \"a.pdf\"\nexpect = \"accepted\"\n",
    )
    .expect("rule file");
    std::fs::write(
        dir.path().join("w.toml"),
        "[spool]\nroot = \"spool\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n[pipeline]\nrules = \"rules\"\n[[targets]]\nname = \"t\"\ntype = \"fs\"\nroot = \"out\"\n",
    )
    .expect("config");
    let out = wharf(&["rules", "test", "--config", "w.toml"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stdout(&out).contains("0 passed, 1 failed"), "{}", text(&out));
}
