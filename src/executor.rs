//! Executes planned calls: limits, retries, the ledger, raw-first storage and
//! normalization. `run --once`, `demo` and (later) the daemon's workers all go through
//! [`Executor::execute`].
//!
//! Per attempt: the ledger row is written before the request is sent; the answer
//! completes it, and a successful body is committed to `raw_responses` in the same
//! transaction; only then is it normalized, in a transaction of its own. A body that
//! fails normalization stays stored and the call is marked `invalid_response`.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use chrono::NaiveDate;
use futures::StreamExt;
use serde_json::Value;
use tracing::{info, instrument, warn};

use crate::api::{Client, Endpoint, Outcome};
use crate::jobs::Job;
use crate::money::Usd;
use crate::normalize::{self, Context};
use crate::plan::{self, CallSpec};
use crate::store::ledger::received_at;
use crate::store::{CallRecord, RunKind, RunStatus, Store};

/// Why every further call of a run was stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Halt {
    pub code: Option<i64>,
    pub message: String,
}

impl Halt {
    fn from_outcome(outcome: &Outcome) -> Option<Halt> {
        match outcome {
            Outcome::Halt { code, message } => Some(Halt {
                code: Some(*code),
                message: message.clone(),
            }),
            Outcome::DailyLimit { message } => Some(Halt {
                code: Some(crate::api::status::DAILY_LIMIT_CODE),
                message: message.clone(),
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

/// How one logical call ended.
#[derive(Clone, Debug, Default)]
pub struct CallResult {
    pub ok: bool,
    /// HTTP requests made for it (0 when a halt stopped it before the first).
    pub attempts: u32,
    pub rows: u64,
    pub error: Option<String>,
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
}

impl Executor {
    pub fn new(store: Store, client: Client) -> Executor {
        Executor {
            store,
            client,
            halt: Arc::new(Mutex::new(None)),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Why calls are stopped, if they are.
    pub async fn halted(&self) -> Option<Halt> {
        self.halt.lock().expect("halt lock").clone()
    }

    fn set_halt(&self, halt: Halt) {
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

    /// Executes one call to its end: success, a fatal answer, a halt or exhausted
    /// retries. `Err` only when the database fails.
    #[instrument(skip_all, fields(endpoint = %call.endpoint, targets = call.targets.len()))]
    pub async fn execute(
        &self,
        run_id: Option<i64>,
        call: &CallSpec,
    ) -> anyhow::Result<CallResult> {
        let policy = self.client.retry_policy().clone();
        let mut delays = policy.delays();
        let targets = call.target_strings();
        let mut result = CallResult::default();
        let mut last_error = String::new();
        for attempt_no in 1..=policy.max_attempts.max(1) {
            if let Some(h) = self.halted().await {
                result.error = Some(format!("not sent: {h}"));
                return Ok(result);
            }
            let permit = self.client.acquire().await;
            // A halt may have come while this call waited for its slot.
            if let Some(h) = self.halted().await {
                result.error = Some(format!("not sent: {h}"));
                return Ok(result);
            }
            let call_id = self
                .store
                .record_sent(&CallRecord {
                    run_id,
                    job: Some(&call.job),
                    collection: Some(&call.collection),
                    endpoint: call.endpoint.name(),
                    targets: &targets,
                    request: &call.task,
                    attempt: attempt_no as i32,
                })
                .await
                .context("writing the ledger row before the request")?;
            result.attempts = attempt_no;
            let attempt = self.client.post(&permit, call.endpoint, &call.task).await;
            drop(permit);
            let ok = attempt.outcome == Outcome::Ok;
            let raw_id = self
                .store
                .record_answer(call_id, call.endpoint.name(), &attempt, ok)
                .await
                .context("recording the answer in the ledger")?;
            match &attempt.outcome {
                Outcome::Ok => {
                    let body = attempt.body.as_ref().expect("an ok answer has a body");
                    let raw_id = raw_id.expect("an ok body is stored");
                    let ctx = Context {
                        endpoint: call.endpoint,
                        raw_response_id: raw_id,
                        collected_at: received_at(&attempt),
                        request: &call.task,
                    };
                    match normalize::normalize(&ctx, body) {
                        Ok(batch) => {
                            result.rows = self
                                .store
                                .store_normalized(Some(call_id), &batch)
                                .await
                                .context("writing normalized rows")?;
                            result.ok = true;
                        }
                        Err(e) => {
                            let why = e.to_string();
                            warn!(error = %why, "answer could not be normalized; its raw body is kept");
                            self.store
                                .record_normalize_failure(call_id, &why)
                                .await
                                .context("recording a normalization failure")?;
                            result.error = Some(why);
                        }
                    }
                    return Ok(result);
                }
                Outcome::Halt { .. } | Outcome::DailyLimit { .. } => {
                    let halt = Halt::from_outcome(&attempt.outcome).expect("a halt");
                    result.error = Some(halt.to_string());
                    self.set_halt(halt);
                    return Ok(result);
                }
                Outcome::Rejected { message, .. } => {
                    warn!(reason = %message, "the API rejected the request; not retried");
                    result.error = Some(message.clone());
                    return Ok(result);
                }
                Outcome::Throttled { message, .. } => {
                    // The client paused every caller; the next acquire waits it out.
                    last_error = message.clone();
                }
                Outcome::Retryable { message, .. } => {
                    last_error = message.clone();
                    if attempt_no < policy.max_attempts {
                        let delay = delays.next().unwrap_or(policy.max_delay);
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
        result.error = Some(format!(
            "gave up after {} attempts: {last_error}",
            result.attempts
        ));
        Ok(result)
    }

    /// Runs every collection of `jobs` once, now: one run per job.
    #[instrument(skip_all, fields(jobs = jobs.len(), kind = kind.as_str()))]
    pub async fn run_once(
        &self,
        jobs: &[&Job],
        kind: RunKind,
        today: NaiveDate,
    ) -> anyhow::Result<RunReport> {
        let mut runs = Vec::new();
        for job in jobs {
            let run_id = self
                .store
                .start_run(&job.name, kind)
                .await
                .context("starting a run")?;
            runs.push((*job, run_id, plan::plan_job(job, today)));
        }
        let mut report = RunReport::default();
        let first_run = runs.first().map(|r| r.1);
        let refused = self.check_credentials(first_run).await?.err();
        let width = self.client.limits().max_in_flight() * 2;
        for (job, run_id, calls) in runs {
            let mut errors = Vec::new();
            let (mut failed, mut rows) = (0i64, 0i64);
            if refused.is_none() {
                let results: Vec<(usize, anyhow::Result<CallResult>)> =
                    futures::stream::iter(calls.iter().enumerate())
                        .map(|(i, c)| async move { (i, self.execute(Some(run_id), c).await) })
                        .buffer_unordered(width)
                        .collect()
                        .await;
                for (i, r) in results {
                    let r = r?;
                    rows += r.rows as i64;
                    if !r.ok {
                        failed += 1;
                        let c = &calls[i];
                        errors.push(format!(
                            "{} {} [{}]: {}",
                            c.collection,
                            c.endpoint,
                            summarize_targets(c),
                            r.error.unwrap_or_default()
                        ));
                    }
                }
            }
            let halt = self.halted().await;
            let status = if halt.is_some() {
                RunStatus::Halted
            } else if failed > 0 {
                RunStatus::Failed
            } else {
                RunStatus::Succeeded
            };
            let message = halt
                .as_ref()
                .map(ToString::to_string)
                .or_else(|| errors.first().cloned());
            let totals = self
                .store
                .finish_run(run_id, status, failed, rows, message.as_deref())
                .await
                .context("finishing a run")?;
            info!(job = %job.name, run_id, status = status.as_str(), calls = totals.calls, rows, cost = %totals.cost, "run finished");
            report.jobs.push(JobReport {
                job: job.name.clone(),
                run_id,
                status,
                calls: totals.calls,
                failed,
                rows,
                cost: totals.cost,
                errors,
            });
        }
        report.halt = self.halted().await;
        Ok(report)
    }
}

fn summarize_targets(c: &CallSpec) -> String {
    match c.targets.len() {
        0 => String::new(),
        1 => c.targets[0].as_str().to_string(),
        n => format!("{} and {} more", c.targets[0].as_str(), n - 1),
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
                        .store_normalized(None, &batch)
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
