//! Where an effective value came from (provenance).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::Profile;

/// Where an effective setting value came from.
///
/// # Examples
///
/// ```
/// use pool_config::{Loader, Source};
///
/// let settings = Loader::new().env([("DB_HOST", "db.internal")]).load().unwrap();
/// let source = settings.source_of("default", "host").unwrap();
/// assert_eq!(source.to_string(), "environment variable DB_HOST");
/// let source = settings.source_of("default", "port").unwrap();
/// assert_eq!(source.to_string(), "built-in default (development)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// The built-in default of a profile.
    BuiltIn {
        /// The profile whose default it is.
        profile: Profile,
    },
    /// A key in a TOML file.
    File {
        /// The file.
        path: PathBuf,
        /// The dotted key within the file, e.g. `pools.replica.max_connections`.
        key: String,
    },
    /// An environment variable.
    Env {
        /// The variable's name, e.g. `DB_HOST` or `SERVIO_POOL_MAX_CONNECTIONS`.
        var: String,
        /// What the variable pointed at, for `DATABASE_URL` (the URL, password masked) and
        /// `DB_PASSWORD_FILE` (the file path).
        detail: Option<String>,
    },
    /// Set in code on a [`PoolSettings`](crate::PoolSettings) value.
    Code,
    /// Given nowhere, with no default (connection settings in staging and production).
    Unset,
}

impl Source {
    /// The environment variable named by this source, if it is one.
    pub fn env_var(&self) -> Option<&str> {
        match self {
            Source::Env { var, .. } => Some(var),
            _ => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::BuiltIn { profile } => write!(f, "built-in default ({profile})"),
            Source::File { path, key } => write!(f, "{}: {key}", path.display()),
            Source::Env { var, detail: None } => write!(f, "environment variable {var}"),
            Source::Env {
                var,
                detail: Some(detail),
            } => write!(f, "environment variable {var} ({detail})"),
            Source::Code => f.write_str("set in code"),
            Source::Unset => f.write_str("not set"),
        }
    }
}
