//! OpenText Workflow Service (OpenText Cloud Platform, `/workflow/v1`): start a process instance
//! for a transfer, read it back (ended? which outcome?), list its open tasks. API facts:
//! `/work/shared/api/TARGETS.md` §3; vendor demo: <https://github.com/opentext/demo-contract-approval-app>.
//!
//! - **Auth**: tenant OAuth2 client credentials ([`auth`]), renewed before expiry and once on a 401.
//! - **Idempotent start**: [`WorkflowClient::start`] first lists the instances of the definition
//!   with the business key and reuses one (open first, else ended) instead of starting a second,
//!   so a retry after a crash or a lost reply never makes a duplicate. (Two callers racing with
//!   the same key can still both start: the caller serialises per transfer.)
//! - **Failures** ([`Error`]): transient (network, lost reply, 429, 5xx) vs permanent, with the
//!   service's own message; 429s with a short `Retry-After` are waited out in place.
//!
//! Not here: the journal state `awaiting_workflow`, the watcher and the rule actions (they call
//! this client).

pub mod auth;
pub mod client;
pub mod error;
pub mod model;

pub use error::{Error, SetupError};
pub use model::{Instance, Started, Task, Variable};

use crate::config::workflow::WorkflowConfig;
use reqwest::Method;
use serde_json::{Value, json};

/// Page size of list calls.
const PAGE: usize = 100;
/// Pages read at most when listing (a runaway guard).
const MAX_PAGES: usize = 50;

/// A Workflow Service tenant, ready to call.
#[derive(Debug)]
pub struct WorkflowClient {
    name: String,
    client: client::Client,
}

impl WorkflowClient {
    /// Reads the secret and prepares the connection (nothing is sent yet).
    ///
    /// # Errors
    /// The secret is missing or unreadable.
    pub fn new(cfg: &WorkflowConfig) -> Result<Self, SetupError> {
        Ok(Self { name: cfg.name.clone(), client: client::Client::new(cfg)? })
    }

    /// The `[[workflows]]` name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The API address of an instance, for exception reasons and the ops page.
    pub fn instance_link(&self, id: &str) -> String {
        self.client.url(&format!("/process-instances/{}", encode(id)))
    }

    /// Proves the credentials and the API answer: a token grant plus a one-item instance list
    /// (for `wharf check` and the ops page).
    ///
    /// # Errors
    /// The classified failure.
    pub async fn healthcheck(&self) -> Result<(), Error> {
        let q = [("count", "1".to_string())];
        self.client.call(Method::GET, "/process-instances", &q, None, "to list process instances").await.map(|_| ())
    }

    /// Instances of `definition_key` started with `business_key`, oldest first.
    ///
    /// # Errors
    /// The classified failure.
    pub async fn find(&self, definition_key: &str, business_key: &str) -> Result<Vec<Instance>, Error> {
        let what = format!("to list instances of `{definition_key}` (business key `{business_key}`)");
        let mut out = Vec::new();
        for page in 0..MAX_PAGES {
            let q = [
                ("processDefinitionKey", definition_key.to_string()),
                ("businessKey", business_key.to_string()),
                ("offset", (page * PAGE).to_string()),
                ("count", PAGE.to_string()),
            ];
            let v = self.client.call(Method::GET, "/process-instances", &q, None, &what).await?;
            let (items, total) = model::list_items(&v);
            let n = items.len();
            for item in &items {
                let i = Instance::parse(item)?;
                // the filters are the server's; check them anyway before reusing an instance
                let same_key = i.definition_key.as_deref().is_none_or(|k| k == definition_key);
                if i.business_key.as_deref() == Some(business_key) && same_key {
                    out.push(i);
                }
            }
            let seen = (page * PAGE + n) as u64;
            if n < PAGE || total.is_some_and(|t| seen >= t) {
                break;
            }
        }
        Ok(out)
    }

    /// Starts `definition_key` for `business_key` with `variables`, unless an instance of it
    /// with that business key exists already (open or ended): then that one is returned with
    /// `reused = true` and nothing is started.
    ///
    /// # Errors
    /// An empty key, or the classified failure (an unknown definition is `Refused` with the
    /// service's message). After a transient failure the start may or may not have happened;
    /// calling again is safe.
    pub async fn start(
        &self,
        definition_key: &str,
        business_key: &str,
        variables: &[Variable],
    ) -> Result<Started, Error> {
        if definition_key.trim().is_empty() || business_key.trim().is_empty() {
            return Err(Error::Invalid(
                "a workflow start needs a process definition key and a business key (the business key makes it idempotent)"
                    .into(),
            ));
        }
        let existing = self.find(definition_key, business_key).await?;
        if let Some(i) = existing.iter().find(|i| !i.ended).or_else(|| existing.first()) {
            tracing::info!(instance = %i.id, business_key, "workflow instance exists already; not starting another");
            return Ok(Started { instance: i.clone(), reused: true });
        }
        let body = json!({
            "processDefinitionKey": definition_key,
            "businessKey": business_key,
            "variables": variables.iter().map(Variable::json).collect::<Vec<Value>>(),
            "returnVariables": true,
        });
        let what = format!("to start process definition `{definition_key}` (business key `{business_key}`)");
        let v = self.client.call(Method::POST, "/process-instances", &[], Some(&body), &what).await?;
        let instance = Instance::parse(&v)?;
        tracing::info!(instance = %instance.id, business_key, definition = definition_key, "workflow instance started");
        Ok(Started { instance, reused: false })
    }

    /// One instance with its process variables (`ended`, `completed`, `outcome`, comments, …).
    ///
    /// # Errors
    /// `NotFound` for an unknown id, else the classified failure.
    pub async fn instance(&self, id: &str) -> Result<Instance, Error> {
        let what = format!("to read process instance {id}");
        let path = format!("/process-instances/{}", encode(id));
        let q = [("includeProcessVariables", "true".to_string())];
        let v = self.client.call(Method::GET, &path, &q, None, &what).await?;
        Instance::parse(&v)
    }

    /// The open user tasks of an instance.
    ///
    /// # Errors
    /// The classified failure.
    pub async fn tasks(&self, instance_id: &str) -> Result<Vec<Task>, Error> {
        let what = format!("to list the tasks of process instance {instance_id}");
        let mut out = Vec::new();
        for page in 0..MAX_PAGES {
            let q = [
                ("processInstanceId", instance_id.to_string()),
                ("offset", (page * PAGE).to_string()),
                ("count", PAGE.to_string()),
            ];
            let v = self.client.call(Method::GET, "/tasks", &q, None, &what).await?;
            let (items, total) = model::list_items(&v);
            let n = items.len();
            for item in &items {
                out.push(Task::parse(item)?);
            }
            if n < PAGE || total.is_some_and(|t| (page * PAGE + n) as u64 >= t) {
                break;
            }
        }
        Ok(out)
    }
}

/// A path segment, percent-encoded.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
