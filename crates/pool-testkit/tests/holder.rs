//! `servio-test-postgres`, the program that holds `cargo xtask test`'s server: it hands the
//! server over on standard output, and removes it when its input closes or on Ctrl-C.

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

struct Holding {
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
    dir: PathBuf,
    postmaster: u32,
}

fn start_holder() -> anyhow::Result<Holding> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_servio-test-postgres"))
        .args(["--backend", "native"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped");
    let (mut url, mut dir) = (String::new(), PathBuf::new());
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        match line.split_once(' ') {
            Some(("url", value)) => url = value.to_owned(),
            Some(("dir", value)) => dir = value.into(),
            _ if line == "ready" => {
                let postmaster = support::postmaster_pid(&dir).expect("a running server");
                return Ok(Holding {
                    child,
                    stdin,
                    url,
                    dir,
                    postmaster,
                });
            }
            _ => {}
        }
    }
    anyhow::bail!("the holder exited before its server was ready")
}

async fn assert_removed(held: &mut Holding) -> anyhow::Result<()> {
    let status = held.child.wait()?;
    assert!(status.success(), "the holder exits cleanly: {status}");
    support::eventually("the postmaster", || {
        !support::process_alive(held.postmaster)
    })
    .await;
    support::eventually("the state directory", || !held.dir.exists()).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn hands_over_a_working_server_and_removes_it_when_its_input_closes() -> anyhow::Result<()> {
    let mut held = start_holder()?;
    let server = pool_testkit::TestPostgres::from_url(&held.url).await?;
    let db_count: i64 = {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect_with(&server.admin_options("postgres")).await?;
        sqlx::query_scalar("SELECT count(*) FROM pg_database")
            .fetch_one(&mut conn)
            .await?
    };
    assert!(db_count >= 1);
    drop(held.stdin.take());
    assert_removed(&mut held).await
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_removes_the_server() -> anyhow::Result<()> {
    let mut held = start_holder()?;
    support::signal("INT", &[held.child.id()]);
    assert_removed(&mut held).await
}
