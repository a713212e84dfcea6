//! HTTP endpoints for orchestrator probes (feature `http`): `/health`, `/health/live` and
//! `/health/ready`, answering `application/health+json` with 200 for pass and warn and 503
//! for fail.

use std::io;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::health_checker::HealthChecker;
use crate::report::{HEALTH_JSON, HealthReport, Probe};

/// A router serving `checker`'s reports:
///
/// | path | report | database touched |
/// |---|---|---|
/// | `/health` | [`HealthChecker::report`] (pool stats, server facts) | yes, cached |
/// | `/health/live` | [`HealthChecker::live`] | never |
/// | `/health/ready` | [`HealthChecker::ready`] | yes, cached |
///
/// Each answers 200 for pass and warn, 503 for fail, with `Content-Type:
/// application/health+json` and `Cache-Control: no-store`. Merge it into your application's
/// router, or serve it on its own port with [`serve`].
pub fn router<S>(checker: HealthChecker) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/health", get(full))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .with_state(checker)
}

/// Serves [`router`] on `listener` until the task is dropped or the listener fails.
///
/// ```no_run
/// # async fn f(checker: pool_health::HealthChecker) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8081").await?;
/// tokio::spawn(pool_health::http::serve(listener, checker));
/// # Ok(()) }
/// ```
///
/// # Errors
/// An I/O error from the listener.
///
/// # Cancel safety
/// Dropping the future stops serving; requests in flight are dropped.
pub async fn serve(listener: tokio::net::TcpListener, checker: HealthChecker) -> io::Result<()> {
    axum::serve(listener, router::<()>(checker)).await
}

async fn full(State(checker): State<HealthChecker>) -> Response {
    respond(&checker.check(Probe::Full).await)
}

async fn live(State(checker): State<HealthChecker>) -> Response {
    respond(&checker.live())
}

async fn ready(State(checker): State<HealthChecker>) -> Response {
    respond(&checker.check(Probe::Ready).await)
}

/// The HTTP response for `report`.
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
