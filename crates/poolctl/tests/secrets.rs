//! One recognisable password, given in every way the product accepts, never appears in any
//! output: `poolctl config` in every format, `--check`, the errors of each bad input,
//! `poolctl check` and the health reports of failing checks, logs at the most verbose level,
//! `Debug` of everything a service holds, and the metrics sent to a collector.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool_config::Loader;
use pool_core::PoolRegistry;
use pool_health::{HealthChecker, HealthOptions};
use pool_metrics::{MetricsPipeline, MetricsSettings, Protocol};
use pool_testkit::{APP_USER, TestDatabase};

/// Recognisable, and wrong for the test server's user: every connection attempt fails, so the
/// error paths (connect errors, failing checks) run with it.
const PASSWORD: &str = "Rec0gnisable-pw-4471";
/// Part of it, in case an output truncates or re-encodes.
const FRAGMENT: &str = "Rec0gnisable";

/// Everything captured, checked at the end.
#[derive(Default)]
struct Outputs(Vec<(String, String)>);

impl Outputs {
    fn add(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.0.push((what.into(), text.into()));
    }

    #[track_caller]
    fn assert_hidden(&self) {
        assert!(
            self.0.len() > 100,
            "too few outputs checked: {}",
            self.0.len()
        );
        for (what, text) in &self.0 {
            assert!(
                !text.contains(PASSWORD) && !text.contains(FRAGMENT),
                "{what} shows the password:\n{text}"
            );
        }
    }
}

