//! `PoolRegistry`: the named pools of one service, built from its settings.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use pool_config::{Secret, Settings};

use crate::close_report::CloseReport;
use crate::error::PoolError;
use crate::pg::PgConnector;
use crate::pool::Pool;
use crate::stats::PoolStats;

/// The pools a service declared (`default` always among them), by name.
///
/// Building it opens no connection synchronously: each pool opens `min_connections` in the
/// background.
#[derive(Debug, Clone, Default)]
pub struct PoolRegistry {
    pools: BTreeMap<String, Pool<PgConnector>>,
}

impl PoolRegistry {
    /// One pool per pool declared in `settings`, after [`Settings::validate`]: the pool
    /// accepts exactly what `poolctl config --check` accepts.
    ///
    /// # Errors
    /// [`PoolError::InvalidOption`] (setting `configuration`) with every rule the settings
    /// break, each naming key, value, source and what is accepted.
    pub fn from_settings(settings: &Settings) -> Result<Self, PoolError> {
        settings
            .validate()
            .map_err(|errors| PoolError::InvalidOption {
                setting: "configuration",
                message: errors.to_string(),
            })?;
        let mut pools = BTreeMap::new();
        for (name, pool_settings) in settings.pools() {
            pools.insert(name.to_owned(), Pool::from_settings(name, pool_settings)?);
        }
        Ok(PoolRegistry { pools })
    }

    /// An empty registry, to fill with [`insert`](PoolRegistry::insert).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a pool under its own name.
    pub fn insert(&mut self, pool: Pool<PgConnector>) -> Option<Pool<PgConnector>> {
        self.pools.insert(pool.name().to_owned(), pool)
    }

    /// The pool named `name`.
    ///
    /// # Errors
    /// [`PoolError::UnknownPool`] listing the declared names when `name` is not one of them.
    pub fn get(&self, name: &str) -> Result<&Pool<PgConnector>, PoolError> {
        self.pools.get(name).ok_or_else(|| PoolError::UnknownPool {
            name: name.to_owned(),
            declared: self.pools.keys().cloned().collect(),
        })
    }

    /// The declared names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pools.keys().map(String::as_str)
    }

    /// `(name, pool)` for every pool, sorted by name (e.g. to install an observer on each).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Pool<PgConnector>)> {
        self.pools.iter().map(|(name, pool)| (name.as_str(), pool))
    }

    /// How many pools there are.
    pub fn len(&self) -> usize {
        self.pools.len()
    }

    /// Whether there is no pool.
    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// The stats of every pool, by name.
    pub fn stats_all(&self) -> BTreeMap<String, PoolStats> {
        self.iter()
            .map(|(name, pool)| (name.to_owned(), pool.stats()))
            .collect()
    }

    /// Rotates the password of every pool's new connections (e.g. re-read from
    /// `DB_PASSWORD_FILE`); open connections are kept.
    pub fn set_password(&self, password: &Secret) {
        for pool in self.pools.values() {
            pool.connector().set_password(password.expose());
        }
    }

    /// Rotates the password of the new connections of the pool named `name` only (pools
    /// that log in as different roles); open connections are kept.
    ///
    /// # Errors
    /// [`PoolError::UnknownPool`] listing the declared names when `name` is not one of them.
    pub fn set_pool_password(&self, name: &str, password: &Secret) -> Result<(), PoolError> {
        self.get(name)?.connector().set_password(password.expose());
        Ok(())
    }

    /// Fail-fast start: waits until every pool holds a connection (see [`Pool::ready`]),
    /// all at once, each bounded by its `connect_timeout`. `from_settings` stays lazy; call
    /// this right after it where the service must not start without its databases.
    ///
    /// # Errors
    /// The first pool's error in name order, naming that pool (e.g. `pool `replica`: cannot
    /// connect: …`).
    ///
    /// ```no_run
    /// # async fn demo(settings: &pool_config::Settings) -> Result<(), pool_core::PoolError> {
    /// let registry = pool_core::PoolRegistry::from_settings(settings)?;
    /// registry.ready_all().await?; // exits at start-up instead of failing the first request
    /// # Ok(()) }
    /// ```
    ///
    /// # Cancel safety
    /// Cancel safe: connects dropped midway give their slots back.
    pub async fn ready_all(&self) -> Result<(), PoolError> {
        let results = join_all(self.pools.values().map(|pool| pool.ready())).await;
        results.into_iter().collect()
    }

    /// Closes every pool at once, each waiting up to `deadline` for its checked-out
    /// connections.
    ///
    /// # Cancel safety
    /// Cancel safe: every pool is closed from the first poll on; dropping the future only
    /// stops the waiting.
    pub async fn close_all(&self, deadline: Duration) -> Vec<CloseReport> {
        join_all(self.pools.values().map(|pool| pool.close(deadline))).await
    }
}

impl<'a> IntoIterator for &'a PoolRegistry {
    type Item = (&'a str, &'a Pool<PgConnector>);
    type IntoIter = Box<dyn Iterator<Item = Self::Item> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pool_config::{Loader, Profile};

    fn settings() -> Settings {
        // An empty configuration directory: built-in defaults plus the environment given.
        let dir = std::env::temp_dir().join(format!("pool-core-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Loader::new()
            .config_dir(dir)
            .profile(Profile::Test)
            .env([(
                "SERVIO_POOL_POOLS__REPLICA__MAX_CONNECTIONS".to_owned(),
                "4".to_owned(),
            )])
            .load()
            .expect("settings load")
    }

    #[tokio::test]
    async fn pools_are_built_per_declared_name_and_unknown_names_list_them() {
        let registry = PoolRegistry::from_settings(&settings()).unwrap();
        assert_eq!(registry.names().collect::<Vec<_>>(), ["default", "replica"]);
        assert_eq!(registry.get("replica").unwrap().stats().max, 4);
        let err = registry.get("replcia").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no pool named `replcia` is declared (declared pools: default, replica)"
        );
        registry
            .set_pool_password("replica", &Secret::new("replica-secret"))
            .unwrap();
        assert!(matches!(
            registry.set_pool_password("nope", &Secret::new("x")),
            Err(PoolError::UnknownPool { .. })
        ));
        let stats = registry.stats_all();
        assert_eq!(stats.len(), 2);
        let reports = registry.close_all(Duration::from_millis(100)).await;
        assert_eq!(reports.len(), 2);
        assert!(registry.iter().all(|(_, pool)| pool.is_closing()));
    }
}
