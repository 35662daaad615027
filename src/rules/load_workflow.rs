//! Loading `[workflow]`: the approval an accepted file waits for before it is delivered. Its
//! templates see what the destination sees (every entry's captures, every field); the engine
//! name is checked against the gateway config when the rules are loaded by the gateway.

use super::load::{Scope, groups, template};
use super::load_meta;
use super::model::{Entry, Metadata, WorkflowRule, WorkflowSettings};
use super::raw::RawRules;
use super::template::is_ident;
use crate::config::{Checker, KeyPath, is_valid_name};
use std::collections::BTreeSet;

/// Longest wait accepted (a year): beyond that a timeout is a mistake, not a policy.
const MAX_TIMEOUT_SECS: u64 = 366 * 86_400;

/// `[workflow]` compiled, or `None` when absent or wrong (reported).
pub fn build_workflow(
    rules: &RawRules,
    entries: &[Entry],
    metadata: &Metadata,
    ck: &mut Checker<'_>,
) -> Option<WorkflowRule> {
    let w = rules.workflow.as_ref()?;
    let key = KeyPath::root().key("workflow");
    if !is_valid_name(&w.engine) {
        ck.report(&key.key("engine"), "must name a workflow connection of the gateway config");
    }
    let known = load_meta::all_fields(rules, metadata);
    let all_groups: Vec<(&str, BTreeSet<String>)> = entries.iter().map(|e| (e.name.as_str(), groups(e))).collect();
    let scope = Scope { entries: all_groups.iter().map(|(n, g)| (*n, g)).collect(), meta: Some(&known) };
    let definition = template(&w.definition, &key.key("definition"), &scope, ck);
    let bk = w.business_key.clone().unwrap_or_else(|| "wharf-{transfer.id}".into());
    let business_key = template(&bk, &key.key("business_key"), &scope, ck);
    let mut variables = Vec::new();
    for (name, src) in &w.variables {
        let vk = key.key("variables").key(name);
        if !is_ident(name) {
            ck.report(&vk, format!("`{name}` is not a variable name (letters, digits, `_`)"));
        }
        if let Some(t) = template(src, &vk, &scope, ck) {
            variables.push((name.clone(), t));
        }
    }
    let d = WorkflowSettings::default();
    let timeout_secs = w.timeout_secs.unwrap_or(d.timeout_secs);
    if timeout_secs == 0 || timeout_secs > MAX_TIMEOUT_SECS {
        ck.report(&key.key("timeout_secs"), format!("must be between 1 and {MAX_TIMEOUT_SECS}"));
    }
    let check_every_secs = w.check_every_secs.unwrap_or(d.check_every_secs);
    if check_every_secs == 0 || check_every_secs > 3600 {
        ck.report(&key.key("check_every_secs"), "must be between 1 and 3600");
    }
    let outcome_variable = w.outcome_variable.clone().unwrap_or(d.outcome_variable);
    let comment_variable = w.comment_variable.clone().unwrap_or(d.comment_variable);
    for (k, v) in [("outcome_variable", &outcome_variable), ("comment_variable", &comment_variable)] {
        if !is_ident(v) {
            ck.report(&key.key(k), format!("`{v}` is not a variable name"));
        }
    }
    let approved = w.approved.clone().unwrap_or(d.approved);
    let rejected = w.rejected.clone().unwrap_or(d.rejected);
    if approved.is_empty() {
        ck.report(&key.key("approved"), "name at least one outcome that delivers");
    }
    if let Some(both) = approved.iter().find(|a| rejected.contains(a)) {
        ck.report(&key.key("rejected"), format!("`{both}` is both an approved and a rejected outcome"));
    }
    let settings =
        WorkflowSettings { timeout_secs, check_every_secs, outcome_variable, approved, rejected, comment_variable };
    Some(WorkflowRule {
        engine: w.engine.clone(),
        definition: definition?,
        business_key: business_key?,
        variables,
        settings,
        site: ck.site(&key),
    })
}
