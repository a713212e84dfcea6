//! # Implementation details
//!
//! Wraps the OTLP exporter so that (1) it always runs inside the service's tokio runtime
//! (the SDK's periodic reader drives exports from its own OS thread with a plain
//! `block_on`, and tonic's and reqwest's I/O and timers need a runtime context), and
//! (2) failed exports are reported through `tracing`, rate-limited, instead of through the
//! SDK's internal log (off in this build).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use tokio::runtime::Handle;

/// Never more than one warning per this long, however short the export interval.
const MIN_WARNING_GAP: Duration = Duration::from_secs(60);

pub(crate) struct ReportingExporter<E> {
    inner: E,
    runtime: Option<Handle>,
    /// Where exports go, for the log (no credentials: header values are never logged).
    target: String,
    /// Removes the endpoint's credentials and query string from logged errors.
    scrub: crate::pipeline::Scrub,
    warning_gap: Duration,
    state: Mutex<FailureState>,
}

#[derive(Debug, Default)]
struct FailureState {
    /// Failed exports since the last success.
    failures: u64,
    /// Failed exports not warned about since the last warning.
    unreported: u64,
    last_warning: Option<Instant>,
}

/// What to log after an export.
#[derive(Debug, PartialEq, Eq)]
enum Report {
    Nothing,
    Warn { failures: u64, unreported: u64 },
    Recovered { failures: u64 },
}

impl FailureState {
    fn record(&mut self, ok: bool, now: Instant, gap: Duration) -> Report {
        if ok {
            let failures = std::mem::take(&mut self.failures);
            self.unreported = 0;
            self.last_warning = None;
            return if failures > 0 {
                Report::Recovered { failures }
            } else {
                Report::Nothing
            };
        }
        self.failures += 1;
        let due = self
            .last_warning
            .is_none_or(|last| now.duration_since(last) >= gap);
        if due {
            self.last_warning = Some(now);
            let unreported = std::mem::take(&mut self.unreported);
            Report::Warn {
                failures: self.failures,
                unreported,
            }
        } else {
            self.unreported += 1;
            Report::Nothing
        }
    }
}

impl<E> ReportingExporter<E> {
    pub(crate) fn new(inner: E, target: String, interval: Duration) -> Self {
        ReportingExporter {
            inner,
            runtime: Handle::try_current().ok(),
            target,
            scrub: crate::pipeline::Scrub::default(),
            warning_gap: interval.max(MIN_WARNING_GAP),
            state: Mutex::new(FailureState::default()),
        }
    }

    /// Logs errors with `scrub` applied: HTTP client errors quote the URL they failed on.
    pub(crate) fn scrubbing(mut self, scrub: crate::pipeline::Scrub) -> Self {
        self.scrub = scrub;
        self
    }

    fn report(&self, result: &OTelSdkResult) {
        let report = {
            // A poisoned lock only loses the rate-limit state; never panic on the export path.
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.record(result.is_ok(), Instant::now(), self.warning_gap)
        };
        match (report, result) {
            (
                Report::Warn {
                    failures,
                    unreported,
                },
                Err(error),
            ) => tracing::warn!(
                target: "pool_metrics",
                collector = %self.target,
                error = %self.scrub.apply(&error.to_string()),
                failed_exports = failures,
                suppressed_warnings = unreported,
                "metrics export failed; the pools keep serving and the next export retries",
            ),
            (Report::Recovered { failures }, _) => tracing::info!(
                target: "pool_metrics",
                collector = %self.target,
                failed_exports = failures,
                "metrics export recovered",
            ),
            _ => {}
        }
    }
}

impl<E> std::fmt::Debug for ReportingExporter<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportingExporter")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl<E: PushMetricExporter> PushMetricExporter for ReportingExporter<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = match &self.runtime {
            Some(handle) => {
                InRuntime {
                    handle,
                    future: Box::pin(self.inner.export(metrics)),
                }
                .await
            }
            None => self.inner.export(metrics).await,
        };
        self.report(&result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// Polls a future with the tokio runtime entered, wherever the poll happens.
struct InRuntime<'a, F> {
    handle: &'a Handle,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for InRuntime<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let _entered = this.handle.enter();
        this.future.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_warns_then_at_most_once_per_gap_and_recovery_is_told() {
        let gap = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut s = FailureState::default();
        assert_eq!(s.record(true, t0, gap), Report::Nothing);
        assert_eq!(
            s.record(false, t0, gap),
            Report::Warn {
                failures: 1,
                unreported: 0
            }
        );
        assert_eq!(
            s.record(false, t0 + Duration::from_secs(10), gap),
            Report::Nothing
        );
        assert_eq!(
            s.record(false, t0 + Duration::from_secs(20), gap),
            Report::Nothing
        );
        assert_eq!(
            s.record(false, t0 + Duration::from_secs(61), gap),
            Report::Warn {
                failures: 4,
                unreported: 2
            }
        );
        assert_eq!(
            s.record(true, t0 + Duration::from_secs(70), gap),
            Report::Recovered { failures: 4 }
        );
        // A new outage warns at once again.
        assert_eq!(
            s.record(false, t0 + Duration::from_secs(71), gap),
            Report::Warn {
                failures: 1,
                unreported: 0
            }
        );
    }
}
