//! The in-memory scenarios (uncontended and contended): each pool is filled, registered with
//! criterion for the HTML reports, then measured for the summary.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use tokio::runtime::Runtime;

use crate::bench_env::BenchEnv;
use crate::checkout::{Checkout, acquire_release, acquire_yield_release, fill, ns_per_cycle};
use crate::load::{LoadConfig, run_batch, run_load};
use crate::results::{Results, names};

/// Tasks in the contended scenarios.
pub const CONTENDED_TASKS: usize = 64;

/// What every pool of an [`InMemoryComparison`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// One task: acquire + release back to back; time per cycle.
    Uncontended,
    /// [`CONTENDED_TASKS`] tasks: acquire → yield once → release; throughput, acquire-wait
    /// percentiles and the spread of operations per task.
    Contended,
}

/// One in-memory scenario, run pool after pool on the same runtime.
pub struct InMemoryComparison<'a> {
    group: BenchmarkGroup<'a, WallTime>,
    rt: &'a Runtime,
    env: &'a BenchEnv,
    results: &'a mut Results,
    scenario: &'static str,
    max: u32,
    workload: Workload,
}

impl std::fmt::Debug for InMemoryComparison<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryComparison")
            .field("scenario", &self.scenario)
            .field("max", &self.max)
            .field("workload", &self.workload)
            .finish_non_exhaustive()
    }
}

impl<'a> InMemoryComparison<'a> {
    /// Starts `scenario` (also the criterion group's name) on pools of `max` connections.
    pub fn new(
        criterion: &'a mut Criterion,
        rt: &'a Runtime,
        env: &'a BenchEnv,
        results: &'a mut Results,
        (scenario, workload, max): (&'static str, Workload, u32),
    ) -> InMemoryComparison<'a> {
        let mut group = criterion.benchmark_group(scenario);
        if workload == Workload::Contended {
            group.throughput(Throughput::Elements(1));
        }
        InMemoryComparison {
            group,
            rt,
            env,
            results,
            scenario,
            max,
            workload,
        }
    }

    /// Fills `pool` to `max` connections, then benchmarks and measures it as `name`.
    pub fn add<P: Checkout>(mut self, name: &str, pool: &P) -> Self {
        let rt = self.rt;
        rt.block_on(fill(pool, self.max as usize));
        match self.workload {
            Workload::Uncontended => {
                self.group.bench_function(name, |b| {
                    b.to_async(rt)
                        .iter_custom(|iters| acquire_release(pool, iters));
                });
                let ns = ns_per_cycle(rt, pool, self.env);
                self.results
                    .record(self.scenario, name, names::NS_PER_CYCLE, ns);
                println!("{:>20} {name:<40} {ns:>10.1} ns/cycle", self.scenario);
            }
            Workload::Contended => {
                self.group.bench_function(name, |b| {
                    b.to_async(rt).iter_custom(|iters| {
                        let pool = pool.clone();
                        run_batch(CONTENDED_TASKS, iters, move || {
                            acquire_yield_release(pool.clone())
                        })
                    });
                });
                let config = LoadConfig::new(CONTENDED_TASKS, self.env);
                let shared = pool.clone();
                let report = rt.block_on(run_load(config, move || {
                    acquire_yield_release(shared.clone())
                }));
                report.record(self.results, self.scenario, name);
            }
        }
        self
    }

    /// Ends the criterion group.
    pub fn finish(self) {
        self.group.finish();
    }
}
