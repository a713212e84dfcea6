//! `PoolOptions`: the pool's settings, checked when the pool is built.

use std::sync::Arc;
use std::time::Duration;

use pool_config::{
    LONGEST_DURATION as LONGEST, MAX_CONNECTIONS, PoolSettings, Profile, TargetSessionAttrs,
};

use crate::error::PoolError;

/// Settings of one pool, with a builder. The defaults are the development profile's.
///
/// Limits that can be disabled take `Option<Duration>` (or `Option<u64>`); `None` and a zero
/// both disable them. [`build`](PoolOptions::build) rejects contradictory options, naming the
/// setting.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub(crate) name: Arc<str>,
    pub(crate) max_connections: u32,
    pub(crate) min_connections: u32,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) connect_timeout: Duration,
    pub(crate) acquire_timeout: Duration,
    pub(crate) max_uses: Option<u64>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) lifetime_jitter: Duration,
    pub(crate) query_timeout: Option<Duration>,
    pub(crate) validate_after_idle: Option<Duration>,
    pub(crate) validation_timeout: Option<Duration>,
    pub(crate) cleanup_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) leak_detection_threshold: Option<Duration>,
    pub(crate) max_waiters: Option<u32>,
    pub(crate) reset_on_release: bool,
    pub(crate) check_writable: bool,
    pub(crate) connect_backoff_initial: Duration,
    pub(crate) connect_backoff_max: Duration,
    pub(crate) maintenance_interval: Option<Duration>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// `max_connections` and `min_connections`, at build time and on [`Pool::resize`].
///
/// [`Pool::resize`]: crate::Pool::resize
pub(crate) fn check_size(max: u32, min: u32) -> Result<(), PoolError> {
    if max == 0 {
        return Err(PoolError::invalid(
            "max_connections",
            "must be at least 1 (0 would make every acquire wait forever)",
        ));
    }
    if max > MAX_CONNECTIONS {
        return Err(PoolError::invalid(
            "max_connections",
            format!(
                "{} is more than any PostgreSQL server accepts ({MAX_CONNECTIONS})",
                max
            ),
        ));
    }
    if min > max {
        return Err(PoolError::invalid(
            "min_connections",
            format!("{} is more than max_connections ({})", min, max),
        ));
    }
    Ok(())
}

fn nonzero(d: Option<Duration>) -> Option<Duration> {
    d.filter(|d| !d.is_zero())
}

impl PoolOptions {
    /// The development profile's defaults: 10 / 2 connections, idle 30 s, connect 2 s,
    /// acquire 10 s, 7500 uses, lifetime 30 min ± 30 s, query 30 s, validation after 5 s idle,
    /// keepalive every 120 s, no leak detection, unbounded waiters.
    pub fn new() -> Self {
        Self::from_settings(&PoolSettings::for_profile(Profile::Development))
    }

    /// The pool-side settings of one configured pool (the connection-side ones go to
    /// [`PgConnector::from_settings`](crate::PgConnector::from_settings)); the options
    /// settings do not name keep their defaults.
    pub fn from_settings(settings: &PoolSettings) -> Self {
        PoolOptions {
            name: Arc::from("default"),
            max_connections: settings.max_connections,
            min_connections: settings.min_connections,
            idle_timeout: nonzero(settings.idle_timeout),
            connect_timeout: settings.connect_timeout,
            acquire_timeout: settings.acquire_timeout,
            max_uses: settings.max_uses.filter(|n| *n > 0),
            max_lifetime: nonzero(settings.max_lifetime),
            lifetime_jitter: settings.lifetime_jitter,
            query_timeout: nonzero(settings.query_timeout),
            validate_after_idle: nonzero(settings.validate_after_idle),
            validation_timeout: None,
            cleanup_timeout: None,
            close_timeout: Duration::from_secs(1),
            keepalive_interval: nonzero(settings.keepalive_interval),
            leak_detection_threshold: nonzero(settings.leak_detection_threshold),
            max_waiters: settings.max_waiters,
            reset_on_release: settings.reset_on_release,
            // A pool that wants a writable server retires a connection whose write fails
            // with 25006 (read-only) at once: its server became a standby.
            check_writable: settings.check_writable
                || matches!(
                    settings.target_session_attrs,
                    TargetSessionAttrs::ReadWrite | TargetSessionAttrs::Primary
                ),
            connect_backoff_initial: Duration::from_millis(50),
            connect_backoff_max: Duration::from_secs(5),
            maintenance_interval: None,
        }
    }

