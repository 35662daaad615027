//! Sidecars and resubmit overrides: only `overridable` fields, and a non-overridable key is a
//! rejection (not silently ignored).

use super::selftest::synthesise;
use super::tests::ruleset;
use super::*;

const RULE: &str = r#"[[accept]]
name = "invoice"
pattern = '^INV-(?P<vendor>[A-Z]+)-(?P<n>\d+)\.pdf$'
content = "pdf"

[metadata]
fields = { vendor = "{vendor}", doc_type = "Invoice", status = "new" }
lookups = [ { field = "vendor_name", table = "vendors", key = "{vendor}", column = "name" } ]
sidecar = { policy = "optional", wait_secs = 120 }
overridable = ["po_number", "doc_type", "vendor_name"]
checks = { doc_type = { one_of = ["Invoice", "Credit note"] } }

[target]
name = "t"
destination = "{vendor}/{file.name}"
"#;

fn input(name: &str, sidecar: Option<&str>, overrides: Option<&str>) -> Input {
    Input {
        name: name.into(),
        body: Some(Body::Bytes(synthesise("pdf").expect("pdf"))),
        sidecar: sidecar.map(str::to_string),
        overrides: overrides.map(str::to_string),
        ..Input::default()
    }
}

fn outcome(rule: &str, i: &Input) -> Result<BTreeMap<String, String>, Box<Rejection>> {
    match ruleset(rule).evaluate(i) {
        Outcome::Accepted { metadata, .. } => Ok(metadata),
        Outcome::Excepted(r) => Err(Box::new(r)),
    }
}

