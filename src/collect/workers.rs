//! Workers of the Postgres work queue: claim due items, make one attempt per claim
//! through the executor, and record how it ended (done, retry later, failed,
//! exhausted, cancelled). A heartbeat renews each claim's lease while its attempt runs;
//! once another worker has claimed the item again, the old claim cannot write (the
//! store fences every write by attempt).
//!
//! Which work a process may claim is part of the data: the daemon's workers
//! ([`WorkSet::Scheduled`]) claim the work of scheduled runs only; a once-run's
//! ([`WorkSet::Runs`]) only the work of its own runs. So a daemon never pays for work a
//! once-run left behind, and a once-run never takes the daemon's.

use std::collections::HashMap;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, instrument, warn};

use crate::api::{Endpoint, Target};
use crate::collect::executor::{AttemptEnd, Executor};
use crate::ops::metrics::Metrics;
use crate::plan::CallSpec;
use crate::store::{ClaimScope, Fence, NewWork, Store, Terminal, WorkItem};

/// How workers behave.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Who claims (host:pid/role), for `work.leased_by`.
    pub worker_id: String,
    /// Items executed at once by this process.
    pub concurrency: usize,
    /// A claim lapses after this long unless its heartbeat renews it.
    pub lease: Duration,
    /// How often an idle worker looks for due work.
    pub poll: Duration,
    /// On shutdown, how long attempts in flight may take before they are abandoned
    /// and their claims released.
    pub shutdown_grace: Duration,
}

impl WorkerConfig {
    /// Workers of `role` (`daemon`, `once`, ...) from the queue configuration.
    pub fn from_config(
        role: &str,
        queue: &crate::config::QueueConfig,
        max_in_flight: usize,
    ) -> WorkerConfig {
        WorkerConfig {
            worker_id: worker_id(role),
            concurrency: if queue.workers == 0 {
                (max_in_flight * 2).max(2)
            } else {
                queue.workers
            },
            lease: queue.lease,
            poll: queue.poll,
            shutdown_grace: queue.shutdown_grace,
        }
    }

    /// A once-run's workers with the default queue settings, polling briskly (tests and
    /// benchmarks; the commands use `App::workers`).
    pub fn for_once(max_in_flight: usize) -> WorkerConfig {
        let mut cfg = WorkerConfig::from_config("once", &Default::default(), max_in_flight);
        cfg.poll = Duration::from_millis(20);
        cfg
    }
}

/// `host:pid/role`.
pub fn worker_id(role: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}/{role}", std::process::id())
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
        settle: c.settle,
        paging: c
            .max_rows
            .map(|max_rows| crate::plan::paging::Page::first(max_rows).to_json()),
    }
}

/// How a process tells its workers to stop: `stop` ends claiming and lets attempts
/// in flight finish within `queue.shutdown_grace`; `abort` ends that grace period at
/// once (a second Ctrl-C). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    pub stop: CancellationToken,
    pub abort: CancellationToken,
}

impl Shutdown {
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }
}

/// Which work the workers take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkSet {
    /// Scheduled work, whoever enqueued it, until shutdown (the daemon). When calls
    /// are stopped (a refusal, the daily cost limit), the work stays queued.
    Scheduled,
    /// The work of these runs, until none of it is pending (a once-run). When calls
    /// are stopped, the rest of the run is cancelled.
    Runs(Vec<i64>),
}

impl WorkSet {
    fn claim_scope(&self) -> ClaimScope<'_> {
        match self {
            WorkSet::Scheduled => ClaimScope::Scheduled,
            WorkSet::Runs(runs) => ClaimScope::Runs(runs),
        }
    }

    fn keeps_work_when_stopped(&self) -> bool {
        matches!(self, WorkSet::Scheduled)
    }
}

pub struct Workers {
    exec: Executor,
    cfg: WorkerConfig,
    scope: WorkSet,
}

impl Workers {
    pub fn new(exec: Executor, cfg: WorkerConfig, scope: WorkSet) -> Workers {
        Workers { exec, cfg, scope }
    }

