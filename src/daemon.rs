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
    let _ = narrator.await;
    let _ = tending.await;
    let _ = server_task.await;
    info!("daemon stopped");
    result
}

/// `/healthz` and `/readyz`: the database answers, the scheduler ticks, the API takes
/// our calls, every job file loads (degraded otherwise) and every collection's last
/// fire could be planned and enqueued.
fn health(
    app: &App,
    exec: &Executor,
    problems: PlanProblems,
    failures: FireFailures,
    broken: BrokenFiles,
) -> health::HealthFn {
    let (store, metrics, exec) = (app.store.clone(), app.metrics.clone(), exec.clone());
    let stale_after = app.config.queue.tick * 3 + Duration::from_secs(5);
    Arc::new(move || {
        let (store, metrics, exec, problems, failures) = (
            store.clone(),
            metrics.clone(),
            exec.clone(),
            problems.clone(),
            failures.clone(),
        );
        let broken = broken.read().expect("broken job files").clone();
        Box::pin(async move {
            let db = store.ping().await;
            let tick = metrics.last_tick();
            let tick_ok =
                tick.is_some_and(|t| (Utc::now() - t).to_std().unwrap_or_default() <= stale_after);
            let halt = exec.halted();
            let checks = vec![
                HealthCheck::new(
                    "database",
                    db.is_ok(),
                    match &db {
                        Ok(_) => "reachable".into(),
                        Err(e) => e.to_string(),
                    },
                ),
                HealthCheck::new(
                    "scheduler",
                    tick_ok,
                    match tick {
                        Some(t) => format!("last tick {t}"),
                        None => "not ticked yet".into(),
                    },
                ),
                HealthCheck::new(
                    "api",
                    halt.is_none(),
                    match &halt {
                        Some(h) => format!("calls stopped: {h}"),
                        None => "calls allowed".into(),
                    },
                ),
                jobs_health(&problems, &broken),
                fires_health(&failures),
            ];
            HealthReport { checks }
        }) as futures::future::BoxFuture<'static, HealthReport>
    })
}

/// The `jobs` health check: unhealthy while some collection's last fire could not be
/// planned, naming the job and why; else degraded while some job file does not load
/// (alive, not ready), naming each in `broken` (`file`, `why`, `running`: what of it
/// runs); else ok.
pub fn jobs_health(problems: &PlanProblems, broken: &[BrokenFile]) -> HealthCheck {
    let unplannable: Vec<String> = problems
        .lock()
        .expect("plan problems")
        .iter()
        .map(|((job, _), why)| format!("job {job}: {why}"))
        .collect();
    let mut details = Vec::new();
    if !broken.is_empty() {
        let files: Vec<String> = broken.iter().map(BrokenFile::shown_file).collect();
        details.push(format!(
            "{} not loaded: {} (the other files' jobs run)",
            crate::words::count(broken.len(), "job file"),
            files.join(", ")
        ));
    }
    details.extend(unplannable.iter().cloned());
    let state = if !unplannable.is_empty() {
        HealthState::Unhealthy
    } else if !broken.is_empty() {
        HealthState::Degraded
    } else {
        HealthState::Ok
    };
    let mut check = HealthCheck::new(
        "jobs",
        true,
        if details.is_empty() {
            "every job file loads and every collection's last fire was planned".into()
        } else {
            details.join("; ")
        },
    );
    check.state = state;
    check.extra.insert(
        "broken".into(),
        broken
            .iter()
            .map(|b| {
                serde_json::json!({
                    "file": b.shown_file(),
                    "why": b.why(),
                    "running": running(b),
                })
            })
            .collect::<Vec<_>>()
            .into(),
    );
    check
}

/// What of a broken file runs, in words.
fn running(b: &BrokenFile) -> String {
    if b.problems.iter().all(|p| p.field == "(directory)") {
        // The directory, not a file: what was read of it runs.
        return "the jobs of the files last read".into();
    }
    match &b.kept {
        Some(job) => format!(
            "job {}: its previous version, until the file is fixed",
            crate::words::shown(job)
        ),
        None => "nothing".into(),
    }
}

/// The broken job files a daemon holds now (replaced on reload), for `/healthz`.
type BrokenFiles = Arc<std::sync::RwLock<Vec<BrokenFile>>>;

