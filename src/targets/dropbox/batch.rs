//! Batched commits: closed upload sessions wait a moment for company, then up to `max` of them
//! are committed with one `upload_session/finish_batch_v2` (one write for Dropbox's namespace
//! lock instead of one per file). Each caller gets its own entry's outcome, in order.

use super::client::{ApiError, Client, tag_path};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OnceCell, mpsc, oneshot};

struct Pending {
    entry: Value,
    reply: oneshot::Sender<Result<Value, ApiError>>,
}

/// The commit queue of one target.
pub struct Batcher {
    client: Arc<Client>,
    max: usize,
    wait: Duration,
    queue: OnceCell<mpsc::Sender<Pending>>,
}

impl Batcher {
    /// A queue committing at most `max` sessions per call, waiting up to `wait` for them.
    pub fn new(client: Arc<Client>, max: usize, wait: Duration) -> Self {
        Self { client, max: max.max(1), wait, queue: OnceCell::new() }
    }

    /// Commits one closed session (`{"cursor":..,"commit":..}`); returns its file metadata.
    ///
    /// # Errors
    /// The entry's failure (its tag path as an endpoint error) or the call's.
    pub async fn commit(&self, entry: Value) -> Result<Value, ApiError> {
        if self.max == 1 {
            return self
                .client
                .rpc("files/upload_session/finish_batch_v2", &json!({ "entries": [entry] }))
                .await
                .and_then(|reply| outcome(reply["entries"].get(0)));
        }
        let tx = self
            .queue
            .get_or_init(|| async {
                let (tx, rx) = mpsc::channel(self.max * 4);
                tokio::spawn(run(self.client.clone(), rx, self.max, self.wait));
                tx
            })
            .await;
        let (reply, answer) = oneshot::channel();
        tx.send(Pending { entry, reply }).await.map_err(|_| ApiError::Transient("the commit queue stopped".into()))?;
        answer.await.map_err(|_| ApiError::Transient("the commit queue stopped".into()))?
    }
}

fn outcome(entry: Option<&Value>) -> Result<Value, ApiError> {
    let Some(e) = entry else {
        return Err(ApiError::Transient("finish_batch_v2 answered fewer entries than it was given".into()));
    };
    match e[".tag"].as_str() {
        Some("success") => Ok(e.clone()),
        Some("failure") => {
            let failure = e["failure"].clone();
            Err(ApiError::Endpoint { tag: tag_path(&failure), error: failure })
        }
        _ => Err(ApiError::Transient(format!("finish_batch_v2: unexpected entry {e}"))),
    }
}

async fn run(client: Arc<Client>, mut rx: mpsc::Receiver<Pending>, max: usize, wait: Duration) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + wait;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(p)) => batch.push(p),
                _ => break,
            }
        }
        let entries: Vec<Value> = batch.iter().map(|p| p.entry.clone()).collect();
        tracing::debug!(files = entries.len(), "committing a batch");
        // One batch at a time: batches are writes too, and the namespace takes one at a time.
        // Sessions of the next batch queue (and keep uploading) meanwhile.
        match client.rpc("files/upload_session/finish_batch_v2", &json!({ "entries": entries })).await {
            Ok(reply) => {
                for (i, p) in batch.into_iter().enumerate() {
                    let _ = p.reply.send(outcome(reply["entries"].get(i)));
                }
            }
            Err(e) => {
                for p in batch {
                    let _ = p.reply.send(Err(e.clone()));
                }
            }
        }
    }
}
