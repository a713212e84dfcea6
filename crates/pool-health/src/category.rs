//! The fixed categories a public probe may name when a check warns or fails.

use std::fmt;

use serde::Serialize;

/// Why a check warns or fails, in the only words a public probe uses.
///
/// Public endpoints ([`HealthReport::public`](crate::HealthReport::public)) show a status
/// and one of these per check, never a driver message, a server fact or a count: such details
/// (user and database names, client addresses, the server version) help an attacker more than
/// an orchestrator. The operator report keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Category {
    /// The server could not be reached, or broke the connection.
    Unreachable,
    /// The server refused the login: credentials, `pg_hba.conf`, or a database that does not
    /// exist (SQLSTATE class 28 and 3D000).
    Authentication,
    /// The server did not answer within the check's deadline.
    Timeout,
    /// Callers wait too long for a connection, or acquires time out.
    Saturated,
    /// The pool is closing or closed.
    Closing,
}

impl Category {
    /// The lower-case name used in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Unreachable => "unreachable",
            Category::Authentication => "authentication",
            Category::Timeout => "timeout",
            Category::Saturated => "saturated",
            Category::Closing => "closing",
        }
    }

    /// The category of a driver error: a refused login or an unknown database is
    /// `authentication`, anything else `unreachable`.
    pub(crate) fn of(error: &sqlx::Error) -> Self {
        match error {
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|code| code.starts_with("28") || code == "3D000") =>
            {
                Category::Authentication
            }
            _ => Category::Unreachable,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
