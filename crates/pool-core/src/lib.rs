#![doc = include_str!("../README.md")]

mod acquire;
mod clock;
mod close_report;
mod connector;
mod controls;
mod error;
mod executor;
mod inner;
mod listener;
mod log_limit;
#[cfg(feature = "migrate")]
mod migrate;
mod observer;
mod options;
mod owned_stream;
mod pg;
mod pg_credentials;
mod pg_error;
mod pg_route;
mod pg_session;
mod pool;
mod pooled;
mod registry;
mod stats;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod transaction;

pub use close_report::{CheckedOut, CloseReport};
pub use connector::{Connected, ConnectionMeta, Connector, ErrorClass, Server};
pub use error::{PoolError, SharedError};
pub use observer::{PoolObserver, TimeoutPhase};
pub use options::PoolOptions;
pub use pg::{AfterConnect, ConnectionHook, PgConnector};
pub use pg_credentials::{CredentialsError, CredentialsProvider, ProviderError};
pub use pool::Pool;
pub use pooled::PooledConnection;
pub use registry::PoolRegistry;
pub use stats::{CloseReason, ClosedCounts, PoolStats};
pub use transaction::Transaction;

// The workspace README's quick start compiles as a doctest of this crate.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct RootReadme;
