//! The last lines of `cargo xtask test`: the outcome, then one line per backend and tool
//! saying whether the run used it or skipped it and why, then every test that skipped itself
//! (pool-testkit's `skip` records them in `SERVIO_TEST_SKIP_LOG`).

use std::collections::BTreeMap;

use crate::prereq::{Facts, Need, Tool};

/// The run's server, as its holder described it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Server {
    pub(crate) backend: String,
    /// Handed to the tests; holds a password, never printed.
    pub(crate) url: String,
}

/// One test that skipped itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skip {
    /// What it lacked: a backend or tool key (`docker`) or a capability.
    pub(crate) needs: String,
    pub(crate) test: String,
    pub(crate) reason: String,
}

/// The skip log's lines: `needs<TAB>test<TAB>reason`.
pub(crate) fn parse_skips(log: &str) -> Vec<Skip> {
    log.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '\t');
            Some(Skip {
                needs: fields.next()?.to_owned(),
                test: fields.next()?.to_owned(),
                reason: fields.next()?.to_owned(),
            })
        })
        .collect()
}

/// The summary lines (without the heading).
pub(crate) fn lines(
    needs: &[Need],
    facts: &Facts,
    server: &Server,
    skips: &[Skip],
    passed: bool,
) -> Vec<String> {
    let mut by_needs: BTreeMap<&str, Vec<&Skip>> = BTreeMap::new();
    for skip in skips {
        by_needs.entry(skip.needs.as_str()).or_default().push(skip);
    }
    let skipped = |key: &str| -> Option<String> {
        let tests = by_needs.get(key)?;
        Some(format!(
            "{} test(s) skipped ({}), listed below",
            tests.len(),
            tests[0].reason
        ))
    };
    let mut out = vec![row(
        "tests",
        if passed {
            "passed".to_owned()
        } else {
            "FAILED: see the first failure above".to_owned()
        },
    )];
    let found = |tool| facts.found.get(&tool).and_then(|f| f.as_ref().ok());
    let run_server = |backend: &str| server.backend == backend;

    let docker = match (run_server("docker"), found(Tool::Docker)) {
        (true, _) => {
            "used: the run's server is a container (why: see where it was provisioned)".to_owned()
        }
        (false, Some(_)) => "used: the docker backend's self-test and the cleanup tests start \
                             containers"
            .to_owned(),
        (false, None) => {
            let why = facts
                .found
                .get(&Tool::Docker)
                .and_then(|f| f.as_ref().err())
                .map_or("not looked for", String::as_str);
            format!("skipped ({why}); the run's server is {}", server.backend)
        }
    };
    out.push(with_skips(row("docker", docker), skipped("docker")));

    let native = match found(Tool::Postgres) {
        Some(bindir) if run_server("native") => format!(
            "used: {bindir}: the run's server, and the fault, TLS and PgBouncer tests' own servers"
        ),
        Some(bindir) => {
            format!("used: {bindir}: the fault, TLS and PgBouncer tests' own servers")
        }
        None => "skipped: no PostgreSQL server binaries".to_owned(),
    };
    out.push(with_skips(row("native", native), skipped("native")));

    let url = if run_server("url") {
        "used: the run's server is the one SERVIO_TEST_DATABASE_URL names".to_owned()
    } else {
        "used: every test process reaches the run's server as SERVIO_TEST_DATABASE_URL".to_owned()
    };
    out.push(with_skips(row("url", url), skipped("url")));

    for tool in [Tool::PgBouncer, Tool::Openssl] {
        let state = match (needs.iter().find(|n| n.tool == tool), found(tool)) {
            (None, _) => "not needed by the crates tested".to_owned(),
            (Some(need), Some(path)) => format!("used: {path}, by {}", need.for_what),
            (Some(_), None) => "missing".to_owned(),
        };
        out.push(with_skips(row(tool.key(), state), skipped(tool.key())));
    }

    let known = ["docker", "native", "url", "pgbouncer", "openssl"];
    for (key, tests) in &by_needs {
        if !known.contains(key) {
            out.push(row(
                key,
                format!(
                    "{} test(s) skipped ({}), listed below",
                    tests.len(),
                    tests[0].reason
                ),
            ));
        }
    }
    if !skips.is_empty() {
        out.push("skipped tests (each said why; rerun with what it lacked to run it):".to_owned());
        for skip in skips {
            out.push(format!("    {}: {}", skip.test, skip.reason));
        }
    }
    out
}

/// Prints the summary.
pub(crate) fn print(needs: &[Need], facts: &Facts, server: &Server, skips: &[Skip], passed: bool) {
    println!("\n==> summary");
    for line in lines(needs, facts, server, skips, passed) {
        println!("    {line}");
    }
}

fn row(key: &str, state: String) -> String {
    format!("{key:<10} {state}")
}

fn with_skips(line: String, skipped: Option<String>) -> String {
    match skipped {
        Some(skipped) => format!("{line}; {skipped}"),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prereq::{Platform, Privilege, TEST_NEEDS};

    #[test]
    fn each_backend_and_tool_says_used_or_skipped_and_skipped_tests_are_named() {
        let facts = Facts {
            platform: Platform::Debian,
            privilege: Privilege::Root,
            found: [
                (Tool::Postgres, Ok("/usr/lib/postgresql/15/bin".to_owned())),
                (Tool::PgBouncer, Ok("/usr/sbin/pgbouncer".to_owned())),
                (Tool::Openssl, Ok("/usr/bin/openssl".to_owned())),
                (Tool::Docker, Err("no Docker engine answers".to_owned())),
            ]
            .into(),
        };
        let server = Server {
            backend: "native".to_owned(),
            url: "postgres://secret@127.0.0.1/postgres".to_owned(),
        };
        let skips = parse_skips(
            "docker\tpool-testkit backends docker_backend_serves_and_cleans_up\tno Docker engine answers here\n\
             password authentication\tpoolctl check a_wrong_password\tthe server accepts a wrong password\n",
        );
        let lines = lines(&TEST_NEEDS, &facts, &server, &skips, true);
        let text = lines.join("\n");
        let line = |key: &str| {
            lines
                .iter()
                .find(|l| l.starts_with(&format!("{key} ")))
                .unwrap_or_else(|| panic!("no {key} line in:\n{text}"))
                .clone()
        };
        assert!(line("tests").contains("passed"));
        assert!(
            line("docker").contains("skipped (no Docker engine answers)"),
            "{text}"
        );
        assert!(line("docker").contains("1 test(s) skipped"), "{text}");
        assert!(
            line("native")
                .starts_with("native     used: /usr/lib/postgresql/15/bin: the run's server")
        );
        assert!(line("url").contains("used"));
        assert!(line("pgbouncer").contains("used: /usr/sbin/pgbouncer"));
        assert!(line("openssl").contains("used: /usr/bin/openssl"));
        assert!(line("password authentication").contains("1 test(s) skipped"));
        assert!(
            text.contains(
                "    pool-testkit backends docker_backend_serves_and_cleans_up: no Docker"
            )
        );
        assert!(!text.contains("secret"), "the URL is never printed: {text}");
    }
}
