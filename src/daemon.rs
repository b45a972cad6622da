//! `linkledger run`: the long-running daemon. A scheduler turns each collection's fire
//! times into queued work (each fire exactly once across any number of daemons, by
//! the unique key of `fires`), workers execute the queue, and a small HTTP server
//! answers `/healthz` and `/metrics`. SIGTERM/SIGINT stop it cleanly; SIGHUP or an
//! edit of the job files reloads them once they pass `jobs check`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, instrument, warn};

use crate::api::Client;
use crate::config::Config;
use crate::executor::{self, Executor, SharedLimits};
use crate::jobs::{self, CatchUp, Job};
use crate::plan;
use crate::queue::{self, WorkerConfig, Workers};
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::telemetry::server::{self, HealthCheck, HealthReport};

/// Turns schedule fires into queued work.
pub struct Scheduler {
    store: Store,
    jobs: Vec<Job>,
    /// Per (job, collection): fires up to this instant have been considered.
    cursors: HashMap<(String, String), DateTime<Utc>>,
    enqueued_by: String,
    max_attempts: i32,
    metrics: Option<Arc<Metrics>>,
}

/// A fire this scheduler enqueued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enqueued {
    pub job: String,
    pub collection: String,
    pub scheduled_for: DateTime<Utc>,
    pub run_id: i64,
}

/// At most this many missed fires are enqueued for one collection at a start.
const MAX_CATCH_UP: usize = 1000;

