//! Executes planned calls: limits, retries, the ledger, raw-first storage and
//! normalization. Every HTTP attempt goes through [`Executor::attempt`]: the queue's
//! workers (daemon, `run --once`, `demo`) make one attempt per claim; `execute` loops
//! over attempts in-process for callers without a queue.
//!
//! Per attempt: the ledger row is written before the request is sent; the answer
//! completes it, and a successful body is committed to `raw_responses` in the same
//! transaction; only then is it normalized, in a transaction of its own. A body that
//! fails normalization stays stored and the call is marked `invalid_response`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument, warn};

use crate::api::{Client, Endpoint, Outcome};
use crate::jobs::Job;
use crate::money::Usd;
use crate::normalize::{self, Context};
use crate::plan::{self, CallSpec};
use crate::queue::{WorkerConfig, Workers};
use crate::store::ledger::received_at;
use crate::store::{CallRecord, Fence, NewWork, RunKind, RunStatus, Store};
use crate::telemetry::Metrics;

/// Why every further call of a run was stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Halt {
    pub code: Option<i64>,
    pub message: String,
    /// When calls may resume on their own (the daily cost limit lifts at 00:00 UTC);
    /// `None`: only a restart with fixed credentials or funds resumes them.
    pub until: Option<DateTime<Utc>>,
}

impl Halt {
    fn from_outcome(outcome: &Outcome) -> Option<Halt> {
        match outcome {
            Outcome::Halt { code, message } => Some(Halt {
                code: Some(*code),
                message: message.clone(),
                until: None,
            }),
            Outcome::DailyLimit { message } => Some(Halt {
                code: Some(crate::api::status::DAILY_LIMIT_CODE),
                message: message.clone(),
                until: Some(next_utc_midnight(Utc::now())),
            }),
            _ => None,
        }
    }

    /// What the operator should do about it.
    pub fn hint(&self) -> &'static str {
        match self.code {
            Some(40100) | Some(40104) => {
                "check the API credentials (api.login and api.password, or DATAFORSEO_LOGIN and DATAFORSEO_PASSWORD, or api.token)"
            }
            Some(40203) => {
                "the account's daily cost limit is reached; calls can resume after 00:00 UTC"
            }
            Some(40200) | Some(40201) | Some(40204) | Some(40207) | Some(40210) => {
                "check the account's balance and payment settings"
            }
            _ => "check the account",
        }
    }
}

impl std::fmt::Display for Halt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "the API refused the request ({code} {})", self.message)?,
            None => write!(f, "the API refused the request ({})", self.message)?,
        }
        write!(f, "; {}", self.hint())
    }
}

/// 00:00 UTC after `now`.
pub fn next_utc_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    (now.date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
}

/// What one job's run did.
#[derive(Clone, Debug)]
pub struct JobReport {
    pub job: String,
    pub run_id: i64,
    pub status: RunStatus,
    /// HTTP requests, as the ledger counts them.
    pub calls: i64,
    /// Logical calls that ended without data.
    pub failed: i64,
    pub rows: i64,
    pub cost: Usd,
    pub errors: Vec<String>,
}

/// What a `run --once` did.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub jobs: Vec<JobReport>,
    pub halt: Option<Halt>,
}

impl RunReport {
    pub fn ok(&self) -> bool {
        self.halt.is_none() && self.jobs.iter().all(|j| j.status == RunStatus::Succeeded)
    }
    pub fn calls(&self) -> i64 {
        self.jobs.iter().map(|j| j.calls).sum()
    }
    pub fn failed(&self) -> i64 {
        self.jobs.iter().map(|j| j.failed).sum()
    }
    pub fn rows(&self) -> i64 {
        self.jobs.iter().map(|j| j.rows).sum()
    }
    pub fn cost(&self) -> Usd {
        self.jobs.iter().map(|j| j.cost).sum()
    }

