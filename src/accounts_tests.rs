use super::*;
use crate::config::Config;
use std::path::Path;

fn accounts(extra: &str) -> (tempfile::TempDir, Accounts) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = hash_password("s3cret").expect("hash");
    let text = format!(
        "[spool]\nroot = \"spool\"\n[sessions]\nmax_per_account = 2\nmax_per_address = 2\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n\
         [[accounts]]\nname = \"acme\"\npassword_hash = \"{hash}\"\n{extra}\n"
    );
    let cfg = Config::parse(&dir.path().join("w.toml"), &text).expect("config");
    let audit = Arc::new(Audit::open(&dir.path().join("audit.jsonl")).expect("audit"));
    let a = Accounts::new(&cfg, audit).expect("accounts");
    (dir, a)
}

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[tokio::test]
async fn password_login_checks_the_hash_and_is_audited() {
    let (dir, a) = accounts("");
    assert!(a.login_password("acme", "s3cret", LOCAL, "sftp").await.is_ok());
    assert_eq!(a.login_password("acme", "wrong", LOCAL, "sftp").await.err(), Some(AuthError::BadCredentials));
    assert_eq!(a.login_password("nobody", "s3cret", LOCAL, "ftp").await.err(), Some(AuthError::BadCredentials));
    let trail = std::fs::read_to_string(dir.path().join("audit.jsonl")).expect("trail");
    assert_eq!(trail.matches("\"login_ok\"").count(), 1);
    assert_eq!(trail.matches("\"login_failed\"").count(), 2);
    assert!(!trail.contains("s3cret"), "a password must never reach the audit trail");
    assert!(crate::audit::verify(&dir.path().join("audit.jsonl")).is_ok());
}

#[tokio::test]
async fn allowed_networks_are_enforced() {
    let (_d, a) = accounts("allowed_networks = [\"10.0.0.0/8\"]");
    assert_eq!(
        a.login_password("acme", "s3cret", LOCAL, "sftp").await.err(),
        Some(AuthError::NetworkNotAllowed(LOCAL))
    );
    let inside: IpAddr = "10.1.2.3".parse().expect("ip");
    assert!(a.login_password("acme", "s3cret", inside, "sftp").await.is_ok());
    // An IPv4-mapped IPv6 address is matched as the IPv4 address it is.
    let mapped: IpAddr = "::ffff:10.1.2.3".parse().expect("ip");
    assert!(a.login_password("acme", "s3cret", mapped, "sftp").await.is_ok());
}

#[tokio::test]
async fn session_and_address_limits_release_on_drop() {
    let (_d, a) = accounts("");
    let l1 = a.login_password("acme", "s3cret", LOCAL, "sftp").await.expect("1");
    let _l2 = a.login_password("acme", "s3cret", LOCAL, "sftp").await.expect("2");
    assert_eq!(a.login_password("acme", "s3cret", LOCAL, "sftp").await.err(), Some(AuthError::TooManySessions(2)));
    drop(l1);
    assert!(a.login_password("acme", "s3cret", LOCAL, "sftp").await.is_ok());

    let g1 = a.connect(LOCAL).expect("first");
    let _g2 = a.connect(LOCAL).expect("second");
    assert!(a.connect(LOCAL).is_none());
    drop(g1);
    assert!(a.connect(LOCAL).is_some());
}

#[test]
fn only_argon2id_hashes_are_accepted() {
    assert!(parse_password_hash("$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$L0qzLZk8Ncjjf2/5NHHbjQ").is_err());
    assert!(parse_password_hash("plain-text").is_err());
    let h = hash_password("x").expect("hash");
    assert!(h.starts_with("$argon2id$"));
    assert!(verify_password(&h, "x"));
    assert!(!verify_password(&h, "y"));
    let _ = Path::new("");
}
