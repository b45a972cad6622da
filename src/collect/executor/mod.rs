//! One HTTP attempt of one planned call, for one claim of its work item: the limits,
//! the ledger, raw-first storage and normalization. The queue's workers call
//! [`Executor::attempt`] once per claim (and [`Executor::recover`] first on a re-claim);
//! what happens to the item afterwards (retry, fail, cancel) is theirs to decide.
//!
//! Per attempt: the ledger row is written before the request is sent (only while the
//! claim holds); the answer completes it, and every JSON body of an HTTP 2xx answer is
//! committed to `raw_responses` in the same transaction; only then is it normalized,
//! and its rows are written in the transaction that completes the item. An answer that
//! cannot be normalized stays stored and the call fails as `invalid_response`.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{instrument, warn};

use crate::api::prices::Prices;
use crate::api::{Attempt, Client, Outcome};
use crate::collect::slots::{SharedSlots, Slot};
use crate::money::Usd;
use crate::money::budget::Hold;
use crate::ops::metrics::Metrics;
use crate::plan::CallSpec;
use crate::store::ledger::received_at;
use crate::store::{Booking, CallRecord, Fence, SendDecision, Settlement, SlotBooking, Store};
use crate::warehouse::normalize::{self, Context};

pub use halt::{CredentialsCheck, Halt, next_utc_midnight};

mod halt;
mod recover;

/// How one HTTP attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptEnd {
    /// The answer is stored and its rows written.
    Stored { rows: u64 },
    /// The answer is stored raw but could not be read or normalized; never retried.
    Invalid(String),
    /// Worth another attempt; a throttle does not count as a failure.
    Retry { throttled: bool, error: String },
    /// The API will not take this request; never retried.
    Rejected(String),
    /// The account was refused (or the path is wrong): every further call stops.
    Halted(Halt),
    /// Not sent because calls were already stopped.
    NotSent(Halt),
    /// Not sent because its estimate would cross a budget; it waits for the budget's
    /// next period (the daemon) or is not done (a once-run).
    Held(Hold),
    /// Not sent because this process is shutting down; the item goes back to the
    /// queue.
    Stopped,
    /// The work item's claim was lost before the rows could be written; another
    /// worker owns it now. The answer stays in the ledger and `raw_responses`.
    Stale,
}

impl AttemptEnd {
    pub fn error(&self) -> Option<String> {
        match self {
            AttemptEnd::Stored { .. } => None,
            AttemptEnd::Invalid(e) | AttemptEnd::Rejected(e) => Some(e.clone()),
            AttemptEnd::Retry { error, .. } => Some(error.clone()),
            AttemptEnd::Halted(h) => Some(h.to_string()),
            AttemptEnd::NotSent(h) => Some(format!("not sent: {h}")),
            AttemptEnd::Held(h) => Some(format!("not sent: {h}")),
            AttemptEnd::Stale => Some("the claim was lost to another worker".into()),
            AttemptEnd::Stopped => Some("not sent: shutting down".into()),
        }
    }
}

/// What booking a call came to ([`Executor::book`]).
enum Booked {
    /// The booking's decision and the shared slot taken with it (to be released).
    Decided(SendDecision, Option<Slot>),
    /// Not booked: shutting down, or calls are stopped.
    NotSent(AttemptEnd),
    Failed(crate::store::StoreError),
}

/// Answers up to this size are read while the request's permit is held; larger ones
/// (data, never a refusal) after, under a load permit.
const READ_UNDER_PERMIT: usize = 64 * 1024;

/// Large answers parsed, stored and loaded at once by default: enough to keep two
/// cores and the database busy, few enough that memory stays bounded (each is a parsed
/// body and its rows, a few MB for a history answer since 2019).
pub const DEFAULT_LOADS: usize = 6;

/// Holds already logged: (budget, until).
type HoldsLogged = std::collections::HashSet<(String, DateTime<Utc>)>;

/// A test's hook, run before each answer is normalized (to force a crash there).
pub type NormalizeHook = Arc<dyn Fn(&CallSpec) + Send + Sync>;

