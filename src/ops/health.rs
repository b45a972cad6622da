//! The daemon's HTTP side door: `GET /healthz` (JSON, 200 or 503) and `GET /metrics`
//! (Prometheus/OpenMetrics text).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tracing::{instrument, warn};

use super::metrics::Metrics;

/// The outcome of all health checks; `ok` is what decides 200 versus 503.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    pub ok: bool,
    pub checks: Vec<HealthCheck>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// Runs the health checks (database, scheduler, …) on each `/healthz` request.
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

/// Serves on `listener` until `shutdown` is cancelled. Returns the server task.
#[instrument(skip_all)]
pub fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    health: HealthFn,
    refresh: RefreshFn,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr = listener.local_addr()?;
    let app = router(AppState {
        metrics,
        health,
        refresh,
    });
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = result {
            warn!(error = %e, "metrics/health server stopped with an error");
        }
    });
    tracing::info!(%addr, "serving /healthz and /metrics");
    Ok(task)
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "linkledger\n\n/healthz  health checks (JSON; 200 ok, 503 unhealthy)\n/metrics  Prometheus metrics\n",
    )
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, "not found\n")
}

#[instrument(skip_all)]
async fn healthz(State(state): State<AppState>) -> Response {
    let report = match tokio::time::timeout(CALL_TIMEOUT, (state.health)()).await {
        Ok(report) => report,
        Err(_) => {
            warn!("health checks timed out");
            HealthReport {
                ok: false,
                checks: vec![HealthCheck {
                    name: "timeout".into(),
                    ok: false,
                    detail: format!(
                        "health checks did not finish within {}s",
                        CALL_TIMEOUT.as_secs()
                    ),
                }],
            }
        }
    };
    let status = if report.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(health_json(&report))).into_response()
}

fn health_json(report: &HealthReport) -> serde_json::Value {
    let checks: serde_json::Map<String, serde_json::Value> = report
        .checks
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                serde_json::json!({ "ok": c.ok, "detail": c.detail }),
            )
        })
        .collect();
    serde_json::json!({
        "status": if report.ok { "ok" } else { "unhealthy" },
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
                    ok: false,
                    checks: vec![
                        HealthCheck {
                            name: "database".into(),
                            ok: false,
                            detail: "connection refused".into(),
                        },
                        HealthCheck {
                            name: "scheduler".into(),
                            ok: true,
                            detail: "ticked 3s ago".into(),
                        },
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
                    ok: true,
                    checks: vec![HealthCheck {
                        name: "database".into(),
                        ok: true,
                        detail: "select 1 in 2ms".into(),
                    }],
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
