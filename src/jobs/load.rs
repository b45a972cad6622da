//! Reading and validating job files. The TOML is walked by hand so that every unknown
//! key is reported with its path, and every problem of every file is collected.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{Months, NaiveDate};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::params::{self, DateSpec, ParamValue, Params, format_date, type_name};
use super::{CatchUp, Collection, DEFAULT_CATCH_UP_WINDOW, Job, Problem, Problems, Refetch};
use crate::api::endpoint::{EarliestDate, Endpoint, ParamKind};
use crate::api::target::Target;
use crate::jobs::schedule::Schedule;

const JOB_KEYS: &[&str] = &[
    "name",
    "targets",
    "targets_file",
    "timezone",
    "budget_monthly_usd",
    "collect",
];

const COLLECT_KEYS: &[&str] = &[
    "name",
    "endpoint",
    "schedule",
    "timezone",
    "params",
    "targets",
    "targets_file",
    "catch_up",
    "catch_up_window",
    "refetch",
];

/// Loads every `*.toml` file directly in `dir` (sorted by file name). Job names must be
/// unique across files. A directory without job files gives no jobs.
pub fn load_dir(dir: &Path, today: NaiveDate) -> Result<Vec<Job>, Problems> {
    load_dir_with(dir, today, false)
}

/// Like [`load_dir`] for a daemon: an absolute `date_from` that has aged out of the
/// API's one-year window is a warning, not a problem, so one collection that aged out
/// while the daemon was down does not keep every job from running. Its fires are
/// checked again when they are due, recorded as failed and named by `/healthz`.
pub fn load_dir_for_daemon(dir: &Path, today: NaiveDate) -> Result<Vec<Job>, Problems> {
    load_dir_with(dir, today, true)
}

fn load_dir_with(dir: &Path, today: NaiveDate, aged_out_warns: bool) -> Result<Vec<Job>, Problems> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            return Err(Problems(vec![Problem {
                file: dir.to_path_buf(),
                field: "(directory)".into(),
                why: format!("cannot read the jobs directory: {}", io_reason(&e)),
            }]));
        }
    };
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut problems = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(Problem {
                    file: dir.to_path_buf(),
                    field: "(directory)".into(),
                    why: format!("cannot list the jobs directory: {}", io_reason(&e)),
                });
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = dir.join(&name);
        if name.starts_with('.') || !name.ends_with(".toml") || !path.is_file() {
            continue;
        }
        files.push((name, path));
    }
    files.sort();

    let mut jobs = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for (_, path) in files {
        let loaded = load(&path, today, aged_out_warns);
        let mut file_problems = loaded.problems;
        if let Some(name) = &loaded.name {
            if let Some(first) = seen.get(name) {
                file_problems.insert(
                    0,
                    Problem {
                        file: path.clone(),
                        field: "name".into(),
                        why: format!("job `{name}` is already defined in {}", first.display()),
                    },
                );
            } else {
                seen.insert(name.clone(), path.clone());
            }
        }
        if file_problems.is_empty() {
            jobs.extend(loaded.job);
        } else {
            problems.extend(file_problems);
        }
    }
    if problems.is_empty() {
        tracing::debug!(dir = %dir.display(), jobs = jobs.len(), "loaded job files");
        Ok(jobs)
    } else {
        Err(Problems(problems))
    }
}

/// Loads and validates one job file. Date rules are checked against `today` (UTC).
pub fn load_file(path: &Path, today: NaiveDate) -> Result<Job, Problems> {
    let loaded = load(path, today, false);
    match loaded.job {
        Some(job) if loaded.problems.is_empty() => Ok(job),
        _ => Err(Problems(loaded.problems)),
    }
}

struct Loaded {
    /// The job's name when the file gave a valid one, even if other things are wrong.
    name: Option<String>,
    job: Option<Job>,
    problems: Vec<Problem>,
}

/// Collects the problems of one file.
struct Ctx<'a> {
    file: &'a Path,
    problems: Vec<Problem>,
    /// What loads but will likely go wrong later.
    warnings: Vec<Problem>,
    /// An absolute date that aged out of the one-year window is a warning (a daemon).
    aged_out_warns: bool,
}

