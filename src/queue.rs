//! Workers of the Postgres work queue: claim due items, make one attempt per claim
//! through the executor, and record how it ended (done, retry later, failed,
//! exhausted). A heartbeat renews each claim's lease while its attempt runs; a worker
//! that loses its lease cannot write (the store fences every write by attempt).
//!
//! The daemon runs workers over every run; `run --once` and `demo` run them over their
//! own runs until those are done. Because both claim from the same table, a once-run
//! and a daemon on one database never make the same call twice.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, instrument, warn};

use crate::api::{Endpoint, Target};
use crate::executor::{AttemptEnd, Executor};
use crate::plan::CallSpec;
use crate::store::{Fence, Terminal, WorkItem};

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
    /// When calls are stopped (a refusal, the daily cost limit): keep the work
    /// queued and claim nothing new (the daemon), instead of cancelling it (a
    /// once-run).
    pub keep_work_when_stopped: bool,
}

impl WorkerConfig {
    /// For `run --once` and `demo`.
    pub fn for_once(max_in_flight: usize) -> WorkerConfig {
        WorkerConfig {
            worker_id: worker_id("once"),
            concurrency: (max_in_flight * 2).max(2),
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(20),
            shutdown_grace: Duration::from_secs(30),
            keep_work_when_stopped: false,
        }
    }
}

/// `host:pid/role`.
pub fn worker_id(role: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}/{role}", std::process::id())
}

pub struct Workers {
    exec: Executor,
    cfg: WorkerConfig,
}

impl Workers {
    pub fn new(exec: Executor, cfg: WorkerConfig) -> Workers {
        Workers { exec, cfg }
    }

    /// Executes the work of `runs` until none of it is pending (other processes may
    /// execute some of it).
    pub async fn run_until_done(
        &self,
        runs: &[i64],
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        self.work(Some(runs), shutdown).await
    }

    /// Executes any due work until `shutdown`; then lets attempts in flight finish
    /// within the grace period and releases the claims of the rest.
    pub async fn run(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.work(None, shutdown).await
    }

    #[instrument(skip_all, fields(worker = %self.cfg.worker_id))]
    async fn work(&self, scope: Option<&[i64]>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let store = self.exec.store().clone();
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut fences: HashMap<tokio::task::Id, Fence> = HashMap::new();
        loop {
            while let Some(done) = tasks.try_join_next_with_id() {
                reap(&mut fences, done);
            }
            if shutdown.is_cancelled() {
                break;
            }
            // A stopped daemon claims nothing: its work waits for the pause to lift or
            // for a restart, and other daemons' work is left to them.
            let stopped = self.cfg.keep_work_when_stopped && self.exec.halted().await.is_some();
            let free = if stopped {
                0
            } else {
                self.cfg.concurrency.saturating_sub(tasks.len())
            };
            let mut claimed = 0;
            if free > 0 {
                match store
                    .claim(&self.cfg.worker_id, self.cfg.lease, free as i64, scope)
                    .await
                {
                    Ok(items) => {
                        claimed = items.len();
                        for item in items {
                            let fence = Fence {
                                work_id: item.id,
                                attempt: item.attempt,
                            };
                            let handle = tasks.spawn(process(
                                self.exec.clone(),
                                self.cfg.clone(),
                                item,
                                shutdown.clone(),
                            ));
                            fences.insert(handle.id(), fence);
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
                && let Some(runs) = scope
            {
                let pending = store
                    .pending_work(runs)
                    .await
                    .context("reading the runs' progress")?;
                if pending == 0 {
                    break;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.poll) => {}
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => reap(&mut fences, done),
                _ = shutdown.cancelled() => {}
            }
        }
        // Shutdown: let attempts in flight finish, within the grace period.
        let deadline = tokio::time::sleep(self.cfg.shutdown_grace);
        tokio::pin!(deadline);
        while !tasks.is_empty() {
            tokio::select! {
                Some(done) = tasks.join_next_with_id() => reap(&mut fences, done),
                _ = &mut deadline => {
                    warn!(left = tasks.len(), "shutdown grace period over; abandoning attempts in flight");
                    tasks.abort_all();
                    while let Some(done) = tasks.join_next_with_id().await {
                        reap(&mut fences, done);
                    }
                }
            }
        }
        // Whatever was abandoned goes back to the queue for the next start.
        for fence in fences.into_values() {
            if let Err(e) = store.release_work(fence).await {
                warn!(error = %e, work_id = fence.work_id, "releasing a claim failed; its lease will lapse");
            }
        }
        Ok(())
    }
}

fn reap(
    fences: &mut HashMap<tokio::task::Id, Fence>,
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    match done {
        Ok((id, ())) => {
            fences.remove(&id);
        }
        // Aborted tasks keep their fence, to be released.
        Err(e) if e.is_cancelled() => {}
        Err(e) => {
            // A panicked attempt: its lease lapses and another claim retries it.
            warn!(error = %e, "a work task failed");
            fences.remove(&e.id());
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
    })
}

/// One claim: one attempt, then the item's next state.
#[instrument(skip_all, fields(work_id = item.id, attempt = item.attempt, endpoint = %item.endpoint))]
async fn process(exec: Executor, cfg: WorkerConfig, item: WorkItem, shutdown: CancellationToken) {
    if let Some(m) = exec.metrics() {
        m.worker_busy(1);
    }
    let result = try_process(&exec, &cfg, &item, &shutdown).await;
    if let Some(m) = exec.metrics() {
        m.worker_busy(-1);
    }
    if let Err(e) = result {
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
    item: &WorkItem,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let store = exec.store();
    let fence = Fence {
        work_id: item.id,
        attempt: item.attempt,
    };
    let call = match call_for(item) {
        Ok(call) => call,
        Err(why) => {
            store.finish_work(fence, Terminal::Failed, &why).await?;
            store.close_run_if_done(item.run_id).await?;
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
    let end: AttemptEnd = end?;
    let policy = exec.client().retry_policy();
    match &end {
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
        AttemptEnd::Halted(h) | AttemptEnd::NotSent(h) if cfg.keep_work_when_stopped => {
            let delay = h
                .until
                .map(|until| (until - chrono::Utc::now()).to_std().unwrap_or_default())
                .unwrap_or_default();
            store
                .retry_work(fence, delay, false, &h.to_string())
                .await?;
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
    }
    store.close_run_if_done(item.run_id).await?;
    Ok(())
}

/// Renews the lease every third of it until `stop`; gives up once the claim is lost.
async fn heartbeat(
    store: crate::store::Store,
    fence: Fence,
    lease: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(lease / 3) => {}
        }
        match store.heartbeat(fence, lease).await {
            Ok(true) => {}
            Ok(false) => {
                warn!(
                    work_id = fence.work_id,
                    "lease lost; the attempt's writes will be refused"
                );
                return;
            }
            Err(e) => warn!(error = %e, "heartbeat failed; retrying"),
        }
    }
}
