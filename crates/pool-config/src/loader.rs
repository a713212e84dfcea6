//! Builds [`Settings`] from built-in defaults, `config/*.toml` and the environment.

use std::fmt;
use std::path::PathBuf;

use figment::{Figment, Provider};

use crate::env;
use crate::layer::Layer;
use crate::resolve::{Resolver, check_layer};
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
///     .env([("APP_ENV", "test"), ("DB_PASSWORD", "12345")])
///     .load()
///     .unwrap();
/// assert_eq!(settings.profile(), Profile::Test);
/// assert_eq!(settings.pool("default").unwrap().password.expose(), "12345");
/// ```
#[derive(Clone, Default)]
pub struct Loader {
    config_dir: Option<PathBuf>,
    profile: Option<Profile>,
    env: Option<Vec<(String, String)>>,
}

impl fmt::Debug for Loader {
    /// Shows the variables' names only: their values include passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.env.as_ref().map(|env| {
            env.iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
        });
        f.debug_struct("Loader")
            .field("config_dir", &self.config_dir)
            .field("profile", &self.profile)
            .field("env", &names)
            .finish()
    }
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
        let env = self.env.unwrap_or_else(process_env);
        let profile = match self.profile {
            Some(profile) => profile,
            None => profile_from_env(&env)?,
        };
        let mut errors = ConfigErrors::default();
        let explicit_dir = self
            .config_dir
            .or_else(|| env::var(&env, "SERVIO_CONFIG_DIR").map(PathBuf::from));
        if let Some(dir) = explicit_dir.as_ref().filter(|dir| !dir.is_dir()) {
            errors.push(ConfigError::Unreadable {
                what: "configuration directory".to_owned(),
                path: dir.clone(),
                reason: "no such directory".to_owned(),
            });
        }
        let dir = explicit_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_DIR));

        let mut figment = Figment::new();
        let mut files = Vec::new();
        for name in ["default".to_owned(), profile.to_string()] {
            let path = dir.join(format!("{name}.toml"));
            match Layer::toml_file(&path) {
                Ok(Some(layer)) => {
                    check_layer(&layer, &mut errors);
                    figment = figment.merge(layer);
                    files.push(path);
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        let env_layers = env::layers(&env, &mut errors);
        for layer in &env_layers.layers {
            check_layer(layer, &mut errors);
            figment = figment.merge(layer);
        }
        // Layers never fail to provide their values: they were read above.
        let merged = figment
            .data()
            .ok()
            .and_then(|mut data| data.remove(&figment::Profile::Default))
            .unwrap_or_default();
        let resolver = Resolver {
            profile,
            figment: &figment,
            env: &env_layers,
        };
        let mut pools = resolver.pools(&merged);
        for pool in &mut pools {
            pool.read_password_file();
        }
        for pool in &pools {
            crate::validate::check_pool(profile, pool, &mut errors);
        }
        if env_layers.password_given {
            errors.retain(|e| !matches!(e, ConfigError::Required { key, .. } if key == "password"));
        }
        let settings = Settings {
            profile,
            pools,
            files,
            password_file: env_layers.password_file,
        };
        Ok((settings, errors))
    }
}

/// Where configuration files are looked for when neither [`Loader::config_dir`] nor
/// `SERVIO_CONFIG_DIR` says.
pub const DEFAULT_CONFIG_DIR: &str = "config";

/// The process environment; variables whose name or value is not UTF-8 are not ours.
fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
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
