//! [`skip`]: a test that cannot run here says so by name, instead of passing in silence.
//!
//! Rust's test harness has no "skipped" outcome, so a test that returns early for lack of a
//! Docker engine looks exactly like one that ran. [`skip`] prints the reason, appends the
//! test's name to the file `SERVIO_TEST_SKIP_LOG` names (so `cargo xtask test` lists it in its
//! summary), and fails the test instead when the run asked for what is missing.

use std::io::Write as _;

use crate::backend::BACKEND_ENV;

/// Environment variable naming the file where skipped tests are recorded, one line each:
/// what was missing, the test, the reason (tab-separated).
pub const SKIP_LOG_ENV: &str = "SERVIO_TEST_SKIP_LOG";

/// Environment variable listing, comma-separated, what the run asked for (`docker`, say):
/// a test that would skip for lack of one of them fails instead.
pub const REQUIRE_ENV: &str = "SERVIO_TEST_REQUIRE";

/// Records the calling test as skipped because `needs` (`"docker"`, `"password
/// authentication"`) is unusable here, for `reason`; the caller then returns.
///
/// The test's name is the harness's thread name, prefixed with the package and test target.
///
/// # Panics
///
/// When the run asked for `needs` (`SERVIO_TEST_REQUIRE` lists it, or `SERVIO_TEST_BACKEND`
/// is it): what was asked for and is missing is a failure, not a skip.
pub fn skip(needs: &str, reason: &str) {
    if required(needs) {
        panic!("{needs} was asked for ({REQUIRE_ENV} or {BACKEND_ENV}), but {reason}");
    }
    let test = test_name();
    eprintln!("skipped: {test}: {reason}");
    if let Some(path) = std::env::var_os(SKIP_LOG_ENV) {
        let path = std::path::Path::new(&path);
        if let Err(error) = record(path, needs, &test, reason) {
            eprintln!("cannot record the skip in {}: {error}", path.display());
        }
    }
}

/// Appends one line to the skip log at `path`.
fn record(path: &std::path::Path, needs: &str, test: &str, reason: &str) -> std::io::Result<()> {
    let line = format!("{needs}\t{test}\t{}\n", reason.replace(['\t', '\n'], " "));
    // One append per line: lines of tests running in parallel processes do not interleave.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

fn required(needs: &str) -> bool {
    let listed = std::env::var(REQUIRE_ENV).unwrap_or_default();
    listed
        .split(',')
        .chain(std::env::var(BACKEND_ENV).as_deref())
        .any(|asked| asked.trim().eq_ignore_ascii_case(needs))
}

/// `<package> <test target> <test>`, as far as the process knows them.
fn test_name() -> String {
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    // Test executables are named `<target>-<hash>`.
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem()?.to_str().map(str::to_owned))
        .map(|stem| match stem.rsplit_once('-') {
            Some((target, _hash)) => target.to_owned(),
            None => stem,
        })
        .unwrap_or_default();
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("an unnamed test");
    [package.as_str(), target.as_str(), test]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_skip_is_one_tab_separated_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips.tsv");
        record(
            &log,
            "docker",
            "pool-testkit backends a_test",
            "no engine\tanswers",
        )
        .unwrap();
        record(
            &log,
            "password authentication",
            "poolctl check b_test",
            "trust",
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "docker\tpool-testkit backends a_test\tno engine answers\n\
             password authentication\tpoolctl check b_test\ttrust\n"
        );
    }

    #[test]
    fn the_name_says_package_target_and_test() {
        let name = test_name();
        assert!(
            name.ends_with("skip::tests::the_name_says_package_target_and_test"),
            "{name}"
        );
        assert!(
            name.contains("pool_testkit"),
            "the lib's test target: {name}"
        );
    }
}
