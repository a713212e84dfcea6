//! `PgConnector`: PostgreSQL connections through sqlx's `PgConnection`.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures_core::future::BoxFuture;
use futures_util::FutureExt as _;
use pool_config::{HostPort, PgBouncerMode, PoolSettings, SslMode, TargetSessionAttrs};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection, PgConnection, Row};

use crate::connector::{Connected, ConnectionMeta, Connector, ErrorClass};
use crate::error::PoolError;
use crate::options::PoolOptions;
use crate::pg_credentials::{Credentials, CredentialsProvider, PasswordFile};
use crate::pg_error::classify;
use crate::pg_route::Route;
use crate::pg_session::Session;
use crate::pool::Pool;

/// Runs on every new connection before the pool hands it out (e.g. `SET search_path`).
pub type AfterConnect = Arc<
    dyn for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> + Send + Sync,
>;

/// Runs on a connection before it is handed out (`before_acquire`) or after it comes back
/// (`after_release`): `Ok(true)` keeps it, `Ok(false)` or an error closes it.
pub type ConnectionHook = Arc<
    dyn for<'c> Fn(&'c mut PgConnection, ConnectionMeta) -> BoxFuture<'c, Result<bool, sqlx::Error>>
        + Send
        + Sync,
>;

/// Opens sqlx [`PgConnection`]s for a [`Pool`](crate::Pool).
///
/// The connect options can be replaced while the pool runs ([`set_password`],
/// [`set_connect_options`]): new connections use them, open ones are kept. Its `Debug` never
/// shows the password.
///
/// [`set_password`]: PgConnector::set_password
/// [`set_connect_options`]: PgConnector::set_connect_options
pub struct PgConnector {
    options: RwLock<Arc<PgConnectOptions>>,
    after_connect: Option<AfterConnect>,
    before_acquire: Option<ConnectionHook>,
    after_release: Option<ConnectionHook>,
    track_backend_pid: bool,
    route: Route,
    session: Session,
    credentials: Credentials,
}

