//! Loading: located errors, and the shipped rule files with their inline tests.

use super::*;
use std::path::Path;

/// A minimal valid rule file; tests edit it line by line (line numbers in comments).
pub(super) const BASE: &str = r#"[[accept]]
name = "doc"
pattern = '^DOC-(?P<id>\d+)\.pdf$'

[target]
name = "t"
destination = "{id}/{file.name}"
"#;

pub(super) fn tables() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("vendors.csv"), "code,name\nACME,Acme Corporation\nGLOBEX,Globex Inc.\n")
        .expect("write table");
    dir
}

pub(super) fn parse_in(text: &str, tables: &Path) -> Result<RuleSet, config::Error> {
    RuleSet::parse(Path::new("rules/x.toml"), text, tables)
}

pub(super) fn ruleset(text: &str) -> RuleSet {
    let t = tables();
    match parse_in(text, t.path()) {
        Ok(r) => r,
        Err(e) => panic!("rule file should load:\n{e}"),
    }
}

fn problems(text: &str) -> Vec<String> {
    let t = tables();
    match parse_in(text, t.path()) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn one_problem(text: &str) -> String {
    let p = problems(text);
    assert_eq!(p.len(), 1, "expected exactly one problem, got {p:#?}");
    p[0].clone()
}

fn starts(problem: &str, prefix: &str) {
    assert!(problem.starts_with(prefix), "expected `{prefix}…`, got `{problem}`");
}

#[test]
fn the_base_file_loads_with_defaults() {
    let r = ruleset(BASE);
    assert_eq!(r.channel(), "x");
    assert_eq!(r.target(), "t");
    assert_eq!(r.conflict(), Conflict::Reject, "the default loses nothing and overwrites nothing");
    assert_eq!(r.retry().attempts, 5);
    assert_eq!(r.sidecar().mode, SidecarMode::None);
    assert!(!r.reject_unmatched_names());
    assert_eq!(r.entry_names().collect::<Vec<_>>(), ["doc"]);
}

#[test]
fn an_unanchored_pattern_is_refused_at_its_line() {
    let p = one_problem(&BASE.replace(r"'^DOC-(?P<id>\d+)\.pdf$'", r"'DOC-(?P<id>\d+)\.pdf'"));
    starts(&p, "rules/x.toml:3:1: accept[0].pattern: must be anchored");
    let p = one_problem(&BASE.replace(r"\.pdf$'", r"\.pdf\$'"));
    starts(&p, "rules/x.toml:3:1: accept[0].pattern: must be anchored");
}

#[test]
fn a_bad_regex_is_refused_at_its_line() {
    let p = one_problem(&BASE.replace(r"(?P<id>\d+)", r"(?P<id>\d+"));
    starts(&p, "rules/x.toml:3:1: accept[0].pattern: not a valid regex: unclosed group");
    assert!(!p.contains('\n'), "one line per problem: {p}");
}

#[test]
fn a_huge_regex_is_refused_not_compiled() {
    let p = one_problem(&BASE.replace(r"\d+", r"(?:\w{100}){100}"));
    starts(&p, "rules/x.toml:3:1: accept[0].pattern: compiles to more than");
}

#[test]
fn an_unknown_capture_in_a_template_is_refused_at_its_key() {
    let p = one_problem(&BASE.replace("{id}/{file.name}", "{year}/{file.name}"));
    starts(
        &p,
        "rules/x.toml:7:1: target.destination: `{year}` is not a capture of accept entry `doc` (its captures: id)",
    );
    let text = format!("{BASE}\n[metadata]\nfields = {{ v = \"{{vendor}}\", ok = \"{{id}}\" }}\n");
    let p = one_problem(&text);
    starts(&p, "rules/x.toml:10:12: metadata.fields.v: `{vendor}` is not a capture of accept entry `doc`");
}

#[test]
fn template_syntax_and_placeholder_errors_are_located() {
    let p = one_problem(&BASE.replace("{id}/{file.name}", "{id/{file.name}"));
    starts(&p, "rules/x.toml:7:1: target.destination: unclosed `{`");
    let p = one_problem(&BASE.replace("{file.name}", "{file.size}"));
    starts(&p, "rules/x.toml:7:1: target.destination: `{file.size}`: unknown file field");
    let text = format!("{BASE}\n[metadata]\nfields = {{ a = \"{{id}}\", b = \"{{meta.a}}\" }}\n");
    starts(&one_problem(&text), "rules/x.toml:10:24: metadata.fields.b: `{meta.a}` cannot be used in a field");
    let p = one_problem(&BASE.replace("{id}/{file.name}", "{meta.nope}/{file.name}"));
    starts(&p, "rules/x.toml:7:1: target.destination: `{meta.nope}` names no field defined before this point");
}

#[test]
fn unknown_keys_are_all_reported_in_one_pass() {
    let text = BASE
        .replace("name = \"doc\"\n", "name = \"doc\"\nmax_sise = \"1 MiB\"\n")
        .replace("name = \"t\"\n", "name = \"t\"\nconflcit = \"version\"\n");
    let p = problems(&text);
    assert_eq!(p.len(), 2, "{p:#?}");
    starts(&p[0], "rules/x.toml:3:1: accept[0].max_sise: unknown field `max_sise`");
    starts(&p[1], "rules/x.toml:8:1: target.conflcit: unknown field `conflcit`");
}

#[test]
fn a_bad_size_string_is_refused_with_examples() {
    let p = one_problem(&BASE.replace("name = \"doc\"\n", "name = \"doc\"\nmax_size = \"50 MB!\"\n"));
    starts(&p, "rules/x.toml:3:1: accept[0].max_size: `50 MB!` is not a size; write bytes");
    assert!(p.contains("`50 MiB`"), "{p}");
    let p = one_problem(&BASE.replace("name = \"doc\"\n", "name = \"doc\"\nmax_size = 0\n"));
    starts(&p, "rules/x.toml:3:1: accept[0].max_size: must be more than 0 bytes");
}

#[test]
fn sizes_parse_in_both_unit_systems() {
    use raw::RawSize::{Bytes, Text};
    let p = |s: &str| load::parse_size(&Text(s.into()));
    assert_eq!(p("50 MiB"), Ok(50 << 20));
    assert_eq!(p("500 KB"), Ok(500_000));
    assert_eq!(p("1GiB"), Ok(1 << 30));
    assert_eq!(p("100 B"), Ok(100));
    assert_eq!(p("7"), Ok(7));
    assert_eq!(load::parse_size(&Bytes(1024)), Ok(1024));
    assert!(p("99999999999 TiB").unwrap_err().contains("too large"));
    assert!(p("1.5 GiB").is_err() && p("MiB").is_err() && p("-1 B").is_err());
}

#[test]
fn a_missing_table_is_refused_at_the_lookup() {
    let text = format!(
        "{BASE}\n[metadata]\nlookups = [ {{ field = \"v\", table = \"nope\", key = \"{{id}}\", column = \"name\" }} ]\n"
    );
    let p = one_problem(&text);
    starts(&p, "rules/x.toml:10:28: metadata.lookups[0].table: no table `nope`:");
    let bad = text.replace("\"nope\"", "\"../etc/passwd\"");
    starts(&one_problem(&bad), "rules/x.toml:10:28: metadata.lookups[0].table: `../etc/passwd` is not a table name");
}

#[test]
fn table_columns_are_checked_and_duplicate_keys_located_in_the_table() {
    let lookup = |column: &str| {
        format!(
            "{BASE}\n[metadata]\nlookups = [ {{ field = \"v\", table = \"vendors\", key = \"{{id}}\", column = \"{column}\" }} ]\n"
        )
    };
    starts(
        &one_problem(&lookup("nmae")),
        "rules/x.toml:10:61: metadata.lookups[0].column: table `vendors` has no column `nmae` (columns: code, name)",
    );
    let t = tables();
    std::fs::write(t.path().join("vendors.csv"), "code,name\nACME,Acme\nACME,Again\n").expect("write");
    let err = parse_in(&lookup("name"), t.path()).expect_err("duplicate key");
    let shown = err.to_string();
    let csv = t.path().join("vendors.csv");
    assert_eq!(shown, format!("{}:3:1: code: duplicate key `ACME` (first on line 2)", csv.display()));
    std::fs::write(&csv, "code,name\nACME,Acme,extra\n").expect("write");
    let err = parse_in(&lookup("name"), t.path()).expect_err("ragged table");
    assert!(err.to_string().starts_with(&format!("{}:2:1: (table): not a valid CSV table", csv.display())), "{err}");
}

#[test]
fn a_duplicate_test_is_refused_at_the_second() {
    let text = format!(
        "{BASE}\n[[test]]\nfile = \"DOC-1.pdf\"\nexpect = \"accepted\"\n\n[[test]]\nfile = \"DOC-1.pdf\"\nexpect = \"excepted\"\n"
    );
    starts(
        &one_problem(&text),
        "rules/x.toml:14:1: test[1].file: test `DOC-1.pdf` is also test[0]; give one of them a distinct `name`",
    );
    let named = text.replacen(
        "[[test]]\nfile = \"DOC-1.pdf\"\nexpect = \"excepted\"",
        "[[test]]\nname = \"other\"\nfile = \"DOC-1.pdf\"\nexpect = \"excepted\"",
        1,
    );
    assert!(problems(&named).is_empty(), "a distinct name makes the same file a second test");
}

#[test]
fn typed_captures_are_checked_against_the_pattern() {
    let with = |captures: &str| BASE.replace("name = \"doc\"\n", &format!("name = \"doc\"\ncaptures = {captures}\n"));
    starts(
        &one_problem(&with("{ year = { type = \"integer\" } }")),
        "rules/x.toml:3:14: accept[0].captures.year: the pattern has no group `(?P<year>…)`",
    );
    starts(
        &one_problem(&with("{ id = { type = \"float\" } }")),
        "rules/x.toml:3:21: accept[0].captures.id.type: unknown capture type `float`",
    );
    starts(
        &one_problem(&with("{ id = { type = \"date\" } }")),
        "rules/x.toml:3:14: accept[0].captures.id: a date capture needs `format`",
    );
    starts(
        &one_problem(&with("{ id = { type = \"date\", format = \"%Y%m\" } }")),
        "rules/x.toml:3:36: accept[0].captures.id.format: `%Y%m` does not describe a whole date",
    );
    starts(
        &one_problem(&with("{ id = { type = \"date\", format = \"%Q\" } }")),
        "rules/x.toml:3:36: accept[0].captures.id.format: `%Q` is not a chrono date format",
    );
    starts(
        &one_problem(&with("{ id = { type = \"integer\", min = 5, max = 1 } }")),
        "rules/x.toml:3:39: accept[0].captures.id.min: min 5 is above max 1",
    );
}

#[test]
fn content_archive_and_policy_values_are_checked() {
    let entry = |extra: &str| BASE.replace("name = \"doc\"\n", &format!("name = \"doc\"\n{extra}\n"));
    starts(
        &one_problem(&entry("content = \"pdff\"")),
        "rules/x.toml:3:1: accept[0].content: unknown content kind `pdff`; use any of pdf, zip",
    );
    starts(
        &one_problem(&entry("content = \"pdf\"\narchive = { max_entries = 3 }")),
        "rules/x.toml:4:1: accept[0].archive: archive limits apply only to zip-based content",
    );
    starts(
        &one_problem(&BASE.replace("name = \"t\"\n", "name = \"t\"\nconflict = \"merge\"\n")),
        "rules/x.toml:7:1: target.conflict: unknown policy `merge`; use version, rename, reject, overwrite",
    );
    let sidecar = format!("{BASE}\n[metadata]\nsidecar = {{ policy = \"sometimes\" }}\noverridable = [\"a\"]\n");
    starts(&one_problem(&sidecar), "rules/x.toml:10:13: metadata.sidecar.policy: unknown policy `sometimes`");
    let checks = format!(
        "{BASE}\n[metadata]\nfields = {{ a = \"x\" }}\nchecks = {{ a = {{ regex = '(' }}, b = {{ one_of = [] }} }}\n"
    );
    let p = problems(&checks);
    assert_eq!(p.len(), 3, "{p:#?}");
    starts(&p[0], "rules/x.toml:11:18: metadata.checks.a.regex: not a valid regex");
    starts(&p[1], "rules/x.toml:11:33: metadata.checks.b: `b` is never set");
    starts(&p[2], "rules/x.toml:11:39: metadata.checks.b.one_of: lists no value");
}

#[test]
fn inline_tests_are_validated_when_the_file_loads() {
    let text = format!(
        "{BASE}\n[[test]]\nfile = \"DOC-1.pdf\"\nexpect = \"maybe\"\n\n[[test]]\nfile = \"DOC-2.pdf\"\nexpect = \"accepted\"\nentry = \"nope\"\nreason = \"x\"\nmetadata = {{ colour = \"red\" }}\ncontent = \"gif\"\ntransfer = {{ when = \"now\" }}\n\n[[test]]\nfile = \"DOC-3.pdf\"\nexpect = \"excepted\"\nkind = \"bad\"\ndestination = \"x\"\n"
    );
    let p = problems(&text);
    let want = [
        "rules/x.toml:11:1: test[0].expect: `maybe`: use \"accepted\" or \"excepted\"",
        "rules/x.toml:19:1: test[1].content: unknown test body `gif`; use any of pdf, zip",
        "rules/x.toml:20:14: test[1].transfer.when: not a transfer field",
        "rules/x.toml:17:1: test[1].reason: `reason` applies only to expect = \"excepted\"",
        "rules/x.toml:16:1: test[1].entry: no accept entry `nope`",
        "rules/x.toml:18:14: test[1].metadata.colour: `colour` is never set by this rule file",
        "rules/x.toml:26:1: test[2].destination: `destination` applies only to expect = \"accepted\"",
        "rules/x.toml:25:1: test[2].kind: unknown kind `bad`; use any of name, capture",
    ];
    assert_eq!(p.len(), want.len(), "{p:#?}");
    for (got, want) in p.iter().zip(want) {
        starts(got, want);
    }
}

#[test]
fn rules_can_be_shared_across_worker_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Rules>();
    shared::<Outcome>();
}

