//! Configuration, layered with figment: built-in defaults, then the config file
//! (`--config PATH`, else `LINKLEDGER_CONFIG`, else `config/linkledger.toml` if present),
//! then the ecosystem's variables (`DATABASE_URL`, `DATAFORSEO_LOGIN`,
//! `DATAFORSEO_PASSWORD`, `DATAFORSEO_TOKEN`), then `LINKLEDGER_<SECTION>__<KEY>`.
//! Environment values are strings as written; a numeric setting reads its string as a
//! number.
//!
//! Secrets are `SecretString`: their `Debug` prints `[REDACTED]`, and errors about
//! them never echo the value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::{Figment, Metadata, Profile, Provider};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

use crate::money::Usd;

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
    #[serde(default, deserialize_with = "secret_opt")]
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
    #[serde(default = "default_base_url", deserialize_with = "http_url")]
    pub base_url: url::Url,
    #[serde(default)]
    pub auth: AuthKind,
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default, deserialize_with = "secret_opt")]
    pub password: Option<SecretString>,
    #[serde(default, deserialize_with = "secret_opt")]
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
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    pub daily_usd: Option<Usd>,
    pub monthly_usd: Option<Usd>,
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

/// Deserializes a secret without ever putting its value into an error message.
fn secret_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    let v = Option::<String>::deserialize(d)
        .map_err(|_| serde::de::Error::custom("must be a string (value not shown)"))?;
    Ok(v.filter(|s| !s.is_empty()).map(SecretString::from))
}

/// Deserializes `api.base_url`: see [`check_base_url`].
fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    let raw = String::deserialize(d)?;
    check_base_url(&raw).map_err(serde::de::Error::custom)
}

/// An absolute `http` or `https` URL with a host, or why `raw` is not one. Messages show
/// the value with any password in it replaced by `***`. A URL carrying a login or
/// password is refused: the client sends credentials from `api.login`/`api.password`
/// or `api.token`, and a URL is printed in logs and `Debug` output.
pub fn check_base_url(raw: &str) -> Result<url::Url, String> {
    let shown = redact_userinfo(raw);
    let value = raw.trim();
    // `rest` (a URL without its scheme) with an http(s) scheme in front and without a
    // `user:password@` part, for a hint: http for this machine, else https.
    let with_scheme = |rest: &str| {
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let rest = match rest[..authority_end].rfind('@') {
            Some(at) => &rest[at + 1..],
            None => rest,
        };
        let local = ["localhost", "127.", "[::1]"]
            .iter()
            .any(|p| rest.starts_with(p));
        let scheme = if local { "http" } else { "https" };
        format!("{scheme}://{rest}")
    };
    let parsed = url::Url::parse(value);
    match parsed {
        Ok(url) if url.scheme() == "http" || url.scheme() == "https" => {
            if url.host_str().is_none_or(str::is_empty) {
                Err(format!(
                    "`{shown}` has no host; write one like {}",
                    default_base_url()
                ))
            } else if !url.username().is_empty() || url.password().is_some() {
                Err(format!(
                    "`{shown}` carries a login or password; put them in api.login and \
                     api.password (or api.token), not in the URL"
                ))
            } else {
                Ok(url)
            }
        }
        _ if value.is_empty() => Err(format!(
            "is empty; write an http(s) URL like {}",
            default_base_url()
        )),
        // `localhost:8089/v3` parses with the scheme `localhost`, `api.example.com/v3`
        // does not parse at all: both lack the scheme.
        _ if !value.contains("://") => Err(format!(
            "`{shown}` is not an http(s) URL; write the scheme, e.g. {}",
            with_scheme(value)
        )),
        Ok(url) => {
            let rest = &value[value.find("://").map_or(0, |i| i + 3)..];
            Err(format!(
                "`{shown}` is not an http(s) URL: its scheme is `{}`; write http:// or \
                 https://, e.g. {}",
                url.scheme(),
                with_scheme(rest)
            ))
        }
        Err(e) => Err(format!("`{shown}` is not an http(s) URL: {e}")),
    }
}

