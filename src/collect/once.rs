//! `run --once` and `demo`: every collection of the selected jobs once, now. One run
//! per job, its calls enqueued in the work queue and executed by this process's
//! workers, which claim only the work of these runs (a daemon on the same database
//! never claims it, and shares the account's limits with it).
//!
//! A signal (`shutdown`) stops claiming, lets calls in flight finish within the grace
//! period, cancels the rest and closes the runs `interrupted`: nothing is left behind
//! for another process to pay for.

use anyhow::Context as _;
use chrono::NaiveDate;
use tracing::{info, instrument, warn};

use crate::collect::executor::{CredentialsCheck, Executor, Halt};
use crate::collect::workers::{self, Shutdown, WorkSet, WorkerConfig, Workers};
use crate::jobs::Job;
use crate::money::Usd;
use crate::plan::CallSpec;
use crate::store::{RunKind, RunStatus};
use crate::words::{CallEnds, count};

/// What one job's run did.
#[derive(Clone, Debug)]
pub struct JobReport {
    pub job: String,
    pub run_id: i64,
    pub status: RunStatus,
    /// Its planned calls by their end.
    pub ends: CallEnds,
    pub rows: i64,
    /// Items of its answers that could not be read, set aside (`rejected_items`).
    pub set_aside: i64,
    /// Pages of its listings whose total changed while they were paged.
    pub pages_changed: i64,
    pub cost: Usd,
    pub errors: Vec<String>,
}

/// What a once-run did.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub jobs: Vec<JobReport>,
    pub halt: Option<Halt>,
    /// A signal stopped the run before its work was done.
    pub interrupted: bool,
    /// Calls a budget kept from being made: (budget, calls).
    pub held: Vec<(String, i64)>,
}

impl JobReport {
    /// The line `run --once` prints for the job, the one the daemon logs for a run.
    pub fn line(&self) -> String {
        let figures = crate::ops::run_log::Figures {
            ends: self.ends,
            rows: self.rows,
            set_aside: self.set_aside,
            pages_changed: self.pages_changed,
            cost: self.cost,
        };
        crate::ops::run_log::line(&self.job, self.status.as_str(), &figures)
    }
}

impl RunReport {
    pub fn ok(&self) -> bool {
        self.halt.is_none()
            && !self.interrupted
            && self.held.is_empty()
            && self.jobs.iter().all(|j| j.status == RunStatus::Succeeded)
    }
    /// The planned calls of every job by their end.
    pub fn ends(&self) -> CallEnds {
        self.jobs.iter().map(|j| j.ends).sum()
    }
    pub fn rows(&self) -> i64 {
        self.jobs.iter().map(|j| j.rows).sum()
    }
    pub fn set_aside(&self) -> i64 {
        self.jobs.iter().map(|j| j.set_aside).sum()
    }
    pub fn cost(&self) -> Usd {
        self.jobs.iter().map(|j| j.cost).sum()
    }

    /// The one-line summary a once-run prints, in the words of the jobs' lines: `2
    /// jobs, 5 calls, 0 failed, 60 rows, cost $0.10; 3 cancelled before sending`; the
    /// calls a budget held back are named with their budget.
    pub fn line(&self) -> String {
        let ends = self.ends();
        let set_aside = match self.set_aside() {
            0 => String::new(),
            n => format!(", {} set aside", count(n, "item")),
        };
        let mut s = format!(
            "{}, {}, {}{set_aside}, cost {}",
            count(self.jobs.len() as i64, "job"),
            ends.made_words(),
            count(self.rows(), "row"),
            self.cost()
        );
        // Held calls are named with their budget below; what no budget names, here.
        let named: i64 = self.held.iter().map(|(_, n)| n).sum();
        let unnamed = CallEnds {
            held: (ends.held - named).max(0),
            ..ends
        };
        let not_made = unnamed.not_made_words();
        if !not_made.is_empty() {
            s.push_str(&format!("; {not_made}"));
        }
        if let Some(h) = &self.halt {
            s.push_str(&format!("; halted: {h}"));
        }
        for (budget, calls) in &self.held {
            s.push_str(&format!("; {budget} held back {}", count(*calls, "call")));
        }
        s
    }
}

/// Why the work of an interrupted run was not done.
pub const INTERRUPTED: &str = "not sent: the run was interrupted";
/// Why the work of a run that stopped on an error was not done.
const STOPPED_ON_ERROR: &str = "not sent: the run stopped on an error";

/// The calls of one job's run.
#[derive(Clone, Debug)]
pub struct JobCalls {
    pub job: String,
    pub calls: Vec<CallSpec>,
}

/// Runs enqueued, about to be executed.
#[derive(Clone, Debug)]
pub struct EnqueuedRuns {
    pub runs: Vec<i64>,
    /// Their calls' estimated cost.
    pub estimate: Usd,
}

/// Records every target of `jobs` (all the job files loaded, not only those selected)
/// in `linkledger.loaded_targets`, as the daemon does at start and on each reload; the
/// views `job_targets` and `target_status` read them. A failure is logged: the run goes
/// on without it.
pub async fn record_job_targets(store: &crate::store::Store, jobs: &[Job]) {
    let rows = crate::jobs::job_targets(jobs, chrono::Utc::now());
    match store.record_job_targets(&rows).await {
        Ok(done) => info!(
            targets = rows.len(),
            changed = done.changed,
            removed = done.removed,
            "job targets recorded"
        ),
        Err(e) => warn!(error = %e, "recording the job files' targets failed"),
    }
}

