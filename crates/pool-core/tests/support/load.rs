//! [`Load`]: tasks that acquire, run one unit of work and release in a loop, timing every
//! acquire and recording every outcome, until stopped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_core::future::BoxFuture;
use pool_core::{Connector, Pool};
use sqlx::PgConnection;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One unit of work on a checked-out connection.
pub type Work = for<'c> fn(&'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>>;

/// `SELECT 1`.
pub fn select_one(conn: &mut PgConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(conn).await?;
        assert_eq!(one, 1);
        Ok(())
    })
}

/// One write: a row into the test's `writes` table (whose columns all have defaults).
pub fn insert_write(conn: &mut PgConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        sqlx::query("INSERT INTO writes DEFAULT VALUES")
            .execute(conn)
            .await
            .map(drop)
    })
}

#[derive(Debug, Clone)]
enum Outcome {
    Ok,
    AcquireFailed(String),
    WorkFailed(String),
}

#[derive(Debug, Clone)]
struct Op {
    started: Instant,
    ended: Instant,
    outcome: Outcome,
}

#[derive(Default)]
struct Shared {
    ops: Mutex<Vec<Op>>,
    max_acquire: Mutex<Duration>,
}

/// Load on a pool, running until [`stop`](Load::stop).
pub struct Load {
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    /// `tasks` tasks running `SELECT 1` on `pool`.
    pub fn start<C: super::PgLike>(pool: &Pool<C>, tasks: usize) -> Self {
        Self::start_with(pool, tasks, select_one)
    }

    /// `tasks` tasks running `work` on `pool`. A failed op is followed by a 5 ms pause, as a
    /// service would retry.
    pub fn start_with<C: super::PgLike>(pool: &Pool<C>, tasks: usize, work: Work) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::default());
        let tasks = (0..tasks)
            .map(|_| {
                let pool = pool.clone();
                let stop = Arc::clone(&stop);
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    // Ordering: a stop flag; nothing else is published through it.
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let acquired = pool.acquire().await;
                        let waited = started.elapsed();
                        {
                            let mut max = shared.max_acquire.lock().unwrap();
                            *max = (*max).max(waited);
                        }
                        let outcome = match acquired {
                            Err(error) => Outcome::AcquireFailed(super::error_text(&error)),
                            Ok(mut conn) => match conn.run(work).await {
                                Ok(()) => Outcome::Ok,
                                Err(error) => Outcome::WorkFailed(super::error_text(&error)),
                            },
                        };
                        let failed = !matches!(outcome, Outcome::Ok);
                        shared.ops.lock().unwrap().push(Op {
                            started,
                            ended: Instant::now(),
                            outcome,
                        });
                        if failed {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        } else {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            shared,
            tasks,
        }
    }

    /// Successful ops so far.
    pub fn ok_count(&self) -> usize {
        let ops = self.shared.ops.lock().unwrap();
        ops.iter()
            .filter(|o| matches!(o.outcome, Outcome::Ok))
            .count()
    }

    /// Waits until an op that started at or after `since` succeeded, up to `limit`; returns
    /// when it ended.
    pub async fn first_ok_since(&self, since: Instant, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(at) = self.report_now().first_ok_since(since) {
                return Some(at);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn report_now(&self) -> LoadReport {
        LoadReport {
            ops: self.shared.ops.lock().unwrap().clone(),
            max_acquire: *self.shared.max_acquire.lock().unwrap(),
        }
    }

    /// Stops the tasks (each finishes its current op) and reports.
    pub async fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        for task in std::mem::take(&mut self.tasks) {
            task.await.expect("a load task panicked");
        }
        self.report_now()
    }
}

/// Every op a [`Load`] ran.
#[derive(Debug)]
pub struct LoadReport {
    ops: Vec<Op>,
    /// The longest any acquire took, whatever its outcome.
    pub max_acquire: Duration,
}

impl LoadReport {
    /// Ops that succeeded.
    pub fn ok(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| matches!(o.outcome, Outcome::Ok))
            .count()
    }

    /// Error texts of failed acquires.
    pub fn acquire_errors(&self) -> Vec<&str> {
        self.ops
            .iter()
            .filter_map(|o| match &o.outcome {
                Outcome::AcquireFailed(e) => Some(e.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Error texts of work that failed on an acquired connection.
    pub fn work_errors(&self) -> Vec<&str> {
        self.ops
            .iter()
            .filter_map(|o| match &o.outcome {
                Outcome::WorkFailed(e) => Some(e.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Every error text.
    pub fn errors(&self) -> Vec<&str> {
        let mut all = self.acquire_errors();
        all.extend(self.work_errors());
        all
    }

    /// Failed ops that started at or after `since`.
    pub fn failures_since(&self, since: Instant) -> usize {
        self.ops
            .iter()
            .filter(|o| o.started >= since && !matches!(o.outcome, Outcome::Ok))
            .count()
    }

    /// When the last failed op ended.
    pub fn last_failure(&self) -> Option<Instant> {
        self.ops
            .iter()
            .filter(|o| !matches!(o.outcome, Outcome::Ok))
            .map(|o| o.ended)
            .max()
    }

    /// When the first op that started at or after `since` and succeeded ended.
    pub fn first_ok_since(&self, since: Instant) -> Option<Instant> {
        self.ops
            .iter()
            .filter(|o| o.started >= since && matches!(o.outcome, Outcome::Ok))
            .map(|o| o.ended)
            .min()
    }

    /// A few distinct error texts, for messages.
    pub fn sample_errors(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for e in self.errors() {
            if seen.len() < 5 && !seen.contains(&e) {
                seen.push(e);
            }
        }
        seen
    }

    /// Asserts every acquire returned within `limit` plus [`SLACK`](super::SLACK).
    #[track_caller]
    pub fn assert_acquires_bounded(&self, limit: Duration) {
        assert!(
            self.max_acquire <= limit + super::SLACK,
            "an acquire took {:?}, past its acquire_timeout {limit:?} plus slack",
            self.max_acquire
        );
    }
}