impl Ctx<'_> {
    fn warn(&mut self, field: impl Into<String>, why: impl Into<String>) {
        let p = Problem {
            file: self.file.to_path_buf(),
            field: field.into(),
            why: why.into(),
        };
        if !self.warnings.contains(&p) {
            self.warnings.push(p);
        }
    }

    fn add(&mut self, field: impl Into<String>, why: impl Into<String>) {
        let p = Problem {
            file: self.file.to_path_buf(),
            field: field.into(),
            why: why.into(),
        };
        if !self.problems.contains(&p) {
            self.problems.push(p);
        }
    }

    fn unknown_keys(&mut self, table: &toml::Table, known: &[&str], prefix: &str) {
        for key in table.keys() {
            if !known.contains(&key.as_str()) {
                let hint = crate::words::suggest(key, known.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                self.add(format!("{prefix}{key}"), format!("unknown key{hint}"));
            }
        }
    }

    /// A string field, or a problem saying it is not one.
    fn string<'t>(&mut self, table: &'t toml::Table, key: &str, prefix: &str) -> Option<&'t str> {
        match table.get(key)? {
            toml::Value::String(s) => Some(s),
            other => {
                self.add(
                    format!("{prefix}{key}"),
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }
}

/// A target and where it was written, for messages about it.
struct Sourced {
    target: Target,
    field: String,
    /// `jobs/targets/x.txt line 3: ` for a target from a targets file.
    at: String,
}

/// The targets a table (the job, or one collection) lists.
struct TargetList {
    targets: Vec<Sourced>,
    /// `targets` or `targets_file` was present.
    given: bool,
    /// Some target or targets file was wrong (already reported).
    broken: bool,
}

fn load(path: &Path, today: NaiveDate, aged_out_warns: bool) -> Loaded {
    let mut ctx = Ctx {
        file: path,
        problems: Vec::new(),
        warnings: Vec::new(),
        aged_out_warns,
    };
    let done = |ctx: Ctx, name, job| Loaded {
        name,
        job,
        problems: ctx.problems,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            ctx.add("(file)", format!("cannot read: {}", io_reason(&e)));
            return done(ctx, None, None);
        }
    };
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            let e: toml::de::Error = e;
            let field = match e.span() {
                Some(span) => line_col(&text, span.start),
                None => "(file)".to_string(),
            };
            ctx.add(field, e.message().trim().to_string());
            return done(ctx, None, None);
        }
    };
    let base = path.parent().unwrap_or(Path::new(""));

    ctx.unknown_keys(&table, JOB_KEYS, "");

    let name = match table.get("name") {
        None => {
            ctx.add("name", "missing: every job needs a `name`");
            None
        }
        Some(_) => ctx
            .string(&table, "name", "")
            .and_then(|n| match check_name(n) {
                Ok(()) => Some(n.to_string()),
                Err(why) => {
                    ctx.add("name", why);
                    None
                }
            }),
    };

    let timezone = timezone(&mut ctx, &table, "");
    let job_targets = targets(&mut ctx, &table, base, "");

    let budget_monthly_usd = table
        .get("budget_monthly_usd")
        .and_then(|v| match budget(v) {
            Ok(d) => Some(d),
            Err(why) => {
                ctx.add("budget_monthly_usd", why);
                None
            }
        });

    let mut collections = Vec::new();
    match table.get("collect") {
        None => ctx.add(
            "collect",
            "missing: a job needs at least one [[collect]] section",
        ),
        Some(toml::Value::Array(items)) if items.is_empty() => ctx.add(
            "collect",
            "empty: a job needs at least one [[collect]] section",
        ),
        Some(toml::Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let prefix = format!("collect[{}]", i + 1);
                let toml::Value::Table(t) = item else {
                    ctx.add(
                        prefix,
                        format!(
                            "expected a table ([[collect]] section), found {}",
                            type_name(item)
                        ),
                    );
                    continue;
                };
                let c = collection(
                    &mut ctx,
                    t,
                    &prefix,
                    CollectionCtx {
                        base,
                        today,
                        job: name.as_deref().unwrap_or(""),
                        timezone,
                        job_targets: &job_targets,
                        taken: &collections,
                    },
                );
                collections.extend(c);
            }
        }
        Some(other) => ctx.add(
            "collect",
            format!(
                "expected [[collect]] sections (an array of tables), found {}",
                type_name(other)
            ),
        ),
    }

    let job = match (&name, ctx.problems.is_empty()) {
        (Some(name), true) => Some(Job {
            name: name.clone(),
            file: path.to_path_buf(),
            timezone,
            budget_monthly_usd,
            collections,
            warnings: ctx.warnings.clone(),
        }),
        _ => None,
    };
    done(ctx, name, job)
}

