//! `poolctl config --check` and the pool agree: over generated configurations (random values
//! for every key the pool reads, within and around every bound), `Settings::validate` passes
//! exactly when `PoolRegistry::from_settings` builds the pools. Operators gate deployments on
//! `--check`; a configuration it passes must start.
//!
//! Building is lazy and no runtime is running here, so no connection is ever attempted.

use pool_config::{Loader, Profile, Settings};
use pool_core::PoolRegistry;

/// The longest duration any setting may be, in milliseconds: 365 days.
const LONGEST_MILLIS: u64 = 365 * 86_400 * 1000;

/// PostgreSQL's own ceiling on `max_connections`.
const MAX_CONNECTIONS: u32 = 262_143;

/// Generated configurations per run.
const CASES: usize = 3000;

/// Durations (milliseconds) at and around every bound a setting has: zero, the 250ms floor of
/// waits, the 30s defaults, the longest duration, the server's statement_timeout ceiling.
fn bounds() -> Vec<u64> {
    let longest = LONGEST_MILLIS;
    let server = i32::MAX as u64;
    vec![
        0,
        1,
        249,
        250,
        251,
        999,
        1_000,
        29_999,
        30_000,
        30_001,
        1_800_000,
        longest - 1,
        longest,
        longest + 1,
        server,
        server + 1,
    ]
}

/// A duration as a user writes it: whole milliseconds, or text (`"30s"`, `"250ms"`).
fn written(rng: &mut fastrand::Rng, millis: u64) -> String {
    match rng.u8(0..3) {
        0 => millis.to_string(),
        1 if millis.is_multiple_of(1000) => format!("{}s", millis / 1000),
        _ => format!("{millis}ms"),
    }
}

fn duration(rng: &mut fastrand::Rng, bounds: &[u64]) -> u64 {
    match rng.u8(0..3) {
        0 => rng.u64(0..120_000),
        _ => bounds[rng.usize(0..bounds.len())],
    }
}

fn pick<'a>(rng: &mut fastrand::Rng, values: &[&'a str]) -> &'a str {
    values[rng.usize(0..values.len())]
}

/// One generated configuration as `SERVIO_POOL_*` variables; each key set with probability
/// 3/4, so built-in defaults meet generated values too.
fn generate(rng: &mut fastrand::Rng, bounds: &[u64]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |rng: &mut fastrand::Rng, key: &str, value: String| {
        if rng.u8(0..4) != 0 {
            env.push((format!("SERVIO_POOL_{}", key.to_ascii_uppercase()), value));
        }
    };
    let max = match rng.u8(0..4) {
        0 => [0, 1, MAX_CONNECTIONS, MAX_CONNECTIONS + 1][rng.usize(0..4)],
        _ => rng.u32(0..64),
    };
    set(rng, "max_connections", max.to_string());
    let min = match rng.u8(0..3) {
        0 => max.saturating_add(1),
        1 => max,
        _ => rng.u32(0..32),
    };
    set(rng, "min_connections", min.to_string());
    for key in [
        "idle_timeout",
        "connect_timeout",
        "acquire_timeout",
        "query_timeout",
        "validate_after_idle",
        "keepalive_interval",
        "leak_detection_threshold",
        "statement_timeout",
        "lock_timeout",
        "idle_in_transaction_session_timeout",
    ] {
        let value = if rng.u8(0..8) == 0 {
            "off".to_owned()
        } else {
            let millis = duration(rng, bounds);
            written(rng, millis)
        };
        set(rng, key, value);
    }
    // The jitter is taken off each connection's lifetime: generate it at, just below and just
    // above the lifetime as often as anywhere else.
    let lifetime = duration(rng, bounds);
    let jitter = match rng.u8(0..4) {
        0 => lifetime,
        1 => lifetime.saturating_sub(1),
        2 => lifetime.saturating_add(1),
        _ => duration(rng, bounds),
    };
    let lifetime_text = written(rng, lifetime);
    set(rng, "max_lifetime", lifetime_text);
    let jitter_text = written(rng, jitter);
    set(rng, "lifetime_jitter", jitter_text);
    let uses = pick(rng, &["0", "1", "7500", "off", "18446744073709551615"]).to_owned();
    set(rng, "max_uses", uses);
    let waiters = pick(rng, &["0", "1", "16", "off", "4294967295"]).to_owned();
    set(rng, "max_waiters", waiters);
    let pgbouncer = pick(rng, &["off", "session", "transaction"]).to_owned();
    set(rng, "pgbouncer", pgbouncer);
    let host = pick(
        rng,
        &["localhost", "db-a,db-b", "db-a,,db-b", "db-a,db-b,db-c"],
    )
    .to_owned();
    set(rng, "host", host);
    let port = pick(rng, &["5432", "5432,5433", "5432,5433,5434"]).to_owned();
    set(rng, "port", port);
    let attrs = pick(rng, &["any", "read-write", "primary", "prefer-standby"]).to_owned();
    set(rng, "target_session_attrs", attrs);
    let isolation = pick(rng, &["", "serializable", "read committed", "snapshot"]).to_owned();
    set(rng, "default_transaction_isolation", isolation);
    let search_path = pick(rng, &["", "app, public"]).to_owned();
    set(rng, "search_path", search_path);
    let parameter = pick(rng, &["work_mem", "client_encoding", "2fast"]);
    set(rng, &format!("session__{parameter}"), "64MB".to_owned());
    for key in ["reset_on_release", "check_writable"] {
        let value = pick(rng, &["true", "false"]).to_owned();
        set(rng, key, value);
    }
    env
}