    /// Executes the scope's work until `shutdown.stop` (or, for runs, until none of it
    /// is pending); then lets attempts in flight finish within the grace period (or
    /// until `shutdown.abort`) and releases the claims of the rest.
    #[instrument(skip_all, fields(worker = %self.cfg.worker_id))]
    pub async fn run(&self, shutdown: &Shutdown) -> anyhow::Result<()> {
        let abort = shutdown.abort.clone();
        let shutdown = shutdown.stop.clone();
        let store = self.exec.store().clone();
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut fences: HashMap<tokio::task::Id, Claim> = HashMap::new();
        let mut crashed: Vec<(Claim, String)> = Vec::new();
        loop {
            while let Some(done) = tasks.try_join_next_with_id() {
                reap(&mut fences, &mut crashed, done);
            }
            self.book_crashes(&mut crashed).await;
            if shutdown.is_cancelled() {
                break;
            }
            // A stopped daemon claims nothing: its work waits for the pause to lift or
            // for a restart.
            let stopped = self.scope.keeps_work_when_stopped() && self.exec.halted().is_some();
            let free = if stopped {
                0
            } else {
                self.cfg.concurrency.saturating_sub(tasks.len())
            };
            // With writes grouped, claims are too: taken once a quarter of the workers
            // are free (or none is busy), not one as each call ends. The workers are
            // twice the requests in flight, so the requests never wait for a claim.
            let floor = if self.exec.grouped() {
                (self.cfg.concurrency / 4).max(1)
            } else {
                1
            };
            let mut claimed = 0;
            if free > 0 && (free >= floor || tasks.is_empty()) {
                // Never the items this process still works on, whatever their leases
                // say (the database may have been away while they held answers).
                let held: Vec<i64> = fences.values().map(|c| c.fence.work_id).collect();
                match store
                    .claim_except(
                        &self.cfg.worker_id,
                        self.cfg.lease,
                        free as i64,
                        self.scope.claim_scope(),
                        &held,
                    )
                    .await
                {
                    Ok(batch) => {
                        claimed = batch.items.len() + batch.exhausted_runs.len();
                        for run in batch.exhausted_runs {
                            warn!(
                                run_id = run,
                                "a call was exhausted by claims that ended without an outcome"
                            );
                            if let Err(e) = crate::ops::run_log::close_if_done(&store, run).await {
                                warn!(error = %e, run_id = run, "closing a run failed; the sweep will");
                            }
                        }
                        for item in batch.items {
                            let claim = Claim {
                                fence: item.fence(),
                                run_id: item.run_id,
                            };
                            let handle = tasks.spawn(process(
                                self.exec.clone(),
                                self.cfg.clone(),
                                self.scope.keeps_work_when_stopped(),
                                item,
                                shutdown.clone(),
                            ));
                            fences.insert(handle.id(), claim);
                        }
                    }
                    // Postgres may be restarting: keep going, the claim is retried.
                    Err(e) => warn!(error = %e, "claiming work failed; retrying"),
                }
            }
            if claimed > 0 && claimed == free {
                continue;
            }
            if tasks.is_empty()
                && claimed == 0
                && let WorkSet::Runs(runs) = &self.scope
            {
                match store.pending_work(runs).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    // Postgres may be restarting: ask again at the next poll.
                    Err(e) => warn!(error = %e, "reading the runs' progress failed; retrying"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.poll) => {}
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => reap(&mut fences, &mut crashed, done),
                _ = shutdown.cancelled() => {}
            }
        }
        // Shutdown: let attempts in flight finish, within the grace period.
        let deadline = tokio::time::sleep(self.cfg.shutdown_grace);
        tokio::pin!(deadline);
        while !tasks.is_empty() {
            tokio::select! {
                Some(done) = tasks.join_next_with_id() => reap(&mut fences, &mut crashed, done),
                _ = abort.cancelled(), if !tasks.is_empty() => {
                    warn!(left = tasks.len(), "told to stop now; abandoning attempts in flight");
                    tasks.abort_all();
                    while let Some(done) = tasks.join_next_with_id().await {
                        reap(&mut fences, &mut crashed, done);
                    }
                }
                _ = &mut deadline => {
                    warn!(left = tasks.len(), "shutdown grace period over; abandoning attempts in flight");
                    tasks.abort_all();
                    while let Some(done) = tasks.join_next_with_id().await {
                        reap(&mut fences, &mut crashed, done);
                    }
                }
            }
        }
        self.book_crashes(&mut crashed).await;
        // Whatever was abandoned goes back to the queue (for the next start, or for
        // the once-run to cancel).
        for claim in fences.into_values() {
            if let Err(e) = store.release_work(claim.fence).await {
                warn!(error = %e, work_id = claim.fence.work_id, "releasing a claim failed; its lease will lapse");
            }
        }
        Ok(())
    }

