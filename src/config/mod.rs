//! Configuration, layered with figment: built-in defaults, then the config file
//! (`--config PATH`, else `LINKLEDGER_CONFIG`, else `config/linkledger.toml` if present),
//! then the ecosystem's variables (`DATABASE_URL`, `DATAFORSEO_LOGIN`,
//! `DATAFORSEO_PASSWORD`, `DATAFORSEO_TOKEN`), then `LINKLEDGER_<SECTION>__<KEY>`.
//! Environment values are strings as written; a numeric setting reads its string as a
//! number.
//!
//! Secrets are `SecretString`: their `Debug` prints `[REDACTED]`, and errors about
//! them never echo the value.
//!
//! The settings and their defaults are here; [`Config::load`] reads the layers
//! (`layers`), a problem is put in words (`problems`), `api.base_url` is checked
//! (`base_url`) and secrets are read and sent (`secrets`, [`Credentials`]).

mod base_url;
mod layers;
mod problems;
mod secrets;
mod sizes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::money::Usd;

pub use base_url::check_base_url;
pub use secrets::Credentials;

pub const DEFAULT_FILE: &str = "config/linkledger.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub budget: BudgetConfig,
    #[serde(default)]
    pub jobs: JobsConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub warehouse: WarehouseConfig,
    #[serde(default)]
    pub reconcile: ReconcileConfig,
}

/// The ledger checked against the account's own books (`appendix/user_data`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {
    /// A day whose account and ledger differ by more than this (USD, either way) after
    /// what can be explained is warned about (log, `/healthz`), and so is another
    /// consumer's spend of more than this in a day.
    #[serde(default = "default_reconcile_threshold")]
    pub threshold_usd: Usd,
    /// Another consumer's Backlinks requests: the account's count of the day
    /// (`rates.statistics.day`) beyond the ledger's requests by more than this is
    /// warned about too, whatever they cost.
    #[serde(default = "default_reconcile_threshold_requests")]
    pub threshold_requests: u32,
    /// How often the daemon samples the account's books (free); it also samples in
    /// the last minute of each UTC day, so the day's final figures are read.
    #[serde(default = "default_sample_every", with = "humantime_serde")]
    pub sample_every: Duration,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            threshold_usd: default_reconcile_threshold(),
            threshold_requests: default_reconcile_threshold_requests(),
            sample_every: default_sample_every(),
        }
    }
}

fn default_reconcile_threshold() -> Usd {
    Usd(rust_decimal::Decimal::new(5, 2))
}

fn default_reconcile_threshold_requests() -> u32 {
    10
}

fn default_sample_every() -> Duration {
    Duration::from_secs(600)
}

/// What the warehouse keeps.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseConfig {
    /// How long raw response bodies are kept (e.g. "400days"); unset keeps everything.
    /// Whole months of `raw_responses` older than the window are dropped; a body whose
    /// rows are not loaded is kept.
    #[serde(default, with = "humantime_serde::option")]
    pub raw_retention: Option<Duration>,
}

impl WarehouseConfig {
    /// The first UTC day whose raw bodies are kept on `today`, when a window is set.
    pub fn raw_keep_from(&self, today: chrono::NaiveDate) -> Option<chrono::NaiveDate> {
        let window = self.raw_retention?;
        let days = window.as_secs().div_ceil(86_400);
        Some(today - chrono::Days::new(days))
    }
}

/// How the daemon schedules and works the queue.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// How often the scheduler looks for due fires (and for edited job files).
    #[serde(default = "default_tick", with = "humantime_serde")]
    pub tick: Duration,
    /// How often an idle worker looks for due work.
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll: Duration,
    /// A claim lapses after this long unless its heartbeat renews it; a crashed
    /// worker's calls are retried after it.
    #[serde(default = "default_lease", with = "humantime_serde")]
    pub lease: Duration,
    /// On SIGTERM, how long calls in flight may take before they are abandoned.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Calls executed at once by this process (0: twice api.max_in_flight).
    #[serde(default)]
    pub workers: usize,
    /// How often a busy daemon logs one line of what it did (0: never).
    #[serde(default = "default_summary_every", with = "humantime_serde")]
    pub summary_every: Duration,
    /// Concurrent calls' writes of one kind go to the database together, one
    /// transaction and one commit per group (`false`: each call's alone).
    #[serde(default = "default_group")]
    pub group: bool,
    /// How long a group waits for more members once its first has come (at most
    /// 2 ms; 0: only those already waiting, the usual group commit).
    #[serde(default, with = "humantime_serde")]
    pub group_window: Duration,
    /// At most this many members in a group.
    #[serde(default = "default_group_max")]
    pub group_max: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            tick: default_tick(),
            poll: default_poll(),
            lease: default_lease(),
            shutdown_grace: default_grace(),
            workers: 0,
            summary_every: default_summary_every(),
            group: default_group(),
            group_window: Duration::ZERO,
            group_max: default_group_max(),
        }
    }
}

