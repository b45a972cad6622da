//! An offline DataForSEO-compatible Backlinks API, for demos, tests and benchmarks.
//!
//! It answers like the real API: the same paths (`POST /v3/backlinks/<name>/live`,
//! `GET /v3/appendix/user_data`), HTTP Basic or Bearer auth, the same envelope with a
//! status code and a cost at the top level and per task, the same limits (requests per
//! minute and requests in flight, refused with 40202 / 40209 as HTTP 200) and the same
//! task-level `40501 Invalid Field: '…'.` for bad requests. Its data is fake but
//! deterministic (see [`data`]). On top of that it can inject the faults the real API
//! and the network produce (HTTP 5xx with an HTML body, task-level 50000, throttling, a
//! dropped connection) at a chosen rate. It counts every request in its statistics and
//! keeps a log of the most recent requests and their answers (at most
//! [`SandboxOptions::record_limit`], the oldest dropped first) so that tests can compare
//! what was stored with what was served, and a sandbox left running for days does not
//! grow without bound.
//!
//! `GET /sandbox/stats` and `GET /sandbox/requests` expose the same to other processes.
//!
//! # The account
//!
//! `GET /v3/appendix/user_data` is free and not counted. It reports the account the way
//! the API does: `money.total` is [`SandboxOptions::balance`] (default $100) and
//! `money.balance` that minus everything charged so far, so a client can watch it
//! fall (it can go below zero: the sandbox refuses for money only in the
//! `quirk-no-funds` mode); `price.backlinks.<endpoint>.live.priority_normal` is the
//! price list it charges by, `per_request` and `per_result`: the list price, or
//! [`SandboxOptions::prices`], so a client's estimates can be shown to follow the
//! account's own price list.
//!
//! # Gateway mode
//!
//! Some gateways put the same API behind another prefix
//! (`https://api.aisa.one/apis/v1/dataforseo/backlinks/history/live`), show a bare JSON
//! object as the request body, authenticate with a Bearer token, bill a flat price per
//! call while passing DataForSEO's own `cost` through in the envelope, and may not serve
//! `appendix/user_data`. With [`SandboxOptions::gateway`] set the sandbox is such a
//! gateway: the live endpoints are served at `{prefix}/backlinks/<name>/live` and not
//! under `/v3`; the body may be the one task as a bare object (an array of one task
//! still works; [`RequestRecord::request`] keeps the body as received); only
//! `Authorization: Bearer` is accepted; `user_data` answers 404 like any unknown path;
//! the envelope, its `cost` (DataForSEO's, at [`SandboxOptions::prices`]), the limits,
//! faults, target modes and [`Stats`] are as without it. The flat price is the client's
//! business (its configured price per call): the sandbox cannot know it.
//! [`Sandbox::base_url`] is then `http://ADDR{prefix}`.
//!
//! # Saying it is a sandbox
//!
//! Every answer, whatever its path or status (live endpoints, `user_data`, 401, 404,
//! injected faults, the statistics), carries the response header
//! `x-linkledger-sandbox: 1` ([`SANDBOX_HEADER`]), so that a client can mark what the
//! sandbox charged as not real spend: a demo into the user's database must not eat
//! the user's budget. Tests of budgets need the opposite, a stand-in the client takes
//! for the real API, whose charges count against the caps; for them
//! [`SandboxOptions::identify`] = false (`linkledger sandbox --as-real-api`) leaves the
//! header out and nothing else changes.
//!
//! # Fixture mode
//!
//! [`SandboxOptions::fixtures`] maps an endpoint to an envelope (a documented example
//! response): every admitted task of that endpoint is answered with it verbatim and
//! charged its `cost`, so a test can feed the API's own documents through the real
//! client, ledger and loader. Authentication, limits and faults are as without it.
//!
//! # Target modes
//!
//! A target whose host's first label (lowercase, without `www.`) is one of these names
//! changes the answer; for the bulk endpoints, any of the `targets` does.
//!
//! - `quirk-unknown-fields`, `quirk-wrong-type`, `quirk-misspelled`, `quirk-nulls`:
//!   the result's schema drifts (see [`data`]); the envelope is normal.
//! - `quirk-no-funds`: a top-level 40210 (insufficient funds) with no task, not
//!   charged. It wins over every other mode of the same task.
//!
//! The envelope modes keep the result and the charge exactly as without them (the same
//! cost, counted in [`Stats::charged_usd`] and [`RequestRecord::cost`]) and change only
//! the envelope, after it was built, so that the recorded response is what was sent:
//!
//! - `quirk-envelope-types`: the fields that do not matter for classification have other
//!   JSON types: top-level `time` is a number of seconds (`0.0123`), `tasks_count` and
//!   `tasks_error` are strings (`"1"`, `"0"`); the task's `id` is a number, its `time`
//!   a number of seconds, `result_count` a string (`"1"`), and `path` one string
//!   (`"v3/backlinks/<endpoint>/live"`). Status codes and costs stay numbers and
//!   `result` stays an array.
//! - `quirk-string-codes`: `status_code` and `cost` are strings at both levels
//!   (`"20000"`, `"0.02003"`); everything else is normal.
//! - `quirk-result-object`: the task's `result` is the one result object itself, not an
//!   array holding it (`result_count` stays 1).
//! - `quirk-no-status`: neither the envelope nor the task has a `status_code` or a
//!   `status_message` key; cost and result as usual.
//!
//! The envelope modes shape every answer built for the task, a 40501 included (its cost
//! 0); refusals decided before the task is read (401, 40202, 40209, 40210) and injected
//! faults are served as without them. Several envelope modes in one bulk task: the
//! first target's in request order wins.

pub mod data;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::NaiveDate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::instrument;

pub use data::build_result;

use crate::api::Endpoint;
use crate::money::Usd;

/// The API version the envelope reports.
const VERSION: &str = "0.1.20250526";
const MSG_OK: &str = "Ok.";
const MSG_UNAUTHORIZED: &str =
    "You are not authorized to access this resource. Check your login and password.";
const MSG_PER_MINUTE: &str = "You have reached the limit of requests per minute. Please try again later or contact support to increase the limit.";
const MSG_IN_FLIGHT: &str = "You have reached the limit of simultaneous requests. Please wait for the previous requests to complete or contact support to increase the limit.";
const MSG_ONE_TASK: &str = "You can set only one task at a time.";
const MSG_BAD_JSON: &str = "Invalid JSON in the POST body.";
const MSG_NOT_FOUND: &str = "Not Found.";
const MSG_INTERNAL: &str = "Internal Error.";
const MSG_NO_FUNDS: &str = "Insufficient funds. Please, top up your account balance.";

/// What a task's targets ask of the server (see the module doc, "Target modes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TargetMode {
    /// `quirk-no-funds`: the account has run out of money (40210), to show what a
    /// payment refusal does to a run.
    NoFunds,
    /// A normal, charged answer whose envelope is shaped by the quirk.
    Envelope(EnvelopeQuirk),
}

/// Surprising envelopes that still carry a classifiable answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EnvelopeQuirk {
    /// `quirk-envelope-types`: `time`, counts, `id`, `result_count` and `path` retyped.
    Types,
    /// `quirk-string-codes`: `status_code` and `cost` as strings at both levels.
    StringCodes,
    /// `quirk-result-object`: `result` is the result object, not an array of one.
    ResultObject,
    /// `quirk-no-status`: no `status_code` / `status_message` at either level.
    NoStatus,
}

