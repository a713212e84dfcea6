//! The service of the workspace README (`examples/service`) runs against the test server:
//! migrations, an order placed in each of three owned transactions, the export streamed,
//! every commit heard by the LISTEN loop, readiness passing, metrics exported (to a
//! collector that is not there, which the pipeline logs and survives).

#[path = "../examples/service/main.rs"]
mod service;

use pool_config::{Loader, Profile};
use pool_health::Status;
use pool_metrics::MetricsSettings;
use pool_testkit::{APP_PASSWORD, APP_USER, TestDatabase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_service_runs_against_the_test_server() -> Result<(), service::BoxError> {
    let db = TestDatabase::create().await?;
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let settings = Loader::new()
        .config_dir(config)
        .profile(Profile::Test)
        .env([
            ("DB_HOST", db.host().to_owned()),
            ("DB_PORT", db.port().to_string()),
            ("DB_NAME", db.name().to_owned()),
            ("DB_USERNAME", APP_USER.to_owned()),
            ("DB_PASSWORD", APP_PASSWORD.to_owned()),
        ])
        .load()?;
    // A port nothing listens on: exports fail at once, are logged, and never stop the service.
    let metrics = MetricsSettings::from_vars([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ])?;

    let summary = service::run(settings, metrics).await?;

    assert_eq!(summary.placed.len(), 3);
    assert_eq!(summary.exported, 3, "every order exported");
    let placed: Vec<String> = summary.placed.iter().map(i64::to_string).collect();
    assert_eq!(summary.heard, placed, "each commit heard, in order");
    assert_ne!(summary.ready, Status::Fail, "ready while serving");
    Ok(())
}

#[test]
fn the_readme_shows_the_example_as_it_is() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let example = std::fs::read_to_string(root.join("crates/pool-demo/examples/service/main.rs"))
        .expect("the example");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("the README");
    let start = example
        .find("// README: service start\n")
        .expect("the start marker")
        + "// README: service start\n".len();
    let end = example
        .find("// README: service end")
        .expect("the end marker");
    let shown = format!("```rust,ignore\n{}```", &example[start..end]);
    assert!(
        readme.contains(&shown),
        "README.md's \"A service, start to finish\" shows examples/service/main.rs between its \
         README markers; copy it again"
    );
}