#[test]
fn a_file_without_accept_or_target_says_what_is_missing() {
    let p = problems("reject_unmatched_names = true\n");
    assert_eq!(p.len(), 2, "{p:#?}");
    starts(&p[0], "rules/x.toml:1:1: (document): no [[accept]] entry");
    starts(&p[1], "rules/x.toml:1:1: (document): no [target]");
}

#[test]
fn toml_syntax_errors_are_located() {
    let p = one_problem(&BASE.replace("name = \"t\"", "name = \"t"));
    starts(&p, "rules/x.toml:6:");
}

#[test]
fn a_missing_rule_file_is_a_problem_not_a_panic() {
    let err = RuleSet::load(Path::new("/nonexistent/rules/x.toml"), Path::new("/nonexistent")).expect_err("missing");
    assert!(err.to_string().starts_with("/nonexistent/rules/x.toml:0:0: (file): cannot read rule file"), "{err}");
}

#[test]
fn load_dir_reports_every_file_and_names_channels_by_stem() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("good.toml"), BASE).expect("write");
    std::fs::write(dir.path().join("README.md"), "not a rule file").expect("write");
    let rules = Rules::load_dir(dir.path()).expect("loads");
    assert_eq!(rules.channels().map(RuleSet::channel).collect::<Vec<_>>(), ["good"]);
    std::fs::write(dir.path().join("bad.toml"), BASE.replace('^', "")).expect("write");
    std::fs::write(dir.path().join("worse.toml"), "[[accept]]\nname = 1\n").expect("write");
    let err = Rules::load_dir(dir.path()).expect_err("two bad files");
    assert_eq!(err.0.len(), 2, "{err}");
    assert!(err.0[0].file.ends_with("bad.toml") && err.0[1].file.ends_with("worse.toml"), "{err}");
}

