//! The in-memory scenarios (uncontended and contended): each pool is filled and registered
//! with criterion for the HTML reports, then all are measured in turns for the summary.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use tokio::runtime::Runtime;

use crate::bench_env::BenchEnv;
use crate::checkout::{Checkout, acquire_release, acquire_yield_release, fill};
use crate::cpu_time::CpuTime;
use crate::distribution::median;
use crate::interleaved::Interleaved;
use crate::load::{LoadConfig, LoadReport, load_slices, record_slices, run_batch};
use crate::results::{Results, names};

/// The least CPU time a figure is drawn from: 20 ticks of `/proc/self/stat`, so a tick's
/// rounding stays within 5 %.
const MIN_CPU_WINDOW: std::time::Duration = std::time::Duration::from_millis(200);

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

/// What the summary pass takes from each pool, in turns.
#[derive(Debug)]
enum Measurements<'a> {
    /// Nanoseconds per cycle and the process's CPU time (all threads), one pair per round.
    Cycles(Interleaved<'a, (f64, Option<std::time::Duration>)>),
    /// One fixed-duration load slice per round.
    Loads(Interleaved<'a, LoadReport>),
}

/// One in-memory scenario on the same runtime: pools are added one by one (criterion runs
/// each as it is added), then [`finish`](Self::finish) measures them all in turns.
pub struct InMemoryComparison<'a> {
    group: BenchmarkGroup<'a, WallTime>,
    rt: &'a Runtime,
    env: &'a BenchEnv,
    results: &'a mut Results,
    scenario: &'static str,
    max: u32,
    measurements: Measurements<'a>,
}

impl std::fmt::Debug for InMemoryComparison<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryComparison")
            .field("scenario", &self.scenario)
            .field("max", &self.max)
            .field("measurements", &self.measurements)
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
        let measurements = match workload {
            Workload::Uncontended => Measurements::Cycles(Interleaved::new()),
            Workload::Contended => {
                group.throughput(Throughput::Elements(1));
                Measurements::Loads(Interleaved::new())
            }
        };
        InMemoryComparison {
            group,
            rt,
            env,
            results,
            scenario,
            max,
            measurements,
        }
    }

    /// Fills `pool` to `max` connections and benchmarks it with criterion as `name`; its
    /// summary measurement runs in [`finish`](Self::finish).
    pub fn add<P: Checkout>(mut self, name: &str, pool: &P) -> Self {
        let rt = self.rt;
        rt.block_on(fill(pool, self.max as usize));
        match &mut self.measurements {
            Measurements::Cycles(runs) => {
                self.group.bench_function(name, |b| {
                    b.to_async(rt)
                        .iter_custom(|iters| acquire_release(pool, iters));
                });
                let (_, cycles) = self.env.cycle_rounds();
                let pool = pool.clone();
                runs.add(name, move || {
                    let cpu = CpuTime::now();
                    let wall = rt.block_on(acquire_release(&pool, cycles));
                    let cpu = cpu.zip(CpuTime::now()).map(|(a, b)| b.since(a));
                    (wall.as_nanos() as f64 / cycles as f64, cpu)
                });
            }
            Measurements::Loads(runs) => {
                self.group.bench_function(name, |b| {
                    b.to_async(rt).iter_custom(|iters| {
                        let pool = pool.clone();
                        run_batch(CONTENDED_TASKS, iters, move || {
                            acquire_yield_release(pool.clone())
                        })
                    });
                });
                let config = LoadConfig::new(CONTENDED_TASKS, self.env);
                let pool = pool.clone();
                let op = move || acquire_yield_release(pool.clone());
                runs.add(name, load_slices(rt, config, op));
            }
        }
        self
    }

    /// Ends the criterion group, then measures every pool in turns and records the results.
    pub fn finish(self) {
        self.group.finish();
        match self.measurements {
            Measurements::Cycles(runs) => {
                let (rounds, cycles) = self.env.cycle_rounds();
                for (pool, per_round) in runs.run(rounds) {
                    let (mut walls, cpus): (Vec<f64>, Vec<_>) = per_round.into_iter().unzip();
                    let ns = median(&mut walls);
                    self.results
                        .record(self.scenario, &pool, names::NS_PER_CYCLE, ns);
                    // CPU is read in 10 ms ticks: summed over every round, not a median, and
                    // left out when the rounds were too short for the ticks (a quick run).
                    let cpu = cpus
                        .into_iter()
                        .sum::<Option<std::time::Duration>>()
                        .filter(|cpu| *cpu >= MIN_CPU_WINDOW);
                    let cpu_ns =
                        cpu.map(|cpu| cpu.as_nanos() as f64 / (rounds as u64 * cycles) as f64);
                    if let Some(cpu_ns) = cpu_ns {
                        self.results
                            .record(self.scenario, &pool, names::CPU_NS_PER_OP, cpu_ns);
                    }
                    let cpu = cpu_ns.map_or_else(|| "–".to_owned(), |n| format!("{n:.1} ns/cycle"));
                    println!(
                        "{:>20} {pool:<40} {ns:>10.1} ns/cycle  cpu {cpu}",
                        self.scenario
                    );
                }
            }
            Measurements::Loads(runs) => {
                record_slices(self.results, self.scenario, runs.run(self.env.slices()));
            }
        }
    }
}
