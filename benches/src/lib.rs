#![doc = include_str!("../README.md")]

mod bench_env;
mod checkout;
mod cpu_time;
mod distribution;
mod in_memory;
mod interleaved;
mod load;
mod machine;
mod memory_manager;
mod pg_peers;
mod postgres;
mod reference_pool;
mod results;
mod summary;

pub use bench_env::{BenchEnv, DIR_VAR, QUICK_VAR, current_thread_runtime, multi_thread_runtime};
pub use checkout::{
    Checkout, SemaphoreFloor, acquire_release, acquire_yield_release, fill, servio_memory_pool,
};
pub use cpu_time::CpuTime;
pub use distribution::{Distribution, median};
pub use in_memory::{CONTENDED_TASKS, InMemoryComparison, Workload};
pub use interleaved::Interleaved;
pub use load::{LoadConfig, LoadReport, load_slices, record_slices, run_batch, run_load};
pub use machine::Machine;
pub use memory_manager::MemoryManager;
pub use pg_peers::{
    Bb8Pg, MinimalPool, PgBench, PgWorkload, Prepared, bb8_operation, bb8_pg, deadpool_operation,
    deadpool_pg, minimal_operation, sqlx_operation, tpg_config,
};
pub use postgres::{
    QUERY_MAX_CONNECTIONS, QUERY_TASKS, SELECT_1, bench_connect, bench_queries, checkout_select_1,
    connector_connect, measure_connects, raw_connect, select_1, servio_pg_pool,
    servio_pg_pool_no_max_uses, sqlx_pg_pool,
};
pub use reference_pool::{ReferenceConn, ReferencePool, SqlxReferencePool};
pub use results::{Measurement, Results, names};
pub use summary::{publish, render};