/// One way of giving the password: variables, and files for the config directory.
struct Way {
    name: &'static str,
    env: Vec<(String, String)>,
    files: Vec<(&'static str, String)>,
}

fn ways(db: &TestDatabase) -> Vec<Way> {
    let server = [
        ("DB_HOST", db.host().to_owned()),
        ("DB_PORT", db.port().to_string()),
        ("DB_NAME", db.name().to_owned()),
        ("DB_USERNAME", APP_USER.to_owned()),
    ];
    let with = |extra: &[(&str, String)]| -> Vec<(String, String)> {
        server
            .iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };
    let url = |userinfo: &str, query: &str| {
        vec![(
            "DATABASE_URL".to_owned(),
            format!(
                "postgres://{userinfo}@{}:{}/{}{query}",
                db.host(),
                db.port(),
                db.name()
            ),
        )]
    };
    vec![
        Way {
            name: "DB_PASSWORD",
            env: with(&[("DB_PASSWORD", PASSWORD.to_owned())]),
            files: vec![],
        },
        Way {
            name: "DB_PASSWORD_FILE",
            env: with(&[]),
            files: vec![("password", format!("{PASSWORD}\n"))],
        },
        Way {
            name: "DATABASE_URL user info",
            env: url(&format!("{APP_USER}:{PASSWORD}"), ""),
            files: vec![],
        },
        Way {
            name: "DATABASE_URL query",
            env: url(APP_USER, &format!("?password={PASSWORD}&sslmode=prefer")),
            files: vec![],
        },
        Way {
            name: "SERVIO_POOL_PASSWORD",
            env: with(&[("SERVIO_POOL_PASSWORD", PASSWORD.to_owned())]),
            files: vec![],
        },
        Way {
            name: "SERVIO_POOL_POOLS__REPLICA__PASSWORD",
            env: with(&[
                ("SERVIO_POOL_PASSWORD", "other-secret".to_owned()),
                ("SERVIO_POOL_POOLS__REPLICA__PASSWORD", PASSWORD.to_owned()),
            ]),
            files: vec![(
                "default.toml",
                "[pools.replica]\nmax_connections = 2\n".into(),
            )],
        },
        Way {
            name: "config file",
            env: with(&[]),
            files: vec![("default.toml", format!("password = \"{PASSWORD}\"\n"))],
        },
    ]
}

/// Bad inputs, each added to every way of giving the password, with the password in it where
/// it can be.
fn bad_inputs() -> Vec<Way> {
    let env = |pairs: &[(&str, String)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<Vec<_>>()
    };
    vec![
        Way {
            name: "a bad number",
            env: env(&[("SERVIO_POOL_MAX_CONNECTIONS", "zero".into())]),
            files: vec![],
        },
        Way {
            name: "a bad sslmode in the URL",
            env: env(&[(
                "DATABASE_URL",
                format!("postgres://u:{PASSWORD}@h/db?sslmode=maybe"),
            )]),
            files: vec![],
        },
        Way {
            name: "unsupported URL parameters",
            env: env(&[(
                "DATABASE_URL",
                format!("postgres://u@h/db?password={PASSWORD}&sslpassword={PASSWORD}&pool=1"),
            )]),
            files: vec![],
        },
        Way {
            name: "the password twice in the URL",
            env: env(&[(
                "DATABASE_URL",
                format!("postgres://u:{PASSWORD}@h/db?password={PASSWORD}"),
            )]),
            files: vec![],
        },
        Way {
            name: "not a URL",
            env: env(&[("DATABASE_URL", format!("not a url {PASSWORD}"))]),
            files: vec![],
        },
        Way {
            name: "a bad scheme",
            env: env(&[("DATABASE_URL", format!("mysql://u:{PASSWORD}@h/db"))]),
            files: vec![],
        },
        Way {
            name: "DB_PASSWORD with DB_PASSWORD_FILE",
            env: env(&[
                ("DB_PASSWORD", PASSWORD.into()),
                ("DB_PASSWORD_FILE", "password".into()),
            ]),
            files: vec![("password", PASSWORD.to_owned())],
        },
        Way {
            name: "an empty password file",
            env: env(&[("DB_PASSWORD_FILE", "empty".into())]),
            files: vec![("empty", String::new())],
        },
        Way {
            name: "malformed TOML",
            env: vec![],
            files: vec![("default.toml", format!("password = \"{PASSWORD}\nmax = "))],
        },
        Way {
            name: "a misspelt key",
            env: vec![],
            files: vec![("default.toml", format!("pasword = \"{PASSWORD}\"\n"))],
        },
        Way {
            name: "production with an unbounded connect",
            env: env(&[
                ("APP_ENV", "production".into()),
                ("SERVIO_POOL_CONNECT_TIMEOUT", "0".into()),
            ]),
            files: vec![],
        },
    ]
}

/// A configuration directory holding `files`; `DB_PASSWORD_FILE` values name files in it.
fn config_dir(files: &[(&str, String)], env: &mut [(String, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).expect("write a config file");
    }
    for (key, value) in env.iter_mut() {
        if key == "DB_PASSWORD_FILE" {
            *value = dir.path().join(&*value).display().to_string();
        }
    }
    dir
}

const POOLCTL_RUNS: [&[&str]; 10] = [
    &["config"],
    &["config", "--format", "json"],
    &["config", "--format", "markdown"],
    &["config", "--all-profiles", "--format", "markdown"],
    &["config", "--check"],
    &["config", "--check", "--deny-warnings"],
    &["config", "--check", "--all-profiles"],
    &[
        "config",
        "--check",
        "--instances",
        "3",
        "--server-max-connections",
        "10",
    ],
    &["check"],
    &["check", "--format", "json"],
];

fn poolctl(args: &[&str], env: &[(String, String)], dir: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_poolctl"))
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("SERVIO_CONFIG_DIR", dir)
        .env("RUST_LOG", "trace")
        .current_dir(dir)
        .output()
        .expect("run poolctl");
    format!(
        "exit {:?}\n{}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Log lines of every level, from every crate, captured for searching.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Export requests as they arrive on the wire (headers and protobuf body), for searching.
async fn collector(requests: Arc<Mutex<Vec<u8>>>) -> String {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/v1/metrics",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let requests = Arc::clone(&requests);
                async move {
                    let mut seen = requests.lock().unwrap();
                    seen.extend_from_slice(format!("{headers:?}").as_bytes());
                    seen.extend_from_slice(&body);
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// What a service does with the settings: pools that try to connect (and fail: the password
/// is wrong), health checks of every kind, metrics exported to a collector.
async fn run_service(
    env: &[(String, String)],
    dir: &std::path::Path,
    endpoint: &str,
    outputs: &mut Outputs,
    name: &str,
) {
    let loader = Loader::new().config_dir(dir).env(env.iter().cloned());
    outputs.add(
        format!("{name}: Debug of the loader"),
        format!("{loader:?}"),
    );
    let settings = match loader.load() {
        Ok(settings) => settings,
        Err(errors) => {
            outputs.add(
                format!("{name}: load errors"),
                format!("{errors}\n{errors:?}"),
            );
            return;
        }
    };
    outputs.add(
        format!("{name}: settings"),
        format!("{settings:?}\n{settings:#?}"),
    );
    let registry = PoolRegistry::from_settings(&settings).expect("pools");
    for (pool_name, pool) in registry.iter() {
        let error = tokio::time::timeout(Duration::from_secs(15), pool.acquire())
            .await
            .expect("acquire ends within its deadline")
            .expect_err("the password is wrong");
        outputs.add(
            format!("{name}: pool {pool_name}"),
            format!(
                "{error}\n{error:?}\n{pool:?}\n{:?}\n{:?}\n{:?}",
                pool.connector(),
                pool.connector().connect_options(),
                pool.stats()
            ),
        );
    }
    let metrics = MetricsPipeline::start(MetricsSettings {
        endpoint: Some(endpoint.to_owned()),
        protocol: Some(Protocol::HttpProtobuf),
        ..MetricsSettings::default()
    })
    .expect("metrics");
    metrics.instrument_registry(&registry).expect("instrument");
    let checker = HealthChecker::for_registry(
        &registry,
        HealthOptions {
            timeout: Duration::from_secs(2),
            cache_ttl: Duration::ZERO,
            show_hosts: true,
            ..HealthOptions::default()
        },
    )
    .expect("checker");
    let ready = checker.ready().await;
    let full = checker.report().await;
    assert_eq!(
        full.status(),
        pool_health::Status::Fail,
        "{name}: the checks fail"
    );
    for (what, report) in [
        ("ready", &ready),
        ("full", &full),
        ("public ready", &ready.public()),
        ("live", &checker.live().public()),
    ] {
        outputs.add(
            format!("{name}: {what} report"),
            format!("{}\n{report:?}", serde_json::to_string(report).unwrap()),
        );
    }
    outputs.add(
        format!("{name}: checker"),
        format!("{checker:?}\n{metrics:?}"),
    );
    metrics.flush().await.expect("export");
    metrics.shutdown().await.expect("shutdown");
    registry.close_all(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_never_appears_in_any_output() {
    let logs = Logs::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_ansi(false)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .init();
    let db = TestDatabase::create().await.expect("a test database");
    let exported = Arc::new(Mutex::new(Vec::new()));
    let endpoint = collector(Arc::clone(&exported)).await;
    let mut outputs = Outputs::default();

    for way in ways(&db) {
        let mut env = way.env.clone();
        let dir = config_dir(&way.files, &mut env);
        for args in POOLCTL_RUNS {
            let shown = poolctl(args, &env, dir.path());
            outputs.add(format!("{}: poolctl {}", way.name, args.join(" ")), shown);
        }
        run_service(&env, dir.path(), &endpoint, &mut outputs, way.name).await;
        for bad in bad_inputs() {
            let mut env = way.env.clone();
            env.extend(bad.env);
            let mut all_files = way.files.clone();
            all_files.extend(bad.files);
            let bad = bad.name;
            let dir = config_dir(&all_files, &mut env);
            let shown = poolctl(&["config", "--check"], &env, dir.path());
            assert!(
                shown.starts_with("exit Some(1)"),
                "{}, {bad}: {shown}",
                way.name
            );
            outputs.add(
                format!("{}, {bad}: poolctl config --check", way.name),
                shown,
            );
            let loader = Loader::new()
                .config_dir(dir.path())
                .env(env.iter().cloned());
            let shown = match loader.load_lenient() {
                Ok((settings, errors)) => format!("{settings:?}\n{errors}\n{errors:?}"),
                Err(errors) => format!("{errors}\n{errors:?}"),
            };
            outputs.add(format!("{}, {bad}: load errors", way.name), shown);
        }
    }

    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("DEBUG") || logs.contains("TRACE"),
        "debug logs were captured: {logs}"
    );
    outputs.add("logs at every level", logs);
    let exported = exported.lock().unwrap().clone();
    assert!(!exported.is_empty(), "metrics reached the collector");
    outputs.add(
        "metrics export",
        String::from_utf8_lossy(&exported).into_owned(),
    );
    outputs.assert_hidden();
}
