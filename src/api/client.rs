//! The DataForSEO HTTP client: one task per POST, auth from configuration, every
//! answer classified. Retrying is the executor's job (it records each attempt in the
//! ledger first); the client makes exactly one request per call to [`Client::send`],
//! whose answer [`Client::read`] reads (the executor lets the request's permit go in
//! between, for a large answer).

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::ExposeSecret;
use serde_json::Value;
use tracing::instrument;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::AsyncWriteExt;

use super::endpoint::Endpoint;
use super::limits::{Limits, Permit, RetryPolicy};
use super::status::Outcome;
use super::types::Envelope;
use crate::config::{ApiConfig, BodyShape, ConfigError, Credentials};
use crate::money::Usd;

/// One HTTP exchange, whatever its outcome.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub started_at: DateTime<Utc>,
    pub duration: Duration,
    /// `None` when no HTTP answer arrived (network error, timeout).
    pub http_status: Option<u16>,
    /// The body when it was JSON, whatever its shape.
    pub body: Option<Value>,
    /// The body's bytes when it was not JSON (truncated, `NaN`, nested too deep, a
    /// lone surrogate...) or holds what PostgreSQL cannot store as JSON: kept raw as
    /// bytes, since the API may have charged for it.
    pub unparsed: Option<bytes::Bytes>,
    /// The body of an answer over `api.max_answer`, streamed to a temporary file as it
    /// arrived and never held whole: kept raw as bytes, unread.
    pub spilled: Option<Spilled>,
    /// The lenient read of the body's status codes and costs.
    pub envelope: Option<Envelope>,
    pub outcome: Outcome,
    /// The cost the API reported (`None` when it reported none).
    pub cost: Option<Usd>,
    /// Whether the request may have reached the API (`false` when the connection was
    /// never made): an unanswered request that may have reached it may have been
    /// charged.
    pub reached: bool,
    /// The answer came from a sandbox (its `x-linkledger-sandbox` header, or
    /// DataForSEO's sandbox host): not real spend.
    pub sandbox: bool,
}

impl Attempt {
    pub fn status_code(&self) -> Option<i64> {
        self.envelope.as_ref().and_then(|e| e.top.status_code)
    }
    pub fn task_status_code(&self) -> Option<i64> {
        self.envelope
            .as_ref()
            .and_then(|e| e.first_task())
            .and_then(|t| t.status_code)
    }
    pub fn status_message(&self) -> Option<&str> {
        self.envelope
            .as_ref()
            .and_then(|e| e.top.status_message.as_deref())
    }
    pub fn task_status_message(&self) -> Option<&str> {
        self.envelope
            .as_ref()
            .and_then(|e| e.first_task())
            .and_then(|t| t.status_message.as_deref())
    }

    /// The body of an HTTP 2xx answer: an answer the API may have charged for, which
    /// is stored raw whatever its shape or bytes.
    pub fn keeps_raw(&self) -> bool {
        (self.body.is_some() || self.unparsed.is_some() || self.spilled.is_some())
            && self.http_status.is_some_and(|s| (200..300).contains(&s))
    }

    /// This answer kept as bytes and read as unreadable, `why`: for a body PostgreSQL
    /// refused as JSON. Its status codes and cost stay as they were read.
    pub fn kept_as_bytes(&self, why: String) -> Attempt {
        Attempt {
            unparsed: self
                .body
                .as_ref()
                .and_then(|b| serde_json::to_vec(b).ok())
                .map(bytes::Bytes::from)
                .or_else(|| self.unparsed.clone()),
            body: None,
            outcome: Outcome::Unreadable { message: why },
            ..self.clone()
        }
    }
}

/// An answer's body too large to hold (over `api.max_answer`): written to an unnamed
/// temporary file (in `TMPDIR`, gone when the last handle closes) as it arrived, to be
/// copied into storage a piece at a time.
#[derive(Clone, Debug)]
pub struct Spilled {
    pub file: Arc<std::fs::File>,
    /// Its size in bytes.
    pub len: u64,
}

/// How much of an answer's body was received.
enum Body {
    /// All of it, up to `api.max_answer`: held.
    Whole(bytes::Bytes),
    /// All of it, over `api.max_answer`: in a temporary file.
    Spilled(Spilled),
    /// More than `api.max_kept`, or what could not be written aside: reading stopped
    /// there, after this many bytes, for why.
    Stopped(u64, String),
}

/// The header `linkledger sandbox` marks every answer with.
pub const SANDBOX_HEADER: &str = "x-linkledger-sandbox";
/// DataForSEO's own free sandbox, with fake data.
pub const DATAFORSEO_SANDBOX_HOST: &str = "sandbox.dataforseo.com";

