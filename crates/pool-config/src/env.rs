//! # Implementation details
//!
//! The environment as configuration layers, lowest precedence first: `DATABASE_URL`, then
//! `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USERNAME`, `DB_PASSWORD` (or `DB_PASSWORD_FILE`), then
//! `SERVIO_POOL_*`. The more specific a variable, the higher it ranks. Every value is kept as
//! a string, so a password such as `0123` stays a password.

use std::path::PathBuf;

use figment::value::{Dict, Value};

use crate::database_url::DatabaseUrl;
use crate::layer::Layer;
use crate::{ConfigError, ConfigErrors, Secret};

/// The prefix of variables that override any key; `__` separates nested keys.
pub(crate) const PREFIX: &str = "SERVIO_POOL_";

/// The seed's variables and the base setting each names.
const DB_VARS: [(&str, &str); 5] = [
    ("DB_HOST", "host"),
    ("DB_PORT", "port"),
    ("DB_NAME", "database"),
    ("DB_USERNAME", "username"),
    ("DB_PASSWORD", "password"),
];

/// The environment's layers and what they pointed at.
#[derive(Debug, Default)]
pub(crate) struct EnvLayers {
    pub(crate) layers: Vec<Layer>,
    /// `DATABASE_URL` with its password masked.
    pub(crate) masked_url: Option<String>,
    /// The file `DB_PASSWORD_FILE` names.
    pub(crate) password_file: Option<PathBuf>,
    /// Whether a password variable is set, even one that could not be used (its error is
    /// reported; a second "password is required" would only repeat it).
    pub(crate) password_given: bool,
}

impl EnvLayers {
    /// What variable `var` pointed at, for showing a value's source.
    pub(crate) fn detail(&self, var: &str) -> Option<String> {
        match var {
            "DATABASE_URL" => self.masked_url.clone(),
            "DB_PASSWORD_FILE" => self.password_file.as_ref().map(|p| p.display().to_string()),
            _ => None,
        }
    }
}

/// The value of `name`, unless unset or empty (as the seed's `process.env.X || default`).
pub(crate) fn var<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Reads the environment's layers; problems go to `errors` and their layer is left out.
pub(crate) fn layers(env: &[(String, String)], errors: &mut ConfigErrors) -> EnvLayers {
    let mut out = EnvLayers::default();
    if let Some(raw) = var(env, "DATABASE_URL") {
        match DatabaseUrl::parse(raw) {
            Ok(url) => {
                out.layers
                    .push(Layer::env("DATABASE_URL", url.values).with_detail(url.masked.clone()));
                out.masked_url = Some(url.masked);
            }
            Err(e) => errors.push(e),
        }
    }
    let password_file = var(env, "DB_PASSWORD_FILE");
    out.password_given = password_file.is_some() || var(env, "DB_PASSWORD").is_some();
    for (name, key) in DB_VARS {
        if let Some(value) = var(env, name) {
            if name == "DB_PASSWORD" && password_file.is_some() {
                errors.push(ConfigError::Conflict {
                    first: "DB_PASSWORD".to_owned(),
                    second: "DB_PASSWORD_FILE".to_owned(),
                });
                continue;
            }
            out.layers.push(Layer::env(name, single(key, value)));
        }
    }
    if let Some(path) = password_file {
        let path = PathBuf::from(path);
        match Secret::read_file(&path) {
            Ok(password) => {
                // The path too, so new connections can follow a rotated password.
                let mut values = single("password", password.expose());
                values.insert(
                    "password_file".to_owned(),
                    Value::from(path.display().to_string()),
                );
                out.layers.push(
                    Layer::env("DB_PASSWORD_FILE", values).with_detail(path.display().to_string()),
                );
            }
            Err(e) => errors.push(e),
        }
        out.password_file = Some(path);
    }
    let mut overrides: Vec<_> = env
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .filter_map(|(k, v)| Some((k, k.strip_prefix(PREFIX)?, v)))
        .collect();
    overrides.sort();
    for (name, rest, value) in overrides {
        let mut nested = Value::from(value.clone());
        for segment in rest.split("__").collect::<Vec<_>>().into_iter().rev() {
            nested = Value::from(single_value(&segment.to_ascii_lowercase(), nested));
        }
        if let Value::Dict(_, values) = nested {
            out.layers.push(Layer::env(name, values));
        }
    }
    out
}

fn single(key: &str, value: &str) -> Dict {
    single_value(key, Value::from(value))
}

fn single_value(key: &str, value: Value) -> Dict {
    Dict::from([(key.to_owned(), value)])
}
