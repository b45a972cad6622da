//! Job files: `jobs/*.toml`, one job per file, each naming its targets and the
//! collections (endpoint, schedule, parameters) to run over them.
//!
//! Loading validates everything a call could later trip on (unknown keys, endpoints and
//! parameters, parameter types and ranges, cron syntax, time zones, targets an endpoint
//! cannot take, date rules of the API), and reports every problem of every file as
//! `file: field: why`, not just the first. What loads but will likely fail later (an
//! absolute `date_from` about to leave the API's one-year window) is a warning in
//! [`Job::warnings`], in the same form. [`check_request_dates`] re-checks the date rules
//! on a later day, for the planner.
//!
//! Files are read bounded ([`MAX_FILE_BYTES`], regular files only), a `targets_file`
//! only inside the jobs directory; a string PostgreSQL cannot store (one holding NUL)
//! is a problem; and a message never quotes a file beyond the one value that is wrong,
//! cut and with its control characters escaped ([`crate::words::shown`]; a
//! [`Problem`] escapes what it displays as well).
//!
//! Where each part is read: `load` (the directory, one file, a job's own keys),
//! `files` (bounded reads, the targets file confined), `collection` (each
//! `[[collect]]` section, one part at a time), `targets`, `params`, `dates` (the API's
//! date rules), [`schedule`]; `report` collects one file's problems and warnings.

mod collection;
mod dates;
pub mod examples;
mod files;
mod load;
mod params;
mod report;
pub mod schedule;
mod targets;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::api::endpoint::Endpoint;
use crate::api::target::Target;
use crate::jobs::schedule::Schedule;
use crate::words::escape_controls;

pub use dates::{AGE_OUT_WARNING_DAYS, check_request_dates};
pub use files::MAX_FILE_BYTES;
pub use load::{BrokenFile, DirJobs, load_dir, load_dir_for_daemon, load_file};
pub use params::{DateSpec, DateUnit, ParamValue, Params};

/// Default `catch_up_window`: how far back `catch_up = "all"` looks for missed fires.
pub const DEFAULT_CATCH_UP_WINDOW: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How long after an answer first lacked it a period answered empty is asked again by
/// later fires, when the collection says nothing (`reask_empty`).
pub const DEFAULT_REASK_EMPTY: Duration = Duration::from_secs(31 * 24 * 60 * 60);

/// How far before its window a history or timeseries fire reaches back to meet what is
/// stored, when the collection says nothing (`reach_back`).
pub const DEFAULT_REACH_BACK: Duration = Duration::from_secs(92 * 24 * 60 * 60);

/// The longest `settle` a collection may set: a period stored this long after its
/// figures were complete is stored for good under any setting.
pub const MAX_SETTLE: Duration = Duration::from_secs(31 * 24 * 60 * 60);

/// The longest `reask_empty` and `reach_back` a collection may set.
pub const MAX_REACH: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// One job file.
#[derive(Clone, Debug)]
pub struct Job {
    pub name: String,
    /// The file it was loaded from, as given (e.g. `jobs/competitors.toml`).
    pub file: PathBuf,
    /// The zone its schedules are evaluated in; `None` is UTC.
    pub timezone: Option<Tz>,
    pub budget_monthly_usd: Option<Decimal>,
    pub collections: Vec<Collection>,
    /// What loads but will likely go wrong later, as `file: field: why` like a problem:
    /// an absolute `date_from` about to leave the API's one-year window.
    pub warnings: Vec<Problem>,
}

impl Job {
    pub fn collection(&self, name: &str) -> Option<&Collection> {
        self.collections.iter().find(|c| c.name == name)
    }
}

/// One `[[collect]]` section: an endpoint called on a schedule over targets.
#[derive(Clone, Debug)]
pub struct Collection {
    /// The job's name.
    pub job: String,
    /// Unique within the job: as written, else the endpoint name (`-2`, `-3`, ... when
    /// the endpoint repeats).
    pub name: String,
    pub endpoint: Endpoint,
    pub schedule: Schedule,
    /// Only the parameters the file set.
    pub params: Params,
    /// Normalized, deduplicated, in file order; never empty.
    pub targets: Vec<Target>,
    pub catch_up: CatchUp,
    pub catch_up_window: Duration,
    /// Whether a history or timeseries fire buys its whole range, or only what the
    /// warehouse does not hold yet.
    pub refetch: Refetch,
    /// History and timeseries: how long after a period's figures are complete an
    /// answer stores it for good (`settle`; the endpoint's default when not set).
    pub settle: Duration,
    /// History and timeseries: how long after an answer first lacked it a period
    /// answered empty is asked again by later fires (`reask_empty`).
    pub reask_empty: Duration,
    /// History and timeseries: how far before its window a fire reaches back to meet
    /// the end of what is stored, so that no days are left between (`reach_back`).
    pub reach_back: Duration,
    /// List endpoints: the most rows one fire buys per target (`max_rows`); `None`
    /// for the others.
    pub max_rows: Option<u64>,
}

