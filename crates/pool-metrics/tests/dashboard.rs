//! The shipped Grafana dashboard queries only metrics we emit, under the names the
//! Collector's Prometheus exporter gives them, and only labels those metrics carry.

use std::collections::BTreeSet;
use std::path::PathBuf;

use pool_metrics::{METRICS, prometheus_label};
use serde_json::Value;

fn config_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../config")
        .join(relative)
}

fn dashboard() -> Value {
    let path = config_path("dashboards/servio-pool.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Every PromQL expression of the dashboard: panel targets and query variables.
fn expressions(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        panels.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            panels.extend(nested);
        }
    }
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(target["expr"].as_str().expect("target expr").to_owned());
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if var["type"] == "query" {
            let query = &var["query"];
            let text = query["query"]
                .as_str()
                .or(query.as_str())
                .expect("variable query");
            out.push(text.to_owned());
        }
    }
    out
}

/// Metric and label names referenced by one PromQL expression (Grafana's `label_values()`
/// included).
#[derive(Debug, Default)]
struct Names {
    metrics: BTreeSet<String>,
    labels: BTreeSet<String>,
}

/// PromQL words that are no metric: binary and set operators, modifiers, aggregation
/// operators (which may be followed by `by (...)` rather than `(`).
const KEYWORDS: &[&str] = &[
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "limitk",
    "limit_ratio",
];

/// The index of the `close` character ending the group opened at `open`, skipping quoted
/// strings (a matcher value may hold `}`).
fn closing(chars: &[char], open: usize, close: char) -> usize {
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => i = quote_end(chars, i),
            c if c == close => return i,
            _ => {}
        }
        i += 1;
    }
    panic!(
        "unclosed {:?} in {}",
        chars[open],
        chars.iter().collect::<String>()
    );
}

/// The index of the quote ending the string opened at `open` (backslash escapes skipped).
fn quote_end(chars: &[char], open: usize) -> usize {
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '"' => return i,
            _ => {}
        }
        i += 1;
    }
    panic!("unclosed string in {}", chars.iter().collect::<String>());
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Label names inside `{...}` matchers: `name op "value"` separated by commas.
fn matcher_labels(inner: &[char], names: &mut Names) {
    let mut i = 0;
    let mut name = String::new();
    while i < inner.len() {
        match inner[i] {
            '"' => {
                let label = std::mem::take(&mut name);
                names.labels.insert(label.trim().to_owned());
                i = quote_end(inner, i);
            }
            '=' | '!' | '~' | ',' => {}
            c if c.is_whitespace() => {}
            c => name.push(c),
        }
        i += 1;
    }
}

fn parse(expr: &str) -> Names {
    let mut names = Names::default();
    if let Some(args) = expr.trim().strip_prefix("label_values(") {
        let args = args.strip_suffix(')').expect("label_values closes");
        let (selector, label) = args
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        names.labels.insert(label.trim().to_owned());
        let inner = parse(selector);
        names.metrics.extend(inner.metrics);
        names.labels.extend(inner.labels);
        return names;
    }
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut grouping = false; // the next '(' opens a by/without/on/ignoring label list
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            let end = closing(&chars, i, '}');
            matcher_labels(&chars[i + 1..end], &mut names);
            i = end + 1;
        } else if c == '[' {
            i = closing(&chars, i, ']') + 1;
        } else if c == '"' {
            i = quote_end(&chars, i) + 1;
        } else if c == '(' && grouping {
            let end = closing(&chars, i, ')');
            let list: String = chars[i + 1..end].iter().collect();
            names
                .labels
                .extend(list.split(',').map(|l| l.trim().to_owned()));
            grouping = false;
            i = end + 1;
        } else if c.is_ascii_digit() || c == '.' {
            // A number (0.99, 1e3): skip it whole so its exponent is no identifier.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c == '$' {
            // A Grafana variable ($job, $__rate_interval).
            i += 1;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
            if matches!(
                word.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) {
                grouping = true;
            } else if next == Some('(') || KEYWORDS.contains(&word.as_str()) {
                // A function or aggregation operator.
            } else {
                names.metrics.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn the_parser_finds_metrics_and_labels() {
    let names = parse(
        r#"histogram_quantile(0.99, sum by (pool, le) (rate(x_seconds_bucket{job=~"$job", a!="}"}[$__rate_interval]))) / on(pool) y_total"#,
    );
    assert_eq!(
        names.metrics,
        BTreeSet::from(["x_seconds_bucket".into(), "y_total".into()])
    );
    assert_eq!(
        names.labels,
        BTreeSet::from(["pool".into(), "le".into(), "job".into(), "a".into()])
    );
    let names = parse(r#"label_values(m{job=~"$job"}, db_pool)"#);
    assert_eq!(names.metrics, BTreeSet::from(["m".into()]));
    assert_eq!(
        names.labels,
        BTreeSet::from(["job".into(), "db_pool".into()])
    );
}

#[test]
fn every_metric_the_dashboard_queries_is_one_we_emit() {
    let emitted: BTreeSet<String> = METRICS.iter().flat_map(|m| m.prometheus_names()).collect();
    let mut queried = BTreeSet::new();
    for expr in expressions(&dashboard()) {
        let names = parse(&expr);
        assert!(!names.metrics.is_empty(), "no metric found in {expr}");
        for metric in names.metrics {
            assert!(
                emitted.contains(&metric),
                "the dashboard queries {metric}, which pool-metrics does not emit \
                 (emitted: {emitted:?}); expression: {expr}"
            );
            queried.insert(metric);
        }
    }
    // What the dashboard promises to show.
    for needed in [
        "db_client_connection_count",
        "servio_pool_utilization_ratio",
        "db_client_connection_pending_requests",
        "db_client_connection_timeouts_total",
        "db_client_connection_wait_time_seconds_bucket",
        "db_client_connection_use_time_seconds_bucket",
        "db_client_connection_create_time_seconds_bucket",
    ] {
        assert!(
            queried.contains(needed),
            "the dashboard never shows {needed}"
        );
    }
}

#[test]
fn every_label_the_dashboard_uses_is_one_the_series_carry() {
    // Attributes become labels; the Collector adds job (service.name) and instance, the
    // histogram series carry le.
    let mut known: BTreeSet<String> = METRICS
        .iter()
        .flat_map(|m| m.attributes.iter().map(|a| prometheus_label(a)))
        .collect();
    known.extend(["job", "instance", "le"].map(String::from));
    for expr in expressions(&dashboard()) {
        for label in parse(&expr).labels {
            assert!(known.contains(&label), "unknown label {label} in {expr}");
        }
    }
}

#[test]
fn the_collector_config_receives_otlp_and_exposes_prometheus() {
    let path = config_path("otel-collector.yaml");
    let text = std::fs::read_to_string(&path).expect("collector config");
    for needed in [
        "otlp:",
        "grpc:",
        "endpoint: 0.0.0.0:4317",
        "http:",
        "endpoint: 0.0.0.0:4318",
        "prometheus:",
        "translation_strategy: UnderscoreEscapingWithSuffixes",
        "receivers: [otlp]",
        "exporters: [prometheus]",
    ] {
        assert!(text.contains(needed), "{} lacks `{needed}`", path.display());
    }
}
