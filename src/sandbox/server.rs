//! The HTTP side: the routes (the live endpoints under `/v3` or a gateway's prefix,
//! `user_data`, the statistics, 404 for the rest), the sandbox header, and the handling
//! of a live request from authentication to its recorded answer.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use tracing::instrument;

use super::OtherConsumer;
use super::account::user_data_parts;
use super::admission::Slot;
use super::envelope::{
    MSG_BAD_JSON, MSG_NO_FUNDS, MSG_NOT_FOUND, MSG_OK, MSG_ONE_TASK, TaskAnswer, echo,
    json_response, json_text, task_json, top_level, with_task,
};
use super::modes::{BodyQuirk, TargetMode, target_mode};
use super::state::Shared;
use super::{RequestRecord, SANDBOX_HEADER, data, faults};
use crate::api::Endpoint;
use crate::money::Usd;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    let identify = shared.opts.identify;
    let mut app = Router::new().route(
        &format!("{}/backlinks/{{name}}/live", shared.live_prefix),
        post(live),
    );
    // A gateway does not serve it: 404 like any unknown path.
    if shared.opts.gateway.is_none() {
        app = app.route("/v3/appendix/user_data", get(user_data));
    }
    let app = app
        .route("/sandbox/stats", get(stats_route))
        .route("/sandbox/requests", get(requests_route))
        .route("/sandbox/other-consumer", post(other_consumer_route))
        .fallback(not_found)
        .with_state(shared);
    if identify {
        // A layer over the whole router, so no answer can miss it (axum's own 405s
        // and the dropped connection's headers included).
        app.layer(axum::middleware::map_response(say_it_is_a_sandbox))
    } else {
        app
    }
}

async fn say_it_is_a_sandbox(mut response: Response) -> Response {
    response.headers_mut().insert(
        HeaderName::from_static(SANDBOX_HEADER),
        HeaderValue::from_static("1"),
    );
    response
}

async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &top_level(40400, MSG_NOT_FOUND, Duration::ZERO),
    )
}

async fn stats_route(State(shared): State<Arc<Shared>>) -> Response {
    let stats = shared.lock().stats.clone();
    json_response(StatusCode::OK, &json!(stats))
}

/// The recent requests, oldest first.
async fn requests_route(State(shared): State<Arc<Shared>>) -> Response {
    let records: Vec<RequestRecord> = shared
        .lock()
        .records
        .iter()
        .map(|(r, _)| r.clone())
        .collect();
    json_response(StatusCode::OK, &json!(records))
}

