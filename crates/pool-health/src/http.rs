//! HTTP endpoints for orchestrator probes (feature `http`), answering
//! `application/health+json` with 200 for pass and warn and 503 for fail.
//!
//! Two routers, for two audiences:
//!
//! - [`router`]: `/health/live` and `/health/ready` for orchestrators and load balancers,
//!   which anyone who reaches the port may call. They say pass, warn or fail, and per check a
//!   fixed [`Category`](crate::Category), nothing else ([`HealthReport::public`]).
//! - [`operator_router`]: `/health`, the full report (server version and limits, pool
//!   statistics, driver messages with user and database names), for operators only. Mount it
//!   deliberately, behind your own authentication or on an internal port.
//!
//! [`serve`] runs a router on a listener with a header-read timeout, a request timeout and
//! a connection cap ([`ServeOptions`]), so slow clients cannot hold sockets (and the file
//! descriptors the pool's connections need) without limit. An application that merges these
//! routers into its own server must set such limits there.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;

use crate::health_checker::HealthChecker;
use crate::report::{HEALTH_JSON, HealthReport, Probe};

/// The public probes of `checker`:
///
/// | path | report | database touched |
/// |---|---|---|
/// | `/health/live` | [`HealthChecker::live`], public view | never |
/// | `/health/ready` | [`HealthChecker::ready`], public view | yes, cached |
///
/// Each answers 200 for pass and warn, 503 for fail, with `Content-Type:
/// application/health+json` and `Cache-Control: no-store`; the body holds statuses and
/// categories only ([`HealthReport::public`]). Serve it with [`serve`], or merge it into your
/// application's router (then set header and request timeouts on your server).
pub fn router<S>(checker: HealthChecker) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .with_state(checker)
}

/// The operator endpoint of `checker`: `/health`, the full report
/// ([`HealthChecker::report`]: pool statistics, server facts, driver messages). It tells an
/// attacker the server version, its limits, and user and database names: mount it only where
/// operators alone reach it (an internal port, or behind your authentication).
///
/// ```no_run
/// # async fn f(checker: pool_health::HealthChecker) -> std::io::Result<()> {
/// use pool_health::http::{ServeOptions, operator_router, serve_router};
/// // Probes on the public port, details on a port only the cluster network reaches.
/// let public = tokio::net::TcpListener::bind("0.0.0.0:8081").await?;
/// tokio::spawn(pool_health::http::serve(public, checker.clone()));
/// let internal = tokio::net::TcpListener::bind("10.0.0.5:9090").await?;
/// tokio::spawn(serve_router(internal, operator_router(checker), ServeOptions::default()));
/// # Ok(()) }
/// ```
pub fn operator_router<S>(checker: HealthChecker) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/health", get(full))
        .with_state(checker)
}

/// Limits of [`serve`] and [`serve_router`].
///
/// Build with struct update syntax (`..ServeOptions::default()`), so fields added later keep
/// your code compiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// A client must send its whole request head (request line and headers) within this,
    /// or the connection is closed.
    ///
    /// Default: 5 s: a probe sends its few bytes at once.
    pub header_read_timeout: Duration,
    /// Bound on handling one request; past it the answer is 503 with a fail report.
    ///
    /// Default: 10 s, well above a check's own deadline (2 s).
    pub request_timeout: Duration,
    /// Connections served at once; more are closed as soon as they are accepted.
    ///
    /// Default: 64: orchestrators probe one at a time.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_connections: 64,
        }
    }
}

/// Serves the public [`router`] on `listener` with the default [`ServeOptions`] until the
/// task is dropped.
///
/// ```no_run
/// # async fn f(checker: pool_health::HealthChecker) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8081").await?;
/// tokio::spawn(pool_health::http::serve(listener, checker));
/// # Ok(()) }
/// ```
///
/// # Errors
/// Never returns while the listener works; accept errors (such as running out of file
/// descriptors) are logged and retried after a pause.
///
/// # Cancel safety
/// Dropping the future stops accepting; connections already accepted finish on their own
/// tasks, within the header-read and request timeouts.
pub async fn serve(listener: tokio::net::TcpListener, checker: HealthChecker) -> io::Result<()> {
    serve_router(listener, router::<()>(checker), ServeOptions::default()).await
}

/// Serves `app` (for example [`router`] merged with [`operator_router`]) on `listener`
/// with `options`' limits: HTTP/1.1, one request per connection (probes open a connection
/// each time), a header-read timeout, a request timeout and a connection cap.
///
/// # Errors
/// As [`serve`].
///
/// # Cancel safety
/// As [`serve`].
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    app: Router,
    options: ServeOptions,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(options.max_connections));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, typically: pause rather than spin, and go on.
                tracing::warn!(%error, "health endpoint: accept failed; retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Over the cap: close at once rather than hold a descriptor for a slow client.
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let request_timeout = options.request_timeout;
        let bounded = hyper::service::service_fn(move |request| {
            let answer = hyper::service::Service::call(&service, request);
            async move {
                match tokio::time::timeout(request_timeout, answer).await {
                    Ok(answer) => answer,
                    Err(_) => Ok(timed_out()),
                }
            }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout)
            .keep_alive(false);
        let connection = http.serve_connection(TokioIo::new(stream), bounded);
        // The whole connection is bounded too: a client that reads its answer slowly cannot
        // hold the slot past both timeouts.
        let lifetime = options.header_read_timeout + options.request_timeout;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(lifetime, connection).await;
            drop(slot);
        });
    }
}

fn timed_out() -> Response {
    let body = serde_json::json!({
        "status": "fail",
        "description": "servio-pool health",
        "output": "timeout",
    });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(HEALTH_JSON)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn full(State(checker): State<HealthChecker>) -> Response {
    respond(&checker.check(Probe::Full).await)
}

async fn live(State(checker): State<HealthChecker>) -> Response {
    respond(&checker.live().public())
}

async fn ready(State(checker): State<HealthChecker>) -> Response {
    respond(&checker.check(Probe::Ready).await.public())
}

/// The HTTP response for `report`, as it is: pass [`HealthReport::public`] for a public
/// endpoint.
pub fn respond(report: &HealthReport) -> Response {
    let code = StatusCode::from_u16(report.status().http_code())
        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let body = serde_json::to_vec(report).unwrap_or_default();
    (
        code,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(HEALTH_JSON)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}
