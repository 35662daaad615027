use super::*;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$P/D8olxJ9zwCWKvm5ScxGg$ud14Z/JxP6qnZ16h++2SkqW6oUqY1Gq33M9tt2R8yqw";

fn parse(text: &str) -> Result<Config, Error> {
    Config::parse(Path::new("/etc/wharf/wharf.toml"), text)
}

fn good() -> String {
    format!(
        r#"[spool]
root = "spool"

[sftp]
listen = "127.0.0.1:2222"
host_key = "keys/host"

[[accounts]]
name = "acme"
password_hash = "{HASH}"
attributes = {{ partner_id = "ACME" }}
mounts = [
  {{ path = "/invoices", box = "inbound", channel = "invoices", permissions = ["list", "write"] }},
  {{ path = "/outbound", box = "outbound", permissions = ["list", "read", "delete"] }},
  {{ path = "/exceptions", box = "exceptions", permissions = ["list", "read"] }},
]
"#
    )
}

#[test]
fn a_good_config_resolves_paths_against_its_folder() -> Result<(), Error> {
    let c = parse(&good())?;
    assert_eq!(c.spool.root, Path::new("/etc/wharf/spool"));
    assert_eq!(c.spool.journal, Path::new("/etc/wharf/spool/journal.db"));
    assert_eq!(c.sftp.as_ref().map(|s| s.host_key.clone()), Some(PathBuf::from("/etc/wharf/keys/host")));
    let acme = c.account("acme").expect("acme");
    assert_eq!(acme.mounts.len(), 3);
    assert_eq!(acme.mounts[0].kind, BoxKind::Inbound { channel: "invoices".into() });
    assert_eq!(acme.mounts[1].kind, BoxKind::Outbound { owner: "acme".into() });
    assert_eq!(acme.mounts[2].kind, BoxKind::Exceptions { scope: ExceptionScope::Own });
    assert!(acme.mounts[0].permissions.write && !acme.mounts[0].permissions.read);
    assert!(!format!("{acme:?}").contains("argon2"), "Debug must not print the password hash");
    Ok(())
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn unknown_keys_are_errors_with_line_and_column() {
    let text = good().replace("host_key = \"keys/host\"", "host_key = \"keys/host\"\nhostkey = \"typo\"");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("/etc/wharf/wharf.toml:7:1: sftp.hostkey: unknown field `hostkey`"), "{}", p[0]);
}

#[test]
fn every_semantic_problem_is_reported_at_its_key() {
    let text = good()
        .replace("\"127.0.0.1:2222\"", "\"localhost\"")
        .replace("box = \"outbound\"", "box = \"outbox\"")
        .replace("\"list\", \"write\"", "\"list\", \"write\", \"fly\"");
    let p = problems(&text);
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(p[0].starts_with("/etc/wharf/wharf.toml:5:1: sftp.listen: `localhost` is not an address"), "{}", p[0]);
    assert!(
        p[1].contains(":13:") && p[1].contains("accounts[0].mounts[0].permissions[2]: unknown permission `fly`"),
        "{}",
        p[1]
    );
    assert!(p[2].contains(":14:") && p[2].contains("accounts[0].mounts[1].box: unknown box `outbox`"), "{}", p[2]);
}

#[test]
fn accounts_need_a_credential_and_a_unique_name() {
    let text = good().replace(&format!("password_hash = \"{HASH}\""), "password_hash = \"plain\"")
        + "\n[[accounts]]\nname = \"acme\"\n";
    let p = problems(&text).join("\n");
    assert!(p.contains("accounts[0].password_hash: not an argon2id PHC string"), "{p}");
    assert!(p.contains("accounts[1].name: account `acme` is defined twice"), "{p}");
    assert!(p.contains("has neither `password_hash` nor authorized keys"), "{p}");
}

#[test]
fn mounts_are_one_clean_folder_and_fit_their_box() {
    let text = good()
        .replace("path = \"/invoices\"", "path = \"/a/b\"")
        .replace("box = \"exceptions\", permissions", "box = \"exceptions\", scope = \"every\", permissions");
    let p = problems(&text).join("\n");
    assert!(p.contains("`/a/b` must be one folder below the root"), "{p}");
    assert!(p.contains("unknown scope `every`"), "{p}");
    let inbound_delete = good().replace("\"list\", \"write\"", "\"list\", \"write\", \"delete\"");
    assert!(problems(&inbound_delete).join("\n").contains("inbound box is flat"));
    let no_channel = good().replace("channel = \"invoices\", ", "");
    assert!(problems(&no_channel).join("\n").contains("an inbound box needs `channel"));
}

