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
//! `money.statistics.day` and `minute` report what the account spent this UTC day
//! (the sandbox's today: the figures start again from zero when it changes) and this
//! minute: `total`, `total_backlinks` and `backlinks.<function>`, USD; they move with
//! every charge. `rates.statistics.day` and `minute` count the admitted requests the
//! same way; `rates.limits.minute.total` is [`SandboxOptions::max_per_minute`] (or
//! [`AccountLimits::rate_minute`]), `rates.limits.day.total` is
//! [`AccountLimits::rate_day`] (0: none; once the day's requests reach it, every
//! request is refused with 40202 until the day ends).
//! `money.limits.day` and `minute` are [`SandboxOptions::limits`] (0: none); once the
//! day's (or the minute's) spend reaches its limit, every call is refused with a
//! top-level 40203, not charged, until the day (the minute) ends.
//! [`Sandbox::other_consumer`] (or `POST /sandbox/other-consumer` with
//! `{"usd": 1.5, "requests": 20, "function": "summary"}`) says another consumer of the
//! same account spent some: it counts in the statistics and the balance, not in
//! [`Stats`], which is what this sandbox served.
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
//! The bad-day modes answer like the API on a bad day: the envelope and the schema are
//! normal and the answer is charged by the usual rule (per request plus per returned
//! row, so fewer items cost less); only the result's items change. They go by the
//! sandbox's today ([`SandboxOptions::today`], moved by [`Sandbox::set_today`]).
//! `items_count` (and the pages summary's `total_count`) counts the items sent, a
//! `null` one included, which is billed as a row like the others. Summary ignores them.
//!
//! - `quirk-missing-period` (history, both timeseries): of the periods the answer would
//!   hold, the one at index len/2 is left out, when there are at least two (a year of
//!   history lacks July).
//! - `quirk-empty` (history, both timeseries, the bulk endpoints): `items` is `[]`; a
//!   bulk answer leaves out that target's item only.
//! - `quirk-lag-N`, N from 1 to 31 without leading zeros (history, both timeseries):
//!   the index lags N days, items dated after today − N days are left out. History
//!   items are dated the first of their month, timeseries items the last day of their
//!   period (so a running month or week is never there).
//! - `quirk-revised` (history, both timeseries): items dated today − 7 days or later
//!   have their counts scaled by a factor drawn from the date and today, so the same
//!   request on another day gets other figures for them; older items are the same every
//!   day, and an item settles to its usual figures once it is older than that.
//! - `quirk-null-item` (history, both timeseries, the bulk endpoints): the second item
//!   (the first when there is only one) is JSON `null`; in a bulk answer, that target's
//!   item.
//! - `quirk-null-key` (history, both timeseries, the bulk endpoints): the same item has
//!   a null `date`; in a bulk answer that target's item has a null `target` (`url` for
//!   the pages summary, whose items name their target so).
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
//! - `quirk-cost-negative`, `quirk-cost-huge`, `quirk-cost-missing`: the `cost` the
//!   answer reports at both levels is `-5`, `1e300`, or absent; what is charged (and
//!   counted in the statistics) is the usual price.
//! - `quirk-body-truncated`, `quirk-body-nan`, `quirk-body-deep`,
//!   `quirk-body-surrogate`: the answer's text is cut in half, or starts with a field
//!   whose value is `NaN`, 200 arrays deep, or a lone surrogate (`"\ud800"`): not JSON;
//!   `quirk-body-nul`: a field holding a NUL character (`"\u0000"`), JSON that
//!   PostgreSQL's `jsonb` refuses; `quirk-body-gzip-bomb`: the answer and 1 GiB of
//!   spaces, sent gzip-compressed (about 1 MB); `quirk-body-huge`: the answer and 256
//!   MiB of spaces (valid JSON), gzip-compressed. Charged as usual.
//!
//! The envelope modes shape every answer built for the task, a 40501 included (its cost
//! 0); refusals decided before the task is read (401, 40202, 40209, 40210) and injected
//! faults are served as without them. Several envelope modes in one bulk task: the
//! first target's in request order wins.
//!
//! # Files
//!
//! This file holds the options and the [`Sandbox`] handle (start, stop, statistics);
//! `server` the routes and the handling of a live request, `envelope` the JSON
//! envelope and its messages, `state` the state the handlers share (counters, the
//! request log, task ids, prices), `admission` authentication and the account limits,
//! `faults` the injected faults, `modes` the target modes that shape the envelope, and
//! [`data`] the fake results and the target modes that change them.

pub mod data;

mod account;
mod admission;
mod envelope;
mod faults;
mod modes;
mod server;
mod state;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::instrument;

pub use account::{AccountLimits, OtherConsumer};
pub use data::build_result;

use crate::api::Endpoint;
use crate::money::Usd;
use server::router;
use state::{Inner, Shared};

/// The response header by which the sandbox says it is one (value `1`); see the
/// module doc, "Saying it is a sandbox".
pub const SANDBOX_HEADER: &str = "x-linkledger-sandbox";

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
    /// The account's own spending limits (`money.limits.day` / `minute`), none by
    /// default; see the module doc, "The account".
    pub limits: AccountLimits,
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
            limits: AccountLimits::default(),
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
            .field("limits", &self.limits)
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
    /// POSTs refused by the account limits (40202 per minute or day, 40209 in flight).
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
                book: Default::default(),
                limits: opts.limits,
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

    /// Another consumer of the account spent `other.usd` (and made `other.requests`
    /// requests) now: it counts in what `user_data` reports as spent today and this
    /// minute, and in the balance, never in [`Sandbox::stats`].
    pub fn other_consumer(&self, other: &OtherConsumer) {
        self.shared.other_consumer(other);
    }

    /// Sets the account's own spending limits (as its dashboard would).
    pub fn set_limits(&self, limits: AccountLimits) {
        self.shared.lock().limits = limits;
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

#[cfg(test)]
mod tests;