/// Logs each broken job file at error level (`file: field: why` for each problem, and
/// what of it runs) and sets `linkledger_job_files_broken`.
fn report_broken(broken: &[BrokenFile], metrics: &Metrics) {
    metrics.set_job_files_broken(broken.len());
    for b in broken {
        let running = running(b);
        for p in &b.problems {
            error!(
                file = %b.shown_file(),
                problem = %p,
                running,
                "job file not loaded; the other files' jobs run"
            );
        }
    }
}

/// The `fires` health check: unhealthy while some collection's last fire failed (see
/// [`crate::collect::scheduler::Scheduler::tick`]), naming the job, the collection and
/// why.
pub fn fires_health(failures: &FireFailures) -> HealthCheck {
    let failed: Vec<String> = failures
        .lock()
        .expect("fire failures")
        .iter()
        .map(|((job, collection), why)| format!("job {job}, collection {collection}: {why}"))
        .collect();
    HealthCheck::new(
        "fires",
        failed.is_empty(),
        if failed.is_empty() {
            "every collection's last fire was enqueued".into()
        } else {
            failed.join("; ")
        },
    )
}

/// One line per collection: when it fires next (in its job's time zone as well).
fn log_next_fires(jobs: &[Job], now: chrono::DateTime<Utc>) {
    for job in jobs {
        for c in &job.collections {
            match c.schedule.next_after(now) {
                Some(next) => info!(
                    job = job.name,
                    collection = c.name,
                    schedule = c.schedule.as_str(),
                    next_fire = %next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "next fire"
                ),
                None => info!(job = job.name, collection = c.name, "never fires"),
            }
        }
    }
}

/// How many periods of a collection's targets stand missing, empty and unsettled.
fn gap_counts(found: &[crate::collect::narrow::TargetGaps]) -> Vec<(&'static str, usize)> {
    use crate::warehouse::coverage::Standing;
    [Standing::Missing, Standing::Empty, Standing::Unsettled]
        .into_iter()
        .map(|s| (s.name(), found.iter().map(|t| t.count(s)).sum()))
        .collect()
}

/// Brings the queue, budget and gap gauges up to date before a scrape.
fn refresh(app: &App, jobs: CurrentJobs) -> health::RefreshFn {
    let (store, metrics) = (app.store.clone(), app.metrics.clone());
    Arc::new(move || {
        let (store, metrics, jobs) = (store.clone(), metrics.clone(), jobs.clone());
        Box::pin(async move {
            let ranged: Vec<(String, crate::jobs::Collection)> = jobs
                .read()
                .expect("jobs lock")
                .iter()
                .flat_map(|j| {
                    j.collections
                        .iter()
                        .filter(|c| c.endpoint.has_periods())
                        .map(|c| (j.name.clone(), c.clone()))
                })
                .collect();
            let today = Utc::now().date_naive();
            for (job, c) in &ranged {
                match crate::collect::narrow::gaps(&store, c, today).await {
                    Ok(found) => metrics.set_gaps(job, &c.name, &gap_counts(&found)),
                    Err(e) => {
                        warn!(error = %e, job, collection = c.name, "reading the gaps for /metrics failed")
                    }
                }
            }
            match store.queue_depth().await {
                Ok(depth) => metrics.set_queue(&depth.by_state, depth.oldest_queued),
                Err(e) => warn!(error = %e, "reading the queue depth for /metrics failed"),
            }
            match store.budget_gauges().await {
                Ok((left, held)) => metrics.set_budgets(&left, &held),
                Err(e) => warn!(error = %e, "reading the budgets for /metrics failed"),
            }
        }) as futures::future::BoxFuture<'static, ()>
    })
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

/// How often the daemon reads the account's balance and price list (it also does at
/// start, with the credentials check).
const ACCOUNT_EVERY: Duration = Duration::from_secs(3600);

/// The jobs a daemon schedules now (replaced on reload), for projections.
type CurrentJobs = Arc<std::sync::RwLock<Vec<Job>>>;

/// Below this many days of projected spend, the balance is worth a warning.
pub const RUNWAY_WARNING_DAYS: i64 = 7;

/// How long the runway's bill (the jobs' bill over the coming 30 days, `plan::bill`)
/// may take before the daemon stops waiting for it. Thousands of targets fired every
/// minute take tens of seconds (33 s seen for 2,000 in a release build); the runway
/// is worth an hourly look, not a core held for minutes.
pub const RUNWAY_BILL_TIMEOUT: Duration = Duration::from_secs(120);

/// Reads the account (free) every [`ACCOUNT_EVERY`] until `stop`, and checks how long
/// the balance lasts: then, and each time `ticked` says the scheduler went through its
/// first tick since the start or a reload.
async fn watch_account(
    store: Store,
    exec: Executor,
    jobs: CurrentJobs,
    metrics: Arc<Metrics>,
    ticked: Arc<Notify>,
    stop: CancellationToken,
) {
    let bill = BillSlot::default();
    let mut next_read = tokio::time::Instant::now() + ACCOUNT_EVERY;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticked.notified() => {}
            _ = tokio::time::sleep_until(next_read) => {
                next_read = tokio::time::Instant::now() + ACCOUNT_EVERY;
                if exec.halted().is_some() {
                    continue;
                }
                match exec.refresh_account().await {
                    Ok(Some(account)) => {
                        info!(
                            balance_usd = account.balance.map(|b| b.to_f64()),
                            "account read"
                        )
                    }
                    Ok(None) => warn!("the API did not answer with the account's balance"),
                    Err(e) => warn!(error = format!("{e:#}"), "reading the account failed"),
                }
            }
        }
        check_runway(&store, &exec, &jobs, &metrics, &bill).await;
    }
}