/// The settings `env` gives over built-in defaults, every valid value applied (as `poolctl
/// config` shows them), whatever rule they break.
fn settings(env: &[(String, String)]) -> Settings {
    // An empty configuration directory: built-in defaults plus the variables given.
    let dir = std::env::temp_dir().join(format!("pool-core-agreement-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("an empty configuration directory");
    Loader::new()
        .config_dir(dir)
        .profile(Profile::Test)
        .env(env.iter().cloned())
        .load_lenient()
        .expect("the test profile always loads")
        .0
}

/// Asserts that `--check`'s verdict is the pool's, returning whether both accepted.
#[track_caller]
fn assert_agree(env: &[(String, String)]) -> bool {
    let settings = settings(env);
    let checked = settings.validate();
    let built = PoolRegistry::from_settings(&settings);
    match (&checked, &built) {
        (Ok(()), Ok(_)) => true,
        (Err(errors), Err(error)) => {
            // The pool refuses with the check's own errors: key, value, source, accepted.
            let shown = error.to_string();
            for e in errors.errors() {
                assert!(shown.contains(&e.to_string()), "{shown}\nlacks {e}");
            }
            false
        }
        (Ok(()), Err(error)) => {
            panic!("--check passes {env:?} but the pool refuses it: {error}")
        }
        (Err(errors), Ok(_)) => {
            panic!("the pool builds from {env:?} but --check refuses it: {errors}")
        }
    }
}

#[test]
fn the_check_passes_exactly_when_the_pool_builds() {
    let seed = std::env::var("CONFIG_AGREEMENT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5e_4f10);
    let mut rng = fastrand::Rng::with_seed(seed);
    let bounds = bounds();
    let accepted = (0..CASES)
        .filter(|_| assert_agree(&generate(&mut rng, &bounds)))
        .count();
    // Both verdicts must be common, or the generator tests only one side.
    assert!(
        accepted > CASES / 50 && accepted < CASES - CASES / 50,
        "{accepted} of {CASES} configurations accepted (seed {seed})"
    );
}

#[test]
fn a_lifetime_within_its_jitter_fails_the_check_as_it_fails_the_pool() {
    let env = vec![(
        "SERVIO_POOL_MAX_LIFETIME".to_owned(),
        "30s".to_owned(), // the default lifetime_jitter is 30s too
    )];
    let settings = settings(&env);
    let errors = settings
        .validate()
        .expect_err("a lifetime no longer than its jitter must fail --check");
    let shown = errors.to_string();
    assert!(
        shown.contains("`lifetime_jitter` = 30s")
            && shown
                .contains("max_lifetime (30s from environment variable SERVIO_POOL_MAX_LIFETIME)"),
        "{shown}"
    );
    assert!(!assert_agree(&env));
}

#[test]
fn every_pool_setting_maps_onto_a_pool_option() {
    // A setting that says it maps onto `PoolOptions::x` names a builder method that exists.
    let options = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/options.rs"),
    )
    .expect("read PoolOptions");
    for setting in pool_config::PoolSettings::SETTINGS {
        if let Some(method) = setting.maps_to.strip_prefix("PoolOptions::") {
            let method = method.split_whitespace().next().unwrap_or_default();
            assert!(
                options.contains(&format!("pub fn {method}(")),
                "`{}` maps onto PoolOptions::{method}, which does not exist",
                setting.key
            );
        }
        if setting.applies == pool_config::Applies::Pool {
            assert!(
                setting.maps_to.starts_with("PoolOptions::"),
                "`{}` applies to the pool but maps onto {}",
                setting.key,
                setting.maps_to
            );
        }
    }
}
