//! [`Timeline`]: the pool's counts sampled every few milliseconds, kept only when they
//! change, so a check that fails can show what the pool was doing meanwhile: connects in
//! flight, waiters, connections opened and failed, acquires timed out.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pool_core::{Connector, Pool, PoolStats};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often the counts are sampled.
const EVERY: Duration = Duration::from_millis(10);

/// Samples a pool's counts until [`finish`](Timeline::finish).
pub struct Timeline {
    pool_name: String,
    started: Instant,
    std_started: std::time::Instant,
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<(Duration, PoolStats)>>,
}

/// The counts a timeline shows (the closed counts only as their sum).
fn key(s: &PoolStats) -> [u64; 9] {
    [
        u64::from(s.total),
        u64::from(s.idle),
        u64::from(s.in_use),
        u64::from(s.connecting),
        u64::from(s.waiting),
        s.created,
        s.connect_failures,
        s.acquire_timeouts,
        s.acquired,
    ]
}

impl Timeline {
    /// Starts sampling `pool`.
    pub fn start<C: Connector>(pool: &Pool<C>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let task = {
            let pool = pool.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut samples: Vec<(Duration, PoolStats)> = Vec::new();
                loop {
                    let s = pool.stats();
                    if samples.last().is_none_or(|(_, last)| key(last) != key(&s)) {
                        samples.push((started.elapsed(), s));
                    }
                    // Ordering: a stop flag; nothing else is published through it.
                    if stop.load(Ordering::Relaxed) {
                        return samples;
                    }
                    tokio::time::sleep(EVERY).await;
                }
            })
        };
        Timeline {
            pool_name: pool.name().to_owned(),
            started,
            std_started: std::time::Instant::now(),
            stop,
            task,
        }
    }

    /// Stops sampling; returns the timeline, then the pool's log lines since the start.
    pub async fn finish(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.task.await.unwrap_or_default();
        let mut text = format!(
            "pool {:?} counts over {:?} (sampled every {EVERY:?}, shown when they change):\n",
            self.pool_name,
            self.started.elapsed()
        );
        for (at, s) in samples {
            let _ = writeln!(
                text,
                "  +{:.3}s total={} idle={} in_use={} connecting={} waiting={} | created={} \
                 connect_failures={} acquire_timeouts={} acquired={} closed={}",
                at.as_secs_f64(),
                s.total,
                s.idle,
                s.in_use,
                s.connecting,
                s.waiting,
                s.created,
                s.connect_failures,
                s.acquire_timeouts,
                s.acquired,
                s.closed.total(),
            );
        }
        let needle = format!("pool={}", self.pool_name);
        let lines = super::recent_pool_lines(self.std_started, &needle);
        let _ = writeln!(text, "its log lines meanwhile ({}):", lines.len());
        for line in lines {
            let _ = writeln!(text, "  {line}");
        }
        text
    }
}
