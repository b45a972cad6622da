//! The `[[collect]]` sections of a job file: each read one part at a time (endpoint,
//! time zone and schedule, name, parameters and their dates, targets, catch-up,
//! refetch), every problem reported in that order, into a [`Collection`].

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::dates::check_dates;
use super::params::{self, DateSpec, ParamValue, Params, type_name};
use super::report::{Ctx, check_name, timezone};
use super::schedule::Schedule;
use super::targets::{TargetList, targets};
use super::{
    CatchUp, Collection, DEFAULT_CATCH_UP_WINDOW, DEFAULT_REACH_BACK, DEFAULT_REASK_EMPTY,
    MAX_REACH, MAX_SETTLE, Refetch,
};
use crate::api::endpoint::{Endpoint, LIST_MAX_LIMIT, LIST_MAX_OFFSET, ParamKind};
use crate::api::target::Target;
use crate::words::shown;

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
    "settle",
    "reask_empty",
    "reach_back",
    "max_rows",
];

/// What the collections of one job share: the folder of its file (for a
/// `targets_file`), the day dates are checked on, and the job's name, time zone and
/// targets.
pub(super) struct CollectionCtx<'a> {
    pub(super) base: &'a Path,
    pub(super) today: NaiveDate,
    pub(super) job: &'a str,
    pub(super) timezone: Option<Tz>,
    pub(super) job_targets: &'a TargetList,
}

/// The job's `collect` array, each section read by [`collection`]; a section with a
/// problem is left out.
pub(super) fn collections(
    ctx: &mut Ctx,
    table: &toml::Table,
    cc: &CollectionCtx,
) -> Vec<Collection> {
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
                let c = collection(ctx, t, &prefix, cc, &collections);
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
    collections
}

/// One `[[collect]]` section (`prefix` is `collect[2]`), or `None` when it has a
/// problem. `taken` holds the job's collections read before it.
fn collection(
    ctx: &mut Ctx,
    t: &toml::Table,
    prefix: &str,
    cc: &CollectionCtx,
    taken: &[Collection],
) -> Option<Collection> {
    let dot = format!("{prefix}.");
    let before = ctx.problems.len();
    ctx.unknown_keys(t, COLLECT_KEYS, &dot);

    let endpoint = read_endpoint(ctx, t, &dot);
    let tz = timezone(ctx, t, &dot).or(cc.timezone);
    let schedule = read_schedule(ctx, t, &dot, tz);
    let name = read_name(ctx, t, &dot, endpoint, taken);
    let params = read_params(ctx, t, &dot, endpoint, cc.today);
    let targets = read_targets(ctx, t, prefix, &dot, endpoint, cc);
    let catch_up = read_catch_up(ctx, t, &dot);
    let catch_up_window = read_catch_up_window(ctx, t, &dot);
    let refetch = read_refetch(ctx, t, &dot);
    let periods = read_periods(ctx, t, &dot, endpoint);
    let max_rows = read_max_rows(ctx, t, &dot, endpoint);
    if let Some(e) = endpoint.filter(|e| *e == Endpoint::DomainIntersection)
        && targets.len() > e.max_targets()
    {
        ctx.add(
            format!("{dot}targets"),
            format!(
                "{e} intersects its targets in one call, at most {}; found {}",
                e.max_targets(),
                targets.len()
            ),
        );
    }
    if ctx.problems.len() > before {
        return None;
    }
    if let (Some(e), Some(schedule), Some(params), Some(reach_back)) =
        (endpoint, &schedule, &params, periods.reach_back)
    {
        warn_window_gaps(ctx, &dot, e, schedule, params, reach_back, cc.today);
    }
    Some(Collection {
        job: cc.job.to_string(),
        name: name?,
        endpoint: endpoint?,
        schedule: schedule?,
        params: params?,
        targets,
        catch_up: catch_up?,
        catch_up_window: catch_up_window?,
        refetch: refetch?,
        settle: periods.settle?,
        reask_empty: periods.reask_empty?,
        reach_back: periods.reach_back?,
        max_rows: max_rows?,
    })
}

