//! The daemon's HTTP side door: `GET /healthz` (liveness: JSON, 200 while ok or
//! degraded, 503 when unhealthy), `GET /readyz` (readiness: the same JSON, 200 only when
//! ok) and `GET /metrics` (Prometheus/OpenMetrics text), over HTTP/1.1 with a bounded number of connections
//! and idle ones closed ([`MAX_CONNECTIONS`], [`IDLE_TIMEOUT`]): many clients that
//! connect and send nothing cannot use up the process's file descriptors nor keep a
//! probe from being answered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use hyper::body::Incoming;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use tracing::{instrument, warn};

use super::metrics::Metrics;

/// How a check, or the process as a whole, stands. `/healthz` (liveness) answers 503
/// only for [`HealthState::Unhealthy`]; `/readyz` (readiness) answers 200 only for
/// [`HealthState::Ok`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HealthState {
    Ok,
    /// Working, but not all of it: some of what it was given is left out (a job file
    /// that does not load). Alive, not ready.
    Degraded,
    Unhealthy,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Ok => "ok",
            HealthState::Degraded => "degraded",
            HealthState::Unhealthy => "unhealthy",
        }
    }
}

/// The outcome of all health checks: the worst of their states.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthReport {
    pub checks: Vec<HealthCheck>,
}

impl HealthReport {
    pub fn state(&self) -> HealthState {
        self.checks
            .iter()
            .map(|c| c.state)
            .max()
            .unwrap_or(HealthState::Ok)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HealthCheck {
    pub name: String,
    pub state: HealthState,
    pub detail: String,
    /// More fields of the check's JSON object (`broken`: which job files and why).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl HealthCheck {
    /// A check that passes (`ok`) or makes the process unhealthy.
    pub fn new(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> HealthCheck {
        HealthCheck {
            name: name.into(),
            state: if ok {
                HealthState::Ok
            } else {
                HealthState::Unhealthy
            },
            detail: detail.into(),
            extra: serde_json::Map::new(),
        }
    }
}

/// Runs the health checks (database, scheduler, …) on each `/healthz` and `/readyz`
/// request.
pub type HealthFn = Arc<dyn Fn() -> BoxFuture<'static, HealthReport> + Send + Sync>;
/// Brings pull-style gauges (queue depth, budgets) up to date before a scrape.
pub type RefreshFn = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// How long a health check or a metrics refresh may take before the answer goes out
/// without it.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The content type prometheus-client's text encoder produces.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: HealthFn,
    refresh: RefreshFn,
}

/// At most this many connections to the server are open at once. A health probe and
/// a scraper or two need a handful; each connection holds one of the process's file
/// descriptors, which its database pool and API connections need too.
pub const MAX_CONNECTIONS: usize = 64;

/// A connection is closed once it has waited this long for a request's headers: since
/// it opened, or since its last answer (an idle keep-alive). Probes and scrapers send
/// theirs at once; one that sends nothing only holds a descriptor.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long accepting pauses after it failed (no descriptor left, say): trying again
/// at once would spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The server's bounds on connections; [`serve`] uses [`MAX_CONNECTIONS`] and
/// [`IDLE_TIMEOUT`].
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: MAX_CONNECTIONS,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// Serves on `listener` until `shutdown` is cancelled, within the default [`Limits`].
/// Returns the server task.
pub fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    health: HealthFn,
    refresh: RefreshFn,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    serve_within(
        listener,
        metrics,
        health,
        refresh,
        shutdown,
        Limits::default(),
    )
}

/// [`serve`] within `limits`: a connection that sends no request's headers within
/// `idle_timeout` is closed, and at most `max_connections` are open; one more closes
/// the oldest connection that waits for a request (a fresh probe is answered however
/// many idle connections there are), or, when every open connection has a request in
/// flight, is itself closed at once.
#[instrument(skip_all)]
pub fn serve_within(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    health: HealthFn,
    refresh: RefreshFn,
    shutdown: CancellationToken,
    limits: Limits,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr = listener.local_addr()?;
    let app = router(AppState {
        metrics,
        health,
        refresh,
    });
    let task = tokio::spawn(async move {
        let open = Arc::new(Mutex::new(Open::default()));
        let tasks = tokio_util::task::TaskTracker::new();
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        warn!(error = %e, "accepting a connection to /healthz and /metrics failed");
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(ACCEPT_PAUSE) => continue,
                        }
                    }
                },
            };
            let Some((id, conn)) = open
                .lock()
                .expect("open connections")
                .admit(limits.max_connections)
            else {
                // Every open connection has a request in flight: this one waits for
                // nothing, closed at once.
                drop(stream);
                continue;
            };
            let (app, open, shutdown) = (app.clone(), open.clone(), shutdown.clone());
            tasks.spawn(async move {
                serve_connection(stream, &conn, app, limits.idle_timeout, shutdown).await;
                open.lock().expect("open connections").conns.remove(&id);
            });
        }
        tasks.close();
        tasks.wait().await;
    });
    tracing::info!(%addr, "serving /healthz and /metrics");
    Ok(task)
}

