//! The `application/health+json` report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

use crate::category::Category;
use crate::server_facts::ServerFacts;
use crate::status::Status;

/// The media type of a serialized [`HealthReport`] (draft-inadarei-api-health-check).
pub const HEALTH_JSON: &str = "application/health+json";

/// Which question a report answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Probe {
    /// Is the process working? Never depends on the database: an orchestrator restarts a
    /// process that fails it, and restarting cannot fix a database outage.
    Live,
    /// Should the process get traffic? Depends on the database and the pool's load.
    Ready,
    /// Everything, including pool statistics and server facts, for operators.
    Full,
}

impl Probe {
    /// `live`, `ready` or `full`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Probe::Live => "live",
            Probe::Ready => "ready",
            Probe::Full => "full",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Probe::Live => "servio-pool liveness",
            Probe::Ready => "servio-pool readiness",
            Probe::Full => "servio-pool health",
        }
    }
}

/// What a check looked at: a connection pool, or the database server behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ComponentType {
    /// The PostgreSQL server.
    Datastore,
    /// The connection pool in this process.
    Component,
}

/// One observation of one check for one pool: an entry of a report's `checks` lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    component_id: String,
    component_type: ComponentType,
    #[serde(skip_serializing_if = "Option::is_none")]
    observed_value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observed_unit: Option<&'static str>,
    status: Status,
    #[serde(serialize_with = "serialize_time")]
    time: SystemTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    #[serde(skip)]
    category: Option<Category>,
}

impl CheckResult {
    pub(crate) fn new(
        component_id: &str,
        component_type: ComponentType,
        status: Status,
        time: SystemTime,
    ) -> Self {
        CheckResult {
            component_id: component_id.to_owned(),
            component_type,
            observed_value: None,
            observed_unit: None,
            status,
            time,
            output: None,
            category: None,
        }
    }

    pub(crate) fn with_category(mut self, category: Category) -> Self {
        self.category = Some(category);
        self
    }

    /// The same check as a public probe may show it: status, and for a check that warns or
    /// fails its category as `output`; no observed value, no message.
    fn public(&self) -> CheckResult {
        let category = (self.status != Status::Pass)
            .then_some(self.category)
            .flatten();
        CheckResult {
            component_id: self.component_id.clone(),
            component_type: self.component_type,
            observed_value: None,
            observed_unit: None,
            status: self.status,
            time: self.time,
            output: category.map(|c| c.as_str().to_owned()),
            category,
        }
    }

    /// Why the check warns or fails, in a fixed word (see [`Category`]); `None` when it
    /// passes or the reason fits none.
    pub fn category(&self) -> Option<Category> {
        self.category
    }

    pub(crate) fn with_value(
        mut self,
        value: impl Into<Value>,
        unit: Option<&'static str>,
    ) -> Self {
        self.observed_value = Some(value.into());
        self.observed_unit = unit;
        self
    }

    pub(crate) fn with_output(mut self, output: impl Into<String>) -> Self {
        self.output = Some(output.into());
        self
    }

    /// The pool's name.
    pub fn component_id(&self) -> &str {
        &self.component_id
    }

    /// Whether this looked at the server or at the pool.
    pub fn component_type(&self) -> ComponentType {
        self.component_type
    }

    /// What was measured (a number, a string or, for `pool:stats`, an object).
    pub fn observed_value(&self) -> Option<&Value> {
        self.observed_value.as_ref()
    }

    /// The unit of [`observed_value`](Self::observed_value), such as `ms` or `connections`.
    pub fn observed_unit(&self) -> Option<&str> {
        self.observed_unit
    }

    /// This check's status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// When the observation was made (cached database results keep their original time).
    pub fn time(&self) -> SystemTime {
        self.time
    }

    /// Why the check warns or fails, in words; `None` when it passes.
    pub fn output(&self) -> Option<&str> {
        self.output.as_deref()
    }
}

fn serialize_time<S: serde::Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*time))
}

/// A health report: an overall status and the results of every check, serialized in the
/// `application/health+json` shape:
///
/// ```json
/// { "status": "pass", "description": "servio-pool readiness",
///   "checks": { "postgres:connectivity": [ { "componentId": "default",
///     "componentType": "datastore", "observedValue": 0.412, "observedUnit": "ms",
///     "status": "pass", "time": "2026-01-01T12:00:00.000Z" } ] } }
/// ```
///
/// The overall status is the worst of the checks'; `output` then lists the failing and warning
/// ones. A report never contains a password, and names hosts only when the checker was told to
/// ([`HealthOptions::show_hosts`](crate::HealthOptions::show_hosts)).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    probe: Probe,
    status: Status,
    output: Option<String>,
    checks: BTreeMap<&'static str, Vec<CheckResult>>,
    facts: Vec<(String, ServerFacts)>,
}