impl Scheduler {
    pub fn new(store: Store, jobs: Vec<Job>, enqueued_by: String, max_attempts: i32) -> Scheduler {
        Scheduler {
            store,
            jobs,
            cursors: HashMap::new(),
            enqueued_by,
            max_attempts,
            metrics: None,
        }
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Scheduler {
        self.metrics = Some(metrics);
        self
    }

    /// The fires of collection `ci` of job `ji` due at `now`: after its cursor, or,
    /// the first time it is seen, the missed ones its `catch_up` asks for.
    async fn due(
        &self,
        ji: usize,
        ci: usize,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<DateTime<Utc>>> {
        let job = &self.jobs[ji];
        let c = &job.collections[ci];
        if let Some(cursor) = self.cursors.get(&(job.name.clone(), c.name.clone())) {
            return Ok(c.schedule.fires_between(*cursor, now, MAX_CATCH_UP));
        }
        let last = self
            .store
            .last_fire(&job.name, &c.name)
            .await
            .context("reading the last fire")?;
        let window =
            chrono::Duration::from_std(c.catch_up_window).unwrap_or(chrono::Duration::days(7));
        let from = match last {
            Some(last) => last.max(now - window),
            None => now - window,
        };
        Ok(match c.catch_up {
            CatchUp::Skip => Vec::new(),
            CatchUp::Latest => c.schedule.latest_fires(from, now, 1),
            CatchUp::All => c.schedule.fires_between(from, now, MAX_CATCH_UP),
        })
    }

    /// New job definitions; collections seen before keep their place.
    pub fn replace_jobs(&mut self, jobs: Vec<Job>) {
        let keys: std::collections::HashSet<(String, String)> = jobs
            .iter()
            .flat_map(|j| {
                j.collections
                    .iter()
                    .map(|c| (j.name.clone(), c.name.clone()))
            })
            .collect();
        self.cursors.retain(|k, _| keys.contains(k));
        self.jobs = jobs;
    }

    /// Enqueues every fire due at `now` (the clock is the caller's, so tests can move
    /// it). The first time a collection is seen, missed fires follow its `catch_up`:
    /// `latest` enqueues the newest one, `skip` none, `all` every one within
    /// `catch_up_window`. A fire another daemon already enqueued is skipped.
    #[instrument(skip_all, fields(%now))]
    pub async fn tick(&mut self, now: DateTime<Utc>) -> anyhow::Result<Vec<Enqueued>> {
        let mut enqueued = Vec::new();
        for ji in 0..self.jobs.len() {
            for ci in 0..self.jobs[ji].collections.len() {
                let fires = self.due(ji, ci, now).await?;
                let job = &self.jobs[ji];
                let c = &job.collections[ci];
                for fire in fires {
                    let work: Vec<_> = plan::plan_collection(c, fire.date_naive())
                        .iter()
                        .map(executor::new_work)
                        .collect();
                    let run = self
                        .store
                        .enqueue_fire(
                            &job.name,
                            &c.name,
                            fire,
                            &self.enqueued_by,
                            self.max_attempts,
                            &work,
                        )
                        .await
                        .context("enqueueing a fire")?;
                    if let Some(run_id) = run {
                        let lag = (now - fire).to_std().unwrap_or_default();
                        info!(job = %job.name, collection = %c.name, scheduled_for = %fire, run_id, calls = work.len(), "fire enqueued");
                        if let Some(m) = &self.metrics {
                            m.set_schedule_lag(&job.name, &c.name, lag);
                        }
                        enqueued.push(Enqueued {
                            job: job.name.clone(),
                            collection: c.name.clone(),
                            scheduled_for: fire,
                            run_id,
                        });
                    }
                }
                // Only now: a failed enqueue leaves the cursor where it was, so the
                // next tick tries the same fires again (the unique key makes that safe).
                self.cursors.insert((job.name.clone(), c.name.clone()), now);
            }
        }
        self.store
            .close_finished_runs()
            .await
            .context("closing finished runs")?;
        if let Some(m) = &self.metrics {
            m.scheduler_ticked(now);
        }
        Ok(enqueued)
    }
}

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

/// Runs the daemon until SIGTERM/SIGINT. `jobs` were validated by the caller.
pub async fn run(
    cfg: Config,
    jobs: Vec<Job>,
    loaded_from: Fingerprint,
    store: Store,
    client: Client,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    store
        .ensure_api_slots(cfg.api.max_in_flight as i32)
        .await
        .context("preparing the shared API slots")?;
    let shared = SharedLimits::new(
        queue::worker_id("daemon"),
        cfg.api.max_in_flight as i32,
        i64::from(cfg.api.max_per_minute),
        cfg.queue.lease,
    );
    let shutdown = CancellationToken::new();
    let exec = Executor::new(store.clone(), client)
        .with_shared_limits(shared.clone())
        .with_metrics(metrics.clone())
        .with_stop(shutdown.clone());
    let slots_alive = CancellationToken::new();
    let keep_slots = shared.keep_alive(store.clone(), slots_alive.clone());

    let health = {
        let (store, metrics, exec) = (store.clone(), metrics.clone(), exec.clone());
        let stale_after = cfg.queue.tick * 3 + Duration::from_secs(5);
        Arc::new(move || {
            let (store, metrics, exec) = (store.clone(), metrics.clone(), exec.clone());
            Box::pin(async move {
                let db = store.ping().await;
                let tick = metrics.last_tick();
                let tick_ok = tick
                    .is_some_and(|t| (Utc::now() - t).to_std().unwrap_or_default() <= stale_after);
                let halt = exec.halted().await;
                let checks = vec![
                    HealthCheck {
                        name: "database".into(),
                        ok: db.is_ok(),
                        detail: match &db {
                            Ok(_) => "reachable".into(),
                            Err(e) => e.to_string(),
                        },
                    },
                    HealthCheck {
                        name: "scheduler".into(),
                        ok: tick_ok,
                        detail: match tick {
                            Some(t) => format!("last tick {t}"),
                            None => "not ticked yet".into(),
                        },
                    },
                    HealthCheck {
                        name: "api".into(),
                        ok: halt.is_none(),
                        detail: match &halt {
                            Some(h) => format!("calls stopped: {h}"),
                            None => "calls allowed".into(),
                        },
                    },
                ];
                HealthReport {
                    ok: checks.iter().all(|c| c.ok),
                    checks,
                }
            }) as futures::future::BoxFuture<'static, HealthReport>
        }) as server::HealthFn
    };
    let refresh = {
        let (store, metrics) = (store.clone(), metrics.clone());
        Arc::new(move || {
            let (store, metrics) = (store.clone(), metrics.clone());
            Box::pin(async move {
                match store.queue_depth().await {
                    Ok((depth, oldest)) => metrics.set_queue(&depth, oldest),
                    Err(e) => warn!(error = %e, "reading the queue depth for /metrics failed"),
                }
            }) as futures::future::BoxFuture<'static, ()>
        }) as server::RefreshFn
    };
    let (addr, server_task) = server::serve(
        cfg.server.listen,
        metrics.clone(),
        health,
        refresh,
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("serving /healthz and /metrics on {}", cfg.server.listen))?;
    // The one line operators and tests look for.
    println!("linkledger daemon: /healthz and /metrics on http://{addr}");

    if let Err(h) = exec.check_credentials(None).await? {
        error!(reason = %h, "the API refused the credentials; no call will be made until restart");
    }

    let reload = Arc::new(Notify::new());
    let signals = tokio::spawn(watch_signals(shutdown.clone(), reload.clone()));

    let scheduler = Scheduler::new(
        store.clone(),
        jobs,
        queue::worker_id("scheduler"),
        cfg.api.max_attempts as i32,
    )
    .with_metrics(metrics.clone());
    let ticking = tokio::spawn(schedule_loop(
        scheduler,
        cfg.jobs.dir.clone(),
        loaded_from,
        cfg.queue.tick,
        reload,
        shutdown.clone(),
    ));

    let workers = Workers::new(
        exec,
        WorkerConfig {
            worker_id: queue::worker_id("daemon"),
            concurrency: if cfg.queue.workers == 0 {
                cfg.api.max_in_flight * 2
            } else {
                cfg.queue.workers
            },
            lease: cfg.queue.lease,
            poll: cfg.queue.poll,
            shutdown_grace: cfg.queue.shutdown_grace,
            keep_work_when_stopped: true,
        },
    );
    info!(listen = %addr, "daemon started");
    let result = workers.run(shutdown.clone()).await;
    shutdown.cancel();
    let _ = ticking.await;
    let _ = server_task.await;
    slots_alive.cancel();
    let _ = keep_slots.await;
    signals.abort();
    info!("daemon stopped");
    result
}

async fn watch_signals(shutdown: CancellationToken, reload: Arc<Notify>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: stopping"); shutdown.cancel(); return; }
            _ = int.recv() => { info!("SIGINT: stopping"); shutdown.cancel(); return; }
            _ = hup.recv() => { info!("SIGHUP: reloading the job files"); reload.notify_one(); }
        }
    }
}

async fn schedule_loop(
    mut scheduler: Scheduler,
    dir: PathBuf,
    mut seen: Fingerprint,
    tick: Duration,
    reload: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        if let Err(e) = scheduler.tick(Utc::now()).await {
            // Postgres may be restarting; the next tick retries.
            warn!(error = format!("{e:#}"), "scheduler tick failed");
        }
        let mut reload_now = false;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
            _ = reload.notified() => reload_now = true,
        }
        let now = fingerprint(&dir);
        if reload_now || now != seen {
            seen = now;
            match jobs::load_dir(&dir, Utc::now().date_naive()) {
                Ok(jobs) => {
                    info!(jobs = jobs.len(), "job files reloaded");
                    scheduler.replace_jobs(jobs);
                }
                Err(problems) => {
                    for p in &problems.0 {
                        error!(problem = %p, "job files not reloaded; the previous jobs keep running");
                    }
                }
            }
        }
    }
}
