//! # Implementation details
//!
//! One pool under watch: its probe connection, its acquire-timeout window and its cached
//! database observation.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pool_core::{PgConnector, Pool, PoolStats};
use tokio::time::{Instant, timeout_at};

use crate::assess::Connectivity;
use crate::options::HealthOptions;
use crate::probe_connection::ProbeConnection;
use crate::readiness::{Readiness, Verdict};
use crate::round_trip::{Found, Observation, Redaction, select_one, server_facts};

/// A pool, and what the checker keeps about it between checks.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) pool: Pool<PgConnector>,
    /// `host:port/database`, shown only with `show_hosts`.
    pub(crate) endpoint: String,
    /// `(host, port)`: pools with the same one share a server's connection budget.
    pub(crate) server: (String, u16),
    redaction: Redaction,
    /// The pool's `acquire_timeout`, which the stall threshold is a share of.
    acquire_timeout: Duration,
    probe: Option<ProbeConnection>,
    // Lock order: a short std lock, never held across an await; the pool's own lock is taken
    // (for its stats) before it, never inside it.
    readiness: Mutex<Readiness>,
    // Held across the round trip on purpose: concurrent callers wait for the one in flight
    // and share its result.
    cache: tokio::sync::Mutex<Option<Arc<Observation>>>,
}

impl Target {
    pub(crate) fn new(pool: Pool<PgConnector>, options: &HealthOptions) -> Self {
        let connect = pool.connector().connect_options();
        // (host, port, host:port) of every server the pool may reach.
        let mut hosts: Vec<(String, u16, String)> = pool
            .connector()
            .hosts()
            .into_iter()
            .map(|h| {
                let address = h.to_string();
                (h.host, h.port, address)
            })
            .collect();
        if hosts.is_empty() {
            let (host, port) = (connect.get_host().to_owned(), connect.get_port());
            hosts.push((host.clone(), port, format!("{host}:{port}")));
        }
        let addresses: Vec<&str> = hosts.iter().map(|h| h.2.as_str()).collect();
        let endpoint = format!(
            "{}/{}",
            addresses.join(","),
            connect.get_database().unwrap_or_default()
        );
        // Several hosts share a budget only with pools listing the same ones.
        let (host, port) = match hosts.as_slice() {
            [(host, port, _)] => (host.clone(), *port),
            _ => (addresses.join(","), 0),
        };
        let probe = options
            .probe_connection
            .then(|| ProbeConnection::new(&options.probe_application_name));
        let readiness = Readiness::new(Instant::now(), &pool.stats());
        Target {
            server: (host.clone(), port),
            pool,
            endpoint,
            redaction: Redaction {
                hosts: hosts.into_iter().map(|h| h.0).collect(),
                show_hosts: options.show_hosts,
            },
            // pool-core does not expose a pool's acquire_timeout yet; once it does
            // (`pool.options().get_acquire_timeout()`), it replaces the option here.
            acquire_timeout: options.acquire_timeout,
            probe,
            readiness: Mutex::new(readiness),
            cache: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.pool.name()
    }

    /// Samples the pool's stats now: the readiness tracker needs them often (the checker's
    /// sampler calls this every [`SAMPLE_INTERVAL`](crate::health_checker::SAMPLE_INTERVAL)),
    /// not only when a probe asks.
    pub(crate) fn sample(&self, options: &HealthOptions) -> (PoolStats, Verdict) {
        let stats = self.pool.stats();
        let mut readiness = self.readiness.lock().unwrap_or_else(|e| e.into_inner());
        let verdict = readiness.sample(Instant::now(), &stats, self.acquire_timeout, options);
        (stats, verdict)
    }

    /// The database observation: the cached one while fresh (or produced while this caller
    /// waited for it), else a new round trip bounded by `options.timeout`.
    ///
    /// Cancel safety: the caller runs this in a spawned task, so a dropped caller never
    /// interrupts a round trip halfway; the result still fills the cache.
    pub(crate) async fn observe(&self, options: &HealthOptions, facts: bool) -> Arc<Observation> {
        let called = Instant::now();
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref() {
            let fresh = cached.at.elapsed() < options.cache_ttl;
            let has_what_is_needed = !facts || cached.facts.is_some();
            if cached.finished >= called || (fresh && has_what_is_needed) {
                return Arc::clone(cached);
            }
        }
        let at = Instant::now();
        let time = SystemTime::now();
        let facts = facts && options.server_facts;
        let (connectivity, found) = self.round_trip(at, at + options.timeout, facts).await;
        let observation = Arc::new(Observation {
            at,
            finished: Instant::now(),
            time,
            connectivity,
            facts: found,
        });
        *cache = Some(Arc::clone(&observation));
        observation
    }

    /// `SELECT 1` over an idle pooled connection if one is free at once, else over the probe
    /// connection; never through the acquire queue.
    async fn round_trip(&self, started: Instant, deadline: Instant, facts: bool) -> Found {
        let mut conn = match self.pool.try_acquire() {
            Ok(Some(conn)) => conn,
            Ok(None) => return self.over_probe(started, deadline, facts).await,
            Err(_closed) => return (Connectivity::Closing, None),
        };
        // `run` discards the connection if its future is dropped midway (our deadline), so a
        // connection with a reply still in flight never goes back to the pool.
        let answered = timeout_at(deadline, conn.run(|c| Box::pin(select_one(c)))).await;
        let latency = match answered {
            Ok(Ok(latency)) => latency,
            Ok(Err(error)) => {
                tracing::debug!(pool = %self.name(), %error, "health check over an idle connection failed");
                // A stale idle connection (the server restarted) says little about the server
                // now: `run` retired it; ask again over the probe connection.
                drop(conn);
                if self.probe.is_some() {
                    return self.over_probe(started, deadline, facts).await;
                }
                let failed = Connectivity::failed("SELECT 1", &error, &self.redaction);
                return (failed, None);
            }
            Err(_) => {
                let connectivity = Connectivity::TimedOut {
                    phase: "waiting for SELECT 1",
                    after: deadline - started,
                };
                return (connectivity, None);
            }
        };
        let connectivity = Connectivity::Answered { latency };
        if !facts {
            return (connectivity, None);
        }
        let found = match timeout_at(deadline, conn.run(|c| Box::pin(server_facts(c)))).await {
            Ok(Ok(f)) => Ok(f),
            Ok(Err(error)) => Err(self.redaction.message(&error)),
            Err(_) => Err("no answer before the deadline".to_owned()),
        };
        (connectivity, Some(found))
    }

    async fn over_probe(&self, started: Instant, deadline: Instant, facts: bool) -> Found {
        match &self.probe {
            Some(probe) => {
                probe
                    .observe(
                        self.pool.connector(),
                        started,
                        deadline,
                        facts,
                        &self.redaction,
                    )
                    .await
            }
            None => (Connectivity::NotMeasured, None),
        }
    }
}