/// The mode the first host label of the task's `target`, or of any of its `targets`,
/// asks for: `quirk-no-funds` first, else the first envelope quirk in request order.
fn target_mode(task: &Value) -> Option<TargetMode> {
    let mut labels: Vec<String> = Vec::new();
    if let Some(t) = task.get("target").and_then(Value::as_str) {
        labels.push(data::first_label(t));
    }
    if let Some(list) = task.get("targets").and_then(Value::as_array) {
        labels.extend(list.iter().filter_map(Value::as_str).map(data::first_label));
    }
    if labels.iter().any(|l| l == "quirk-no-funds") {
        return Some(TargetMode::NoFunds);
    }
    labels.iter().find_map(|l| {
        let quirk = match l.as_str() {
            "quirk-envelope-types" => EnvelopeQuirk::Types,
            "quirk-string-codes" => EnvelopeQuirk::StringCodes,
            "quirk-result-object" => EnvelopeQuirk::ResultObject,
            "quirk-no-status" => EnvelopeQuirk::NoStatus,
            _ => return None,
        };
        Some(TargetMode::Envelope(quirk))
    })
}

impl EnvelopeQuirk {
    /// Reshapes a built envelope (top level and its tasks) in place.
    fn apply(self, envelope: &mut Value) {
        let Some(top) = envelope.as_object_mut() else {
            return;
        };
        match self {
            EnvelopeQuirk::Types => {
                retype(top, "time", seconds_as_number);
                retype(top, "tasks_count", number_as_string);
                retype(top, "tasks_error", number_as_string);
                for task in tasks_mut(top) {
                    retype(task, "id", id_as_number);
                    retype(task, "time", seconds_as_number);
                    retype(task, "result_count", number_as_string);
                    retype(task, "path", path_as_string);
                }
            }
            EnvelopeQuirk::StringCodes => {
                for field in ["status_code", "cost"] {
                    retype(top, field, number_as_string);
                }
                for task in tasks_mut(top) {
                    for field in ["status_code", "cost"] {
                        retype(task, field, number_as_string);
                    }
                }
            }
            EnvelopeQuirk::ResultObject => {
                for task in tasks_mut(top) {
                    if let Some(Value::Array(results)) = task.get_mut("result")
                        && results.len() == 1
                    {
                        let only = results.remove(0);
                        task.insert("result".into(), only);
                    }
                }
            }
            EnvelopeQuirk::NoStatus => {
                for field in ["status_code", "status_message"] {
                    top.shift_remove(field);
                }
                for task in tasks_mut(top) {
                    for field in ["status_code", "status_message"] {
                        task.shift_remove(field);
                    }
                }
            }
        }
    }
}

/// The task objects of an envelope.
fn tasks_mut(top: &mut Map<String, Value>) -> impl Iterator<Item = &mut Map<String, Value>> {
    top.get_mut("tasks")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Replaces `obj[field]`, where it exists, by `f` of it; `None` leaves it as it was.
fn retype(obj: &mut Map<String, Value>, field: &str, f: fn(&Value) -> Option<Value>) {
    if let Some(v) = obj.get_mut(field)
        && let Some(new) = f(v)
    {
        *v = new;
    }
}

/// `1` → `"1"`, `0.02003` → `"0.02003"`.
fn number_as_string(v: &Value) -> Option<Value> {
    v.as_number().map(|n| Value::String(n.to_string()))
}

/// `"0.0123 sec."` → `0.0123`.
fn seconds_as_number(v: &Value) -> Option<Value> {
    let secs: f64 = v.as_str()?.strip_suffix(" sec.")?.trim().parse().ok()?;
    Some(json!(secs))
}

/// A task id's last group, read as hex: a number below 2^48, exact in any JSON reader.
fn id_as_number(v: &Value) -> Option<Value> {
    let last = v.as_str()?.rsplit('-').next()?;
    u64::from_str_radix(last, 16).ok().map(|n| json!(n))
}

/// `["v3", "backlinks", "summary", "live"]` → `"v3/backlinks/summary/live"`.
fn path_as_string(v: &Value) -> Option<Value> {
    let parts: Option<Vec<&str>> = v.as_array()?.iter().map(Value::as_str).collect();
    Some(Value::String(parts?.join("/")))
}

/// The response header by which the sandbox says it is one (value `1`); see the
/// module doc, "Saying it is a sandbox".
pub const SANDBOX_HEADER: &str = "x-linkledger-sandbox";

const HTML_500: &str = "<html><body><h1>500 Internal Server Error</h1></body></html>";
const HTML_502: &str = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";

/// How the sandbox behaves.
#[derive(Clone)]
pub struct SandboxOptions {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Added to every POST, while holding its in-flight slot.
    pub latency: Duration,
    /// Probability in `[0, 1]` that a POST gets an injected fault instead of its answer.
    pub fault_rate: f64,
    /// Seed of the fault generator: the same seed gives the same sequence of faults.
    pub seed: u64,
    /// The account's limit of accepted POSTs per sliding minute (40202 beyond it).
    pub max_per_minute: u32,
    /// The account's limit of simultaneous requests (40209 beyond it).
    pub max_in_flight: usize,
    pub login: String,
    pub password: String,
    /// Accepted as `Authorization: Bearer <token>`, the way gateways authenticate.
    pub token: String,
    /// The sandbox's "today"; `None` means the UTC date when a request arrives.
    pub today: Option<NaiveDate>,
    /// How many of the most recent requests [`Sandbox::requests`] and
    /// `GET /sandbox/requests` keep, with their bodies; older ones are dropped from the
    /// log (0 keeps none). [`Stats`] count every request regardless.
    pub record_limit: usize,
    /// The most bytes of request and response bodies the log keeps (bulk answers are
    /// large): older records are dropped first, the newest is always kept.
    pub record_bytes: usize,
    /// The account's balance at start (default $100): `user_data` reports it, less
    /// what the sandbox has charged since.
    pub balance: Usd,
    /// The price list served by `user_data` and charged, as (USD per request, USD per
    /// returned row); `None` is the API's list price (see [`price`]).
    pub prices: Option<(Usd, Usd)>,
    /// Serve as a gateway does (see the module doc, "Gateway mode"); `None`, the
    /// default, is the API itself under `/v3`.
    pub gateway: Option<GatewayOptions>,
    /// Send [`SANDBOX_HEADER`] with every answer (default true). False makes the
    /// sandbox pass for the real API, for tests of budgets.
    pub identify: bool,
    /// Fixture mode: an endpoint listed here answers every admitted task with this
    /// envelope, verbatim (a documented example response), charged at the envelope's
    /// own `cost`, instead of built data. Empty by default.
    pub fixtures: BTreeMap<Endpoint, Value>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            latency: Duration::ZERO,
            fault_rate: 0.0,
            seed: 1,
            max_per_minute: 2000,
            max_in_flight: 30,
            login: "sandbox".into(),
            password: "sandbox".into(),
            token: "sandbox-token".into(),
            today: None,
            record_limit: 10_000,
            record_bytes: 64 << 20,
            balance: Usd(Decimal::ONE_HUNDRED),
            prices: None,
            gateway: None,
            identify: true,
            fixtures: BTreeMap::new(),
        }
    }
}

/// A gateway in front of the API (see the module doc, "Gateway mode").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayOptions {
    /// The path the live endpoints hang under instead of `/v3`, e.g.
    /// `/apis/v1/dataforseo`. Leading and trailing slashes are optional.
    pub prefix: String,
}

impl GatewayOptions {
    /// The prefix as served: `/` before every segment, none at the end (`""` is the
    /// root). Segments are letters, digits and `-._~`, and not `.` or `..`.
    pub fn path(&self) -> Result<String, String> {
        let trimmed = self.prefix.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(String::new());
        }
        let mut path = String::new();
        for segment in trimmed.split('/') {
            let fine = !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
            if !fine {
                return Err(format!(
                    "gateway prefix {:?}: segment {segment:?} is not a plain path segment \
                     (letters, digits, -._~)",
                    self.prefix
                ));
            }
            path.push('/');
            path.push_str(segment);
        }
        Ok(path)
    }
}