/// Where the time of an answer comes from: the system clock, or a simulation's.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    auth: HeaderValue,
    limits: Limits,
    policy: RetryPolicy,
    body: BodyShape,
    /// The most of an answer's body read, decompressed (`api.max_answer`).
    max_answer: u64,
    /// The most of an answer's body received, decompressed (`api.max_kept`).
    max_kept: u64,
    /// Known to be a sandbox: from its host, or once an answer said so.
    sandbox: Arc<AtomicBool>,
    /// `host[:port]` of the base URL.
    host: String,
    /// A simulation's clock; the system's when `None`.
    clock: Option<Clock>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("auth", &"[REDACTED]")
            .finish()
    }
}

impl Client {
    pub fn with_credentials(cfg: &ApiConfig, creds: &Credentials) -> Result<Client, ConfigError> {
        // reqwest is built without a default crypto provider; install ring once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut auth =
            HeaderValue::from_str(creds.header_value().expose_secret()).map_err(|_| {
                ConfigError::Invalid("api: credentials contain invalid characters".into())
            })?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .gzip(true)
            .pool_max_idle_per_host(cfg.max_in_flight)
            .user_agent(concat!("linkledger/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Invalid(format!("api: cannot build HTTP client: {e}")))?;
        let mut base = cfg.base_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let sandbox = base.host_str() == Some(DATAFORSEO_SANDBOX_HOST);
        let host = match (base.host_str(), base.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => String::new(),
        };
        Ok(Client {
            clock: None,
            host,
            body: cfg.body,
            max_answer: cfg.max_answer,
            max_kept: cfg.max_kept,
            sandbox: Arc::new(AtomicBool::new(sandbox)),
            http,
            base,
            auth,
            limits: Limits::new(cfg.max_in_flight, cfg.max_per_minute),
            policy: RetryPolicy {
                max_attempts: cfg.max_attempts.max(1),
                base_delay: cfg.retry_base_delay,
                max_delay: cfg.retry_max_delay,
            },
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.policy
    }

    pub fn base_url(&self) -> &url::Url {
        &self.base
    }

    /// The host (and port, when one is given) calls go to, as the ledger records it:
    /// two APIs on one host are told apart.
    pub fn api_host(&self) -> &str {
        &self.host
    }

    /// Whether the API is known to be a sandbox (its host, or an answer's header).
    pub fn is_sandbox(&self) -> bool {
        self.sandbox.load(Ordering::Relaxed)
    }

    /// Waits for the client-side limits; hold the permit for the request.
    pub async fn acquire(&self) -> Permit {
        self.limits.acquire().await
    }

    /// POSTs one task to `endpoint` (the permit proves the limits were respected) and
    /// receives the answer's bytes, unread: the
    /// request's permit can be let go before the body is parsed ([`Client::read`]),
    /// and a caller can bound how many bodies are parsed and loaded at once. `Err` is
    /// an attempt that got no answer (or could not be sent).
    #[instrument(skip_all, fields(endpoint = %endpoint))]
    pub async fn send(
        &self,
        _permit: &Permit,
        endpoint: Endpoint,
        task: &Value,
    ) -> Result<Answer, Box<Attempt>> {
        let url = self.url(&endpoint.path())?;
        let body = match self.body {
            BodyShape::Array => Value::Array(vec![task.clone()]),
            BodyShape::Object => task.clone(),
        };
        let req = self
            .http
            .post(url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .json(&body);
        self.receive(req, "POST", url).await
    }

    /// `GET /v3/appendix/user_data`: free; checks the credentials and shows the balance.
    #[instrument(skip_all)]
    pub async fn user_data(&self, _permit: &Permit) -> Attempt {
        let url = match self.url("appendix/user_data") {
            Ok(url) => url,
            Err(attempt) => return *attempt,
        };
        let req = self
            .http
            .get(url.clone())
            .header(AUTHORIZATION, self.auth.clone());
        match self.receive(req, "GET", url).await {
            Ok(answer) => self.read(answer).await,
            Err(attempt) => *attempt,
        }
    }

    /// `path` below the base URL. Configuration only accepts http(s) base URLs, which
    /// every path joins; should one not, the call stops with a message, never a panic.
    fn url(&self, path: &str) -> Result<url::Url, Box<Attempt>> {
        self.base.join(path).map_err(|e| {
            Box::new(Attempt {
                started_at: self.now(),
                duration: Duration::ZERO,
                http_status: None,
                body: None,
                unparsed: None,
                spilled: None,
                envelope: None,
                outcome: Outcome::Halt {
                    code: super::status::WRONG_PATH_CODES[0],
                    message: format!(
                        "cannot build a request URL from api.base_url {} and {path}: {e}",
                        shown(&self.base)
                    ),
                },
                cost: None,
                reached: false,
                sandbox: false,
            })
        })
    }

    /// Times answers with `clock` instead of the system clock (a simulation running
    /// days in minutes: what an answer covers depends on the day it came).
    #[doc(hidden)]
    pub fn with_clock(mut self, clock: Clock) -> Client {
        self.clock = Some(clock);
        self
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.as_ref().map_or_else(Utc::now, |clock| clock())
    }

    async fn receive(
        &self,
        req: reqwest::RequestBuilder,
        method: &'static str,
        url: url::Url,
    ) -> Result<Answer, Box<Attempt>> {
        let started_at = self.now();
        let t0 = std::time::Instant::now();
        let result = async {
            let mut resp = req.send().await?;
            let status = resp.status().as_u16();
            let sandbox = resp.headers().contains_key(SANDBOX_HEADER);
            // Read as it is decompressed: held up to api.max_answer, then written aside
            // up to api.max_kept, past which (a gzip bomb) reading stops.
            let mut body = bytes::BytesMut::new();
            let mut aside: Option<tokio::fs::File> = None;
            let mut read = 0u64;
            while let Some(chunk) = resp.chunk().await? {
                read += chunk.len() as u64;
                if read > self.max_kept.max(self.max_answer) {
                    let why = format!(
                        "the answer is larger than api.max_kept ({} bytes, decompressed): \
                         reading stopped there (a gzip bomb or a runaway answer), nothing of it \
                         kept; not bought again",
                        self.max_kept
                    );
                    return Ok((status, sandbox, Body::Stopped(read, why)));
                }
                if aside.is_none() && read > self.max_answer {
                    match spill(&body).await {
                        Ok(file) => aside = Some(file),
                        Err(e) => return Ok((status, sandbox, Body::Stopped(read, e))),
                    }
                    body = bytes::BytesMut::new();
                }
                match aside.as_mut() {
                    Some(file) => {
                        if let Err(e) = file.write_all(&chunk).await {
                            return Ok((status, sandbox, Body::Stopped(read, spill_failed(&e))));
                        }
                    }
                    None => body.extend_from_slice(&chunk),
                }
            }
            let body = match aside {
                None => Body::Whole(body.freeze()),
                Some(mut file) => match file.flush().await {
                    Ok(()) => Body::Spilled(Spilled {
                        file: Arc::new(file.into_std().await),
                        len: read,
                    }),
                    Err(e) => Body::Stopped(read, spill_failed(&e)),
                },
            };
            Ok::<_, reqwest::Error>((status, sandbox, body))
        }
        .await;
        let duration = t0.elapsed();
        let over = |status: u16, marked: bool, message: String, spilled: Option<Spilled>| {
            if marked {
                self.sandbox.store(true, Ordering::Relaxed);
            }
            Box::new(Attempt {
                started_at,
                duration,
                http_status: Some(status),
                body: None,
                unparsed: None,
                spilled,
                envelope: None,
                outcome: Outcome::Unreadable { message },
                cost: None,
                reached: true,
                sandbox: self.is_sandbox(),
            })
        };
        match result {
            Ok((status, marked, Body::Stopped(read, why))) => {
                tracing::warn!(
                    http_status = status,
                    read,
                    max = self.max_kept,
                    why,
                    "answer not read further"
                );
                Err(over(status, marked, why, None))
            }
            Ok((status, marked, Body::Spilled(spilled))) => {
                tracing::warn!(
                    http_status = status,
                    bytes = spilled.len,
                    max = self.max_answer,
                    "answer over api.max_answer; kept raw, unread"
                );
                let message = format!(
                    "the answer is larger than api.max_answer ({} bytes, decompressed): kept raw \
                     as it arrived ({} bytes, raw_responses.unparsed), unread; not bought again; \
                     raise api.max_answer to read answers this large",
                    self.max_answer, spilled.len
                );
                Err(over(status, marked, message, Some(spilled)))
            }
            Ok((status, marked, Body::Whole(bytes))) => Ok(Answer {
                started_at,
                duration,
                status,
                marked,
                bytes,
                method,
                url,
            }),
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "request failed without an answer");
                Err(Box::new(Attempt {
                    started_at,
                    duration,
                    http_status: None,
                    body: None,
                    unparsed: None,
                    spilled: None,
                    envelope: None,
                    outcome: Outcome::Retryable {
                        code: None,
                        message: format!("network error: {}", error_chain(&e)),
                    },
                    cost: None,
                    reached: !e.is_connect(),
                    sandbox: self.is_sandbox(),
                }))
            }
        }
    }

    /// Reads an answer: its JSON (whatever its shape), status codes and cost; a
    /// throttling answer slows every caller down.
    pub async fn read(&self, answer: Answer) -> Attempt {
        let Answer {
            started_at,
            duration,
            status,
            marked,
            bytes,
            method,
            url,
        } = answer;
        if marked {
            self.sandbox.store(true, Ordering::Relaxed);
        }
        let parsed = serde_json::from_slice::<Value>(&bytes);
        let two_xx = (200..300).contains(&status);
        // A 2xx body that is not JSON may have been charged for: kept as its bytes,
        // never asked for again.
        let (body, unparsed, not_json) = match parsed {
            Ok(body) => {
                drop(bytes);
                (Some(body), None, None)
            }
            Err(e) if two_xx => (None, Some(bytes), Some(e.to_string())),
            Err(_) => {
                drop(bytes);
                (None, None, None)
            }
        };
        let envelope = body.as_ref().and_then(Envelope::read);
        let mut outcome = match not_json {
            Some(why) => Outcome::Unreadable {
                message: format!(
                    "HTTP {status} with a body that is not JSON ({why}); kept raw, not bought again"
                ),
            },
            None => Outcome::classify(status, envelope.as_ref()),
        };
        // A path the API does not know: say which URL, so the operator can see what
        // is wrong with api.base_url.
        if let Outcome::Halt { code, message } = &mut outcome
            && super::status::WRONG_PATH_CODES.contains(code)
        {
            message.push_str(&format!(" ({method} {})", shown(&url)));
        }
        let cost = envelope.as_ref().and_then(Envelope::cost);
        match &outcome {
            Outcome::Throttled { .. } => self.limits.throttled(self.policy.base_delay).await,
            Outcome::Ok => self.limits.succeeded().await,
            _ => {}
        }
        tracing::debug!(
            http_status = status,
            outcome = outcome.label(),
            duration_ms = duration.as_millis() as u64,
            "answer"
        );
        Attempt {
            started_at,
            duration,
            http_status: Some(status),
            body,
            unparsed,
            spilled: None,
            envelope,
            outcome,
            cost,
            reached: true,
            sandbox: self.is_sandbox(),
        }
    }
}

/// A temporary file holding `held`, the part of an answer received before it passed
/// `api.max_answer`.
async fn spill(held: &[u8]) -> Result<tokio::fs::File, String> {
    let file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|e| format!("could not make a temporary file: {e}"))?
        .map_err(|e| spill_failed(&e))?;
    let mut file = tokio::fs::File::from_std(file);
    file.write_all(held).await.map_err(|e| spill_failed(&e))?;
    Ok(file)
}

fn spill_failed(e: &std::io::Error) -> String {
    format!(
        "the answer is larger than api.max_answer and could not be written aside to a \
         temporary file (in TMPDIR): {e}; not kept, not bought again"
    )
}

/// An HTTP answer received and not yet read ([`Client::read`]): its bytes only, the
/// compact form a body waits in.
#[derive(Debug)]
pub struct Answer {
    started_at: DateTime<Utc>,
    duration: Duration,
    status: u16,
    marked: bool,
    bytes: bytes::Bytes,
    method: &'static str,
    url: url::Url,
}

impl Answer {
    /// The body's size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The body as received, unread: what can be stored before it is read.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn http_status(&self) -> u16 {
        self.status
    }

    /// When the request started.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    /// From the request's start to the answer's last byte.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Whether the answer said it came from a sandbox (its `x-linkledger-sandbox`
    /// header).
    pub fn marked_sandbox(&self) -> bool {
        self.marked
    }
}

impl Client {
    /// An answer to a request to `endpoint` that was stored before it was read (by
    /// this process or one that died), rebuilt from what was stored of it: its start,
    /// duration, HTTP status, sandbox mark and body. [`Client::read`] reads it as it
    /// would have read it on arrival.
    pub fn stored_answer(
        &self,
        endpoint: Endpoint,
        started_at: DateTime<Utc>,
        duration: Duration,
        status: u16,
        marked: bool,
        body: bytes::Bytes,
    ) -> Answer {
        Answer {
            started_at,
            duration,
            status,
            marked,
            bytes: body,
            method: "POST",
            url: self
                .base
                .join(&endpoint.path())
                .unwrap_or_else(|_| self.base.clone()),
        }
    }
}

/// A URL as it may appear in messages: without user or password.
fn shown(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// The error and its sources on one line (reqwest hides the useful part in sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
