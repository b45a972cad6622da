//! One HTTP attempt of one planned call, for one claim of its work item: the limits,
//! the ledger, raw-first storage and normalization. The queue's workers call
//! [`Executor::attempt`] once per claim (and [`Executor::recover`] first on a re-claim);
//! what happens to the item afterwards (retry, fail, cancel) is theirs to decide.
//!
//! Per attempt: the ledger row is written before the request is sent (only while the
//! claim holds). The answer is made durable before anything else waits: a small one
//! is read at once and completes the row, its JSON body (of an HTTP 2xx answer)
//! committed to `raw_responses` in the same transaction; a large one is committed as it
//! arrived, unread (the row `received`), and read back from the database under a load
//! permit, which completes the row and settles its reservation. Only then is it
//! normalized, and its rows are written in the transaction that completes the item. An
//! answer that cannot be normalized stays stored and the call fails as
//! `invalid_response`.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{instrument, warn};

use crate::api::client::Answer;
use crate::api::limits::Permit;
use crate::api::prices::Prices;
use crate::api::{Attempt, Client, Outcome};
use crate::collect::group::{GROUP_ROWS, Groups};
use crate::collect::slots::{SharedSlots, Slot};
use crate::money::Usd;
use crate::money::budget::Hold;
use crate::ops::metrics::Metrics;
use crate::plan::CallSpec;
use crate::store::group::{AnswerMember, BookMember, CompleteMember};
use crate::store::ledger::{Receipt, StoredBody, arrived};
use crate::store::{
    Booking, CallRecord, Fence, SendDecision, Settlement, SlotBooking, Store, StoreError,
};
use crate::warehouse::normalize::{self, Context};

pub use halt::{CredentialsCheck, Halt, HaltBy, next_utc_midnight};

mod halt;
mod paging;
mod record;
mod recover;
mod rows;

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

/// What [`Executor::receive`] made of an answer.
enum Received {
    /// Read at once (small, or no answer at all) and recorded, with the id of its raw
    /// body when it has one.
    Read(Attempt, Option<i64>),
    /// Committed as it arrived, unread (large), as the body `raw_id`: read from memory
    /// when a load permit was free at once (held here with the bytes), else read back
    /// from the database under a load permit.
    Stored {
        raw_id: i64,
        held: Option<(Answer, tokio::sync::OwnedSemaphorePermit)>,
    },
    /// Large but not stored as it came (not a JSON body of an HTTP 2xx answer): read
    /// from its bytes under a load permit.
    Bytes(Answer),
}

/// Answers up to this size are read while the request's permit is held; larger ones
/// (data, never a refusal) are committed unread and read back under a load permit.
const READ_UNDER_PERMIT: usize = 64 * 1024;

