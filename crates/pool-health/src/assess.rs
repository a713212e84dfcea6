//! # Implementation details
//!
//! Turns what the checker observed into check results: pure functions, unit-tested here.

use std::time::{Duration, SystemTime};

use pool_core::PoolStats;
use serde_json::json;

use crate::category::Category;
use crate::options::HealthOptions;
use crate::readiness::Verdict;
use crate::report::{CheckResult, ComponentType};
use crate::round_trip::Redaction;
use crate::server_facts::ServerFacts;
use crate::status::Status;

/// How the `SELECT 1` round trip went.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Connectivity {
    /// The server answered after `latency`.
    Answered { latency: Duration },
    /// `what` (connect, SELECT 1) failed; the message is already free of host names, and is
    /// for operators only: public probes show the category.
    Failed {
        what: &'static str,
        message: String,
        category: Category,
    },
    /// The deadline passed while `phase` (connecting, querying).
    TimedOut {
        phase: &'static str,
        after: Duration,
    },
    /// No idle connection was free and the probe connection is off.
    NotMeasured,
    /// `close()` has begun: no round trip was tried.
    Closing,
}

impl Connectivity {
    /// `what` failed with `error`: the message made safe for a report, and its category.
    pub(crate) fn failed(what: &'static str, error: &sqlx::Error, redaction: &Redaction) -> Self {
        Connectivity::Failed {
            what,
            message: redaction.message(error),
            category: Category::of(error),
        }
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn pool(name: &str, status: Status, now: SystemTime) -> CheckResult {
    CheckResult::new(name, ComponentType::Component, status, now)
}

fn server(name: &str, status: Status, now: SystemTime) -> CheckResult {
    CheckResult::new(name, ComponentType::Datastore, status, now)
}

/// Readiness: fails as soon as `close()` begins.
pub(crate) fn open_for_readiness(name: &str, closing: bool, now: SystemTime) -> CheckResult {
    if closing {
        pool(name, Status::Fail, now)
            .with_value("closing", None)
            .with_output("the pool is closing and refuses new acquires")
            .with_category(Category::Closing)
    } else {
        pool(name, Status::Pass, now).with_value("open", None)
    }
}

/// Liveness: a draining pool is still alive (warn); a closed one is not (fail).
pub(crate) fn open_for_liveness(
    name: &str,
    closing: bool,
    closed: bool,
    now: SystemTime,
) -> CheckResult {
    if closed {
        pool(name, Status::Fail, now)
            .with_value("closed", None)
            .with_output("the pool is closed")
            .with_category(Category::Closing)
    } else if closing {
        pool(name, Status::Warn, now)
            .with_value("closing", None)
            .with_output("the pool is closing: draining checked-out connections")
            .with_category(Category::Closing)
    } else {
        pool(name, Status::Pass, now).with_value("open", None)
    }
}

/// Liveness: an open pool needs its maintenance task (refill, reaping, keepalive); without it
/// the pool degrades until restarted. Once `close()` has begun the task is meant to stop.
pub(crate) fn maintenance(
    name: &str,
    closing: bool,
    running: bool,
    now: SystemTime,
) -> CheckResult {
    if running {
        pool(name, Status::Pass, now).with_value("running", None)
    } else if closing {
        pool(name, Status::Pass, now).with_value("stopped", None)
    } else {
        pool(name, Status::Fail, now)
            .with_value("stopped", None)
            .with_output(
                "the pool's maintenance task is not running: no refill, reaping or keepalive",
            )
    }
}

pub(crate) fn connectivity(name: &str, outcome: &Connectivity, now: SystemTime) -> CheckResult {
    match outcome {
        Connectivity::Answered { latency } => {
            server(name, Status::Pass, now).with_value(millis(*latency), Some("ms"))
        }
        Connectivity::Failed {
            what,
            message,
            category,
        } => server(name, Status::Fail, now)
            .with_output(format!("{what} failed: {message}"))
            .with_category(*category),
        Connectivity::TimedOut { phase, after } => server(name, Status::Fail, now)
            .with_value(millis(*after), Some("ms"))
            .with_output(format!(
                "no answer within {} ms while {phase}",
                after.as_millis()
            ))
            .with_category(Category::Timeout),
        Connectivity::NotMeasured => server(name, Status::Warn, now)
            .with_output(
                "not measured: no idle connection was free and the probe connection is off",
            )
            .with_category(Category::Saturated),
        Connectivity::Closing => server(name, Status::Fail, now)
            .with_output("not measured: the pool is closing")
            .with_category(Category::Closing),
    }
}

pub(crate) fn waiting(
    name: &str,
    stats: &PoolStats,
    options: &HealthOptions,
    now: SystemTime,
) -> CheckResult {
    let result = |status| pool(name, status, now).with_value(stats.waiting, Some("requests"));
    match options.max_waiting {
        Some(max) if stats.waiting > max => result(Status::Fail)
            .with_output(format!(
                "{} callers waiting for a connection, more than {max}",
                stats.waiting
            ))
            .with_category(Category::Saturated),
        _ => result(Status::Pass),
    }
}

/// Readiness on sustained trouble: how long the oldest caller has waited, and whether the
/// queue stalled (or acquires timed out) long enough to fail.
pub(crate) fn wait_time(
    name: &str,
    verdict: &Verdict,
    options: &HealthOptions,
    now: SystemTime,
) -> CheckResult {
    let oldest = verdict.oldest_wait.unwrap_or_default();
    let result = |status| pool(name, status, now).with_value(millis(oldest), Some("ms"));
    let status = if verdict.failing {
        Status::Fail
    } else if verdict.troubled {
        Status::Warn
    } else {
        return result(Status::Pass);
    };
    let window = options.timeout_window.as_secs();
    let mut why = format!(
        "the oldest caller has waited {} ms (stalled from {} ms: {}% of acquire_timeout); \
         stalled {:.1} s and {} acquire timeouts in the last {window} s",
        oldest.as_millis(),
        verdict.stall_threshold.as_millis(),
        options.stall_percent,
        verdict.stalled_for.as_secs_f64(),
        verdict.timeouts,
    );
    if verdict.failing {
        why.push_str(&format!(
            "; fails from {} s stalled or more than {} timeouts, until {} s pass without trouble",
            options.fail_after.as_secs(),
            options.max_acquire_timeouts,
            options.recovery.as_secs()
        ));
    }
    result(status)
        .with_output(why)
        .with_category(Category::Saturated)
}

pub(crate) fn connections(
    name: &str,
    stats: &PoolStats,
    options: &HealthOptions,
    now: SystemTime,
) -> CheckResult {
    let at_max = stats.max > 0 && stats.total >= stats.max;
    let status = if at_max {
        options.at_max_status
    } else {
        Status::Pass
    };
    let result = pool(name, status, now).with_value(stats.total, Some("connections"));
    if status == Status::Pass {
        result
    } else {
        result
            .with_output(format!(
                "pool at its maximum: {} of {} connections open",
                stats.total, stats.max
            ))
            .with_category(Category::Saturated)
    }
}

pub(crate) fn acquire_timeouts(
    name: &str,
    recent: u64,
    options: &HealthOptions,
    now: SystemTime,
) -> CheckResult {
    let result = |status| pool(name, status, now).with_value(recent, Some("timeouts"));
    if recent > 0 {
        result(Status::Warn)
            .with_output(format!(
                "{recent} acquires timed out in the last {} s",
                options.timeout_window.as_secs()
            ))
            .with_category(Category::Saturated)
    } else {
        result(Status::Pass)
    }
}

pub(crate) fn stats(name: &str, stats: &PoolStats, now: SystemTime) -> CheckResult {
    let closed: serde_json::Map<String, serde_json::Value> = stats
        .closed
        .iter()
        .map(|(reason, n)| (reason.as_str().to_owned(), n.into()))
        .collect();
    let value = json!({
        "total": stats.total,
        "idle": stats.idle,
        "inUse": stats.in_use,
        "waiting": stats.waiting,
        "max": stats.max,
        "min": stats.min,
        "closing": stats.closing,
        "utilization": stats.utilization(),
        "acquired": stats.acquired,
        "waited": stats.waited,
        "created": stats.created,
        "connectFailures": stats.connect_failures,
        "acquireTimeouts": stats.acquire_timeouts,
        "closed": closed,
        "serverChanges": stats.server_changes,
    });
    pool(name, Status::Pass, now).with_value(value, None)
}

/// The server facts as report entries, keyed like [`crate::keys`].
pub(crate) fn facts(
    name: &str,
    facts: &Result<ServerFacts, String>,
    now: SystemTime,
) -> Vec<(&'static str, CheckResult)> {
    use crate::keys::*;
    match facts {
        Ok(f) => vec![
            (
                SERVER_VERSION,
                server(name, Status::Pass, now).with_value(f.version.clone(), None),
            ),
            (
                SERVER_MAX_CONNECTIONS,
                server(name, Status::Pass, now).with_value(f.max_connections, Some("connections")),
            ),
            (
                SERVER_RESERVED_CONNECTIONS,
                server(name, Status::Pass, now)
                    .with_value(f.reserved_connections, Some("connections")),
            ),
            (
                SERVER_CONNECTIONS,
                server(name, Status::Pass, now).with_value(f.connections, Some("connections")),
            ),
            (
                SERVER_ROLE,
                server(name, Status::Pass, now).with_value(f.role.as_str(), None),
            ),
        ]
        .into_iter()
        .chain(f.replication_lag_ms.map(|lag| {
            (
                SERVER_REPLICATION_LAG,
                server(name, Status::Pass, now).with_value(lag, Some("ms")),
            )
        }))
        .collect(),
        Err(message) => vec![(
            SERVER_VERSION,
            server(name, Status::Warn, now)
                .with_output(format!("server facts unavailable: {message}")),
        )],
    }
}

/// What the service instances may open on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Budget<'a> {
    pub(crate) instances: u32,
    /// Connections one instance may open on this server: every pool's maximum, plus one
    /// probe connection per pool when probes are on.
    pub(crate) per_instance: u32,
    /// The pools on this server.
    pub(crate) pools: Vec<&'a str>,
}

pub(crate) fn budget(
    name: &str,
    budget: &Budget<'_>,
    facts: Option<&ServerFacts>,
    now: SystemTime,
) -> CheckResult {
    let needed = budget.instances.saturating_mul(budget.per_instance);
    let Some(facts) = facts else {
        return server(name, Status::Warn, now)
            .with_value(needed, Some("connections"))
            .with_output("budget unknown: the server's max_connections could not be read");
    };
    let available = facts.available_connections();
    let result = |status| server(name, status, now).with_value(needed, Some("connections"));
    if needed <= available {
        return result(Status::Pass);
    }
    result(Status::Warn).with_output(format!(
        "{} instances x {} connections ({}) = {needed}, more than the {available} the server allows \
         ({} max_connections - {} reserved): lower max_connections or put PgBouncer in front",
        budget.instances,
        budget.per_instance,
        budget.pools.join(", "),
        facts.max_connections,
        facts.reserved_connections,
    ))
}

/// Removes `host` from an error message unless hosts may be shown.
pub(crate) fn scrub(message: &str, host: &str, show_hosts: bool) -> String {
    if show_hosts || host.is_empty() {
        message.to_owned()
    } else {
        message.replace(host, "<host>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(total: u32, max: u32, waiting: u32) -> PoolStats {
        let mut s = PoolStats::default();
        s.total = total;
        s.in_use = total;
        s.max = max;
        s.waiting = waiting;
        s
    }

    const NOW: SystemTime = SystemTime::UNIX_EPOCH;

    #[test]
    fn more_waiters_than_the_opt_in_threshold_fail() {
        let mut opts = HealthOptions::default();
        assert_eq!(
            waiting("p", &stats(10, 10, 64), &opts, NOW).status(),
            Status::Pass,
            "a count of waiters alone never fails by default"
        );
        opts.max_waiting = Some(10);
        assert_eq!(
            waiting("p", &stats(10, 10, 10), &opts, NOW).status(),
            Status::Pass
        );
        let r = waiting("p", &stats(10, 10, 11), &opts, NOW);
        assert_eq!(r.status(), Status::Fail);
        assert_eq!(
            r.output(),
            Some("11 callers waiting for a connection, more than 10")
        );
    }

    #[test]
    fn a_full_pool_warns_by_default_and_fails_when_configured() {
        let mut opts = HealthOptions::default();
        assert_eq!(
            connections("p", &stats(9, 10, 0), &opts, NOW).status(),
            Status::Pass
        );
        let r = connections("p", &stats(10, 10, 0), &opts, NOW);
        assert_eq!(r.status(), Status::Warn);
        assert_eq!(
            r.output(),
            Some("pool at its maximum: 10 of 10 connections open")
        );
        opts.at_max_status = Status::Fail;
        assert_eq!(
            connections("p", &stats(10, 10, 0), &opts, NOW).status(),
            Status::Fail
        );
        opts.at_max_status = Status::Pass;
        assert_eq!(
            connections("p", &stats(10, 10, 0), &opts, NOW).output(),
            None
        );
    }

    #[test]
    fn acquire_timeouts_warn_and_leave_failing_to_the_sustained_rule() {
        let opts = HealthOptions::default();
        assert_eq!(acquire_timeouts("p", 0, &opts, NOW).status(), Status::Pass);
        let r = acquire_timeouts("p", 2, &opts, NOW);
        assert_eq!(r.status(), Status::Warn);
        assert_eq!(r.output(), Some("2 acquires timed out in the last 30 s"));
        assert_eq!(r.category(), Some(Category::Saturated));
    }

    #[test]
    fn closing_fails_readiness_and_only_warns_liveness() {
        assert_eq!(open_for_readiness("p", true, NOW).status(), Status::Fail);
        assert_eq!(open_for_readiness("p", false, NOW).status(), Status::Pass);
        assert_eq!(
            open_for_liveness("p", true, false, NOW).status(),
            Status::Warn
        );
        assert_eq!(
            open_for_liveness("p", true, true, NOW).status(),
            Status::Fail
        );
    }

    #[test]
    fn stopped_maintenance_fails_liveness_only_while_the_pool_is_open() {
        assert_eq!(maintenance("p", false, true, NOW).status(), Status::Pass);
        let stopped = maintenance("p", false, false, NOW);
        assert_eq!(stopped.status(), Status::Fail);
        assert!(stopped.output().is_some_and(|o| o.contains("maintenance")));
        assert_eq!(maintenance("p", true, false, NOW).status(), Status::Pass);
    }

    #[test]
    fn connectivity_reports_latency_in_milliseconds() {
        let r = connectivity(
            "p",
            &Connectivity::Answered {
                latency: Duration::from_micros(1234),
            },
            NOW,
        );
        assert_eq!(r.status(), Status::Pass);
        assert_eq!(r.observed_value(), Some(&json!(1.234)));
        assert_eq!(r.observed_unit(), Some("ms"));
        let t = connectivity(
            "p",
            &Connectivity::TimedOut {
                phase: "connecting",
                after: Duration::from_secs(2),
            },
            NOW,
        );
        assert_eq!(t.status(), Status::Fail);
        assert_eq!(
            t.output(),
            Some("no answer within 2000 ms while connecting")
        );
        let n = connectivity("p", &Connectivity::NotMeasured, NOW);
        assert_eq!(n.status(), Status::Warn);
    }

    #[test]
    fn a_budget_over_the_server_limit_warns() {
        let facts = ServerFacts::from_row(("15.8".into(), 100, 3, 12), false, None);
        let b = Budget {
            instances: 9,
            per_instance: 11,
            pools: vec!["default"],
        };
        let r = budget("default", &b, Some(&facts), NOW);
        assert_eq!(r.status(), Status::Warn);
        assert_eq!(r.observed_value(), Some(&json!(99)));
        assert_eq!(
            r.output(),
            Some(
                "9 instances x 11 connections (default) = 99, more than the 97 the server allows \
                 (100 max_connections - 3 reserved): lower max_connections or put PgBouncer in front"
            )
        );
        let fits = Budget { instances: 8, ..b };
        assert_eq!(
            budget("default", &fits, Some(&facts), NOW).status(),
            Status::Pass
        );
        assert_eq!(budget("default", &fits, None, NOW).status(), Status::Warn);
    }

    #[test]
    fn host_names_are_removed_unless_shown() {
        let msg = "tls handshake with db.internal failed";
        assert_eq!(
            scrub(msg, "db.internal", false),
            "tls handshake with <host> failed"
        );
        assert_eq!(scrub(msg, "db.internal", true), msg);
    }
}
