//! The API's JSON envelope: the version, the status messages, the top level with or
//! without its one task, the task and its `data` echo; and the JSON and HTML responses
//! that carry them.

use std::time::Duration;

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::money::Usd;

/// The API version the envelope reports.
const VERSION: &str = "0.1.20250526";
pub(super) const MSG_OK: &str = "Ok.";
pub(super) const MSG_UNAUTHORIZED: &str =
    "You are not authorized to access this resource. Check your login and password.";
pub(super) const MSG_PER_MINUTE: &str = "You have reached the limit of requests per minute. Please try again later or contact support to increase the limit.";
pub(super) const MSG_IN_FLIGHT: &str = "You have reached the limit of simultaneous requests. Please wait for the previous requests to complete or contact support to increase the limit.";
pub(super) const MSG_ONE_TASK: &str = "You can set only one task at a time.";
pub(super) const MSG_BAD_JSON: &str = "Invalid JSON in the POST body.";
pub(super) const MSG_NOT_FOUND: &str = "Not Found.";
pub(super) const MSG_INTERNAL: &str = "Internal Error.";
pub(super) const MSG_PER_DAY: &str = "You have reached the limit of requests per day. Please try again tomorrow or contact support to increase the limit.";
pub(super) const MSG_DAILY_LIMIT: &str = "You have reached the daily cost limit. Please try again tomorrow or raise the limit in the dashboard.";
pub(super) const MSG_NO_FUNDS: &str = "Insufficient funds. Please, top up your account balance.";

pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
    json_text(status, body.to_string())
}

pub(super) fn json_text(status: StatusCode, text: String) -> Response {
    (
        status,
        [(CONTENT_TYPE, "application/json; charset=utf-8")],
        text,
    )
        .into_response()
}

pub(super) fn html_response(status: StatusCode, body: &'static str) -> Response {
    (status, [(CONTENT_TYPE, "text/html")], body).into_response()
}

fn seconds(d: Duration) -> String {
    format!("{:.4} sec.", d.as_secs_f64())
}

/// An envelope without tasks: refusals before any task was looked at.
pub(super) fn top_level(code: i64, message: &str, elapsed: Duration) -> Value {
    json!({
        "version": VERSION,
        "status_code": code,
        "status_message": message,
        "time": seconds(elapsed),
        "cost": 0,
        "tasks_count": 0,
        "tasks_error": 0,
        "tasks": null,
    })
}

/// An envelope with its one task.
pub(super) fn with_task(task: Value, elapsed: Duration) -> Value {
    let failed = task["status_code"] != 20000;
    json!({
        "version": VERSION,
        "status_code": 20000,
        "status_message": MSG_OK,
        "time": seconds(elapsed),
        "cost": task["cost"].clone(),
        "tasks_count": 1,
        "tasks_error": u8::from(failed),
        "tasks": [task],
    })
}

/// The request echoed in a task's `data`: the API and function, then the task's fields.
pub(super) fn echo(api: &str, function: &str, task: Option<&Value>) -> Value {
    let mut data = Map::new();
    data.insert("api".into(), json!(api));
    data.insert("function".into(), json!(function));
    if let Some(Value::Object(fields)) = task {
        for (k, v) in fields {
            data.insert(k.clone(), v.clone());
        }
    }
    Value::Object(data)
}

pub(super) struct TaskAnswer<'a> {
    pub(super) id: String,
    pub(super) code: i64,
    pub(super) message: &'a str,
    pub(super) cost: Usd,
    pub(super) path: &'a [&'a str],
    pub(super) data: Value,
    pub(super) result: Option<Value>,
}

pub(super) fn task_json(t: TaskAnswer<'_>, elapsed: Duration) -> Value {
    let result_count = t
        .result
        .as_ref()
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    json!({
        "id": t.id,
        "status_code": t.code,
        "status_message": t.message,
        "time": seconds(elapsed),
        "cost": t.cost,
        "result_count": result_count,
        "path": t.path,
        "data": t.data,
        "result": t.result,
    })
}
