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
}

impl ServerFacts {
    /// The query that reads the facts, in one round trip.
    pub(crate) const QUERY: &'static str = "SELECT current_setting('server_version'), \
        current_setting('max_connections')::int4, \
        current_setting('superuser_reserved_connections')::int4 \
          + coalesce(current_setting('reserved_connections', true)::int4, 0), \
        (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
           OR (backend_type IS NULL AND datid IS NOT NULL AND usesysid IS NOT NULL))::int4";

    pub(crate) fn from_row(row: (String, i32, i32, i32)) -> Self {
        let unsigned = |v: i32| u32::try_from(v).unwrap_or(0);
        ServerFacts {
            version: row.0,
            max_connections: unsigned(row.1),
            reserved_connections: unsigned(row.2),
            connections: unsigned(row.3),
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
        let facts = ServerFacts::from_row(("15.8".into(), 100, 3, 12));
        assert_eq!(facts.available_connections(), 97);
        let odd = ServerFacts::from_row(("15.8".into(), 2, 3, -1));
        assert_eq!(odd.available_connections(), 0);
        assert_eq!(odd.connections, 0);
    }
}
