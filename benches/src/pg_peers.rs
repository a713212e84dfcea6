//! The PostgreSQL workloads through every pool a PostgreSQL user would pick: ours and sqlx's
//! `PgPool` over sqlx, deadpool-postgres, bb8-postgres and a minimal FIFO pool over
//! tokio-postgres; and pgbench as the server's ceiling.

use std::ops::DerefMut;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::PgConnection;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};

use crate::checkout::Checkout;
use crate::reference_pool::ReferencePool;

/// What each operation of a load does (acquire, the queries, release).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgWorkload {
    /// Prepared `SELECT 1`, one row.
    SelectOne,
    /// Prepared `SELECT g FROM generate_series(1, 100) g`, every row.
    FetchAll,
    /// pgbench's simple-update transaction on the pgbench tables (`-N`): BEGIN, UPDATE an
    /// account, SELECT its balance, INSERT into the history, END.
    SimpleUpdate,
    /// `SELECT pg_sleep(0.002)`: 2 ms of server time per query, more tasks than connections.
    /// The sample is the wait for a connection.
    PoolBound,
}

const SELECT_1: &str = "SELECT 1";
const FETCH_ALL: &str = "SELECT g FROM generate_series(1, 100) g";
const UPDATE: &str = "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2";
const BALANCE: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
const HISTORY: &str = "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) \
                       VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)";
const SLEEP: &str = "SELECT pg_sleep(0.002)";
/// Rows of `pgbench_accounts` at scale 1.
const ACCOUNTS: i32 = 100_000;

/// One transaction's random values, as pgbench draws them: (aid, tid, bid, delta).
fn draw() -> (i32, i32, i32, i32) {
    (
        fastrand::i32(1..=ACCOUNTS),
        fastrand::i32(1..=10),
        1,
        fastrand::i32(-5000..=5000),
    )
}

fn check<T, E: std::fmt::Display>(what: &str, result: Result<T, E>) -> T {
    result.unwrap_or_else(|error| panic!("{what} failed: {error}"))
}

/// One operation over sqlx (ours, `PgPool`); returns when it ended (for [`PgWorkload::PoolBound`],
/// when the connection was acquired).
pub async fn sqlx_operation<P>(pool: P, workload: PgWorkload) -> Instant
where
    P: Checkout,
    for<'a> P::Conn<'a>: DerefMut<Target = PgConnection>,
{
    let mut conn = pool.checkout().await;
    let acquired = Instant::now();
    let c: &mut PgConnection = &mut conn;
    match workload {
        PgWorkload::SelectOne => {
            check("SELECT 1", sqlx::query(SELECT_1).fetch_one(&mut *c).await);
        }
        PgWorkload::FetchAll => {
            let rows = check("fetch_all", sqlx::query(FETCH_ALL).fetch_all(&mut *c).await);
            assert_eq!(rows.len(), 100);
        }
        PgWorkload::SimpleUpdate => {
            let (aid, tid, bid, delta) = draw();
            check("BEGIN", sqlx::raw_sql("BEGIN").execute(&mut *c).await);
            let update = sqlx::query(UPDATE).bind(delta).bind(aid);
            check("UPDATE", update.execute(&mut *c).await);
            let balance = sqlx::query(BALANCE).bind(aid);
            check("SELECT abalance", balance.fetch_one(&mut *c).await);
            let history = sqlx::query(HISTORY)
                .bind(tid)
                .bind(bid)
                .bind(aid)
                .bind(delta);
            check("INSERT", history.execute(&mut *c).await);
            check("END", sqlx::raw_sql("END").execute(&mut *c).await);
        }
        PgWorkload::PoolBound => {
            check("pg_sleep", sqlx::query(SLEEP).execute(&mut *c).await);
            return acquired;
        }
    }
    drop(conn);
    Instant::now()
}

/// The statements of every workload, prepared once on a connection of the [`MinimalPool`].
#[derive(Debug)]
pub struct Prepared {
    select_1: Statement,
    fetch_all: Statement,
    update: Statement,
    balance: Statement,
    history: Statement,
    sleep: Statement,
}

impl Prepared {
    async fn on(client: &Client) -> Result<Prepared, tokio_postgres::Error> {
        Ok(Prepared {
            select_1: client.prepare(SELECT_1).await?,
            fetch_all: client.prepare(FETCH_ALL).await?,
            update: client.prepare(UPDATE).await?,
            balance: client.prepare(BALANCE).await?,
            history: client.prepare(HISTORY).await?,
            sleep: client.prepare(SLEEP).await?,
        })
    }
}

