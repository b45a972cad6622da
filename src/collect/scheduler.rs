//! The scheduler: turns each collection's fire times into queued work, each fire
//! exactly once across any number of daemons (the unique key of `fires` decides, in the
//! transaction that creates its run and its work). Missed fires follow the
//! collection's `catch_up`; a fire that would break a rule of the API is recorded as a
//! failed run, not sent. The clock is always the caller's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tracing::{error, info, instrument, warn};

use crate::collect::workers;
use crate::jobs::{CatchUp, Job};
use crate::ops::metrics::Metrics;
use crate::plan;
use crate::store::Store;

/// Collections whose last fire could not be planned, with why: `(job, collection)`
/// → message. Shared with `/healthz`.
pub type PlanProblems = Arc<Mutex<BTreeMap<(String, String), String>>>;

/// Turns schedule fires into queued work.
pub struct Scheduler {
    store: Store,
    pub(crate) jobs: Vec<Job>,
    /// Per (job, collection): fires up to this instant have been considered.
    cursors: HashMap<(String, String), DateTime<Utc>>,
    enqueued_by: String,
    max_attempts: i32,
    metrics: Option<Arc<Metrics>>,
    problems: PlanProblems,
    fire_failures: FireFailures,
    /// Whether the jobs' targets are recorded (`linkledger.loaded_targets`) since they
    /// were last replaced.
    targets_recorded: bool,
}

