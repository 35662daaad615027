//! Workflow gates: a file whose rules have a `[workflow]` is delivered only once a workflow
//! instance (an approval in OpenText Workflow Service) ends with an approving outcome.
//!
//! - **Gate** (in the worker, after the rules accepted the file): the instance is started
//!   (idempotent by business key, so a crash after the remote start never makes a second one),
//!   the wait is journaled (`workflow_waits`), and the transfer moves to `awaiting_workflow`.
//! - **Watcher** (one task): checks open waits when due, with backoff on errors. When an instance
//!   ends, how it ended is journaled and the transfer goes back to `received`; the worker that
//!   claims it finds the ended wait: approved → delivered (and the source's write-back follows,
//!   e.g. Canto's approval status); rejected or any other outcome → exception with the reviewer's
//!   comment. An instance open past the rule's timeout → exception naming the instance and a link.
//! - **Restarts**: waits live in the journal; at start the watcher moves every
//!   `awaiting_workflow` transfer whose wait already ended back to `received`.
//!
//! A resubmitted file is a new transfer, so (with the default business key `wharf-{transfer.id}`)
//! it gets a new review.

use super::exceptions::Reason;
use super::{Pipeline, Record};
use crate::rules::{WorkflowSettings, WorkflowStart};
use crate::spool::journal::{NewWait, State, TransferRow, WaitRow};
use crate::targets::workflow::{Variable, WorkflowClient};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The workflow connections rules may name, by `[[workflows]]` name.
pub type Engines = HashMap<String, Arc<WorkflowClient>>;

/// Longest pause between checks of one instance after repeated errors.
const MAX_CHECK_BACKOFF: Duration = Duration::from_secs(600);

/// Longest the watcher sleeps before looking for due waits (new waits are seen this soon).
const WATCH_TICK: Duration = Duration::from_millis(500);

fn later(d: Duration) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::seconds(60))
}

/// Why an ended (or timed-out) wait is an exception; `None` when it was approved.
fn refusal(w: &WaitRow) -> Option<Reason> {
    let instance = format!("instance {} of `{}` (business key {})", w.instance_id, w.definition, w.business_key);
    let comment = w.comment.as_deref().filter(|c| !c.trim().is_empty());
    let said = comment.map(|c| format!("; the reviewer's comment: {c}")).unwrap_or_default();
    let (reason, remedy) = match w.state.as_str() {
        "approved" => return None,
        "rejected" => (
            format!("rejected in workflow {instance}{said}"),
            "Fix what the reviewer asks for and resubmit the file: it goes through a new review.".to_string(),
        ),
        "timed_out" => (
            format!(
                "workflow {instance} was still open at its deadline {}; see {}",
                w.deadline,
                w.last_error.as_deref().unwrap_or("the Workflow Service")
            ),
            "Ask the reviewers to finish the task (or end the instance), then resubmit the file.".to_string(),
        ),
        _ => (
            format!("workflow {instance} ended with outcome {:?}, which neither approves nor rejects{said}", w.outcome),
            "Check the workflow definition's outcomes against the rule's `approved`/`rejected`; then resubmit."
                .to_string(),
        ),
    };
    Some(Reason {
        rule: "workflow".into(),
        location: String::new(),
        reason,
        remedy,
        details: serde_json::json!({
            "instance": w.instance_id, "definition": w.definition, "business_key": w.business_key,
            "outcome": w.outcome, "comment": w.comment, "state": w.state,
        }),
    })
}

