//! Benchmark 3: our pool's uncontended acquire + release (max 8, in-memory connections) with
//! and without a pool-metrics observer recording the OpenTelemetry histograms.
//!
//! The metrics pipeline is the production one (OTLP over HTTP) with an export interval of an
//! hour, so nothing is exported while timing: what is measured is the cost of recording on
//! the pool's hot path (clock reads for wait and use time, two histogram records).

use std::sync::Arc;
use std::time::Duration;

use benches::{
    BenchEnv, InMemoryComparison, Results, Workload, current_thread_runtime, names, publish,
    servio_memory_pool,
};
use criterion::Criterion;
use pool_metrics::{MetricsPipeline, MetricsSettings};

const MAX: u32 = 8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = BenchEnv::from_env();
    let rt = current_thread_runtime()?;
    let plain = rt.block_on(async { servio_memory_pool(MAX) });
    let (recorded, pipeline) = rt.block_on(async {
        let pool = servio_memory_pool(MAX);
        let settings = MetricsSettings {
            interval: Some(Duration::from_secs(3600)),
            ..MetricsSettings::default()
        };
        let pipeline = MetricsPipeline::start(settings)?;
        let stats_of = pool.clone();
        let observer = pipeline.register("bench", move || stats_of.stats())?;
        pool.set_observer(observer as Arc<dyn pool_core::PoolObserver>);
        Ok::<_, Box<dyn std::error::Error>>((pool, pipeline))
    })?;
    let mut criterion = Criterion::default().configure_from_args();
    let mut results = Results::new();
    let scenario = (names::METRICS_OVERHEAD, Workload::Uncontended, MAX);
    InMemoryComparison::new(&mut criterion, &rt, &env, &mut results, scenario)
        .add(names::OURS, &plain)
        .add(names::OURS_WITH_METRICS, &recorded)
        .finish();
    criterion.final_summary();
    // Nobody listens for the final export: its error says so and is of no interest here.
    let _ = rt.block_on(pipeline.shutdown());
    Ok(publish(&env, "metrics", &results)?)
}