fn default_tick() -> Duration {
    Duration::from_secs(1)
}
fn default_poll() -> Duration {
    Duration::from_millis(250)
}
fn default_lease() -> Duration {
    Duration::from_secs(30)
}
fn default_group() -> bool {
    true
}
fn default_group_max() -> usize {
    32
}
fn default_summary_every() -> Duration {
    Duration::from_secs(60)
}
fn default_grace() -> Duration {
    // Long enough for any call in flight to get its answer (the API answers within
    // 120 s), so that stopping never drops an answer that was charged.
    SAFE_TIMEOUT
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://...`; when absent, commands that need a database fail with a clear
    /// message (only `demo` and the tests start a throwaway cluster).
    #[serde(default, deserialize_with = "secrets::secret_opt")]
    pub url: Option<SecretString>,
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// How long connecting may take before it fails, saying why.
    #[serde(default = "default_db_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            pool_size: default_pool_size(),
            connect_timeout: default_db_connect_timeout(),
        }
    }
}

/// How long connecting to the database may take by default (`database.connect_timeout`).
pub const DEFAULT_DB_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn default_db_connect_timeout() -> Duration {
    DEFAULT_DB_CONNECT_TIMEOUT
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// HTTP Basic with login and API password (api.dataforseo.com).
    #[default]
    Basic,
    /// `Authorization: Bearer <token>` (gateways).
    Bearer,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// An absolute http(s) URL with a host and no credentials (checked at load).
    #[serde(default = "default_base_url", deserialize_with = "base_url::http_url")]
    pub base_url: url::Url,
    #[serde(default)]
    pub auth: AuthKind,
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default, deserialize_with = "secrets::secret_opt")]
    pub password: Option<SecretString>,
    #[serde(default, deserialize_with = "secrets::secret_opt")]
    pub token: Option<SecretString>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    #[serde(default = "default_max_per_minute")]
    pub max_per_minute: u32,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_retry_base", with = "humantime_serde")]
    pub retry_base_delay: Duration,
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// How a task travels in the POST body: `array` (DataForSEO: a JSON array holding
    /// the one task) or `object` (gateways that take the bare task object).
    #[serde(default)]
    pub body: BodyShape,
    /// A gateway's flat price per call, USD: what the user pays, whatever cost the
    /// answer reports (kept beside it). Unset: the cost the API reports.
    #[serde(default)]
    pub price_per_call: Option<Usd>,
    /// The most of one answer's body held in memory and read, decompressed, in bytes
    /// (written `"64MiB"`, `"512KiB"`, `"1GiB"` or a number of bytes): a larger answer
    /// is streamed to storage as it arrives and kept unread (up to `max_kept`), its
    /// call ends `invalid_response` and is not bought again.
    #[serde(default = "default_max_answer", deserialize_with = "sizes::bytes")]
    pub max_answer: u64,
    /// The most of one answer's body received at all, decompressed: past it (a gzip
    /// bomb, a runaway answer) reading stops and nothing of it is kept. At most
    /// `"1023MiB"`: PostgreSQL holds at most 1 GB in one value.
    #[serde(default = "default_max_kept", deserialize_with = "sizes::kept")]
    pub max_kept: u64,
}

/// How a task travels in the POST body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyShape {
    /// `[{task}]`, as DataForSEO documents it.
    #[default]
    Array,
    /// `{task}`, as some gateways take it.
    Object,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            base_url: default_base_url(),
            auth: AuthKind::Basic,
            login: None,
            password: None,
            token: None,
            timeout: default_timeout(),
            connect_timeout: default_connect_timeout(),
            max_in_flight: default_max_in_flight(),
            max_per_minute: default_max_per_minute(),
            max_attempts: default_max_attempts(),
            retry_base_delay: default_retry_base(),
            retry_max_delay: default_retry_max(),
            body: BodyShape::Array,
            price_per_call: None,
            max_answer: default_max_answer(),
            max_kept: default_max_kept(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    pub daily_usd: Option<Usd>,
    pub monthly_usd: Option<Usd>,
    /// Whose spend the account's daily and monthly caps count: `ledger` (the
    /// default), what this database booked; `account`, also what the account reports
    /// others spent (each day's `money.statistics.day` beyond the ledger's answered
    /// calls), so that a cap is a cap on the account's money.
    #[serde(default)]
    pub scope: BudgetScope,
}