    /// The pool's name, in errors, logs, stats and metrics. Default: `default`.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Open connections never exceed it. Default: 10. Must be at least 1.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Connections kept open (idle or in use), refilled in the background. Default: 2.
    pub fn min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }

    /// Idle connections above `min_connections` close after this. Default: 30 s.
    pub fn idle_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = nonzero(d.into());
        self
    }

    /// Bound on opening one physical connection. Default: 2 s. Must not be zero.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Bound on the whole `acquire()`, waiting included. Default: 10 s. Must not be zero.
    /// A waiting caller times out no earlier than this after it queued and at most a
    /// hundredth of it (1–10 ms) later, plus any lateness of the runtime's timers.
    pub fn acquire_timeout(mut self, d: Duration) -> Self {
        self.acquire_timeout = d;
        self
    }

    /// A connection is closed on release after this many checkouts, minus a random part of
    /// a tenth of it: each connection retires after a uniformly random 90–100 % of `max_uses`
    /// (exactly `max_uses` below 10), so connections opened together do not all reconnect on
    /// the same round. Default: 7500.
    pub fn max_uses(mut self, n: impl Into<Option<u64>>) -> Self {
        self.max_uses = n.into().filter(|n| *n > 0);
        self
    }

    /// A connection is retired after this age, minus a random part of `lifetime_jitter` so
    /// connections opened together do not all reconnect at once; never while checked out.
    /// Default: 30 min.
    pub fn max_lifetime(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.max_lifetime = nonzero(d.into());
        self
    }

    /// The largest random amount taken off each connection's `max_lifetime`. Default: 30 s.
    pub fn lifetime_jitter(mut self, d: Duration) -> Self {
        self.lifetime_jitter = d;
        self
    }

    /// Client-side deadline of one unit of work run through
    /// [`PooledConnection::run`](crate::PooledConnection::run), [`Pool::run`](crate::Pool::run) or the pool's
    /// sqlx executor. Default: 30 s.
    pub fn query_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.query_timeout = nonzero(d.into());
        self
    }

    /// An idle connection unused for longer than this is validated (one round trip) before it
    /// is handed out; one used more recently is handed out as it is. Idle time is measured on
    /// a coarse clock, to within one maintenance tick (at most half this value). Default: 5 s.
    pub fn validate_after_idle(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.validate_after_idle = nonzero(d.into());
        self
    }

    /// Bound on one validation or keepalive round trip. Default: `connect_timeout`.
    pub fn validation_timeout(mut self, d: Duration) -> Self {
        self.validation_timeout = nonzero(Some(d));
        self
    }

    /// Bound on cleaning a returned connection (transaction rollback, reset). Default:
    /// `connect_timeout`.
    pub fn cleanup_timeout(mut self, d: Duration) -> Self {
        self.cleanup_timeout = nonzero(Some(d));
        self
    }

    /// Bound on closing one connection gracefully. Default: 1 s.
    pub fn close_timeout(mut self, d: Duration) -> Self {
        self.close_timeout = d;
        self
    }

    /// Idle connections unused for this long get a round trip, so firewalls and servers do
    /// not drop them silently. Default: 120 s.
    pub fn keepalive_interval(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.keepalive_interval = nonzero(d.into());
        self
    }

    /// A checkout held longer than this is reported with the caller's location. Default: off.
    pub fn leak_detection_threshold(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.leak_detection_threshold = nonzero(d.into());
        self
    }

    /// At most this many callers wait in `acquire()` while the pool is at `max_connections`;
    /// more are refused at once with [`PoolError::TooManyWaiters`]. Default: unbounded.
    pub fn max_waiters(mut self, n: impl Into<Option<u32>>) -> Self {
        self.max_waiters = n.into();
        self
    }

    /// Reset the session of every returned connection (`DISCARD ALL` for PostgreSQL; one
    /// round trip per release). Default: off.
    pub fn reset_on_release(mut self, on: bool) -> Self {
        self.reset_on_release = on;
        self
    }

    /// Retire connections to a server that turned read-only (validation checks it;
    /// SQLSTATE 25006 seen by `run` or the executor retires the connection). Default: off.
    /// The check on connect is the connector's (`PgConnector::check_writable`);
    /// `from_settings` turns both on.
    pub fn check_writable(mut self, on: bool) -> Self {
        self.check_writable = on;
        self
    }

    /// Exponential backoff between failed connects: the first delay and the cap (full
    /// jitter). Default: 50 ms, 5 s.
    pub fn connect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.connect_backoff_initial = initial;
        self.connect_backoff_max = max;
        self
    }

    /// How often the maintenance task runs. Default: derived from the other timeouts (at most
    /// 1 s).
    pub fn maintenance_interval(mut self, d: Duration) -> Self {
        self.maintenance_interval = nonzero(Some(d));
        self
    }

    pub(crate) fn check(&self) -> Result<(), PoolError> {
        check_size(self.max_connections, self.min_connections)?;
        for (setting, value) in self.durations() {
            if value.is_some_and(|d| d > LONGEST) {
                return Err(PoolError::invalid(
                    setting,
                    format!(
                        "{value:?} is longer than the {} days any pool duration may be",
                        LONGEST.as_secs() / 86_400
                    ),
                ));
            }
        }
        if self.connect_timeout.is_zero() {
            return Err(PoolError::invalid(
                "connect_timeout",
                "must be more than 0: every wait is bounded",
            ));
        }
        if self.acquire_timeout.is_zero() {
            return Err(PoolError::invalid(
                "acquire_timeout",
                "must be more than 0: every wait is bounded",
            ));
        }
        if self.close_timeout.is_zero() {
            return Err(PoolError::invalid("close_timeout", "must be more than 0"));
        }
        if let Some(lifetime) = self.max_lifetime
            && self.lifetime_jitter >= lifetime
        {
            return Err(PoolError::invalid(
                "lifetime_jitter",
                format!(
                    "{:?} is not less than max_lifetime ({lifetime:?})",
                    self.lifetime_jitter
                ),
            ));
        }
        if self.connect_backoff_initial.is_zero()
            || self.connect_backoff_initial > self.connect_backoff_max
        {
            return Err(PoolError::invalid(
                "connect_backoff",
                "the initial delay must be more than 0 and at most the maximum delay",
            ));
        }
        if self.name.is_empty() {
            return Err(PoolError::invalid("name", "a pool needs a non-empty name"));
        }
        Ok(())
    }

    /// Every duration setting, by name.
    fn durations(&self) -> [(&'static str, Option<Duration>); 14] {
        [
            ("idle_timeout", self.idle_timeout),
            ("connect_timeout", Some(self.connect_timeout)),
            ("acquire_timeout", Some(self.acquire_timeout)),
            ("max_lifetime", self.max_lifetime),
            ("lifetime_jitter", Some(self.lifetime_jitter)),
            ("query_timeout", self.query_timeout),
            ("validate_after_idle", self.validate_after_idle),
            ("validation_timeout", self.validation_timeout),
            ("cleanup_timeout", self.cleanup_timeout),
            ("close_timeout", Some(self.close_timeout)),
            ("keepalive_interval", self.keepalive_interval),
            ("leak_detection_threshold", self.leak_detection_threshold),
            ("connect_backoff", Some(self.connect_backoff_max)),
            ("maintenance_interval", self.maintenance_interval),
        ]
    }

    pub(crate) fn validation_timeout_or_default(&self) -> Duration {
        self.validation_timeout.unwrap_or(self.connect_timeout)
    }

    pub(crate) fn cleanup_timeout_or_default(&self) -> Duration {
        self.cleanup_timeout.unwrap_or(self.connect_timeout)
    }

    /// How often maintenance runs: often enough for the smallest threshold it enforces.
    pub(crate) fn tick(&self) -> Duration {
        if let Some(d) = self.maintenance_interval {
            return d;
        }
        [
            self.idle_timeout,
            self.validate_after_idle,
            self.keepalive_interval,
            self.leak_detection_threshold,
            self.max_lifetime.map(|l| l / 4),
        ]
        .into_iter()
        .flatten()
        .map(|d| d / 2)
        .fold(Duration::from_secs(1), Duration::min)
        .max(Duration::from_millis(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryConnector;

    fn setting_of(options: PoolOptions) -> &'static str {
        match options.build(MemoryConnector::new()) {
            Err(PoolError::InvalidOption { setting, .. }) => setting,
            other => panic!("expected an invalid option, got {other:?}"),
        }
    }

    #[test]
    fn contradictory_options_name_the_setting() {
        assert_eq!(
            setting_of(PoolOptions::new().max_connections(0)),
            "max_connections"
        );
        assert_eq!(
            setting_of(PoolOptions::new().max_connections(3).min_connections(4)),
            "min_connections"
        );
        assert_eq!(
            setting_of(PoolOptions::new().connect_timeout(Duration::ZERO)),
            "connect_timeout"
        );
        assert_eq!(
            setting_of(PoolOptions::new().acquire_timeout(Duration::ZERO)),
            "acquire_timeout"
        );
        assert_eq!(
            setting_of(
                PoolOptions::new()
                    .max_lifetime(Duration::from_secs(10))
                    .lifetime_jitter(Duration::from_secs(10))
            ),
            "lifetime_jitter"
        );
        assert_eq!(
            setting_of(
                PoolOptions::new().connect_backoff(Duration::from_secs(2), Duration::from_secs(1))
            ),
            "connect_backoff"
        );
    }

    #[test]
    fn zero_disables_optional_limits() {
        let o = PoolOptions::new()
            .idle_timeout(Duration::ZERO)
            .max_uses(0)
            .max_lifetime(Duration::ZERO)
            .query_timeout(None);
        assert_eq!(o.idle_timeout, None);
        assert_eq!(o.max_uses, None);
        assert_eq!(o.max_lifetime, None);
        assert_eq!(o.query_timeout, None);
    }

    #[test]
    fn defaults_are_the_development_profiles() {
        let o = PoolOptions::new();
        assert_eq!((o.max_connections, o.min_connections), (10, 2));
        assert_eq!(o.acquire_timeout, Duration::from_secs(10));
        assert_eq!(o.max_uses, Some(7500));
        let production =
            PoolOptions::from_settings(&PoolSettings::for_profile(Profile::Production));
        assert_eq!(
            (production.max_connections, production.min_connections),
            (50, 10)
        );
    }

    #[test]
    fn maintenance_ticks_often_enough_for_small_thresholds() {
        let o = PoolOptions::new().idle_timeout(Duration::from_millis(200));
        assert_eq!(o.tick(), Duration::from_millis(100));
        assert_eq!(PoolOptions::new().tick(), Duration::from_secs(1));
    }
}
