//! `[workflow]`: loaded with located errors, rendered per file, shown by explain.

use super::tests::{BASE, ruleset, tables};
use super::*;

fn with_workflow(section: &str) -> String {
    format!("{BASE}\n[workflow]\n{section}")
}

#[test]
fn a_workflow_is_rendered_for_each_accepted_file() {
    let r = ruleset(&with_workflow(
        "engine = \"otws\"\ndefinition = \"approval-{id}\"\nvariables = { doc = \"{id}\", via = \"{transfer.protocol}\" }\n",
    ));
    assert_eq!(r.workflow_engine(), Some("otws"));
    let mut input = Input::named("DOC-42.pdf");
    input.transfer.id = "01TRANSFER".into();
    input.transfer.protocol = "sftp".into();
    let Outcome::Accepted { workflow: Some(w), .. } = r.evaluate(&input) else { panic!("accepted with a workflow") };
    assert_eq!(w.definition, "approval-42");
    assert_eq!(w.business_key, "wharf-01TRANSFER", "the default business key is per transfer");
    assert_eq!(w.variables.get("doc").map(String::as_str), Some("42"));
    assert_eq!(w.variables.get("via").map(String::as_str), Some("sftp"));
    assert_eq!((w.settings.timeout_secs, w.settings.check_every_secs), (7 * 86_400, 30));
    assert_eq!(w.settings.approved, ["approved"]);
    assert!(r.explain(&input).contains("then waits for workflow `approval-42`"), "{}", r.explain(&input));
}

#[test]
fn workflow_mistakes_are_located() {
    let t = tables();
    let text = with_workflow(
        "engine = \"otws\"\ndefinition = \"{nope}\"\ntimeout_secs = 0\napproved = [\"ok\"]\nrejected = [\"ok\"]\n\
         outcome_variable = \"bad name\"\n",
    );
    let err = RuleSet::parse(std::path::Path::new("rules/x.toml"), &text, t.path()).expect_err("invalid").to_string();
    for want in [
        "workflow.definition: `{nope}` is not a capture",
        "workflow.timeout_secs: must be between 1",
        "workflow.rejected: `ok` is both",
        "workflow.outcome_variable: `bad name` is not a variable name",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("rules/x.toml:"), "{err}");
}

#[test]
fn rules_without_a_workflow_deliver_directly() {
    let r = ruleset(BASE);
    assert_eq!(r.workflow_engine(), None);
    assert!(matches!(r.evaluate(&Input::named("DOC-1.pdf")), Outcome::Accepted { workflow: None, .. }));
}
