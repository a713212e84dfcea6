//! The loaded, validated settings of every named pool, with provenance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::lint::{self, Finding, LintContext};
use crate::{ConfigErrors, Loader, PoolSettings, Profile, Source};

/// The name of the pool that always exists.
pub const DEFAULT_POOL: &str = "default";

/// The effective settings of every named pool of one profile.
///
/// `default` always exists; `[pools.<name>]` sections add more. Every effective value
/// knows where it came from ([`Settings::source_of`]).
///
/// # Examples
///
/// ```
/// use pool_config::{Loader, Profile};
///
/// let settings = Loader::new()
///     .profile(Profile::Test)
///     .env(Vec::<(String, String)>::new())
///     .load()
///     .unwrap();
/// assert_eq!(settings.pool("default").unwrap().max_connections, 10);
/// ```
#[derive(Debug, Clone)]
pub struct Settings {
    pub(crate) profile: Profile,
    pub(crate) pools: Vec<NamedPool>,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) password_file: Option<PathBuf>,
}

/// One pool's effective settings and where each came from.
#[derive(Debug, Clone)]
pub(crate) struct NamedPool {
    pub(crate) name: String,
    pub(crate) settings: PoolSettings,
    /// Indexed like [`PoolSettings::KEYS`].
    pub(crate) sources: Vec<Source>,
    /// Indexed like [`PoolSettings::KEYS`]: whether the value is the pool's own rather than
    /// the base's.
    pub(crate) own: Vec<bool>,
    /// Each free server parameter (`session.<name>`): where it came from, and whether it is
    /// the pool's own.
    pub(crate) session_sources: BTreeMap<String, (Source, bool)>,
}

impl NamedPool {
    /// A pool whose every value is the profile's built-in default.
    pub(crate) fn built_in(name: &str, profile: Profile) -> Self {
        let settings = PoolSettings::for_profile(profile);
        let sources = PoolSettings::KEYS
            .iter()
            .map(|key| {
                let required = profile.requires_connection()
                    && matches!(*key, "host" | "database" | "username" | "password");
                if required {
                    Source::Unset
                } else {
                    Source::BuiltIn { profile }
                }
            })
            .collect();
        NamedPool {
            name: name.to_owned(),
            settings,
            sources,
            own: vec![false; PoolSettings::KEYS.len()],
            session_sources: BTreeMap::new(),
        }
    }

    /// Reads the password from `password_file`, when one is set and readable (validation
    /// reports one that is not): the password then comes from the file's source.
    pub(crate) fn read_password_file(&mut self) {
        let (Some(path), Some(file), Some(password)) = (
            &self.settings.password_file,
            key_index("password_file"),
            key_index("password"),
        ) else {
            return;
        };
        if let Ok(secret) = crate::Secret::read_file_named(path, "password_file") {
            self.settings.password = secret;
            self.sources[password] = self.sources[file].clone();
            self.own[password] = self.own[file];
        }
    }

    /// Where the value of `key` (or `session.<name>`) came from.
    pub(crate) fn source(&self, key: &str) -> Option<&Source> {
        match key.strip_prefix("session.") {
            Some(name) => self.session_sources.get(name).map(|(source, _)| source),
            None => key_index(key).map(|i| &self.sources[i]),
        }
    }

    /// The key as the user would look for it: `pools.<name>.<key>` for a pool's own value,
    /// `<key>` for a base value.
    pub(crate) fn written_key(&self, key: &str) -> String {
        let own = match key.strip_prefix("session.") {
            Some(name) => self.session_sources.get(name).is_some_and(|(_, own)| *own),
            None => key_index(key).is_some_and(|i| self.own[i]),
        };
        if own {
            format!("pools.{}.{key}", self.name)
        } else {
            key.to_owned()
        }
    }
}

/// The position of `key` in [`PoolSettings::KEYS`].
pub(crate) fn key_index(key: &str) -> Option<usize> {
    PoolSettings::KEYS.iter().position(|k| *k == key)
}

impl Settings {
    /// Loads the settings from the process environment and `./config` (or
    /// `SERVIO_CONFIG_DIR`): the same as `Loader::new().load()`.
    ///
    /// # Errors
    ///
    /// Every configuration error found, at once.
    pub fn load() -> Result<Settings, ConfigErrors> {
        Loader::new().load()
    }

    /// The profile these settings were loaded for.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The settings of pool `name`, if it is declared (`default` always is).
    pub fn pool(&self, name: &str) -> Option<&PoolSettings> {
        self.named(name).map(|p| &p.settings)
    }

    /// Every pool, `default` first, then the others by name.
    pub fn pools(&self) -> impl Iterator<Item = (&str, &PoolSettings)> + Clone {
        self.pools.iter().map(|p| (p.name.as_str(), &p.settings))
    }

    /// The names of every pool, `default` first.
    pub fn pool_names(&self) -> impl Iterator<Item = &str> {
        self.pools.iter().map(|p| p.name.as_str())
    }

    /// Where the effective value of `key` in pool `pool` came from, or `None` when the pool
    /// is not declared or `key` is not a setting name.
    pub fn source_of(&self, pool: &str, key: &str) -> Option<&Source> {
        self.named(pool)?.source(key)
    }

    /// The configuration files that were read, lowest precedence first.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The password file named by `DB_PASSWORD_FILE`, so a pool can re-read a rotated
    /// password for new connections. Each pool's own (a `password_file` key, or this one) is
    /// [`PoolSettings::password_file`].
    pub fn password_file(&self) -> Option<&Path> {
        self.password_file.as_deref()
    }

    /// Best-practice findings about every pool (warn and info, with reasons).
    ///
    /// Findings that need facts about the deployment (the server's `max_connections`, the
    /// number of instances) are made only when `context` gives them.
    pub fn lint(&self, context: &LintContext) -> Vec<Finding> {
        lint::lint(self.profile, self.pools(), context)
    }

    /// Checks the effective settings again; [`Loader::load`] already did.
    ///
    /// # Errors
    ///
    /// Every rule the effective settings break, at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::default();
        for pool in &self.pools {
            crate::validate::check_pool(self.profile, pool, &mut errors);
        }
        errors.into_result(())
    }

    fn named(&self, name: &str) -> Option<&NamedPool> {
        self.pools.iter().find(|p| p.name == name)
    }
}
