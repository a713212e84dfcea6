//! # Implementation details
//!
//! One source of values (a TOML file or one environment variable) as a figment provider,
//! so figment merges the layers and remembers, for every value, which layer gave it.

use std::io;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map};
use figment::{Metadata, Profile as FigmentProfile, Provider};

use crate::{ConfigError, Source};

/// The figment metadata name of environment layers; their source names the variable.
pub(crate) const ENV_LAYER: &str = "environment variable";

/// A layer of configuration values with its provenance.
#[derive(Debug)]
pub(crate) struct Layer {
    metadata: Metadata,
    values: Dict,
    origin: Origin,
}

/// Where a layer's values come from, for naming the source of a value in it.
#[derive(Debug)]
enum Origin {
    File(PathBuf),
    Env { var: String, detail: Option<String> },
}

impl Layer {
    /// The values one environment variable gives.
    pub(crate) fn env(var: &str, values: Dict) -> Self {
        Layer {
            metadata: Metadata::named(ENV_LAYER).source(figment::Source::Custom(var.to_owned())),
            values,
            origin: Origin::Env {
                var: var.to_owned(),
                detail: None,
            },
        }
    }

    /// Adds what the variable pointed at (a masked URL, a file path) to its source.
    pub(crate) fn with_detail(mut self, detail: String) -> Self {
        if let Origin::Env { detail: d, .. } = &mut self.origin {
            *d = Some(detail);
        }
        self
    }

    /// The values this layer gives.
    pub(crate) fn values(&self) -> &Dict {
        &self.values
    }

    /// The source of the value this layer gives at dotted key `written`.
    pub(crate) fn source(&self, written: &str) -> Source {
        match &self.origin {
            Origin::File(path) => Source::File {
                path: path.clone(),
                key: written.to_owned(),
            },
            Origin::Env { var, detail } => Source::Env {
                var: var.clone(),
                detail: detail.clone(),
            },
        }
    }

    /// The values of a TOML file, or `None` when the file does not exist.
    ///
    /// Syntax errors name the file, line and column but never repeat the offending text,
    /// which could be a password.
    pub(crate) fn toml_file(path: &Path) -> Result<Option<Self>, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ConfigError::Unreadable {
                    what: "configuration file".to_owned(),
                    path: path.to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        let values = Toml::from_str::<Dict>(&text).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((1, 1), |span| line_and_column(&text, span.start));
            ConfigError::Toml {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        Ok(Some(Layer {
            metadata: Metadata::from("TOML file", path),
            values,
            origin: Origin::File(path.to_owned()),
        }))
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<FigmentProfile, Dict>, figment::Error> {
        Ok(FigmentProfile::Default.collect(self.values.clone()))
    }
}

/// The 1-based line and column of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let end = (0..=offset.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_and_column("a = 1\nb = ", 10), (2, 5));
        assert_eq!(line_and_column("x", 0), (1, 1));
        // An offset inside a multi-byte character or past the end never panics.
        assert_eq!(line_and_column("é\nx", 1), (1, 1));
        assert_eq!(line_and_column("ab", 99), (1, 3));
    }
}