impl Pipeline {
    /// Before delivering a file whose rules ask for a workflow: true when its wait was approved
    /// (deliver now); false when it was handled here (started and waiting, excepted, retried).
    pub(super) async fn gate(
        &self,
        row: &TransferRow,
        start: &WorkflowStart,
        retry: crate::rules::RetryPolicy,
    ) -> bool {
        let journal = self.spool.journal();
        match journal.wait_of(&row.id).await {
            Ok(Some(w)) if w.state == "open" => {
                // started before a crash: wait again (the instance is the same)
                if let Err(e) = journal.mark_awaiting_workflow(&row.id, &format!("waiting for {}", w.instance_id)).await
                {
                    tracing::error!(error = %e, "cannot mark the transfer as waiting; it is processed again");
                }
                return false;
            }
            Ok(Some(w)) => {
                return match refusal(&w) {
                    None => true,
                    Some(why) => {
                        self.except(row, why).await;
                        false
                    }
                };
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the transfer's workflow wait; it stays queued");
                let _ = journal.retry_later(&row.id, later(Duration::from_secs(30)), "journal error").await;
                return false;
            }
        }
        let Some(engine) = self.workflows.get(&start.engine) else {
            let why = Reason {
                rule: "workflow.engine".into(),
                location: String::new(),
                reason: format!("the rules name workflow connection `{}`, which is not configured", start.engine),
                remedy: "An administrator must add it as [[workflows]] to the config; then resubmit.".into(),
                details: serde_json::Value::Null,
            };
            self.except(row, why).await;
            return false;
        };
        let mut variables: Vec<Variable> = start.variables.iter().map(|(k, v)| Variable::string(k, v)).collect();
        for (k, v) in [("wharf_transfer_id", &row.id), ("wharf_file", &row.name), ("wharf_channel", &row.channel)] {
            if !start.variables.contains_key(k) {
                variables.push(Variable::string(k, v));
            }
        }
        let started = match engine.start(&start.definition, &start.business_key, &variables).await {
            Ok(s) => s,
            Err(e) if e.is_transient() => {
                self.retry_or_except(row, retry, &format!("starting workflow `{}`: {e}", start.definition)).await;
                return false;
            }
            Err(e) => {
                let why = Reason {
                    rule: "workflow".into(),
                    location: String::new(),
                    reason: format!("the workflow `{}` could not be started for {}: {e}", start.definition, row.name),
                    remedy: "Check the rule's definition and variables against the Workflow Service; then resubmit."
                        .into(),
                    details: serde_json::json!({ "definition": start.definition, "business_key": start.business_key }),
                };
                self.except(row, why).await;
                return false;
            }
        };
        let s = &start.settings;
        let wait = NewWait {
            transfer_id: row.id.clone(),
            engine: start.engine.clone(),
            instance_id: started.instance.id.clone(),
            definition: start.definition.clone(),
            business_key: start.business_key.clone(),
            settings: serde_json::to_string(s).unwrap_or_default(),
            deadline: later(Duration::from_secs(s.timeout_secs)),
            next_check: later(Duration::from_secs(s.check_every_secs)),
        };
        if let Err(e) = journal.insert_wait(&wait).await {
            // the instance exists; the retry finds it by its business key
            tracing::error!(error = %e, "cannot journal the workflow wait; the transfer is processed again");
            let _ = journal.retry_later(&row.id, later(Duration::from_secs(30)), "journal error").await;
            return false;
        }
        let what = format!(
            "workflow `{}` instance {} (business key {}{})",
            start.definition,
            started.instance.id,
            start.business_key,
            if started.reused { ", found from before" } else { "" }
        );
        if let Err(e) = journal.mark_awaiting_workflow(&row.id, &format!("waiting for {what}")).await {
            tracing::error!(error = %e, "cannot mark the transfer as waiting; it is processed again");
        }
        tracing::info!(instance = %started.instance.id, reused = started.reused, "waiting for the workflow");
        self.audit(row, "workflow_started").reason(&what).record(self);
        false
    }