/// Large answers read back, parsed and loaded at once by default: enough to keep two
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
    /// Large answers being read back, parsed and loaded at once (see [`DEFAULT_LOADS`]).
    loads: Arc<tokio::sync::Semaphore>,
    /// Writes grouped with other calls' (`queue.group`); `None`: each call's alone.
    groups: Option<Groups>,
    /// The account's own spending limit per minute, reserved against before a call.
    account_caps: crate::money::budget::AccountCaps,
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
            groups: None,
            account_caps: Default::default(),
        }
    }

    /// Holds each call to the account's own limits beyond its daily spending cap (kept
    /// current by the daemon's samples): its estimate reserved in its minute against
    /// `money.limits.minute`, and one of the day's requests taken against
    /// `rates.limits.day`.
    pub fn with_account_caps(mut self, caps: crate::money::budget::AccountCaps) -> Executor {
        self.account_caps = caps;
        self
    }

    /// Writes each call's booking, answer, completion (and who buys it, its slot
    /// given back, its run closed) in groups with other calls' (`collect::group`).
    pub fn with_groups(mut self, groups: Groups) -> Executor {
        self.groups = Some(groups);
        self
    }

    /// Whether writes are grouped with other calls'.
    pub fn grouped(&self) -> bool {
        self.groups.is_some()
    }

    /// Closes the run once none of its work is pending, grouped with other calls'
    /// closes when writes are grouped (`ops::run_log::close_if_done`).
    pub async fn close_if_done(&self, run_id: i64) -> Result<bool, StoreError> {
        if let Some(groups) = &self.groups
            && let Some(Ok(closed)) = groups.close(run_id).await
        {
            if closed {
                crate::ops::run_log::log_finished(&self.store, run_id).await;
            }
            return Ok(closed);
        }
        crate::ops::run_log::close_if_done(&self.store, run_id).await
    }

    /// At most `n` large answers read back, parsed and loaded at once.
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
        let received = self
            .receive(call, call_id, fence, sent, slot, permit)
            .await?;
        // Held until the answer's rows are written: at most `loads` large answers are
        // read, normalized and loaded at once, whatever the requests in flight.
        match received {
            Received::Read(attempt, raw_id) => {
                let raw = raw_id.map(|id| StoredBody::of(id, &attempt));
                self.conclude(call, call_id, raw, attempt, fence).await
            }
            Received::Stored {
                raw_id,
                held: Some((answer, _load)),
            } => {
                let raw = StoredBody {
                    raw_id,
                    sent_at: answer.started_at(),
                    received_at: arrived(answer.started_at(), answer.duration()),
                };
                let (attempt, raw) = self
                    .read_received(call, call_id, answer, raw, fence.attempt > 1)
                    .await?;
                self.conclude(call, call_id, Some(raw), attempt, fence)
                    .await
            }
            Received::Stored { held: None, .. } => {
                let _load = self.load_permit().await;
                match self.read_stored(call, call_id, fence.attempt > 1).await? {
                    Some((attempt, raw)) => {
                        self.conclude(call, call_id, Some(raw), attempt, fence)
                            .await
                    }
                    None => Ok(AttemptEnd::Retry {
                        throttled: false,
                        error: "the answer stored on arrival is gone; asking again".into(),
                    }),
                }
            }
            Received::Bytes(answer) => {
                let _load = self.load_permit().await;
                let attempt = self.client.read(answer).await;
                self.note(call, &attempt, fence.attempt > 1);
                let (attempt, raw_id) =
                    self.record_answer_patiently(call, call_id, attempt).await?;
                let raw = raw_id.map(|id| StoredBody::of(id, &attempt));
                self.conclude(call, call_id, raw, attempt, fence).await
            }
        }
    }

    /// Makes an answer durable before anything else waits, while the request's shared
    /// slot and permit are let go (the slot first: the next call of this process that
    /// takes the permit finds a free slot instead of waiting for one). A small answer
    /// (every refusal is one), or none, is read at once, a refusal set before the
    /// permit goes (it stops the calls waiting for it), and recorded with its raw body
    /// in one commit, under way as the slot is given back. A large JSON body of an
    /// HTTP 2xx answer is committed as it came, unread ([`Store::record_receipt`]),
    /// before the permit goes, and its bytes let go: it is read back from the database
    /// under a load permit. Any other large body waits, as bytes, for a load permit.
    async fn receive(
        &self,
        call: &CallSpec,
        call_id: i64,
        fence: Fence,
        sent: Result<Answer, Box<Attempt>>,
        slot: Option<Slot>,
        permit: Permit,
    ) -> anyhow::Result<Received> {
        let endpoint = call.endpoint.name();
        let answer = match sent {
            Ok(answer) if answer.len() > READ_UNDER_PERMIT => answer,
            small => {
                let attempt = match small {
                    Ok(answer) => self.client.read(answer).await,
                    Err(attempt) => *attempt,
                };
                self.note(call, &attempt, fence.attempt > 1);
                let (recorded, ()) = tokio::join!(
                    self.record_answer_patiently(call, call_id, attempt),
                    async {
                        self.release(slot).await;
                        drop(permit);
                    }
                );
                let (attempt, raw_id) = recorded?;
                return Ok(Received::Read(attempt, raw_id));
            }
        };
        // The permit is held until the body is stored: this process has no more
        // answers outside the database than requests in flight.
        let (stored, ()) = tokio::join!(
            self.record_receipt_patiently(call_id, endpoint, &answer),
            self.release(slot)
        );
        drop(permit);
        Ok(match stored? {
            // Stored: read from memory only with a load permit free at once; else its
            // bytes go now, and it is read back from the database when its turn comes.
            Some(raw_id) => Received::Stored {
                raw_id,
                held: match self.loads.clone().try_acquire_owned() {
                    Ok(load) => Some((answer, load)),
                    Err(_) => None,
                },
            },
            None => Received::Bytes(answer),
        })
    }

    /// Notes an answer read: a refusal stops every further call; the call (and a
    /// retry) counted in the metrics.
    fn note(&self, call: &CallSpec, attempt: &Attempt, retry: bool) {
        if let Some(halt) = Halt::from_outcome(&attempt.outcome) {
            self.set_halt(halt);
        }
        if let Some(m) = &self.metrics {
            m.record_call(call.endpoint.name(), attempt.outcome.label(), attempt.cost);
            if retry {
                m.record_retry(call.endpoint.name());
            }
        }
    }

    /// One of the load permits: held while a large answer is read, normalized and
    /// loaded.
    async fn load_permit(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.loads
            .clone()
            .acquire_owned()
            .await
            .expect("the loads semaphore is never closed")
    }

    /// How an attempt ends once its answer was read and recorded: data is normalized
    /// from its stored body (`raw`) and loaded, a refusal or an error ends it as it
    /// says.
    async fn conclude(
        &self,
        call: &CallSpec,
        call_id: i64,
        raw: Option<StoredBody>,
        attempt: Attempt,
        fence: Fence,
    ) -> anyhow::Result<AttemptEnd> {
        Ok(match attempt.outcome {
            Outcome::Ok => match (raw, &attempt.body) {
                (Some(raw), Some(body)) => self.finish(call, call_id, raw, body, fence).await?,
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
}
