//! Evaluation: every check passes and fails; sidecars; destinations; explain.

use super::selftest::{make_zip, synthesise};
use super::tests::{BASE, ruleset};
use super::*;

const FULL: &str = r#"[[accept]]
name = "invoice"
pattern = '^INV-(?P<vendor>[A-Z0-9]+)-(?P<year>\d{4})-(?P<seq>\d{4})\.pdf$'
captures = { year = { type = "integer", min = 2000, max = 2100 }, seq = { type = "integer", min = 1 } }
max_size = "1 KiB"
extensions = ["pdf"]
content = "pdf"

[metadata]
fields = { vendor = "{vendor}", doc_type = "Invoice", partner = "{account.partner_id}", sha = "{transfer.sha256}", via = "{transfer.protocol}", stem = "{file.stem}" }
lookups = [ { field = "vendor_name", table = "vendors", key = "{vendor}", column = "name" } ]
sidecar = { policy = "optional" }
overridable = ["po_number", "doc_type", "vendor_name"]
required = ["vendor_name"]
checks = { doc_type = { one_of = ["Invoice", "Credit note"] }, po_number = { regex = '^45\d{8}$' } }

[target]
name = "demo-ecm"
destination = "{year}/{vendor}/{file.name}"
conflict = "version"
"#;

fn input(name: &str, body: &[u8]) -> Input {
    Input {
        name: name.into(),
        body: Some(Body::Bytes(body.to_vec())),
        account: Account { name: "acme".into(), attributes: [("partner_id".to_string(), "ACME".to_string())].into() },
        transfer: Transfer {
            id: "01J".into(),
            sha256: "abc".into(),
            received_at: "2026-01-01T00:00:00Z".into(),
            protocol: "sftp".into(),
            source: Default::default(),
        },
        ..Input::default()
    }
}

fn body(kind: &str) -> Vec<u8> {
    synthesise(kind).expect("synthesised")
}

fn rejected(r: &RuleSet, i: &Input) -> Rejection {
    match r.evaluate(i) {
        Outcome::Excepted(rej) => rej,
        other => panic!("expected an exception, got {other:?}"),
    }
}

fn accepted(r: &RuleSet, i: &Input) -> (String, BTreeMap<String, String>, String) {
    match r.evaluate(i) {
        Outcome::Accepted { entry, metadata, destination, .. } => (entry, metadata, destination),
        Outcome::Excepted(rej) => panic!("expected acceptance, got {rej}"),
    }
}