/// `max_rows`: a list endpoint's bound on the rows one fire buys per target (it pages
/// 1,000 rows a call); required there, refused elsewhere. Past offset 20,000 only
/// `backlinks` pages on (by `search_after_token`), so the others stop at 21,000.
fn read_max_rows(
    ctx: &mut Ctx,
    t: &toml::Table,
    dot: &str,
    endpoint: Option<Endpoint>,
) -> Option<Option<u64>> {
    let field = format!("{dot}max_rows");
    let Some(endpoint) = endpoint else {
        return Some(None);
    };
    let value = t.get("max_rows");
    if !endpoint.is_list() {
        if value.is_some() {
            ctx.add(
                field,
                format!(
                    "{endpoint} is not a list endpoint: only list endpoints page, and take max_rows"
                ),
            );
            return None;
        }
        return Some(None);
    }
    let most = if endpoint == Endpoint::Backlinks {
        i64::MAX
    } else {
        LIST_MAX_OFFSET + LIST_MAX_LIMIT
    };
    match value {
        None => {
            ctx.add(
                field,
                format!(
                    "missing: a list endpoint needs max_rows, the most rows one fire buys per target ({LIST_MAX_LIMIT} rows a call)"
                ),
            );
            None
        }
        Some(toml::Value::Integer(n)) if *n >= 1 && *n <= most => Some(Some(*n as u64)),
        Some(toml::Value::Integer(n)) if *n >= 1 => {
            ctx.add(
                field,
                format!(
                    "{endpoint} pages by offset, at most {LIST_MAX_OFFSET}: it can return at most {most} rows, found {n} (only backlinks pages on, by search_after_token)"
                ),
            );
            None
        }
        Some(toml::Value::Integer(n)) => {
            ctx.add(field, format!("must be at least 1, found {n}"));
            None
        }
        Some(other) => {
            ctx.add(
                field,
                format!("expected an integer, found {}", type_name(other)),
            );
            None
        }
    }
}

/// Warns when a history or timeseries collection's window (its relative `date_from`)
/// and its `reach_back` together are shorter than the longest time between two of its
/// fires: the days between could never be asked.
#[allow(clippy::too_many_arguments)]
fn warn_window_gaps(
    ctx: &mut Ctx,
    dot: &str,
    endpoint: Endpoint,
    schedule: &Schedule,
    params: &Params,
    reach_back: Duration,
    today: NaiveDate,
) {
    if !endpoint.has_periods() {
        return;
    }
    let Some(ParamValue::Date(spec @ DateSpec::Relative { .. })) = params.get("date_from") else {
        return;
    };
    let window = (today - spec.resolve(today)).num_days().max(0) as u64;
    let start = today.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let fires = schedule.fires_between(start, start + chrono::Duration::days(400), 20_000);
    let Some(gap) = fires
        .windows(2)
        .map(|w| (w[1] - w[0]).num_days().max(0) as u64)
        .max()
    else {
        return;
    };
    let reach = reach_back.as_secs() / 86_400;
    if window + reach < gap {
        ctx.warn(
            format!("{dot}params.date_from"),
            format!(
                "its window ({window} days) and reach_back ({reach} days) cover less than the {gap} days between two of its fires: the days between are never asked; widen date_from or reach_back"
            ),
        );
    }
}

/// A history or timeseries collection's `settle`, `reask_empty` and `reach_back`.
struct PeriodKeys {
    settle: Option<Duration>,
    reask_empty: Option<Duration>,
    reach_back: Option<Duration>,
}

