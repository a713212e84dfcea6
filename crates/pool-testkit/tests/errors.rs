//! When no PostgreSQL can be had, the error says what to install or set, and never shows a
//! password.

use std::process::{Command, Stdio};

use pool_testkit::{Backend, TestPostgres};

const CHILD_ENV: &str = "POOL_TESTKIT_ERRORS_CHILD";

#[test]
fn auto_without_any_backend_says_what_to_install_or_set() -> anyhow::Result<()> {
    let output = Command::new(std::env::current_exe()?)
        .args(["--ignored", "--exact", "child_tries_auto", "--nocapture"])
        .env(CHILD_ENV, "1")
        // No engine answers, no binaries, no URL.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("SERVIO_TEST_PG_BINDIR", "/nonexistent")
        .env_remove("SERVIO_TEST_DATABASE_URL")
        .env_remove("SERVIO_TEST_BACKEND")
        .stderr(Stdio::null())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let message = stdout
        .lines()
        .skip_while(|line| !line.starts_with("error:"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        message.contains("no way to get a PostgreSQL server"),
        "{stdout}"
    );
    for advice in [
        "- docker:",
        "- native:",
        "- url: SERVIO_TEST_DATABASE_URL is not set",
        "apt-get install postgresql",
        "start Docker",
        "set SERVIO_TEST_DATABASE_URL=",
    ] {
        assert!(
            message.contains(advice),
            "missing {advice:?} in:\n{message}"
        );
    }
    Ok(())
}

/// Not a test by itself: run by the test above in a process with a crippled environment.
#[tokio::test]
#[ignore = "run by auto_without_any_backend_says_what_to_install_or_set"]
async fn child_tries_auto() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    match TestPostgres::start(Backend::Auto).await {
        Ok(server) => println!("unexpected server: {server:?}"),
        Err(error) => println!("error: {error:#}"),
    }
}

#[tokio::test]
async fn a_url_error_never_shows_the_password() {
    let secret = "s3cret-Pa55word";
    let malformed = format!("postgres://admin:{secret}@[not-a-host/postgres");
    let error = TestPostgres::from_url(&malformed).await.unwrap_err();
    assert!(!format!("{error:#} {error:?}").contains(secret));
    assert!(format!("{error:#}").contains("postgres://user:password@host:port/database"));

    // Nothing listens on port 1: the connect fails, and says where, not with what password.
    let unreachable = format!("postgres://admin:{secret}@127.0.0.1:1/postgres");
    let error = TestPostgres::from_url(&unreachable).await.unwrap_err();
    let shown = format!("{error:#} {error:?}");
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("127.0.0.1:1"), "{shown}");
}
