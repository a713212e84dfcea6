//! The metrics this crate emits: names, units, kinds and attributes, in one table.
//!
//! The table drives the instruments ([`crate::PoolMetrics`]), the README's metric table and
//! the dashboard test, so a name is written once.

/// Attribute on every metric: the pool's name in its [`pool_core::PoolRegistry`]
/// (`default`, `replica`, …).
pub const POOL_NAME: &str = "db.client.connection.pool.name";

/// Attribute of `db.client.connection.count`: `idle` or `used`.
pub const CONNECTION_STATE: &str = "db.client.connection.state";

/// Attribute of `servio.pool.connection.closed`: a [`pool_core::CloseReason`] as
/// [`pool_core::CloseReason::as_str`] (`idle`, `lifetime`, `max_uses`, …).
pub const CLOSE_REASON: &str = "reason";

/// Bucket boundaries, in seconds, of the three duration histograms.
///
/// From 10 µs to 60 s: an acquire served by an idle connection takes microseconds, a wait
/// for a busy pool milliseconds to `acquire_timeout`, a connect up to `connect_timeout`, a
/// checkout up to `query_timeout`. The finest buckets resolve sub-millisecond waits, which
/// OpenTelemetry's default boundaries (starting at 5 ms, made for milliseconds) lump together.
pub const DURATION_BUCKETS: [f64; 21] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How a metric is aggregated, which decides how it reaches OTLP and Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricKind {
    /// A current value that can go up and down, observed at collection time
    /// (OTLP non-monotonic cumulative sum; a Prometheus gauge, no suffix).
    UpDownCounter,
    /// A cumulative count that only grows, observed at collection time
    /// (OTLP monotonic cumulative sum; a Prometheus counter, `_total`).
    Counter,
    /// A current value, observed at collection time (OTLP gauge; a Prometheus gauge,
    /// `_ratio` when the unit is `1`).
    Gauge,
    /// Durations recorded as they happen (OTLP explicit-bucket histogram; a Prometheus
    /// histogram, `_bucket`, `_sum`, `_count`).
    Histogram,
}

/// One metric this crate emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricDescriptor {
    /// The OpenTelemetry name (`db.client.connection.count`).
    pub name: &'static str,
    /// The UCUM unit (`s`, `1`, `{connection}`).
    pub unit: &'static str,
    /// How it is aggregated.
    pub kind: MetricKind,
    /// What it measures.
    pub description: &'static str,
    /// Its attribute keys, [`POOL_NAME`] first.
    pub attributes: &'static [&'static str],
}

const POOL: &[&str] = &[POOL_NAME];

/// Every metric this crate emits, in the order of the README's table.
pub const METRICS: [MetricDescriptor; 13] = [
    MetricDescriptor {
        name: "db.client.connection.count",
        unit: "{connection}",
        kind: MetricKind::UpDownCounter,
        description: "Open connections, by state (idle in the pool or used by a caller)",
        attributes: &[POOL_NAME, CONNECTION_STATE],
    },
    MetricDescriptor {
        name: "db.client.connection.idle.max",
        unit: "{connection}",
        kind: MetricKind::UpDownCounter,
        description: "Most idle connections the pool keeps (max_connections: idle ones are not capped separately)",
        attributes: POOL,
    },
    MetricDescriptor {
        name: "db.client.connection.idle.min",
        unit: "{connection}",
        kind: MetricKind::UpDownCounter,
        description: "Connections the pool keeps open at least (min_connections)",
        attributes: POOL,
    },
    MetricDescriptor {
        name: "db.client.connection.max",
        unit: "{connection}",
        kind: MetricKind::UpDownCounter,
        description: "Most open connections allowed (max_connections)",
        attributes: POOL,
    },
    MetricDescriptor {
        name: "db.client.connection.pending_requests",
        unit: "{request}",
        kind: MetricKind::UpDownCounter,
        description: "Callers waiting in acquire() for a connection",
        attributes: POOL,
    },
    MetricDescriptor {
        name: "db.client.connection.timeouts",
        unit: "{timeout}",
        kind: MetricKind::Counter,
        description: "Acquires that ran out of acquire_timeout",
        attributes: POOL,
    },
    MetricDescriptor {
        name: "db.client.connection.create_time",
        unit: "s",
        kind: MetricKind::Histogram,
        description: "Time to open a physical connection",
        attributes: POOL,
    },
    MetricDescriptor {
        name: "db.client.connection.wait_time",
        unit: "s",
        kind: MetricKind::Histogram,
        description: "Time a successful acquire() took, waiting included (zero-ish when a connection was idle)",
        attributes: POOL,
    },
    MetricDescriptor {
        name: "db.client.connection.use_time",
        unit: "s",
        kind: MetricKind::Histogram,
        description: "Time a connection stayed checked out",
        attributes: POOL,
    },
    MetricDescriptor {
        name: "servio.pool.utilization",
        unit: "1",
        kind: MetricKind::Gauge,
        description: "Open connections as a fraction of max_connections",
        attributes: POOL,
    },
    MetricDescriptor {
        name: "servio.pool.paused",
        unit: "{pool}",
        kind: MetricKind::UpDownCounter,
        description: "1 while Pool::pause is in effect (acquires wait, no connection opens), else 0",
        attributes: POOL,
    },
    MetricDescriptor {
        name: "servio.pool.connection.closed",
        unit: "{connection}",
        kind: MetricKind::Counter,
        description: "Connections closed, by reason",
        attributes: &[POOL_NAME, CLOSE_REASON],
    },
    MetricDescriptor {
        name: "servio.pool.server.changes",
        unit: "{change}",
        kind: MetricKind::Counter,
        description: "Times new connections moved to another server of the pool's host list (a failover, a preferred server back)",
        attributes: POOL,
    },
];

