//! Archive checks: zip slip, absolute and link entries, counts, sizes, ratio, overlapping entries,
//! forged headers, malformed archives; and the same checks through a rule.

use super::archive::{ArchiveLimits, check};
use super::selftest::{make_zip, synthesise};
use super::tests::ruleset;
use super::*;
use std::io::{Cursor, Write};

fn run(zip: &[u8], limits: &ArchiveLimits) -> Result<archive::ArchiveReport, String> {
    check(Cursor::new(zip), zip.len() as u64, limits).map_err(|p| p.reason)
}

fn refused(zip: &[u8], limits: &ArchiveLimits) -> String {
    match run(zip, limits) {
        Ok(r) => panic!("expected a refusal, got {r:?}"),
        Err(reason) => reason,
    }
}

fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    make_zip(files, &[]).expect("zip")
}

#[test]
fn a_plain_archive_passes_and_is_counted() {
    let z = zip(&[("a.txt", b"hello"), ("dir/b.csv", b"x,y\n1,2\n")]);
    let report = run(&z, &ArchiveLimits::default()).expect("passes");
    assert_eq!((report.entries, report.declared, report.inflated), (2, 13, 13));
    assert!(run(&synthesise("zip-empty").expect("zip"), &ArchiveLimits::default()).is_ok());
}

#[test]
fn zip_slip_and_absolute_entries_are_refused() {
    let d = ArchiveLimits::default();
    for (name, why) in [
        ("../evil", "contains a `..` component"),
        ("a/../../evil", "contains a `..` component"),
        ("a\\..\\..\\evil", "contains a `..` component"),
        ("/etc/passwd", "is an absolute path"),
        ("\\windows\\system32", "is an absolute path"),
        ("C:/boot.ini", "drive letter"),
        ("a\u{1b}[2Jb", "control character"),
    ] {
        let reason = refused(&zip(&[("ok.txt", b"1"), (name, b"2")]), &d);
        assert!(reason.contains(why), "{name:?}: {reason}");
    }
    let reason = refused(&zip(&[("a\0b", b"x")]), &d);
    assert!(reason.contains("NUL"), "{reason}");
}

#[test]
fn symlink_entries_are_refused() {
    let z = make_zip(&[("ok.txt", b"1")], &[("innocent", "../../../../etc/shadow")]).expect("zip");
    assert!(refused(&z, &ArchiveLimits::default()).contains("`innocent` that is a symbolic link"));
}

#[test]
fn too_many_entries_are_refused() {
    let names: Vec<String> = (0..11).map(|i| format!("f{i}.txt")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let z = zip(&files);
    let limits = ArchiveLimits { max_entries: 10, ..ArchiveLimits::default() };
    assert_eq!(refused(&z, &limits), "declares 11 entries, more than the limit of 10");
    assert!(run(&z, &ArchiveLimits { max_entries: 11, ..limits }).is_ok());
}

#[test]
fn the_declared_entry_count_is_checked_before_the_directory_is_parsed() {
    let mut z = zip(&[("a", b"1"), ("b", b"2")]);
    assert_eq!(archive::declared_entries(Cursor::new(&z)).expect("read"), Some(2));
    let eocd = z.windows(4).rposition(|w| w == b"PK\x05\x06").expect("eocd");
    z[eocd + 8..eocd + 12].copy_from_slice(&[0xFE, 0xFF, 0xFE, 0xFF]);
    let limits = ArchiveLimits { max_entries: 10, ..ArchiveLimits::default() };
    assert_eq!(refused(&z, &limits), "declares 65534 entries, more than the limit of 10");
    assert_eq!(archive::declared_entries(Cursor::new(b"no zip here")).expect("read"), None);
}

#[test]
fn the_total_size_and_the_ratio_are_limited() {
    let z = zip(&[("zeros.bin", &vec![0u8; 1 << 20])]);
    let reason = refused(&z, &ArchiveLimits { max_total_size: 512 << 10, max_ratio: 1_000_000, ..Default::default() });
    assert_eq!(reason, "would unpack to 1 MiB, more than the limit of 512 KiB");
    let reason = refused(&z, &ArchiveLimits { max_ratio: 100, ..Default::default() });
    assert!(reason.contains("a ratio above the limit of 100:1 (a zip bomb?)"), "{reason}");
    assert!(run(&z, &ArchiveLimits { max_ratio: 100_000, ..Default::default() }).is_ok());
}

#[test]
fn entries_sharing_compressed_data_are_refused() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file("base.bin", opts).expect("start");
    w.write_all(&vec![0u8; 64 << 10]).expect("write");
    for i in 0..20 {
        w.shallow_copy_file("base.bin", &format!("copy{i}.bin")).expect("copy");
    }
    let z = w.finish().expect("finish").into_inner();
    let reason = refused(&z, &ArchiveLimits { max_ratio: 1_000_000, ..Default::default() });
    assert!(reason.contains("share compressed data"), "{reason}");
}

