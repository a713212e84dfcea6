//! The PgBouncer pool mode the pool runs behind.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The PgBouncer pool mode between the service and PostgreSQL.
///
/// Set `pgbouncer = "session"` or `"transaction"` when the pool connects through PgBouncer;
/// the pool then avoids what PgBouncer cannot carry (statement caching, startup options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PgBouncerMode {
    /// One server connection per client connection for the client's whole session.
    Session,
    /// A server connection per transaction: session state does not survive a transaction.
    Transaction,
}

impl PgBouncerMode {
    /// The mode's name as written in TOML.
    pub const fn as_str(self) -> &'static str {
        match self {
            PgBouncerMode::Session => "session",
            PgBouncerMode::Transaction => "transaction",
        }
    }
}

impl fmt::Display for PgBouncerMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PgBouncerMode {
    type Err = String;

    /// Parses a mode name; the error says what is accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "session" => Ok(PgBouncerMode::Session),
            "transaction" => Ok(PgBouncerMode::Transaction),
            _ => Err("one of off, session, transaction".to_owned()),
        }
    }
}