#[test]
fn a_good_file_is_accepted_with_metadata_destination_target_and_conflict() {
    let r = ruleset(FULL);
    let outcome = r.evaluate(&input("INV-ACME-2026-0001.pdf", &body("pdf")));
    let Outcome::Accepted { entry, metadata, destination, target, conflict, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (entry.as_str(), destination.as_str(), target.as_str()),
        ("invoice", "2026/ACME/INV-ACME-2026-0001.pdf", "demo-ecm")
    );
    assert_eq!(conflict, Conflict::Version);
    let want: BTreeMap<String, String> = [
        ("vendor", "ACME"),
        ("doc_type", "Invoice"),
        ("partner", "ACME"),
        ("sha", "abc"),
        ("via", "sftp"),
        ("stem", "INV-ACME-2026-0001"),
        ("vendor_name", "Acme Corporation"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(metadata, want);
}

#[test]
fn an_unmatched_name_quotes_the_expected_patterns_and_early_refusal_says_the_same() {
    let r = ruleset(FULL);
    let rej = rejected(&r, &input("invoice.pdf", &body("pdf")));
    assert_eq!(rej.kind, RejectionKind::Name);
    assert_eq!(rej.location, "rules/x.toml:1");
    assert_eq!(rej.entry, None);
    assert!(
        rej.reason
            .starts_with(r"invoice.pdf matches no accept entry of channel `x`; expected `invoice` (^INV-(?P<vendor>"),
        "{}",
        rej.reason
    );
    assert_eq!(r.name_matches("invoice.pdf"), Err(rej.reason));
    assert_eq!(r.name_matches("INV-ACME-2026-0001.pdf"), Ok(()));
    assert!(r.name_matches("INV-ACME-2026-0001.pdf\nx").is_err(), "anchored at the very end, not before a newline");
}

#[test]
fn the_first_matching_entry_decides() {
    let text = BASE
        .replace("[target]", "[[accept]]\nname = \"any\"\npattern = '^.*$'\n\n[target]")
        .replace("name = \"doc\"\n", "name = \"doc\"\nmax_size = 10\n");
    let r = ruleset(&text.replace("{id}/{file.name}", "{file.name}"));
    let rej = rejected(&r, &input("DOC-1.pdf", &body("pdf")));
    assert_eq!((rej.kind, rej.entry.as_deref()), (RejectionKind::Size, Some("doc")), "`any` is not tried");
    assert_eq!(accepted(&r, &input("other.bin", b"x")).0, "any");
}

#[test]
fn integer_captures_are_range_checked() {
    let r = ruleset(FULL);
    let rej = rejected(&r, &input("INV-ACME-1999-0001.pdf", &body("pdf")));
    assert_eq!(
        (rej.kind, rej.rule.as_str(), rej.location.as_str()),
        (RejectionKind::Capture, "accept[0].captures.year", "rules/x.toml:4")
    );
    assert_eq!(
        rej.reason,
        "INV-ACME-1999-0001.pdf matches accept entry `invoice` but its `year` part 1999 is below the minimum 2000"
    );
    assert!(rejected(&r, &input("INV-ACME-2101-0001.pdf", &body("pdf"))).reason.contains("above the maximum 2100"));
    assert!(rejected(&r, &input("INV-ACME-2026-0000.pdf", &body("pdf"))).reason.contains("`seq` part 0 is below"));
    let big =
        ruleset(&BASE.replace("name = \"doc\"\n", "name = \"doc\"\ncaptures = { id = { type = \"integer\" } }\n"));
    let rej = rejected(&big, &input("DOC-99999999999999999999.pdf", b"x"));
    assert!(rej.reason.contains("`id` part `99999999999999999999` is not a whole number"), "{}", rej.reason);
    assert_eq!(accepted(&big, &input("DOC-42.pdf", b"x")).2, "42/DOC-42.pdf");
}

#[test]
fn date_captures_must_be_real_dates() {
    let r =
        ruleset(&BASE.replace(
            "name = \"doc\"\n",
            "name = \"doc\"\ncaptures = { id = { type = \"date\", format = \"%Y%m%d\" } }\n",
        ));
    assert_eq!(accepted(&r, &input("DOC-20240229.pdf", b"x")).0, "doc");
    let rej = rejected(&r, &input("DOC-20230229.pdf", b"x"));
    assert_eq!(rej.kind, RejectionKind::Capture);
    assert!(rej.reason.ends_with("its `id` part `20230229` is not a valid date of the form %Y%m%d"), "{}", rej.reason);
}

#[test]
fn extensions_are_checked_case_insensitively() {
    let r = ruleset(
        &BASE
            .replace(r"\.pdf$", r"(\.\w+)?$")
            .replace("name = \"doc\"\n", "name = \"doc\"\nextensions = [\".PDF\", \"txt\"]\n"),
    );
    assert_eq!(accepted(&r, &input("DOC-1.Pdf", b"x")).0, "doc");
    assert_eq!(accepted(&r, &input("DOC-1.txt", b"x")).0, "doc");
    let rej = rejected(&r, &input("DOC-1.exe", b"x"));
    assert_eq!(rej.kind, RejectionKind::Extension);
    assert!(rej.reason.ends_with("but its extension .exe is not one of .pdf, .txt"), "{}", rej.reason);
    assert!(rejected(&r, &input("DOC-1", b"x")).reason.ends_with("but it has no extension (expected .pdf, .txt)"));
}

#[test]
fn size_is_the_journaled_size_or_the_body_length() {
    let r = ruleset(FULL);
    let mut i = input("INV-ACME-2026-0001.pdf", &body("pdf"));
    i.size = Some(1024);
    assert_eq!(accepted(&r, &i).0, "invoice", "exactly at the limit passes");
    i.size = Some(1025);
    let rej = rejected(&r, &i);
    assert_eq!(rej.kind, RejectionKind::Size);
    assert!(
        rej.reason.ends_with("its size 1 KiB is over the limit of 1 KiB") || rej.reason.contains("1025"),
        "{}",
        rej.reason
    );
    let mut big = body("pdf");
    big.resize(2048, b' ');
    assert_eq!(
        rejected(&r, &input("INV-ACME-2026-0001.pdf", &big)).kind,
        RejectionKind::Size,
        "no size given: the body's length"
    );
}

#[test]
fn content_is_decided_by_bytes_and_the_reason_says_what_it_is() {
    let r = ruleset(FULL);
    let rej = rejected(&r, &input("INV-ACME-2026-0001.pdf", &body("zip")));
    assert_eq!((rej.kind, rej.rule.as_str()), (RejectionKind::Content, "accept[0].content"));
    assert_eq!(
        rej.reason,
        "INV-ACME-2026-0001.pdf matches accept entry `invoice` but its content is a zip archive, not pdf"
    );
    assert!(rej.remedy.contains("renaming a file of another kind is not enough"));
    for (kind, what) in
        [("png", "a PNG image"), ("empty", "empty (0 bytes)"), ("text", "plain text"), ("binary", "binary data")]
    {
        let mut i = input("INV-ACME-2026-0001.pdf", &body(kind));
        i.size = Some(10);
        let rej = rejected(&r, &i);
        assert!(rej.reason.contains(&format!("its content is {what}")), "{kind}: {}", rej.reason);
    }
}

#[test]
fn every_content_kind_is_recognised_by_its_body() {
    let text = BASE.replace(r"\.pdf$", r"\.\w+$").replace(
        "name = \"doc\"\n",
        "name = \"doc\"\ncontent = [\"pdf\", \"zip\", \"docx\", \"xlsx\", \"xml\", \"text\", \"csv\", \"png\", \"jpeg\"]\n",
    );
    let r = ruleset(&text);
    for (ext, kind) in [
        ("pdf", "pdf"),
        ("zip", "zip"),
        ("docx", "docx"),
        ("xlsx", "xlsx"),
        ("xml", "xml"),
        ("txt", "text"),
        ("csv", "csv"),
        ("png", "png"),
        ("jpg", "jpeg"),
        ("jpeg", "jpeg"),
    ] {
        assert_eq!(accepted(&r, &input(&format!("DOC-1.{ext}"), &body(kind))).0, "doc", "{kind} as .{ext}");
    }
    // With several kinds allowed, the extension's own kind is required.
    for (ext, kind, want) in [
        ("docx", "pdf", "not docx"),
        ("pdf", "docx", "not pdf"),
        ("csv", "text", "not csv"),
        ("xlsx", "docx", "not xlsx"),
        ("png", "jpeg", "not png"),
    ] {
        let rej = rejected(&r, &input(&format!("DOC-1.{ext}"), &body(kind)));
        assert!(rej.kind == RejectionKind::Content && rej.reason.contains(want), "{kind} as .{ext}: {}", rej.reason);
    }
    // An extension that is no kind of ours: any listed kind will do.
    assert_eq!(accepted(&r, &input("DOC-1.dat", &body("xml"))).0, "doc");
}

#[test]
fn docx_is_told_from_a_plain_zip_by_its_entries_where_infer_alone_says_zip() {
    let docx = body("docx");
    assert_eq!(infer::get(&docx).map(|t| t.mime_type()), Some("application/zip"), "why we list entries ourselves");
    let r = ruleset(
        &BASE.replace(r"\.pdf$", r"\.docx$").replace("name = \"doc\"\n", "name = \"doc\"\ncontent = \"docx\"\n"),
    );
    assert_eq!(accepted(&r, &input("DOC-1.docx", &docx)).0, "doc");
    let rej = rejected(&r, &input("DOC-1.docx", &body("zip")));
    assert!(rej.reason.ends_with("its content is a zip archive, not docx (a Word document)"), "{}", rej.reason);
    let rej = rejected(&r, &input("DOC-1.docx", &body("xlsx")));
    assert!(rej.reason.contains("its content is an Excel workbook (xlsx), not docx"), "{}", rej.reason);
    let evil =
        make_zip(&[("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>"), ("word/../../x", b"!")], &[])
            .expect("zip");
    let rej = rejected(&r, &input("DOC-1.docx", &evil));
    assert_eq!(
        (rej.kind, rej.rule.as_str()),
        (RejectionKind::Archive, "accept[0]"),
        "a docx gets the archive checks too"
    );
}

#[test]
fn lookups_except_on_a_missing_key_or_use_the_default() {
    let r = ruleset(FULL);
    let rej = rejected(&r, &input("INV-INITECH-2026-0001.pdf", &body("pdf")));
    assert_eq!((rej.kind, rej.rule.as_str()), (RejectionKind::Lookup, "metadata.lookups[0]"));
    assert_eq!(
        rej.reason,
        "INV-INITECH-2026-0001.pdf matches accept entry `invoice` but `INITECH` is not in table `vendors` (column `code`), so `vendor_name` has no value"
    );
    assert!(rej.remedy.contains("rules/tables/vendors.csv"), "{}", rej.remedy);
    let with_default =
        ruleset(&FULL.replace("column = \"name\" }", "column = \"name\", missing = { default = \"(unknown)\" } }"));
    assert_eq!(
        accepted(&with_default, &input("INV-INITECH-2026-0001.pdf", &body("pdf"))).1["vendor_name"],
        "(unknown)"
    );
}

#[test]
fn required_fields_and_value_checks_fail_with_the_field_named() {
    let text = BASE.replace(r"(?P<id>\d+)", r"(?P<id>\d+)(?:-(?P<kind>[a-z]+))?")
        + "\n[metadata]\nfields = { kind = \"{kind}\", code = \"X{id}\" }\nrequired = [\"kind\"]\nchecks = { kind = { one_of = [\"memo\", \"letter\"] }, code = { regex = '^X\\d{2}$' } }\n";
    let r = ruleset(&text.replace("{id}/{file.name}", "{file.name}"));
    assert_eq!(accepted(&r, &input("DOC-12-memo.pdf", b"x")).1["kind"], "memo");
    let rej = rejected(&r, &input("DOC-12.pdf", b"x"));
    assert_eq!((rej.kind, rej.rule.as_str()), (RejectionKind::Required, "metadata.required"));
    assert!(rej.reason.ends_with("its required field `kind` is empty"), "{}", rej.reason);
    let rej = rejected(&r, &input("DOC-12-note.pdf", b"x"));
    assert_eq!((rej.kind, rej.rule.as_str()), (RejectionKind::Check, "metadata.checks.kind"));
    assert!(rej.reason.ends_with("its field `kind` = `note` is not one of `memo`, `letter`"), "{}", rej.reason);
    let rej = rejected(&r, &input("DOC-123-memo.pdf", b"x"));
    assert!(rej.reason.ends_with(r"its field `code` = `X123` does not match ^X\d{2}$"), "{}", rej.reason);
}

#[test]
fn a_missing_account_attribute_is_an_exception_not_a_blank() {
    let r = ruleset(FULL);
    let mut i = input("INV-ACME-2026-0001.pdf", &body("pdf"));
    i.account.attributes.clear();
    let rej = rejected(&r, &i);
    assert_eq!((rej.kind, rej.rule.as_str()), (RejectionKind::Metadata, "metadata.fields.partner"));
    assert!(
        rej.reason.ends_with("its field `partner` cannot be made: account `acme` has no attribute `partner_id`"),
        "{}",
        rej.reason
    );
}

#[test]
fn destinations_that_would_escape_are_refused_at_evaluation() {
    let text = BASE
        .replace(r"^DOC-(?P<id>\d+)\.pdf$", r"^(?P<dir>[^_]+)__(?P<f>[^_]+)$")
        .replace("{id}/{file.name}", "{dir}/{f}");
    let r = ruleset(&text);
    assert_eq!(accepted(&r, &input("a__b.pdf", b"x")).2, "a/b.pdf");
    for name in ["..__x.pdf", ".__x.pdf", "a\u{7}__b", "a__..", " a__b"] {
        let rej = rejected(&r, &input(name, b"x"));
        assert_eq!(
            (rej.kind, rej.rule.as_str()),
            (RejectionKind::Destination, "target.destination"),
            "{name:?}: {}",
            rej.reason
        );
    }
    let long = format!("{}__b", "a".repeat(300));
    assert!(rejected(&r, &input(&long, b"x")).reason.contains("longer than 255"));
    let absolute = ruleset(&BASE.replace("{id}/{file.name}", "/{id}"));
    assert!(rejected(&absolute, &input("DOC-1.pdf", b"x")).reason.contains("is absolute"));
}

#[test]
fn an_entry_may_have_its_own_fields_and_destination() {
    let text = BASE.replace(
        "name = \"doc\"\n",
        "name = \"doc\"\nfields = { kind = \"entry\" }\ndestination = \"docs/{meta.kind}/{id}\"\n",
    ) + "\n[metadata]\nfields = { kind = \"global\", other = \"g\" }\n";
    let (_, meta, dest) = accepted(&ruleset(&text), &input("DOC-5.pdf", b"x"));
    assert_eq!((meta["kind"].as_str(), meta["other"].as_str(), dest.as_str()), ("entry", "g", "docs/entry/5"));
}

#[test]
fn a_body_on_disk_is_read_and_a_missing_one_is_unreadable_not_the_senders_fault() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("body");
    std::fs::write(&path, body("pdf")).expect("write");
    let r = ruleset(FULL);
    let mut i = input("INV-ACME-2026-0001.pdf", b"");
    i.body = Some(Body::Path(path.clone()));
    assert_eq!(accepted(&r, &i).0, "invoice");
    i.body = Some(Body::Path(dir.path().join("gone")));
    i.size = Some(100);
    let rej = rejected(&r, &i);
    assert_eq!((rej.kind, rej.rule.as_str()), (RejectionKind::Unreadable, "accept[0].content"));
    assert!(rej.remedy.contains("not of the file"), "{}", rej.remedy);
    i.body = None;
    assert_eq!(rejected(&r, &i).kind, RejectionKind::Unreadable, "evaluate never skips a check");
}

#[test]
fn explain_traces_each_step_and_skips_what_it_cannot_check() {
    let r = ruleset(FULL);
    let mut i = input("INV-ACME-2026-0001.pdf", b"");
    i.body = None;
    let text = r.explain(&i);
    for want in [
        "channel `x` (rules/x.toml), file INV-ACME-2026-0001.pdf",
        "accept[0] `invoice` (rules/x.toml:1): pattern matches; captures: seq=0001 vendor=ACME year=2026",
        "capture `year` = 2026: ok",
        "size: not checked (not given)",
        "content: not checked (no body given)",
        "lookup `vendor_name`: vendors.csv code = ACME → name = Acme Corporation",
        "ACCEPTED by entry `invoice`",
        "vendor_name = Acme Corporation",
        "destination: 2026/ACME/INV-ACME-2026-0001.pdf on target `demo-ecm` (conflict: version)",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    let text = r.explain(&Input::named("inv.pdf"));
    assert!(text.contains("accept[0] `invoice`: pattern ^INV-"), "{text}");
    assert!(text.contains("EXCEPTED (name) by accept[0] at rules/x.toml:1"), "{text}");
    assert!(text.contains("remedy: Rename the file"), "{text}");
}

#[test]
fn a_rejection_serialises_for_the_error_json() {
    let r = ruleset(FULL);
    let json = serde_json::to_value(r.evaluate(&input("INV-ACME-2026-0001.pdf", &body("zip")))).expect("json");
    assert_eq!(json["outcome"], "excepted");
    assert_eq!(json["kind"], "content");
    assert_eq!(json["entry"], "invoice");
    assert_eq!(json["location"], "rules/x.toml:7");
}