/// `raw` with the password of a `user:password@` part replaced by `***`. Works on text
/// that does not parse as a URL too.
fn redact_userinfo(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let authority_end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    let Some(at) = raw[start..authority_end].rfind('@').map(|i| start + i) else {
        return raw.to_string();
    };
    match raw[start..at].find(':').map(|i| start + i) {
        Some(colon) => format!("{}***{}", &raw[..=colon], &raw[at..]),
        None => raw.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    #[error("{0}")]
    Invalid(String),
}

/// Credentials as the client sends them.
#[derive(Clone)]
pub enum Credentials {
    Basic {
        login: String,
        password: SecretString,
    },
    Bearer {
        token: SecretString,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { login, .. } => f
                .debug_struct("Basic")
                .field("login", login)
                .field("password", &"[REDACTED]")
                .finish(),
            Credentials::Bearer { .. } => f
                .debug_struct("Bearer")
                .field("token", &"[REDACTED]")
                .finish(),
        }
    }
}

impl Credentials {
    /// The value of the `Authorization` header.
    pub fn header_value(&self) -> SecretString {
        use base64::Engine;
        match self {
            Credentials::Basic { login, password } => {
                let raw = format!("{login}:{}", password.expose_secret());
                SecretString::from(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ))
            }
            Credentials::Bearer { token } => {
                SecretString::from(format!("Bearer {}", token.expose_secret()))
            }
        }
    }
}

impl ApiConfig {
    pub fn credentials(&self) -> Result<Credentials, ConfigError> {
        match self.auth {
            AuthKind::Basic => match (&self.login, &self.password) {
                (Some(login), Some(password)) if !login.is_empty() => Ok(Credentials::Basic {
                    login: login.clone(),
                    password: password.clone(),
                }),
                _ => Err(ConfigError::Invalid(
                    "api: login and password are required for basic auth \
                     (set api.login/api.password or DATAFORSEO_LOGIN/DATAFORSEO_PASSWORD)"
                        .into(),
                )),
            },
            AuthKind::Bearer => match &self.token {
                Some(token) => Ok(Credentials::Bearer {
                    token: token.clone(),
                }),
                None => Err(ConfigError::Invalid(
                    "api: token is required for bearer auth (set api.token or DATAFORSEO_TOKEN)"
                        .into(),
                )),
            },
        }
    }
}

impl Config {
    /// Loads the layers. `file` is `--config`; without it `LINKLEDGER_CONFIG`, else the
    /// default file if it exists.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment (for tests). Every problem
    /// is reported, not only the first: one line each, `config: key: why (from
    /// where)`, naming the file or the environment variable that set the value.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let explicit = file
            .map(Path::to_path_buf)
            .or_else(|| lookup("LINKLEDGER_CONFIG").map(PathBuf::from));
        let mut problems = Vec::new();
        let mut layers = Vec::new();
        let path = match explicit {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Missing(path));
                }
                Some(path)
            }
            None => Path::new(DEFAULT_FILE)
                .exists()
                .then(|| PathBuf::from(DEFAULT_FILE)),
        };
        if let Some(path) = path {
            let toml = Toml::file(&path);
            match toml.data() {
                Ok(data) => layers.push(Layer {
                    metadata: toml.metadata(),
                    data,
                }),
                // The file's other settings cannot be read; the environment's still are.
                Err(e) => problems.push(format!(
                    "config: {}: {}",
                    path.display(),
                    one_line(&e.kind.to_string())
                )),
            }
        }
        let conventional = [
            ("DATABASE_URL", "database.url"),
            ("DATAFORSEO_LOGIN", "api.login"),
            ("DATAFORSEO_PASSWORD", "api.password"),
            ("DATAFORSEO_TOKEN", "api.token"),
        ];
        for (var, key) in conventional {
            if let Some(value) = lookup(var) {
                layers.push(Layer::env(var, key, value)?);
            }
        }
        // The same mapping as figment's `Env::prefixed("LINKLEDGER_").split("__")`, built
        // from the given pairs so tests can pass their own environment.
        for (var, value) in &env {
            let Some(rest) = var
                .strip_prefix("LINKLEDGER_")
                .filter(|rest| rest.contains("__"))
            else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            layers.push(Layer::env(var, &key, value.clone())?);
        }
        // Serde stops at the first problem; each one found is set aside (its key taken
        // out of every layer) and the rest read again, until none is left.
        for _ in 0..100 {
            let fig = layers
                .iter()
                .fold(Figment::new(), |fig, layer| fig.merge(layer));
            // Every environment value is a string, exactly as written: a password
            // `00123` stays `00123`. Lossy extraction reads a string as a number or a
            // boolean only where the setting is one (`LINKLEDGER_API__MAX_IN_FLIGHT=10`).
            match fig.extract_lossy::<Config>() {
                Ok(config) if problems.is_empty() => return Ok(config),
                Ok(_) => break,
                Err(errors) => {
                    let mut set_aside = false;
                    for e in errors {
                        // An unknown key's path names the key itself.
                        let key = e.path.clone();
                        let from = layers
                            .iter()
                            .rev()
                            .find(|l| l.has(&key))
                            .map(|l| l.metadata.clone())
                            .or(e.metadata.clone());
                        problems.push(problem(&key, &e.kind, from.as_ref()));
                        for layer in &mut layers {
                            set_aside |= layer.remove(&key);
                        }
                    }
                    if !set_aside {
                        break;
                    }
                }
            }
        }
        problems.dedup();
        Err(ConfigError::Invalid(problems.join("\n")))
    }

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

