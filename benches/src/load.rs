//! A fixed-duration load: many tasks repeat one operation; per-operation latency, operations
//! per task, throughput and client CPU are recorded.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

use crate::bench_env::BenchEnv;
use crate::cpu_time::CpuTime;
use crate::distribution::Distribution;
use crate::results::{Results, names};

/// How many tasks run the operation, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct LoadConfig {
    /// Concurrent tasks, each repeating the operation back to back.
    pub tasks: usize,
    /// Time the tasks run before anything is recorded (fills caches, opens connections).
    pub warmup: Duration,
    /// Time during which operations are recorded.
    pub duration: Duration,
    /// Operations per second offered to all tasks together; `None`: each task starts the next
    /// as the last one ends.
    pub rate: Option<f64>,
}

impl LoadConfig {
    /// `tasks` tasks for the environment's warm-up and duration.
    pub fn new(tasks: usize, env: &BenchEnv) -> LoadConfig {
        LoadConfig {
            tasks,
            warmup: env.warmup(),
            duration: env.duration(),
            rate: None,
        }
    }

    /// The same load offered at a fixed `rate` (operations per second, all tasks together):
    /// latency at a load every pool compared sustains, instead of at each one's own maximum.
    pub fn paced(self, rate: f64) -> LoadConfig {
        LoadConfig {
            rate: Some(rate),
            ..self
        }
    }
}