struct CollectionCtx<'a> {
    base: &'a Path,
    today: NaiveDate,
    job: &'a str,
    timezone: Option<Tz>,
    job_targets: &'a TargetList,
    taken: &'a [Collection],
}

fn collection(
    ctx: &mut Ctx,
    t: &toml::Table,
    prefix: &str,
    cc: CollectionCtx,
) -> Option<Collection> {
    let dot = format!("{prefix}.");
    let before = ctx.problems.len();
    ctx.unknown_keys(t, COLLECT_KEYS, &dot);

    let endpoint = match t.get("endpoint") {
        None => {
            ctx.add(
                format!("{dot}endpoint"),
                format!(
                    "missing: name one of {}",
                    Endpoint::ALL.map(|e| e.name()).join(", ")
                ),
            );
            None
        }
        Some(_) => ctx
            .string(t, "endpoint", &dot)
            .and_then(|s| match Endpoint::from_str(s) {
                Ok(e) => Some(e),
                Err(e) => {
                    ctx.add(format!("{dot}endpoint"), e.to_string());
                    None
                }
            }),
    };

    let tz = timezone(ctx, t, &dot).or(cc.timezone);
    let schedule = match t.get("schedule") {
        None => {
            ctx.add(
                format!("{dot}schedule"),
                "missing: write a cron expression like `0 6 * * *` or `@daily`",
            );
            None
        }
        Some(_) => ctx
            .string(t, "schedule", &dot)
            .and_then(|s| match Schedule::parse(s, tz) {
                Ok(s) => Some(s),
                Err(why) => {
                    ctx.add(format!("{dot}schedule"), why);
                    None
                }
            }),
    };

    // Name: as written, else the endpoint's, numbered when it repeats.
    let name = match t.get("name") {
        Some(_) => ctx.string(t, "name", &dot).and_then(|n| {
            if let Err(why) = check_name(n) {
                ctx.add(format!("{dot}name"), why);
                return None;
            }
            if cc.taken.iter().any(|c| c.name == n) {
                ctx.add(
                    format!("{dot}name"),
                    format!("collection `{n}` is already defined in this job"),
                );
                return None;
            }
            Some(n.to_string())
        }),
        None => endpoint.map(|e| {
            let base = e.name();
            (1..)
                .map(|k| {
                    if k == 1 {
                        base.to_string()
                    } else {
                        format!("{base}-{k}")
                    }
                })
                .find(|n| !cc.taken.iter().any(|c| &c.name == n))
                .expect("some name is free")
        }),
    };

    let params = match (t.get("params"), endpoint) {
        (None, _) => Some(Params::default()),
        (Some(toml::Value::Table(p)), Some(endpoint)) => {
            check_params(ctx, endpoint, p, &format!("{dot}params."), cc.today)
        }
        // The endpoint is wrong or missing (already reported): its parameters cannot be
        // checked.
        (Some(toml::Value::Table(_)), None) => None,
        (Some(other), _) => {
            ctx.add(
                format!("{dot}params"),
                format!(
                    "expected a table (like params = {{ include_subdomains = true }}), found {}",
                    type_name(other)
                ),
            );
            None
        }
    };

    let own = targets(ctx, t, cc.base, &dot);
    let list = if own.given { &own } else { cc.job_targets };
    if list.targets.is_empty() && !list.broken {
        let field = if own.given {
            format!("{dot}targets")
        } else {
            "targets".to_string()
        };
        ctx.add(
            field,
            format!(
                "{prefix} has no targets: list them in `targets` or `targets_file`, for the job or for this collection"
            ),
        );
    }
    if let Some(endpoint) = endpoint.filter(|e| e.domain_only()) {
        for s in list.targets.iter().filter(|s| s.target.is_page()) {
            ctx.add(
                s.field.clone(),
                format!(
                    "{}{endpoint} takes a bare domain, not the page `{}`",
                    s.at, s.target
                ),
            );
        }
    }

    let catch_up = match t.get("catch_up") {
        None => Some(CatchUp::default()),
        Some(_) => ctx.string(t, "catch_up", &dot).and_then(|s| match s {
            "latest" => Some(CatchUp::Latest),
            "skip" => Some(CatchUp::Skip),
            "all" => Some(CatchUp::All),
            other => {
                ctx.add(
                    format!("{dot}catch_up"),
                    format!("must be latest, skip or all; found `{other}`"),
                );
                None
            }
        }),
    };

    let catch_up_window = match t.get("catch_up_window") {
        None => Some(DEFAULT_CATCH_UP_WINDOW),
        Some(_) => ctx.string(t, "catch_up_window", &dot).and_then(|s| {
            match humantime::parse_duration(s) {
                Ok(d) if d > Duration::ZERO => Some(d),
                Ok(_) => {
                    ctx.add(format!("{dot}catch_up_window"), "must be longer than zero");
                    None
                }
                Err(e) => {
                    ctx.add(
                        format!("{dot}catch_up_window"),
                        format!("`{s}` is not a duration like `7d` or `36h`: {e}"),
                    );
                    None
                }
            }
        }),
    };

    let refetch = match t.get("refetch") {
        None => Some(Refetch::default()),
        Some(_) => ctx.string(t, "refetch", &dot).and_then(|s| match s {
            "missing" => Some(Refetch::Missing),
            "always" => Some(Refetch::Always),
            other => {
                ctx.add(
                    format!("{dot}refetch"),
                    format!(
                        "must be missing (buy only the periods not stored yet) or always (the whole range every fire); found `{other}`"
                    ),
                );
                None
            }
        }),
    };

    if ctx.problems.len() > before {
        return None;
    }
    Some(Collection {
        job: cc.job.to_string(),
        name: name?,
        endpoint: endpoint?,
        schedule: schedule?,
        params: params?,
        targets: list.targets.iter().map(|s| s.target.clone()).collect(),
        catch_up: catch_up?,
        catch_up_window: catch_up_window?,
        refetch: refetch?,
    })
}