#[test]
fn require_tls_needs_a_certificate() {
    let text = good() + "\n[ftp]\nlisten = \"127.0.0.1:2121\"\nrequire_tls = true\npassive_ports = [5000, 4000]\n";
    let p = problems(&text).join("\n");
    assert!(p.contains("ftp.require_tls: require_tls = true needs [ftp.tls]"), "{p}");
    assert!(p.contains("ftp.passive_ports"), "{p}");
}

#[test]
fn syntax_errors_name_the_line() {
    let p = problems("[spool]\nroot = \n");
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("/etc/wharf/wharf.toml:2:"), "{}", p[0]);
}

#[test]
fn authorized_keys_are_parsed() {
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGlC6n8Ze1mEHxkZQF0dU9a4y1m9TZkP4Q1mS3fJ3kQa test@host";
    let text = good().replace(&format!("password_hash = \"{HASH}\""), &format!("authorized_keys = \"{key}\""));
    let c = parse(&text).expect("valid");
    assert_eq!(c.accounts[0].authorized_keys.len(), 1);
    let bad = good().replace(&format!("password_hash = \"{HASH}\""), "authorized_keys = \"ssh-ed25519 garbage\"");
    assert!(
        problems(&bad).join("\n").contains("accounts[0].authorized_keys: key entry 1 is not an OpenSSH public key")
    );
}

#[test]
fn the_demo_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/demo.toml");
    let c = Config::load(&path).expect("deploy/demo.toml must stay valid");
    assert_eq!(c.accounts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["acme", "globex", "ops"]);
}

#[test]
fn an_opentext_target_is_validated_with_located_errors() {
    let ok = format!(
        "{}\n[[targets]]\nname = \"otcs\"\ntype = \"opentext\"\n[targets.opentext]\nbase_url = \"https://ecm.example.com/otcs/cs.exe/\"\n\
         username = \"svc\"\npassword_env = \"OTCS_PW\"\nroot_folder = 2000\ncategory = {{ id = 9830, attributes = {{ vendor = 2 }} }}\nchecksum_attribute = 5\n",
        good()
    );
    let c = parse(&ok).expect("valid");
    let TargetKind::OpenText(o) = &c.targets[0].kind else { panic!("an opentext target") };
    assert_eq!(o.base_url, "https://ecm.example.com/otcs/cs.exe");
    assert_eq!(o.credentials, opentext::Credentials::PasswordEnv { username: "svc".into(), var: "OTCS_PW".into() });
    assert_eq!((o.concurrency, o.timeout.as_secs()), (8, 60));

    let bad = format!(
        "{}\n[[targets]]\nname = \"otcs\"\ntype = \"opentext\"\nroot = \"x\"\n[targets.opentext]\nbase_url = \"ftp://x\"\n\
         password_env = \"OTCS_PW\"\nroot_folder = 0\nconcurrency = 0\nchecksum_attribute = 5\npasword = \"typo\"\n",
        good()
    );
    let text = parse(&bad).expect_err("invalid").to_string();
    for needle in [
        "targets[0].root",
        "targets[0].opentext.base_url",
        "targets[0].opentext.username",
        "targets[0].opentext.root_folder",
        "targets[0].opentext.concurrency",
        "targets[0].opentext.checksum_attribute",
        "targets[0].opentext.pasword",
    ] {
        assert!(text.contains(needle), "{needle} missing in:\n{text}");
    }
    assert!(text.contains("wharf.toml:"), "{text}");
    // A secret is never in the file: no `password` key exists.
    let inline = ok.replace("password_env = \"OTCS_PW\"", "password = \"hunter2\"");
    let text = parse(&inline).expect_err("inline password").to_string();
    assert!(text.contains("opentext.password") && !text.contains("hunter2"), "{text}");
}