/// What a date-ranged collection's fire buys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Refetch {
    /// Only the periods not stored yet, and the newest (still open) one.
    #[default]
    Missing,
    /// The whole configured range, every time.
    Always,
}

impl Refetch {
    pub fn as_str(self) -> &'static str {
        match self {
            Refetch::Missing => "missing",
            Refetch::Always => "always",
        }
    }
}

impl Collection {
    /// This collection for those of its targets in `targets` only (all of them when
    /// `targets` is empty).
    pub fn only_targets(&self, targets: &[Target]) -> Collection {
        Collection {
            targets: self
                .targets
                .iter()
                .filter(|t| targets.is_empty() || targets.contains(t))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// The parameters sent with each call (without `target`/`targets`): the file's
    /// parameters plus every endpoint default not set, dates resolved to `yyyy-mm-dd`
    /// against `today` (UTC). Keys follow the endpoint table's order.
    pub fn request_params(&self, today: NaiveDate) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        for spec in self.endpoint.params() {
            let value = match (self.params.get(spec.name), &spec.default) {
                (Some(v), _) => v.clone(),
                (None, Some(default)) => params::default_value(default),
                (None, None) => continue,
            };
            out.insert(spec.name.to_string(), value.to_json(today));
        }
        out
    }

    /// The targets as the API takes them.
    pub fn target_strings(&self) -> Vec<String> {
        self.targets
            .iter()
            .map(|t| t.as_str().to_string())
            .collect()
    }
}

/// What to do with fires missed while no daemon ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CatchUp {
    /// Run once for the most recent missed fire.
    #[default]
    Latest,
    /// Run nothing; wait for the next fire.
    Skip,
    /// Run every missed fire within `catch_up_window`.
    All,
}

impl CatchUp {
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Latest => "latest",
            CatchUp::Skip => "skip",
            CatchUp::All => "all",
        }
    }
}

impl fmt::Display for CatchUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing wrong with a job file. Displayed as `file: field: why`, each part with its
/// control characters escaped, so that nothing a file holds reaches a terminal raw.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}: {}: {}",
    escape_controls(&file.display().to_string()),
    escape_controls(field),
    escape_controls(why)
)]
pub struct Problem {
    pub file: PathBuf,
    /// Where in the file: `name`, `targets[3]`, `collect[1].params.date_from`, ...
    /// Indexes count from 1: `collect[1]` is the first `[[collect]]` section and
    /// `targets[1]` the first target.
    pub field: String,
    pub why: String,
}

/// Every problem found, one per line when displayed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One target of one collection, as the job files say: a row of
/// `linkledger.job_targets` (which job collects which target, how, and how often).
#[derive(Clone, Debug, PartialEq)]
pub struct JobTarget {
    pub job: String,
    pub collection: String,
    pub endpoint: Endpoint,
    pub target: String,
    /// The collection's [`Endpoint::answer_options`]: the `options` of the rows its
    /// answers store.
    pub options: serde_json::Value,
    /// The timeseries' `group_range` (the API's default filled in); `None` for other
    /// endpoints.
    pub group_range: Option<String>,
    /// The schedule as written.
    pub schedule: String,
    /// The time zone the schedule is evaluated in; `None` is UTC.
    pub timezone: Option<String>,
    /// [`Schedule::longest_gap`] from the instant the rows were made.
    pub every: Option<chrono::TimeDelta>,
    /// The job file.
    pub file: String,
}

/// Every target of every collection of `jobs`, in file order; `now` is when they are
/// read (the schedules' gaps are measured from it).
pub fn job_targets(jobs: &[Job], now: chrono::DateTime<chrono::Utc>) -> Vec<JobTarget> {
    let today = now.date_naive();
    let mut out = Vec::new();
    for job in jobs {
        for c in &job.collections {
            let params = serde_json::Value::Object(c.request_params(today));
            let options = c.endpoint.answer_options(&params);
            let group_range = params
                .get("group_range")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string);
            let every = c.schedule.longest_gap(now);
            for t in &c.targets {
                out.push(JobTarget {
                    job: job.name.clone(),
                    collection: c.name.clone(),
                    endpoint: c.endpoint,
                    target: t.as_str().to_string(),
                    options: options.clone(),
                    group_range: group_range.clone(),
                    schedule: c.schedule.as_str().to_string(),
                    timezone: c.schedule.timezone().map(|tz| tz.name().to_string()),
                    every,
                    file: job.file.display().to_string(),
                });
            }
        }
    }
    out
}

/// The jobs `name` selects: all of them for `None`.
pub fn select<'a>(jobs: &'a [Job], name: Option<&str>) -> Result<Vec<&'a Job>, String> {
    let Some(name) = name else {
        return Ok(jobs.iter().collect());
    };
    if let Some(job) = jobs.iter().find(|j| j.name == name) {
        return Ok(vec![job]);
    }
    if jobs.is_empty() {
        return Err(format!(
            "no job named `{}`: there are no job files",
            crate::words::shown(name)
        ));
    }
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    let hint = crate::words::suggest(name, names.iter().copied())
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    Err(format!(
        "no job named `{}`{hint}; jobs are: {}",
        crate::words::shown(name),
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests;
