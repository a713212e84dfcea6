//! The three health states of `application/health+json`.

use std::fmt;

use serde::Serialize;

/// The health of one check, one component or a whole report.
///
/// Ordered from best to worst, so the overall status of several checks is their maximum.
/// HTTP endpoints answer 200 for [`Status::Pass`] and [`Status::Warn`], 503 for
/// [`Status::Fail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Healthy.
    #[default]
    Pass,
    /// Healthy, with a concern an operator should look at (for example a pool at its maximum).
    Warn,
    /// Unhealthy: a readiness probe should stop sending traffic.
    Fail,
}

impl Status {
    /// The lower-case name used in reports: `pass`, `warn` or `fail`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }

    /// Whether a probe should count this as healthy (pass or warn).
    pub const fn is_healthy(self) -> bool {
        !matches!(self, Status::Fail)
    }

    /// The HTTP status code for this status: 200 for pass and warn, 503 for fail.
    pub const fn http_code(self) -> u16 {
        match self {
            Status::Pass | Status::Warn => 200,
            Status::Fail => 503,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = ParseStatusError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pass" => Ok(Status::Pass),
            "warn" => Ok(Status::Warn),
            "fail" => Ok(Status::Fail),
            _ => Err(ParseStatusError(s.to_owned())),
        }
    }
}

/// A string that is not `pass`, `warn` or `fail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown health status {0:?}: expected pass, warn or fail")]
pub struct ParseStatusError(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_status_wins() {
        let all = [Status::Pass, Status::Fail, Status::Warn];
        assert_eq!(all.iter().copied().max(), Some(Status::Fail));
        assert_eq!(
            [Status::Pass, Status::Warn].into_iter().max(),
            Some(Status::Warn)
        );
    }

    #[test]
    fn warn_is_served_as_healthy() {
        assert_eq!(Status::Pass.http_code(), 200);
        assert_eq!(Status::Warn.http_code(), 200);
        assert_eq!(Status::Fail.http_code(), 503);
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!("WARN".parse::<Status>(), Ok(Status::Warn));
        let err = "degraded".parse::<Status>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown health status \"degraded\": expected pass, warn or fail"
        );
    }

    #[test]
    fn serializes_lower_case() {
        assert_eq!(serde_json::to_string(&Status::Fail).unwrap(), "\"fail\"");
    }
}
