//! Facts about the PostgreSQL server behind a pool, for operators.

use serde::Serialize;

/// What the server said about itself during the last full check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ServerFacts {
    /// `server_version`, such as `15.8 (Debian 15.8-0+deb12u1)`.
    pub version: String,
    /// The server's `max_connections`.
    pub max_connections: u32,
    /// Connections ordinary roles cannot use: `superuser_reserved_connections`, plus
    /// `reserved_connections` on PostgreSQL 16 and later.
    pub reserved_connections: u32,
    /// Client connections open on the server now, from every client (this pool's included).
    /// Sessions of other roles count too: a role without `pg_read_all_stats` cannot see
    /// their kind, so every session of a user in a database counts as a client.
    pub connections: u32,
    /// The server's role: `primary`, or `standby` while it is in recovery (a hot standby).
    pub role: ServerRole,
    /// On a standby, how far its replay trails the primary, in milliseconds: zero when it
    /// has replayed everything it received, else the age of the last transaction it
    /// replayed. `None` on a primary, and on a standby that has replayed nothing yet.
    pub replication_lag_ms: Option<u64>,
}

/// Whether a server is a primary or a standby.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ServerRole {
    /// Not in recovery: it takes writes (unless made read-only).
    Primary,
    /// In recovery: a hot standby replaying a primary's WAL, read-only.
    Standby,
}

impl ServerRole {
    /// `primary` or `standby`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ServerRole::Primary => "primary",
            ServerRole::Standby => "standby",
        }
    }
}

impl ServerFacts {
    /// The query that reads the facts, in one round trip.
    pub(crate) const QUERY: &'static str = "SELECT current_setting('server_version'), \
        current_setting('max_connections')::int4, \
        current_setting('superuser_reserved_connections')::int4 \
          + coalesce(current_setting('reserved_connections', true)::int4, 0), \
        (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
           OR (backend_type IS NULL AND datid IS NOT NULL AND usesysid IS NOT NULL))::int4, \
        pg_is_in_recovery(), \
        CASE WHEN NOT pg_is_in_recovery() THEN NULL \
             WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
             ELSE (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::int8 END";

    pub(crate) fn from_row(row: (String, i32, i32, i32), standby: bool, lag: Option<i64>) -> Self {
        let unsigned = |v: i32| u32::try_from(v).unwrap_or(0);
        ServerFacts {
            version: row.0,
            max_connections: unsigned(row.1),
            reserved_connections: unsigned(row.2),
            connections: unsigned(row.3),
            role: if standby {
                ServerRole::Standby
            } else {
                ServerRole::Primary
            },
            replication_lag_ms: lag.map(|ms| u64::try_from(ms).unwrap_or(0)),
        }
    }

    /// Connections ordinary roles can open: `max_connections` minus the reserved ones.
    pub fn available_connections(&self) -> u32 {
        self.max_connections
            .saturating_sub(self.reserved_connections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_connections_leave_out_the_reserved_ones() {
        let facts = ServerFacts::from_row(("15.8".into(), 100, 3, 12), false, None);
        assert_eq!(facts.available_connections(), 97);
        let odd = ServerFacts::from_row(("15.8".into(), 2, 3, -1), true, Some(-5));
        assert_eq!(odd.replication_lag_ms, Some(0));
        assert_eq!(odd.available_connections(), 0);
        assert_eq!(odd.connections, 0);
    }
}
