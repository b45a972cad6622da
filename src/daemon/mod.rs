//! `linkledger run`: the long-running daemon. A scheduler (`collect::scheduler`) turns each collection's fire
//! times into queued work (each fire exactly once across any number of daemons, by
//! the unique key of `fires`), workers execute the scheduled work of the queue, and a
//! small HTTP server answers `/healthz`, `/readyz` and `/metrics`. The caller owns the
//! listener and the signals: cancelling `shutdown` stops the daemon cleanly, notifying
//! `reload` (or an edit of the job files) reloads the jobs.
//!
//! One broken job file never stops the others: at start and on each reload the valid
//! files' jobs run and each broken file is logged (error, `file: field: why`), named by
//! `/healthz` (`jobs`: degraded, still 200; `/readyz` 503) and counted in
//! `linkledger_job_files_broken`. A file that breaks while the daemon runs keeps its
//! previous version running until it is fixed ([`jobs::load_dir_for_daemon`]).

mod account;
mod books;
mod narrate;
mod reload;
mod status;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::app::App;
use crate::collect::executor::{CredentialsCheck, Executor};
use crate::collect::scheduler::{FireFailures, PlanProblems, Scheduler};
use crate::collect::workers::{self, Shutdown, WorkSet, Workers};
use crate::config::WarehouseConfig;
use crate::jobs::{self, BrokenFile, DirJobs, Job};
use crate::ops::health::{self, HealthCheck, HealthReport, HealthState};
use crate::ops::metrics::Metrics;
use crate::store::Store;

use account::watch_account;
pub use account::{
    BillSlot, OffRuntime, RUNWAY_BILL_TIMEOUT, RUNWAY_WARNING_DAYS, off_the_runtime, runway_days,
};
use books::watch_books;
pub use books::{BooksStatus, LAST_SAMPLE_BEFORE_MIDNIGHT, books_health, next_sample};
use narrate::narrate;
use reload::{Reloader, log_next_fires, schedule_loop};
use status::{BrokenFiles, health, refresh, report_broken};
pub use status::{fires_health, jobs_health};

/// What the job directory looks like (files, modification times, sizes), to notice
/// edits.
pub type Fingerprint = Vec<(PathBuf, SystemTime, u64)>;

/// Takes the job directory's fingerprint; take it *before* loading the jobs, so an
/// edit made while they load is noticed.
pub fn fingerprint(dir: &Path) -> Fingerprint {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) => out.push((
                    path,
                    m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    m.len(),
                )),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Runs the daemon on `app` until `shutdown.stop`: schedules the jobs the caller