/// `settle` (at most [`MAX_SETTLE`], the endpoint's default when not given),
/// `reask_empty` and `reach_back` (at most [`MAX_REACH`]): durations, only for the
/// endpoints whose answers have periods.
fn read_periods(
    ctx: &mut Ctx,
    t: &toml::Table,
    dot: &str,
    endpoint: Option<Endpoint>,
) -> PeriodKeys {
    let ranged = endpoint.is_some_and(Endpoint::has_periods);
    let mut read = |key: &str, default: Duration, max: Duration, zero_ok: bool| {
        if t.get(key).is_some() && endpoint.is_some() && !ranged {
            ctx.add(
                format!("{dot}{key}"),
                "only history and the timeseries endpoints have periods to settle, ask again or reach back for",
            );
            return None;
        }
        read_duration(ctx, t, dot, key, default, max, zero_ok)
    };
    let settle = read(
        "settle",
        endpoint.map_or(Duration::ZERO, Endpoint::default_settle),
        MAX_SETTLE,
        true,
    );
    let reask_empty = read("reask_empty", DEFAULT_REASK_EMPTY, MAX_REACH, true);
    let reach_back = read("reach_back", DEFAULT_REACH_BACK, MAX_REACH, true);
    PeriodKeys {
        settle,
        reask_empty,
        reach_back,
    }
}

