//! # Implementation details
//!
//! Turns the merged layers into one [`NamedPool`] per pool. For each pool and setting, the
//! pool's own value (`[pools.<name>]`, from whichever layer ranks highest) beats the base
//! value (top level, from whichever layer ranks highest), which beats the built-in default.

use figment::Figment;
use figment::value::{Dict, Value};

use crate::env::EnvLayers;
use crate::layer::{ENV_LAYER, Layer};
use crate::parse::{self, is_secret, show};
use crate::pool_settings::SESSION;
use crate::settings::{DEFAULT_POOL, NamedPool, key_index};
use crate::{ConfigError, ConfigErrors, PoolSettings, Profile, Source};

/// How close an unknown key must be to a known one to be suggested (Jaro-Winkler).
const SUGGESTION_SIMILARITY: f64 = 0.8;

/// Reports every problem in one layer on its own, so a mistake is found even where a higher
/// layer overrides it, and each is reported with the layer it is in.
pub(crate) fn check_layer(layer: &Layer, errors: &mut ConfigErrors) {
    let invalid = |key: &str, value: &Value, expected: &str| ConfigError::Invalid {
        key: key.to_owned(),
        value: Some(show(value)),
        origin: layer.source(key),
        expected: expected.to_owned(),
    };
    for (key, value) in layer.values() {
        if key != "pools" {
            check_key(layer, key, key, value, errors);
            continue;
        }
        let Value::Dict(_, pools) = value else {
            errors.push(invalid(
                key,
                value,
                "a table of named pools, like [pools.replica]",
            ));
            continue;
        };
        for (name, value) in pools {
            let prefix = format!("pools.{name}");
            match value {
                Value::Dict(_, own) if valid_name(name) => {
                    for (key, value) in own {
                        check_key(layer, key, &format!("{prefix}.{key}"), value, errors);
                    }
                }
                Value::Dict(..) => errors.push(invalid(
                    &prefix,
                    value,
                    "a pool name of lower-case letters, digits, `_` and `-`, so \
                     SERVIO_POOL_POOLS__<NAME>__* can reach it",
                )),
                _ => errors.push(invalid(
                    &prefix,
                    value,
                    "a table of settings, like [pools.replica]",
                )),
            }
        }
    }
}

fn check_key(layer: &Layer, key: &str, written: &str, value: &Value, errors: &mut ConfigErrors) {
    if key == SESSION
        && let Ok(entries) = parse::session_entries(value)
    {
        let entries = match value {
            Value::Dict(_, dict) => dict.iter().zip(entries).collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        for ((name, value), (_, entry)) in entries {
            if let Err(expected) = entry {
                let written = format!("{written}.{name}");
                errors.push(ConfigError::Invalid {
                    value: Some(show(value)),
                    origin: layer.source(&written),
                    key: written,
                    expected,
                });
            }
        }
        return;
    }
    let mut scratch = PoolSettings::for_profile(Profile::Development);
    match parse::apply(&mut scratch, key, value) {
        Ok(true) => {}
        Ok(false) => errors.push(ConfigError::UnknownKey {
            key: written.to_owned(),
            origin: layer.source(written),
            suggestion: suggest(key),
        }),
        Err(expected) => errors.push(ConfigError::Invalid {
            key: written.to_owned(),
            value: (!is_secret(key)).then(|| show(value)),
            origin: layer.source(written),
            expected,
        }),
    }
}

/// Resolves every pool from the merged layers (already checked one by one).
pub(crate) struct Resolver<'a> {
    pub(crate) profile: Profile,
    pub(crate) figment: &'a Figment,
    pub(crate) env: &'a EnvLayers,
}

impl Resolver<'_> {
    /// Every pool, `default` first, then the others by name.
    pub(crate) fn pools(&self, merged: &Dict) -> Vec<NamedPool> {
        let mut declared: Vec<(String, Option<&Dict>)> = vec![(DEFAULT_POOL.to_owned(), None)];
        if let Some(Value::Dict(_, pools)) = merged.get("pools") {
            for (name, value) in pools {
                match value {
                    Value::Dict(_, own) if name == DEFAULT_POOL => declared[0].1 = Some(own),
                    Value::Dict(_, own) if valid_name(name) => {
                        declared.push((name.clone(), Some(own)));
                    }
                    _ => {}
                }
            }
        }
        declared
            .into_iter()
            .map(|(name, own)| {
                let mut pool = NamedPool::built_in(&name, self.profile);
                for (key, value) in merged.iter().filter(|(k, _)| *k != "pools") {
                    self.set(&mut pool, key, key, value, false);
                }
                for (key, value) in own.into_iter().flatten() {
                    self.set(&mut pool, key, &format!("pools.{name}.{key}"), value, true);
                }
                pool
            })
            .collect()
    }

    /// Applies one merged value; values that do not fit were reported by [`check_layer`].
    fn set(&self, pool: &mut NamedPool, key: &str, written: &str, value: &Value, own: bool) {
        if key == SESSION {
            if let Ok(entries) = parse::session_entries(value)
                && let Value::Dict(_, dict) = value
            {
                for ((name, value), (folded, entry)) in dict.iter().zip(entries) {
                    if let Ok(entry) = entry {
                        let origin = self.origin(value, &format!("{written}.{name}"));
                        pool.settings.session.insert(folded.clone(), entry);
                        pool.session_sources.insert(folded, (origin, own));
                    }
                }
            }
            return;
        }
        if let (Ok(true), Some(i)) = (parse::apply(&mut pool.settings, key, value), key_index(key))
        {
            pool.sources[i] = self.origin(value, written);
            pool.own[i] = own;
        }
    }

    /// Where `value`, found at dotted key `written`, came from.
    fn origin(&self, value: &Value, written: &str) -> Source {
        let Some(metadata) = self.figment.get_metadata(value.tag()) else {
            return Source::BuiltIn {
                profile: self.profile,
            };
        };
        if let Some(path) = metadata.source.as_ref().and_then(|s| s.file_path()) {
            return Source::File {
                path: path.to_owned(),
                key: written.to_owned(),
            };
        }
        match (
            &*metadata.name,
            metadata.source.as_ref().and_then(|s| s.custom()),
        ) {
            (ENV_LAYER, Some(var)) => Source::Env {
                var: var.to_owned(),
                detail: self.env.detail(var),
            },
            _ => Source::BuiltIn {
                profile: self.profile,
            },
        }
    }
}

/// Pool names the environment can reach: `SERVIO_POOL_POOLS__<NAME>__…` is lower-cased.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The known key closest to `key`, when it is close enough to be a typo.
fn suggest(key: &str) -> Option<String> {
    PoolSettings::KEYS
        .iter()
        .chain(&["pools", SESSION])
        .map(|known| (strsim::jaro_winkler(key, known), *known))
        .filter(|(score, _)| *score >= SUGGESTION_SIMILARITY)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_the_closest_key() {
        assert_eq!(
            suggest("max_conections").as_deref(),
            Some("max_connections")
        );
        assert_eq!(suggest("idle_timout").as_deref(), Some("idle_timeout"));
        assert_eq!(suggest("sslmode").as_deref(), Some("ssl_mode"));
        assert_eq!(suggest("colour"), None);
    }

    #[test]
    fn pool_names_are_lower_case_identifiers() {
        assert!(valid_name("replica") && valid_name("read-only_2"));
        assert!(!valid_name("Replica") && !valid_name("a.b") && !valid_name(""));
    }
}
