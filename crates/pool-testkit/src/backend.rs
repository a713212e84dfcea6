//! Which kind of PostgreSQL a test run gets: a container, a native server, or a server named
//! by URL, chosen by `SERVIO_TEST_BACKEND`.

use std::fmt;
use std::str::FromStr;

/// Environment variable that chooses the backend: `docker`, `native`, `url` or `auto`.
pub const BACKEND_ENV: &str = "SERVIO_TEST_BACKEND";
/// Environment variable naming an existing server by a superuser URL (the `url` backend).
pub const DATABASE_URL_ENV: &str = "SERVIO_TEST_DATABASE_URL";

/// A way to get a PostgreSQL server for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backend {
    /// The first that works of docker, native and url.
    #[default]
    Auto,
    /// A container through testcontainers: the official `postgres` image when it is present
    /// or can be pulled, else an image built locally from the installed PostgreSQL binaries.
    Docker,
    /// `initdb` + `pg_ctl` on a free 127.0.0.1 port, as an unprivileged user when we are root.
    Native,
    /// The existing server named by `SERVIO_TEST_DATABASE_URL` (a superuser URL).
    Url,
}

impl Backend {
    /// The backend `SERVIO_TEST_BACKEND` names; [`Backend::Auto`] when it is unset or empty.
    ///
    /// # Errors
    ///
    /// When the variable holds anything else than the four names.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var(BACKEND_ENV) {
            Ok(value) if !value.trim().is_empty() => value
                .parse()
                .map_err(|error: UnknownBackend| anyhow::anyhow!("{BACKEND_ENV}: {error}")),
            _ => Ok(Self::Auto),
        }
    }

    /// The name used by `SERVIO_TEST_BACKEND` and `--backend`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Docker => "docker",
            Self::Native => "native",
            Self::Url => "url",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend name that is none of `docker`, `native`, `url`, `auto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBackend(String);

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown backend `{}`: expected one of docker, native, url, auto",
            self.0
        )
    }
}

impl std::error::Error for UnknownBackend {}

impl FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "docker" => Ok(Self::Docker),
            "native" => Ok(Self::Native),
            "url" => Ok(Self::Url),
            _ => Err(UnknownBackend(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_case_insensitively_and_unknown_ones_are_listed() {
        assert_eq!("Docker".parse::<Backend>(), Ok(Backend::Docker));
        assert_eq!(" native ".parse::<Backend>(), Ok(Backend::Native));
        let error = "podman".parse::<Backend>().unwrap_err().to_string();
        assert!(error.contains("podman") && error.contains("docker, native, url, auto"));
    }
}