/// One layer of the configuration (the file, or one environment variable), its data
/// read once so that a key found wrong can be taken out and the rest read again.
struct Layer {
    /// Names where its values come from: `TOML file config/linkledger.toml`,
    /// `environment variable LINKLEDGER_API__TIMEOUT`.
    metadata: Metadata,
    data: figment::value::Map<Profile, figment::value::Dict>,
}

impl Layer {
    /// One environment variable setting the dotted `key` (`api.max_in_flight`) to
    /// `value`, always a string; see the extraction in [`Config::load_from`].
    fn env(var: &str, key: &str, value: String) -> Result<Layer, ConfigError> {
        let data = Serialized::global(key, &value).data().map_err(|e| {
            ConfigError::Invalid(format!(
                "config: environment variable {var}: {}",
                e.kind.to_string().replace('`', "")
            ))
        })?;
        Ok(Layer {
            metadata: Metadata::named(format!("environment variable {var}")),
            data,
        })
    }

    /// The dictionary holding `key`'s last part, in every profile.
    fn parents<'a>(
        &'a mut self,
        key: &'a [String],
    ) -> impl Iterator<Item = &'a mut figment::value::Dict> + 'a {
        self.data.values_mut().filter_map(move |dict| {
            let (_, parents) = key.split_last()?;
            parents
                .iter()
                .try_fold(dict, |d, part| match d.get_mut(part) {
                    Some(figment::value::Value::Dict(_, inner)) => Some(inner),
                    _ => None,
                })
        })
    }

    fn has(&self, key: &[String]) -> bool {
        let Some((last, parents)) = key.split_last() else {
            return false;
        };
        self.data.values().any(|dict| {
            parents
                .iter()
                .try_fold(dict, |d, part| match d.get(part) {
                    Some(figment::value::Value::Dict(_, inner)) => Some(inner),
                    _ => None,
                })
                .is_some_and(|d| d.contains_key(last))
        })
    }

    /// Takes `key` out; `true` if it was there.
    fn remove(&mut self, key: &[String]) -> bool {
        let Some(last) = key.last().cloned() else {
            return false;
        };
        let mut removed = false;
        for dict in self.parents(key) {
            removed |= dict.remove(&last).is_some();
        }
        removed
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<figment::value::Map<Profile, figment::value::Dict>, figment::Error> {
        Ok(self.data.clone())
    }
}

/// One problem as a line: `config: api.timeout: expected a duration like "180s",
/// found 5 (from TOML file config/linkledger.toml)`. Serde's wording is replaced where
/// it would show a type of the program (`usize`, `struct ApiConfig`) or quote inside
/// quotes.
fn problem(key: &[String], kind: &figment::error::Kind, from: Option<&Metadata>) -> String {
    use figment::error::Kind;
    let why = match kind {
        Kind::Message(m) => m.clone(),
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!(
                "expected {}, found {}",
                expected_in_words(expected),
                found(actual)
            )
        }
        Kind::UnknownField(name, known) => {
            let hint = crate::words::suggest(name, known.iter().copied())
                .map(|s| format!("; did you mean {s}?"))
                .unwrap_or_default();
            let known = if known.is_empty() {
                String::new()
            } else {
                format!(" (known here: {})", known.join(", "))
            };
            if key.len() == 1 {
                format!("unknown section{hint}{known}")
            } else {
                format!("unknown key{hint}{known}")
            }
        }
        Kind::UnknownVariant(given, known) => {
            format!("'{given}' is not one of {}", known.join(", "))
        }
        Kind::MissingField(name) => format!("{name} is missing"),
        other => other.to_string().replace('`', "'"),
    };
    let why = why.replace("figment::value::value::Value", "a value");
    let key = key.join(".");
    let src = from
        .map(|m| match &m.source {
            Some(source) => format!(" (from {} {source})", m.name),
            None => format!(" (from {})", m.name),
        })
        .unwrap_or_default();
    if key.is_empty() {
        format!("config: {why}{src}")
    } else {
        format!("config: {key}: {why}{src}")
    }
}