/// Where a tokio-postgres pool's statements come from.
enum Statements<'a> {
    /// Prepared when the connection opened.
    Held(&'a Prepared),
    /// deadpool-postgres's per-connection statement cache.
    Cached(&'a deadpool_postgres::ClientWrapper),
    /// None: bb8-postgres keeps nothing per connection; `query_typed` sends each query with
    /// its parameter types in one round trip, unprepared.
    Typed,
}

async fn tpg_operation(
    client: &Client,
    statements: Statements<'_>,
    workload: PgWorkload,
    acquired: Instant,
) -> Instant {
    let statement = |sql: &'static str, held: fn(&Prepared) -> &Statement| {
        let statements = &statements;
        async move {
            match statements {
                Statements::Held(prepared) => Some(held(prepared).clone()),
                Statements::Cached(wrapper) => {
                    Some(check("prepare_cached", wrapper.prepare_cached(sql).await))
                }
                Statements::Typed => None,
            }
        }
    };
    async fn run(
        client: &Client,
        statement: Option<Statement>,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Vec<tokio_postgres::Row> {
        match statement {
            Some(statement) => {
                let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
                check(sql, client.query(&statement, &values).await)
            }
            None => check(sql, client.query_typed(sql, params).await),
        }
    }
    match workload {
        PgWorkload::SelectOne => {
            let s = statement(SELECT_1, |p| &p.select_1).await;
            assert_eq!(run(client, s, SELECT_1, &[]).await.len(), 1);
        }
        PgWorkload::FetchAll => {
            let s = statement(FETCH_ALL, |p| &p.fetch_all).await;
            assert_eq!(run(client, s, FETCH_ALL, &[]).await.len(), 100);
        }
        PgWorkload::SimpleUpdate => {
            let (aid, tid, bid, delta) = draw();
            check("BEGIN", client.batch_execute("BEGIN").await);
            let s = statement(UPDATE, |p| &p.update).await;
            run(
                client,
                s,
                UPDATE,
                &[(&delta, Type::INT4), (&aid, Type::INT4)],
            )
            .await;
            let s = statement(BALANCE, |p| &p.balance).await;
            run(client, s, BALANCE, &[(&aid, Type::INT4)]).await;
            let s = statement(HISTORY, |p| &p.history).await;
            let params: [(&(dyn ToSql + Sync), Type); 4] = [
                (&tid, Type::INT4),
                (&bid, Type::INT4),
                (&aid, Type::INT4),
                (&delta, Type::INT4),
            ];
            run(client, s, HISTORY, &params).await;
            check("END", client.batch_execute("END").await);
        }
        PgWorkload::PoolBound => {
            let s = statement(SLEEP, |p| &p.sleep).await;
            run(client, s, SLEEP, &[]).await;
            return acquired;
        }
    }
    Instant::now()
}

/// deadpool-postgres with fast recycling (no check on checkout), statements cached.
pub async fn deadpool_operation(pool: deadpool_postgres::Pool, workload: PgWorkload) -> Instant {
    let client = check("deadpool-postgres get()", pool.get().await);
    let acquired = Instant::now();
    let end = tpg_operation(&client, Statements::Cached(&client), workload, acquired).await;
    drop(client);
    released(workload, end)
}

/// bb8-postgres (with or without its checkout test, as built).
pub async fn bb8_operation(pool: Bb8Pg, workload: PgWorkload) -> Instant {
    let client = check("bb8-postgres get()", pool.get().await);
    let acquired = Instant::now();
    let end = tpg_operation(&client, Statements::Typed, workload, acquired).await;
    drop(client);
    released(workload, end)
}

/// The minimal reference pool.
pub async fn minimal_operation(pool: MinimalPool, workload: PgWorkload) -> Instant {
    let conn = pool.get().await;
    let acquired = Instant::now();
    let end = tpg_operation(&conn.0, Statements::Held(&conn.1), workload, acquired).await;
    drop(conn);
    released(workload, end)
}

/// The end of an operation whose connection was just returned: the query's `end` for the
/// pool-bound load (whose sample is the wait), else now, so the span includes the release.
fn released(workload: PgWorkload, end: Instant) -> Instant {
    if workload == PgWorkload::PoolBound {
        end
    } else {
        Instant::now()
    }
}

/// bb8 over tokio-postgres.
pub type Bb8Pg = bb8::Pool<bb8_postgres::PostgresConnectionManager<NoTls>>;

/// tokio-postgres's configuration for `options`' server and database as `user`.
pub fn tpg_config(
    host: &str,
    port: u16,
    database: &str,
    user: &str,
    password: &str,
) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host(host)
        .port(port)
        .dbname(database)
        .user(user)
        .password(password);
    config
}

