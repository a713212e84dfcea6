//! [`MetricsObserver`]: records a pool's durations into the histograms as events happen.

use std::fmt;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
use pool_core::PoolObserver;

use crate::deferred::DeferredHistogram;

/// The three duration histograms, shared by every pool's observer.
#[derive(Clone)]
pub(crate) struct Histograms {
    pub(crate) create_time: Histogram<f64>,
    pub(crate) wait_time: Histogram<f64>,
    pub(crate) use_time: Histogram<f64>,
}

/// A [`PoolObserver`] recording one pool's connect, wait and checkout times into
/// `db.client.connection.create_time`, `.wait_time` and `.use_time`.
///
/// Built by [`crate::PoolMetrics::register`]. The histograms are bound to the pool's
/// attributes once. An event does not touch them: it appends the duration to a buffer of the
/// calling thread's own (a few stores, no lock, no allocation), and the buffers are moved into
/// the histograms before every collection and in the background; a full buffer makes the
/// event record directly, so nothing is dropped. Counts (timeouts, closes) are not recorded
/// here: they are read exactly from the pool's cumulative statistics at collection time.
pub struct MetricsObserver {
    pool: String,
    create_time: DeferredHistogram,
    wait_time: DeferredHistogram,
    use_time: DeferredHistogram,
}

impl MetricsObserver {
    pub(crate) fn new(pool: &str, attributes: &[KeyValue], histograms: &Histograms) -> Self {
        MetricsObserver {
            pool: pool.to_owned(),
            create_time: DeferredHistogram::new(histograms.create_time.bind(attributes)),
            wait_time: DeferredHistogram::new(histograms.wait_time.bind(attributes)),
            use_time: DeferredHistogram::new(histograms.use_time.bind(attributes)),
        }
    }
}

impl fmt::Debug for MetricsObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsObserver")
            .field("pool", &self.pool)
            .finish()
    }
}

impl PoolObserver for MetricsObserver {
    fn on_connect(&self, elapsed: Duration) {
        self.create_time.record(elapsed);
    }

    fn on_acquire(&self, wait: Duration) {
        self.wait_time.record(wait);
    }

    fn on_release(&self, used: Duration) {
        self.use_time.record(used);
    }
}