/// Whose spend the account's caps count (`budget.scope`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetScope {
    /// What this database booked.
    #[default]
    Ledger,
    /// The account's reported spend of the day: ours and other consumers'.
    Account,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    #[serde(default = "default_jobs_dir")]
    pub dir: PathBuf,
    /// `jobs check` warns about a collection one fire of which is estimated to cost
    /// more than this, USD.
    #[serde(default = "default_fire_cost_warning")]
    pub fire_cost_warning_usd: Usd,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            dir: default_jobs_dir(),
            fire_cost_warning_usd: default_fire_cost_warning(),
        }
    }
}

fn default_fire_cost_warning() -> Usd {
    Usd(rust_decimal::Decimal::TEN)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
        }
    }
}

fn default_pool_size() -> u32 {
    10
}
fn default_base_url() -> url::Url {
    url::Url::parse("https://api.dataforseo.com/v3").expect("valid default URL")
}
/// The API answers a live call within this long, or with 50401.
pub const API_ANSWERS_WITHIN: Duration = Duration::from_secs(120);
/// The shortest `api.timeout` that [`Config::warnings`] does not warn about: the API's
/// 120 s plus a margin for the network and the body.
pub const SAFE_TIMEOUT: Duration = Duration::from_secs(130);

/// Longer than the API takes to answer, so that no answer the API completed (and
/// charged) is given up on and paid again by the retry.
fn default_timeout() -> Duration {
    Duration::from_secs(180)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_in_flight() -> usize {
    30
}
fn default_max_per_minute() -> u32 {
    2000
}
fn default_max_attempts() -> u32 {
    8
}
/// 64 MiB: the largest Backlinks answer, 1,000 items of a few kB each, is a few MB.
fn default_max_answer() -> u64 {
    64 * 1024 * 1024
}
/// 512 MiB: a hundred times the largest Backlinks answer, half of what PostgreSQL
/// holds in one value.
fn default_max_kept() -> u64 {
    512 * 1024 * 1024
}
fn default_retry_base() -> Duration {
    Duration::from_millis(500)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(60)
}
fn default_jobs_dir() -> PathBuf {
    PathBuf::from("jobs")
}
fn default_listen() -> SocketAddr {
    "127.0.0.1:9187".parse().expect("valid default address")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    pub fn database_url(&self) -> Option<&SecretString> {
        self.database.url.as_ref()
    }

    /// Settings that load but are likely mistakes, one message per setting, each naming
    /// the key, its value and the risk. Empty when nothing looks wrong.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.api.timeout < SAFE_TIMEOUT {
            out.push(format!(
                "config: api.timeout = {} is under {}: the API may take up to {} s to answer \
                 a live call, so a shorter timeout can give up on an answer the API completed \
                 and charged, and the retry pays again",
                show_duration(self.api.timeout),
                show_duration(SAFE_TIMEOUT),
                API_ANSWERS_WITHIN.as_secs()
            ));
        }
        if self.queue.shutdown_grace < SAFE_TIMEOUT {
            out.push(format!(
                "config: queue.shutdown_grace = {} is under {}: a call in flight when the process \
                 is told to stop may take up to {} s to answer; one abandoned sooner was likely \
                 charged, its answer is lost, and the daemon buys it again after the restart",
                show_duration(self.queue.shutdown_grace),
                show_duration(SAFE_TIMEOUT),
                API_ANSWERS_WITHIN.as_secs()
            ));
        }
        if self.api.max_kept < self.api.max_answer {
            out.push(format!(
                "config: api.max_kept = {} is under api.max_answer = {}: answers over api.max_kept \
                 are not kept at all, so none is ever streamed to storage",
                self.api.max_kept, self.api.max_answer
            ));
        }
        out
    }
}

/// `60s` for whole seconds, else humantime's form (`1s 500ms`).
fn show_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        humantime::format_duration(d).to_string()
    }
}

#[cfg(test)]
mod tests;