/// Checks each parameter, then the API's date rules over the whole set.
fn check_params(
    ctx: &mut Ctx,
    endpoint: Endpoint,
    p: &toml::Table,
    prefix: &str,
    today: NaiveDate,
) -> Option<Params> {
    let mut out = BTreeMap::new();
    let mut ok = true;
    // A date parameter that could not be read would be checked as its default.
    let mut dates_readable = true;
    for (key, value) in p {
        match params::check_param(endpoint, key, value) {
            Ok(v) => {
                out.insert(key.clone(), v);
            }
            Err(why) => {
                ctx.add(format!("{prefix}{key}"), why);
                ok = false;
                let is_date = endpoint
                    .params()
                    .iter()
                    .any(|spec| spec.name == key && spec.kind == ParamKind::Date);
                dates_readable &= !is_date;
            }
        }
    }
    // The date rules are checked over the parameters that could be read, so an unknown
    // or mistyped parameter does not hide a date the API would refuse.
    let dates_ok = !dates_readable || check_dates(ctx, endpoint, &out, prefix, today);
    (ok && dates_ok).then_some(Params(out))
}

/// How close to leaving the API's one-year window an absolute `date_from` gets a warning.
pub const AGE_OUT_WARNING_DAYS: i64 = 30;

/// One date parameter of a request: the day it names on `today` and how it was written.
#[derive(Clone, Copy, Debug)]
struct DateParam {
    name: &'static str,
    date: NaiveDate,
    spec: DateSpec,
    /// Given (in the job file, or in the request), not the endpoint's default.
    set: bool,
}

impl DateParam {
    /// `2026-03-01`, or `2026-03-01 (`-30d`)` for a relative date.
    fn written(&self) -> String {
        if self.spec.is_relative() {
            format!("{} (`{}`)", format_date(self.date), self.spec)
        } else {
            format_date(self.date)
        }
    }
}

/// A broken date rule of the API.
#[derive(Clone, Copy, Debug)]
enum DateBreak {
    /// A given date after today.
    Future(DateParam),
    /// `date_from` before the endpoint's first day of data.
    BeforeData {
        from: DateParam,
        earliest: NaiveDate,
    },
    /// `date_from` older than the one year the endpoint looks back.
    OutsideYear {
        from: DateParam,
        earliest: NaiveDate,
    },
    /// `date_from` after `date_to`.
    FromAfterTo { from: DateParam, to: DateParam },
}

