//! A string that is never shown.

use std::fmt;

use std::path::Path;

use serde::{Serialize, Serializer};

use crate::ConfigError;

/// A secret string, such as a database password.
///
/// `Debug`, `Display` and `Serialize` print `***`; only [`Secret::expose`] gives the value.
/// The value is kept verbatim: `12345`, `0123` and `true` are passwords, not numbers.
///
/// # Examples
///
/// ```
/// use pool_config::Secret;
///
/// let password = Secret::new("0123");
/// assert_eq!(password.expose(), "0123");
/// assert_eq!(format!("{password} {password:?}"), "*** ***");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The text shown wherever a secret would be.
    pub const MASK: &'static str = "***";

    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value, for handing to the database driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The largest secret file read, in bytes: far above any real password, far below
    /// anything that could hurt when a variable points at the wrong file (a log, a device).
    pub const MAX_FILE_LEN: u64 = 4096;

    /// Reads a mounted secret file (such as the one `DB_PASSWORD_FILE` names): the whole
    /// file, less one trailing newline. Call it again to pick up a rotated secret.
    ///
    /// # Errors
    ///
    /// When the file cannot be read, is not UTF-8, is empty (a secret that was never
    /// written, or a mount that failed, must not pass for "no password"), or is longer than
    /// [`MAX_FILE_LEN`](Self::MAX_FILE_LEN) (no more is read). The error names
    /// `DB_PASSWORD_FILE` and the path, never the contents.
    pub fn read_file(path: &Path) -> Result<Secret, ConfigError> {
        Self::read_file_named(path, "DB_PASSWORD_FILE")
    }

    /// [`read_file`](Self::read_file) for a file named by `named_by` (a variable or a key),
    /// which errors name.
    pub(crate) fn read_file_named(path: &Path, named_by: &str) -> Result<Secret, ConfigError> {
        use std::io::Read as _;
        let unreadable = |reason: String| ConfigError::Unreadable {
            what: format!("the password file named by {named_by}"),
            path: path.to_owned(),
            reason,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(Self::MAX_FILE_LEN + 1).read_to_end(&mut bytes))
            .map_err(|e| unreadable(e.to_string()))?;
        if bytes.len() as u64 > Self::MAX_FILE_LEN {
            return Err(unreadable(format!(
                "it is longer than {} bytes, too long for a password: check that \
                 {named_by} names the password file",
                Self::MAX_FILE_LEN
            )));
        }
        let mut secret =
            String::from_utf8(bytes).map_err(|_| unreadable("it is not UTF-8 text".to_owned()))?;
        if secret.ends_with('\n') {
            secret.pop();
            if secret.ends_with('\r') {
                secret.pop();
            }
        }
        if secret.is_empty() {
            return Err(unreadable(format!(
                "it is empty: write the password into it, or unset {named_by}"
            )));
        }
        Ok(Secret(secret))
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(Self::MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_form_masks_the_value() {
        let secret = Secret::new("hunter2-s3cr3t");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{secret:#?}"), "***");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"***\"");
        assert_eq!(secret.expose(), "hunter2-s3cr3t");
    }
}
