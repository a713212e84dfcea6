#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![allow(
    clippy::result_large_err,
    reason = "configuration loads once at start-up; errors carry key, value, source and \
              what is accepted, unboxed so callers can match on them"
)]

mod database_url;
mod env;
mod error;
mod host_port;
mod layer;
mod lint;
mod loader;
mod parse;
mod pgbouncer_mode;
mod pool_settings;
mod ports;
mod profile;
mod resolve;
mod secret;
mod setting;
mod settings;
mod source;
mod ssl_mode;
mod target_session_attrs;
mod validate;

pub use database_url::percent_decode;
pub use error::{ConfigError, ConfigErrors};
pub use host_port::HostPort;
pub use lint::{Finding, Level, LintContext};
pub use loader::{DEFAULT_CONFIG_DIR, Loader};
pub use pgbouncer_mode::PgBouncerMode;
pub use pool_settings::PoolSettings;
pub use ports::Ports;
pub use profile::{ParseProfileError, Profile};
pub use secret::Secret;
pub use setting::{Applies, Setting, TransactionIsolation};
pub use settings::{DEFAULT_POOL, Settings};
pub use source::Source;
pub use ssl_mode::SslMode;
pub use target_session_attrs::{LoadBalanceHosts, TargetSessionAttrs};
pub use validate::{LONGEST_DURATION, MAX_CONNECTIONS};