/// A TOML parser's message (a snippet of the file with a caret under the place) as
/// one line: `TOML parse error at line 1, column 5: invalid table header: expected
/// '.', ']'`.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains('|'))
        .collect::<Vec<_>>()
        .join(": ")
        .replace('`', "'")
}

/// What a setting expects, in a user's words.
fn expected_in_words(expected: &str) -> String {
    match expected {
        "usize" | "u8" | "u16" | "u32" | "u64" | "u128" => "a whole number of 0 or more".into(),
        "isize" | "i8" | "i16" | "i32" | "i64" | "i128" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a duration" => "a duration like \"30s\" or \"5m\"".into(),
        "path string" => "a path".into(),
        "socket address" => "an address like \"127.0.0.1:9187\"".into(),
        "a boolean" | "bool" => "true or false".into(),
        e if e.starts_with("struct ") || e == "map" => "a table of settings".into(),
        e => e.replace('`', "'"),
    }
}

/// What a value was, in a user's words (a string is quoted, never a secret: secrets
/// have messages of their own).
fn found(actual: &figment::error::Actual) -> String {
    use figment::error::Actual;
    match actual {
        Actual::Bool(b) => b.to_string(),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(n) => n.to_string(),
        Actual::Char(c) => format!("'{c}'"),
        Actual::Str(s) => format!("\"{s}\""),
        Actual::Seq => "a list".into(),
        Actual::Map => "a table (or a date)".into(),
        _ => "a value of another kind".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_follow_the_api_limits() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::load_from(Some(&dir.path().join("none.toml")), env(&[]));
        assert!(matches!(cfg, Err(ConfigError::Missing(_))));
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "").unwrap();
        let cfg = Config::load_from(Some(&file), env(&[])).unwrap();
        assert_eq!(cfg.api.max_in_flight, 30);
        assert_eq!(cfg.api.max_per_minute, 2000);
        assert_eq!(cfg.api.base_url.as_str(), "https://api.dataforseo.com/v3");
        assert_eq!(cfg.api.timeout, Duration::from_secs(180));
        assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
    }

    /// Loads `toml` as the config file, with `vars` as the environment.
    fn load(toml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, toml).unwrap();
        Config::load_from(Some(&file), env(vars))
    }

    #[test]
    fn the_shipped_config_file_loads_without_warnings() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_FILE);
        let cfg = Config::load_from(Some(&file), env(&[])).unwrap();
        assert_eq!(cfg.api.timeout, Duration::from_secs(180));
        assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
    }

    #[test]
    fn a_timeout_under_130s_warns_naming_the_key_the_value_and_the_risk() {
        let cfg = load("[api]\ntimeout = \"60s\"\n", &[]).unwrap();
        assert_eq!(
            cfg.warnings(),
            vec![
                "config: api.timeout = 60s is under 130s: the API may take up to 120 s to \
                 answer a live call, so a shorter timeout can give up on an answer the API \
                 completed and charged, and the retry pays again"
                    .to_string()
            ]
        );
        let cfg = load("", &[("LINKLEDGER_API__TIMEOUT", "2m")]).unwrap();
        let warnings = cfg.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("config: api.timeout = 120s is under 130s: "),
            "{warnings:?}"
        );
        let cfg = load("[api]\ntimeout = \"129s 500ms\"\n", &[]).unwrap();
        assert!(
            cfg.warnings()[0].starts_with("config: api.timeout = 2m 9s 500ms is under 130s"),
            "{:?}",
            cfg.warnings()
        );
    }

    #[test]
    fn a_timeout_of_130s_or_more_does_not_warn() {
        for t in ["130s", "180s", "10m"] {
            let cfg = load(&format!("[api]\ntimeout = \"{t}\"\n"), &[]).unwrap();
            assert!(cfg.warnings().is_empty(), "{t}: {:?}", cfg.warnings());
        }
    }

    #[test]
    fn environment_overrides_the_file_and_conventional_variables_are_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[api]\nmax_in_flight = 5\nlogin = \"file-login\"\n[budget]\ndaily_usd = 3.5\n",
        )
        .unwrap();
        let cfg = Config::load_from(
            Some(&file),
            env(&[
                ("LINKLEDGER_API__MAX_IN_FLIGHT", "7"),
                ("DATAFORSEO_LOGIN", "env-login"),
                ("DATAFORSEO_PASSWORD", "hunter2"),
                ("DATABASE_URL", "postgres://u:pw@h/db"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.api.max_in_flight, 7);
        assert_eq!(cfg.api.login.as_deref(), Some("env-login"));
        assert_eq!(cfg.budget.daily_usd, Some("3.5".parse().unwrap()));
        assert!(cfg.database_url().is_some());
        let creds = cfg.api.credentials().unwrap();
        let shown = format!("{cfg:?} {creds:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("u:pw"), "{shown}");
    }

    #[test]
    fn a_typo_in_the_config_is_an_error_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[api]\nmax_inflight = 5\n").unwrap();
        let err = Config::load_from(Some(&file), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_inflight"), "{err}");
    }

    fn problems(toml: &str, vars: &[(&str, &str)]) -> Vec<String> {
        match load(toml, vars) {
            Ok(_) => panic!("loaded: {toml}"),
            Err(ConfigError::Invalid(e)) => e.lines().map(str::to_string).collect(),
            Err(e) => panic!("expected Invalid, got {e:?}"),
        }
    }

    #[test]
    fn a_file_with_three_mistakes_reports_all_three_each_naming_the_file() {
        let lines = problems(
            "[api]\nmax_inflight = 3\ntimeout = \"soon\"\n[budget]\ndaily_usd = \"lots\"\n",
            &[],
        );
        assert_eq!(lines.len(), 3, "{lines:#?}");
        for (line, key) in lines
            .iter()
            .zip(["api.max_inflight", "api.timeout", "budget.daily_usd"])
        {
            assert!(line.starts_with(&format!("config: {key}: ")), "{line}");
            assert!(line.ends_with("c.toml)"), "{line}");
        }
        assert!(
            lines[0].contains("did you mean max_in_flight?"),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("found \"soon\""), "{}", lines[1]);
    }

    #[test]
    fn a_mistake_made_in_the_environment_names_the_variable() {
        let lines = problems(
            "[api]\nauth = \"digest\"\n",
            &[
                ("LINKLEDGER_QUEUE__LEASE", "long"),
                ("LINKLEDGER_API__MAX_INFLIGHT", "3"),
            ],
        );
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines.iter().any(|l| l.starts_with("config: queue.lease: ")
                && l.ends_with("(from environment variable LINKLEDGER_QUEUE__LEASE)")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("config: api.max_inflight: unknown key")
                    && l.ends_with("(from environment variable LINKLEDGER_API__MAX_INFLIGHT)")),
            "{lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l
                .starts_with("config: api.auth: 'digest' is not one of basic, bearer")
                && l.ends_with("c.toml)")),
            "{lines:#?}"
        );
    }

    #[test]
    fn problems_name_no_type_of_the_program_and_quote_nothing_inside_quotes() {
        let files = [
            "api = 5\n",
            "[api]\nmax_in_flight = \"many\"\n",
            "[api]\nauth = \"digest\"\n",
            "[api]\nbody = 1\n",
            "[api]\nnope = 1\n",
            "[server]\nlisten = 2024-01-01\n",
            "[budget]\ndaily_usd = 2024-01-01\n",
            "[queue]\nlease = []\n",
            "[jobs]\ndir = 5\n",
            "[database]\npool_size = -1\n",
            "bogus = 1\n",
        ];
        for toml in files {
            for line in problems(toml, &[]) {
                for internal in [
                    "``",
                    "`one of",
                    "usize",
                    "u32",
                    "struct ",
                    "figment::",
                    "$__toml",
                ] {
                    assert!(!line.contains(internal), "{toml:?}: {line}");
                }
            }
        }
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_rejected_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[api]\npassword = 123456789\n").unwrap();
        let err = Config::load_from(Some(&file), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("api.password"), "{err}");
        assert!(!err.contains("123456789"), "{err}");
    }

    fn base_url_error(toml: &str, vars: &[(&str, &str)]) -> String {
        match load(toml, vars) {
            Ok(cfg) => panic!("loaded with base_url {}", cfg.api.base_url),
            Err(ConfigError::Invalid(e)) => e,
            Err(e) => panic!("expected Invalid, got {e:?}"),
        }
    }

    #[test]
    fn a_base_url_without_a_scheme_is_an_error_saying_what_to_write() {
        let err = base_url_error("[api]\nbase_url = \"localhost:8089/v3\"\n", &[]);
        assert!(
            err.starts_with(
                "config: api.base_url: `localhost:8089/v3` is not an http(s) URL; write the \
                 scheme, e.g. http://localhost:8089/v3 (from TOML file "
            ),
            "{err}"
        );
        assert!(err.ends_with("c.toml)"), "{err}");
        let err = base_url_error("", &[("LINKLEDGER_API__BASE_URL", "api.example.com/v3")]);
        assert!(
            err == ("config: api.base_url: `api.example.com/v3` is not an http(s) URL; write the \
                 scheme, e.g. https://api.example.com/v3 \
                 (from environment variable LINKLEDGER_API__BASE_URL)"),
            "{err}"
        );
    }

    #[test]
    fn a_base_url_that_is_not_http_or_has_no_host_is_an_error() {
        let err = base_url_error("[api]\nbase_url = \"ftp://x/v3\"\n", &[]);
        assert!(
            err.starts_with(
                "config: api.base_url: `ftp://x/v3` is not an http(s) URL: its scheme is `ftp`; \
                 write http:// or https://, e.g. https://x/v3"
            ),
            "{err}"
        );
        let err = base_url_error("", &[("LINKLEDGER_API__BASE_URL", "ftp://x/v3")]);
        assert!(
            err.starts_with("config: api.base_url: `ftp://x/v3` "),
            "{err}"
        );
        let err = base_url_error("[api]\nbase_url = \"http://\"\n", &[]);
        assert!(
            err.starts_with("config: api.base_url: `http://` is not an http(s) URL: empty host"),
            "{err}"
        );
        let err = base_url_error("[api]\nbase_url = \"file:///v3\"\n", &[]);
        assert!(
            err.starts_with("config: api.base_url: `file:///v3` "),
            "{err}"
        );
        let err = base_url_error("[api]\nbase_url = \"\"\n", &[]);
        assert!(
            err.starts_with("config: api.base_url: is empty; write an http(s) URL like "),
            "{err}"
        );
        let err = base_url_error("[api]\nbase_url = 8089\n", &[]);
        assert!(err.starts_with("config: api.base_url: "), "{err}");
    }

    #[test]
    fn http_and_https_base_urls_load_from_the_file_and_the_environment() {
        let cfg = load("[api]\nbase_url = \"http://127.0.0.1:8089/v3\"\n", &[]).unwrap();
        assert_eq!(cfg.api.base_url.as_str(), "http://127.0.0.1:8089/v3");
        let cfg = load(
            "[api]\nbase_url = \"http://127.0.0.1:8089/v3\"\n",
            &[(
                "LINKLEDGER_API__BASE_URL",
                "https://gateway.example.com/dfs/v3",
            )],
        )
        .unwrap();
        assert_eq!(
            cfg.api.base_url.as_str(),
            "https://gateway.example.com/dfs/v3"
        );
    }

    #[test]
    fn a_password_in_a_base_url_is_never_echoed() {
        for (value, shown) in [
            ("ftp://me:s3cret@x/v3", "`ftp://me:***@x/v3`"),
            ("me:s3cret@localhost:8089/v3", "`me:***@localhost:8089/v3`"),
            ("https://me:s3cret@x/v3", "`https://me:***@x/v3`"),
            ("http://me:s3cret@[::1/v3", "`http://me:***@[::1/v3`"),
        ] {
            for err in [
                base_url_error(&format!("[api]\nbase_url = \"{value}\"\n"), &[]),
                base_url_error("", &[("LINKLEDGER_API__BASE_URL", value)]),
            ] {
                assert!(!err.contains("s3cret"), "{err}");
                assert!(err.contains(shown), "{err}");
            }
        }
        let err = base_url_error("[api]\nbase_url = \"ftp://me:s3cret@x/v3\"\n", &[]);
        assert!(
            err.contains("e.g. https://x/v3 "),
            "the hint has no login: {err}"
        );
        let err = base_url_error("[api]\nbase_url = \"https://me:s3cret@x/v3\"\n", &[]);
        assert!(
            err.contains("carries a login or password; put them in api.login and api.password"),
            "{err}"
        );
    }

    #[test]
    fn numeric_secrets_from_the_environment_load_exactly_as_written() {
        for password in ["00123", "123456", "1e5", "0x1F", "true", "1_000", "-7"] {
            for var in ["LINKLEDGER_API__PASSWORD", "DATAFORSEO_PASSWORD"] {
                let cfg = load("[api]\nlogin = \"me\"\n", &[(var, password)])
                    .unwrap_or_else(|e| panic!("{var}={password}: {e}"));
                let secret = cfg.api.password.as_ref().expect("a password");
                assert_eq!(secret.expose_secret(), password, "{var}");
            }
        }
        let cfg = load(
            "[api]\nauth = \"bearer\"\n",
            &[("LINKLEDGER_API__TOKEN", "0042")],
        )
        .unwrap();
        let header = cfg.api.credentials().unwrap().header_value();
        assert_eq!(header.expose_secret(), "Bearer 0042");
    }

    #[test]
    fn string_settings_from_the_environment_keep_their_text() {
        let cfg = load(
            "",
            &[
                ("LINKLEDGER_API__LOGIN", "007"),
                ("LINKLEDGER_DATABASE__URL", "1e5"),
                ("LINKLEDGER_JOBS__DIR", "2024"),
                ("LINKLEDGER_API__BASE_URL", "http://127.0.0.1:8089/v3"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.api.login.as_deref(), Some("007"));
        assert_eq!(cfg.database_url().unwrap().expose_secret(), "1e5");
        assert_eq!(cfg.jobs.dir, PathBuf::from("2024"));
        assert_eq!(cfg.api.base_url.as_str(), "http://127.0.0.1:8089/v3");
    }

    #[test]
    fn numbers_and_durations_from_the_environment_are_read_as_their_settings() {
        let cfg = load(
            "",
            &[
                ("LINKLEDGER_API__MAX_IN_FLIGHT", "7"),
                ("LINKLEDGER_API__MAX_PER_MINUTE", "1500"),
                ("LINKLEDGER_DATABASE__POOL_SIZE", "4"),
                ("LINKLEDGER_QUEUE__WORKERS", "0"),
                ("LINKLEDGER_API__TIMEOUT", "3m"),
                ("LINKLEDGER_BUDGET__DAILY_USD", "0.1"),
                ("LINKLEDGER_API__AUTH", "bearer"),
                ("LINKLEDGER_SERVER__LISTEN", "0.0.0.0:9000"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.api.max_in_flight, 7);
        assert_eq!(cfg.api.max_per_minute, 1500);
        assert_eq!(cfg.database.pool_size, 4);
        assert_eq!(cfg.queue.workers, 0);
        assert_eq!(cfg.api.timeout, Duration::from_secs(180));
        assert_eq!(cfg.budget.daily_usd, Some("0.1".parse().unwrap()));
        assert_eq!(cfg.api.auth, AuthKind::Bearer);
        assert_eq!(cfg.server.listen, "0.0.0.0:9000".parse().unwrap());
        let err = load("", &[("LINKLEDGER_API__MAX_IN_FLIGHT", "many")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("config: api.max_in_flight: "), "{err}");
        assert!(
            err.ends_with("(from environment variable LINKLEDGER_API__MAX_IN_FLIGHT)"),
            "{err}"
        );
    }

    #[test]
    fn bearer_auth_needs_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[api]\nauth = \"bearer\"\n").unwrap();
        let cfg = Config::load_from(Some(&file), env(&[])).unwrap();
        assert!(cfg.api.credentials().is_err());
        let cfg = Config::load_from(Some(&file), env(&[("DATAFORSEO_TOKEN", "tok-123")])).unwrap();
        let header = cfg.api.credentials().unwrap().header_value();
        assert_eq!(header.expose_secret(), "Bearer tok-123");
    }
}
