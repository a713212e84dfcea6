//! The `port` setting: one port for every host, or one per host (libpq's comma-separated
//! list).

use std::fmt;

use serde::{Serialize, Serializer};

/// The port of each host: one for all of them, or one per host in the order of `host`.
///
/// Written in configuration as a number (`5432`) or, for several, as libpq writes them
/// (`"5432,5433"`). Shown the same way.
///
/// # Examples
///
/// ```
/// use pool_config::Ports;
///
/// let ports: Ports = "5432, 5433".parse().unwrap();
/// assert_eq!(ports.as_slice(), &[5432, 5433]);
/// assert_eq!(ports.to_string(), "5432,5433");
/// assert_eq!(Ports::from(6432), 6432);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ports(Vec<u16>);

impl Ports {
    /// What a port setting accepts, for error messages.
    pub(crate) const ACCEPTED: &'static str =
        "a port number from 1 to 65535, or a comma-separated list of them, one per host";

    /// The ports, in the order given (never empty).
    pub fn as_slice(&self) -> &[u16] {
        &self.0
    }

    /// The port of host number `index` (0-based): its own, or the one port every host shares.
    pub fn for_host(&self, index: usize) -> u16 {
        match self.0.as_slice() {
            [one] => *one,
            many => many.get(index).copied().unwrap_or(many[0]),
        }
    }
}

impl From<u16> for Ports {
    fn from(port: u16) -> Self {
        Ports(vec![port])
    }
}

impl PartialEq<u16> for Ports {
    fn eq(&self, other: &u16) -> bool {
        self.0.as_slice() == [*other]
    }
}

impl std::str::FromStr for Ports {
    type Err = String;

    /// Parses `5432` or `5432,5433`; the error says what is accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(|p| p.trim().parse::<u16>().ok().filter(|p| *p != 0))
            .collect::<Option<Vec<u16>>>()
            .map(Ports)
            .ok_or_else(|| Self::ACCEPTED.to_owned())
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, port) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{port}")?;
        }
        Ok(())
    }
}

/// One port as a number, several as libpq's list, so the output reads back as configuration.
impl Serialize for Ports {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_u16(*one),
            _ => serializer.serialize_str(&self.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_show_as_libpq_writes_them() {
        let ports: Ports = "5432,5433".parse().unwrap();
        assert_eq!(ports.for_host(1), 5433);
        assert_eq!(Ports::from(5432).for_host(3), 5432);
        for bad in ["", "0", "5432,", "70000", "a,5432"] {
            assert_eq!(bad.parse::<Ports>().unwrap_err(), Ports::ACCEPTED, "{bad}");
        }
        assert_eq!(serde_json::to_value(Ports::from(5432)).unwrap(), 5432);
        assert_eq!(serde_json::to_value(&ports).unwrap(), "5432,5433");
    }
}
