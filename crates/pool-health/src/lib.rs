#![doc = include_str!("../README.md")]

mod assess;
mod category;
mod error;
mod health_checker;
#[cfg(feature = "http")]
pub mod http;
pub mod keys;
mod options;
mod probe_connection;
mod readiness;
mod report;
mod round_trip;
mod server_facts;
mod status;
mod target;
mod waiter_age;
mod window;

pub use category::Category;
pub use error::HealthError;
pub use health_checker::HealthChecker;
pub use options::{DEFAULT_PROBE_APPLICATION_NAME, HealthOptions};
pub use report::{CheckResult, ComponentType, HEALTH_JSON, HealthReport, Probe};
pub use server_facts::{ServerFacts, ServerRole};
pub use status::{ParseStatusError, Status};
