//! Builds [`Settings`] from built-in defaults, `config/*.toml` and the environment.

use std::path::PathBuf;

use crate::settings::{DEFAULT_POOL, NamedPool};
use crate::{ConfigError, ConfigErrors, Profile, Settings, Source};

/// Loads [`Settings`]: built-in defaults → `config/default.toml` → `config/<profile>.toml` →
/// environment, then validates the result.
///
/// Without [`Loader::env`] the process environment is read; tests and tools pass their own
/// variables so no process-global state is involved.
///
/// # Examples
///
/// ```
/// use pool_config::{Loader, Profile};
///
/// let settings = Loader::new()
///     .env([("APP_ENV", "test")])
///     .load()
///     .unwrap();
/// assert_eq!(settings.profile(), Profile::Test);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Loader {
    config_dir: Option<PathBuf>,
    profile: Option<Profile>,
    env: Option<Vec<(String, String)>>,
}

impl Loader {
    /// A loader that reads the process environment and `./config` (or `SERVIO_CONFIG_DIR`).
    pub fn new() -> Self {
        Loader::default()
    }

    /// Reads `default.toml` and `<profile>.toml` from `dir`; a missing directory is an error.
    pub fn config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config_dir = Some(dir.into());
        self
    }

    /// Uses `profile` instead of reading `APP_ENV` / `NODE_ENV`.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = Some(profile);
        self
    }

    /// Uses these variables instead of the process environment.
    pub fn env<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Loads and validates the settings.
    ///
    /// # Errors
    ///
    /// Every error found, at once: malformed files, unknown keys, wrong types, values out of
    /// range, missing connection settings in staging and production.
    pub fn load(self) -> Result<Settings, ConfigErrors> {
        let (settings, errors) = self.load_lenient()?;
        errors.into_result(settings)
    }

    /// Loads as far as possible: the settings with every valid value applied, and every
    /// error found. Documentation tools use this to show a profile whose connection settings
    /// are given only at deployment.
    ///
    /// # Errors
    ///
    /// Only when no settings can be made at all (an unknown profile).
    pub fn load_lenient(self) -> Result<(Settings, ConfigErrors), ConfigErrors> {
        let env = self.env.unwrap_or_else(|| std::env::vars().collect());
        let profile = match self.profile {
            Some(profile) => profile,
            None => profile_from_env(&env)?,
        };
        let settings = Settings {
            profile,
            pools: vec![NamedPool::built_in(DEFAULT_POOL, profile)],
            files: Vec::new(),
            password_file: None,
        };
        let mut errors = ConfigErrors::default();
        for pool in &settings.pools {
            crate::validate::check_pool(profile, pool, &mut errors);
        }
        Ok((settings, errors))
    }
}

/// The profile named by `APP_ENV`, else `NODE_ENV`, else development; empty counts as unset.
fn profile_from_env(env: &[(String, String)]) -> Result<Profile, ConfigErrors> {
    for var in ["APP_ENV", "NODE_ENV"] {
        if let Some((_, value)) = env.iter().rev().find(|(k, v)| k == var && !v.is_empty()) {
            return value.parse().map_err(|_| {
                ConfigErrors::from(ConfigError::UnknownProfile {
                    value: value.clone(),
                    origin: Source::Env {
                        var: var.to_owned(),
                        detail: None,
                    },
                })
            });
        }
    }
    Ok(Profile::Development)
}