/// At most one runway bill computes at a time: one that outlasted its timeout still
/// holds the slot until it ends.
#[derive(Clone, Default)]
pub struct BillSlot(Arc<std::sync::atomic::AtomicBool>);

/// What became of a computation handed to [`off_the_runtime`].
#[derive(Debug, PartialEq, Eq)]
pub enum OffRuntime<T> {
    Done(T),
    /// It did not end within its time; it ends on its own thread, unwaited for.
    GaveUp,
    /// The previous one has not ended yet; this one was not started.
    Busy,
    /// Its thread could not be started, or it panicked.
    Failed,
}

/// Runs `f` on a thread of its own, never on the runtime's (a long computation there
/// would stall `/healthz` and the scheduler), and waits for it at most `within`. A
/// computation that outlasts `within` finishes unwaited for and holds `slot` until
/// then; a process that exits does not wait for it.
pub async fn off_the_runtime<T: Send + 'static>(
    slot: &BillSlot,
    within: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> OffRuntime<T> {
    use std::sync::atomic::Ordering;
    if slot.0.swap(true, Ordering::AcqRel) {
        return OffRuntime::Busy;
    }
    /// Frees the slot when the computation ends, even by a panic.
    struct Release(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Release {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Release);
        }
    }
    let release = Release(slot.0.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let started = std::thread::Builder::new()
        .name("runway-bill".into())
        .spawn(move || {
            let _release = release;
            let _ = tx.send(f());
        });
    if started.is_err() {
        return OffRuntime::Failed;
    }
    match tokio::time::timeout(within, rx).await {
        Ok(Ok(done)) => OffRuntime::Done(done),
        Ok(Err(_)) => OffRuntime::Failed,
        Err(_) => OffRuntime::GaveUp,
    }
}

/// How many days the last known balance lasts at the spend the jobs project (their
/// bill over the coming 30 days); warns below [`RUNWAY_WARNING_DAYS`]. The bill is
/// computed off the runtime's threads, within [`RUNWAY_BILL_TIMEOUT`].
async fn check_runway(
    store: &Store,
    exec: &Executor,
    jobs: &CurrentJobs,
    metrics: &Metrics,
    bill: &BillSlot,
) {
    let account = match store.latest_account(Some(exec.client().api_host())).await {
        Ok(Some(account)) => account,
        Ok(None) => return,
        Err(e) => {
            warn!(error = %e, "reading the last known balance failed");
            return;
        }
    };
    let Some(balance) = account.balance else {
        return;
    };
    let jobs = jobs.read().expect("jobs lock").clone();
    let prices = exec.prices();
    let per_day = match off_the_runtime(bill, RUNWAY_BILL_TIMEOUT, move || {
        crate::plan::bill::compute(
            &jobs,
            None,
            &prices,
            crate::plan::bill::AccountCaps {
                daily_usd: None,
                monthly_usd: None,
            },
            Utc::now(),
        )
        .total
        .pays_per_day
    })
    .await
    {
        OffRuntime::Done(per_day) => per_day,
        OffRuntime::GaveUp => {
            warn!(
                timeout_s = RUNWAY_BILL_TIMEOUT.as_secs(),
                "the runway's bill took longer than {}s; the balance's runway is not projected this time (`linkledger plan` computes the bill)",
                RUNWAY_BILL_TIMEOUT.as_secs()
            );
            return;
        }
        OffRuntime::Busy => {
            warn!(
                "the previous runway bill is still computing; the balance's runway is not projected this time"
            );
            return;
        }
        OffRuntime::Failed => {
            warn!(
                "computing the runway's bill failed; the balance's runway is not projected this time"
            );
            return;
        }
    };
    let Some(days) = runway_days(balance, per_day) else {
        return;
    };
    metrics.set_runway_days(days);
    if days < RUNWAY_WARNING_DAYS as f64 {
        warn!(
            balance_usd = balance.to_f64(),
            projected_usd_per_day = per_day.to_f64(),
            days = (days * 10.0).round() / 10.0,
            sandbox = account.sandbox,
            "the balance covers fewer than {RUNWAY_WARNING_DAYS} days of the projected spend ({balance} at {per_day}/day lasts {days:.1} days); top up the account"
        );
    }
}