/// A fire this scheduler enqueued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnqueuedFire {
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
            problems: PlanProblems::default(),
            fire_failures: FireFailures::default(),
            targets_recorded: false,
        }
    }

    /// Collections whose last fire could not be planned (shared, live).
    pub fn problems(&self) -> PlanProblems {
        self.problems.clone()
    }

    /// Collections whose last fire failed (shared, live).
    pub fn fire_failures(&self) -> FireFailures {
        self.fire_failures.clone()
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Scheduler {
        self.metrics = Some(metrics);
        self
    }

    /// The fires of collection `ci` of job `ji` due at `now`: after its cursor, or,
    /// the first time this scheduler sees it, the fires missed since its last fire as
    /// its `catch_up` asks. A collection that never fired counts from when a daemon
    /// first saw it (now, for a new one): nothing from before it existed is caught up.
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
            .schedule_anchor(&job.name, &c.name, now)
            .await
            .context("reading where the schedule resumes")?;
        Ok(match c.catch_up {
            CatchUp::Skip => Vec::new(),
            CatchUp::Latest => c.schedule.latest_fires(last, now, 1),
            CatchUp::All => {
                let window = chrono::Duration::from_std(c.catch_up_window)
                    .unwrap_or(chrono::Duration::days(7));
                c.schedule
                    .fires_between(last.max(now - window), now, MAX_CATCH_UP)
            }
        })
    }

    /// New job definitions; collections seen before keep their place.
    /// Records every target of the jobs (`linkledger.loaded_targets`): the rows the
    /// views `job_targets` and `target_status` read.
    async fn record_targets(&mut self, now: DateTime<Utc>) {
        let rows = crate::jobs::job_targets(&self.jobs, now);
        match self.store.record_job_targets(&rows).await {
            Ok(done) => {
                self.targets_recorded = true;
                info!(
                    targets = rows.len(),
                    changed = done.changed,
                    removed = done.removed,
                    "job targets recorded"
                );
            }
            Err(e) => {
                warn!(error = %e, "recording the job files' targets failed; tried again next tick")
            }
        }
    }

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
        self.problems
            .lock()
            .expect("plan problems")
            .retain(|k, _| keys.contains(k));
        // A failure is forgotten with its collection, or once the collection is
        // defined anew (an edit may be its fix; its next fire says again if not).
        // Collections have no equality of their own; their full `Debug` is one.
        let definitions = definitions_of(&jobs);
        let before = definitions_of(&self.jobs);
        self.fire_failures
            .lock()
            .expect("fire failures")
            .retain(|k, _| definitions.get(k).is_some_and(|d| before.get(k) == Some(d)));
        self.jobs = jobs;
        self.targets_recorded = false;
    }

    /// Enqueues every fire due at `now` (the clock is the caller's, so tests can move
    /// it). The first time a collection is seen, fires missed since its last recorded
    /// fire follow its `catch_up`: `latest` enqueues the newest one, `skip` none, `all`
    /// every one within `catch_up_window`; a collection that never fired waits for its
    /// next instant. A fire another daemon already enqueued is skipped; a fire that
    /// would break a rule of the API is recorded as a failed run, not sent.
    ///
    /// Each collection is planned and enqueued on its own: one whose fire fails (the
    /// database refuses its work, or cannot be read) is logged, counted
    /// (`linkledger_fire_failures_total`) and kept in [`Scheduler::fire_failures`] for
    /// `/healthz`, and every other collection fires as if nothing happened. A fire the
    /// database refuses for its data is recorded as a failed run with why (the same
    /// data would be refused again); one that failed otherwise (the database
    /// restarting) is tried again next tick. An error is returned only when the tick's
    /// own bookkeeping (closing finished runs) fails.
    #[instrument(skip_all, fields(%now))]
    pub async fn tick(&mut self, now: DateTime<Utc>) -> anyhow::Result<Vec<EnqueuedFire>> {
        let mut enqueued = Vec::new();
        for ji in 0..self.jobs.len() {
            for ci in 0..self.jobs[ji].collections.len() {
                self.check_plan(ji, ci, now);
                match self.fire_collection(ji, ci, now, &mut enqueued).await {
                    Ok(fired) => self.fire_succeeded(ji, ci, fired),
                    Err(failure) => self.fire_failed(ji, ci, failure),
                }
            }
        }
        // After the fires: what is due is enqueued first. Tried again next tick when the
        // database would not take it.
        if !self.targets_recorded {
            self.record_targets(now).await;
        }
        for run in self
            .store
            .close_finished_runs()
            .await
            .context("closing finished runs")?
        {
            crate::ops::run_log::log_finished(&self.store, run).await;
        }
        self.store
            .prune_purchases()
            .await
            .context("forgetting the buyers of past days")?;
        if let Some(m) = &self.metrics {
            m.scheduler_ticked(now);
        }
        Ok(enqueued)
    }

    /// Whether collection `ci` of job `ji` could be planned now, for `/healthz`, even
    /// before its next fire.
    fn check_plan(&self, ji: usize, ci: usize, now: DateTime<Utc>) {
        let job = &self.jobs[ji];
        let c = &job.collections[ci];
        let key = (job.name.clone(), c.name.clone());
        match plan::check_collection(c, now.date_naive(), now.date_naive()) {
            Ok(()) => self.problems.lock().expect("plan problems").remove(&key),
            Err(why) => self
                .problems
                .lock()
                .expect("plan problems")
                .insert(key, format!("{}: {why}", c.name)),
        };
    }

    /// Enqueues the fires of collection `ci` of job `ji` due at `now`, and moves its
    /// cursor to `now`; whether it enqueued one. A fire the database refuses for its data is recorded as a failed
    /// run and the rest go on; any other failure stops here, the cursor left where it
    /// was, so the next tick tries the same fires again (the unique key makes that
    /// safe).
    async fn fire_collection(
        &mut self,
        ji: usize,
        ci: usize,
        now: DateTime<Utc>,
        enqueued: &mut Vec<EnqueuedFire>,
    ) -> Result<bool, FireFailure> {
        let fires = self.due(ji, ci, now).await.map_err(|e| FireFailure {
            scheduled_for: None,
            why: short(&e),
            run_id: None,
        })?;
        let job = &self.jobs[ji];
        let c = &job.collections[ci];
        let key = (job.name.clone(), c.name.clone());
        // Since when this scheduler could have enqueued a fire: its last look, or now
        // for fires missed while no daemon ran (caught up at once).
        let looked = self.cursors.get(&key).copied().unwrap_or(now);
        let mut refused = None;
        let mut fired = false;
        for fire in fires {
            match self.fire_one(job, c, fire, now, looked).await {
                Ok(Some(done)) => {
                    fired = true;
                    enqueued.push(done);
                }
                Ok(None) => {}
                Err(e) if refused_data(&e) => {
                    // The same data would be refused again: the fire is recorded as
                    // the failed run it would have made, and the next ones go on.
                    let why = format!("{}: could not be enqueued: {}", c.name, short(&e));
                    let run_id = self
                        .store
                        .record_failed_fire(&job.name, &c.name, fire, &self.enqueued_by, &why)
                        .await
                        .map_err(|record| FireFailure {
                            scheduled_for: Some(fire),
                            why: format!("{}; recording it failed too: {record}", short(&e)),
                            run_id: None,
                        })?;
                    refused = Some(FireFailure {
                        scheduled_for: Some(fire),
                        why: short(&e),
                        run_id,
                    });
                }
                Err(e) => {
                    return Err(FireFailure {
                        scheduled_for: Some(fire),
                        why: short(&e),
                        run_id: None,
                    });
                }
            }
        }
        self.cursors.insert(key, now);
        match refused {
            Some(failure) => Err(failure),
            None => Ok(fired),
        }
    }

    /// Plans and enqueues one fire: `None` when another daemon enqueued it already or
    /// it was recorded as a fire that could not be planned.
    async fn fire_one(
        &self,
        job: &Job,
        c: &crate::jobs::Collection,
        fire: DateTime<Utc>,
        now: DateTime<Utc>,
        looked: DateTime<Utc>,
    ) -> anyhow::Result<Option<EnqueuedFire>> {
        // The API's rules are checked again now: an absolute date that was valid when
        // the job loaded may have aged out since.
        if let Err(why) = plan::check_collection(c, fire.date_naive(), now.date_naive()) {
            let why = format!("{}: {why}", c.name);
            let recorded = self
                .store
                .record_failed_fire(&job.name, &c.name, fire, &self.enqueued_by, &why)
                .await
                .context("recording a fire that could not be planned")?;
            if recorded.is_some() {
                error!(job = %job.name, collection = %c.name, scheduled_for = %fire, reason = %why, "fire not sent");
            }
            return Ok(None);
        }
        // Only what the warehouse does not hold yet, for history and the timeseries.
        let planned = crate::collect::narrow::plan_to_buy(&self.store, c, fire.date_naive())
            .await
            .context("planning a fire against what is stored")?;
        let work: Vec<_> = planned.calls.iter().map(workers::new_work).collect();
        let Some(run_id) = self
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
            .context("enqueueing a fire")?
        else {
            return Ok(None);
        };
        // How late this fire runs: from when it was due, or for a caught-up fire from
        // when the scheduler first saw it, so a fire of last month does not read as a
        // month of lag.
        let lag = (now - fire.max(looked)).to_std().unwrap_or_default();
        info!(job = %job.name, collection = %c.name, scheduled_for = %fire, run_id, calls = work.len(), "fire enqueued");
        if let Some(m) = &self.metrics {
            m.set_schedule_lag(&job.name, &c.name, lag);
        }
        Ok(Some(EnqueuedFire {
            job: job.name.clone(),
            collection: c.name.clone(),
            scheduled_for: fire,
            run_id,
        }))
    }

    /// Collection `ci` of job `ji` went through a tick without failing (`fired`: and
    /// enqueued a fire): a failure that only cost a tick (its fires were tried again)
    /// is over. One recorded as a failed run stays until the collection's next fire is
    /// enqueued or its definition changes.
    fn fire_succeeded(&self, ji: usize, ci: usize, fired: bool) {
        let key = (
            self.jobs[ji].name.clone(),
            self.jobs[ji].collections[ci].name.clone(),
        );
        let mut failures = self.fire_failures.lock().expect("fire failures");
        if failures
            .get(&key)
            .is_some_and(|f| fired || f.run_id.is_none())
        {
            failures.remove(&key);
        }
    }

    /// Logs, counts and keeps (for `/healthz`) a failure of collection `ci` of job `ji`.
    fn fire_failed(&self, ji: usize, ci: usize, failure: FireFailure) {
        let (job, c) = (&self.jobs[ji].name, &self.jobs[ji].collections[ci].name);
        match failure.run_id {
            Some(run_id) => {
                error!(job = %job, collection = %c, scheduled_for = ?failure.scheduled_for, run_id, error = %failure.why, "fire failed: the database refused it; recorded as a failed run")
            }
            None => {
                error!(job = %job, collection = %c, scheduled_for = ?failure.scheduled_for, error = %failure.why, "fire failed; tried again next tick")
            }
        }
        if let Some(m) = &self.metrics {
            m.fire_failed(job, c);
        }
        self.fire_failures
            .lock()
            .expect("fire failures")
            .insert((job.clone(), c.clone()), failure);
    }
}

