//! Which kind of server a connection wants (libpq's `target_session_attrs`), and how the
//! hosts of a list are ordered (libpq's `load_balance_hosts`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// What a server must be for a connection to stay on it (libpq's `target_session_attrs`).
///
/// With several hosts, each is tried in turn and a server that does not fit is skipped. With
/// one host the setting still refuses a server that does not fit (the lint warns that it
/// cannot route anywhere else).
///
/// | value | accepts |
/// |---|---|
/// | `any` | any server |
/// | `read-write` | a server whose sessions accept writes by default |
/// | `read-only` | a server whose sessions are read-only by default (a standby, or `default_transaction_read_only = on`) |
/// | `primary` | a server not in recovery |
/// | `standby` | a server in recovery (a hot standby) |
/// | `prefer-standby` | a standby if one answers, else any server |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetSessionAttrs {
    /// Any server; nothing is checked.
    #[default]
    Any,
    /// A server that accepts writes.
    ReadWrite,
    /// A server whose sessions are read-only.
    ReadOnly,
    /// A server that is not in recovery.
    Primary,
    /// A server in recovery.
    Standby,
    /// A standby while one answers, else any server.
    PreferStandby,
}

impl TargetSessionAttrs {
    /// Every value, in libpq's order.
    pub const ALL: [TargetSessionAttrs; 6] = [
        TargetSessionAttrs::Any,
        TargetSessionAttrs::ReadWrite,
        TargetSessionAttrs::ReadOnly,
        TargetSessionAttrs::Primary,
        TargetSessionAttrs::Standby,
        TargetSessionAttrs::PreferStandby,
    ];

    /// The value as written in TOML and `DATABASE_URL`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
            TargetSessionAttrs::PreferStandby => "prefer-standby",
        }
    }

    /// Whether a server with these facts fits. `PreferStandby` accepts any server here: the
    /// preference is applied by trying the standbys first.
    pub const fn accepts(self, in_recovery: bool, read_only: bool) -> bool {
        match self {
            TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby => true,
            TargetSessionAttrs::ReadWrite => !read_only,
            TargetSessionAttrs::ReadOnly => read_only,
            TargetSessionAttrs::Primary => !in_recovery,
            TargetSessionAttrs::Standby => in_recovery,
        }
    }
}

impl fmt::Display for TargetSessionAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TargetSessionAttrs {
    type Err = String;

    /// Parses a value; the error says what is accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TargetSessionAttrs::ALL
            .into_iter()
            .find(|t| t.as_str() == s.trim())
            .ok_or_else(|| {
                "one of any, read-write, read-only, primary, standby, prefer-standby".to_owned()
            })
    }
}

/// The order in which the hosts of a list are tried (libpq's `load_balance_hosts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadBalanceHosts {
    /// In the order they are listed: the first that answers and fits gets every connection.
    #[default]
    Disable,
    /// In a fresh random order for every connection, spreading connections over the hosts
    /// that fit.
    Random,
}

impl LoadBalanceHosts {
    /// The value as written in TOML and `DATABASE_URL`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LoadBalanceHosts::Disable => "disable",
            LoadBalanceHosts::Random => "random",
        }
    }
}

impl fmt::Display for LoadBalanceHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LoadBalanceHosts {
    type Err = String;

    /// Parses a value; the error says what is accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "disable" => Ok(LoadBalanceHosts::Disable),
            "random" => Ok(LoadBalanceHosts::Random),
            _ => Err("one of disable, random".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_from_its_name() {
        for t in TargetSessionAttrs::ALL {
            assert_eq!(t.as_str().parse::<TargetSessionAttrs>(), Ok(t));
        }
        assert!(
            "read_write"
                .parse::<TargetSessionAttrs>()
                .unwrap_err()
                .contains("prefer-standby")
        );
        assert_eq!("random".parse(), Ok(LoadBalanceHosts::Random));
        assert!("on".parse::<LoadBalanceHosts>().is_err());
    }

    #[test]
    fn servers_fit_as_in_libpq() {
        use TargetSessionAttrs as T;
        // (in recovery, read-only): a primary, a read-only primary, a standby.
        let primary = (false, false);
        let read_only_primary = (false, true);
        let standby = (true, true);
        let fits = |t: T, (r, ro): (bool, bool)| t.accepts(r, ro);
        assert!(fits(T::ReadWrite, primary) && !fits(T::ReadWrite, standby));
        assert!(!fits(T::ReadWrite, read_only_primary) && fits(T::Primary, read_only_primary));
        assert!(fits(T::ReadOnly, read_only_primary) && fits(T::ReadOnly, standby));
        assert!(fits(T::Standby, standby) && !fits(T::Standby, primary));
        assert!(fits(T::PreferStandby, primary) && fits(T::Any, standby));
    }
}
