//! Injected faults, as the real API and the network produce them: HTTP 500 and 502
//! with an HTML body, a task-level 50000, a throttling 40202 and a connection dropped in
//! the middle of the body; drawn per POST at the rate
//! [`fault_rate`](super::SandboxOptions::fault_rate) from a seeded generator.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::Value;
use tokio::time::Instant;

use super::envelope::{
    MSG_INTERNAL, MSG_PER_MINUTE, TaskAnswer, echo, html_response, task_json, top_level, with_task,
};
use super::state::Shared;
use crate::api::Endpoint;
use crate::money::Usd;

const HTML_500: &str = "<html><body><h1>500 Internal Server Error</h1></body></html>";
const HTML_502: &str = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";

/// What an injected fault does to the answer.
#[derive(Clone, Copy, Debug)]
pub(super) enum Fault {
    /// HTTP 500 with an HTML body.
    Http500,
    /// HTTP 502 from the gateway, HTML.
    Http502,
    /// HTTP 200, top level 20000, but the task failed with 50000.
    TaskError,
    /// HTTP 200 with a top-level 40202, as the API sends under load.
    Throttle,
    /// Headers sent, then the connection breaks in the middle of the body.
    Drop,
}

impl Shared {
    /// Draws whether this POST gets a fault, and which.
    pub(super) fn roll_fault(&self) -> Option<Fault> {
        let mut st = self.lock();
        let rate = st.fault_rate.clamp(0.0, 1.0);
        if rate <= 0.0 || st.rng.random::<f64>() >= rate {
            return None;
        }
        st.stats.faults += 1;
        Some(match st.rng.random_range(0..5) {
            0 => Fault::Http500,
            1 => Fault::Http502,
            2 => Fault::TaskError,
            3 => Fault::Throttle,
            _ => Fault::Drop,
        })
    }
}

/// The answer a POST that drew `fault` gets instead of its own, recorded and not
/// charged.
pub(super) fn serve(
    shared: &Shared,
    fault: Fault,
    endpoint: Endpoint,
    request: &Option<Value>,
    task_in: Option<&Value>,
    path: &[&str],
    started: Instant,
) -> Response {
    match fault {
        Fault::Http500 => {
            shared.record(
                endpoint,
                request,
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                Usd::ZERO,
                0,
            );
            html_response(StatusCode::INTERNAL_SERVER_ERROR, HTML_500)
        }
        Fault::Http502 => {
            shared.record(
                endpoint,
                request,
                StatusCode::BAD_GATEWAY,
                None,
                Usd::ZERO,
                0,
            );
            html_response(StatusCode::BAD_GATEWAY, HTML_502)
        }
        Fault::TaskError => {
            let task = task_json(
                TaskAnswer {
                    id: shared.next_task_id(),
                    code: 50000,
                    message: MSG_INTERNAL,
                    cost: Usd::ZERO,
                    path,
                    data: echo("backlinks", endpoint.name(), task_in),
                    result: None,
                },
                started.elapsed(),
            );
            let body = with_task(task, started.elapsed());
            shared.answer(endpoint, request, StatusCode::OK, body, Usd::ZERO)
        }
        Fault::Throttle => {
            let body = top_level(40202, MSG_PER_MINUTE, started.elapsed());
            shared.answer(endpoint, request, StatusCode::OK, body, Usd::ZERO)
        }
        Fault::Drop => {
            shared.record(endpoint, request, StatusCode::OK, None, Usd::ZERO, 0);
            dropped_connection()
        }
    }
}

/// HTTP 200 and the start of a body, then an I/O error: the client sees the
/// connection break in the middle of the answer.
fn dropped_connection() -> Response {
    use futures::StreamExt;
    let start = futures::stream::once(async {
        Ok::<Bytes, std::io::Error>(Bytes::from_static(
            b"{\"version\":\"0.1.20250526\",\"status_code\":",
        ))
    });
    // The pause lets the headers and the first bytes reach the client before the break.
    let broken = futures::stream::once(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox: connection dropped on purpose",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from_stream(start.chain(broken)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