    /// The watcher: until `stop`, checks due waits and moves ended ones on.
    pub(super) async fn watch_workflows(self: Arc<Self>, stop: CancellationToken) {
        self.recover_waits().await;
        loop {
            match self.spool.journal().waits_due(Utc::now()).await {
                Ok(due) => {
                    for w in due {
                        if stop.is_cancelled() {
                            return;
                        }
                        self.check_wait(w).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read due workflow waits"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(WATCH_TICK) => {}
            }
        }
    }

    /// Transfers left `awaiting_workflow` although their wait ended (a crash in between).
    async fn recover_waits(&self) {
        let journal = self.spool.journal();
        let Ok(waiting) = journal.in_state(State::AwaitingWorkflow).await else { return };
        for t in waiting {
            if let Ok(Some(w)) = journal.wait_of(&t.id).await
                && w.state != "open"
            {
                self.release(&t.id, &w.state).await;
            }
        }
    }

    async fn release(&self, id: &str, how: &str) {
        match self.spool.journal().release_awaiting(id, "received", &format!("workflow {how}")).await {
            Ok(true) => self.spool.notify_received(),
            Ok(false) => {}
            Err(e) => tracing::error!(transfer = %id, error = %e, "cannot release the transfer; retried at start-up"),
        }
    }

    async fn check_wait(&self, w: WaitRow) {
        let span = tracing::info_span!("workflow_wait", transfer = %w.transfer_id, instance = %w.instance_id);
        tracing::Instrument::instrument(self.check_wait_inner(w), span).await;
    }

    async fn check_wait_inner(&self, w: WaitRow) {
        let journal = self.spool.journal();
        let settings: Option<WorkflowSettings> = serde_json::from_str(&w.settings).ok();
        let every = Duration::from_secs(settings.as_ref().map_or(30, |s| s.check_every_secs));
        let Some(engine) = self.workflows.get(&w.engine) else {
            let why = format!("workflow connection `{}` is no longer configured", w.engine);
            tracing::warn!(%why, "cannot check the workflow");
            let _ = journal.wait_checked(&w.transfer_id, later(MAX_CHECK_BACKOFF), Some(&why)).await;
            return;
        };
        let deadline = chrono::DateTime::parse_from_rfc3339(&w.deadline).map(|d| d.with_timezone(&Utc)).ok();
        let ended = match engine.instance(&w.instance_id).await {
            Ok(i) if i.ended => Some(i),
            Ok(_) if deadline.is_some_and(|d| Utc::now() >= d) => {
                // the exception reason points at the instance: kept as the wait's last note
                let link = engine.instance_link(&w.instance_id);
                let _ = journal.wait_checked(&w.transfer_id, Utc::now(), Some(&link)).await;
                if let Ok(true) = journal.end_wait(&w.transfer_id, "timed_out", None, None, None).await {
                    tracing::warn!("the workflow instance is still open at its deadline");
                    self.release(&w.transfer_id, "timed out").await;
                }
                return;
            }
            Ok(_) => None,
            Err(e) => {
                let failures = u32::try_from(w.failures).unwrap_or(u32::MAX).saturating_add(1);
                let backoff = e
                    .retry_after()
                    .unwrap_or_else(|| every.saturating_mul(1 << failures.min(8)))
                    .min(MAX_CHECK_BACKOFF);
                tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "cannot read the workflow instance");
                let _ = journal.wait_checked(&w.transfer_id, later(backoff), Some(&e.to_string())).await;
                return;
            }
        };
        let Some(instance) = ended else {
            let _ = journal.wait_checked(&w.transfer_id, later(every), None).await;
            return;
        };
        let s = settings.unwrap_or_default();
        let outcome = instance.var(&s.outcome_variable);
        let comment = instance.var(&s.comment_variable);
        let state = match &outcome {
            Some(o) if s.approved.contains(o) => "approved",
            Some(o) if s.rejected.contains(o) => "rejected",
            _ => "ended",
        };
        let variables = serde_json::to_string(&instance.variables).ok();
        match journal
            .end_wait(&w.transfer_id, state, outcome.as_deref(), comment.as_deref(), variables.as_deref())
            .await
        {
            Ok(true) => {
                tracing::info!(state, outcome = ?outcome, "the workflow instance ended");
                let mut e = crate::audit::Event::new(&format!("workflow_{state}"))
                    .transfer(&w.transfer_id)
                    .reason(&format!("instance {} of `{}`: outcome {:?}", w.instance_id, w.definition, outcome));
                if let Ok(Some(t)) = journal.get(&w.transfer_id).await {
                    e = e.account(&t.account).path(&t.name);
                }
                self.spool.audit().record(e);
                self.release(&w.transfer_id, state).await;
            }
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "cannot journal the workflow's end; checked again"),
        }
    }
}