/// loaded (`loaded`, from [`jobs::load_dir_for_daemon`]; `loaded_from` their
/// directory's fingerprint, taken before) and reports its broken files, executes
/// scheduled work and serves `/healthz`, `/readyz` and `/metrics` on `listener`.
/// `reload` reloads the job files.
pub async fn run(
    app: &App,
    loaded: DirJobs,
    loaded_from: Fingerprint,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
    reload: Arc<Notify>,
) -> anyhow::Result<()> {
    let exec = app.executor(shutdown.stop.clone());
    let DirJobs { jobs, broken } = loaded;
    report_broken(&broken, &app.metrics);
    if jobs.is_empty() {
        warn!(
            dir = %app.config.jobs.dir.display(),
            broken_files = broken.len(),
            "no job runs: {}; the daemon idles until a job file is added or fixed (it reloads on its own)",
            if broken.is_empty() {
                "there are no job files".to_string()
            } else {
                format!("no job file loads ({})", crate::words::count(broken.len(), "broken file"))
            }
        );
    }
    let broken: BrokenFiles = Arc::new(std::sync::RwLock::new(broken));
    let books: books::SharedBooks = Arc::default();
    let scheduler = Scheduler::new(
        app.store.clone(),
        jobs,
        workers::worker_id("scheduler"),
        app.config.api.max_attempts as i32,
    )
    .with_metrics(app.metrics.clone());
    let current_jobs = Arc::new(std::sync::RwLock::new(scheduler.jobs.clone()));
    log_next_fires(&scheduler.jobs, Utc::now());
    let server_task = health::serve(
        listener,
        app.metrics.clone(),
        health(
            app,
            &exec,
            scheduler.problems(),
            scheduler.fire_failures(),
            broken.clone(),
            books.clone(),
        ),
        refresh(app, current_jobs.clone()),
        shutdown.stop.clone(),
    )?;

    // Scheduling comes first: what is due is enqueued by the first tick, before the
    // credentials check's round trip and before any bill is computed. The runway's
    // bill waits for that tick (and the first tick after each reload), and runs off the
    // runtime's threads, within RUNWAY_BILL_TIMEOUT.
    let ticked = Arc::new(Notify::new());
    let ticking = tokio::spawn(schedule_loop(
        scheduler,
        Reloader {
            dir: app.config.jobs.dir.clone(),
            config_source: app.config_source.clone(),
            budgets: app.budget_handle(),
            jobs: current_jobs.clone(),
            broken,
            metrics: app.metrics.clone(),
        },
        loaded_from,
        app.config.queue.tick,
        reload,
        ticked.clone(),
        shutdown.stop.clone(),
    ));

    if let CredentialsCheck::Refused(h) = exec.check_credentials(None).await? {
        error!(reason = %h, "the API refused the credentials; no call will be made until restart");
    }
    let account = tokio::spawn(watch_account(
        app.store.clone(),
        exec.clone(),
        current_jobs,
        app.metrics.clone(),
        ticked,
        shutdown.stop.clone(),
    ));
    let watching_books = tokio::spawn(watch_books(
        books::BooksWatch {
            store: app.store.clone(),
            exec: exec.clone(),
            metrics: app.metrics.clone(),
            config: app.config.reconcile.clone(),
            status: books,
            budgets: app.budget_handle(),
            rates: app.rate_handle(),
            account_scope: app.config.budget.scope == crate::config::BudgetScope::Account,
        },
        shutdown.stop.clone(),
    ));
    let narrator = tokio::spawn(narrate(
        app.store.clone(),
        exec.clone(),
        app.config.queue.tick,
        app.config.queue.summary_every,
        shutdown.stop.clone(),
    ));
    let tending = tokio::spawn(tend_warehouse(
        app.store.clone(),
        app.config.warehouse.clone(),
        shutdown.stop.clone(),
    ));
    info!("daemon started");
    let result = Workers::new(exec, app.workers(), WorkSet::Scheduled)
        .run(&shutdown)
        .await;
    shutdown.stop.cancel();
    let _ = ticking.await;
    let _ = account.await;
    let _ = watching_books.await;
    let _ = narrator.await;
    let _ = tending.await;
    let _ = server_task.await;
    info!("daemon stopped");
    result
}

/// How often the daemon makes the coming months' partitions and applies
/// `warehouse.raw_retention` (it also does at start, with the migrations).
const TEND_EVERY: Duration = Duration::from_secs(3600);

/// Every [`TEND_EVERY`] until `stop`: the month partitions of this month and the next
/// two, and raw retention. A daemon running across a month's turn keeps two months of
/// partitions ahead; replicas doing the same at once are harmless.
async fn tend_warehouse(store: Store, warehouse: WarehouseConfig, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(TEND_EVERY) => {}
        }
        if let Err(e) = store.maintain_partitions(Utc::now().date_naive()).await {
            warn!(error = %e, "making the month partitions failed; rows of a month without one go to its table's default partition");
        }
        if let Err(e) = crate::app::apply_raw_retention(&store, &warehouse).await {
            warn!(
                error = format!("{e:#}"),
                "raw retention failed; it is tried again in an hour"
            );
        }
    }
}

/// The jobs a daemon schedules now (replaced on reload), for projections.
type CurrentJobs = Arc<std::sync::RwLock<Vec<Job>>>;
