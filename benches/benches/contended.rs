//! Benchmark 2: 64 tasks on a 2-worker runtime, each acquire → yield once → release, on pools
//! of max 8 and max 32 in-memory connections; throughput, acquire-wait percentiles and the
//! spread of operations per task; servio-pool vs deadpool vs bb8, and Tokio's semaphore alone
//! as the floor of any fair hand-off on this runtime.

use benches::{
    BenchEnv, InMemoryComparison, MemoryManager, Results, SemaphoreFloor, Workload,
    multi_thread_runtime, names, publish, servio_memory_pool,
};
use criterion::Criterion;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = BenchEnv::from_env();
    let rt = multi_thread_runtime(2)?;
    let mut criterion = Criterion::default().configure_from_args();
    let mut results = Results::new();

    for (scenario, max) in [
        (names::CONTENDED_64_ON_8, 8),
        (names::CONTENDED_64_ON_32, 32),
    ] {
        let ours = rt.block_on(async { servio_memory_pool(max) });
        let deadpool = MemoryManager::deadpool(max as usize);
        let bb8 = rt.block_on(MemoryManager::bb8(max));
        let scenario = (scenario, Workload::Contended, max);
        InMemoryComparison::new(&mut criterion, &rt, &env, &mut results, scenario)
            .add(names::OURS, &ours)
            .add(names::DEADPOOL, &deadpool)
            .add(names::BB8, &bb8)
            .add(names::SEMAPHORE_FLOOR, &SemaphoreFloor::new(max as usize))
            .finish();
    }
    criterion.final_summary();
    Ok(publish(&env, "contended", &results)?)
}
