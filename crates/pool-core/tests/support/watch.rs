//! [`Watch`]: while a fault runs, checks `idle + in_use == total <= max` every 10 ms and
//! counts the pool's server connections (by `application_name`) every 100 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pool_core::{Connector, Pool};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::task::JoinHandle;

use super::count_backends;

/// What a [`Watch`] saw.
#[derive(Debug, Default)]
pub struct WatchReport {
    /// Stats snapshots taken.
    pub samples: u64,
    /// Snapshots that broke `idle + in_use == total <= max`.
    pub violations: Vec<String>,
    /// The most server connections of the pool seen at once.
    pub max_backends: i64,
    /// Server counts taken (the server may be down or frozen for some).
    pub backend_samples: u64,
}

impl WatchReport {
    /// Asserts the counts always held and the server never saw more than `max` connections
    /// of this pool.
    #[track_caller]
    pub fn assert_bounded(&self, max: u32) {
        assert!(
            self.violations.is_empty(),
            "pool counts broke idle + in_use == total <= max: {:?}",
            self.violations
        );
        assert!(self.samples > 0 && self.backend_samples > 0, "{self:?}");
        assert!(
            self.max_backends <= i64::from(max),
            "the server saw {} connections of a pool of max {max}",
            self.max_backends
        );
    }
}

/// Runs until [`finish`](Watch::finish).
pub struct Watch {
    stop: Arc<AtomicBool>,
    stats: JoinHandle<(u64, Vec<String>)>,
    server: JoinHandle<(i64, u64)>,
}

impl Watch {
    /// Watches `pool`, and its connections on the server `admin` reaches.
    pub fn start<C: Connector>(pool: &Pool<C>, admin: PgConnectOptions, app: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = {
            let pool = pool.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let (mut samples, mut violations) = (0, Vec::new());
                // Ordering: a stop flag; nothing else is published through it.
                while !stop.load(Ordering::Relaxed) {
                    let s = pool.stats();
                    samples += 1;
                    if s.idle + s.in_use != s.total || s.total > s.max {
                        violations.push(format!("{s:?}"));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (samples, violations)
            })
        };
        let server = {
            let stop = Arc::clone(&stop);
            let app = app.to_owned();
            tokio::spawn(async move {
                let (mut max, mut samples) = (0, 0);
                let mut conn: Option<PgConnection> = None;
                while !stop.load(Ordering::Relaxed) {
                    let sample = async {
                        if conn.is_none() {
                            conn = Some(PgConnection::connect_with(&admin).await?);
                        }
                        let c = conn.as_mut().expect("connected above");
                        count_backends(c, &app).await
                    };
                    match tokio::time::timeout(Duration::from_secs(2), sample).await {
                        Ok(Ok(n)) => {
                            max = max.max(n);
                            samples += 1;
                        }
                        // Down or frozen: count again on a fresh connection later.
                        _ => conn = None,
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if let Some(conn) = conn {
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
                }
                (max, samples)
            })
        };
        Watch {
            stop,
            stats,
            server,
        }
    }

    /// Stops watching and reports.
    pub async fn finish(self) -> WatchReport {
        self.stop.store(true, Ordering::Relaxed);
        let (samples, violations) = self.stats.await.expect("stats watcher");
        let (max_backends, backend_samples) = self.server.await.expect("server watcher");
        WatchReport {
            samples,
            violations,
            max_backends,
            backend_samples,
        }
    }
}