impl SandboxOptions {
    /// What is wrong with these options, for people: [`Sandbox::start`] refuses them.
    pub fn check(&self) -> Result<(), String> {
        if let Some(gateway) = &self.gateway {
            gateway.path()?;
        }
        if let Some((per_request, per_row)) = self.prices
            && (per_request < Usd::ZERO || per_row < Usd::ZERO)
        {
            return Err(format!(
                "prices cannot be negative: {per_request} per request, {per_row} per row"
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for SandboxOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials are never printed, not even the sandbox's.
        f.debug_struct("SandboxOptions")
            .field("listen", &self.listen)
            .field("latency", &self.latency)
            .field("fault_rate", &self.fault_rate)
            .field("seed", &self.seed)
            .field("max_per_minute", &self.max_per_minute)
            .field("max_in_flight", &self.max_in_flight)
            .field("login", &self.login)
            .field("password", &"[REDACTED]")
            .field("token", &"[REDACTED]")
            .field("today", &self.today)
            .field("record_limit", &self.record_limit)
            .field("record_bytes", &self.record_bytes)
            .field("balance", &self.balance)
            .field("prices", &self.prices)
            .field("gateway", &self.gateway)
            .field("identify", &self.identify)
            .field("fixtures", &self.fixtures.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What the sandbox has seen so far.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Authorized POSTs to a known endpoint, whatever their answer.
    pub requests: u64,
    /// The sum of the costs charged.
    pub charged_usd: Usd,
    /// The most requests that were open at once.
    pub max_in_flight: usize,
    /// POSTs refused by the account limits (40202 per minute, 40209 in flight).
    pub throttled: u64,
    /// POSTs answered with an injected fault.
    pub faults: u64,
    /// Requests refused for their credentials (401).
    pub unauthorized: u64,
    pub by_endpoint: BTreeMap<String, u64>,
}

/// One counted request and the answer it got.
#[derive(Clone, Debug, Serialize)]
pub struct RequestRecord {
    pub endpoint: String,
    /// The JSON body as received; null when it did not parse.
    pub request: Value,
    pub http_status: u16,
    /// The JSON body sent; `None` for an HTML body or a dropped connection.
    pub response: Option<Value>,
    pub cost: Usd,
}

/// The API's price of a live Backlinks call: $0.02 per request plus $0.00003 per row.
pub fn price(rows: usize) -> Usd {
    let per_request = Decimal::new(2, 2);
    let per_row = Decimal::new(3, 5);
    Usd((per_request + per_row * Decimal::from(rows as u64)).normalize())
}

/// The API's list price as (per request, per returned row).
fn list_price() -> (Usd, Usd) {
    (price(0), price(1) - price(0))
}

/// A running sandbox server.
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Sandbox {
    /// Binds `opts.listen` and serves on a tokio task until [`Sandbox::stop`] or drop.
    #[instrument(skip_all, fields(listen = %opts.listen))]
    pub async fn start(opts: SandboxOptions) -> anyhow::Result<Sandbox> {
        opts.check().map_err(|e| anyhow::anyhow!("sandbox: {e}"))?;
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| anyhow::anyhow!("sandbox: cannot listen on {}: {e}", opts.listen))?;
        let addr = listener.local_addr()?;
        // Task ids differ between sandbox instances, like the API's never repeat.
        let nonce = xxhash_rust::xxh3::xxh3_64(
            format!("{addr}{:?}", std::time::SystemTime::now()).as_bytes(),
        ) & 0xff_ffff;
        let live_prefix = match &opts.gateway {
            Some(gateway) => gateway
                .path()
                .map_err(|e| anyhow::anyhow!("sandbox: {e}"))?,
            None => "/v3".to_string(),
        };
        let shared = Arc::new(Shared {
            live_prefix,
            state: Mutex::new(Inner {
                stats: Stats::default(),
                open: 0,
                window: VecDeque::new(),
                rng: StdRng::seed_from_u64(opts.seed),
                fault_rate: opts.fault_rate,
                today: opts.today,
                records: VecDeque::new(),
                record_bytes: 0,
                tasks: 0,
            }),
            nonce,
            opts,
        });
        let app = router(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        tracing::info!(%addr, "sandbox listening");
        Ok(Sandbox {
            addr,
            shared,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to configure a client with: `http://127.0.0.1:PORT/v3`, or in
    /// gateway mode `http://127.0.0.1:PORT{prefix}` (`…/apis/v1/dataforseo`).
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.shared.live_prefix)
    }

    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// The account and how the sandbox shows itself, for people: "balance $100.00,
    /// $0.02 per request + $0.00003 per row, answers marked x-linkledger-sandbox: 1".
    pub fn describe(&self) -> String {
        let (per_request, per_row) = self.shared.rate();
        let account = if self.shared.opts.gateway.is_some() {
            "no user_data".to_string()
        } else {
            format!("balance {}", self.balance())
        };
        let mark = if self.shared.opts.identify {
            format!("answers marked {SANDBOX_HEADER}: 1")
        } else {
            "passes for the real API (no sandbox header)".to_string()
        };
        format!("{account}, {per_request} per request + {per_row} per row, {mark}")
    }

    /// The balance `user_data` reports now: the starting balance less what was charged.
    pub fn balance(&self) -> Usd {
        self.shared.balance()
    }

    /// The most recent counted requests (at most [`SandboxOptions::record_limit`]),
    /// oldest first, in the order their answers were decided.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .lock()
            .records
            .iter()
            .map(|(r, _)| r.clone())
            .collect()
    }

    pub fn set_fault_rate(&self, rate: f64) {
        self.shared.lock().fault_rate = rate;
    }

    /// Moves the sandbox's "today" (a simulation running days in minutes).
    pub fn set_today(&self, today: NaiveDate) {
        self.shared.lock().today = Some(today);
    }

    /// Stops accepting, lets open requests finish, and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::warn!(error = %e, "sandbox task ended abnormally");
        }
    }

    /// Serves until the server task ends. Dropping the future shuts the server down.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        match self.task.take() {
            Some(task) => Ok(task.await??),
            None => Ok(()),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.addr).finish()
    }
}

// ---------------------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------------------

struct Shared {
    opts: SandboxOptions,
    /// What the live endpoints hang under: `/v3`, or the gateway's prefix.
    live_prefix: String,
    state: Mutex<Inner>,
    /// Mixed into task ids.
    nonce: u64,
}

struct Inner {
    stats: Stats,
    /// Requests open right now (authorized POSTs).
    open: usize,
    /// Start times of the POSTs accepted in the last minute.
    window: VecDeque<Instant>,
    rng: StdRng,
    fault_rate: f64,
    /// The sandbox's "today" (`SandboxOptions::today`, or moved by `set_today`).
    today: Option<NaiveDate>,
    /// The most recent records with their size in bytes, oldest first, at most
    /// `opts.record_limit` of them and `opts.record_bytes` together.
    records: VecDeque<(RequestRecord, usize)>,
    /// The bytes `records` hold.
    record_bytes: usize,
    /// Tasks answered so far, for task ids.
    tasks: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not take the sandbox down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The price list charged: (per request, per returned row).
    fn rate(&self) -> (Usd, Usd) {
        self.opts.prices.unwrap_or_else(list_price)
    }

    /// What a live call returning `rows` rows is charged.
    fn price(&self, rows: usize) -> Usd {
        let (per_request, per_row) = self.rate();
        Usd((per_request.decimal() + per_row.decimal() * Decimal::from(rows as u64)).normalize())
    }

    fn balance(&self) -> Usd {
        self.opts.balance - self.lock().stats.charged_usd
    }

    fn today(&self) -> NaiveDate {
        self.lock()
            .today
            .unwrap_or_else(|| chrono::Utc::now().date_naive())
    }

