//! Configuration errors: every one names the key, the value (unless secret), where it came
//! from, and what is accepted.

use std::fmt;
use std::path::PathBuf;

use crate::Source;

/// One configuration error.
///
/// Messages never contain a secret: a password's value is never echoed, and a
/// `DATABASE_URL` is shown with its password masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value of the wrong type or out of range.
    #[error("invalid `{key}`{} from {origin}: expected {expected}", shown(value.as_deref()))]
    Invalid {
        /// The dotted key, e.g. `max_connections` or `pools.replica.max_connections`.
        key: String,
        /// The value as written, or `None` for a secret.
        value: Option<String>,
        /// Where the value came from.
        origin: Source,
        /// What is accepted.
        expected: String,
    },
    /// A key that names no setting.
    #[error("unknown key `{key}` from {origin}: {}", suggestion.as_ref().map_or_else(
        || "see the settings listed in the pool-config README".to_owned(),
        |s| format!("did you mean `{s}`?")))]
    UnknownKey {
        /// The dotted key as written.
        key: String,
        /// Where it was written.
        origin: Source,
        /// The closest known key, when one is close.
        suggestion: Option<String>,
    },
    /// A connection setting with no default in this profile was not given.
    #[error("`{key}` is required in the {profile} profile: set {variable}")]
    Required {
        /// The dotted key, e.g. `host` or `pools.replica.host`.
        key: String,
        /// The profile that requires it.
        profile: crate::Profile,
        /// How to give it, e.g. `DB_HOST (or DATABASE_URL, or host in a config file)`.
        variable: String,
    },
    /// `APP_ENV` or `NODE_ENV` names no profile.
    #[error(
        "unknown profile `{value}` from {origin}: expected one of {}",
        crate::Profile::valid_names()
    )]
    UnknownProfile {
        /// The value as written.
        value: String,
        /// Where it was written.
        origin: Source,
    },
    /// A configuration file is not valid TOML.
    #[error("malformed TOML in {} at line {line}, column {column}: {message}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the error.
        line: usize,
        /// The 1-based column of the error.
        column: usize,
        /// What the parser expected; the offending text is not repeated.
        message: String,
    },
    /// A file named by the configuration could not be read.
    #[error("cannot read {what} {}: {reason}", path.display())]
    Unreadable {
        /// What the file is, e.g. `DB_PASSWORD_FILE` or `configuration file`.
        what: String,
        /// The file.
        path: PathBuf,
        /// The operating system's reason; never the file's contents.
        reason: String,
    },
    /// `DATABASE_URL` could not be used.
    #[error("invalid DATABASE_URL{}: {reason}; expected postgres://user:password@host:port/database?sslmode=prefer", shown(masked.as_deref()))]
    DatabaseUrl {
        /// The URL with its password masked, when it parsed far enough to mask it.
        masked: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// Two variables that exclude each other are both set.
    #[error("{first} and {second} are both set: set only one")]
    Conflict {
        /// The first variable.
        first: String,
        /// The second variable.
        second: String,
    },
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(String::new, |v| format!(" = {v}"))
}

/// Every error found while loading, reported at once.
///
/// `Display` lists one error per line.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// The errors, in the order they were found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// The number of errors.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether there are no errors.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Adds an error unless the same one is already listed (a base value shared by several
    /// pools is reported once).
    pub(crate) fn push(&mut self, error: ConfigError) {
        if !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }

    /// Keeps only the errors `keep` selects.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&ConfigError) -> bool) {
        self.errors.retain(keep);
    }

    /// `Ok(value)` when there are no errors, else `Err(self)`.
    pub(crate) fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        write!(
            f,
            "{count} configuration error{}",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.errors {
            write!(f, "\n- {error}")?;
        }
        Ok(())
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors {
            errors: vec![error],
        }
    }
}