/// Days `balance` lasts at `per_day`; `None` when nothing is spent.
pub fn runway_days(balance: crate::money::Usd, per_day: crate::money::Usd) -> Option<f64> {
    use rust_decimal::prelude::ToPrimitive;
    if per_day.decimal() <= rust_decimal::Decimal::ZERO {
        return None;
    }
    (balance.decimal() / per_day.decimal()).to_f64()
}

/// What a reload reads again: the job files, and the budgets of the configuration.
struct Reloader {
    dir: PathBuf,
    /// `--config`, as given (the default file otherwise).
    config_source: Option<PathBuf>,
    budgets: crate::app::BudgetHandle,
    /// Shared with the balance check.
    jobs: CurrentJobs,
    /// Shared with `/healthz`.
    broken: BrokenFiles,
    metrics: Arc<Metrics>,
}

impl Reloader {
    /// The budgets of the configuration as it reads now, for `jobs`; a configuration
    /// that no longer loads keeps the budgets in force.
    async fn budgets(&self, jobs: &[Job]) {
        match crate::config::Config::load(self.config_source.as_deref()) {
            Ok(cfg) => {
                if let Err(e) = self.budgets.reload(&cfg.budget, jobs).await {
                    warn!(
                        error = format!("{e:#}"),
                        "applying the reloaded budgets failed"
                    );
                }
            }
            Err(e) => error!(error = %e, "configuration not reloaded; the budgets in force stay"),
        }
    }
}

/// Ticks every `tick` until `shutdown`, reloading the jobs when their files change or
/// `reload` is notified. `ticked` is notified after the first tick, and after the
/// first tick of each reload: what depends on the jobs but not on time (the runway's
/// bill) waits for what is due to be enqueued.
#[allow(clippy::too_many_arguments)]
async fn schedule_loop(
    mut scheduler: Scheduler,
    reloader: Reloader,
    mut seen: Fingerprint,
    tick: Duration,
    reload: Arc<Notify>,
    ticked: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut first = true;
    loop {
        if let Err(e) = scheduler.tick(Utc::now()).await {
            // Postgres may be restarting; the next tick retries.
            warn!(error = format!("{e:#}"), "scheduler tick failed");
        }
        if std::mem::take(&mut first) {
            ticked.notify_one();
        }
        let mut reload_now = false;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
            _ = reload.notified() => reload_now = true,
        }
        let now = fingerprint(&reloader.dir);
        if reload_now || now != seen {
            seen = now;
            let today = Utc::now().date_naive();
            match jobs::load_dir_for_daemon(&reloader.dir, today, &scheduler.jobs) {
                Ok(DirJobs { jobs, broken }) => {
                    info!(
                        jobs = jobs.len(),
                        broken_files = broken.len(),
                        "job files reloaded"
                    );
                    report_broken(&broken, &reloader.metrics);
                    *reloader.broken.write().expect("broken job files") = broken;
                    log_next_fires(&jobs, Utc::now());
                    for w in jobs.iter().flat_map(|j| &j.warnings) {
                        warn!(warning = %w, "job file warning");
                    }
                    reloader.budgets(&jobs).await;
                    *reloader.jobs.write().expect("jobs lock") = jobs.clone();
                    scheduler.replace_jobs(jobs);
                    first = true;
                }
                Err(problems) => {
                    // The directory itself cannot be read: every job keeps running.
                    for p in &problems.0 {
                        error!(problem = %p, "job files not reloaded; the previous jobs keep running");
                    }
                    let unreadable = BrokenFile {
                        file: reloader.dir.clone(),
                        problems: problems.0,
                        kept: None,
                    };
                    reloader.metrics.set_job_files_broken(1);
                    *reloader.broken.write().expect("broken job files") = vec![unreadable];
                }
            }
        }
    }
}