/// `POST /sandbox/other-consumer`: another consumer of the account spent some
/// (`super::OtherConsumer`'s JSON); 204, or 400 with why.
async fn other_consumer_route(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<OtherConsumer>(&body) {
        Ok(other) if other.usd >= Usd::ZERO => {
            shared.other_consumer(&other);
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => (StatusCode::BAD_REQUEST, "usd cannot be negative").into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

/// `GET /v3/appendix/user_data`: free and not counted; the account, its limits, its
/// balance and its own price list.
#[instrument(skip_all)]
async fn user_data(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !shared.authorized(&headers) {
        return shared.unauthorized();
    }
    let started = Instant::now();
    let (per_request, per_row) = shared.rate();
    let live_price = json!({
        "live": {
            "priority_normal": [
                {"cost_type": "per_request", "cost": per_request},
                {"cost_type": "per_result", "cost": per_row},
            ]
        }
    });
    let backlinks: Map<String, Value> = Endpoint::every()
        .map(|e| (e.name().to_string(), live_price.clone()))
        .collect();
    let (mut money, rates) = {
        let mut st = shared.lock();
        let today = st.today();
        st.book.roll(today);
        user_data_parts(
            &st.book,
            &st.limits,
            st.limits.rate_minute.unwrap_or(shared.opts.max_per_minute),
        )
    };
    money["total"] = json!(shared.opts.balance);
    money["balance"] = json!(shared.balance());
    let result = json!([{
        "login": shared.opts.login,
        "timezone": "UTC",
        "rates": rates,
        "money": money,
        "price": {"backlinks": backlinks},
    }]);
    let task = task_json(
        TaskAnswer {
            id: shared.next_task_id(),
            code: 20000,
            message: MSG_OK,
            cost: Usd::ZERO,
            path: &["v3", "appendix", "user_data"],
            data: echo("appendix", "user_data", None),
            result: Some(result),
        },
        started.elapsed(),
    );
    json_response(StatusCode::OK, &with_task(task, started.elapsed()))
}

/// `POST /v3/backlinks/{name}/live`: auth, limits, latency, faults, validation, answer.
#[instrument(skip_all, fields(endpoint = %name))]
async fn live(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !shared.authorized(&headers) {
        return shared.unauthorized();
    }
    let Ok(endpoint) = name.parse::<Endpoint>() else {
        return not_found().await;
    };
    let started = Instant::now();
    let request: Option<Value> = serde_json::from_slice(&body).ok();
    let (_slot, open) = Slot::enter(&shared);

    if let Some((code, message)) = shared.admit(endpoint, open) {
        tracing::debug!(code, "throttled");
        let body = top_level(code, message, started.elapsed());
        return shared.answer(endpoint, &request, StatusCode::OK, body, Usd::ZERO);
    }

    // Like the real service, the task is processed (and charged) as soon as it is
    // accepted; the answer then takes `latency` to arrive. A client that goes away
    // meanwhile has still paid.
    let response = respond(&shared, endpoint, &request, started);
    if !shared.opts.latency.is_zero() {
        tokio::time::sleep(shared.opts.latency).await;
    }
    response
}

/// The answer to an admitted request, recorded and charged.
fn respond(
    shared: &Arc<Shared>,
    endpoint: Endpoint,
    request: &Option<Value>,
    started: Instant,
) -> Response {
    let request = request.clone();
    let task_in = match &request {
        Some(Value::Array(tasks)) if tasks.len() == 1 && tasks[0].is_object() => Some(&tasks[0]),
        // A gateway also takes the one task as a bare object.
        Some(task @ Value::Object(_)) if shared.opts.gateway.is_some() => Some(task),
        _ => None,
    };
    let path: &[&str] = &["v3", "backlinks", endpoint.name(), "live"];

    if let Some(fault) = shared.roll_fault() {
        tracing::debug!(?fault, "injecting a fault");
        return faults::serve(shared, fault, endpoint, &request, task_in, path, started);
    }

    // The envelope-level checks: a JSON array holding exactly one task (or, at a
    // gateway, the task itself).
    if request.is_none() {
        let body = top_level(40000, MSG_BAD_JSON, started.elapsed());
        return shared.answer(endpoint, &request, StatusCode::BAD_REQUEST, body, Usd::ZERO);
    }
    let Some(task_in) = task_in else {
        let body = top_level(40000, MSG_ONE_TASK, started.elapsed());
        return shared.answer(endpoint, &request, StatusCode::OK, body, Usd::ZERO);
    };

    let mode = target_mode(task_in);
    if mode == Some(TargetMode::NoFunds) {
        let body = top_level(40210, MSG_NO_FUNDS, started.elapsed());
        return shared.answer(endpoint, &request, StatusCode::OK, body, Usd::ZERO);
    }

    // Fixture mode: the documented example, as it is, whatever the task asked.
    if let Some(body) = shared.opts.fixtures.get(&endpoint) {
        let cost = body
            .get("cost")
            .and_then(|c| c.to_string().parse::<Usd>().ok())
            .unwrap_or(Usd::ZERO);
        tracing::debug!(%cost, "answered from a fixture");
        return shared.answer(endpoint, &request, StatusCode::OK, body.clone(), cost);
    }

    let data = echo("backlinks", endpoint.name(), Some(task_in));
    let (code, message, cost, result) = match data::build_result(endpoint, task_in, shared.today())
    {
        Ok(result) => {
            let cost = shared.price(data::row_count(endpoint, &result));
            (20000, MSG_OK.to_string(), cost, Some(result))
        }
        // A bad request is answered per task: 40501 with the field named, no charge.
        Err(message) => (40501, message, Usd::ZERO, None),
    };
    tracing::debug!(code, %cost, "answered");
    let task = task_json(
        TaskAnswer {
            id: shared.next_task_id(),
            code,
            message: &message,
            cost,
            path,
            data,
            result,
        },
        started.elapsed(),
    );
    let mut body = with_task(task, started.elapsed());
    // After the body is built, so the record keeps what is sent; the cost is unchanged.
    if let Some(TargetMode::Envelope(quirk)) = mode {
        quirk.apply(&mut body);
    }
    let padding = match mode {
        Some(TargetMode::Body(BodyQuirk::GzipBomb)) => Some(super::modes::GZIP_BOMB_PADDING),
        Some(TargetMode::Body(BodyQuirk::Huge)) => Some(super::modes::HUGE_PADDING),
        _ => None,
    };
    if let Some(padding) = padding {
        let text = body.to_string();
        shared.record(
            endpoint,
            &request,
            StatusCode::OK,
            Some(&body),
            cost,
            text.len(),
        );
        return (
            StatusCode::OK,
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                ),
                (axum::http::header::CONTENT_ENCODING, "gzip"),
            ],
            BodyQuirk::padded(&text, padding),
        )
            .into_response();
    }
    if let Some(TargetMode::Body(quirk)) = mode {
        let text = quirk.garble(&body.to_string());
        shared.record(endpoint, &request, StatusCode::OK, None, cost, text.len());
        return json_text(StatusCode::OK, text);
    }
    shared.answer(endpoint, &request, StatusCode::OK, body, cost)
}
