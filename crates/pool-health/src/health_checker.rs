//! `HealthChecker`: liveness, readiness and full reports over one or more pools.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use pool_core::{PgConnector, Pool, PoolRegistry};

use crate::assess::{self, Connectivity};
use crate::category::Category;
use crate::error::HealthError;
use crate::keys;
use crate::options::HealthOptions;
use crate::report::{CheckResult, HealthReport, Probe};
use crate::round_trip::Observation;
use crate::server_facts::ServerFacts;
use crate::target::Target;

/// Runs bounded health checks over one or more named pools.
///
/// Cheap to clone: clones share the probe connections and the cache. Build one per process
/// and hand it to the HTTP endpoints (feature `http`) or call it from your own.
///
/// - [`live`](Self::live) never touches the database.
/// - [`ready`](Self::ready) runs a `SELECT 1` round trip per pool (cached for
///   [`cache_ttl`](HealthOptions::cache_ttl)) and reads the pools' load; it fails at once,
///   without a round trip, for a pool whose `close()` has begun.
/// - [`report`](Self::report) adds pool statistics and server facts.
///
/// No check waits in a pool's acquire queue, and each returns within
/// [`timeout`](HealthOptions::timeout) of its round trip (plus, at worst, the round trip of a
/// concurrent caller it shares).
#[derive(Clone)]
pub struct HealthChecker {
    inner: Arc<Inner>,
}

/// How often the pools' statistics are sampled for readiness: the oldest waiter's age is
/// known to within this, and it costs one `stats()` per pool per interval.
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Inner {
    options: HealthOptions,
    targets: Vec<Arc<Target>>,
    /// Whether the sampler task was started (on the first runtime the checker meets).
    sampling: AtomicBool,
}

impl Inner {
    /// Starts the task that samples every pool each [`SAMPLE_INTERVAL`], once, if a Tokio
    /// runtime is running. It holds the checker weakly and stops when the last clone is
    /// dropped.
    fn start_sampling(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // Ordering: only whether the task was started is decided here; it reads the targets
        // through its own Arc.
        if self.sampling.swap(true, Ordering::Relaxed) {
            return;
        }
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                for target in &inner.targets {
                    target.sample(&inner.options);
                }
            }
        });
    }
}

impl fmt::Debug for HealthChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthChecker")
            .field("pools", &self.pool_names().collect::<Vec<_>>())
            .field("options", &self.inner.options)
            .finish()
    }
}

impl HealthChecker {
    /// A checker over `pools`, each reported under its name.
    ///
    /// # Errors
    /// [`HealthError::ZeroTimeout`] or [`HealthError::EmptyApplicationName`] for unusable
    /// options; [`HealthError::DuplicatePool`] when two pools share a name.
    pub fn new(
        options: HealthOptions,
        pools: impl IntoIterator<Item = Pool<PgConnector>>,
    ) -> Result<Self, HealthError> {
        if options.timeout.is_zero() {
            return Err(HealthError::ZeroTimeout);
        }
        if options.probe_connection && options.probe_application_name.trim().is_empty() {
            return Err(HealthError::EmptyApplicationName);
        }
        let mut names = HashSet::new();
        let mut targets = Vec::new();
        for pool in pools {
            if !names.insert(pool.name().to_owned()) {
                return Err(HealthError::DuplicatePool(pool.name().to_owned()));
            }
            targets.push(Arc::new(Target::new(pool, &options)));
        }
        let inner = Arc::new(Inner {
            options,
            targets,
            sampling: AtomicBool::new(false),
        });
        inner.start_sampling();
        Ok(HealthChecker { inner })
    }