    /// An attempt that crashed (panicked) counts as a failed attempt at once, so a
    /// call that crashes every time ends `exhausted` instead of being re-claimed
    /// forever.
    async fn book_crashes(&self, crashed: &mut Vec<(Claim, String)>) {
        let store = self.exec.store();
        let policy = self.exec.client().retry_policy();
        for (claim, why) in crashed.drain(..) {
            let error = format!("the attempt crashed: {why}");
            let booked = async {
                store
                    .retry_work(claim.fence, policy.delay(1), true, &error)
                    .await?;
                crate::ops::run_log::close_if_done(store, claim.run_id).await
            }
            .await;
            if let Err(e) = booked {
                // Left to its lease: the next claim counts it.
                warn!(error = %e, work_id = claim.fence.work_id, "recording a crashed attempt failed");
            }
        }
    }
}

/// A claim a task works on.
#[derive(Clone, Copy, Debug)]
struct Claim {
    fence: Fence,
    run_id: i64,
}

/// Takes a finished task out of the running set; a panicked one goes to `crashed`,
/// an aborted one keeps its claim, to be released.
fn reap(
    fences: &mut HashMap<tokio::task::Id, Claim>,
    crashed: &mut Vec<(Claim, String)>,
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    match done {
        Ok((id, ())) => {
            fences.remove(&id);
        }
        Err(e) if e.is_cancelled() => {}
        Err(e) => {
            let id = e.id();
            let why = if e.is_panic() {
                let payload = e.into_panic();
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into())
            } else {
                e.to_string()
            };
            warn!(error = %why, "a work task crashed");
            if let Some(claim) = fences.remove(&id) {
                crashed.push((claim, why));
            }
        }
    }
}