/// The starts of a paced load: a thread of its own releases `rate` starts per second, in
/// batches every [`Pacer::TICK`], through a FIFO semaphore the tasks take one start from
/// before each operation. Tokio's timers fire on millisecond ticks, so per-task sleeps would
/// start the operations in bursts of a millisecond's worth; this spreads them finer, and the
/// tasks still start in the order they asked.
#[derive(Debug)]
struct Pacer {
    starts: Arc<Semaphore>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pacer {
    /// How often the thread releases the starts that have come due.
    const TICK: Duration = Duration::from_micros(100);

    fn start(rate: f64) -> Pacer {
        let starts = Arc::new(Semaphore::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (starts, stop) = (Arc::clone(&starts), Arc::clone(&stop));
            std::thread::spawn(move || {
                let begin = Instant::now();
                let mut released = 0_u64;
                // Ordering: a stop flag polled every tick; a stale read costs one more tick.
                while !stop.load(Ordering::Relaxed) {
                    let due = (begin.elapsed().as_secs_f64() * rate) as u64;
                    if due > released {
                        starts.add_permits(usize::try_from(due - released).unwrap_or(usize::MAX));
                        released = due;
                    }
                    std::thread::sleep(Self::TICK);
                }
            })
        };
        Pacer {
            starts,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits for the next start.
    async fn wait(starts: &Semaphore) {
        if let Ok(start) = starts.acquire().await {
            start.forget();
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a [`run_load`] measured.
#[derive(Debug)]
pub struct LoadReport {
    /// Operations completed by each task while recording.
    pub ops_per_task: Vec<u64>,
    /// One sample per recorded operation (see [`run_load`] for what it spans).
    pub latency: Distribution,
    /// Wall time of the recording window.
    pub elapsed: Duration,
    /// Client CPU used by this process during the recording window, where it can be read.
    pub cpu: Option<Duration>,
    /// The fewest operations any task completed as a fraction of the mean (1.0 = every task
    /// got the same share; 0.0 = some task starved); for merged slices, the worst slice's.
    pub fairness: f64,
}

impl LoadReport {
    /// Operations completed by all tasks while recording.
    pub fn total_ops(&self) -> u64 {
        self.ops_per_task.iter().sum()
    }

    /// Operations per second over the recording window.
    pub fn throughput(&self) -> f64 {
        self.total_ops() as f64 / self.elapsed.as_secs_f64()
    }

    /// Combines slices of one load, each run with its own tasks: operations and samples pool,
    /// times add up, and fairness is the worst slice's. `None` for no slices.
    pub fn merge(slices: Vec<LoadReport>) -> Option<LoadReport> {
        let fairness = slices.iter().map(|s| s.fairness).reduce(f64::min)?;
        let elapsed = slices.iter().map(|s| s.elapsed).sum();
        let cpu = slices.iter().map(|s| s.cpu).sum();
        let ops_per_task = slices
            .iter()
            .flat_map(|s| s.ops_per_task.iter().copied())
            .collect();
        let latency = Distribution::merged(slices.into_iter().map(|s| s.latency));
        Some(LoadReport {
            ops_per_task,
            latency,
            elapsed,
            cpu,
            fairness,
        })
    }

    /// Client CPU per operation, where CPU time could be read.
    pub fn cpu_per_op(&self) -> Option<Duration> {
        let ops = u32::try_from(self.total_ops().max(1)).unwrap_or(u32::MAX);
        self.cpu.map(|cpu| cpu / ops)
    }

    /// Records throughput, p50 / p99 / p99.9 latency, fairness and CPU per operation under
    /// `scenario` and `pool`, and prints them.
    pub fn record(&self, results: &mut Results, scenario: &str, pool: &str) {
        let nanos = |d: Duration| d.as_nanos() as f64;
        let (p50, p99, p999) = (
            self.latency.quantile(0.50),
            self.latency.quantile(0.99),
            self.latency.quantile(0.999),
        );
        results.record(scenario, pool, names::OPS_PER_SEC, self.throughput());
        results.record(scenario, pool, names::P50_NS, nanos(p50));
        results.record(scenario, pool, names::P99_NS, nanos(p99));
        results.record(scenario, pool, names::P999_NS, nanos(p999));
        results.record(scenario, pool, names::FAIRNESS, self.fairness);
        if let Some(cpu) = self.cpu_per_op() {
            results.record(scenario, pool, names::CPU_NS_PER_OP, nanos(cpu));
        }
        println!(
            "{scenario:>20} {pool:<40} {:>9.0} ops/s  p50 {p50:?}  p99 {p99:?}  p99.9 {p999:?}  \
             fairness {:.2}  cpu/op {:?}",
            self.throughput(),
            self.fairness,
            self.cpu_per_op().unwrap_or_default(),
        );
    }
}

const WARMUP: u8 = 0;
const RECORD: u8 = 1;
const STOP: u8 = 2;

/// Runs `op` from `config.tasks` tasks spawned on the current runtime until the warm-up and
/// recording windows have passed, then waits for every task to finish its operation.
///
/// With [`LoadConfig::rate`] each task waits for a start (see `Pacer`) before it calls `op`;
/// that wait is not part of the sample.
///
/// `op` returns the instant its measured phase ended; the sample is the time from just before
/// `op` was called to that instant (for example: until the connection was acquired, or until
/// the query returned). An operation counts when the recording window was open as it started.
///
/// # Panics
///
/// If a task panics (an operation failed), with that task's message.
pub async fn run_load<F, Fut>(config: LoadConfig, op: F) -> LoadReport
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Instant> + Send + 'static,
{
    let op = Arc::new(op);
    let phase = Arc::new(AtomicU8::new(WARMUP));
    // Dropped after every task has ended: a task waiting for a start gets one, sees the
    // stop and ends.
    let pacer = config.rate.filter(|rate| *rate > 0.0).map(Pacer::start);
    let tasks: Vec<_> = (0..config.tasks)
        .map(|_| {
            let op = Arc::clone(&op);
            let phase = Arc::clone(&phase);
            let starts = pacer.as_ref().map(|p| Arc::clone(&p.starts));
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(1 << 14);
                loop {
                    if let Some(starts) = &starts {
                        Pacer::wait(starts).await;
                    }
                    // Ordering: a flag read once per operation; a stale value only shifts one
                    // operation across the window's edge.
                    let now_phase = phase.load(Ordering::Relaxed);
                    if now_phase == STOP {
                        break;
                    }
                    let start = Instant::now();
                    let end = op().await;
                    if now_phase == RECORD {
                        samples.push(end.saturating_duration_since(start).as_nanos() as u64);
                    }
                }
                samples
            })
        })
        .collect();

    tokio::time::sleep(config.warmup).await;
    let cpu_start = CpuTime::now();
    let start = Instant::now();
    phase.store(RECORD, Ordering::Relaxed);
    tokio::time::sleep(config.duration).await;
    phase.store(STOP, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let cpu = cpu_start.zip(CpuTime::now()).map(|(a, b)| b.since(a));

    let mut ops_per_task = Vec::with_capacity(tasks.len());
    let mut all = Vec::new();
    for task in tasks {
        let samples = match task.await {
            Ok(samples) => samples,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        };
        ops_per_task.push(samples.len() as u64);
        all.extend(samples);
    }
    LoadReport {
        fairness: fairness(&ops_per_task),
        ops_per_task,
        latency: Distribution::from_nanos(all),
        elapsed,
        cpu,
    }
}

/// The fewest operations of any task as a fraction of the mean.
fn fairness(ops_per_task: &[u64]) -> f64 {
    let total: u64 = ops_per_task.iter().sum();
    let mean = total as f64 / ops_per_task.len().max(1) as f64;
    let min = ops_per_task.iter().copied().min().unwrap_or(0) as f64;
    if mean == 0.0 { 0.0 } else { min / mean }
}

/// One slice of the load `op` on `rt` per call: the shape [`Interleaved`] takes.
///
/// [`Interleaved`]: crate::Interleaved
pub fn load_slices<'a, F, Fut>(
    rt: &'a Runtime,
    config: LoadConfig,
    op: F,
) -> impl FnMut() -> LoadReport + 'a
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Instant> + Send + 'static,
{
    move || rt.block_on(run_load(config, op.clone()))
}

/// Merges each pool's slices and records them under `scenario` (see [`LoadReport::record`]).
pub fn record_slices(results: &mut Results, scenario: &str, taken: Vec<(String, Vec<LoadReport>)>) {
    for (pool, slices) in taken {
        if let Some(report) = LoadReport::merge(slices) {
            report.record(results, scenario, &pool);
        }
    }
}

/// Runs `op` `total` times split evenly over `tasks` spawned tasks and returns the wall time:
/// the shape criterion's `iter_custom` wants for a contended benchmark.
///
/// # Panics
///
/// If a task panics (an operation failed).
pub async fn run_batch<F, Fut>(tasks: usize, total: u64, op: F) -> Duration
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Instant> + Send + 'static,
{
    let op = Arc::new(op);
    let tasks = tasks.max(1) as u64;
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let op = Arc::clone(&op);
            let count = total / tasks + u64::from(i < total % tasks);
            tokio::spawn(async move {
                for _ in 0..count {
                    op().await;
                }
            })
        })
        .collect();
    for handle in handles {
        if let Err(error) = handle.await {
            std::panic::resume_unwind(error.into_panic());
        }
    }
    start.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_task_records_operations() {
        let config = LoadConfig {
            tasks: 4,
            warmup: Duration::from_millis(5),
            duration: Duration::from_millis(50),
            rate: None,
        };
        let report = run_load(config, || async {
            tokio::task::yield_now().await;
            Instant::now()
        })
        .await;
        assert_eq!(report.ops_per_task.len(), 4);
        assert!(report.ops_per_task.iter().all(|ops| *ops > 0));
        assert_eq!(report.latency.len() as u64, report.total_ops());
        assert!(report.fairness > 0.0 && report.fairness <= 1.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paced_load_offers_its_rate_whatever_the_operation_could_do() {
        // 4 tasks offered 400 starts a second for 0.5 s: about 200 operations, though each
        // takes a yield and could run thousands of times a second.
        let config = LoadConfig {
            tasks: 4,
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(500),
            rate: None,
        }
        .paced(400.0);
        let report = run_load(config, || async {
            tokio::task::yield_now().await;
            Instant::now()
        })
        .await;
        let (total, expected) = (report.total_ops(), 400.0 * report.elapsed.as_secs_f64());
        assert!(
            (total as f64) <= expected * 1.2 + 4.0 && (total as f64) >= expected * 0.5,
            "{total} operations recorded in {:?}",
            report.elapsed
        );
        assert!(report.ops_per_task.iter().all(|ops| *ops > 0));
    }

    #[test]
    fn merged_slices_add_up_and_keep_the_worst_fairness() {
        let slice = |ops: Vec<u64>, millis| LoadReport {
            fairness: fairness(&ops),
            latency: Distribution::from_nanos(vec![1; ops.iter().sum::<u64>() as usize]),
            ops_per_task: ops,
            elapsed: Duration::from_millis(millis),
            cpu: Some(Duration::from_millis(millis / 2)),
        };
        let merged =
            LoadReport::merge(vec![slice(vec![10, 10], 100), slice(vec![5, 15], 100)]).unwrap();
        assert_eq!(merged.total_ops(), 40);
        assert_eq!(merged.latency.len(), 40);
        assert_eq!(merged.elapsed, Duration::from_millis(200));
        assert_eq!(merged.cpu, Some(Duration::from_millis(100)));
        assert_eq!(merged.fairness, 0.5);
        assert_eq!(merged.throughput(), 200.0);
        assert!(LoadReport::merge(Vec::new()).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batch_runs_exactly_the_requested_operations() {
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = Arc::clone(&count);
        run_batch(3, 10, move || {
            let seen = Arc::clone(&seen);
            async move {
                seen.fetch_add(1, Ordering::Relaxed);
                Instant::now()
            }
        })
        .await;
        assert_eq!(count.load(Ordering::Relaxed), 10);
    }
}