/// A duration `key` like `7d` or `36h`, `default` when not given, at most `max`.
fn read_duration(
    ctx: &mut Ctx,
    t: &toml::Table,
    dot: &str,
    key: &str,
    default: Duration,
    max: Duration,
    zero_ok: bool,
) -> Option<Duration> {
    if t.get(key).is_none() {
        return Some(default);
    }
    let s = ctx.string(t, key, dot)?;
    match humantime::parse_duration(s) {
        Ok(d) if d == Duration::ZERO && !zero_ok => {
            ctx.add(format!("{dot}{key}"), "must be longer than zero");
            None
        }
        Ok(d) if d > max => {
            ctx.add(
                format!("{dot}{key}"),
                format!(
                    "`{}` is longer than the most it may be, {} days",
                    shown(s),
                    max.as_secs() / 86_400
                ),
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            ctx.add(
                format!("{dot}{key}"),
                format!("`{}` is not a duration like `7d` or `36h`: {e}", shown(s)),
            );
            None
        }
    }
}

/// `endpoint`: required, one of the endpoint table's names.
fn read_endpoint(ctx: &mut Ctx, t: &toml::Table, dot: &str) -> Option<Endpoint> {
    match t.get("endpoint") {
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
            .string(t, "endpoint", dot)
            .and_then(|s| match Endpoint::from_str(s) {
                Ok(e) => Some(e),
                Err(e) => {
                    ctx.add(format!("{dot}endpoint"), e.to_string());
                    None
                }
            }),
    }
}

/// `schedule`: required, a cron expression evaluated in `tz` (the collection's time
/// zone, else the job's).
fn read_schedule(ctx: &mut Ctx, t: &toml::Table, dot: &str, tz: Option<Tz>) -> Option<Schedule> {
    match t.get("schedule") {
        None => {
            ctx.add(
                format!("{dot}schedule"),
                "missing: write a cron expression like `0 6 * * *` or `@daily`",
            );
            None
        }
        Some(_) => ctx
            .string(t, "schedule", dot)
            .and_then(|s| match Schedule::parse(s, tz) {
                Ok(s) => Some(s),
                Err(why) => {
                    ctx.add(format!("{dot}schedule"), why);
                    None
                }
            }),
    }
}

/// `name`: as written, else the endpoint's, numbered when it repeats; unique among
/// the collections `taken` before it.
fn read_name(
    ctx: &mut Ctx,
    t: &toml::Table,
    dot: &str,
    endpoint: Option<Endpoint>,
    taken: &[Collection],
) -> Option<String> {
    match t.get("name") {
        Some(_) => ctx.string(t, "name", dot).and_then(|n| {
            if let Err(why) = check_name(n) {
                ctx.add(format!("{dot}name"), why);
                return None;
            }
            if taken.iter().any(|c| c.name == n) {
                ctx.add(
                    format!("{dot}name"),
                    format!("collection `{}` is already defined in this job", shown(n)),
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
                .find(|n| !taken.iter().any(|c| &c.name == n))
                .expect("some name is free")
        }),
    }
}

/// `params`: a table of the endpoint's parameters (see [`check_params`]); none given
/// is no parameters.
fn read_params(
    ctx: &mut Ctx,
    t: &toml::Table,
    dot: &str,
    endpoint: Option<Endpoint>,
    today: NaiveDate,
) -> Option<Params> {
    match (t.get("params"), endpoint) {
        (None, _) => Some(Params::default()),
        (Some(toml::Value::Table(p)), Some(endpoint)) => {
            check_params(ctx, endpoint, p, &format!("{dot}params."), today)
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
    }
}

/// The collection's own `targets`/`targets_file`, else the job's: a problem when there
/// are none, and one for each page given to an endpoint that takes a bare domain.
fn read_targets(
    ctx: &mut Ctx,
    t: &toml::Table,
    prefix: &str,
    dot: &str,
    endpoint: Option<Endpoint>,
    cc: &CollectionCtx,
) -> Vec<Target> {
    let own = targets(ctx, t, cc.base, dot);
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
    if let Some(endpoint) = endpoint.filter(|e| !e.takes_a_page()) {
        for s in list.targets.iter().filter(|s| s.target.is_page()) {
            ctx.add(
                s.field.clone(),
                format!(
                    "{}{endpoint} takes a bare domain, not the page `{}`: {}",
                    s.at,
                    shown(s.target.as_str()),
                    use_the_domain(&s.target, list)
                ),
            );
        }
    }
    list.targets.iter().map(|s| s.target.clone()).collect()
}

/// What to write instead of the page `page` for an endpoint that takes a bare
/// domain: its domain, or, when `list` has it already, nothing.
fn use_the_domain(page: &Target, list: &TargetList) -> String {
    let domain = page.as_domain();
    let shown = shown(domain.as_str());
    if list.targets.iter().any(|s| s.target == domain) {
        format!("use \"{shown}\", which is listed already (drop the page)")
    } else {
        format!("use \"{shown}\"")
    }
}

/// `catch_up`: latest (the default), skip or all.
fn read_catch_up(ctx: &mut Ctx, t: &toml::Table, dot: &str) -> Option<CatchUp> {
    match t.get("catch_up") {
        None => Some(CatchUp::default()),
        Some(_) => ctx.string(t, "catch_up", dot).and_then(|s| match s {
            "latest" => Some(CatchUp::Latest),
            "skip" => Some(CatchUp::Skip),
            "all" => Some(CatchUp::All),
            other => {
                ctx.add(
                    format!("{dot}catch_up"),
                    format!("must be latest, skip or all; found `{}`", shown(other)),
                );
                None
            }
        }),
    }
}

/// `catch_up_window`: a duration longer than zero, [`DEFAULT_CATCH_UP_WINDOW`] when
/// not given.
fn read_catch_up_window(ctx: &mut Ctx, t: &toml::Table, dot: &str) -> Option<Duration> {
    match t.get("catch_up_window") {
        None => Some(DEFAULT_CATCH_UP_WINDOW),
        Some(_) => {
            ctx.string(t, "catch_up_window", dot)
                .and_then(|s| match humantime::parse_duration(s) {
                    Ok(d) if d > Duration::ZERO => Some(d),
                    Ok(_) => {
                        ctx.add(format!("{dot}catch_up_window"), "must be longer than zero");
                        None
                    }
                    Err(e) => {
                        ctx.add(
                            format!("{dot}catch_up_window"),
                            format!("`{}` is not a duration like `7d` or `36h`: {e}", shown(s)),
                        );
                        None
                    }
                })
        }
    }
}

/// `refetch`: missing (the default) or always.
fn read_refetch(ctx: &mut Ctx, t: &toml::Table, dot: &str) -> Option<Refetch> {
    match t.get("refetch") {
        None => Some(Refetch::default()),
        Some(_) => ctx.string(t, "refetch", dot).and_then(|s| match s {
            "missing" => Some(Refetch::Missing),
            "always" => Some(Refetch::Always),
            other => {
                ctx.add(
                    format!("{dot}refetch"),
                    format!(
                        "must be missing (buy only the periods not stored yet) or always (the whole range every fire); found `{}`",
                        shown(other)
                    ),
                );
                None
            }
        }),
    }
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