/// The call a work item stands for.
fn call_for(item: &WorkItem) -> Result<CallSpec, String> {
    let endpoint: Endpoint = item.endpoint.parse().map_err(|e| format!("{e}"))?;
    let targets = item
        .targets
        .iter()
        .map(|t| Target::parse(t).map_err(|e| format!("{t}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CallSpec {
        job: item.job.clone(),
        collection: item.collection.clone(),
        endpoint,
        targets,
        task: item.task.clone(),
        estimated_rows: item.estimated_rows,
        settle: crate::store::queue::settle_from_seconds(item.settle_seconds),
        // A listing's page: its state (`work.paging`) is read with its completion.
        max_rows: None,
        listing_size: None,
    })
}

/// Counts a worker busy while it lives, however the task ends (a panic included).
struct Busy(Option<std::sync::Arc<Metrics>>);

impl Busy {
    fn start(metrics: Option<&std::sync::Arc<Metrics>>) -> Busy {
        if let Some(m) = metrics {
            m.worker_busy(1);
        }
        Busy(metrics.cloned())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(m) = &self.0 {
            m.worker_busy(-1);
        }
    }
}

/// One claim: one attempt, then the item's next state.
#[instrument(skip_all, fields(work_id = item.id, attempt = item.attempt, endpoint = %item.endpoint))]
async fn process(
    exec: Executor,
    cfg: WorkerConfig,
    keep_work_when_stopped: bool,
    item: WorkItem,
    shutdown: CancellationToken,
) {
    let _busy = Busy::start(exec.metrics());
    if let Err(e) = try_process(&exec, &cfg, keep_work_when_stopped, &item, &shutdown).await {
        // A database error: the claim is left to lapse and be retried.
        warn!(
            error = format!("{e:#}"),
            "work item left for retry after an error"
        );
    }
}

async fn try_process(
    exec: &Executor,
    cfg: &WorkerConfig,
    keep_work_when_stopped: bool,
    item: &WorkItem,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let store = exec.store();
    let fence = item.fence();
    let call = match call_for(item) {
        Ok(call) => call,
        Err(why) => {
            store.finish_work(fence, Terminal::Failed, &why).await?;
            crate::ops::run_log::close_if_done(store, item.run_id).await?;
            return Ok(());
        }
    };
    if shutdown.is_cancelled() {
        store.release_work(fence).await?;
        return Ok(());
    }
    let beat = CancellationToken::new();
    // Stops the heartbeat even if this task panics or is aborted, so the lease lapses.
    let _stop_beat = beat.clone().drop_guard();
    let heartbeat = tokio::spawn(heartbeat(store.clone(), fence, cfg.lease, beat.clone()));
    let end = async {
        // A re-claimed item may have been paid for already: never buy it twice.
        if item.attempt > 1
            && let Some(end) = exec.recover(&call, fence).await?
        {
            return Ok(end);
        }
        exec.attempt(item.run_id, &call, fence).await
    }
    .await;
    beat.cancel();
    let _ = heartbeat.await;
    // An attempt that failed on an error (a write the database refused, a database
    // away past the patience of its writes) is retried with that reason on the item,
    // when the database takes it: its next claim shows why, not a guess that its
    // process died. If the database is still away, the claim lapses as before.
    let end: AttemptEnd = match end {
        Ok(end) => end,
        Err(e) => {
            warn!(error = format!("{e:#}"), "the attempt failed; retried");
            AttemptEnd::Retry {
                throttled: false,
                error: format!("the attempt failed: {e:#}"),
            }
        }
    };
    settle(exec, keep_work_when_stopped, item, fence, &end).await?;
    exec.close_if_done(item.run_id).await?;
    Ok(())
}

/// The item's next state after an attempt ended with `end`.
async fn settle(
    exec: &Executor,
    keep_work_when_stopped: bool,
    item: &WorkItem,
    fence: Fence,
    end: &AttemptEnd,
) -> anyhow::Result<()> {
    let store = exec.store();
    let policy = exec.client().retry_policy();
    match end {
        AttemptEnd::Stored { rows } => debug!(rows, "work done"),
        AttemptEnd::Stopped => {
            store.release_work(fence).await?;
        }
        AttemptEnd::Stale => {
            warn!("claim lost before the rows were written; another worker owns the item")
        }
        AttemptEnd::Invalid(why) | AttemptEnd::Rejected(why) => {
            store.finish_work(fence, Terminal::Failed, why).await?;
        }
        AttemptEnd::Retry { throttled, error } => {
            let delay = if *throttled {
                policy.base_delay
            } else {
                policy.delay(item.failures as u32 + 1)
            };
            store.retry_work(fence, delay, !throttled, error).await?;
        }
        // The daemon keeps the work when calls stop: a pause (the daily cost limit)
        // lifts at 00:00 UTC, a refusal after a restart with fixed credentials. A
        // once-run neither waits for midnight nor leaves work behind.
        AttemptEnd::Halted(h) | AttemptEnd::NotSent(h) if keep_work_when_stopped => {
            let delay = h
                .until
                .map(|until| (until - chrono::Utc::now()).to_std().unwrap_or_default())
                .unwrap_or_default();
            // A call that was never sent says so: only the one refused carries the
            // refusal itself.
            let why = end.error().unwrap_or_else(|| h.to_string());
            store.retry_work(fence, delay, false, &why).await?;
        }
        AttemptEnd::Halted(h) => {
            store
                .finish_work(fence, Terminal::Failed, &h.to_string())
                .await?;
            store
                .cancel_queued(item.run_id, &format!("not sent: {h}"))
                .await?;
        }
        AttemptEnd::NotSent(h) => {
            store
                .finish_work(fence, Terminal::Cancelled, &format!("not sent: {h}"))
                .await?;
        }
        // The daemon's call waits, queued, for the budget's next period (or a raised
        // cap); a once-run's is not done.
        AttemptEnd::Held(hold) if keep_work_when_stopped => {
            if exec.note_hold(hold) {
                warn!(budget = %hold.name(), until = %hold.until, "{hold}");
            }
            store
                .hold_work(
                    fence,
                    hold.until,
                    &hold.name(),
                    &format!("not sent: {hold}"),
                )
                .await?;
        }
        AttemptEnd::Held(hold) => {
            if exec.note_hold(hold) {
                warn!(budget = %hold.name(), "{hold}");
            }
            store
                .finish_held(fence, &hold.name(), &format!("not sent: {hold}"))
                .await?;
        }
    }
    Ok(())
}

/// Renews the lease every third of it until `stop`; gives up once the claim is lost.
/// After a failed renewal (the database away) it tries again every second, so a lease
/// that lapsed during an outage is renewed as soon as the database is back.
async fn heartbeat(store: Store, fence: Fence, lease: Duration, stop: CancellationToken) {
    let mut every = lease / 3;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        every = lease / 3;
        match store.heartbeat(fence, lease).await {
            Ok(true) => {}
            Ok(false) => {
                warn!(
                    work_id = fence.work_id,
                    "lease lost; the attempt's writes will be refused"
                );
                return;
            }
            Err(e) => {
                warn!(error = %e, "heartbeat failed; retrying");
                every = every.min(Duration::from_secs(1));
            }
        }
    }
}