#[test]
fn the_shipped_rules_load_and_all_their_inline_tests_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let rules = match Rules::load_dir(&dir) {
        Ok(r) => r,
        Err(e) => panic!("shipped rules must load:\n{e}"),
    };
    let channels: Vec<&str> = rules.channels().map(RuleSet::channel).collect();
    assert_eq!(channels, ["contracts", "invoices", "migration"]);
    let invoices = rules.get("invoices").expect("invoices");
    assert_eq!(invoices.target(), "demo-ecm");
    assert_eq!(invoices.conflict(), Conflict::Version);
    assert!(!invoices.reject_unmatched_names(), "the demo shows the exception flow");
    let results = rules.run_tests();
    let failed: Vec<String> = results.iter().filter(|r| !r.passed).map(ToString::to_string).collect();
    assert!(failed.is_empty(), "failing rule tests:\n{}", failed.join("\n"));
    for set in rules.channels() {
        assert!(set.test_count() >= 8, "{} has too few inline tests", set.channel());
    }
    assert_eq!(results.len(), rules.channels().map(RuleSet::test_count).sum::<usize>());
}

#[test]
fn a_failing_inline_test_reports_what_differed() {
    let text = format!(
        "{BASE}\n[metadata]\nfields = {{ kind = \"doc\" }}\n\n[[test]]\nfile = \"DOC-7.pdf\"\nexpect = \"accepted\"\nmetadata = {{ kind = \"letter\" }}\ndestination = \"8/DOC-7.pdf\"\n\n[[test]]\nfile = \"DOC-8.pdf\"\nexpect = \"excepted\"\n"
    );
    let results = ruleset(&text).run_tests();
    assert_eq!(results.len(), 2);
    assert!(!results[0].passed);
    assert_eq!(
        results[0].diffs,
        ["metadata.kind: expected `letter`, got `doc`", "destination: expected `8/DOC-7.pdf`, got `7/DOC-7.pdf`"]
    );
    assert_eq!(results[0].location, "rules/x.toml:12");
    assert_eq!(results[1].diffs, ["expected excepted, got accepted by entry `doc` to 8/DOC-8.pdf"]);
    assert!(results[1].to_string().starts_with("FAIL x: DOC-8.pdf (rules/x.toml:18)"), "{}", results[1]);
}
