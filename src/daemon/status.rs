//! What `/healthz` and `/readyz` say of the daemon: the jobs (broken files, plans that
//! failed), the fires, the gaps, read again on each request.

use super::*;

/// `/healthz` and `/readyz`: the database answers, the scheduler ticks, the API takes
/// our calls, every job file loads (degraded otherwise) and every collection's last
/// fire could be planned and enqueued.
pub(super) fn health(
    app: &App,
    exec: &Executor,
    problems: PlanProblems,
    failures: FireFailures,
    broken: BrokenFiles,
    books: super::books::SharedBooks,
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
        let books = books.read().expect("books status").clone();
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
                super::books::books_health(&books),
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
pub(super) fn running(b: &BrokenFile) -> String {
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
pub(super) type BrokenFiles = Arc<std::sync::RwLock<Vec<BrokenFile>>>;

/// Logs each broken job file at error level (`file: field: why` for each problem, and
/// what of it runs) and sets `linkledger_job_files_broken`.
pub(super) fn report_broken(broken: &[BrokenFile], metrics: &Metrics) {
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

/// How many periods of a collection's targets stand missing, empty and unsettled.
pub(super) fn gap_counts(
    found: &[crate::collect::narrow::TargetGaps],
) -> Vec<(&'static str, usize)> {
    use crate::warehouse::coverage::Standing;
    [Standing::Missing, Standing::Empty, Standing::Unsettled]
        .into_iter()
        .map(|s| (s.name(), found.iter().map(|t| t.count(s)).sum()))
        .collect()
}

/// Brings the queue, budget and gap gauges up to date before a scrape.
pub(super) fn refresh(app: &App, jobs: CurrentJobs) -> health::RefreshFn {
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