/// Rewrites the uncompressed size in the local and central headers of the only entry.
fn forge_size(z: &mut [u8], size: u32) {
    let at = |sig: &[u8], z: &[u8]| z.windows(4).position(|w| w == sig).expect("header");
    let local = at(b"PK\x03\x04", z);
    z[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
    let central = at(b"PK\x01\x02", z);
    z[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
}

#[test]
fn a_forged_small_size_does_not_hide_a_bomb() {
    let mut z = zip(&[("zeros.bin", &vec![0u8; 4 << 20])]);
    forge_size(&mut z, 1000);
    // Declared: 1000 bytes, well within every limit; the inflate pass finds out, reading a bounded amount.
    let limits = ArchiveLimits { max_total_size: 64 << 10, max_ratio: 1_000, ..Default::default() };
    let reason = refused(&z, &limits);
    assert!(
        reason.contains("declares 1000 bytes but inflates to more")
            || reason.contains("damaged entry")
            || reason.contains("limit reached"),
        "{reason}"
    );
}

#[test]
fn malformed_archives_are_refusals_never_panics() {
    let good = zip(&[("a.txt", b"hello hello hello"), ("b/c.txt", b"world")]);
    let d = ArchiveLimits::default();
    assert!(refused(&good[..good.len() / 2], &d).starts_with("cannot be read as a zip archive"));
    assert!(refused(b"PK\x05\x06", &d).starts_with("cannot be read as a zip archive"));
    // Every single-byte corruption: a verdict either way, and no panic.
    for i in 0..good.len() {
        for v in [0x00, 0xFF] {
            let mut bad = good.clone();
            bad[i] = v;
            let _ = run(&bad, &d);
        }
    }
}

#[test]
fn sizes_are_shown_for_people() {
    assert_eq!(bytes(512), "512 bytes");
    assert_eq!(bytes(1536), "1.5 KiB");
    assert_eq!(bytes(50 << 20), "50 MiB");
    assert_eq!(bytes(3 << 30), "3 GiB");
}

const MIGRATION: &str = r#"[[accept]]
name = "batch"
pattern = '^batch-(?P<id>\d+)\.zip$'
content = "zip"
[accept.archive]
max_entries = 3
max_ratio = 50

[target]
name = "t"
destination = "{id}/{file.name}"
"#;

fn through_rule(body: &[u8]) -> Outcome {
    ruleset(MIGRATION).evaluate(&Input {
        name: "batch-7.zip".into(),
        body: Some(Body::Bytes(body.to_vec())),
        ..Input::default()
    })
}

#[test]
fn a_rule_applies_the_archive_checks_and_locates_them() {
    assert!(matches!(through_rule(&synthesise("zip").expect("zip")), Outcome::Accepted { .. }));
    for (kind, want) in [
        ("zip-slip", "but its archive has an entry `../../evil.sh` that contains a `..` component"),
        ("zip-absolute", "`/etc/cron.d/evil` that is an absolute path"),
        ("zip-symlink", "`link` that is a symbolic link"),
        ("zip-bomb", "a ratio above the limit of 50:1"),
    ] {
        let Outcome::Excepted(rej) = through_rule(&synthesise(kind).expect("zip")) else { panic!("{kind} accepted") };
        assert_eq!(
            (rej.kind, rej.rule.as_str(), rej.location.as_str()),
            (RejectionKind::Archive, "accept[0].archive", "rules/x.toml:5")
        );
        assert!(rej.reason.starts_with("batch-7.zip matches accept entry `batch` but its archive"), "{}", rej.reason);
        assert!(rej.reason.contains(want), "{kind}: {}", rej.reason);
    }
    let many = zip(&[("1", b"1"), ("2", b"2"), ("3", b"3"), ("4", b"4")]);
    let Outcome::Excepted(rej) = through_rule(&many) else { panic!("accepted") };
    assert!(rej.reason.ends_with("its archive declares 4 entries, more than the limit of 3"), "{}", rej.reason);
    let Outcome::Excepted(rej) = through_rule(&synthesise("zip-broken").expect("bytes")) else { panic!("accepted") };
    assert_eq!(rej.kind, RejectionKind::Content, "a zip that cannot be read is not a zip: {}", rej.reason);
    assert!(rej.reason.contains("its content is a damaged zip archive"), "{}", rej.reason);
}
