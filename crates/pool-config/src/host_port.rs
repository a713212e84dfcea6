//! One server of a pool's host list.

use std::fmt;

/// One server a pool may connect to: a host name, address or Unix-socket directory, and its
/// port. [`PoolSettings::hosts`](crate::PoolSettings::hosts) lists them in configuration
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name, IP address, or a Unix-socket directory (starting with `/`).
    pub host: String,
    /// TCP port (or the socket file's number, for a directory).
    pub port: u16,
}

impl fmt::Display for HostPort {
    /// `host:port`, with an IPv6 address in brackets (`[::1]:5432`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The entries of a `host` setting: libpq's comma-separated list, each trimmed. A single
/// host (no comma) is one entry, even when empty.
pub(crate) fn split_hosts(host: &str) -> Vec<&str> {
    host.split(',').map(str::trim).collect()
}