/// What one run of every collection of `jobs` buys now: date-ranged calls narrowed to
/// what the warehouse does not hold.
pub async fn plan(
    store: &crate::store::Store,
    jobs: &[&Job],
    today: NaiveDate,
) -> anyhow::Result<Vec<JobCalls>> {
    let mut out = Vec::new();
    for job in jobs {
        let mut calls = Vec::new();
        for c in &job.collections {
            let planned = crate::collect::narrow::plan_to_buy(store, c, today)
                .await
                .context("planning the calls against what is stored")?;
            calls.extend(planned.calls);
        }
        out.push(JobCalls {
            job: job.name.clone(),
            calls,
        });
    }
    Ok(out)
}

/// Starts one run of `kind` per job with its calls queued (only this process will
/// claim them).
pub async fn enqueue(
    exec: &Executor,
    planned: &[JobCalls],
    kind: RunKind,
) -> anyhow::Result<EnqueuedRuns> {
    let max_attempts = exec.client().retry_policy().max_attempts as i32;
    let prices = exec.prices();
    let mut runs = Vec::new();
    let mut estimate = Usd::ZERO;
    for job in planned {
        let work: Vec<_> = job.calls.iter().map(workers::new_work).collect();
        estimate += job.calls.iter().map(|c| c.planned_cost(&prices)).sum();
        let run_id = exec
            .store()
            .start_run_with_work(&job.job, kind, max_attempts, &work)
            .await
            .context("starting a run with its calls")?;
        runs.push(run_id);
    }
    Ok(EnqueuedRuns { runs, estimate })
}

/// Runs every collection of `jobs` once, now, with workers configured by `workers`,
/// until the work is done or `shutdown` stops it. However it ends, none of its work is
/// left queued: what was not done is cancelled (only this process may claim it).
#[instrument(skip_all, fields(jobs = jobs.len(), kind = kind.as_str()))]
pub async fn run(
    exec: &Executor,
    workers: WorkerConfig,
    jobs: &[&Job],
    kind: RunKind,
    today: NaiveDate,
    shutdown: &Shutdown,
) -> anyhow::Result<RunReport> {
    let planned = plan(exec.store(), jobs, today).await?;
    let enqueued = enqueue(exec, &planned, kind).await?;
    execute(exec, workers, &enqueued.runs, shutdown).await
}

/// Executes the work of `runs` (enqueued by [`enqueue`]) until it is done or
/// `shutdown` stops it, then reports. What was not done is cancelled.
pub async fn execute(
    exec: &Executor,
    workers: WorkerConfig,
    runs: &[i64],
    shutdown: &Shutdown,
) -> anyhow::Result<RunReport> {
    let store = exec.store();
    let runs = runs.to_vec();
    let executed = work(exec, workers, &runs, shutdown).await;
    let interrupted = shutdown.is_stopping();
    if interrupted || executed.is_err() {
        let why = if interrupted {
            INTERRUPTED
        } else {
            STOPPED_ON_ERROR
        };
        match store.interrupt_runs(&runs, why).await {
            Ok(cancelled) => info!(cancelled, reason = why, "the calls not sent are cancelled"),
            Err(e) if executed.is_err() => {
                warn!(error = %e, "cancelling the runs' work failed; it stays queued for this command")
            }
            Err(e) => return Err(e).context("cancelling the interrupted runs' work"),
        }
    }
    executed?;
    let mut report = RunReport {
        interrupted,
        ..RunReport::default()
    };
    for run in runs {
        // Usually the run's last call closed it (and logged its line) already.
        crate::ops::run_log::close_if_done(store, run).await?;
        let row = store
            .run_record(run)
            .await?
            .with_context(|| format!("run {run} is gone"))?;
        report.jobs.push(JobReport {
            job: row.job.clone(),
            run_id: run,
            status: RunStatus::parse(&row.status).unwrap_or(RunStatus::Failed),
            ends: row.ends(),
            rows: row.rows,
            set_aside: row.set_aside,
            pages_changed: row.pages_changed,
            cost: row.cost,
            errors: store.run_errors(run).await?,
        });
    }
    report.halt = exec.halted();
    report.held = store
        .held_back(&report.jobs.iter().map(|j| j.run_id).collect::<Vec<_>>())
        .await?;
    Ok(report)
}

/// The credentials check, then the workers over `runs`; a signal during the (free)
/// check stops before anything is spent.
async fn work(
    exec: &Executor,
    workers: WorkerConfig,
    runs: &[i64],
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let check = tokio::select! {
        // The check is free and no job's call: it belongs to no run.
        check = exec.check_credentials(None) => check?,
        _ = shutdown.stop.cancelled() => return Ok(()),
    };
    match check {
        CredentialsCheck::Refused(h) => {
            for run in runs {
                exec.store()
                    .cancel_queued(*run, &format!("not sent: {h}"))
                    .await?;
            }
            Ok(())
        }
        CredentialsCheck::Accepted | CredentialsCheck::Unknown(_) => {
            Workers::new(exec.clone(), workers, WorkSet::Runs(runs.to_vec()))
                .run(shutdown)
                .await
                .context("executing the queued calls")
        }
    }
}