#[test]
fn an_opentext_large_file_upload_threshold_defaults_to_64_mib_and_is_validated() {
    let target = |extra: &str| {
        format!(
            "{}\n[[targets]]\nname = \"otcs\"\ntype = \"opentext\"\n[targets.opentext]\nbase_url = \"https://ecm.example.com/otcs/cs.exe\"\n\
             username = \"svc\"\npassword_env = \"OTCS_PW\"\nroot_folder = 2000\n{extra}",
            good()
        )
    };
    let threshold = |extra: &str| {
        let c = parse(&target(extra)).expect("valid");
        let TargetKind::OpenText(o) = &c.targets[0].kind else { panic!("an opentext target") };
        o.multipart_threshold
    };
    assert_eq!(threshold(""), Some(64 << 20));
    assert_eq!(threshold("multipart_threshold_mib = 200\n"), Some(200 << 20));
    assert_eq!(threshold("multipart_threshold_mib = 0\n"), None, "0 turns Large File Upload off");
    assert_eq!(threshold("multipart_threshold_bytes = 8192\n"), Some(8192));
    assert_eq!(threshold("multipart_threshold_bytes = 0\n"), None);

    let both =
        parse(&target("multipart_threshold_mib = 1\nmultipart_threshold_bytes = 10\n")).expect_err("both").to_string();
    assert!(both.contains("targets[0].opentext.multipart_threshold_bytes") && both.contains("not both"), "{both}");
    let huge = parse(&target("multipart_threshold_mib = 2000000\n")).expect_err("too large").to_string();
    assert!(huge.contains("targets[0].opentext.multipart_threshold_mib"), "{huge}");
    let class = parse(&target("rm_classification = -3\n")).expect_err("bad class").to_string();
    assert!(class.contains("targets[0].opentext.rm_classification"), "{class}");
}

#[test]
fn dropbox_targets_and_polls_are_checked_key_by_key() {
    let text = format!(
        r#"{}
[[targets]]
name = "dbx"
type = "dropbox"
[targets.dropbox]
app_key = ""
refresh_token_env = "T"
refresh_token_file = "t"
chunk_mib = 5
batch_max = 0
root = "relative"
single_upload_max_mib = 9223372036854775807

[[targets]]
name = "files"
type = "fs"
root = "x"

[[polls]]
name = "p"
channel = "invoices"
account = "nobody"
[polls.source]
type = "dropbox"
target = "files"
path = "Projects"
name = "("
[polls.write_back]
delivered = "../up"
"#,
        good()
    );
    let e = problems(&text).join("\n");
    for want in [
        "targets[0].dropbox.app_key: must be the app key",
        "targets[0].dropbox.refresh_token_file: give `refresh_token_env` or `refresh_token_file`, not both",
        "targets[0].dropbox.root: must be an absolute Dropbox folder",
        "targets[0].dropbox.chunk_mib: must be a multiple of 4",
        "targets[0].dropbox.single_upload_max_mib: must be between 1 byte and 150 MiB",
        "targets[0].dropbox.batch_max: must be between 1 and 1000",
        "polls[0].account: no account named `nobody`",
        "polls[0].channel: a poll needs [pipeline]",
        "polls[0].source.target: no `dropbox` target named `files`",
        "polls[0].source.path: must be an absolute Dropbox folder",
        "polls[0].source.name: not a regex",
        "polls[0].write_back.delivered: must be a folder name",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    assert!(e.contains("/etc/wharf/wharf.toml:"), "{e}");
}

#[test]
fn poll_schedules_are_cron_or_interval_not_both() {
    let poll = |lines: &str| {
        format!(
            "{}\n[[targets]]\nname = \"files\"\ntype = \"fs\"\nroot = \"x\"\n\n[[polls]]\nname = \"p\"\n\
             channel = \"invoices\"\naccount = \"nobody\"\n{lines}\n[polls.source]\ntype = \"dropbox\"\ntarget = \"files\"\n",
            good()
        )
    };
    let both = problems(&poll("every_secs = 5\nschedule = \"*/5 * * * *\"")).join("\n");
    assert!(both.contains("polls[0].schedule: give `schedule` (cron) or `every_secs`"), "{both}");
    let bad = problems(&poll("schedule = \"every monday\"")).join("\n");
    assert!(bad.contains("polls[0].schedule: `every monday` is not a cron expression"), "{bad}");
    let zone = problems(&poll("schedule = \"0 6 * * *\"\ntime_zone = \"Mars/Olympus\"")).join("\n");
    assert!(zone.contains("polls[0].time_zone: `Mars/Olympus` is not an IANA time zone"), "{zone}");
    let lone = problems(&poll("time_zone = \"Europe/Berlin\"")).join("\n");
    assert!(lone.contains("polls[0].time_zone: `time_zone` only applies with `schedule`"), "{lone}");
}