    /// HTTP Basic with the login and password (not at a gateway), or a Bearer token.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some((scheme, value)) = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
        else {
            return false;
        };
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("basic") && self.opts.gateway.is_none() {
            base64::engine::general_purpose::STANDARD
                .decode(value)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|pair| {
                    pair.split_once(':')
                        .map(|(l, p)| l == self.opts.login && p == self.opts.password)
                })
                .unwrap_or(false)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            value == self.opts.token
        } else {
            false
        }
    }

    /// The API's 401: counted as `unauthorized`, nothing else.
    fn unauthorized(&self) -> Response {
        self.lock().stats.unauthorized += 1;
        tracing::debug!("refused: not authorized");
        json_response(
            StatusCode::UNAUTHORIZED,
            &top_level(40100, MSG_UNAUTHORIZED, Duration::ZERO),
        )
    }

    /// Counts an authorized POST and applies the account limits: `Some` is the refusal.
    fn admit(&self, endpoint: Endpoint, open: usize) -> Option<(i64, &'static str)> {
        let mut st = self.lock();
        st.stats.requests += 1;
        *st.stats
            .by_endpoint
            .entry(endpoint.name().to_string())
            .or_default() += 1;
        if open > self.opts.max_in_flight {
            st.stats.throttled += 1;
            return Some((40209, MSG_IN_FLIGHT));
        }
        let now = Instant::now();
        while st
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            st.window.pop_front();
        }
        if st.window.len() >= self.opts.max_per_minute as usize {
            st.stats.throttled += 1;
            return Some((40202, MSG_PER_MINUTE));
        }
        st.window.push_back(now);
        None
    }

    /// Draws whether this POST gets a fault, and which.
    fn roll_fault(&self) -> Option<Fault> {
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

    fn next_task_id(&self) -> String {
        let mut st = self.lock();
        st.tasks += 1;
        format!(
            "11251229-1535-0357-0000-{:012x}",
            (self.nonce << 24) | (st.tasks & 0xff_ffff)
        )
    }

    /// Counts the charge and logs the exchange; `response_len` is the size of the
    /// response body as sent.
    fn record(
        &self,
        endpoint: Endpoint,
        request: &Option<Value>,
        status: StatusCode,
        response: Option<&Value>,
        cost: Usd,
        response_len: usize,
    ) {
        let limit = self.opts.record_limit;
        // Built before taking the lock: the bodies can be large.
        let record = (limit > 0).then(|| {
            let request_len = request
                .as_ref()
                .map_or(0, |r| serde_json::to_vec(r).map_or(0, |v| v.len()));
            (
                RequestRecord {
                    endpoint: endpoint.name().to_string(),
                    request: request.clone().unwrap_or(Value::Null),
                    http_status: status.as_u16(),
                    response: response.cloned(),
                    cost,
                },
                request_len + response_len,
            )
        });
        let mut st = self.lock();
        st.stats.charged_usd += cost;
        if let Some((record, size)) = record {
            while !st.records.is_empty()
                && (st.records.len() >= limit || st.record_bytes + size > self.opts.record_bytes)
            {
                if let Some((_, dropped)) = st.records.pop_front() {
                    st.record_bytes -= dropped;
                }
            }
            st.record_bytes += size;
            st.records.push_back((record, size));
        }
    }

    /// Records a JSON answer and sends it.
    fn answer(
        &self,
        endpoint: Endpoint,
        request: &Option<Value>,
        status: StatusCode,
        body: Value,
        cost: Usd,
    ) -> Response {
        let text = body.to_string();
        self.record(endpoint, request, status, Some(&body), cost, text.len());
        json_text(status, text)
    }
}

/// Holds one in-flight slot; gives it back when the request ends, however it ends.
struct Slot(Arc<Shared>);

impl Slot {
    fn enter(shared: &Arc<Shared>) -> (Slot, usize) {
        let mut st = shared.lock();
        st.open += 1;
        let open = st.open;
        st.stats.max_in_flight = st.stats.max_in_flight.max(open);
        (Slot(shared.clone()), open)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.open = st.open.saturating_sub(1);
    }
}

#[derive(Clone, Copy, Debug)]
enum Fault {
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

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

fn router(shared: Arc<Shared>) -> Router {
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

fn json_response(status: StatusCode, body: &Value) -> Response {
    json_text(status, body.to_string())
}

fn json_text(status: StatusCode, text: String) -> Response {
    (
        status,
        [(CONTENT_TYPE, "application/json; charset=utf-8")],
        text,
    )
        .into_response()
}

fn html_response(status: StatusCode, body: &'static str) -> Response {
    (status, [(CONTENT_TYPE, "text/html")], body).into_response()
}

fn seconds(d: Duration) -> String {
    format!("{:.4} sec.", d.as_secs_f64())
}

/// An envelope without tasks: refusals before any task was looked at.
fn top_level(code: i64, message: &str, elapsed: Duration) -> Value {
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
fn with_task(task: Value, elapsed: Duration) -> Value {
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
fn echo(api: &str, function: &str, task: Option<&Value>) -> Value {
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

struct TaskAnswer<'a> {
    id: String,
    code: i64,
    message: &'a str,
    cost: Usd,
    path: &'a [&'a str],
    data: Value,
    result: Option<Value>,
}

fn task_json(t: TaskAnswer<'_>, elapsed: Duration) -> Value {
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
    let backlinks: Map<String, Value> = Endpoint::ALL
        .iter()
        .map(|e| (e.name().to_string(), live_price.clone()))
        .collect();
    let result = json!([{
        "login": shared.opts.login,
        "timezone": "UTC",
        "rates": {"limits": {"minute": {"total": shared.opts.max_per_minute}}},
        "money": {
            "total": shared.opts.balance,
            "balance": shared.balance(),
            "limits": {"day": {"total": 0}},
        },
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
        return match fault {
            Fault::Http500 => {
                shared.record(
                    endpoint,
                    &request,
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
                    &request,
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
                shared.answer(endpoint, &request, StatusCode::OK, body, Usd::ZERO)
            }
            Fault::Throttle => {
                let body = top_level(40202, MSG_PER_MINUTE, started.elapsed());
                shared.answer(endpoint, &request, StatusCode::OK, body, Usd::ZERO)
            }
            Fault::Drop => {
                shared.record(endpoint, &request, StatusCode::OK, None, Usd::ZERO, 0);
                dropped_connection()
            }
        };
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
    shared.answer(endpoint, &request, StatusCode::OK, body, cost)
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn price_of_3_rows_is_exactly_2009_hundred_thousandths_of_a_dollar() {
        assert_eq!(price(3), "0.02009".parse::<Usd>().unwrap());
        assert_eq!(price(3).to_string(), "$0.02009");
        assert_eq!(price(0), "0.02".parse::<Usd>().unwrap());
    }

    #[test]
    fn options_never_show_their_credentials() {
        let text = format!("{:?}", SandboxOptions::default());
        assert!(!text.contains("sandbox-token"), "{text}");
        assert!(text.contains("REDACTED"));
    }

    /// One HTTP/1.1 exchange over a raw TCP connection: (status, body).
    async fn http(
        addr: SocketAddr,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        let (status, _, body) = exchange(addr, method, path, auth, body).await;
        (status, body)
    }

    /// The value of the response header `name` in a raw response head.
    fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
        head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// One HTTP/1.1 exchange over a raw TCP connection: (status, head, body).
    async fn exchange(
        addr: SocketAddr,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: &str,
    ) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw).to_string();
        let Some((head, rest)) = text.split_once("\r\n\r\n") else {
            return (0, text, String::new());
        };
        let status = head[9..12].parse().unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        (status, head.to_string(), body)
    }

    fn dechunk(mut s: &str) -> String {
        let mut out = String::new();
        while let Some((size, rest)) = s.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            // A dropped connection leaves the last chunk short.
            let Some(chunk) = rest.get(..n) else {
                out.push_str(rest);
                break;
            };
            out.push_str(chunk);
            s = rest.get(n + 2..).unwrap_or("");
        }
        out
    }

    fn basic(login: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"))
        )
    }

    #[tokio::test]
    async fn bad_credentials_get_a_401_and_a_summary_is_answered_and_counted() {
        let sb = Sandbox::start(SandboxOptions {
            today: NaiveDate::from_ymd_opt(2025, 6, 15),
            ..SandboxOptions::default()
        })
        .await
        .unwrap();
        assert!(sb.base_url().starts_with("http://127.0.0.1:"));
        assert!(sb.base_url().ends_with("/v3"));
        let addr = sb.addr();
        let task = r#"[{"target":"example.com","tag":"t1"}]"#;

        let (status, body) = http(
            addr,
            "POST",
            "/v3/backlinks/summary/live",
            Some(&basic("sandbox", "wrong")),
            task,
        )
        .await;
        assert_eq!(status, 401);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status_code"], 40100);
        let (status, _) = http(addr, "GET", "/v3/appendix/user_data", None, "").await;
        assert_eq!(status, 401);
        assert_eq!(sb.stats().unauthorized, 2);
        assert_eq!(sb.stats().requests, 0);

        let (status, body) = http(
            addr,
            "POST",
            "/v3/backlinks/summary/live",
            Some(&basic("sandbox", "sandbox")),
            task,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status_code"], 20000);
        assert_eq!(v["tasks_count"], 1);
        assert_eq!(v["tasks_error"], 0);
        let t = &v["tasks"][0];
        assert_eq!(t["status_code"], 20000);
        assert_eq!(t["path"], json!(["v3", "backlinks", "summary", "live"]));
        assert_eq!(t["data"]["function"], "summary");
        assert_eq!(t["data"]["tag"], "t1");
        assert_eq!(t["result"][0]["target"], "example.com");
        assert_eq!(Usd::from_json(&v["cost"]), Some(price(1)));

        let (status, body) = http(
            addr,
            "POST",
            "/v3/backlinks/bulk_ranks/live",
            Some("Bearer sandbox-token"),
            r#"[{"targets":["b.com","a.com"]}]"#,
        )
        .await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(Usd::from_json(&v["tasks"][0]["cost"]), Some(price(2)));

        let (status, body) = http(
            addr,
            "POST",
            "/v3/backlinks/summary/live",
            Some("Bearer sandbox-token"),
            r#"[{"target":"a.com","x":1}]"#,
        )
        .await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status_code"], 20000);
        assert_eq!(v["tasks_error"], 1);
        assert_eq!(v["tasks"][0]["status_code"], 40501);
        assert_eq!(v["tasks"][0]["status_message"], "Invalid Field: 'x'.");
        assert!(v["tasks"][0]["result"].is_null());

        let (status, body) = http(
            addr,
            "POST",
            "/v3/backlinks/no_such/live",
            Some("Bearer sandbox-token"),
            "[]",
        )
        .await;
        assert_eq!(status, 404);
        assert!(body.contains("40400"));

        let (status, body) = http(
            addr,
            "GET",
            "/v3/appendix/user_data",
            Some("Bearer sandbox-token"),
            "",
        )
        .await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["tasks"][0]["result"][0]["login"], "sandbox");
        assert_eq!(v["cost"], 0);

        let stats = sb.stats();
        assert_eq!(stats.requests, 3, "{stats:?}");
        assert_eq!(stats.by_endpoint.get("summary"), Some(&2));
        assert_eq!(stats.charged_usd, price(1) + price(2));
        assert_eq!(stats.max_in_flight, 1);
        let records = sb.requests();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].request[0]["tag"], "t1");
        assert_eq!(records[0].cost, price(1));
        assert_eq!(records[2].cost, Usd::ZERO);

        let (status, body) = http(addr, "GET", "/sandbox/stats", None, "").await;
        assert_eq!(status, 200);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["requests"], 3);
        sb.stop().await;
    }

