//! What the emulated service holds: tokens, process instances with their variables, and tasks.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

/// One variable as the service stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    /// Name.
    pub name: String,
    /// `string`, `integer`, `long`, `short`, `double`, `boolean`, `date` or `json`.
    pub kind: String,
    /// Value as JSON.
    pub value: Value,
    /// `global` (process) or `local`.
    pub scope: String,
}

impl Variable {
    /// The wire form `{"name","scope","type","value","encryption"}`.
    pub fn json(&self) -> Value {
        json!({ "name": self.name, "scope": self.scope, "type": self.kind, "value": self.value, "encryption": false })
    }
}

/// One process instance.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Id.
    pub id: String,
    /// Definition key.
    pub definition_key: String,
    /// Definition name.
    pub definition_name: String,
    /// Instance name (as started).
    pub name: String,
    /// Business key (as started; may be empty).
    pub business_key: Option<String>,
    /// Variables by name.
    pub variables: BTreeMap<String, Variable>,
    /// Index of the next user task to create, within the definition's list.
    pub next_task: usize,
    /// The instance has ended.
    pub ended: bool,
    /// It ended by completing its last task (not by deletion).
    pub completed: bool,
    /// ISO 8601 start time.
    pub start_time: String,
    /// ISO 8601 end time.
    pub end_time: Option<String>,
}

impl Instance {
    /// The wire form, with or without its variables.
    pub fn json(&self, tenant: &str, with_variables: bool) -> Value {
        let mut v = json!({
            "id": self.id,
            "name": self.name,
            "businessKey": self.business_key,
            "processDefinitionId": format!("{}:1:1001", self.definition_key),
            "processDefinitionKey": self.definition_key,
            "processDefinitionName": self.definition_name,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "startUserId": "service-client",
            "ended": self.ended,
            "completed": self.completed,
            "suspended": false,
            "tenantId": tenant,
            "subscriptionId": format!("{tenant}-subscription"),
        });
        if with_variables {
            v["variables"] = Value::Array(self.variables.values().map(Variable::json).collect());
        }
        v
    }
}

/// One user task.
#[derive(Debug, Clone)]
pub struct Task {
    /// Id.
    pub id: String,
    /// Task name (from the definition).
    pub name: String,
    /// Its instance.
    pub instance_id: String,
    /// Current assignee.
    pub assignee: Option<String>,
    /// Owner while delegated.
    pub owner: Option<String>,
    /// `pending` while delegated, `resolved` after.
    pub delegation: Option<String>,
    /// ISO 8601 creation time.
    pub create_time: String,
    /// Completed (no longer listed; actions on it are 404).
    pub done: bool,
}

/// A live access token.
#[derive(Debug, Clone)]
pub struct Token {
    /// Tokens of older generations are dead ([`super::Emulator::expire_tokens`]).
    pub generation: u64,
    /// Dead after this.
    pub until: Instant,
}

/// The whole state.
#[derive(Debug, Default)]
pub struct State {
    /// Access token → token.
    pub tokens: BTreeMap<String, Token>,
    /// Current token generation.
    pub generation: u64,
    /// Instances by id (ids sort in creation order).
    pub instances: BTreeMap<String, Instance>,
    /// Tasks by id (ids sort in creation order).
    pub tasks: BTreeMap<String, Task>,
    /// Instances created per business key.
    pub started: BTreeMap<String, usize>,
    counter: u64,
}

/// Now as ISO 8601 with milliseconds, UTC.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl State {
    /// A fresh id, UUID-shaped, increasing.
    pub fn next_id(&mut self, kind: u16) -> String {
        self.counter += 1;
        format!("{:08x}-{kind:04x}-4000-8000-{:012x}", self.counter, self.counter)
    }

    /// Creates the next user task of an instance, or ends it when none is left.
    pub fn advance(&mut self, instance_id: &str, tasks: &[String]) {
        let Some(next) = self.instances.get(instance_id).map(|i| i.next_task) else { return };
        match tasks.get(next) {
            Some(name) => {
                let id = self.next_id(2);
                self.tasks.insert(
                    id.clone(),
                    Task {
                        id,
                        name: name.clone(),
                        instance_id: instance_id.to_string(),
                        assignee: None,
                        owner: None,
                        delegation: None,
                        create_time: now(),
                        done: false,
                    },
                );
                if let Some(i) = self.instances.get_mut(instance_id) {
                    i.next_task += 1;
                }
            }
            None => {
                if let Some(i) = self.instances.get_mut(instance_id) {
                    i.ended = true;
                    i.completed = true;
                    i.end_time = Some(now());
                }
            }
        }
    }
}

impl Task {
    /// The wire form, with the instance's variables when asked.
    pub fn json(&self, instance: Option<&Instance>, with_variables: bool) -> Value {
        let mut v = json!({
            "id": self.id,
            "name": self.name,
            "assignee": self.assignee,
            "owner": self.owner,
            "delegationState": self.delegation,
            "createTime": self.create_time,
            "processInstanceId": self.instance_id,
            "processInstanceBusinessKey": instance.and_then(|i| i.business_key.clone()),
            "processDefinitionKey": instance.map(|i| i.definition_key.clone()),
        });
        if with_variables {
            let vars: Vec<Value> =
                instance.map(|i| i.variables.values().map(Variable::json).collect()).unwrap_or_default();
            v["variables"] = Value::Array(vars);
        }
        v
    }
}
