//! The scheduler: turns each collection's fire times into queued work, each fire
//! exactly once across any number of daemons (the unique key of `fires` decides, in the
//! transaction that creates its run and its work). Missed fires follow the
//! collection's `catch_up`; a fire that would break a rule of the API is recorded as a
//! failed run, not sent. The clock is always the caller's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tracing::{error, info, instrument};

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
        }
    }

    /// Collections whose last fire could not be planned (shared, live).
    pub fn problems(&self) -> PlanProblems {
        self.problems.clone()
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
        self.jobs = jobs;
    }

    /// Enqueues every fire due at `now` (the clock is the caller's, so tests can move
    /// it). The first time a collection is seen, fires missed since its last recorded
    /// fire follow its `catch_up`: `latest` enqueues the newest one, `skip` none, `all`
    /// every one within `catch_up_window`; a collection that never fired waits for its
    /// next instant. A fire another daemon already enqueued is skipped; a fire that
    /// would break a rule of the API is recorded as a failed run, not sent.
    #[instrument(skip_all, fields(%now))]
    pub async fn tick(&mut self, now: DateTime<Utc>) -> anyhow::Result<Vec<EnqueuedFire>> {
        let mut enqueued = Vec::new();
        for ji in 0..self.jobs.len() {
            for ci in 0..self.jobs[ji].collections.len() {
                let fires = self.due(ji, ci, now).await?;
                let job = &self.jobs[ji];
                let c = &job.collections[ci];
                // Since when this scheduler could have enqueued a fire: its last look,
                // or now for fires missed while no daemon ran (caught up at once).
                let looked = self
                    .cursors
                    .get(&(job.name.clone(), c.name.clone()))
                    .copied()
                    .unwrap_or(now);
                // Whether the collection could be planned now, for /healthz, even
                // before its next fire.
                let key = (job.name.clone(), c.name.clone());
                match plan::check_collection(c, now.date_naive(), now.date_naive()) {
                    Ok(()) => self.problems.lock().expect("plan problems").remove(&key),
                    Err(why) => self
                        .problems
                        .lock()
                        .expect("plan problems")
                        .insert(key, format!("{}: {why}", c.name)),
                };
                for fire in fires {
                    // The API's rules are checked again now: an absolute date that was
                    // valid when the job loaded may have aged out since.
                    if let Err(why) = plan::check_collection(c, fire.date_naive(), now.date_naive())
                    {
                        let why = format!("{}: {why}", c.name);
                        let recorded = self
                            .store
                            .record_unplannable_fire(
                                &job.name,
                                &c.name,
                                fire,
                                &self.enqueued_by,
                                &why,
                            )
                            .await
                            .context("recording a fire that could not be planned")?;
                        if recorded {
                            error!(job = %job.name, collection = %c.name, scheduled_for = %fire, reason = %why, "fire not sent");
                        }
                        continue;
                    }
                    // Only what the warehouse does not hold yet, for history and
                    // the timeseries.
                    let planned =
                        crate::collect::narrow::plan_to_buy(&self.store, c, fire.date_naive())
                            .await
                            .context("planning a fire against what is stored")?;
                    let work: Vec<_> = planned.calls.iter().map(workers::new_work).collect();
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
                        // How late this fire runs: from when it was due, or for a
                        // caught-up fire from when the scheduler first saw it, so a
                        // fire of last month does not read as a month of lag.
                        let lag = (now - fire.max(looked)).to_std().unwrap_or_default();
                        info!(job = %job.name, collection = %c.name, scheduled_for = %fire, run_id, calls = work.len(), "fire enqueued");
                        if let Some(m) = &self.metrics {
                            m.set_schedule_lag(&job.name, &c.name, lag);
                        }
                        enqueued.push(EnqueuedFire {
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
}
