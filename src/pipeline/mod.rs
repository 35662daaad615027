//! Pipeline workers: claim a `received` transfer, apply its channel's rules, deliver it to its
//! target, and record the outcome.
//!
//! - **Claim** is one conditional `UPDATE` in the journal (`received → processing`), so several
//!   workers (and later several nodes) never take the same transfer.
//! - **Accepted** files are delivered; `Delivered` is journaled with the target's receipt, then
//!   the body leaves the spool. `Retry` puts the transfer back to `received` with a `not_before`
//!   (exponential backoff with jitter) until the rule's attempts or maximum age run out; `Except`
//!   and exhausted retries go to the exception folder.
//! - **Excepted** files go to `exceptions/<channel>/<account>/` with their reason files.
//! - **Crash safety**: at start-up `processing` transfers return to `received` and are processed
//!   again; targets are idempotent (they find their own earlier delivery by name and checksum), so
//!   a crash between delivering and journaling never makes a second copy.

pub mod exceptions;
pub mod resubmit;
mod sidecar;
pub mod workflow;

use crate::audit::Event;
use crate::config::Config;
use crate::rules::live::LiveRules;
use crate::rules::{self, Outcome};
use crate::spool::Spool;
use crate::spool::journal::TransferRow;
use crate::targets::{self, Delivery, Document, Target};
use exceptions::Reason;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Everything a worker needs.
pub struct Pipeline {
    spool: Arc<Spool>,
    rules: Arc<LiveRules>,
    targets: HashMap<String, Arc<dyn Target>>,
    accounts: HashMap<String, BTreeMap<String, String>>,
    workflows: workflow::Engines,
}

fn conflict(c: rules::Conflict) -> targets::Conflict {
    match c {
        rules::Conflict::Version => targets::Conflict::Version,
        rules::Conflict::Rename => targets::Conflict::Rename,
        rules::Conflict::Reject => targets::Conflict::Reject,
        rules::Conflict::Overwrite => targets::Conflict::Overwrite,
    }
}

impl Pipeline {
    /// A pipeline over the spool with these rules and targets.
    pub fn new(
        spool: Arc<Spool>,
        rules: Arc<LiveRules>,
        targets: HashMap<String, Arc<dyn Target>>,
        config: &Config,
    ) -> Self {
        let accounts = config.accounts.iter().map(|a| (a.name.clone(), a.attributes.clone())).collect();
        Self { spool, rules, targets, accounts, workflows: HashMap::new() }
    }

    /// The workflow connections rules' `[workflow]` gates may name.
    #[must_use]
    pub fn with_workflows(mut self, workflows: workflow::Engines) -> Self {
        self.workflows = workflows;
        self
    }

    /// Start-up recovery of the pipeline's own states, then `workers` worker tasks until shutdown.
    ///
    /// # Errors
    /// The journal failed during recovery.
    pub async fn start(
        self: Arc<Self>,
        workers: usize,
        stop: CancellationToken,
        tasks: &mut tokio::task::JoinSet<()>,
    ) -> Result<(), crate::spool::journal::Error> {
        let requeued = self.spool.journal().requeue_processing().await?;
        let (moved, removed) = exceptions::finish_pending(&self.spool).await?;
        tracing::info!(requeued, moved, removed, workers, "pipeline recovered");
        tasks.spawn(resubmit::watch(self.spool.clone(), stop.clone()));
        if !self.workflows.is_empty() {
            tasks.spawn(self.clone().watch_workflows(stop.clone()));
        }
        for n in 0..workers.max(1) {
            let (me, stop) = (self.clone(), stop.clone());
            tasks.spawn(async move { me.work(n, stop).await });
        }
        Ok(())
    }

