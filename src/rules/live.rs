//! The rules in force, replaceable while the gateway runs.
//!
//! [`LiveRules::watch`] reloads the rule folder (rule files and `tables/`) when anything in it
//! changes. A reload that fails validation keeps the previous rules and logs every problem, so a
//! broken edit never stops the gateway or changes how it decides. Readers take a
//! [`LiveRules::snapshot`] and use it for one whole decision.

use super::Rules;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The current rules, swapped whole on a successful reload.
pub struct LiveRules {
    current: RwLock<Arc<Rules>>,
}

impl LiveRules {
    /// Starts with `rules`.
    pub fn new(rules: Rules) -> Arc<Self> {
        Arc::new(Self { current: RwLock::new(Arc::new(rules)) })
    }

    /// The rules in force now.
    pub fn snapshot(&self) -> Arc<Rules> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts new rules in force.
    pub fn replace(&self, rules: Rules) {
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(rules),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(rules),
        }
    }

    /// Watches `dir` and reloads with `load` (which also checks the rules against the config)
    /// after changes settle, until `stop`. Returns once the watch is set up.
    ///
    /// # Errors
    /// The folder cannot be watched.
    pub fn watch<F>(self: &Arc<Self>, dir: PathBuf, load: F, stop: CancellationToken) -> Result<(), notify::Error>
    where
        F: Fn() -> Result<Rules, String> + Send + Sync + 'static,
    {
        use notify::{RecursiveMode, Watcher};
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if ev.is_ok_and(|e| !e.kind.is_access()) {
                let _ = tx.send(());
            }
        })?;
        watcher.watch(&dir, RecursiveMode::Recursive)?;
        let me = self.clone();
        let load = Arc::new(load);
        tokio::spawn(async move {
            let _watcher = watcher; // dropped (and the watch removed) when this task ends
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    got = rx.recv() => if got.is_none() { return },
                }
                // Let an editor's burst of writes settle, then reload once.
                tokio::time::sleep(Duration::from_millis(300)).await;
                while rx.try_recv().is_ok() {}
                let load = load.clone();
                match tokio::task::spawn_blocking(move || load()).await {
                    Ok(Ok(rules)) => {
                        let n = rules.channels().count();
                        me.replace(rules);
                        tracing::info!(dir = %dir.display(), channels = n, "rules reloaded");
                    }
                    Ok(Err(problems)) => {
                        tracing::error!(dir = %dir.display(), "rules not reloaded; the previous rules stay in force:\n{problems}");
                    }
                    Err(e) => tracing::error!(error = %e, "rules reload failed"),
                }
            }
        });
        Ok(())
    }
}