impl fmt::Debug for PgConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = self.current();
        f.debug_struct("PgConnector")
            .field("host", &options.get_host())
            .field("port", &options.get_port())
            .field("database", &options.get_database())
            .field("username", &options.get_username())
            .field("application_name", &options.get_application_name())
            .field("check_writable", &self.route.writable)
            .field(
                "servers",
                &self.route.hosts.iter().map(|(_, a)| a).collect::<Vec<_>>(),
            )
            .field("target_session_attrs", &self.route.target)
            .field("load_balance_hosts", &self.route.load_balance)
            .field("pgbouncer", &self.session.pgbouncer)
            .field("statement_timeout", &self.session.statement_timeout)
            .field("session_parameters", &self.session.parameters)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl PgConnector {
    /// A connector using `options` as given.
    pub fn new(options: PgConnectOptions) -> Self {
        PgConnector {
            options: RwLock::new(Arc::new(options)),
            after_connect: None,
            before_acquire: None,
            after_release: None,
            track_backend_pid: true,
            route: Route::new(
                Vec::new(),
                TargetSessionAttrs::Any,
                pool_config::LoadBalanceHosts::Disable,
                Duration::MAX,
            ),
            session: Session::default(),
            credentials: Credentials::default(),
        }
    }

    /// A connector for one pool's settings: host, port, database, user, password, TLS,
    /// `application_name`, `statement_timeout` (see [`statement_timeout`]), `pgbouncer`
    /// (see [`pgbouncer`]), the session settings (see [`session_parameters`]), `password_file`
    /// (re-read when it changes, see [`password_file`]) and `check_writable`.
    ///
    /// [`session_parameters`]: PgConnector::session_parameters
    /// [`password_file`]: PgConnector::password_file
    /// [`statement_timeout`]: PgConnector::statement_timeout
    /// [`pgbouncer`]: PgConnector::pgbouncer
    ///
    /// TLS follows [`PoolSettings::effective_ssl_mode`]: `require` with an `ssl_root_cert`
    /// verifies the certificate chain as `verify-ca`, as libpq does, rather than trusting any
    /// certificate while the root certificate sits unused.
    ///
    /// Several hosts (`host = "db-a,db-b"`) are tried as libpq tries them: in order, or
    /// shuffled for every connection with `load_balance_hosts = random`; each try bounded by
    /// `connect_timeout` (libpq's per-host timeout: one connect may take `connect_timeout`
    /// per host, and the pool bounds it by that product); a server that does not fit
    /// `target_session_attrs` is skipped. Host and port lists that do not pair up (which
    /// validation refuses) leave the first host alone.
    pub fn from_settings(settings: &PoolSettings) -> Self {
        let mut connector = PgConnector::new(Self::connect_options_from(settings))
            .statement_timeout(settings.statement_timeout)
            .pgbouncer(settings.pgbouncer)
            .session_parameters(settings.session_parameters());
        if let Some(path) = &settings.password_file {
            connector = connector.password_file(path);
        }
        connector.route = Route::new(
            settings.hosts().unwrap_or_default(),
            settings.target_session_attrs,
            settings.load_balance_hosts,
            settings.connect_timeout,
        );
        connector.route.writable = settings.check_writable;
        connector
    }

    /// The sqlx connect options for one pool's settings (see [`from_settings`]), without
    /// what the connector adds per connect (`statement_timeout`, session parameters, a
    /// password from a file or provider).
    ///
    /// They hold the password, and their `Debug` prints it: never log them.
    ///
    /// [`from_settings`]: PgConnector::from_settings
    pub fn connect_options_from(settings: &PoolSettings) -> PgConnectOptions {
        let first = settings.hosts().ok().and_then(|h| h.into_iter().next());
        let (host, port) = first.map_or_else(
            || (settings.host.clone(), settings.port.for_host(0)),
            |h| (h.host, h.port),
        );
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&host)
            .port(port)
            .database(&settings.database)
            .username(&settings.username)
            .password(settings.password.expose())
            .application_name(&settings.application_name)
            .ssl_mode(match settings.effective_ssl_mode() {
                SslMode::Disable => PgSslMode::Disable,
                SslMode::Prefer => PgSslMode::Prefer,
                SslMode::Require => PgSslMode::Require,
                SslMode::VerifyCa => PgSslMode::VerifyCa,
                SslMode::VerifyFull => PgSslMode::VerifyFull,
            });
        if let Some(cert) = &settings.ssl_root_cert {
            options = options.ssl_root_cert(cert);
        }
        match settings.pgbouncer {
            Some(mode) => behind_pgbouncer(options, mode),
            None => options,
        }
    }

    /// `statement_timeout` for every new connection: a startup option on a direct server
    /// (no round trip); behind PgBouncer in session mode, which refuses startup options, set
    /// after connect (one round trip); behind transaction mode it cannot apply (set it on
    /// the role instead). Default: none (the server's).
    pub fn statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.session.statement_timeout = timeout;
        self
    }

    /// The server is reached through PgBouncer in this mode: no startup options (PgBouncer
    /// refuses them; `statement_timeout` and session parameters are set after connect in
    /// session mode), and in transaction mode no statement cache and no backend pid to
    /// cancel. Adjusts the current connect options; [`set_connect_options`] replaces them as
    /// given. Default: `None` (a direct server).
    ///
    /// [`set_connect_options`]: PgConnector::set_connect_options
    pub fn pgbouncer(mut self, mode: Option<PgBouncerMode>) -> Self {
        self.session.pgbouncer = mode;
        // In transaction mode the server process changes between transactions: no pid to cancel.
        self.track_backend_pid = mode != Some(PgBouncerMode::Transaction);
        if let Some(mode) = mode {
            let options = self
                .options
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            *options = Arc::new(behind_pgbouncer((**options).clone(), mode));
        }
        self
    }

    /// Sets server parameter `name` to `value` on every new connection (`search_path`,
    /// `lock_timeout`, `idle_in_transaction_session_timeout`, `work_mem`, …): as a startup
    /// option on a direct server (no round trip; `TimeZone` and `extra_float_digits`, which
    /// the driver sends itself, in one round trip after connect), set after connect behind
    /// PgBouncer in session mode, refused behind transaction mode. `DateStyle` and
    /// `client_encoding` are refused (the driver depends on them). A refused parameter
    /// fails [`check`](PgConnector::check) and every connect with the reason.
    pub fn session_parameter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.session.parameters.push((name.into(), value.into()));
        self
    }

    /// [`session_parameter`](PgConnector::session_parameter) for each `(name, value)`.
    pub fn session_parameters<I>(mut self, parameters: I) -> Self
    where
        I: IntoIterator<Item = (String, String)>,
    {
        self.session.parameters.extend(parameters);
        self
    }

    /// Reads the password from `path` at every connect, again only when the file changed
    /// (its modification time, length or inode; one `stat` per connect otherwise), less one
    /// trailing newline: a Kubernetes secret or Vault agent rotation reaches new connections
    /// without a restart. An unreadable or empty file fails the connect with a
    /// [`CredentialsError`](crate::CredentialsError) naming the path, never the contents. Replaces the options'
    /// password and any [`credentials`](PgConnector::credentials) provider.
    pub fn password_file(mut self, path: impl AsRef<Path>) -> Self {
        self.credentials = Credentials::File(Arc::new(PasswordFile::new(path.as_ref())));
        self
    }

    /// Calls `provider` on every connect for the password (a short-lived token, e.g. cloud
    /// IAM database authentication), bounded by the connect timeout. Its error, or no
    /// answer in time, fails that connect with a [`CredentialsError`](crate::CredentialsError), reported at once as a
    /// refused login. Replaces the options' password and any
    /// [`password_file`](PgConnector::password_file).
    ///
    /// ```
    /// # use pool_core::PgConnector;
    /// # use pool_config::Secret;
    /// # fn demo(connector: PgConnector) -> PgConnector {
    /// connector.credentials(|| Box::pin(async { Ok(Secret::new(fetch_token()?)) }))
    /// # }
    /// # fn fetch_token() -> Result<String, std::io::Error> { Ok(String::new()) }
    /// ```
    pub fn credentials<F>(mut self, provider: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<pool_config::Secret, crate::ProviderError>>
            + Send
            + Sync
            + 'static,
    {
        let provider: CredentialsProvider = Arc::new(provider);
        self.credentials = Credentials::Provider(provider);
        self
    }

    /// Whether the session parameters can apply (see
    /// [`session_parameter`](PgConnector::session_parameter)).
    ///
    /// # Errors
    /// [`PoolError::InvalidOption`] for the `session` setting, naming the parameter, its
    /// value and why.
    pub fn check(&self) -> Result<(), PoolError> {
        match self.session.refusal() {
            Some(message) => Err(PoolError::InvalidOption {
                setting: "session",
                message,
            }),
            None => Ok(()),
        }
    }

    /// Runs `hook` on every new connection before it is handed out; an error fails that
    /// connect.
    pub fn after_connect<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>>
            + Send
            + Sync
            + 'static,
    {
        self.after_connect = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` on every connection about to be handed out, after any validation, as
    /// sqlx's `before_acquire`: `Ok(false)` or an error closes it and the acquire goes on
    /// with another, all within the caller's `acquire_timeout`.
    ///
    /// Cost: whatever the hook awaits is added to every acquire (a round trip each, if it
    /// queries); without a hook the acquire path checks one field. For the usual job,
    /// checking a connection idle for a while, `validate_after_idle` is cheaper.
    pub fn before_acquire<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(
                &'c mut PgConnection,
                ConnectionMeta,
            ) -> BoxFuture<'c, Result<bool, sqlx::Error>>
            + Send
            + Sync
            + 'static,
    {
        self.before_acquire = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` on every connection that comes back, as sqlx's `after_release`:
    /// `Ok(false)` or an error closes it instead of returning it to the pool.
    ///
    /// Cost: it runs in the background, after any cleanup and within `cleanup_timeout`;
    /// the connection serves no one until it ends, so a slow hook lowers the pool's
    /// capacity, never a caller's latency. Without a hook the release path checks one field.
    pub fn after_release<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(
                &'c mut PgConnection,
                ConnectionMeta,
            ) -> BoxFuture<'c, Result<bool, sqlx::Error>>
            + Send
            + Sync
            + 'static,
    {
        self.after_release = Some(Arc::new(hook));
        self
    }

    /// Refuses read-only servers: every new connection is checked on connect (one round
    /// trip), and a read-only server (a standby, or `default_transaction_read_only = on`)
    /// fails the connect, or with several hosts is skipped as `target_session_attrs =
    /// read-write` skips it; validation of an idle connection checks it again (SQLSTATE 25006
    /// otherwise), so connections to a server that turned read-only are retired. Default: off.
    pub fn check_writable(mut self, on: bool) -> Self {
        self.route.writable = on;
        self
    }

    /// How long a `prefer-standby` connection that fell back to a primary (no standby
    /// answered) lives before it is retired, so the pool returns to a standby once one
    /// answers again. Default: 30 s.
    pub fn fallback_lifetime(mut self, lifetime: Duration) -> Self {
        self.route.fallback_lifetime = lifetime;
        self
    }

    /// The servers this connector chooses among, in configuration order; empty with one
    /// host (then the options name it).
    pub fn hosts(&self) -> Vec<HostPort> {
        self.route.hosts.iter().map(|(h, _)| h.clone()).collect()
    }

    /// The options new connections use, for inspection (`get_host()`, `get_database()`, …),
    /// with the password replaced by `***`: sqlx's `Debug` of the options prints the
    /// password, and these may end up in a log. To open a connection with the real options,
    /// use the pool, or [`connect_as`](Self::connect_as) for one outside it.
    pub fn connect_options(&self) -> PgConnectOptions {
        (*self.current())
            .clone()
            .password(pool_config::Secret::MASK)
    }

    /// The options new connections use, password included.
    pub(crate) fn current(&self) -> Arc<PgConnectOptions> {
        Arc::clone(&self.options.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Opens a connection outside the pool with the options new pool connections use (a
    /// rotated password applies), under `application_name`: for a health probe of the
    /// server that must not wait in the acquire queue. With several hosts, the server is
    /// chosen as for the pool's connections. The `after_connect` hook does not run
    /// and the pool does not count it.
    ///
    /// # Errors
    /// sqlx's error when the connection cannot be opened.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future drops the half-open connection.
    pub async fn connect_as(&self, application_name: &str) -> Result<PgConnection, sqlx::Error> {
        let options = (*self.login_options().await?)
            .clone()
            .application_name(application_name);
        if self.route.is_trivial() {
            return login(async move { options.connect().await }).await;
        }
        let route = self.route.clone();
        Ok(login(async move { route.connect(&options).await }).await?.0)
    }

    /// Replaces the options new connections use; open connections are kept. With several
    /// hosts, each try takes its host and port from the list, the rest from `options`.
    pub fn set_connect_options(&self, options: PgConnectOptions) {
        *self.options.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(options);
    }

    /// Rotates the password new connections use (e.g. re-read from `DB_PASSWORD_FILE`);
    /// open connections are kept. A [`password_file`](PgConnector::password_file) or
    /// [`credentials`](PgConnector::credentials) provider takes precedence over it.
    pub fn set_password(&self, password: &str) {
        let mut guard = self.options.write().unwrap_or_else(PoisonError::into_inner);
        *guard = Arc::new((**guard).clone().password(password));
    }

    /// The options for the next login: the current ones with the password from the file
    /// or provider and the session's startup options (cloned only when they add anything).
    async fn login_options(&self) -> Result<Arc<PgConnectOptions>, sqlx::Error> {
        if let Some(refusal) = self.session.refusal() {
            return Err(sqlx::Error::Configuration(refusal.into()));
        }
        let bound = self.route.per_host.saturating_sub(self.route.margin());
        let password = (self.credentials.password(bound).await)
            .map_err(|e| sqlx::Error::Configuration(Box::new(e)))?;
        let current = self.current();
        let startup = self.session.startup(&current);
        if startup.is_none() && password.is_none() {
            return Ok(current);
        }
        let options = startup.unwrap_or_else(|| (*current).clone());
        Ok(Arc::new(match password {
            Some(password) => options.password(password.expose()),
            None => options,
        }))
    }
}

/// `options` for a server behind PgBouncer in `mode`.
fn behind_pgbouncer(options: PgConnectOptions, mode: PgBouncerMode) -> PgConnectOptions {
    // PgBouncer rejects unknown startup parameters.
    let options = options.extra_float_digits(None);
    // In transaction mode a cached statement may live on another server connection.
    // Session mode keeps the cache: with it off, sqlx still names every statement and
    // never closes it, so each query would leave one behind on the server.
    match mode {
        PgBouncerMode::Transaction => options.statement_cache_capacity(0),
        PgBouncerMode::Session => options,
    }
}

/// Runs a login off the runtime's workers: its SCRAM key derivation (4096 rounds of
/// HMAC-SHA-256, milliseconds of CPU in one poll) would otherwise stall every task queued on
/// the worker, and a pool whose connections retire together runs several at once.
async fn login<T: Send + 'static>(
    login: impl Future<Output = Result<T, sqlx::Error>> + Send + 'static,
) -> Result<T, sqlx::Error> {
    crate::inner::off_worker::off_workers(login)
        .await
        .unwrap_or_else(|error| Err(sqlx::Error::Io(error)))
}

impl Connector for PgConnector {
    type Connection = PgConnection;
    type Error = sqlx::Error;

    async fn connect(&self) -> Result<Connected<PgConnection>, sqlx::Error> {
        let options = self.login_options().await?;
        let (mut conn, server, fallback) = if self.route.is_trivial() {
            (
                login(async move { options.connect().await }).await?,
                None,
                false,
            )
        } else {
            let route = self.route.clone();
            login(async move { route.connect(&options).await }).await?
        };
        self.session.apply(&mut conn).await?;
        if let Some(hook) = &self.after_connect {
            hook(&mut conn).await?;
        }
        // The backend pid is asked later, and only if a query timeout needs it: sqlx keeps
        // the one the server sent at startup private, and a round trip here would slow
        // every connect.
        let mut connected = Connected::new(conn);
        if let Some(server) = server {
            connected = connected.with_server(server);
        }
        if fallback {
            connected = connected.with_lifetime(self.route.fallback_lifetime);
        }
        Ok(connected)
    }

    fn connect_attempts(&self) -> u32 {
        self.route.attempts()
    }

    async fn backend_pid(&self, conn: &mut PgConnection) -> Result<Option<i32>, sqlx::Error> {
        if !self.track_backend_pid {
            return Ok(None);
        }
        let row = sqlx::raw_sql("SELECT pg_backend_pid()")
            .fetch_one(conn)
            .await?;
        Ok(Some(row.try_get::<i32, _>(0)?))
    }

    async fn validate(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if let Some(check) = self.route.validation() {
            sqlx::raw_sql(check).execute(conn).await.map(drop)
        } else {
            conn.ping().await
        }
    }

    fn classify(&self, error: &sqlx::Error) -> ErrorClass {
        classify(error)
    }

    fn has_before_acquire(&self) -> bool {
        self.before_acquire.is_some()
    }

    async fn before_acquire(
        &self,
        conn: &mut PgConnection,
        meta: ConnectionMeta,
    ) -> Result<bool, sqlx::Error> {
        match &self.before_acquire {
            Some(hook) => hook(conn, meta).await,
            None => Ok(true),
        }
    }

    fn has_after_release(&self) -> bool {
        self.after_release.is_some()
    }

    async fn after_release(
        &self,
        conn: &mut PgConnection,
        meta: ConnectionMeta,
    ) -> Result<bool, sqlx::Error> {
        match &self.after_release {
            Some(hook) => hook(conn, meta).await,
            None => Ok(true),
        }
    }

    fn needs_cleanup(&self, conn: &mut PgConnection) -> bool {
        if conn.is_in_transaction() {
            return true;
        }
        // Queries run on `&mut *conn` bypass the pool, so their errors are never seen here.
        // A query that failed on a dead server, or was dropped midway, leaves sqlx expecting
        // the server's ReadyForQuery (or holding unsent bytes). `flush()` finishes on its first
        // poll, without touching the socket, only when nothing is pending; anything else goes
        // through `cleanup`, which drains it within `cleanup_timeout` or discards the
        // connection. One poll on a waker that does nothing is all this costs when clean.
        !matches!(Connection::flush(conn).now_or_never(), Some(Ok(())))
    }

    async fn cleanup(&self, conn: &mut PgConnection, reset: bool) -> Result<(), sqlx::Error> {
        // Sends the ROLLBACK sqlx queued when a `Transaction` was dropped, and waits for it.
        Connection::flush(conn).await?;
        if conn.is_in_transaction() {
            // A leaked `Transaction`: sqlx's depth can no longer be trusted.
            return Err(sqlx::Error::Protocol(
                "connection returned inside a transaction that was never finished".into(),
            ));
        }
        if reset {
            // DISCARD ALL deallocates prepared statements, so sqlx's cache must go first.
            conn.clear_cached_statements().await?;
            sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
            sqlx::raw_sql("DISCARD ALL").execute(&mut *conn).await?;
            // What was set after connect is gone with it; startup options are not.
            self.session.apply(conn).await?;
        }
        Ok(())
    }

    async fn close(&self, conn: PgConnection) {
        let _ = conn.close().await;
    }

    async fn cancel(&self, backend_pid: i32) {
        self.cancel_on(None, backend_pid).await;
    }

    async fn cancel_on(&self, server: Option<usize>, backend_pid: i32) {
        let cancelled = async {
            let options = self.login_options().await?;
            let mut conn = self
                .route
                .options_for(&options, server.unwrap_or(0))
                .connect()
                .await?;
            let result = sqlx::query("SELECT pg_cancel_backend($1)")
                .bind(backend_pid)
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
            result.map(drop)
        };
        match cancelled.await {
            Ok(()) => tracing::debug!(backend_pid, "server-side query cancelled"),
            Err(error) => {
                tracing::warn!(backend_pid, %error, "could not cancel the server-side query")
            }
        }
    }
}

impl Pool<PgConnector> {
    /// Builds a PostgreSQL pool named `name` from its settings (see
    /// [`PoolOptions::from_settings`] and [`PgConnector::from_settings`]). Connections open
    /// in the background; nothing waits for the server here.
    ///
    /// # Errors
    /// [`PoolError::InvalidOption`] for contradictory settings, naming the setting.
    pub fn from_settings(name: &str, settings: &PoolSettings) -> Result<Self, PoolError> {
        if let Err(reason) = settings.hosts() {
            return Err(PoolError::InvalidOption {
                setting: "host",
                message: reason,
            });
        }
        let connector = PgConnector::from_settings(settings);
        connector.check()?;
        PoolOptions::from_settings(settings)
            .name(name)
            .build(connector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pool_config::{Profile, Secret};

    #[test]
    fn debug_never_shows_the_password() {
        let mut settings = PoolSettings::for_profile(Profile::Development);
        settings.password = Secret::new("hunter2-secret");
        let connector = PgConnector::from_settings(&settings);
        connector.set_password("rotated-secret");
        let shown = format!("{connector:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("rotated"),
            "{shown}"
        );
        assert!(shown.contains("servio-pool"));
    }

    #[test]
    fn the_options_handed_out_never_show_the_password() {
        let mut settings = PoolSettings::for_profile(Profile::Development);
        settings.password = Secret::new("hunter2-secret");
        let connector = PgConnector::from_settings(&settings);
        let shown = format!("{:?}", connector.connect_options());
        assert!(!shown.contains("hunter2"), "{shown}");
        connector.set_password("rotated-secret");
        let shown = format!("{:?} {:#?}", connector.connect_options(), connector);
        assert!(!shown.contains("rotated"), "{shown}");
        assert_eq!(connector.connect_options().get_username(), "postgres");
    }

    #[test]
    fn require_with_a_root_certificate_verifies_as_libpq_does() {
        let mut settings = PoolSettings::for_profile(Profile::Development);
        settings.ssl_mode = SslMode::Require;
        let mode = |s: &PoolSettings| PgConnector::connect_options_from(s).get_ssl_mode();
        assert!(matches!(mode(&settings), PgSslMode::Require));
        settings.ssl_root_cert = Some("/etc/servio/root.crt".into());
        assert!(matches!(mode(&settings), PgSslMode::VerifyCa));
        settings.ssl_mode = SslMode::VerifyFull;
        assert!(matches!(mode(&settings), PgSslMode::VerifyFull));
    }

    #[tokio::test]
    async fn statement_timeout_is_a_startup_option_except_behind_pgbouncer() {
        let mut settings = PoolSettings::for_profile(Profile::Development);
        let options = PgConnector::from_settings(&settings).login_options().await;
        assert_eq!(
            options.unwrap().get_options(),
            Some("-c statement_timeout=30000ms")
        );
        for mode in [PgBouncerMode::Session, PgBouncerMode::Transaction] {
            settings.pgbouncer = Some(mode);
            let options = PgConnector::from_settings(&settings).login_options().await;
            assert_eq!(options.unwrap().get_options(), None);
        }
    }

    #[tokio::test]
    async fn refused_session_parameters_fail_the_check_and_every_connect() {
        let settings = PoolSettings::for_profile(Profile::Development);
        let connector = PgConnector::from_settings(&settings)
            .session_parameter("lock_timeout", "5s")
            .pgbouncer(Some(PgBouncerMode::Transaction));
        let error = connector.check().unwrap_err();
        assert!(
            matches!(
                error,
                PoolError::InvalidOption {
                    setting: "session",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("transaction mode"), "{error}");
        let error = connector.connect().await.unwrap_err();
        assert_eq!(classify(&error), ErrorClass::Fatal, "{error}");
        assert!(error.to_string().contains("lock_timeout"), "{error}");
    }

    #[tokio::test]
    async fn several_hosts_pair_with_their_ports_or_the_pool_is_refused() {
        let mut settings = PoolSettings::for_profile(Profile::Development);
        settings.host = "db-a,db-b".to_owned();
        settings.port = "5432,5433".parse().unwrap();
        let connector = PgConnector::from_settings(&settings);
        let hosts: Vec<String> = connector.hosts().iter().map(|h| h.to_string()).collect();
        assert_eq!(hosts, ["db-a:5432", "db-b:5433"]);
        let options = connector.connect_options();
        assert_eq!((options.get_host(), options.get_port()), ("db-a", 5432));
        assert_eq!(connector.connect_attempts(), 2);

        settings.port = "5432,5433,5434".parse().unwrap();
        let error = Pool::from_settings("default", &settings).unwrap_err();
        assert!(
            matches!(
                error,
                PoolError::InvalidOption {
                    setting: "host",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("2 hosts but 3 ports"), "{error}");
    }
}