    /// The one-line summary `run --once` prints.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} jobs, {} calls, {} failed, {} rows, cost {}",
            self.jobs.len(),
            self.calls(),
            self.failed(),
            self.rows(),
            self.cost()
        );
        if let Some(h) = &self.halt {
            s.push_str(&format!("; halted: {h}"));
        }
        s
    }
}

/// What `replay` did.
#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    pub responses: u64,
    pub rows: u64,
    pub failures: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Executor {
    store: Store,
    client: Client,
    halt: Arc<Mutex<Option<Halt>>>,
    shared: Option<SharedLimits>,
    metrics: Option<Arc<Metrics>>,
    /// Once cancelled, calls still waiting for a slot are not sent.
    stop: CancellationToken,
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
        }
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

    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Why calls are stopped, if they are.
    pub async fn halted(&self) -> Option<Halt> {
        let mut h = self.halt.lock().expect("halt lock");
        if h.as_ref()
            .and_then(|h| h.until)
            .is_some_and(|t| t <= Utc::now())
        {
            info!("the pause is over; calls resume");
            *h = None;
        }
        h.clone()
    }

    pub(crate) fn set_halt(&self, halt: Halt) {
        let mut h = self.halt.lock().expect("halt lock");
        if h.is_none() {
            warn!(code = halt.code, reason = %halt.message, "stopping every further call");
            *h = Some(halt);
        }
    }

    /// Checks the credentials with the free `appendix/user_data` before anything is
    /// spent. The outer error is a database failure; the inner one a refusal.
    #[instrument(skip_all)]
    pub async fn check_credentials(&self, run_id: Option<i64>) -> anyhow::Result<Result<(), Halt>> {
        let request = Value::Object(Default::default());
        let permit = self.client.acquire().await;
        let call_id = self
            .store
            .record_sent(&CallRecord {
                run_id,
                job: None,
                collection: None,
                endpoint: "appendix/user_data",
                targets: &[],
                request: &request,
                attempt: 1,
            })
            .await
            .context("recording the credentials check")?;
        let attempt = self.client.user_data(&permit).await;
        drop(permit);
        self.store
            .record_answer(call_id, "appendix/user_data", &attempt, false)
            .await
            .context("recording the credentials check")?;
        if let Some(halt) = Halt::from_outcome(&attempt.outcome) {
            self.set_halt(halt.clone());
            return Ok(Err(halt));
        }
        if attempt.outcome != Outcome::Ok {
            // A network fault here is not a refusal; the paid calls retry on their own.
            warn!(
                outcome = attempt.outcome.label(),
                "credentials check inconclusive"
            );
        }
        Ok(Ok(()))
    }

    /// Makes every request also hold one of the account's slots in Postgres, so that
    /// all processes on the database together stay within the account's limits.
    pub fn with_shared_limits(mut self, shared: SharedLimits) -> Executor {
        self.shared = Some(shared);
        self
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
        if let Some(h) = self.halted().await {
            return Ok(AttemptEnd::NotSent(h));
        }
        let permit = self.client.acquire().await;
        let slot = match &self.shared {
            Some(shared) => Some(shared.acquire(&self.store).await?),
            None => None,
        };
        // If this future is dropped (shutdown, a panic) before the explicit release,
        // the slot stops being renewed and lapses instead of leaking.
        let _unrenewed_on_drop =
            self.shared
                .as_ref()
                .zip(slot)
                .map(|(shared, slot)| StopRenewing {
                    held: shared.held.clone(),
                    slot,
                });
        // A shutdown or a halt may have come while this call waited for its slot.
        if self.stop.is_cancelled() {
            if let (Some(shared), Some(slot)) = (&self.shared, slot) {
                shared.release(&self.store, slot).await;
            }
            return Ok(AttemptEnd::Stopped);
        }
        if let Some(h) = self.halted().await {
            if let (Some(shared), Some(slot)) = (&self.shared, slot) {
                shared.release(&self.store, slot).await;
            }
            return Ok(AttemptEnd::NotSent(h));
        }
        let targets = call.target_strings();
        let sent = self
            .store
            .record_sent_fenced(
                &CallRecord {
                    run_id: Some(run_id),
                    job: Some(&call.job),
                    collection: Some(&call.collection),
                    endpoint: call.endpoint.name(),
                    targets: &targets,
                    request: &call.task,
                    attempt: fence.attempt,
                },
                Some(fence),
            )
            .await;
        let call_id = match sent {
            Ok(Some(id)) => id,
            // The claim was lost while this call waited: spend nothing.
            Ok(None) | Err(_) => {
                if let (Some(shared), Some(slot)) = (&self.shared, slot) {
                    shared.release(&self.store, slot).await;
                }
                return match sent {
                    Err(e) => Err(e).context("writing the ledger row before the request"),
                    _ => Ok(AttemptEnd::Stale),
                };
            }
        };
        let attempt = self.client.post(&permit, call.endpoint, &call.task).await;
        // A refusal stops the calls waiting for this permit: set it before letting go.
        if let Some(halt) = Halt::from_outcome(&attempt.outcome) {
            self.set_halt(halt);
        }
        drop(permit);
        if let (Some(shared), Some(slot)) = (&self.shared, slot) {
            shared.release(&self.store, slot).await;
        }
        if let Some(m) = &self.metrics {
            m.record_call(call.endpoint.name(), attempt.outcome.label(), attempt.cost);
            if fence.attempt > 1 {
                m.record_retry(call.endpoint.name());
            }
        }
        let ok = attempt.outcome == Outcome::Ok;
        let raw_id = self
            .record_answer_patiently(call_id, call.endpoint.name(), &attempt, ok)
            .await?;
        Ok(match &attempt.outcome {
            Outcome::Ok => {
                let body = attempt.body.as_ref().expect("an ok answer has a body");
                let raw_id = raw_id.expect("an ok body is stored");
                self.finish(call, call_id, raw_id, received_at(&attempt), body, fence)
                    .await?
            }
            Outcome::Halt { .. } | Outcome::DailyLimit { .. } => {
                AttemptEnd::Halted(Halt::from_outcome(&attempt.outcome).expect("a halt"))
            }
            Outcome::Rejected { message, .. } => {
                warn!(reason = %message, "the API rejected the request; not retried");
                AttemptEnd::Rejected(message.clone())
            }
            Outcome::Throttled { message, .. } => AttemptEnd::Retry {
                throttled: true,
                error: message.clone(),
            },
            Outcome::Retryable { message, .. } => AttemptEnd::Retry {
                throttled: false,
                error: message.clone(),
            },
        })
    }

    /// Records a paid answer, retrying while the database is away (a restart): the
    /// body exists only in memory until it is stored, and losing it means buying it
    /// again.
    async fn record_answer_patiently(
        &self,
        call_id: i64,
        endpoint: &str,
        attempt: &crate::api::Attempt,
        keep_raw: bool,
    ) -> anyhow::Result<Option<i64>> {
        let mut delay = Duration::from_millis(100);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            match self
                .store
                .record_answer(call_id, endpoint, attempt, keep_raw)
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

    /// For a re-claimed work item: if an earlier attempt's answer was paid for and
    /// stored raw (its worker died before the rows were written), finishes the item
    /// from that answer without a request. `None` when there is no such answer.
    #[instrument(skip_all, fields(endpoint = %call.endpoint))]
    pub async fn recover(
        &self,
        call: &CallSpec,
        fence: Fence,
    ) -> anyhow::Result<Option<AttemptEnd>> {
        let abandoned = self
            .store
            .abandon_unanswered(fence, call.estimated_cost())
            .await
            .context("accounting for requests abandoned in flight")?;
        if abandoned > 0 {
            warn!(
                abandoned,
                "requests of an earlier claim never got their answer; their list price is booked as an estimate"
            );
        }
        let Some((call_id, raw_id, received_at, body)) = self
            .store
            .paid_answer(fence.work_id)
            .await
            .context("looking for an answer already paid for")?
        else {
            return Ok(None);
        };
        info!(
            raw_response_id = raw_id,
            "finishing from an answer already paid for; no request"
        );
        Ok(Some(
            self.finish(call, call_id, raw_id, received_at, &body, fence)
                .await?,
        ))
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

    /// Runs every collection of `jobs` once, now: one run per job, its calls enqueued
    /// in the work queue and executed by workers of this process (and of any daemon
    /// on the same database), so a call is never made twice.
    #[instrument(skip_all, fields(jobs = jobs.len(), kind = kind.as_str()))]
    pub async fn run_once(
        &self,
        jobs: &[&Job],
        kind: RunKind,
        today: NaiveDate,
    ) -> anyhow::Result<RunReport> {
        let max_attempts = self.client.retry_policy().max_attempts as i32;
        let mut runs = Vec::new();
        for job in jobs {
            let work: Vec<NewWork> = plan::plan_job(job, today).iter().map(new_work).collect();
            let run_id = self
                .store
                .start_run_with_work(&job.name, kind, max_attempts, &work)
                .await
                .context("starting a run with its calls")?;
            runs.push(run_id);
        }
        if let Err(h) = self.check_credentials(runs.first().copied()).await? {
            for run in &runs {
                self.store
                    .cancel_queued(*run, &format!("not sent: {h}"))
                    .await?;
            }
        } else {
            let workers = Workers::new(
                self.clone(),
                WorkerConfig::for_once(self.client.limits().max_in_flight()),
            );
            workers
                .run_until_done(&runs, CancellationToken::new())
                .await
                .context("executing the queued calls")?;
        }
        let mut report = RunReport::default();
        for run in runs {
            self.store.close_run_if_done(run).await?;
            let row = self.store.run_summary(run).await?;
            info!(job = %row.job, run_id = run, status = %row.status, calls = row.calls, rows = row.rows_written, cost = %row.cost, "run finished");
            report.jobs.push(JobReport {
                job: row.job,
                run_id: run,
                status: RunStatus::parse(&row.status).unwrap_or(RunStatus::Failed),
                calls: row.calls,
                failed: row.failed_calls,
                rows: row.rows_written,
                cost: row.cost,
                errors: self.store.run_errors(run).await?,
            });
        }
        report.halt = self.halted().await;
        Ok(report)
    }
}

/// A planned call as a queue row.
pub fn new_work(c: &CallSpec) -> NewWork {
    NewWork {
        job: c.job.clone(),
        collection: c.collection.clone(),
        endpoint: c.endpoint.name().to_string(),
        targets: c.target_strings(),
        task: c.task.clone(),
        estimated_rows: c.estimated_rows,
    }
}

/// How one HTTP attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptEnd {
    /// The answer is stored and its rows written.
    Stored { rows: u64 },
    /// The answer is stored raw but could not be normalized.
    Invalid(String),
    /// Worth another attempt; a throttle does not count as a failure.
    Retry { throttled: bool, error: String },
    /// The API will not take this request; never retried.
    Rejected(String),
    /// The account was refused: every further call stops.
    Halted(Halt),
    /// Not sent because calls were already stopped.
    NotSent(Halt),
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
            AttemptEnd::Stale => Some("the claim was lost to another worker".into()),
            AttemptEnd::Stopped => Some("not sent: shutting down".into()),
        }
    }
}