#[test]
fn a_sidecar_sets_overridable_fields_and_they_are_still_checked() {
    let sidecar = r#"{"po_number": 4500012345, "doc_type": "Credit note"}"#;
    let meta = outcome(RULE, &input("INV-ACME-1.pdf", Some(sidecar), None)).expect("accepted");
    assert_eq!((meta["po_number"].as_str(), meta["doc_type"].as_str()), ("4500012345", "Credit note"));
    let rej = outcome(RULE, &input("INV-ACME-1.pdf", Some(r#"{"doc_type": "Spam"}"#), None)).expect_err("checked");
    assert_eq!(rej.kind, RejectionKind::Check);
}

#[test]
fn a_non_overridable_key_is_a_rejection_naming_the_key_and_what_is_allowed() {
    let rej = outcome(RULE, &input("INV-ACME-1.pdf", Some(r#"{"po_number": "1", "status": "paid"}"#), None))
        .expect_err("status is not overridable");
    assert_eq!(
        (rej.kind, rej.rule.as_str(), rej.location.as_str()),
        (RejectionKind::Sidecar, "metadata.overridable", "rules/x.toml:10")
    );
    assert_eq!(
        rej.reason,
        "INV-ACME-1.pdf matches accept entry `invoice` but its sidecar INV-ACME-1.pdf.meta.json sets `status`, which may not be overridden (overridable here: doc_type, po_number, vendor_name)"
    );
    assert_eq!(
        rej.remedy,
        "Remove `status` from the sidecar INV-ACME-1.pdf.meta.json; it may set only: doc_type, po_number, vendor_name."
    );
}

#[test]
fn malformed_sidecars_are_rejections_with_the_problem() {
    for (text, want) in [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "is not a JSON object"),
        (r#"{"po_number": {"a": 1}}"#, "sets `po_number` to a list or object"),
        (r#"{"po_number": null}"#, "sets `po_number` to null"),
        ("{\"po_number\": \"a\\u0000b\"}", "control characters"),
    ] {
        let rej = outcome(RULE, &input("INV-ACME-1.pdf", Some(text), None)).expect_err(text);
        assert_eq!((rej.kind, rej.rule.as_str()), (RejectionKind::Sidecar, "metadata.sidecar"), "{text}");
        assert!(rej.reason.contains(want), "{text}: {}", rej.reason);
    }
    let huge = format!("{{\"po_number\": \"{}\"}}", "x".repeat(70 * 1024));
    let rej = outcome(RULE, &input("INV-ACME-1.pdf", Some(&huge), None)).expect_err("too large");
    assert!(rej.reason.contains("is larger than 64 KiB"), "{}", rej.reason);
}

#[test]
fn an_overridden_lookup_field_is_not_looked_up() {
    let rej = outcome(RULE, &input("INV-NEWCO-1.pdf", None, None)).expect_err("NEWCO is not in the table");
    assert_eq!(rej.kind, RejectionKind::Lookup);
    let meta =
        outcome(RULE, &input("INV-NEWCO-1.pdf", Some(r#"{"vendor_name": "NewCo Ltd"}"#), None)).expect("accepted");
    assert_eq!(meta["vendor_name"], "NewCo Ltd");
}

#[test]
fn a_resubmit_override_wins_over_the_sidecar_and_obeys_the_same_rule() {
    let meta = outcome(RULE, &input("INV-ACME-1.pdf", Some(r#"{"po_number": "1"}"#), Some(r#"{"po_number": "2"}"#)))
        .expect("accepted");
    assert_eq!(meta["po_number"], "2");
    let rej =
        outcome(RULE, &input("INV-ACME-1.pdf", None, Some(r#"{"vendor": "GLOBEX"}"#))).expect_err("not overridable");
    assert!(rej.reason.contains("its resubmit override sets `vendor`"), "{}", rej.reason);
    let none = RULE.replace("sidecar = { policy = \"optional\", wait_secs = 120 }\n", "");
    let meta = outcome(&none, &input("INV-ACME-1.pdf", None, Some(r#"{"po_number": "3"}"#))).expect("accepted");
    assert_eq!(meta["po_number"], "3", "overrides apply whatever the sidecar policy");
}

#[test]
fn sidecar_policies_none_optional_required() {
    let r = ruleset(RULE);
    assert_eq!(r.sidecar(), SidecarPolicy { mode: SidecarMode::Optional, wait: std::time::Duration::from_secs(120) });
    assert!(outcome(RULE, &input("INV-ACME-1.pdf", None, None)).is_ok(), "optional: none is fine");
    let none = RULE.replace("policy = \"optional\"", "policy = \"none\"");
    let meta =
        outcome(&none, &input("INV-ACME-1.pdf", Some(r#"{"po_number": "9", "status": "x"}"#), None)).expect("ignored");
    assert!(!meta.contains_key("po_number"), "policy none: the sidecar is not read at all");
    let required = RULE.replace("policy = \"optional\"", "policy = \"required\"");
    let rej = outcome(&required, &input("INV-ACME-1.pdf", None, None)).expect_err("required");
    assert_eq!((rej.kind, rej.rule.as_str()), (RejectionKind::SidecarMissing, "metadata.sidecar"));
    assert!(
        rej.reason.ends_with("the channel requires a sidecar INV-ACME-1.pdf.meta.json and none arrived"),
        "{}",
        rej.reason
    );
    assert!(outcome(&required, &input("INV-ACME-1.pdf", Some("{}"), None)).is_ok());
}

#[test]
fn sidecar_names_pair_with_their_files() {
    assert_eq!(sidecar_name("a.pdf"), "a.pdf.meta.json");
    assert_eq!(sidecar_owner("a.pdf.meta.json"), Some("a.pdf"));
    assert_eq!(sidecar_owner(".meta.json"), None);
    assert_eq!(sidecar_owner("a.pdf"), None);
}

#[test]
fn a_sidecar_policy_without_overridable_fields_is_a_load_error() {
    let text = RULE.replace("overridable = [\"po_number\", \"doc_type\", \"vendor_name\"]\n", "");
    let err = super::tests::parse_in(&text, super::tests::tables().path()).expect_err("pointless sidecar");
    assert!(err.to_string().contains("metadata.sidecar: a sidecar can only set `overridable` fields"), "{err}");
}

#[test]
fn an_overridable_field_its_template_cannot_make_is_taken_from_an_override_or_named_in_the_remedy() {
    let rule = RULE
        .replace("status = \"new\"", "status = \"new\", owner = \"{transfer.source.prop_owner}\"")
        .replace("overridable = [\"po_number\"", "overridable = [\"owner\", \"po_number\"");
    let rej = outcome(&rule, &input("INV-ACME-1.pdf", None, None)).expect_err("no owner");
    assert_eq!(rej.kind, RejectionKind::Metadata);
    assert!(rej.reason.contains("`owner` cannot be made"), "{}", rej.reason);
    assert!(rej.remedy.contains("INV-ACME-1.pdf.meta.json") && rej.remedy.contains("`owner`"), "{}", rej.remedy);
    let meta = outcome(&rule, &input("INV-ACME-1.pdf", None, Some(r#"{"owner": "Jane Doe"}"#))).expect("overridden");
    assert_eq!(meta["owner"], "Jane Doe");
    let meta = outcome(&rule, &input("INV-ACME-1.pdf", Some(r#"{"owner": "Ops"}"#), None)).expect("from the sidecar");
    assert_eq!(meta["owner"], "Ops");
    // not overridable: the template's failure stands whatever the sidecar says
    let fixed = RULE.replace("status = \"new\"", "status = \"{transfer.source.prop_status}\"");
    let rej = outcome(&fixed, &input("INV-ACME-1.pdf", Some(r#"{"po_number": "1"}"#), None)).expect_err("status");
    assert!(rej.reason.contains("`status` cannot be made"), "{}", rej.reason);
}