/// What the daemon tells the log on its own, looking every `tick`: once each time its
/// calls stop (a refusal, the daily cost limit, a wrong path), which runs' queued work
/// it holds and how to drop it; and every `every` (unless zero), while scheduled work
/// was done or is in flight, one line of what it did.
async fn narrate(
    store: Store,
    exec: Executor,
    tick: Duration,
    every: Duration,
    stop: CancellationToken,
) {
    // Ticks since calls stopped: the work claimed with the refused call is put back
    // first, then what is held is told, once.
    let mut halted_for = 0u32;
    let mut last_summary = tokio::time::Instant::now();
    // Where the next summary's account of the ledger starts: now.
    let mut after = match store.scheduled_activity(i64::MAX).await {
        Ok(a) => a.last_call_id,
        Err(_) => 0,
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        match exec.halted() {
            Some(halt) => {
                halted_for += 1;
                if halted_for == 2 {
                    tell_waiting(&store, &halt).await;
                }
            }
            None => halted_for = 0,
        }
        if !every.is_zero() && last_summary.elapsed() >= every {
            let since = last_summary;
            last_summary = tokio::time::Instant::now();
            let activity = store.scheduled_activity(after).await;
            if let Ok(a) = &activity {
                after = after.max(a.last_call_id);
            }
            match activity {
                Ok(a) if a.calls > 0 || a.running > 0 => info!(
                    calls = a.calls,
                    failed = a.failed,
                    rows = a.rows,
                    cost_usd = a.cost.to_f64(),
                    queued = a.queued,
                    running = a.running,
                    "{}",
                    crate::ops::run_log::activity_line(&a, since.elapsed())
                ),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "reading what the daemon did for its summary failed"),
            }
        }
    }
}

/// Logs which runs' queued work a daemon whose calls stopped holds, and how to drop it.
async fn tell_waiting(store: &Store, halt: &crate::collect::executor::Halt) {
    let held = match store.waiting_runs().await {
        Ok(held) => held,
        Err(e) => {
            warn!(error = %e, "reading the work held while calls are stopped failed");
            return;
        }
    };
    let until = match halt.until {
        Some(t) => format!("until {} UTC", t.format("%Y-%m-%d %H:%M")),
        None => "until a restart with fixed configuration, credentials or funds".to_string(),
    };
    if held.is_empty() {
        warn!("calls stopped ({halt}) {until}; no queued work is held");
        return;
    }
    let runs: Vec<String> = held
        .iter()
        .map(|h| {
            format!(
                "run {} ({}, {})",
                h.run_id,
                h.job,
                crate::words::count(h.queued, "call")
            )
        })
        .collect();
    let ids: Vec<i64> = held.iter().map(|h| h.run_id).collect();
    warn!(
        runs = ?ids,
        "calls stopped ({halt}); holding the queued work of {} {until}; `linkledger runs show RUN` says why, `linkledger cancel RUN` drops a run's queued work",
        runs.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_computation_that_outlasts_its_time_is_given_up_and_holds_its_slot_until_it_ends() {
        let slot = BillSlot::default();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let slow = off_the_runtime(&slot, Duration::from_millis(50), move || {
            let _ = wait.recv();
            1
        });
        assert_eq!(slow.await, OffRuntime::GaveUp);
        assert_eq!(
            off_the_runtime(&slot, Duration::from_secs(5), || 2).await,
            OffRuntime::Busy
        );
        release.send(()).unwrap();
        let freed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match off_the_runtime(&slot, Duration::from_secs(5), || 3).await {
                    OffRuntime::Busy => tokio::task::yield_now().await,
                    done => return done,
                }
            }
        })
        .await
        .expect("the slot is freed once the slow one ends");
        assert_eq!(freed, OffRuntime::Done(3));
    }
}
