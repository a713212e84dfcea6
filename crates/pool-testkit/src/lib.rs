#![doc = include_str!("../README.md")]

mod backend;
mod cluster;
mod credentials;
mod database;
mod docker;
mod endpoint;
mod image;
mod native;
mod pgbouncer;
mod process;
mod proxy;
mod replication;
mod server;
mod skip;
mod state_dir;
mod test_postgres;
mod tls;
mod tools;

pub use backend::{BACKEND_ENV, Backend, DATABASE_URL_ENV, UnknownBackend};
pub use credentials::{APP_PASSWORD, APP_USER, SUPERUSER, SUPERUSER_PASSWORD};
pub use database::TestDatabase;
pub use docker::DOCKER_IMAGE_ENV;
pub use image::LOCAL_IMAGE_REPOSITORY;
pub use pgbouncer::{PgBouncer, PoolMode, Upstream};
pub use proxy::{FaultProxy, ProxyMode};
pub use replication::ReplicatedCluster;
pub use server::{RestartMode, TestServer};
pub use skip::{REQUIRE_ENV, SKIP_LOG_ENV, skip};
pub use state_dir::sweep_leftovers;
pub use test_postgres::TestPostgres;
pub use tls::TestCertificates;