/// Why a collection's fire failed, for `/healthz` and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FireFailure {
    /// The fire that failed; `None` when where the schedule resumes could not be read.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Short: what was being done and the database's own words.
    pub why: String,
    /// The failed run it was recorded as, when the database refused its data.
    pub run_id: Option<i64>,
}

impl std::fmt::Display for FireFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.scheduled_for {
            Some(at) => write!(f, "the fire of {}", at.format("%Y-%m-%d %H:%M UTC"))?,
            None => write!(f, "planning its fires")?,
        }
        write!(f, " failed: {}", self.why)?;
        match self.run_id {
            Some(run) => write!(f, " (run {run})"),
            None => write!(f, " (tried again each tick)"),
        }
    }
}

/// Collections whose last fire failed: `(job, collection)` → why. Shared with
/// `/healthz`.
pub type FireFailures = Arc<Mutex<BTreeMap<(String, String), FireFailure>>>;

/// The most characters of an error `/healthz` and a failed run show.
const SHORT: usize = 200;

/// An error in a line: what was being done and the root cause, at most [`SHORT`]
/// characters.
fn short(e: &anyhow::Error) -> String {
    let top = e.to_string();
    let root = e.root_cause().to_string();
    let line = if root == top {
        top
    } else {
        format!("{top}: {root}")
    };
    match line.char_indices().nth(SHORT) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// Whether the database refused the data of a fire (see
/// [`crate::store::StoreError::is_refused_data`]).
fn refused_data(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<crate::store::StoreError>())
        .any(|s| s.is_refused_data())
}

/// Each collection of `jobs` by (job, collection) name, with its whole definition as
/// text: collections have no equality of their own; their full `Debug` is one.
fn definitions_of(jobs: &[Job]) -> std::collections::HashMap<(String, String), String> {
    jobs.iter()
        .flat_map(|j| {
            j.collections
                .iter()
                .map(|c| ((j.name.clone(), c.name.clone()), format!("{c:?}")))
        })
        .collect()
}