    #[tokio::test]
    async fn faults_are_counted_cost_nothing_and_break_the_answer() {
        let sb = Sandbox::start(SandboxOptions {
            fault_rate: 1.0,
            seed: 3,
            ..SandboxOptions::default()
        })
        .await
        .unwrap();
        let auth = basic("sandbox", "sandbox");
        let mut answers = Vec::new();
        for _ in 0..20 {
            answers.push(
                http(
                    sb.addr(),
                    "POST",
                    "/v3/backlinks/bulk_backlinks/live",
                    Some(&auth),
                    r#"[{"targets":["a.com"]}]"#,
                )
                .await,
            );
        }
        // The dropped connection: a 200 whose body breaks off.
        assert!(
            answers.iter().any(
                |(status, body)| *status == 200 && serde_json::from_str::<Value>(body).is_err()
            ),
            "{answers:?}"
        );
        let stats = sb.stats();
        assert_eq!(stats.faults, 20);
        assert_eq!(stats.throttled, 0);
        assert_eq!(stats.charged_usd, Usd::ZERO);
        let statuses: std::collections::BTreeSet<u16> =
            sb.requests().iter().map(|r| r.http_status).collect();
        assert!(statuses.contains(&500) && statuses.contains(&502) && statuses.contains(&200));
        sb.set_fault_rate(0.0);
        let (status, _) = http(
            sb.addr(),
            "POST",
            "/v3/backlinks/bulk_backlinks/live",
            Some(&auth),
            r#"[{"targets":["a.com"]}]"#,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(sb.stats().charged_usd, price(1));
        sb.stop().await;
    }

    #[tokio::test]
    async fn the_account_limits_answer_40209_and_40202() {
        let sb = Sandbox::start(SandboxOptions {
            latency: Duration::from_millis(200),
            max_in_flight: 1,
            max_per_minute: 2,
            ..SandboxOptions::default()
        })
        .await
        .unwrap();
        let auth = basic("sandbox", "sandbox");
        let task = r#"[{"target":"a.com"}]"#;
        let addr = sb.addr();
        let (a, b) = tokio::join!(
            http(
                addr,
                "POST",
                "/v3/backlinks/summary/live",
                Some(&auth),
                task
            ),
            async {
                // Sent once the first request is open (and held by the latency).
                let deadline = Instant::now() + Duration::from_secs(5);
                while sb.stats().max_in_flight < 1 {
                    assert!(Instant::now() < deadline, "the first request never arrived");
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                http(
                    addr,
                    "POST",
                    "/v3/backlinks/summary/live",
                    Some(&auth),
                    task,
                )
                .await
            }
        );
        assert_eq!(a.0, 200);
        assert!(a.1.contains("\"status_code\":20000"));
        assert!(b.1.contains("40209"), "{}", b.1);
        let _ = http(
            addr,
            "POST",
            "/v3/backlinks/summary/live",
            Some(&auth),
            task,
        )
        .await;
        let (_, third) = http(
            addr,
            "POST",
            "/v3/backlinks/summary/live",
            Some(&auth),
            task,
        )
        .await;
        assert!(third.contains("40202"), "{third}");
        let stats = sb.stats();
        assert_eq!(stats.throttled, 2);
        assert_eq!(stats.requests, 4);
        sb.stop().await;
    }

    #[tokio::test]
    async fn only_the_most_recent_requests_are_kept_but_all_are_counted() {
        let sb = Sandbox::start(SandboxOptions {
            record_limit: 5,
            ..SandboxOptions::default()
        })
        .await
        .unwrap();
        let auth = basic("sandbox", "sandbox");
        for i in 0..8 {
            let (status, _) = http(
                sb.addr(),
                "POST",
                "/v3/backlinks/summary/live",
                Some(&auth),
                &format!(r#"[{{"target":"site{i}.com","tag":"r{i}"}}]"#),
            )
            .await;
            assert_eq!(status, 200);
        }
        let stats = sb.stats();
        assert_eq!(stats.requests, 8);
        assert_eq!(stats.charged_usd, price(1) * 8);
        let tags = |records: &[Value]| -> Vec<String> {
            records
                .iter()
                .map(|r| r["request"][0]["tag"].as_str().unwrap().to_string())
                .collect()
        };
        let kept: Vec<Value> = sb.requests().iter().map(|r| json!(r)).collect();
        assert_eq!(kept.len(), 5);
        assert_eq!(tags(&kept), ["r3", "r4", "r5", "r6", "r7"]);
        assert_eq!(
            kept[4]["response"]["tasks"][0]["result"][0]["target"],
            "site7.com"
        );

        let (status, body) = http(sb.addr(), "GET", "/sandbox/requests", None, "").await;
        assert_eq!(status, 200);
        let served: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(tags(&served), ["r3", "r4", "r5", "r6", "r7"]);
        sb.stop().await;
    }

    #[tokio::test]
    async fn the_log_keeps_no_more_bytes_than_its_limit_and_always_the_newest_request() {
        const LIMIT: usize = 20_000;
        let sb = Sandbox::start(SandboxOptions {
            record_bytes: LIMIT,
            ..SandboxOptions::default()
        })
        .await
        .unwrap();
        let auth = basic("sandbox", "sandbox");
        let size = |records: &[RequestRecord]| -> usize {
            records
                .iter()
                .map(|r| {
                    serde_json::to_vec(&r.request).unwrap().len()
                        + r.response.as_ref().map_or(0, |b| b.to_string().len())
                })
                .sum()
        };
        let summary = |i: usize| format!(r#"[{{"target":"site{i}.com","tag":"s{i}"}}]"#);
        for i in 0..3 {
            http(
                sb.addr(),
                "POST",
                "/v3/backlinks/summary/live",
                Some(&auth),
                &summary(i),
            )
            .await;
        }
        let small = sb.requests();
        assert_eq!(small.len(), 3, "small answers fit");
        // A bulk answer for 1000 targets alone is larger than the limit: it is kept
        // (the newest always is), and everything before it goes.
        let targets: Vec<String> = (0..1000).map(|i| format!("\"b{i}.com\"")).collect();
        let bulk = format!(r#"[{{"targets":[{}],"tag":"bulk"}}]"#, targets.join(","));
        http(
            sb.addr(),
            "POST",
            "/v3/backlinks/bulk_ranks/live",
            Some(&auth),
            &bulk,
        )
        .await;
        let kept = sb.requests();
        assert!(
            size(&kept) > LIMIT,
            "the bulk answer is large: {}",
            size(&kept)
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].request[0]["tag"], "bulk");
        for i in 3..40 {
            http(
                sb.addr(),
                "POST",
                "/v3/backlinks/summary/live",
                Some(&auth),
                &summary(i),
            )
            .await;
        }
        let kept = sb.requests();
        assert!(
            size(&kept) <= LIMIT,
            "{} bytes in {} records",
            size(&kept),
            kept.len()
        );
        assert!(
            kept.len() < 37,
            "older records were dropped: {}",
            kept.len()
        );
        assert_eq!(kept.last().unwrap().request[0]["tag"], "s39");
        assert_eq!(sb.stats().requests, 41, "every request is counted");
        sb.stop().await;
    }

    #[test]
    fn a_task_asks_for_a_mode_by_the_first_host_label_of_any_of_its_targets() {
        let mode = |task: Value| target_mode(&task);
        assert_eq!(mode(json!({"target": "example.com"})), None);
        assert_eq!(mode(json!({"target": "example.quirk-no-status.com"})), None);
        assert_eq!(
            mode(json!({"target": "https://www.Quirk-No-Status.example.com/page"})),
            Some(TargetMode::Envelope(EnvelopeQuirk::NoStatus))
        );
        assert_eq!(
            mode(
                json!({"targets": ["a.com", "quirk-result-object.b.com", "quirk-string-codes.c.com"]})
            ),
            Some(TargetMode::Envelope(EnvelopeQuirk::ResultObject))
        );
        assert_eq!(
            mode(json!({"targets": ["quirk-envelope-types.a.com", "quirk-no-funds.b.com"]})),
            Some(TargetMode::NoFunds)
        );
    }

    const BULK: &str = "/v3/backlinks/bulk_backlinks/live";
    const SUMMARY: &str = "/v3/backlinks/summary/live";

    /// A sandbox with a fixed "today", so that results can be compared.
    async fn dated_sandbox() -> Sandbox {
        Sandbox::start(SandboxOptions {
            today: NaiveDate::from_ymd_opt(2025, 6, 15),
            ..SandboxOptions::default()
        })
        .await
        .unwrap()
    }

    /// POSTs `body` and returns the JSON served, after checking that the sandbox
    /// recorded exactly that and charged `charge` for it, in the record and the stats.
    async fn served_and_charged(sb: &Sandbox, path: &str, body: &str, charge: Usd) -> Value {
        let before = sb.stats().charged_usd;
        let (status, text) =
            http(sb.addr(), "POST", path, Some("Bearer sandbox-token"), body).await;
        assert_eq!(status, 200, "{text}");
        let served: Value = serde_json::from_str(&text).unwrap();
        let record = sb.requests().pop().unwrap();
        assert_eq!(record.response.as_ref(), Some(&served));
        assert_eq!(record.cost, charge, "{text}");
        assert_eq!(sb.stats().charged_usd - before, charge, "{text}");
        served
    }

    /// Three targets, three billed rows, led by `first`.
    fn bulk_task(first: &str) -> String {
        format!(r#"[{{"targets":["{first}","b.com","c.com"]}}]"#)
    }

    #[tokio::test]
    async fn envelope_types_mode_retypes_the_fields_classification_ignores_and_charges_as_usual() {
        let sb = dated_sandbox().await;
        let plain = served_and_charged(&sb, BULK, &bulk_task("a.com"), price(3)).await;
        let v = served_and_charged(
            &sb,
            BULK,
            &bulk_task("quirk-envelope-types.example.com"),
            price(3),
        )
        .await;
        assert!(plain["time"].is_string() && plain["tasks_count"] == 1);

        assert!(v["time"].is_f64(), "{v}");
        assert_eq!(v["tasks_count"], "1");
        assert_eq!(v["tasks_error"], "0");
        assert_eq!(v["status_code"], 20000);
        assert_eq!(Usd::from_json(&v["cost"]), Some(price(3)));
        assert!(v["cost"].is_number());
        let t = &v["tasks"][0];
        assert!(t["id"].is_u64(), "{t}");
        assert!(t["time"].is_f64(), "{t}");
        assert_eq!(t["result_count"], "1");
        assert_eq!(t["path"], "v3/backlinks/bulk_backlinks/live");
        assert_eq!(t["status_code"], 20000);
        assert_eq!(t["status_message"], "Ok.");
        assert!(t["cost"].is_number());
        assert_eq!(Usd::from_json(&t["cost"]), Some(price(3)));
        assert_eq!(t["result"].as_array().unwrap().len(), 1);
        assert_eq!(t["result"][0]["items"].as_array().unwrap().len(), 3);
        sb.stop().await;
    }

    #[tokio::test]
    async fn string_codes_mode_sends_status_codes_and_costs_as_strings_and_charges_as_usual() {
        let sb = dated_sandbox().await;
        let v = served_and_charged(
            &sb,
            BULK,
            &bulk_task("quirk-string-codes.example.com"),
            price(3),
        )
        .await;
        assert_eq!(v["status_code"], "20000", "{v}");
        assert_eq!(v["cost"], "0.02009");
        assert_eq!(v["status_message"], "Ok.");
        assert_eq!(v["tasks_count"], 1);
        assert!(v["time"].is_string());
        let t = &v["tasks"][0];
        assert_eq!(t["status_code"], "20000");
        assert_eq!(t["cost"], "0.02009");
        assert_eq!(t["result_count"], 1);
        assert_eq!(
            t["path"],
            json!(["v3", "backlinks", "bulk_backlinks", "live"])
        );
        assert!(t["id"].is_string());
        assert_eq!(t["result"][0]["items"].as_array().unwrap().len(), 3);
        sb.stop().await;
    }

    #[tokio::test]
    async fn result_object_mode_sends_the_result_without_its_array_and_charges_as_usual() {
        let sb = dated_sandbox().await;
        let target = "quirk-result-object.example.com";
        let v = served_and_charged(
            &sb,
            SUMMARY,
            &format!(r#"[{{"target":"{target}"}}]"#),
            price(1),
        )
        .await;
        let t = &v["tasks"][0];
        assert!(t["result"].is_object(), "{t}");
        let expected = data::build_result(
            Endpoint::Summary,
            &json!({"target": target}),
            NaiveDate::from_ymd_opt(2025, 6, 15).unwrap(),
        )
        .unwrap();
        assert_eq!(t["result"], expected[0]);
        assert_eq!(t["result"]["target"], target);
        assert_eq!(t["result_count"], 1);
        assert_eq!(t["status_code"], 20000);
        assert_eq!(v["status_code"], 20000);
        assert_eq!(Usd::from_json(&v["cost"]), Some(price(1)));

        let v = served_and_charged(
            &sb,
            BULK,
            &bulk_task("quirk-result-object.example.com"),
            price(3),
        )
        .await;
        let result = &v["tasks"][0]["result"];
        assert_eq!(result["items"].as_array().unwrap().len(), 3, "{result}");
        sb.stop().await;
    }

    #[tokio::test]
    async fn no_status_mode_sends_no_status_code_or_message_at_either_level_and_charges_as_usual() {
        let sb = dated_sandbox().await;
        let v = served_and_charged(
            &sb,
            BULK,
            &bulk_task("quirk-no-status.example.com"),
            price(3),
        )
        .await;
        let top = v.as_object().unwrap();
        let task = v["tasks"][0].as_object().unwrap();
        for key in ["status_code", "status_message"] {
            assert!(!top.contains_key(key), "{v}");
            assert!(!task.contains_key(key), "{v}");
        }
        assert_eq!(Usd::from_json(&v["cost"]), Some(price(3)));
        assert_eq!(Usd::from_json(&task["cost"]), Some(price(3)));
        assert_eq!(v["tasks_count"], 1);
        assert_eq!(task["result_count"], 1);
        assert_eq!(task["result"][0]["items"].as_array().unwrap().len(), 3);
        sb.stop().await;
    }

    /// Every kind of answer the sandbox gives, as (what, status, its sandbox header):
    /// live, 40501, bad JSON, 401, 404s, 405, user_data, the statistics and, with
    /// faults switched on, HTTP 500 and 502 and a dropped connection.
    async fn every_kind_of_answer(opts: SandboxOptions) -> Vec<(String, u16, Option<String>)> {
        let sb = Sandbox::start(SandboxOptions { seed: 3, ..opts })
            .await
            .unwrap();
        let auth = basic("sandbox", "sandbox");
        let asks: [(&str, &str, Option<&str>, &str); 10] = [
            ("POST", SUMMARY, Some(&auth), r#"[{"target":"a.com"}]"#),
            (
                "POST",
                SUMMARY,
                Some(&auth),
                r#"[{"target":"a.com","x":1}]"#,
            ),
            ("POST", SUMMARY, Some(&auth), "[{"),
            ("POST", SUMMARY, Some("Bearer wrong"), "[]"),
            ("GET", "/v3/appendix/user_data", Some(&auth), ""),
            ("POST", "/v3/backlinks/no_such/live", Some(&auth), "[]"),
            ("GET", "/nowhere", None, ""),
            ("GET", SUMMARY, Some(&auth), ""),
            ("GET", "/sandbox/stats", None, ""),
            ("GET", "/sandbox/requests", None, ""),
        ];
        let mut seen = Vec::new();
        for (method, path, auth, body) in asks {
            let (status, head, _) = exchange(sb.addr(), method, path, auth, body).await;
            seen.push((
                format!("{method} {path}"),
                status,
                header(&head, SANDBOX_HEADER).map(str::to_string),
            ));
        }
        sb.set_fault_rate(1.0);
        for i in 0..20 {
            let (status, head, body) =
                exchange(sb.addr(), "POST", BULK, Some(&auth), &bulk_task("a.com")).await;
            let what = if serde_json::from_str::<Value>(&body).is_err() && status == 200 {
                "dropped connection".to_string()
            } else {
                format!("fault {i}")
            };
            seen.push((
                what,
                status,
                header(&head, SANDBOX_HEADER).map(str::to_string),
            ));
        }
        sb.stop().await;
        seen
    }

    #[tokio::test]
    async fn every_answer_says_it_comes_from_the_sandbox_unless_it_is_to_pass_for_the_real_api() {
        let seen = every_kind_of_answer(SandboxOptions::default()).await;
        let statuses: std::collections::BTreeSet<u16> = seen.iter().map(|s| s.1).collect();
        for status in [200, 400, 401, 404, 405, 500, 502] {
            assert!(statuses.contains(&status), "no {status} in {seen:?}");
        }
        assert!(seen.iter().any(|s| s.0 == "dropped connection"), "{seen:?}");
        for (what, status, mark) in &seen {
            assert_eq!(mark.as_deref(), Some("1"), "{what} ({status})");
        }

        let seen = every_kind_of_answer(SandboxOptions {
            identify: false,
            ..SandboxOptions::default()
        })
        .await;
        assert_eq!(seen.len(), 30);
        for (what, status, mark) in &seen {
            assert_eq!(mark, &None, "{what} ({status})");
        }
    }

    /// `GET /v3/appendix/user_data` read the way the daemon reads it.
    async fn account(sb: &Sandbox) -> (crate::api::account::Account, Value) {
        let (status, body) = http(
            sb.addr(),
            "GET",
            "/v3/appendix/user_data",
            Some("Bearer sandbox-token"),
            "",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        (crate::api::account::Account::read(&v), v)
    }

    fn usd(s: &str) -> Usd {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn the_balance_user_data_reports_falls_by_what_was_charged_and_the_client_reads_it() {
        use crate::api::prices::Rate;
        let sb = dated_sandbox().await;
        let (before, v) = account(&sb).await;
        assert_eq!(before.balance, Some(usd("100")));
        let money = &v["tasks"][0]["result"][0]["money"];
        assert_eq!(Usd::from_json(&money["total"]), Some(usd("100")));
        assert_eq!(before.prices.len(), Endpoint::ALL.len());
        for e in Endpoint::ALL {
            assert_eq!(before.prices.get(&e), Some(&Rate::LIST), "{e:?}");
        }
        assert_eq!(v["cost"], 0);

        served_and_charged(&sb, SUMMARY, r#"[{"target":"a.com"}]"#, price(1)).await;
        served_and_charged(&sb, BULK, &bulk_task("a.com"), price(3)).await;
        // A bad request is not charged, so it costs the balance nothing.
        served_and_charged(&sb, SUMMARY, r#"[{"target":"a.com","x":1}]"#, Usd::ZERO).await;

        let (after, v) = account(&sb).await;
        let left = usd("100") - price(1) - price(3);
        assert_eq!(left, usd("99.95988"));
        assert_eq!(after.balance, Some(left));
        assert_eq!(sb.balance(), left);
        assert_eq!(
            sb.describe(),
            "balance $99.95988, $0.02 per request + $0.00003 per row, \
             answers marked x-linkledger-sandbox: 1"
        );
        let money = &v["tasks"][0]["result"][0]["money"];
        assert_eq!(Usd::from_json(&money["total"]), Some(usd("100")));
        assert_eq!(after.prices, before.prices);
        assert_eq!(sb.stats().requests, 3, "user_data is not counted");
        sb.stop().await;
    }

    #[tokio::test]
    async fn an_account_with_its_own_price_list_and_balance_is_served_and_charged_by_it() {
        use crate::api::prices::Rate;
        let rate = Rate {
            per_request: usd("0.05"),
            per_row: usd("0.0001"),
        };
        let sb = Sandbox::start(SandboxOptions {
            today: NaiveDate::from_ymd_opt(2025, 6, 15),
            balance: usd("1"),
            prices: Some((rate.per_request, rate.per_row)),
            ..SandboxOptions::default()
        })
        .await
        .unwrap();
        let (before, _) = account(&sb).await;
        assert_eq!(before.balance, Some(usd("1")));
        for e in Endpoint::ALL {
            assert_eq!(before.prices.get(&e), Some(&rate), "{e:?}");
        }

        let v = served_and_charged(&sb, BULK, &bulk_task("a.com"), usd("0.0503")).await;
        assert_eq!(Usd::from_json(&v["cost"]), Some(usd("0.0503")));
        assert_eq!(Usd::from_json(&v["tasks"][0]["cost"]), Some(rate.price(3)));
        served_and_charged(&sb, SUMMARY, r#"[{"target":"a.com"}]"#, rate.price(1)).await;

        let (after, _) = account(&sb).await;
        assert_eq!(after.balance, Some(usd("0.8996")));
        assert_eq!(sb.stats().charged_usd, usd("0.1004"));
        sb.stop().await;
    }

    #[tokio::test]
    async fn a_negative_price_is_refused_before_the_sandbox_starts() {
        let opts = SandboxOptions {
            prices: Some((usd("0.02"), usd("-0.001"))),
            ..SandboxOptions::default()
        };
        assert!(opts.check().unwrap_err().contains("negative"));
        let e = Sandbox::start(opts).await.unwrap_err();
        assert!(e.to_string().contains("negative"), "{e}");
        assert!(SandboxOptions::default().check().is_ok());
    }

    const GATEWAY: &str = "/apis/v1/dataforseo";

    /// A dated sandbox serving as a gateway under [`GATEWAY`].
    async fn gateway_sandbox() -> Sandbox {
        Sandbox::start(SandboxOptions {
            today: NaiveDate::from_ymd_opt(2025, 6, 15),
            gateway: Some(GatewayOptions {
                prefix: GATEWAY.into(),
            }),
            ..SandboxOptions::default()
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_gateway_serves_under_its_prefix_takes_a_bare_object_and_passes_the_cost_through() {
        let sb = gateway_sandbox().await;
        assert_eq!(sb.base_url(), format!("http://{}{GATEWAY}", sb.addr()));
        assert!(
            sb.describe().starts_with("no user_data, "),
            "{}",
            sb.describe()
        );
        let history = format!("{GATEWAY}/backlinks/history/live");
        let task = r#"{"target":"example.com","date_from":"2025-01-01","tag":"h1"}"#;
        // January to June: six monthly rows.
        let v = served_and_charged(&sb, &history, task, price(6)).await;
        assert_eq!(v["status_code"], 20000, "{v}");
        assert_eq!(Usd::from_json(&v["cost"]), Some(price(6)));
        let t = &v["tasks"][0];
        assert_eq!(t["status_code"], 20000);
        assert_eq!(Usd::from_json(&t["cost"]), Some(price(6)));
        assert_eq!(t["path"], json!(["v3", "backlinks", "history", "live"]));
        assert_eq!(t["data"]["tag"], "h1");
        assert_eq!(t["result"][0]["target"], "example.com");
        assert_eq!(t["result"][0]["items"].as_array().unwrap().len(), 6);
        assert_eq!(sb.requests().pop().unwrap().request["tag"], "h1");

        // The same task as an array of one is the same answer.
        let array = served_and_charged(&sb, &history, &format!("[{task}]"), price(6)).await;
        assert_eq!(array["tasks"][0]["result"], t["result"]);

        let summary = format!("{GATEWAY}/backlinks/summary/live");
        let v = served_and_charged(&sb, &summary, r#"{"target":"a.com","x":1}"#, Usd::ZERO).await;
        assert_eq!(v["tasks"][0]["status_code"], 40501);
        assert_eq!(v["tasks"][0]["status_message"], "Invalid Field: 'x'.");
        let v = served_and_charged(
            &sb,
            &summary,
            r#"[{"target":"a.com"},{"target":"b.com"}]"#,
            Usd::ZERO,
        )
        .await;
        assert_eq!(v["status_code"], 40000, "{v}");
        let v = served_and_charged(&sb, &summary, r#""a.com""#, Usd::ZERO).await;
        assert_eq!(v["status_code"], 40000, "{v}");

        let stats = sb.stats();
        assert_eq!(stats.requests, 5);
        assert_eq!(stats.by_endpoint.get("history"), Some(&2));
        assert_eq!(stats.by_endpoint.get("summary"), Some(&3));
        assert_eq!(stats.charged_usd, price(6) * 2);
        sb.stop().await;
    }

    #[tokio::test]
    async fn a_gateway_serves_nothing_under_v3_no_user_data_and_takes_only_a_bearer_token() {
        let sb = gateway_sandbox().await;
        let bearer = Some("Bearer sandbox-token");
        let task = r#"{"target":"a.com"}"#;
        for path in [
            SUMMARY.to_string(),
            "/v3/appendix/user_data".to_string(),
            format!("{GATEWAY}/appendix/user_data"),
        ] {
            let method = if path.contains("user_data") {
                "GET"
            } else {
                "POST"
            };
            let (status, body) = http(sb.addr(), method, &path, bearer, task).await;
            assert_eq!(status, 404, "{path}: {body}");
        }
        let summary = format!("{GATEWAY}/backlinks/summary/live");
        let (status, _) = http(
            sb.addr(),
            "POST",
            &summary,
            Some(&basic("sandbox", "sandbox")),
            task,
        )
        .await;
        assert_eq!(status, 401, "a gateway takes no login and password");
        let (status, _) = http(sb.addr(), "POST", &summary, bearer, task).await;
        assert_eq!(status, 200);
        let stats = sb.stats();
        assert_eq!((stats.requests, stats.unauthorized), (1, 1));
        sb.stop().await;

        // The API itself takes no bare object.
        let sb = dated_sandbox().await;
        let v = served_and_charged(&sb, SUMMARY, task, Usd::ZERO).await;
        assert_eq!(v["status_code"], 40000, "{v}");
        assert_eq!(v["status_message"], MSG_ONE_TASK);
        sb.stop().await;
    }

    #[tokio::test]
    async fn a_gateway_prefix_is_read_with_or_without_slashes_and_a_malformed_one_is_refused() {
        let path = |p: &str| GatewayOptions { prefix: p.into() }.path();
        assert_eq!(path("/apis/v1/dataforseo").unwrap(), "/apis/v1/dataforseo");
        assert_eq!(path("apis/v1/dataforseo/").unwrap(), "/apis/v1/dataforseo");
        assert_eq!(path("/").unwrap(), "");
        for bad in ["/a//b", "/a/{name}", "/a b", "/a/../b", "/*rest", "/a?b=1"] {
            assert!(path(bad).is_err(), "{bad}");
        }

        let sb = Sandbox::start(SandboxOptions {
            gateway: Some(GatewayOptions {
                prefix: "gw/".into(),
            }),
            ..SandboxOptions::default()
        })
        .await
        .unwrap();
        assert_eq!(sb.base_url(), format!("http://{}/gw", sb.addr()));
        let (status, _) = http(
            sb.addr(),
            "POST",
            "/gw/backlinks/summary/live",
            Some("Bearer sandbox-token"),
            r#"{"target":"a.com"}"#,
        )
        .await;
        assert_eq!(status, 200);
        sb.stop().await;

        let e = Sandbox::start(SandboxOptions {
            gateway: Some(GatewayOptions {
                prefix: "/a/{name}".into(),
            }),
            ..SandboxOptions::default()
        })
        .await
        .unwrap_err();
        assert!(e.to_string().contains("gateway prefix"), "{e}");
    }
}