/// One open connection: how many of its requests are in flight, and how to close it.
#[derive(Default)]
struct Conn {
    busy: AtomicUsize,
    close: CancellationToken,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Open {
    next: u64,
    conns: BTreeMap<u64, Arc<Conn>>,
}

impl Open {
    /// Room for one more connection within `max`: the oldest connection waiting for a
    /// request is closed if there is none; `None` when every open one is busy.
    fn admit(&mut self, max: usize) -> Option<(u64, Arc<Conn>)> {
        if self.conns.len() >= max {
            let idle = self
                .conns
                .iter()
                .find(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
                .map(|(id, _)| *id)?;
            if let Some(closed) = self.conns.remove(&idle) {
                closed.close.cancel();
            }
        }
        let id = self.next;
        self.next += 1;
        let conn = Arc::new(Conn::default());
        self.conns.insert(id, conn.clone());
        Some((id, conn))
    }
}

/// Counts a request in flight on its connection while it lives.
struct Busy(Arc<Conn>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// HTTP/1.1 on one connection until the client closes it, it waits `idle_timeout`
/// for a request's headers, it is closed to make room (`conn.close`), or `shutdown`
/// (the request in flight is answered first).
async fn serve_connection(
    stream: tokio::net::TcpStream,
    conn: &Arc<Conn>,
    app: Router,
    idle_timeout: Duration,
    shutdown: CancellationToken,
) {
    let counted = conn.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        counted.busy.fetch_add(1, Ordering::AcqRel);
        let busy = Busy(counted.clone());
        let app = app.clone();
        async move {
            let _busy = busy;
            app.oneshot(request.map(axum::body::Body::new)).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(idle_timeout);
    let served = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(served);
    let mut stopping = false;
    loop {
        tokio::select! {
            // An idle connection timing out ends here too, as an error.
            _ = served.as_mut() => return,
            _ = conn.close.cancelled() => return,
            _ = shutdown.cancelled(), if !stopping => {
                stopping = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "linkledger\n\n/healthz  liveness (JSON; 200 ok or degraded, 503 unhealthy)\n/readyz   readiness (the same JSON; 200 only when ok)\n/metrics  Prometheus metrics\n",
    )
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, "not found\n")
}

/// `/healthz`, liveness: 200 while the process works, degraded or not; 503 when it is
/// unhealthy (a restart may be what it needs).
#[instrument(skip_all)]
async fn healthz(State(state): State<AppState>) -> Response {
    answer(&state, |s| s != HealthState::Unhealthy).await
}

/// `/readyz`, readiness: 200 only when every check is ok; 503 while the process is
/// degraded (a job file left out) or unhealthy.
#[instrument(skip_all)]
async fn readyz(State(state): State<AppState>) -> Response {
    answer(&state, |s| s == HealthState::Ok).await
}

/// The checks as JSON, with 200 when `passes` their state, else 503.
async fn answer(state: &AppState, passes: fn(HealthState) -> bool) -> Response {
    let report = run_checks(state).await;
    let status = if passes(report.state()) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(health_json(&report))).into_response()
}

/// The checks, or one unhealthy `timeout` check when they take over [`CALL_TIMEOUT`].
async fn run_checks(state: &AppState) -> HealthReport {
    match tokio::time::timeout(CALL_TIMEOUT, (state.health)()).await {
        Ok(report) => report,
        Err(_) => {
            warn!("health checks timed out");
            HealthReport {
                checks: vec![HealthCheck::new(
                    "timeout",
                    false,
                    format!(
                        "health checks did not finish within {}s",
                        CALL_TIMEOUT.as_secs()
                    ),
                )],
            }
        }
    }
}

/// `{"status": "ok"|"degraded"|"unhealthy", "checks": {name: {"ok", "state", "detail",
/// ...}}}`; a check's `ok` is false unless its state is ok.
fn health_json(report: &HealthReport) -> serde_json::Value {
    let checks: serde_json::Map<String, serde_json::Value> = report
        .checks
        .iter()
        .map(|c| {
            let mut check = serde_json::Map::new();
            check.insert("ok".into(), (c.state == HealthState::Ok).into());
            check.insert("state".into(), c.state.as_str().into());
            check.insert("detail".into(), c.detail.clone().into());
            check.extend(c.extra.clone());
            (c.name.clone(), serde_json::Value::Object(check))
        })
        .collect();
    serde_json::json!({
        "status": report.state().as_str(),
        "checks": checks,
    })
}

#[instrument(skip_all)]
async fn metrics(State(state): State<AppState>) -> Response {
    if tokio::time::timeout(CALL_TIMEOUT, (state.refresh)())
        .await
        .is_err()
    {
        warn!("metrics refresh timed out; serving the last known values");
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::FutureExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn get_raw(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, response)
    }

    fn failing_health() -> HealthFn {
        Arc::new(|| {
            async {
                HealthReport {
                    checks: vec![
                        HealthCheck::new("database", false, "connection refused"),
                        HealthCheck::new("scheduler", true, "ticked 3s ago"),
                    ],
                }
            }
            .boxed()
        })
    }

    #[tokio::test]
    async fn a_failing_health_check_answers_503_while_metrics_still_answer_200() {
        let metrics = Arc::new(Metrics::new());
        metrics.record_call("backlinks/summary/live", "ok", None);
        let refreshed = Arc::new(AtomicUsize::new(0));
        let counter = refreshed.clone();
        let refresh: RefreshFn = Arc::new(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            .boxed()
        });
        let shutdown = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = serve(
            listener,
            metrics,
            failing_health(),
            refresh,
            shutdown.clone(),
        )
        .unwrap();
        assert_ne!(addr.port(), 0);

        let (status, body) = get_raw(addr, "/healthz").await;
        assert_eq!(status, 503, "{body}");
        let json: serde_json::Value =
            serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(json["status"], "unhealthy");
        assert_eq!(json["checks"]["database"]["ok"], false);
        assert_eq!(json["checks"]["database"]["detail"], "connection refused");
        assert_eq!(json["checks"]["scheduler"]["ok"], true);
        let (status, _) = get_raw(addr, "/readyz").await;
        assert_eq!(status, 503, "an unhealthy process is not ready either");

        let (status, body) = get_raw(addr, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("linkledger_api_calls_total"), "{body}");
        assert!(
            body.to_ascii_lowercase()
                .contains("content-type: application/openmetrics-text")
        );
        assert_eq!(refreshed.load(Ordering::SeqCst), 1);

        let (status, body) = get_raw(addr, "/").await;
        assert_eq!(status, 200);
        assert!(body.contains("/healthz") && body.contains("/metrics"));
        let (status, _) = get_raw(addr, "/nope").await;
        assert_eq!(status, 404);

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("server stops on shutdown")
            .unwrap();
    }

    #[tokio::test]
    async fn healthy_checks_answer_200_with_status_ok() {
        let health: HealthFn = Arc::new(|| {
            async {
                HealthReport {
                    checks: vec![HealthCheck::new("database", true, "select 1 in 2ms")],
                }
            }
            .boxed()
        });
        let refresh: RefreshFn = Arc::new(|| async {}.boxed());
        let shutdown = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = serve(
            listener,
            Arc::new(Metrics::new()),
            health,
            refresh,
            shutdown.clone(),
        )
        .unwrap();
        let (status, body) = get_raw(addr, "/healthz").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(r#""status":"ok""#), "{body}");
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_degraded_check_keeps_healthz_200_and_makes_readyz_503_until_it_clears() {
        let degraded = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = degraded.clone();
        let health: HealthFn = Arc::new(move || {
            let degraded = flag.load(Ordering::SeqCst);
            async move {
                let mut jobs = HealthCheck::new("jobs", true, "every job file loads");
                if degraded {
                    jobs.state = HealthState::Degraded;
                    jobs.detail = "1 job file does not load".into();
                    jobs.extra.insert(
                        "broken".into(),
                        serde_json::json!([{ "file": "jobs/b.toml", "why": "name: missing" }]),
                    );
                }
                HealthReport {
                    checks: vec![HealthCheck::new("database", true, "reachable"), jobs],
                }
            }
            .boxed()
        });
        let shutdown = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = serve(
            listener,
            Arc::new(Metrics::new()),
            health,
            Arc::new(|| async {}.boxed()),
            shutdown.clone(),
        )
        .unwrap();
        let json = |body: &str| -> serde_json::Value {
            serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap()
        };
        let (status, body) = get_raw(addr, "/healthz").await;
        assert_eq!(status, 200, "alive: {body}");
        let live = json(&body);
        assert_eq!(live["status"], "degraded");
        assert_eq!(live["checks"]["jobs"]["ok"], false);
        assert_eq!(live["checks"]["jobs"]["state"], "degraded");
        assert_eq!(live["checks"]["jobs"]["broken"][0]["file"], "jobs/b.toml");
        assert_eq!(live["checks"]["database"]["state"], "ok");
        let (status, body) = get_raw(addr, "/readyz").await;
        assert_eq!(status, 503, "not ready: {body}");
        assert_eq!(json(&body), live);

        degraded.store(false, Ordering::SeqCst);
        let (status, body) = get_raw(addr, "/readyz").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(json(&body)["status"], "ok");
        shutdown.cancel();
        task.await.unwrap();
    }

    #[test]
    fn at_the_limit_a_new_connection_closes_the_oldest_idle_one_or_is_refused_when_all_are_busy() {
        let mut open = Open::default();
        let (first, a) = open.admit(2).unwrap();
        let (_, b) = open.admit(2).unwrap();
        b.busy.fetch_add(1, Ordering::AcqRel);
        let (_, c) = open.admit(2).expect("the idle one makes room");
        assert!(a.close.is_cancelled() && !b.close.is_cancelled());
        assert!(!open.conns.contains_key(&first));
        c.busy.fetch_add(1, Ordering::AcqRel);
        assert!(open.admit(2).is_none(), "every open connection is busy");
        assert_eq!(open.conns.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_health_check_that_hangs_times_out_as_503() {
        let health: HealthFn = Arc::new(|| futures::future::pending().boxed());
        let state = AppState {
            metrics: Arc::new(Metrics::new()),
            health,
            refresh: Arc::new(|| futures::future::pending().boxed()),
        };
        let response = healthz(State(state.clone())).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["checks"]["timeout"]["ok"], false);
        // A hung refresh still renders.
        let response = metrics(State(state)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}
