//! Live numbers for one pool: acquire waits (from the pool's observer), query outcomes, and
//! the recovery after the restart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pool_core::{CloseReason, PoolObserver, TimeoutPhase};

/// Live numbers for one pool. Forwards pool events to another observer (the metrics).
#[derive(Debug)]
pub(crate) struct Live {
    forward: Option<Arc<dyn PoolObserver>>,
    waits: Mutex<Vec<Duration>>,
    all_waits: Mutex<Vec<Duration>>,
    ok: AtomicU64,
    errors: AtomicU64,
    recovery: Mutex<Recovery>,
}

#[derive(Debug, Default)]
struct Recovery {
    restart_at: Option<Instant>,
    back_at: Option<Instant>,
    errors_after_restart: u64,
    last_error: Option<String>,
    first_ok_after_restart: Option<Duration>,
}

impl Recovery {
    /// "; last error: …" when a query failed, for the recovery line.
    fn last_error_note(&self) -> String {
        self.last_error
            .as_deref()
            .map(|e| format!("; last error: {}", first_line(e)))
            .unwrap_or_default()
    }
}

impl Live {
    pub(crate) fn new(forward: Option<Arc<dyn PoolObserver>>) -> Self {
        Self {
            forward,
            waits: Mutex::default(),
            all_waits: Mutex::default(),
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            recovery: Mutex::default(),
        }
    }

    fn recovery(&self) -> std::sync::MutexGuard<'_, Recovery> {
        self.recovery.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn mark_restart(&self) {
        self.recovery().restart_at = Some(Instant::now());
    }

    pub(crate) fn mark_back(&self) {
        self.recovery().back_at = Some(Instant::now());
    }

    pub(crate) fn ok(&self) {
        // Ordering: independent counters, read for display only.
        self.ok.fetch_add(1, Ordering::Relaxed);
        let mut recovery = self.recovery();
        if let (Some(back), None) = (recovery.back_at, recovery.first_ok_after_restart) {
            recovery.first_ok_after_restart = Some(back.elapsed());
        }
    }

    pub(crate) fn error(&self, error: &anyhow::Error) {
        // Ordering: independent counters, read for display only.
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut recovery = self.recovery();
        if recovery.restart_at.is_some() && recovery.first_ok_after_restart.is_none() {
            recovery.errors_after_restart += 1;
        }
        recovery.last_error = Some(error.to_string());
    }

    pub(crate) fn status_line(&self, name: &str, stats: &pool_core::PoolStats) -> String {
        let window = std::mem::take(&mut *self.waits.lock().unwrap_or_else(|e| e.into_inner()));
        self.all_waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(&window);
        format!(
            "{name:<8} total {:>2}  idle {:>2}  in use {:>2}  waiting {:>2} | acquire p50 {:>8} p99 {:>8} | queries ok {:>6} failed {:>4}",
            stats.total,
            stats.idle,
            stats.in_use,
            stats.waiting,
            percentile(&window, 0.50),
            percentile(&window, 0.99),
            self.ok.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn recovery_line(&self, name: &str) -> String {
        let recovery = self.recovery();
        match recovery.first_ok_after_restart {
            Some(after) => format!(
                "pool {name:<8} served again {:.0}ms after PostgreSQL was back ({} queries failed on broken connections meanwhile{})",
                after.as_secs_f64() * 1000.0,
                recovery.errors_after_restart,
                recovery.last_error_note()
            ),
            None => format!(
                "pool {name:<8} did not serve after the restart ({} queries failed{})",
                recovery.errors_after_restart,
                recovery.last_error_note()
            ),
        }
    }

    pub(crate) fn summary_line(&self, name: &str, stats: &pool_core::PoolStats) -> String {
        let mut waits = self
            .all_waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        waits.sort_unstable();
        format!(
            "pool {name:<8} {} acquires ({} waited), {} connections opened, {} connect failures, {} closed; acquire p50 {} p99 {}",
            stats.acquired,
            stats.waited,
            stats.created,
            stats.connect_failures,
            stats.closed.total(),
            percentile(&waits, 0.50),
            percentile(&waits, 0.99),
        )
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

impl PoolObserver for Live {
    fn on_connect(&self, elapsed: Duration) {
        if let Some(forward) = &self.forward {
            forward.on_connect(elapsed);
        }
    }

    fn on_connect_error(&self) {
        if let Some(forward) = &self.forward {
            forward.on_connect_error();
        }
    }

    fn on_acquire(&self, wait: Duration) {
        self.waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(wait);
        if let Some(forward) = &self.forward {
            forward.on_acquire(wait);
        }
    }

    fn on_release(&self, used: Duration) {
        if let Some(forward) = &self.forward {
            forward.on_release(used);
        }
    }

    fn on_remove(&self, reason: CloseReason) {
        if let Some(forward) = &self.forward {
            forward.on_remove(reason);
        }
    }

    fn on_timeout(&self, phase: TimeoutPhase) {
        if let Some(forward) = &self.forward {
            forward.on_timeout(phase);
        }
    }

    fn on_leak(&self, location: &'static std::panic::Location<'static>, held: Duration) {
        if let Some(forward) = &self.forward {
            forward.on_leak(location, held);
        }
    }
}

/// The `q` quantile of `samples` (sorted here), formatted; `-` when there are none.
fn percentile(samples: &[Duration], q: f64) -> String {
    if samples.is_empty() {
        return "-".to_owned();
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    // The nearest-rank method: the smallest sample with at least q of them at or below it.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    let value = sorted[rank - 1];
    if value < Duration::from_millis(1) {
        format!("{}µs", value.as_micros())
    } else {
        format!("{:.1}ms", value.as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 0.50), "50.0ms");
        assert_eq!(percentile(&samples, 0.99), "99.0ms");
        assert_eq!(percentile(&[Duration::from_micros(40)], 0.99), "40µs");
        assert_eq!(percentile(&[], 0.5), "-");
    }
}