impl MetricDescriptor {
    /// The descriptor of the metric named `name`, if this crate emits it.
    pub fn find(name: &str) -> Option<&'static MetricDescriptor> {
        METRICS.iter().find(|m| m.name == name)
    }

    /// The series names an OpenTelemetry Collector's `prometheus` exporter exposes for this
    /// metric with its default `translation_strategy: UnderscoreEscapingWithSuffixes`.
    ///
    /// The rules (the Collector's `otlptranslator`): every character outside
    /// `[a-zA-Z0-9:]` separates words, joined by `_`; the unit adds a word unless the name
    /// holds it already (`s` → `seconds`; `1` and `{annotations}` add none); a monotonic
    /// counter ends in `_total`; a gauge of unit `1` ends in `_ratio`; a histogram is exposed
    /// as `_bucket`, `_sum` and `_count` series. An up-down counter is a gauge without
    /// suffix.
    pub fn prometheus_names(&self) -> Vec<String> {
        let base = prometheus_base_name(self.name, self.unit, self.kind);
        match self.kind {
            MetricKind::Histogram => ["bucket", "sum", "count"]
                .iter()
                .map(|suffix| format!("{base}_{suffix}"))
                .collect(),
            _ => vec![base],
        }
    }
}

/// The Prometheus label an attribute key becomes (`db.client.connection.pool.name` →
/// `db_client_connection_pool_name`).
pub fn prometheus_label(attribute: &str) -> String {
    words(attribute).join("_")
}

fn words(name: &str) -> Vec<&str> {
    name.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|w| !w.is_empty())
        .collect()
}

fn unit_word(unit: &str) -> Option<&str> {
    let main = unit.split('/').next().unwrap_or_default().trim();
    if main.is_empty() || main.contains(['{', '}']) {
        return None;
    }
    let word = match main {
        "1" => return None,
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "%" => "percent",
        other => other,
    };
    Some(word)
}

fn prometheus_base_name(name: &str, unit: &str, kind: MetricKind) -> String {
    let mut tokens = words(name);
    if let Some(unit) = unit_word(unit)
        && !tokens.contains(&unit)
    {
        tokens.push(unit);
    }
    if kind == MetricKind::Counter {
        tokens.retain(|t| *t != "total");
        tokens.push("total");
    }
    if unit == "1" && kind == MetricKind::Gauge {
        tokens.retain(|t| *t != "ratio");
        tokens.push("ratio");
    }
    tokens.join("_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_matches_the_collector_examples() {
        // The examples documented with the Collector's translator.
        assert_eq!(
            prometheus_base_name("http.server.duration", "s", MetricKind::Histogram),
            "http_server_duration_seconds"
        );
        assert_eq!(
            prometheus_base_name("requests.count", "1", MetricKind::Counter),
            "requests_count_total"
        );
        assert_eq!(
            prometheus_base_name("memory.usage", "By", MetricKind::Gauge),
            "memory_usage_bytes"
        );
        assert_eq!(
            prometheus_base_name("cpu.utilization", "1", MetricKind::Gauge),
            "cpu_utilization_ratio"
        );
        assert_eq!(
            prometheus_base_name("queue.wait_seconds", "s", MetricKind::Gauge),
            "queue_wait_seconds"
        );
    }

    #[test]
    fn our_metrics_get_the_documented_prometheus_names() {
        let names = |n: &str| MetricDescriptor::find(n).unwrap().prometheus_names();
        assert_eq!(
            names("db.client.connection.count"),
            ["db_client_connection_count"]
        );
        assert_eq!(
            names("db.client.connection.timeouts"),
            ["db_client_connection_timeouts_total"]
        );
        assert_eq!(
            names("db.client.connection.wait_time"),
            [
                "db_client_connection_wait_time_seconds_bucket",
                "db_client_connection_wait_time_seconds_sum",
                "db_client_connection_wait_time_seconds_count"
            ]
        );
        assert_eq!(
            names("servio.pool.utilization"),
            ["servio_pool_utilization_ratio"]
        );
        assert_eq!(names("servio.pool.paused"), ["servio_pool_paused"]);
        assert_eq!(
            names("servio.pool.connection.closed"),
            ["servio_pool_connection_closed_total"]
        );
        assert_eq!(
            prometheus_label(POOL_NAME),
            "db_client_connection_pool_name"
        );
    }

    #[test]
    fn every_metric_carries_the_pool_name_and_the_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for m in &METRICS {
            assert_eq!(m.attributes.first(), Some(&POOL_NAME), "{}", m.name);
            assert!(seen.insert(m.name), "duplicate {}", m.name);
        }
    }

    #[test]
    fn buckets_ascend_and_resolve_sub_millisecond_waits() {
        assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert!(DURATION_BUCKETS.iter().filter(|b| **b < 0.001).count() >= 5);
    }
}
