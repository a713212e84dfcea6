//! Ctrl-C on the demo leaves no server, process or directory behind.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `pid` runs (a zombie waiting to be reaped has stopped running).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// The postmasters of the servers the testkit keeps under `base`.
fn postmasters(base: &Path) -> Vec<u32> {
    std::fs::read_dir(base)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|dir| {
            let pid = std::fs::read_to_string(dir.path().join("data/postmaster.pid")).ok()?;
            pid.lines().next()?.trim().parse().ok()
        })
        .collect()
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ctrl_c_mid_run_removes_the_server_and_its_directory() {
    // A temporary directory of its own, so what the demo's server leaves is easy to see;
    // the server's account (postgres, when we are root) must be able to enter it.
    let tmp = tempfile::tempdir().expect("a temporary directory");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = tmp.path().join("servio-pool-testkit");

    let mut demo = Command::new(env!("CARGO_BIN_EXE_pool-demo"))
        .args(["--duration", "10m"])
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the demo starts");
    let stdout = BufReader::new(demo.stdout.take().expect("piped"));
    let mut seen = Vec::new();
    for line in stdout.lines() {
        let line = line.expect("the demo's output");
        let running = line.contains("running workers");
        seen.push(line);
        if running {
            break;
        }
    }
    let servers = postmasters(&base);
    assert_eq!(
        servers.len(),
        1,
        "one server while it runs:\n{}",
        seen.join("\n")
    );
    assert!(servers.iter().all(|pid| alive(*pid)));

    // What Ctrl-C on a terminal sends.
    let sent = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let output = demo.wait_with_output().expect("the demo exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "an interrupted demo says so");
    assert!(stderr.contains("interrupted (Ctrl-C)"), "{stderr}");

    eventually("the server still runs", || {
        servers.iter().all(|pid| !alive(*pid))
    });
    eventually("a state directory is left", || {
        std::fs::read_dir(&base).map_or(true, |mut entries| entries.next().is_none())
    });
}
