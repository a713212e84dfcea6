//! The deployment profile that selects built-in defaults and `config/<profile>.toml`.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A deployment profile.
///
/// The profile selects the built-in defaults (see [`PoolSettings::for_profile`]) and the
/// profile file `config/<profile>.toml`. It is read from `APP_ENV`, else `NODE_ENV`, else it
/// is [`Profile::Development`].
///
/// [`PoolSettings::for_profile`]: crate::PoolSettings::for_profile
///
/// # Examples
///
/// ```
/// use pool_config::Profile;
///
/// let profile: Profile = "production".parse().unwrap();
/// assert_eq!(profile.as_str(), "production");
/// assert!("prod".parse::<Profile>().unwrap_err().to_string().contains("staging"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A developer's machine: small pool, local database defaults.
    #[default]
    Development,
    /// A pre-production environment: connection settings must be given.
    Staging,
    /// Production: connection settings must be given.
    Production,
    /// Automated tests: development's numbers.
    Test,
}

impl Profile {
    /// Every profile, in the order documentation lists them.
    pub const ALL: [Profile; 4] = [
        Profile::Development,
        Profile::Staging,
        Profile::Production,
        Profile::Test,
    ];

    /// The profile's name as written in `APP_ENV` and in `config/<profile>.toml`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Profile::Development => "development",
            Profile::Staging => "staging",
            Profile::Production => "production",
            Profile::Test => "test",
        }
    }

    /// Whether the connection settings (host, database, username, password) have no
    /// defaults in this profile and must be given.
    pub const fn requires_connection(self) -> bool {
        matches!(self, Profile::Staging | Profile::Production)
    }

    /// The names of every profile, comma separated, for error messages.
    pub(crate) fn valid_names() -> String {
        Profile::ALL.map(Profile::as_str).join(", ")
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Profile {
    type Err = ParseProfileError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ParseProfileError {
                value: s.to_owned(),
            })
    }
}

/// The error returned when a string names no [`Profile`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown profile `{value}`: expected one of {}",
    Profile::valid_names()
)]
pub struct ParseProfileError {
    value: String,
}

impl ParseProfileError {
    /// The string that named no profile.
    pub fn value(&self) -> &str {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_round_trips_through_its_name() {
        for profile in Profile::ALL {
            assert_eq!(profile.as_str().parse::<Profile>(), Ok(profile));
            assert_eq!(profile.to_string(), profile.as_str());
        }
    }

    #[test]
    fn unknown_profile_lists_the_valid_ones() {
        let err = "Production".parse::<Profile>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown profile `Production`: expected one of development, staging, production, test"
        );
    }
}