    /// A checker over every pool of `registry`.
    ///
    /// ```no_run
    /// # fn f(settings: &pool_config::Settings) -> Result<(), Box<dyn std::error::Error>> {
    /// let registry = pool_core::PoolRegistry::from_settings(settings)?;
    /// let checker = pool_health::HealthChecker::for_registry(&registry, Default::default())?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn for_registry(
        registry: &PoolRegistry,
        options: HealthOptions,
    ) -> Result<Self, HealthError> {
        Self::new(options, registry.iter().map(|(_, pool)| pool.clone()))
    }

    /// The options in force.
    pub fn options(&self) -> &HealthOptions {
        &self.inner.options
    }

    /// The names of the pools under watch, in the order given.
    pub fn pool_names(&self) -> impl Iterator<Item = &str> {
        self.inner.targets.iter().map(|t| t.name())
    }

    /// Liveness: whether each pool is open and its maintenance task runs. Never touches the
    /// database, never waits.
    ///
    /// A pool that is draining (`close()` begun) warns; one that is closed with nothing left
    /// open fails, so a process that closed its pool but kept running gets restarted. An open
    /// pool whose maintenance task stopped (its runtime shut down, or it panicked) fails
    /// [`keys::POOL_MAINTENANCE`]: it would no longer refill or reap.
    pub fn live(&self) -> HealthReport {
        let now = SystemTime::now();
        let results = self
            .inner
            .targets
            .iter()
            .flat_map(|t| {
                let stats = t.pool.stats();
                let closed = stats.closing && stats.total == 0;
                let open = assess::open_for_liveness(t.name(), stats.closing, closed, now);
                let running = t.pool.is_maintenance_running();
                let maintenance = assess::maintenance(t.name(), stats.closing, running, now);
                [
                    (keys::POOL_OPEN, open),
                    (keys::POOL_MAINTENANCE, maintenance),
                ]
            })
            .collect();
        HealthReport::new(Probe::Live, results)
    }

    /// Readiness: the database answers within the deadline, the pool is not closing, and
    /// its load is within the thresholds.
    ///
    /// # Panics
    /// Outside a Tokio runtime: round trips run in spawned tasks.
    ///
    /// # Cancel safety
    /// Cancel safe: round trips run in spawned tasks, so dropping this future never leaves a
    /// connection with a reply in flight; their results still fill the cache.
    pub async fn ready(&self) -> HealthReport {
        self.check(Probe::Ready).await
    }

    /// The full report: readiness, plus each pool's statistics and its server's facts.
    ///
    /// # Panics
    /// Outside a Tokio runtime, as [`ready`](Self::ready).
    ///
    /// # Cancel safety
    /// Cancel safe, as [`ready`](Self::ready).
    pub async fn report(&self) -> HealthReport {
        self.check(Probe::Full).await
    }

    /// The report for `probe`.
    ///
    /// # Panics
    /// Outside a Tokio runtime, as [`ready`](Self::ready).
    ///
    /// # Cancel safety
    /// Cancel safe, as [`ready`](Self::ready).
    pub async fn check(&self, probe: Probe) -> HealthReport {
        if probe == Probe::Live {
            return self.live();
        }
        let full = probe == Probe::Full;
        let options = &self.inner.options;
        self.inner.start_sampling();
        // Start every pool's round trip before awaiting any, so pools are checked side by
        // side and the whole check takes one deadline, not one per pool.
        let pending: Vec<_> = (0..self.inner.targets.len())
            .map(|i| {
                let target = &self.inner.targets[i];
                if target.pool.is_closing() {
                    return None;
                }
                let inner = Arc::clone(&self.inner);
                Some(tokio::spawn(async move {
                    inner.targets[i].observe(&inner.options, full).await
                }))
            })
            .collect();
        let mut results = Vec::new();
        let mut facts = Vec::new();
        let mut maxima = Vec::new();
        for (target, handle) in self.inner.targets.iter().zip(pending) {
            let observation = match handle {
                Some(handle) => Some(handle.await.unwrap_or_else(|error| {
                    Arc::new(Observation::now(Connectivity::Failed {
                        what: "the check",
                        message: format!("its task ended early: {error}"),
                        category: Category::Unreachable,
                    }))
                })),
                None => None,
            };
            let name = target.name();
            let now = SystemTime::now();
            let (stats, verdict) = target.sample(options);
            let closing = stats.closing || observation.is_none();
            maxima.push(stats.max);
            results.push((
                keys::POOL_OPEN,
                assess::open_for_readiness(name, closing, now),
            ));
            results.push((
                keys::CONNECTIVITY,
                connectivity(name, observation.as_deref(), now),
            ));
            results.push((
                keys::POOL_WAITING,
                assess::waiting(name, &stats, options, now),
            ));
            results.push((
                keys::POOL_WAIT_TIME,
                assess::wait_time(name, &verdict, options, now),
            ));
            results.push((
                keys::POOL_CONNECTIONS,
                assess::connections(name, &stats, options, now),
            ));
            results.push((
                keys::POOL_ACQUIRE_TIMEOUTS,
                assess::acquire_timeouts(name, verdict.timeouts, options, now),
            ));
            if !full {
                continue;
            }
            results.push((keys::POOL_STATS, assess::stats(name, &stats, now)));
            if let Some(observation) = &observation
                && let Some(found) = &observation.facts
            {
                results.extend(assess::facts(name, found, observation.time));
                if let Ok(f) = found {
                    facts.push((name.to_owned(), f.clone()));
                }
            }
            if options.show_hosts {
                results.push((keys::SERVER_ENDPOINT, endpoint(target, now)));
            }
        }
        if full && let Some(instances) = options.instances {
            results.extend(self.budgets(instances, &maxima, &facts));
        }
        HealthReport::new(probe, results).with_facts(facts)
    }

    /// The connection budget of each pool's server, summed over the pools that share it.
    fn budgets(
        &self,
        instances: u32,
        maxima: &[u32],
        facts: &[(String, ServerFacts)],
    ) -> Vec<(&'static str, CheckResult)> {
        let targets = &self.inner.targets;
        let probe = u32::from(self.inner.options.probe_connection);
        let now = SystemTime::now();
        targets
            .iter()
            .map(|target| {
                let mut budget = assess::Budget {
                    instances,
                    per_instance: 0,
                    pools: Vec::new(),
                };
                for (other, max) in targets.iter().zip(maxima) {
                    if other.server == target.server {
                        budget.per_instance += max + probe;
                        budget.pools.push(other.name());
                    }
                }
                // Any pool on the server has the server's facts.
                let found = facts
                    .iter()
                    .find(|(pool, _)| budget.pools.contains(&pool.as_str()))
                    .map(|(_, f)| f);
                let result = assess::budget(target.name(), &budget, found, now);
                (keys::SERVER_CONNECTION_BUDGET, result)
            })
            .collect()
    }
}

fn connectivity(name: &str, observation: Option<&Observation>, now: SystemTime) -> CheckResult {
    match observation {
        Some(o) => assess::connectivity(name, &o.connectivity, o.time),
        None => assess::connectivity(name, &Connectivity::Closing, now),
    }
}

fn endpoint(target: &Target, now: SystemTime) -> CheckResult {
    CheckResult::new(
        target.name(),
        crate::report::ComponentType::Datastore,
        crate::status::Status::Pass,
        now,
    )
    .with_value(target.endpoint.clone(), None)
}