/// Takes a slot out of the renewed set when dropped.
struct StopRenewing {
    held: Arc<Mutex<std::collections::HashSet<i32>>>,
    slot: i32,
}

impl Drop for StopRenewing {
    fn drop(&mut self) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(&self.slot);
        }
    }
}

/// The account's limits held in Postgres, shared by every process on the database.
#[derive(Clone, Debug)]
pub struct SharedLimits {
    /// Who holds a slot (host:pid), for `api_slots.holder`.
    pub holder: String,
    pub max_in_flight: i32,
    pub max_per_minute: i64,
    /// How long a slot stays held if its holder dies; [`SharedLimits::keep_alive`]
    /// renews the slots of a live holder.
    pub lease: Duration,
    /// Slots this process holds now: only these are renewed, so a slot whose release
    /// failed (Postgres restarting) lapses instead of leaking.
    pub held: Arc<Mutex<std::collections::HashSet<i32>>>,
}

impl SharedLimits {
    pub fn new(
        holder: String,
        max_in_flight: i32,
        max_per_minute: i64,
        lease: Duration,
    ) -> SharedLimits {
        SharedLimits {
            holder,
            max_in_flight,
            max_per_minute,
            lease,
            held: Arc::default(),
        }
    }

    /// Renews this holder's slot leases every third of a lease until `stop`.
    pub fn keep_alive(&self, store: Store, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(this.lease / 3) => {}
                }
                let held: Vec<i32> = this
                    .held
                    .lock()
                    .expect("held slots")
                    .iter()
                    .copied()
                    .collect();
                if held.is_empty() {
                    continue;
                }
                if let Err(e) = store.renew_api_slots(&this.holder, &held, this.lease).await {
                    warn!(error = %e, "renewing the shared API slots failed; retrying");
                }
            }
        })
    }

    async fn acquire(&self, store: &Store) -> anyhow::Result<i32> {
        loop {
            match store
                .acquire_api_slot(
                    &self.holder,
                    self.max_in_flight,
                    self.max_per_minute,
                    self.lease,
                )
                .await
                .context("taking a shared API slot")?
            {
                Ok(slot) => {
                    self.held.lock().expect("held slots").insert(slot);
                    return Ok(slot);
                }
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    async fn release(&self, store: &Store, slot: i32) {
        self.held.lock().expect("held slots").remove(&slot);
        if let Err(e) = store.release_api_slot(slot, &self.holder).await {
            // No longer renewed: the lease lapses on its own.
            warn!(error = %e, slot, "releasing a shared API slot failed");
        }
    }
}

/// Rebuilds normalized rows from stored raw responses, oldest first, without a single
/// API call. Each response is its own transaction; a response that fails to normalize
/// is reported and skipped.
#[instrument(skip_all)]
pub async fn replay(
    store: &Store,
    endpoints: &[Endpoint],
    since: Option<NaiveDate>,
) -> anyhow::Result<ReplayReport> {
    let mut report = ReplayReport::default();
    let mut after = 0;
    loop {
        let page = store
            .raw_responses_after(after, endpoints, since, 500)
            .await
            .context("reading raw responses")?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for raw in &page {
            report.responses += 1;
            let ctx = Context {
                endpoint: raw.endpoint,
                raw_response_id: raw.id,
                collected_at: raw.received_at,
                request: &raw.request,
            };
            match normalize::normalize(&ctx, &raw.body) {
                Ok(batch) => {
                    report.rows += store
                        .store_normalized(&batch)
                        .await
                        .with_context(|| format!("writing the rows of raw response {}", raw.id))?;
                }
                Err(e) => report
                    .failures
                    .push(format!("raw response {}: {e}", raw.id)),
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daily_cost_limit_pause_ends_at_the_next_utc_midnight() {
        let now: DateTime<Utc> = "2026-11-25T13:30:00Z".parse().unwrap();
        assert_eq!(
            next_utc_midnight(now),
            "2026-11-26T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let just_before: DateTime<Utc> = "2026-11-25T23:59:59Z".parse().unwrap();
        assert_eq!(
            next_utc_midnight(just_before),
            "2026-11-26T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn a_refusal_says_what_to_check() {
        let h = Halt {
            code: Some(40100),
            message: "You are not authorized.".into(),
            until: None,
        };
        let text = h.to_string();
        assert!(
            text.contains("40100") && text.contains("credentials"),
            "{text}"
        );
        let h = Halt {
            code: Some(40210),
            message: "Insufficient funds.".into(),
            until: None,
        };
        assert!(h.to_string().contains("balance"));
    }
}
