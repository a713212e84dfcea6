//! Watching `/health/ready` while the demo runs, so a reader sees it fail during the restart
//! and pass again after it (the same report the HTTP endpoint serves).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pool_health::HealthChecker;

/// How often the readiness report is taken: often enough to catch a restart of a second.
const EVERY: Duration = Duration::from_millis(200);

/// The readiness watcher: a task taking the report, and the changes it saw.
pub(crate) struct Readiness {
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Seen {
    /// Changes not shown yet.
    pending: Vec<String>,
    /// Every status in order, with when it began (`pass 0.2s → fail 2.6s → pass 3.9s`).
    history: Vec<String>,
}

impl Readiness {
    /// Starts watching `checker`; times are counted from `started`.
    pub(crate) fn watch(checker: HealthChecker, started: Instant) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let task = tokio::spawn({
            let seen = Arc::clone(&seen);
            async move {
                let mut last = None;
                let mut ticker = tokio::time::interval(EVERY);
                loop {
                    ticker.tick().await;
                    let report = checker.ready().await;
                    let status = report.status().to_string();
                    if last.as_ref() == Some(&status) {
                        continue;
                    }
                    let at = started.elapsed().as_secs_f64();
                    let code = report.status().http_code();
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    seen.pending.push(format!(
                        "/health/ready is now {status} (HTTP {code}) at {at:.1}s"
                    ));
                    seen.history.push(format!("{status} {at:.1}s"));
                    last = Some(status);
                }
            }
        });
        Self { seen, task }
    }

    /// The changes since the last call, one line each.
    pub(crate) fn changes(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().pending)
    }

    /// Every status seen, in order.
    pub(crate) fn history(&self) -> String {
        let history = &self.lock().history;
        if history.is_empty() {
            "never answered".to_owned()
        } else {
            history.join(" → ")
        }
    }

    /// Stops watching.
    pub(crate) fn stop(&self) {
        self.task.abort();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}