/// deadpool-postgres: `max` connections, fast recycling.
///
/// # Panics
/// If the pool cannot be built.
pub fn deadpool_pg(config: tokio_postgres::Config, max: usize) -> deadpool_postgres::Pool {
    let manager = deadpool_postgres::Manager::from_config(
        config,
        NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    check(
        "deadpool-postgres build",
        deadpool_postgres::Pool::builder(manager)
            .max_size(max)
            .build(),
    )
}

/// bb8-postgres: `max` connections, `test_on_check_out` as given.
///
/// # Panics
/// If the pool cannot be built.
pub async fn bb8_pg(config: tokio_postgres::Config, max: u32, test_on_check_out: bool) -> Bb8Pg {
    let manager = bb8_postgres::PostgresConnectionManager::new(config, NoTls);
    check(
        "bb8-postgres build",
        bb8::Pool::builder()
            .max_size(max)
            .test_on_check_out(test_on_check_out)
            .build(manager)
            .await,
    )
}

/// The reference pool over tokio-postgres, each connection with its statements prepared.
pub type MinimalPool = ReferencePool<(Client, Prepared)>;

impl MinimalPool {
    /// Opens `max` connections with `config`, preparing the workloads' statements on each.
    ///
    /// # Panics
    /// If a connection cannot be opened.
    pub async fn open(config: &tokio_postgres::Config, max: usize) -> MinimalPool {
        let mut idle = Vec::with_capacity(max);
        for _ in 0..max {
            let (client, connection) = check("tokio-postgres connect", config.connect(NoTls).await);
            tokio::spawn(connection);
            let prepared = check("prepare", Prepared::on(&client).await);
            idle.push((client, prepared));
        }
        ReferencePool::of(idle)
    }
}

/// Where the server's client programs are (`pg_config --bindir`).
fn bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The server's address and the superuser's credentials, for pgbench.
#[derive(Debug, Clone)]
pub struct PgBench {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database.
    pub database: String,
    /// Superuser.
    pub user: String,
    /// Its password.
    pub password: String,
}

impl PgBench {
    fn command(&self) -> Option<Command> {
        let mut command = Command::new(bindir()?.join("pgbench"));
        command.env("PGPASSWORD", &self.password).args([
            "-h",
            &self.host,
            "-p",
            &self.port.to_string(),
            "-U",
            &self.user,
        ]);
        Some(command)
    }

    /// `pgbench -i -s 1`: the tables of the simple-update workload.
    ///
    /// # Panics
    /// If pgbench is missing or fails.
    pub fn init(&self) {
        let mut command = self.command().expect("pgbench (pg_config --bindir)");
        let out = check(
            "pgbench -i",
            command
                .args(["-i", "-q", "-s", "1", &self.database])
                .output(),
        );
        assert!(
            out.status.success(),
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// pgbench's prepared `SELECT 1` from `clients` clients for `duration`: transactions per
    /// second, or `None` when pgbench is missing or fails (said on stderr).
    pub fn select_1_tps(&self, clients: u32, duration: Duration) -> Option<f64> {
        let script =
            std::env::temp_dir().join(format!("servio-bench-select1-{}.sql", std::process::id()));
        std::fs::write(&script, "SELECT 1;\n").ok()?;
        let mut command = self.command()?;
        let out = command
            .args([
                "-n",
                "-M",
                "prepared",
                "-j",
                "2",
                "-c",
                &clients.to_string(),
            ])
            .args(["-T", &duration.as_secs().max(1).to_string(), "-f"])
            .arg(&script)
            .arg(&self.database)
            .output()
            .ok()?;
        let _ = std::fs::remove_file(&script);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let tps = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok());
        if tps.is_none() {
            eprintln!(
                "pgbench gave no tps: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tps
    }
}