#[derive(Clone)]
pub struct Executor {
    store: Store,
    client: Client,
    halt: Arc<Mutex<Option<Halt>>>,
    shared: Option<SharedSlots>,
    metrics: Option<Arc<Metrics>>,
    /// Once cancelled, calls still waiting for a slot are not sent.
    stop: CancellationToken,
    before_normalize: Option<NormalizeHook>,
    /// What calls cost: the account's price list once `user_data` gave one.
    prices: Arc<RwLock<Prices>>,
    /// Holds already logged (budget and until), so each is logged once.
    holds_logged: Arc<Mutex<HoldsLogged>>,
    /// Whether a call bought already today is reused instead of bought again.
    reuse_same_day: bool,
    /// Large answers being parsed, stored and loaded at once (see [`DEFAULT_LOADS`]).
    loads: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("client", &self.client)
            .field("shared_limits", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl Executor {
    pub fn new(store: Store, client: Client) -> Executor {
        Executor {
            store,
            client,
            halt: Arc::new(Mutex::new(None)),
            shared: None,
            metrics: None,
            stop: CancellationToken::new(),
            before_normalize: None,
            prices: Arc::default(),
            holds_logged: Arc::default(),
            reuse_same_day: true,
            loads: Arc::new(tokio::sync::Semaphore::new(DEFAULT_LOADS)),
        }
    }

    /// At most `n` large answers parsed, stored and loaded at once.
    pub fn with_loads(mut self, n: usize) -> Executor {
        self.loads = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    /// For a simulation that runs many days in one real UTC day: buy every call, as
    /// each would be on its own day.
    #[doc(hidden)]
    pub fn without_same_day_reuse(mut self) -> Executor {
        self.reuse_same_day = false;
        self
    }

    /// Times answers with a simulation's `clock` (see [`Client::with_clock`]).
    #[doc(hidden)]
    pub fn with_clock(mut self, clock: crate::api::client::Clock) -> Executor {
        self.client = self.client.with_clock(clock);
        self
    }

    /// `true` the first time this process sees `hold` (its budget and period).
    pub fn note_hold(&self, hold: &Hold) -> bool {
        self.holds_logged
            .lock()
            .expect("holds lock")
            .insert((hold.name(), hold.until))
    }

    /// Estimates calls with `prices` (until `user_data` gives the account's own list).
    pub fn with_prices(mut self, prices: Prices) -> Executor {
        self.prices = Arc::new(RwLock::new(prices));
        self
    }

    /// The prices calls are estimated with now.
    pub fn prices(&self) -> Prices {
        self.prices.read().expect("prices lock").clone()
    }

    fn flat_price(&self) -> Option<Usd> {
        self.prices.read().expect("prices lock").flat_per_call
    }

    /// Calls that have not been sent when `stop` is cancelled are not sent
    /// ([`AttemptEnd::Stopped`]): a shutdown lets calls in flight finish but starts
    /// none.
    pub fn with_stop(mut self, stop: CancellationToken) -> Executor {
        self.stop = stop;
        self
    }

    /// Counts calls, retries and rows in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Executor {
        self.metrics = Some(metrics);
        self
    }

    /// Makes every request also hold one of the account's slots in Postgres, so that
    /// all processes on the database together stay within the account's limits.
    pub fn with_shared_limits(mut self, shared: SharedSlots) -> Executor {
        self.shared = Some(shared);
        self
    }

    /// For tests: runs `hook` before each answer is normalized.
    #[doc(hidden)]
    pub fn with_before_normalize(mut self, hook: NormalizeHook) -> Executor {
        self.before_normalize = Some(hook);
        self
    }

    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// One HTTP attempt of `call` for the claim `fence` of its work item: the ledger
    /// row (only while the claim holds), the request, the answer, and for a success
    /// the raw body, then its rows, written in the transaction that completes the
    /// item (only if the claim still holds).
    #[instrument(skip_all, fields(endpoint = %call.endpoint, work_id = fence.work_id, attempt = fence.attempt))]
    pub async fn attempt(
        &self,
        run_id: i64,
        call: &CallSpec,
        fence: Fence,
    ) -> anyhow::Result<AttemptEnd> {
        if let Some(h) = self.halted() {
            return Ok(AttemptEnd::NotSent(h));
        }
        let targets = call.target_strings();
        let record = CallRecord {
            run_id: Some(run_id),
            job: Some(&call.job),
            collection: Some(&call.collection),
            endpoint: call.endpoint.name(),
            targets: &targets,
            request: &call.task,
            attempt: fence.attempt,
            api_host: Some(self.client.api_host()),
        };
        // Bought already today, for this or another collection: use it, buy nothing.
        if self.reuse_same_day
            && let Some(end) = self.reuse(call, &record, fence).await?
        {
            return Ok(end);
        }
        let permit = self.client.acquire().await;
        let estimate = call.estimated_cost(&self.prices());
        let (sent, slot) = match self.book(&record, fence, estimate).await {
            Booked::Decided(decision, slot) => (Ok(decision), slot),
            Booked::NotSent(end) => return Ok(end),
            Booked::Failed(e) => (Err(e), None),
        };
        let call_id = match sent {
            Ok(SendDecision::Sent(id)) => id,
            // The claim was lost while this call waited: spend nothing.
            Ok(SendDecision::Stale) => {
                self.release(slot).await;
                return Ok(AttemptEnd::Stale);
            }
            // Midnight kept passing between preparing the budgets and booking: try later.
            Ok(SendDecision::Unprepared) => {
                self.release(slot).await;
                return Ok(AttemptEnd::Retry {
                    throttled: true,
                    error: "the budgets' new period was not ready; trying again".into(),
                });
            }
            Ok(SendDecision::Held { caps, until }) => {
                self.release(slot).await;
                return Ok(AttemptEnd::Held(Hold { caps, until }));
            }
            Ok(SendDecision::TooLarge(caps)) => {
                self.release(slot).await;
                let names: Vec<String> = caps
                    .iter()
                    .map(|c| format!("{} ({})", c.name(), c.usd))
                    .collect();
                return Ok(AttemptEnd::Rejected(format!(
                    "not sent: its estimate of {estimate} alone is more than {}; raise the cap or split the collection's targets",
                    names.join(" and ")
                )));
            }
            Err(e) => {
                self.release(slot).await;
                return Err(e).context("writing the ledger row before the request");
            }
        };
        let sent = self.client.send(&permit, call.endpoint, &call.task).await;
        // A small answer (every refusal is one) is read while the permit is held: a
        // refusal stops the calls waiting for this permit, so it is set before letting
        // go. A large one waits for a load below, as bytes.
        let read_now = match sent {
            Err(attempt) => Ok(*attempt),
            Ok(answer) if answer.len() <= READ_UNDER_PERMIT => Ok(self.client.read(answer).await),
            Ok(answer) => Err(answer),
        };
        if let Ok(attempt) = &read_now
            && let Some(halt) = Halt::from_outcome(&attempt.outcome)
        {
            self.set_halt(halt);
        }
        // The shared slot is given back before the permit: the next call of this
        // process that takes the permit finds a free slot instead of waiting for one.
        self.release(slot).await;
        drop(permit);
        // Held until the answer's rows are written: at most `loads` large answers are
        // parsed, stored and loaded at once, whatever the requests in flight.
        let (attempt, _load) = match read_now {
            Ok(attempt) => (attempt, None),
            Err(answer) => {
                let load = self
                    .loads
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the loads semaphore is never closed");
                let attempt = self.client.read(answer).await;
                if let Some(halt) = Halt::from_outcome(&attempt.outcome) {
                    self.set_halt(halt);
                }
                (attempt, Some(load))
            }
        };
        if let Some(m) = &self.metrics {
            m.record_call(call.endpoint.name(), attempt.outcome.label(), attempt.cost);
            if fence.attempt > 1 {
                m.record_retry(call.endpoint.name());
            }
        }
        let raw_id = self
            .record_answer_patiently(call_id, call.endpoint.name(), &attempt)
            .await?;
        Ok(match attempt.outcome {
            Outcome::Ok => match (raw_id, &attempt.body) {
                (Some(raw_id), Some(body)) => {
                    self.finish(call, call_id, raw_id, received_at(&attempt), body, fence)
                        .await?
                }
                _ => AttemptEnd::Invalid("an ok answer without a body".into()),
            },
            Outcome::Halt { .. } | Outcome::DailyLimit { .. } => {
                match Halt::from_outcome(&attempt.outcome) {
                    Some(h) => AttemptEnd::Halted(h),
                    None => AttemptEnd::Rejected("refused".into()),
                }
            }
            Outcome::Rejected { message, .. } => {
                warn!(reason = %message, "the API rejected the request; not retried");
                AttemptEnd::Rejected(message)
            }
            Outcome::Unreadable { message } => {
                warn!(reason = %message, "the answer's status cannot be read; kept raw, not retried");
                AttemptEnd::Invalid(message)
            }
            Outcome::Throttled { message, .. } => AttemptEnd::Retry {
                throttled: true,
                error: message,
            },
            Outcome::Retryable { message, .. } => AttemptEnd::Retry {
                throttled: false,
                error: message,
            },
        })
    }

    /// Writes the call's ledger row with its estimate reserved against the budgets
    /// (nothing for a sandbox) and, with shared limits, takes one of the account's
    /// slots in the same statement, waiting while none is free; prepares the budgets'
    /// rows when a new period starts, and tries again after a deadlock (another
    /// statement locking the same rows). A shutdown or a halt that comes while it
    /// waits for a slot ends it unsent.
    async fn book(&self, record: &CallRecord<'_>, fence: Fence, estimate: Usd) -> Booked {
        let booking = Booking {
            estimate,
            sandbox: self.client.is_sandbox(),
            free: false,
        };
        let mut tries = 0;
        loop {
            if self.stop.is_cancelled() {
                return Booked::NotSent(AttemptEnd::Stopped);
            }
            if let Some(h) = self.halted() {
                return Booked::NotSent(AttemptEnd::NotSent(h));
            }
            let ask = self.shared.as_ref().map(SharedSlots::ask);
            let booked = self
                .store
                .book_with_slot(record, Some(fence), &booking, ask.as_ref())
                .await;
            let (decision, lease) = match booked {
                Ok(SlotBooking::Wait(wait)) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.stop.cancelled() => {}
                    }
                    continue;
                }
                Ok(SlotBooking::Booked { decision, lease }) => (decision, lease),
                Err(e) if e.is_deadlock() && tries < 2 => {
                    tries += 1;
                    warn!("booking met a deadlock; trying again");
                    continue;
                }
                Err(e) => return Booked::Failed(e),
            };
            let slot = match (&self.shared, lease) {
                (Some(shared), Some(lease)) => Some(shared.adopt(lease)),
                _ => None,
            };
            if decision == SendDecision::Unprepared && tries < 2 {
                tries += 1;
                self.release(slot).await;
                if let Err(e) = self.store.prepare_budgets(record.job).await {
                    return Booked::Failed(e);
                }
                continue;
            }
            return Booked::Decided(decision, slot);
        }
    }

