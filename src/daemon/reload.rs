//! The schedule loop: a tick every `tick`, the job files reloaded when they change or
//! a reload is asked for, each collection's next fire logged.

use super::*;

/// One line per collection: when it fires next (in its job's time zone as well).
pub(super) fn log_next_fires(jobs: &[Job], now: chrono::DateTime<Utc>) {
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

/// What a reload reads again: the job files, and the budgets of the configuration.
pub(super) struct Reloader {
    pub(super) dir: PathBuf,
    /// `--config`, as given (the default file otherwise).
    pub(super) config_source: Option<PathBuf>,
    pub(super) budgets: crate::app::BudgetHandle,
    /// Shared with the balance check.
    pub(super) jobs: CurrentJobs,
    /// Shared with `/healthz`.
    pub(super) broken: BrokenFiles,
    pub(super) metrics: Arc<Metrics>,
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
pub(super) async fn schedule_loop(
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
