#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod error;
mod lint;
mod loader;
mod pgbouncer_mode;
mod pool_settings;
mod profile;
mod secret;
mod settings;
mod source;
mod ssl_mode;
mod validate;

pub use error::{ConfigError, ConfigErrors};
pub use lint::{Finding, Level, LintContext};
pub use loader::Loader;
pub use pgbouncer_mode::PgBouncerMode;
pub use pool_settings::PoolSettings;
pub use profile::{ParseProfileError, Profile};
pub use secret::Secret;
pub use settings::{DEFAULT_POOL, Settings};
pub use source::Source;
pub use ssl_mode::SslMode;
