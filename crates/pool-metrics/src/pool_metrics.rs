//! [`PoolMetrics`]: the instruments, and the pools they report on.

use std::fmt;
use std::sync::{Arc, RwLock};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{AsyncInstrument, Meter};
use pool_core::{CloseReason, Connector, Pool, PoolRegistry, PoolStats};

use crate::catalog::{CLOSE_REASON, CONNECTION_STATE, DURATION_BUCKETS, METRICS, POOL_NAME};
use crate::error::MetricsError;
use crate::metrics_observer::{Histograms, MetricsObserver};

type StatsFn = dyn Fn() -> PoolStats + Send + Sync;

/// One pool the instruments report on, with its attributes computed once.
struct Registered {
    name: String,
    stats: Box<StatsFn>,
    pool: [KeyValue; 1],
    idle: [KeyValue; 2],
    used: [KeyValue; 2],
    closed: Vec<(CloseReason, [KeyValue; 2])>,
}

impl Registered {
    fn new(name: &str, stats: Box<StatsFn>) -> Self {
        let pool = KeyValue::new(POOL_NAME, name.to_owned());
        let with =
            |key: &'static str, value: &'static str| [pool.clone(), KeyValue::new(key, value)];
        Registered {
            name: name.to_owned(),
            stats,
            idle: with(CONNECTION_STATE, "idle"),
            used: with(CONNECTION_STATE, "used"),
            closed: CloseReason::ALL
                .iter()
                .map(|r| (*r, with(CLOSE_REASON, r.as_str())))
                .collect(),
            pool: [pool],
        }
    }
}

type Pools = Arc<RwLock<Vec<Registered>>>;

/// The servio-pool instruments on one OpenTelemetry [`Meter`], and the pools they report on.
///
/// Observable instruments read each registered pool's [`PoolStats`] when the reader
/// collects (never on the pool's path); histograms are fed by a [`MetricsObserver`] per pool.
/// [`crate::MetricsPipeline`] owns one; build your own with [`PoolMetrics::new`] to use a
/// meter of your own provider. Cheap to clone.
#[derive(Clone)]
pub struct PoolMetrics {
    pools: Pools,
    histograms: Histograms,
}

impl fmt::Debug for PoolMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolMetrics")
            .field("pools", &self.pool_names())
            .finish()
    }
}

fn describe(name: &'static str) -> (&'static str, &'static str) {
    let m = METRICS
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| unreachable!("{name} is in the catalog"));
    (m.unit, m.description)
}

/// Reads every registered pool's stats (a poisoned lock still holds valid data: the
/// writer only pushes).
///
/// Every instrument's callback goes through here, and the SDK runs all callbacks before it
/// reads any histogram: the histogram samples the observers deferred are moved in first.
fn each_pool(pools: &Pools, mut f: impl FnMut(&Registered, &PoolStats)) {
    crate::deferred::drain();
    let pools = pools.read().unwrap_or_else(|e| e.into_inner());
    for pool in pools.iter() {
        f(pool, &(pool.stats)());
    }
}

impl PoolMetrics {
    /// Creates the instruments on `meter`.
    pub fn new(meter: &Meter) -> Self {
        let pools: Pools = Arc::default();

        let gauge =
            |name: &'static str, read: fn(&Registered, &PoolStats, &dyn AsyncInstrument<i64>)| {
                let (unit, description) = describe(name);
                let pools = Arc::clone(&pools);
                meter
                    .i64_observable_up_down_counter(name)
                    .with_unit(unit)
                    .with_description(description)
                    .with_callback(move |o| each_pool(&pools, |p, s| read(p, s, o)))
                    .build();
            };
        gauge("db.client.connection.count", |p, s, o| {
            o.observe(i64::from(s.idle), &p.idle);
            o.observe(i64::from(s.in_use), &p.used);
        });
        gauge("db.client.connection.idle.max", |p, s, o| {
            o.observe(i64::from(s.max), &p.pool)
        });
        gauge("db.client.connection.idle.min", |p, s, o| {
            o.observe(i64::from(s.min), &p.pool)
        });
        gauge("db.client.connection.max", |p, s, o| {
            o.observe(i64::from(s.max), &p.pool)
        });
        gauge("db.client.connection.pending_requests", |p, s, o| {
            o.observe(i64::from(s.waiting), &p.pool)
        });
        gauge("servio.pool.paused", |p, s, o| {
            o.observe(i64::from(s.paused), &p.pool)
        });

