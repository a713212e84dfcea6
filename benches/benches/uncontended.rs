//! Benchmark 1: one task acquires and releases back to back on a pool of max 8 in-memory
//! connections; servio-pool vs deadpool vs bb8.

use benches::{
    BenchEnv, InMemoryComparison, MemoryManager, Results, Workload, current_thread_runtime, names,
    publish, servio_memory_pool,
};
use criterion::Criterion;

const MAX: u32 = 8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = BenchEnv::from_env();
    let rt = current_thread_runtime()?;
    let ours = rt.block_on(async { servio_memory_pool(MAX) });
    let deadpool = MemoryManager::deadpool(MAX as usize);
    let bb8 = rt.block_on(MemoryManager::bb8(MAX));

    let mut criterion = Criterion::default().configure_from_args();
    let mut results = Results::new();
    let scenario = (names::UNCONTENDED, Workload::Uncontended, MAX);
    InMemoryComparison::new(&mut criterion, &rt, &env, &mut results, scenario)
        .add(names::OURS, &ours)
        .add(names::DEADPOOL, &deadpool)
        .add(names::BB8, &bb8)
        .finish();
    criterion.final_summary();
    Ok(publish(&env, "uncontended", &results)?)
}