/// The API's date rules, checked on `today`: no given date in the future (when one is,
/// the other rules are not checked), `date_from` not before the endpoint's earliest
/// date, `date_from` not after `date_to`. `date` gives each date parameter's value, if
/// any. Job loading and [`check_request_dates`] both use this.
fn date_breaks(
    endpoint: Endpoint,
    date: impl Fn(&'static str) -> Option<DateParam>,
    today: NaiveDate,
) -> Vec<DateBreak> {
    let future: Vec<DateBreak> = endpoint
        .params()
        .iter()
        .filter(|p| p.kind == ParamKind::Date)
        .filter_map(|p| date(p.name))
        .filter(|d| d.set && d.date > today)
        .map(DateBreak::Future)
        .collect();
    if !future.is_empty() {
        return future;
    }
    let mut out = Vec::new();
    let from = date("date_from");
    if let Some(from) = from {
        match endpoint.earliest_date_from() {
            Some(EarliestDate::Fixed(earliest)) if from.date < earliest => {
                out.push(DateBreak::BeforeData { from, earliest });
            }
            Some(EarliestDate::OneYearAgo) => {
                let earliest = one_year_earliest(today);
                if from.date < earliest {
                    out.push(DateBreak::OutsideYear { from, earliest });
                }
            }
            _ => {}
        }
    }
    if let (Some(from), Some(to)) = (from, date("date_to"))
        && from.date > to.date
    {
        out.push(DateBreak::FromAfterTo { from, to });
    }
    out
}

/// The earliest `date_from` an endpoint with a one-year window accepts on `today`.
fn one_year_earliest(today: NaiveDate) -> NaiveDate {
    today
        .checked_sub_months(Months::new(12))
        .unwrap_or(NaiveDate::MIN)
}

/// The last day on which the API still accepts `from` as a one-year window's
/// `date_from`: a year later, or a day more where the calendar clamps (from 2023-02-28
/// that is 2024-02-29).
pub(super) fn last_day_in_one_year_window(from: NaiveDate) -> NaiveDate {
    let mut day = from
        .checked_add_months(Months::new(12))
        .unwrap_or(NaiveDate::MAX);
    while let Some(next) = day.succ_opt()
        && one_year_earliest(next) <= from
    {
        day = next;
    }
    day
}

/// The value each date parameter of `endpoint` gives on `today`: as set, else the
/// endpoint's default.
fn date_param(
    endpoint: Endpoint,
    set: &BTreeMap<String, ParamValue>,
    name: &'static str,
    today: NaiveDate,
) -> Option<DateParam> {
    let param = endpoint.param(name).filter(|s| s.kind == ParamKind::Date)?;
    let (spec, given) = match set.get(name) {
        Some(ParamValue::Date(d)) => (*d, true),
        Some(_) => return None,
        None => match param.default.as_ref().map(params::default_value) {
            Some(ParamValue::Date(d)) => (d, false),
            _ => return None,
        },
    };
    Some(DateParam {
        name,
        date: spec.resolve(today),
        spec,
        set: given,
    })
}

/// The API's date rules over a collection's parameters (see [`date_breaks`]), each
/// broken one a problem; and a warning for an absolute `date_from` that leaves the
/// endpoint's one-year window within [`AGE_OUT_WARNING_DAYS`]. False when a rule was
/// broken.
fn check_dates(
    ctx: &mut Ctx,
    endpoint: Endpoint,
    set: &BTreeMap<String, ParamValue>,
    prefix: &str,
    today: NaiveDate,
) -> bool {
    let date = |name: &'static str| date_param(endpoint, set, name, today);
    let mut breaks = date_breaks(endpoint, date, today);
    if ctx.aged_out_warns {
        breaks.retain(|b| match *b {
            DateBreak::OutsideYear { from, earliest } if from.set && !from.spec.is_relative() => {
                ctx.warn(
                    format!("{prefix}date_from"),
                    format!(
                        "{} is older than the API's one-year window (not before {}): this \
                         collection's fires are not sent until it is fixed; use a relative date \
                         such as -30d",
                        format_date(from.date),
                        format_date(earliest)
                    ),
                );
                false
            }
            _ => true,
        });
    }
    for b in &breaks {
        let (field, why) = match *b {
            DateBreak::Future(d) => (
                d.name,
                format!(
                    "{} is in the future (today is {})",
                    format_date(d.date),
                    format_date(today)
                ),
            ),
            DateBreak::BeforeData { from, earliest } => (
                "date_from",
                format!(
                    "{endpoint} data starts on {}; {} is earlier",
                    format_date(earliest),
                    from.written()
                ),
            ),
            DateBreak::OutsideYear { from, earliest } => (
                "date_from",
                format!(
                    "must be within the last year (not before {}), found {}",
                    format_date(earliest),
                    from.written()
                ),
            ),
            DateBreak::FromAfterTo { from, to } if to.set => (
                "date_to",
                format!(
                    "date_to {} is before date_from {}",
                    to.written(),
                    from.written()
                ),
            ),
            DateBreak::FromAfterTo { from, to } => (
                "date_from",
                format!(
                    "date_from {} is after date_to {}",
                    from.written(),
                    to.written()
                ),
            ),
        };
        ctx.add(format!("{prefix}{field}"), why);
    }
    if !breaks.is_empty() {
        return false;
    }

    if endpoint.earliest_date_from() == Some(EarliestDate::OneYearAgo)
        && let Some(from) = date("date_from")
        && from.set
        && !from.spec.is_relative()
    {
        let last = last_day_in_one_year_window(from.date);
        let days = (last - today).num_days();
        if days <= AGE_OUT_WARNING_DAYS {
            let when = match days {
                0 => "today".to_string(),
                1 => "in 1 day".to_string(),
                n => format!("in {n} days"),
            };
            ctx.warn(
                format!("{prefix}date_from"),
                format!(
                    "{} leaves the API's one-year window on {} ({when}); after that every \
                     call of this collection would be refused; use a relative date such as -30d",
                    format_date(from.date),
                    format_date(last)
                ),
            );
        }
    }
    true
}

/// Checks a collection's request parameters, as [`Collection::request_params`] resolves
/// them (`yyyy-mm-dd` strings), against the API's date rules on `today`: for a planner
/// to re-check a collection that loaded on an earlier day, when an absolute `date_from`
/// may have aged out of a one-year window. A date parameter the endpoint takes but
/// `params` lacks counts as the endpoint's default. Returns the first broken rule.
///
/// [`Collection::request_params`]: super::Collection::request_params
pub fn check_request_dates(
    endpoint: Endpoint,
    params: &serde_json::Map<String, serde_json::Value>,
    today: NaiveDate,
) -> Result<(), String> {
    // The request's dates, as the job-file form the rules read.
    let mut set = BTreeMap::new();
    for p in endpoint
        .params()
        .iter()
        .filter(|p| p.kind == ParamKind::Date)
    {
        match params.get(p.name) {
            None => {}
            Some(serde_json::Value::String(s)) => {
                let d = DateSpec::parse(s)
                    .map_err(|_| format!("{} `{s}` is not a yyyy-mm-dd date", p.name))?;
                set.insert(p.name.to_string(), ParamValue::Date(d));
            }
            Some(other) => {
                return Err(format!(
                    "{} must be a yyyy-mm-dd string, found {other}",
                    p.name
                ));
            }
        }
    }
    let date = |name: &'static str| date_param(endpoint, &set, name, today);
    match date_breaks(endpoint, date, today).first() {
        None => Ok(()),
        Some(DateBreak::Future(d)) => Err(format!(
            "{} {} is in the future (today is {})",
            d.name,
            d.written(),
            format_date(today)
        )),
        Some(DateBreak::BeforeData { from, earliest }) => Err(format!(
            "date_from {} is before {earliest}, where {endpoint} data starts",
            from.written(),
            earliest = format_date(*earliest)
        )),
        Some(DateBreak::OutsideYear { from, .. }) => Err(format!(
            "date_from {} is now older than the API's one-year window; use a relative date \
             such as -30d",
            from.written()
        )),
        Some(DateBreak::FromAfterTo { from, to }) => Err(format!(
            "date_from {} is after date_to {}",
            from.written(),
            to.written()
        )),
    }
}

fn timezone(ctx: &mut Ctx, t: &toml::Table, prefix: &str) -> Option<Tz> {
    t.get("timezone")?;
    let s = ctx.string(t, "timezone", prefix)?;
    match s.parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            let hint = crate::words::suggest(s, chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()))
                .map(|z| format!(" (did you mean `{z}`?)"))
                .unwrap_or_default();
            ctx.add(
                format!("{prefix}timezone"),
                format!(
                    "unknown time zone `{s}`{hint}; use an IANA name like `Europe/Berlin` or `UTC`"
                ),
            );
            None
        }
    }
}