        let counter =
            |name: &'static str, read: fn(&Registered, &PoolStats, &dyn AsyncInstrument<u64>)| {
                let (unit, description) = describe(name);
                let pools = Arc::clone(&pools);
                meter
                    .u64_observable_counter(name)
                    .with_unit(unit)
                    .with_description(description)
                    .with_callback(move |o| each_pool(&pools, |p, s| read(p, s, o)))
                    .build();
            };
        counter("db.client.connection.timeouts", |p, s, o| {
            o.observe(s.acquire_timeouts, &p.pool)
        });
        counter("servio.pool.server.changes", |p, s, o| {
            o.observe(s.server_changes, &p.pool)
        });
        counter("servio.pool.connection.closed", |p, s, o| {
            for (reason, attributes) in &p.closed {
                o.observe(s.closed.get(*reason), attributes);
            }
        });

        let (unit, description) = describe("servio.pool.utilization");
        let utilization_pools = Arc::clone(&pools);
        meter
            .f64_observable_gauge("servio.pool.utilization")
            .with_unit(unit)
            .with_description(description)
            .with_callback(move |o| {
                each_pool(&utilization_pools, |p, s| {
                    o.observe(s.utilization(), &p.pool)
                })
            })
            .build();

        let histogram = |name: &'static str| {
            let (unit, description) = describe(name);
            meter
                .f64_histogram(name)
                .with_unit(unit)
                .with_description(description)
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build()
        };
        let histograms = Histograms {
            create_time: histogram("db.client.connection.create_time"),
            wait_time: histogram("db.client.connection.wait_time"),
            use_time: histogram("db.client.connection.use_time"),
        };
        PoolMetrics { pools, histograms }
    }

    /// Reports on the pool named `name`, whose statistics `stats` reads, and returns the
    /// observer that records its durations (install it on the pool, or call it from an
    /// observer of your own).
    ///
    /// [`instrument`](Self::instrument) does this and installs the observer for a
    /// `pool_core::Pool`; this is the seam for anything else that has [`PoolStats`].
    ///
    /// # Errors
    /// [`MetricsError::AlreadyInstrumented`] if a pool of that name is registered already
    /// (two series under one name would add up to nonsense).
    pub fn register(
        &self,
        name: &str,
        stats: impl Fn() -> PoolStats + Send + Sync + 'static,
    ) -> Result<Arc<MetricsObserver>, MetricsError> {
        let registered = Registered::new(name, Box::new(stats));
        let observer = Arc::new(MetricsObserver::new(
            name,
            &registered.pool,
            &self.histograms,
        ));
        let mut pools = self.pools.write().unwrap_or_else(|e| e.into_inner());
        if pools.iter().any(|p| p.name == name) {
            return Err(MetricsError::AlreadyInstrumented(name.to_owned()));
        }
        pools.push(registered);
        Ok(observer)
    }

    /// Reports on `pool` under its name and installs the observer that records its
    /// durations.
    ///
    /// The metrics hold a handle to the pool (its statistics are read at each export) until
    /// [`unregister`](Self::unregister) or the pipeline's shutdown.
    ///
    /// # Errors
    /// [`MetricsError::AlreadyInstrumented`] if a pool of that name is reported on already;
    /// [`MetricsError::ObserverTaken`] if the pool has an observer already (a pool takes one),
    /// in which case nothing is registered.
    pub fn instrument<C: Connector>(&self, pool: &Pool<C>) -> Result<(), MetricsError> {
        self.instrument_as(pool.name(), pool)
    }

    /// Instruments every pool of `registry`, each under its registry name: the one call a
    /// service makes after building its pools.
    ///
    /// # Errors
    /// As [`instrument`](Self::instrument), for the first pool that fails; the pools before
    /// it stay instrumented.
    pub fn instrument_registry(&self, registry: &PoolRegistry) -> Result<(), MetricsError> {
        registry
            .iter()
            .try_for_each(|(name, pool)| self.instrument_as(name, pool))
    }

    fn instrument_as<C: Connector>(&self, name: &str, pool: &Pool<C>) -> Result<(), MetricsError> {
        let handle = pool.clone();
        let observer = self.register(name, move || handle.stats())?;
        if pool.set_observer(observer) {
            Ok(())
        } else {
            self.unregister(name);
            Err(MetricsError::ObserverTaken(name.to_owned()))
        }
    }

    /// Stops reporting on the pool named `name` (its series stop being exported). Returns
    /// whether it was registered.
    pub fn unregister(&self, name: &str) -> bool {
        let mut pools = self.pools.write().unwrap_or_else(|e| e.into_inner());
        let before = pools.len();
        pools.retain(|p| p.name != name);
        pools.len() != before
    }

    /// The names of the pools reported on, in registration order.
    pub fn pool_names(&self) -> Vec<String> {
        let pools = self.pools.read().unwrap_or_else(|e| e.into_inner());
        pools.iter().map(|p| p.name.clone()).collect()
    }
}