    async fn work(&self, n: usize, stop: CancellationToken) {
        loop {
            if stop.is_cancelled() {
                return;
            }
            match self.spool.journal().claim_next().await {
                Ok(Some(row)) => self.process(row).await,
                Ok(None) => {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = self.spool.received_notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
                Err(e) => {
                    tracing::error!(worker = n, error = %e, "cannot claim work from the journal");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn input(&self, row: &TransferRow) -> rules::Input {
        rules::Input {
            name: row.name.clone(),
            size: row.size.and_then(|s| u64::try_from(s).ok()),
            body: Some(rules::content::Body::Path(self.spool.body(&row.body_path))),
            account: rules::Account {
                name: row.account.clone(),
                attributes: self.accounts.get(&row.account).cloned().unwrap_or_default(),
            },
            transfer: rules::Transfer {
                id: row.id.clone(),
                sha256: row.sha256.clone().unwrap_or_default(),
                received_at: row.received_at.clone().unwrap_or_default(),
                protocol: row.protocol.clone(),
                source: Default::default(),
            },
            sidecar: None,
            overrides: row.overrides.clone(),
        }
    }

    /// Processes one claimed transfer to its outcome.
    pub async fn process(&self, row: TransferRow) {
        let span = tracing::info_span!("process", transfer = %row.id, account = %row.account, channel = %row.channel);
        let _ = tracing::Instrument::instrument(self.process_inner(row), span).await;
    }

    async fn process_inner(&self, row: TransferRow) {
        let rules = self.rules.snapshot();
        let Some(ruleset) = rules.get(&row.channel) else {
            let why = Reason {
                rule: "channel".into(),
                location: String::new(),
                reason: format!("channel `{}` has no rule file, so {} cannot be routed", row.channel, row.name),
                remedy: format!("An administrator must add rules/{}.toml; then resubmit the file.", row.channel),
                details: serde_json::Value::Null,
            };
            return self.except(&row, why).await;
        };
        let Some((sidecar, has_sidecar)) = self.pair_sidecar(&row, ruleset.sidecar()).await else { return };
        let mut input = self.input(&row);
        // Items of source polls carry `transfer.source.*` (uploads have none: skip the lookup).
        if !matches!(row.protocol.as_str(), "sftp" | "ftp" | "ftps" | "hotfolder") {
            let first = row.parent_id.as_deref().unwrap_or(&row.id);
            match self.spool.journal().source_of(first).await {
                Ok(Some(item)) => input.transfer.source = item.field_map(),
                Ok(None) => {}
                Err(e) => {
                    // Without its fields the rules would except it (and the poll move it to its
                    // `rejected` folder at the source): a journal hiccup must not do that.
                    tracing::warn!(error = %e, "cannot read the transfer's source fields; it stays queued");
                    let at = chrono::Utc::now() + chrono::Duration::seconds(30);
                    let _ = self.spool.journal().retry_later(&row.id, at, "its source fields could not be read").await;
                    return;
                }
            }
        }
        input.sidecar = sidecar;
        // Content and archive checks read the body: keep them off the async workers.
        let (snapshot, channel) = (rules.clone(), row.channel.clone());
        let outcome = match tokio::task::spawn_blocking(move || snapshot.get(&channel).map(|r| r.evaluate(&input)))
            .await
        {
            Ok(Some(o)) => o,
            _ => {
                tracing::error!("rule evaluation failed; the transfer stays queued");
                let _ = self
                    .spool
                    .journal()
                    .retry_later(&row.id, chrono::Utc::now() + chrono::Duration::seconds(30), "rule evaluation failed")
                    .await;
                return;
            }
        };
        let (entry, metadata, destination, target, policy, gate) = match outcome {
            Outcome::Excepted(r) => {
                self.audit(&row, "rule_excepted").reason(&r.reason).record(self);
                let why = Reason {
                    rule: r.rule.clone(),
                    location: r.location.clone(),
                    reason: r.reason.clone(),
                    remedy: r.remedy.clone(),
                    details: serde_json::to_value(&r).unwrap_or_default(),
                };
                return self.except(&row, why).await;
            }
            Outcome::Accepted { entry, metadata, destination, target, conflict, workflow } => {
                (entry, metadata, destination, target, conflict, workflow)
            }
        };
        self.audit(&row, "rule_accepted").reason(&format!("entry {entry} → {target}:{destination}")).record(self);
        let Some(t) = self.targets.get(&target) else {
            let why = Reason {
                rule: "target.name".into(),
                location: ruleset.source().display().to_string(),
                reason: format!("the rules name target `{target}`, which is not configured"),
                remedy: "An administrator must add the target to the config; then resubmit.".into(),
                details: serde_json::Value::Null,
            };
            return self.except(&row, why).await;
        };
        if let Some(start) = gate
            && !self.gate(&row, &start, ruleset.retry()).await
        {
            return;
        }
        let doc = Document {
            transfer_id: row.id.clone(),
            body: self.spool.body(&row.body_path),
            destination,
            sha256: row.sha256.clone().unwrap_or_default(),
            size: row.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            account: row.account.clone(),
            channel: row.channel.clone(),
            metadata,
            conflict: conflict(policy),
        };
        match t.deliver(&doc).await {
            Delivery::Delivered(receipt) => {
                let json = serde_json::to_string(&receipt).unwrap_or_default();
                match self.spool.journal().mark_delivered(&row.id, &json).await {
                    Ok(_) => {
                        let _ = std::fs::remove_file(&doc.body);
                        if has_sidecar {
                            self.settle_sidecar(&row, None).await;
                        }
                        tracing::info!(target_name = %receipt.target, path = %receipt.path, "delivered");
                        self.audit(&row, "delivered")
                            .to_path(&format!("{}:{}", receipt.target, receipt.path))
                            .record(self);
                        let ack = serde_json::json!({ "outcome": "delivered", "target": receipt.target, "id": receipt.id,
                                                      "path": receipt.path, "version": receipt.version });
                        self.write_receipt(&row, "ack", ack).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "delivered but not journaled; the retry will find the delivery")
                    }
                }
            }
            Delivery::Retry(reason) => self.retry_or_except(&row, ruleset.retry(), &reason).await,
            Delivery::Except(reason) => {
                let why = Reason {
                    rule: "delivery".into(),
                    location: String::new(),
                    reason: format!("target `{target}` refused {}: {reason}", row.name),
                    remedy: "Check the target's message; fix the file or the target, then resubmit.".into(),
                    details: serde_json::json!({ "target": target, "error": reason }),
                };
                self.except(&row, why).await;
            }
        }
    }

    /// Pairs a file with its sidecar before evaluation (see [`sidecar`]). `None`: the transfer was
    /// put back to wait, or was a sidecar and is handled; `Some((text, attached))`: evaluate with
    /// the sidecar's text, and whether a sidecar is attached to this transfer (only this worker
    /// attaches one to it, so `false` means there is none to settle afterwards).
    async fn pair_sidecar(&self, row: &TransferRow, policy: rules::SidecarPolicy) -> Option<(Option<String>, bool)> {
        if policy.mode == rules::SidecarMode::None {
            return Some((None, false));
        }
        let journal = self.spool.journal();
        let later = |secs| chrono::Utc::now() + chrono::Duration::seconds(secs);
        if let Some(owner) = rules::sidecar_owner(&row.name) {
            let (at, why) = match sidecar::for_sidecar(&self.spool, row, owner, policy).await {
                Ok(sidecar::SidecarStep::Wait(at)) => (at, format!("sidecar waiting for {owner}")),
                Ok(sidecar::SidecarStep::Orphan(reason)) => {
                    let why = Reason {
                        rule: "metadata.sidecar".into(),
                        location: String::new(),
                        reason,
                        remedy: format!("Upload {} first and then {owner}; this copy can be discarded.", row.name),
                        details: serde_json::Value::Null,
                    };
                    self.except(row, why).await;
                    return None;
                }
                Err(e) => (later(5), format!("journal error while pairing the sidecar: {e}")),
            };
            if let Err(e) = journal.defer(&row.id, at, &why).await {
                tracing::error!(error = %e, "cannot defer the sidecar");
            }
            return None;
        }
        let (at, why) = match sidecar::for_file(&self.spool, row, policy).await {
            Ok(sidecar::FileStep::Go(found)) => {
                if let Some(s) = &found {
                    tracing::info!(sidecar = %s.id, "sidecar attached");
                    self.audit(row, "sidecar_attached").reason(&format!("{} (transfer {})", s.name, s.id)).record(self);
                }
                let attached = found.is_some();
                return Some((found.and_then(|s| s.text), attached));
            }
            Ok(sidecar::FileStep::Wait(at)) => {
                (at, format!("waiting for its sidecar {}", rules::sidecar_name(&row.name)))
            }
            Err(e) => (later(5), format!("journal error while pairing the sidecar: {e}")),
        };
        if let Err(e) = journal.defer(&row.id, at, &why).await {
            tracing::error!(error = %e, "cannot defer the transfer");
        }
        None
    }

    /// After a file's outcome, its attached sidecar's body leaves the inbound box: removed, or
    /// beside the file in the exception folder (`excepted_as`).
    async fn settle_sidecar(&self, row: &TransferRow, excepted_as: Option<std::path::PathBuf>) {
        let reads =
            self.rules.snapshot().get(&row.channel).is_some_and(|r| r.sidecar().mode != rules::SidecarMode::None);
        if !reads {
            return;
        }
        match self.spool.journal().attached_sidecar(&row.id).await {
            Ok(Some(s)) => {
                let spool = self.spool.clone();
                let _ = tokio::task::spawn_blocking(move || sidecar::settle(&spool, &s, excepted_as)).await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot look up the attached sidecar"),
        }
    }

    async fn retry_or_except(&self, row: &TransferRow, policy: rules::RetryPolicy, reason: &str) {
        let attempts = u32::try_from(row.delivery_attempts).unwrap_or(u32::MAX).saturating_add(1);
        let age = row
            .received_at
            .as_deref()
            .and_then(|r| chrono::DateTime::parse_from_rfc3339(r).ok())
            .map(|r| chrono::Utc::now().signed_duration_since(r).to_std().unwrap_or_default())
            .unwrap_or_default();
        if attempts < policy.attempts && age < policy.max_age {
            let base = policy.backoff.saturating_mul(1u32 << (attempts - 1).min(16));
            let jitter = base.mul_f64(rand::random::<f64>() * 0.5);
            let delay = (base + jitter).min(policy.max_age);
            let at = chrono::Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            tracing::warn!(attempt = attempts, ?delay, reason, "delivery failed transiently; will retry");
            self.audit(row, "delivery_retry").reason(reason).record(self);
            if let Err(e) = self.spool.journal().retry_later(&row.id, at, reason).await {
                tracing::error!(error = %e, "cannot schedule the retry");
            }
        } else {
            let why = Reason {
                rule: "target.retry".into(),
                location: String::new(),
                reason: format!("delivery of {} failed {attempts} times; last error: {reason}", row.name),
                remedy: "The target kept failing. When it is back, resubmit the file.".into(),
                details: serde_json::json!({ "attempts": attempts, "error": reason }),
            };
            self.except(row, why).await;
        }
    }

    async fn except(&self, row: &TransferRow, why: Reason) {
        let summary = why.summary();
        match self.spool.journal().mark_excepted(&row.id, &summary).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot journal the exception; the transfer will be processed again");
                return;
            }
        }
        let spool = self.spool.clone();
        let (r, w) = (row.clone(), why.clone());
        match tokio::task::spawn_blocking(move || exceptions::place(&spool, &r, &w)).await {
            Ok(Ok(dest)) => {
                tracing::warn!(path = %dest.display(), reason = %summary, "excepted");
                self.settle_sidecar(row, Some(dest)).await;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot move the file to its exception folder; retried at start-up")
            }
            Err(e) => tracing::error!(error = %e, "exception task failed"),
        }
        self.audit(row, "excepted").reason(&summary).record(self);
        let nack =
            serde_json::json!({ "outcome": "excepted", "reason": why.reason, "rule": why.rule, "remedy": why.remedy });
        self.write_receipt(row, "nack", nack).await;
    }

    /// Writes `<name>.ack.json` / `<name>.nack.json` into the sender's outbound box under
    /// `receipts/`, if the channel's rules ask for receipts. Written whole (temporary name, then
    /// rename), so a partner never reads half a receipt; a later outcome of the same name replaces it.
    async fn write_receipt(&self, row: &TransferRow, kind: &str, mut body: serde_json::Value) {
        if !self.rules.snapshot().get(&row.channel).is_some_and(|r| r.receipts()) {
            return;
        }
        body["transfer_id"] = row.id.clone().into();
        body["file"] = row.name.clone().into();
        body["sha256"] = row.sha256.clone().into();
        body["received_at"] = row.received_at.clone().into();
        body["attempt"] = row.attempt.into();
        let dir = self.spool.outbound_dir(&row.account).join("receipts");
        let other = if kind == "ack" { "nack" } else { "ack" };
        let (name, other) = (format!("{}.{kind}.json", row.name), format!("{}.{other}.json", row.name));
        let result = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(format!(".wharf-tmp-{name}"));
            std::fs::write(&tmp, serde_json::to_vec_pretty(&body).map_err(std::io::Error::other)?)?;
            std::fs::rename(&tmp, dir.join(&name))?;
            // The newest outcome is the one that counts: drop an older receipt of the other kind.
            let _ = std::fs::remove_file(dir.join(other));
            Ok(())
        })
        .await;
        if !matches!(result, Ok(Ok(()))) {
            tracing::error!(?result, "cannot write the receipt");
        }
    }

    fn audit(&self, row: &TransferRow, kind: &str) -> Event {
        let mut e = Event::new(kind).account(&row.account).protocol(&row.protocol).path(&row.name).transfer(&row.id);
        if let Some(s) = &row.sha256 {
            e = e.sha256(s);
        }
        e
    }
}

/// Lets a built event be recorded in one chain: `self.audit(row, "delivered").reason(..).record(self)`.
trait Record {
    fn record(self, pipeline: &Pipeline);
}

impl Record for Event {
    fn record(self, pipeline: &Pipeline) {
        pipeline.spool.audit().record(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Audit;
    use crate::spool::{Origin, journal::State};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Fails with `Retry` as long as `failures` is above zero.
    struct Flaky {
        failures: AtomicUsize,
        inner: targets::fs::FsTarget,
    }

    #[async_trait::async_trait]
    impl Target for Flaky {
        fn name(&self) -> &str {
            "demo-ecm"
        }
        async fn deliver(&self, doc: &Document) -> Delivery {
            if self.failures.load(Ordering::SeqCst) > 0 {
                self.failures.fetch_sub(1, Ordering::SeqCst);
                return Delivery::Retry("503 Service Unavailable".into());
            }
            self.inner.deliver(doc).await
        }
    }

    async fn setup(failures: usize) -> (tempfile::TempDir, Arc<Spool>, Pipeline) {
        let dir = tempfile::tempdir().expect("tmp");
        let text = format!(
            "[spool]\nroot = \"spool\"\n[sftp]\nlisten = \"127.0.0.1:0\"\nhost_key = \"k\"\n[pipeline]\nrules = \"{}/rules\"\n\
             [[targets]]\nname = \"demo-ecm\"\ntype = \"fs\"\nroot = \"ecm\"\n\
             [[accounts]]\nname = \"acme\"\nauthorized_keys = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGlC6n8Ze1mEHxkZQF0dU9a4y1m9TZkP4Q1mS3fJ3kQa x\"\nattributes = {{ partner_id = \"ACME\" }}\n",
            env!("CARGO_MANIFEST_DIR")
        );
        let config = Config::parse(&dir.path().join("w.toml"), &text).expect("config");
        let audit = Arc::new(Audit::open(&config.spool.audit_log).expect("audit"));
        let spool = Spool::open(&config.spool, audit).await.expect("spool");
        let rules = LiveRules::new(crate::gateway::load_rules(&config).expect("rules").expect("pipeline"));
        let flaky: Arc<dyn Target> = Arc::new(Flaky {
            failures: AtomicUsize::new(failures),
            inner: targets::fs::FsTarget::new("demo-ecm", dir.path().join("ecm")),
        });
        let pipeline = Pipeline::new(spool.clone(), rules, [("demo-ecm".to_string(), flaky)].into(), &config);
        let origin = Origin { account: "acme".into(), protocol: "sftp", remote_addr: None };
        let up = spool.begin_transfer("invoices", "invoices", "INV-ACME-2026-0001.pdf", &origin).await.expect("begin");
        up.write_at(0, b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n".to_vec()).await.expect("write");
        up.commit().await.expect("commit");
        (dir, spool, pipeline)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn transient_failures_back_off_and_then_deliver() {
        let (dir, spool, p) = setup(2).await;
        for expected_attempts in 1..=2 {
            let row = spool.journal().claim_next().await.expect("claim").expect("a transfer");
            p.process(row).await;
            let row = spool.journal().in_state(State::Received).await.expect("rows").pop().expect("back to received");
            assert_eq!(row.delivery_attempts, expected_attempts);
            assert!(row.not_before.is_some(), "backed off");
            assert!(row.reason.as_deref().is_some_and(|r| r.contains("503")));
            assert!(spool.journal().claim_next().await.expect("claim").is_none(), "not due before its backoff");
            spool.journal().clear_backoff().await.expect("clear");
        }
        let row = spool.journal().claim_next().await.expect("claim").expect("due again");
        p.process(row).await;
        assert_eq!(spool.journal().in_state(State::Delivered).await.expect("rows").len(), 1);
        assert!(dir.path().join("ecm/2026/ACME/INV-ACME-2026-0001.pdf").exists());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_target_that_keeps_failing_ends_in_exceptions() {
        let (dir, spool, p) = setup(usize::MAX).await;
        // invoices.toml allows 5 attempts in all.
        for _ in 0..5 {
            let row = spool.journal().claim_next().await.expect("claim").expect("a transfer");
            p.process(row).await;
            spool.journal().clear_backoff().await.expect("clear");
        }
        let rows = spool.journal().in_state(State::Excepted).await.expect("rows");
        assert_eq!(rows.len(), 1);
        assert!(rows[0].reason.as_deref().is_some_and(|r| r.contains("failed 5 times")), "{:?}", rows[0].reason);
        let folder = dir.path().join("spool/exceptions/invoices/acme");
        assert!(folder.join("INV-ACME-2026-0001.pdf").exists());
        assert!(folder.join("INV-ACME-2026-0001.pdf.error.txt").exists());
    }
}
