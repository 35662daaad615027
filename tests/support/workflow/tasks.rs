//! `/workflow/v1/tasks`: the open user tasks (HAL `_embedded.tasks`, `page.totalElements`) and
//! `POST /tasks/{id}` with `claim`, `complete`, `delegate` or `resolve`.
//!
//! Decisions (UNVERIFIED; semantics from Flowable, FLW): claiming a task assigned to someone
//! else is 409; completing or resolving needs the right delegation state (400 otherwise);
//! a completed task is gone from the runtime, so any action on it is 404 like an unknown id.
//! `complete` writes its variables and `outcome` (as a string variable) into the instance, then
//! creates the definition's next task or ends the instance. Replies: 204 for `complete`,
//! 200 with the task for the other actions.

use super::Shared;
use super::http::{Query, details, exception, reply};
use super::state::Variable;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `GET /tasks?processInstanceId=&processInstanceBusinessKey=&processDefinitionKey=&name=&assignee=...`.
pub fn list(sh: &Shared, q: &Query) -> Response {
    let (with, offset, count) =
        match (q.flag("includeProcessVariables"), q.number("offset", 0, usize::MAX), q.number("count", 10, 1000)) {
            (Ok(w), Ok(o), Ok(c)) => (w, o, c),
            (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
        };
    let st = sh.st();
    let hits: Vec<Value> = st
        .tasks
        .values()
        .filter(|t| !t.done)
        .filter(|t| q.get("processInstanceId").is_none_or(|v| t.instance_id == v))
        .filter(|t| q.get("name").is_none_or(|v| t.name == v))
        .filter(|t| q.get("assignee").is_none_or(|v| t.assignee.as_deref() == Some(v)))
        .filter_map(|t| {
            let inst = st.instances.get(&t.instance_id);
            let bk = inst.and_then(|i| i.business_key.as_deref());
            let ok = q.get("processInstanceBusinessKey").is_none_or(|v| bk == Some(v))
                && q.get("processDefinitionKey").is_none_or(|v| inst.is_some_and(|i| i.definition_key == v));
            ok.then(|| t.json(inst, with))
        })
        .collect();
    let total = hits.len();
    let page: Vec<Value> = hits.into_iter().skip(offset).take(count).collect();
    reply(200, json!({ "_embedded": { "tasks": page }, "page": super::instances::page_json(total, offset, count) }))
}

/// `POST /tasks/{id}` with `{"action": ..}`.
pub fn action(sh: &Shared, id: &str, body: &[u8]) -> Response {
    let b = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return exception("The request body must be a JSON object"),
        Err(e) => return exception(&format!("Could not read the JSON request body: {e}")),
    };
    let action = b.get("action").and_then(Value::as_str).unwrap_or_default().to_string();
    if !["claim", "complete", "delegate", "resolve"].contains(&action.as_str()) {
        return exception(&format!("Invalid action '{action}': use claim, complete, delegate or resolve"));
    }
    let assignee = b.get("assignee").and_then(Value::as_str).map(str::to_string);
    let variables = match super::vars::parse("variables", b.get("variables")) {
        Ok(v) => v,
        Err(m) => return exception(&m),
    };
    let outcome = match b.get("outcome") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return exception("outcome must be a string"),
    };
    let mut st = sh.st();
    let Some(task) = st.tasks.get(id).filter(|t| !t.done).cloned() else {
        return details(404, &format!("Could not find a task with id '{id}'"));
    };
    let mut t = task.clone();
    match action.as_str() {
        "claim" => {
            let Some(who) = assignee else { return exception("claim needs an assignee") };
            if t.assignee.as_ref().is_some_and(|a| a != &who) {
                return details(409, &format!("Task '{id}' is already claimed by someone else"));
            }
            t.assignee = Some(who);
        }
        "delegate" => {
            let Some(who) = assignee else { return exception("delegate needs an assignee") };
            t.owner = t.assignee.clone().or(t.owner);
            t.assignee = Some(who);
            t.delegation = Some("pending".into());
        }
        "resolve" => {
            if t.delegation.as_deref() != Some("pending") {
                return exception(&format!("Task '{id}' is not delegated, so it cannot be resolved"));
            }
            t.assignee = t.owner.clone();
            t.delegation = Some("resolved".into());
        }
        _ => {
            if t.delegation.as_deref() == Some("pending") {
                return exception(&format!("Task '{id}' is delegated: resolve it instead of completing it"));
            }
            let Some(inst) = st.instances.get_mut(&t.instance_id) else {
                return details(404, "The task's process instance is gone");
            };
            for v in variables {
                inst.variables.insert(v.name.clone(), v);
            }
            if let Some(o) = outcome {
                let v = Variable {
                    name: "outcome".into(),
                    kind: "string".into(),
                    value: Value::String(o),
                    scope: "global".into(),
                };
                inst.variables.insert(v.name.clone(), v);
            }
            let key = inst.definition_key.clone();
            t.done = true;
            st.tasks.insert(id.to_string(), t);
            let tasks = sh.seed.definitions.iter().find(|d| d.key == key).map(|d| d.tasks.clone()).unwrap_or_default();
            st.advance(&task.instance_id, &tasks);
            return StatusCode::NO_CONTENT.into_response();
        }
    }
    st.tasks.insert(id.to_string(), t.clone());
    let inst = st.instances.get(&t.instance_id);
    reply(200, t.json(inst, false))
}
