//! Nothing outlives a test process that is interrupted (Ctrl-C) or killed: its watchdogs
//! remove servers, containers and directories, and when the watchdogs are killed too, the
//! next run's sweep does.

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use pool_testkit::{Backend, PgBouncer, PoolMode, TestPostgres, TestServer};

const CHILD_ENV: &str = "POOL_TESTKIT_CLEANUP_CHILD";

/// What a child test process started, as it reported it.
struct Held {
    child: Child,
    dirs: Vec<PathBuf>,
    postmasters: Vec<u32>,
    containers: Vec<String>,
}

/// Runs [`child_holds_servers`] in a process of its own and waits until it holds them.
fn spawn_holder() -> anyhow::Result<Held> {
    if !support::docker_available() {
        pool_testkit::skip(
            "docker",
            "its container part only: no Docker engine answers here",
        );
    }
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--ignored", "--exact", "child_holds_servers", "--nocapture"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let mut held = Held {
        child,
        dirs: Vec::new(),
        postmasters: Vec::new(),
        containers: Vec::new(),
    };
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("dir"), Some(dir)) => held.dirs.push(dir.into()),
            (Some("postmaster"), Some(pid)) => held.postmasters.push(pid.parse()?),
            (Some("container"), Some(id)) => held.containers.push(id.to_owned()),
            (Some("ready"), _) => return Ok(held),
            _ => {}
        }
    }
    anyhow::bail!("the child test process exited before it was ready")
}

fn sigkill(pids: &[u32]) {
    support::signal("KILL", pids);
}

/// The watchdogs of `dir`: processes whose command line names it.
fn watchdogs_of(dir: &std::path::Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_string_lossy().parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.starts_with("sh ") && cmdline.contains(&needle)).then_some(pid)
        })
        .collect()
}

async fn assert_all_gone(held: &Held) {
    for pid in &held.postmasters {
        support::eventually("a postmaster", || !support::process_alive(*pid)).await;
    }
    for id in &held.containers {
        support::eventually("a container", || !support::container_exists(id)).await;
    }
    for dir in &held.dirs {
        support::eventually("a state directory", || !dir.exists()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watchdogs_clean_up_after_sigkill() -> anyhow::Result<()> {
    let mut held = spawn_holder()?;
    assert!(!held.dirs.is_empty() && !held.postmasters.is_empty());
    sigkill(&[held.child.id()]);
    held.child.wait()?;
    assert_all_gone(&held).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_leaves_nothing_behind() -> anyhow::Result<()> {
    let mut held = spawn_holder()?;
    assert!(!held.dirs.is_empty() && !held.postmasters.is_empty());
    // What Ctrl-C on a terminal sends to every process of the run.
    support::signal("INT", &[held.child.id()]);
    held.child.wait()?;
    assert_all_gone(&held).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_run_sweeps_what_killed_watchdogs_left() -> anyhow::Result<()> {
    let mut held = spawn_holder()?;
    let mut victims = vec![held.child.id()];
    for dir in &held.dirs {
        victims.extend(watchdogs_of(dir));
    }
    assert!(
        victims.len() > held.dirs.len(),
        "each directory has a watchdog"
    );
    sigkill(&victims);
    held.child.wait()?;
    // Everything is still there: nobody is left to clean up...
    assert!(held.dirs.iter().all(|dir| dir.exists()));
    // ... until the next run sweeps.
    assert!(pool_testkit::sweep_leftovers() >= held.dirs.len());
    assert_all_gone(&held).await;
    Ok(())
}

/// Not a test by itself: the process the two tests above kill.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by the cleanup tests in a child process"]
async fn child_holds_servers() -> anyhow::Result<()> {
    if std::env::var_os(CHILD_ENV).is_none() {
        return Ok(());
    }
    let server = TestServer::start().await?;
    println!("dir {}", server.state_dir().display());
    println!("postmaster {}", server.postmaster_pid()?);
    let bouncer = PgBouncer::start(&server, PoolMode::Session).await?;
    println!("dir {}", bouncer.state_dir().display());
    let container = if support::docker_available() {
        let container = TestPostgres::start(Backend::Docker).await?;
        if let Some(dir) = container.state_dir() {
            println!("dir {}", dir.display());
        }
        println!("container {}", container.container_id().unwrap_or_default());
        Some(container)
    } else {
        None
    };
    println!("ready");
    tokio::time::sleep(std::time::Duration::from_secs(600)).await;
    drop((server, bouncer, container));
    Ok(())
}
