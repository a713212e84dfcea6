//! [`MetricsObserver`]: records a pool's durations into the histograms as events happen.

use std::fmt;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
use pool_core::PoolObserver;

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
/// Built by [`crate::PoolMetrics::register`]; its attributes are computed once, so an event
/// costs a hash lookup and an atomic update in the SDK, no allocation. Counts (timeouts,
/// closes) are not recorded here: they are read exactly from the pool's cumulative
/// statistics at collection time.
pub struct MetricsObserver {
    attributes: [KeyValue; 1],
    histograms: Histograms,
}

impl MetricsObserver {
    pub(crate) fn new(attributes: [KeyValue; 1], histograms: Histograms) -> Self {
        MetricsObserver {
            attributes,
            histograms,
        }
    }
}

impl fmt::Debug for MetricsObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsObserver")
            .field("pool", &self.attributes[0].value.as_str())
            .finish()
    }
}

impl PoolObserver for MetricsObserver {
    fn on_connect(&self, elapsed: Duration) {
        self.histograms
            .create_time
            .record(elapsed.as_secs_f64(), &self.attributes);
    }

    fn on_acquire(&self, wait: Duration) {
        self.histograms
            .wait_time
            .record(wait.as_secs_f64(), &self.attributes);
    }

    fn on_release(&self, used: Duration) {
        self.histograms
            .use_time
            .record(used.as_secs_f64(), &self.attributes);
    }
}