    /// What an answered call costs the user and counts against the budgets.
    fn settlement(&self, attempt: &Attempt) -> Settlement {
        let processed = matches!(
            attempt.outcome,
            Outcome::Ok | Outcome::Rejected { .. } | Outcome::Unreadable { .. }
        );
        let cost = match self.flat_price() {
            // A gateway's flat price is what the user pays for a call it processed.
            Some(flat) if processed => Some(flat),
            Some(_) if attempt.http_status.is_some() => Some(Usd::ZERO),
            Some(_) => None,
            None => attempt.cost,
        };
        let budget = if attempt.http_status.is_some() {
            Some(cost.unwrap_or(Usd::ZERO))
        } else if attempt.reached {
            // No answer to say what it cost: the reservation stays.
            None
        } else {
            // The connection was never made: nothing was spent.
            Some(Usd::ZERO)
        };
        Settlement {
            cost,
            budget,
            sandbox: attempt.sandbox,
        }
    }

    async fn release(&self, slot: Option<Slot>) {
        if let (Some(shared), Some(slot)) = (&self.shared, slot) {
            shared.release(slot).await;
        }
    }

    /// Records a paid answer, retrying while the database is away (a restart): the
    /// body exists only in memory until it is stored, and losing it means buying it
    /// again.
    async fn record_answer_patiently(
        &self,
        call_id: i64,
        endpoint: &str,
        attempt: &Attempt,
    ) -> anyhow::Result<Option<i64>> {
        let settlement = self.settlement(attempt);
        let mut delay = Duration::from_millis(100);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            match self
                .store
                .record_answer(call_id, endpoint, attempt, attempt.keeps_raw(), &settlement)
                .await
            {
                Ok(raw) => return Ok(raw),
                Err(e) if tokio::time::Instant::now() + delay < deadline => {
                    warn!(error = %e, "recording a paid answer failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e).context("recording the answer in the ledger"),
            }
        }
    }

    /// Normalizes a stored answer and writes its rows, completing the work item if
    /// the claim still holds, or records why it could not be normalized.
    async fn finish(
        &self,
        call: &CallSpec,
        call_id: i64,
        raw_id: i64,
        collected_at: DateTime<Utc>,
        body: &Value,
        fence: Fence,
    ) -> anyhow::Result<AttemptEnd> {
        if let Some(hook) = &self.before_normalize {
            hook(call);
        }
        let ctx = Context {
            endpoint: call.endpoint,
            raw_response_id: raw_id,
            collected_at,
            request: &call.task,
        };
        let batch = match normalize::normalize(&ctx, body) {
            Ok(batch) => batch,
            Err(e) => {
                let why = e.to_string();
                warn!(error = %why, "answer could not be normalized; its raw body is kept");
                self.store
                    .record_normalize_failure(call_id, &why)
                    .await
                    .context("recording a normalization failure")?;
                return Ok(AttemptEnd::Invalid(why));
            }
        };
        let written = self
            .store
            .complete_with_rows(fence, call_id, &batch)
            .await
            .context("writing normalized rows")?;
        Ok(match written {
            Some(rows) => {
                if let Some(m) = &self.metrics {
                    m.record_rows(call.endpoint.name(), rows);
                }
                AttemptEnd::Stored { rows }
            }
            None => AttemptEnd::Stale,
        })
    }
}