/// The inline `targets` and the `targets_file` of a table, normalized and deduplicated.
fn targets(ctx: &mut Ctx, t: &toml::Table, base: &Path, prefix: &str) -> TargetList {
    let mut list = TargetList {
        targets: Vec::new(),
        given: false,
        broken: false,
    };
    let mut seen = HashSet::new();
    let mut push = |list: &mut TargetList, s: Sourced| {
        if seen.insert(s.target.clone()) {
            list.targets.push(s);
        }
    };
    if let Some(v) = t.get("targets") {
        list.given = true;
        match v {
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    // 1-based, like `collect[1]`: `targets[1]` is the first target.
                    let field = format!("{prefix}targets[{}]", i + 1);
                    match item {
                        toml::Value::String(s) => match Target::parse(s) {
                            Ok(target) => push(
                                &mut list,
                                Sourced {
                                    target,
                                    field,
                                    at: String::new(),
                                },
                            ),
                            Err(e) => {
                                ctx.add(field, e.to_string());
                                list.broken = true;
                            }
                        },
                        other => {
                            ctx.add(
                                field,
                                format!("expected a string, found {}", type_name(other)),
                            );
                            list.broken = true;
                        }
                    }
                }
            }
            other => {
                ctx.add(
                    format!("{prefix}targets"),
                    format!(
                        "expected a list of domains or page URLs, found {}",
                        type_name(other)
                    ),
                );
                list.broken = true;
            }
        }
    }
    if t.get("targets_file").is_some() {
        list.given = true;
        let field = format!("{prefix}targets_file");
        let Some(rel) = ctx.string(t, "targets_file", prefix) else {
            list.broken = true;
            return list;
        };
        let path = base.join(rel);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    let line = strip_comment(line).trim();
                    if line.is_empty() {
                        continue;
                    }
                    let at = format!("{} line {}: ", path.display(), n + 1);
                    match Target::parse(line) {
                        Ok(target) => push(
                            &mut list,
                            Sourced {
                                target,
                                field: field.clone(),
                                at,
                            },
                        ),
                        Err(e) => {
                            ctx.add(field.clone(), format!("{at}{e}"));
                            list.broken = true;
                        }
                    }
                }
            }
            Err(e) => {
                ctx.add(
                    field,
                    format!("cannot read {}: {}", path.display(), io_reason(&e)),
                );
                list.broken = true;
            }
        }
    }
    list
}

/// A line of a targets file without its `#` comment (a `#` at the start or after
/// whitespace; one inside a URL is kept).
fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(format!(
            "`{name}` may only use letters, digits, `_` and `-`"
        ))
    }
}

fn budget(v: &toml::Value) -> Result<Decimal, String> {
    let d = match v {
        toml::Value::Integer(i) => Decimal::from(*i),
        toml::Value::Float(f) if f.is_finite() => Decimal::from_str(&f.to_string())
            .or_else(|_| Decimal::from_scientific(&format!("{f:e}")))
            .map_err(|_| format!("{f} is not an amount in US dollars"))?,
        toml::Value::Float(f) => return Err(format!("{f} is not an amount in US dollars")),
        other => {
            return Err(format!(
                "expected a number of US dollars, found {}",
                type_name(other)
            ));
        }
    };
    if d < Decimal::ZERO {
        return Err(format!("must be at least 0, found {d}"));
    }
    Ok(d)
}

/// `line 3, column 7` for a byte offset.
fn line_col(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, rest)| rest)
        .chars()
        .count()
        + 1;
    format!("line {line}, column {column}")
}

/// An I/O error's reason without the `(os error 2)` suffix.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