impl HealthReport {
    pub(crate) fn new(probe: Probe, results: Vec<(&'static str, CheckResult)>) -> Self {
        let mut checks: BTreeMap<&'static str, Vec<CheckResult>> = BTreeMap::new();
        for (key, result) in results {
            checks.entry(key).or_default().push(result);
        }
        let status = checks
            .values()
            .flatten()
            .map(CheckResult::status)
            .max()
            .unwrap_or(Status::Pass);
        let mut output = String::new();
        for (key, result) in checks
            .iter()
            .flat_map(|(k, rs)| rs.iter().map(move |r| (k, r)))
        {
            if result.status == Status::Pass {
                continue;
            }
            if !output.is_empty() {
                output.push_str("; ");
            }
            let _ = write!(output, "{} {key} {}", result.component_id, result.status);
            if let Some(why) = &result.output {
                let _ = write!(output, ": {why}");
            }
        }
        HealthReport {
            probe,
            status,
            output: (!output.is_empty()).then_some(output),
            checks,
            facts: Vec::new(),
        }
    }

    /// The report as a public probe may show it: the overall status, each check's status and
    /// [`Category`], and as `output` the categories of the checks that warn or fail. No
    /// server facts, statistics, counts, latencies, host, user or database names, or driver
    /// messages: those stay in this report, for the operator endpoint
    /// ([`http::operator_router`](crate::http::operator_router)) and `poolctl check`.
    pub fn public(&self) -> HealthReport {
        let checks: BTreeMap<&'static str, Vec<CheckResult>> = self
            .checks
            .iter()
            .map(|(key, results)| (*key, results.iter().map(CheckResult::public).collect()))
            .collect();
        let mut categories: Vec<Category> = checks
            .values()
            .flatten()
            .filter_map(|r| r.category)
            .collect();
        categories.sort();
        categories.dedup();
        let output = categories
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        HealthReport {
            probe: self.probe,
            status: self.status,
            output: (!output.is_empty()).then_some(output),
            checks,
            facts: Vec::new(),
        }
    }

    pub(crate) fn with_facts(mut self, facts: Vec<(String, ServerFacts)>) -> Self {
        self.facts = facts;
        self
    }

    /// What the server behind `pool` said about itself, in a full report whose round trip
    /// reached it.
    pub fn server_facts(&self, pool: &str) -> Option<&ServerFacts> {
        self.facts.iter().find(|(p, _)| p == pool).map(|(_, f)| f)
    }

    /// Which question this report answers.
    pub fn probe(&self) -> Probe {
        self.probe
    }

    /// The overall status: the worst of every check's.
    pub fn status(&self) -> Status {
        self.status
    }

    /// A summary of the checks that warn or fail; `None` when everything passes.
    pub fn output(&self) -> Option<&str> {
        self.output.as_deref()
    }

    /// Every check, by key (see [`keys`](crate::keys)), each with one result per pool.
    pub fn checks(&self) -> impl Iterator<Item = (&str, &[CheckResult])> {
        self.checks.iter().map(|(k, v)| (*k, v.as_slice()))
    }

    /// The results of one check, one per pool.
    pub fn check(&self, key: &str) -> &[CheckResult] {
        self.checks.get(key).map_or(&[], Vec::as_slice)
    }

    /// The result of one check for one pool.
    pub fn find(&self, key: &str, pool: &str) -> Option<&CheckResult> {
        self.check(key).iter().find(|r| r.component_id == pool)
    }

    /// The report as an `application/health+json` value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Serialize for HealthReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("status", &self.status)?;
        map.serialize_entry("description", self.probe.description())?;
        if let Some(output) = &self.output {
            map.serialize_entry("output", output)?;
        }
        map.serialize_entry("checks", &self.checks)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::keys;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn overall_status_is_the_worst_and_output_names_the_culprits() {
        let report = HealthReport::new(
            Probe::Ready,
            vec![
                (
                    keys::CONNECTIVITY,
                    CheckResult::new("default", ComponentType::Datastore, Status::Pass, at(0))
                        .with_value(0.5, Some("ms")),
                ),
                (
                    keys::POOL_WAITING,
                    CheckResult::new("replica", ComponentType::Component, Status::Fail, at(0))
                        .with_value(12, Some("requests"))
                        .with_output("12 callers waiting, more than 10"),
                ),
            ],
        );
        assert_eq!(report.status(), Status::Fail);
        assert_eq!(
            report.output(),
            Some("replica pool:waiting fail: 12 callers waiting, more than 10")
        );
        assert_eq!(
            report
                .find(keys::POOL_WAITING, "replica")
                .map(CheckResult::status),
            Some(Status::Fail)
        );
        assert!(report.find(keys::POOL_WAITING, "default").is_none());
    }

    #[test]
    fn serializes_in_the_health_json_shape() {
        let report = HealthReport::new(
            Probe::Ready,
            vec![(
                keys::CONNECTIVITY,
                CheckResult::new("default", ComponentType::Datastore, Status::Pass, at(60))
                    .with_value(0.5, Some("ms")),
            )],
        );
        let json = report.to_json();
        assert_eq!(
            json,
            serde_json::json!({
                "status": "pass",
                "description": "servio-pool readiness",
                "checks": {
                    "postgres:connectivity": [{
                        "componentId": "default",
                        "componentType": "datastore",
                        "observedValue": 0.5,
                        "observedUnit": "ms",
                        "status": "pass",
                        "time": "1970-01-01T00:01:00.000Z"
                    }]
                }
            })
        );
    }

    #[test]
    fn an_empty_report_passes() {
        let report = HealthReport::new(Probe::Live, Vec::new());
        assert_eq!(report.status(), Status::Pass);
        assert_eq!(report.output(), None);
        assert!(report.check(keys::POOL_OPEN).is_empty());
    }
}
