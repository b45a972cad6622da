//! Turns collections into the API calls one cycle makes, with their estimated cost.
//! Pure: `plan` prints these, `run` executes them.
//!
//! Single-target endpoints make one call per target. Bulk endpoints pack the targets
//! into as few calls as the API allows: 1000 targets a call, and for
//! `bulk_pages_summary` at most 100 distinct domains a call. A history or timeseries
//! call is narrowed to the periods not stored (the rules are `warehouse::coverage`'s).
//! `bill` is the month ahead of these calls: what the schedules will cost.

pub mod bill;
pub mod listing;
pub mod paging;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::Value;

use crate::api::Endpoint;
use crate::api::Target;
use crate::api::endpoint::{BULK_MAX_TARGETS, PAGES_SUMMARY_MAX_DOMAINS};
use crate::api::endpoint::{EarliestDate, GroupRange, periods};
use crate::api::prices::Prices;
use crate::jobs::{Collection, Job};
use crate::money::Usd;
use crate::warehouse::coverage::{Stored, grain, is_ranged, options, task_date};

/// One planned API call.
#[derive(Clone, Debug, PartialEq)]
pub struct CallSpec {
    pub job: String,
    pub collection: String,
    pub endpoint: Endpoint,
    pub targets: Vec<Target>,
    /// The task object POSTed (inside a one-element array).
    pub task: Value,
    /// Rows the answer is expected to hold, for the estimate.
    pub estimated_rows: i64,
    /// For history and timeseries calls: the collection's `settle` (how long after a
    /// period's figures are complete an answer stores it for good); `None`: the
    /// endpoint's default ([`Endpoint::default_settle`]).
    pub settle: Option<Duration>,
    /// A list collection's first page: its `max_rows`, the most rows the listing buys
    /// ([`paging`]); its later pages are enqueued as each page is answered. `None`
    /// for every other call.
    pub max_rows: Option<u64>,
    /// A listing's first page: the listing's size as what is stored measures it
    /// ([`listing`]), not bounded by `max_rows`; `None` when nothing stored measures it
    /// (it is planned at `max_rows`) and for every other call.
    pub listing_size: Option<listing::ListingSize>,
}

impl CallSpec {
    /// How long after a period's figures are complete this call's answer stores it for
    /// good.
    pub fn settle(&self) -> Duration {
        self.settle
            .unwrap_or_else(|| self.endpoint.default_settle())
    }

    /// The estimated cost of the call under `prices`.
    pub fn estimated_cost(&self, prices: &Prices) -> Usd {
        prices.estimate(self.endpoint, self.estimated_rows)
    }

    /// What planning this call commits to: its own estimate, or for a listing's first
    /// page the whole listing: its stored size within `max_rows` (`max_rows` when no size
    /// is stored), in `ceil(rows / limit)` calls, at least one.
    pub fn planned_cost(&self, prices: &Prices) -> Usd {
        match self.listing_bound() {
            Some((calls, rows)) => match prices.flat_per_call {
                Some(flat) => Usd(flat.decimal() * rust_decimal::Decimal::from(calls)),
                None => prices.rate(self.endpoint).price_calls(calls, rows),
            },
            None => self.estimated_cost(prices),
        }
    }

    /// The rows planning this call commits to at most: a listing's `max_rows`, else
    /// the call's estimate.
    pub fn planned_rows(&self) -> i64 {
        self.listing_bound()
            .map_or(self.estimated_rows, |(_, rows)| rows)
    }

    /// The calls planning this call commits to at most: a listing's pages, else 1.
    pub fn planned_calls(&self) -> i64 {
        self.listing_bound().map_or(1, |(calls, _)| calls)
    }

    /// A listing's bound: (calls, rows): its stored size within `max_rows`.
    fn listing_bound(&self) -> Option<(i64, i64)> {
        let max_rows = self
            .max_rows?
            .min(self.listing_size.map_or(u64::MAX, |s| s.rows));
        let limit = self.task.get("limit").and_then(Value::as_u64).unwrap_or(1);
        let calls = paging::max_pages(max_rows, limit);
        Some((
            i64::try_from(calls).unwrap_or(i64::MAX),
            i64::try_from(max_rows).unwrap_or(i64::MAX),
        ))
    }

    pub fn target_strings(&self) -> Vec<String> {
        self.targets
            .iter()
            .map(|t| t.as_str().to_string())
            .collect()
    }
}

/// The calls one cycle of `collection` makes on `today` (UTC).
pub fn plan_collection(collection: &Collection, today: NaiveDate) -> Vec<CallSpec> {
    let endpoint = collection.endpoint;
    if endpoint.is_list() {
        return plan_listing(collection, today);
    }
    let mut params = collection.request_params(today);
    align_date_from(endpoint, &mut params);
    let call = |targets: Vec<Target>| {
        let mut task = serde_json::Map::new();
        if endpoint.is_bulk() {
            task.insert(
                "targets".into(),
                targets.iter().map(|t| Value::from(t.as_str())).collect(),
            );
        } else {
            task.insert("target".into(), Value::from(targets[0].as_str()));
        }
        for (k, v) in &params {
            task.insert(k.clone(), v.clone());
        }
        let estimated_rows = estimate_rows(endpoint, &params, targets.len(), today);
        CallSpec {
            job: collection.job.clone(),
            collection: collection.name.clone(),
            endpoint,
            targets,
            task: Value::Object(task),
            estimated_rows,
            settle: is_ranged(endpoint).then_some(collection.settle),
            max_rows: None,
            listing_size: None,
        }
    };
    if !endpoint.is_bulk() {
        return collection
            .targets
            .iter()
            .map(|t| call(vec![t.clone()]))
            .collect();
    }
    let chunks = if endpoint == Endpoint::BulkPagesSummary {
        pack_by_domain(
            &collection.targets,
            BULK_MAX_TARGETS,
            PAGES_SUMMARY_MAX_DOMAINS,
        )
    } else {
        collection
            .targets
            .chunks(BULK_MAX_TARGETS)
            .map(<[Target]>::to_vec)
            .collect()
    };
    chunks.into_iter().map(call).collect()
}

/// A list collection's first pages: one listing per target (an intersection's
/// targets together, as its numbered map), each its first page of
/// [`paging::first_limit`] rows from the job's `offset`; the next pages are planned as
/// the pages are answered ([`paging::step`]).
fn plan_listing(collection: &Collection, today: NaiveDate) -> Vec<CallSpec> {
    let endpoint = collection.endpoint;
    let max_rows = collection.max_rows.unwrap_or(1000);
    let mut params = collection.request_params(today);
    let job_limit = collection
        .params
        .get("limit")
        .and_then(|v| v.to_json(today).as_u64());
    let limit = paging::first_limit(job_limit, max_rows);
    params.insert("limit".into(), Value::from(limit));
    let call = |targets: Vec<Target>, target: Value| {
        let mut task = serde_json::Map::new();
        let key = if endpoint == Endpoint::DomainIntersection {
            "targets"
        } else {
            "target"
        };
        task.insert(key.into(), target);
        for (k, v) in &params {
            task.insert(k.clone(), v.clone());
        }
        CallSpec {
            job: collection.job.clone(),
            collection: collection.name.clone(),
            endpoint,
            targets,
            task: Value::Object(task),
            estimated_rows: limit as i64,
            settle: None,
            max_rows: Some(max_rows),
            listing_size: None,
        }
    };
    if endpoint == Endpoint::DomainIntersection {
        let numbered: serde_json::Map<String, Value> = collection
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| ((i + 1).to_string(), Value::from(t.as_str())))
            .collect();
        return vec![call(collection.targets.clone(), Value::Object(numbered))];
    }
    collection
        .targets
        .iter()
        .map(|t| call(vec![t.clone()], Value::from(t.as_str())))
        .collect()
}

/// The first day of `from`'s period for history (months) and the week, month and year
/// timeseries, so that a request's first period is whole, unless that day is below the
/// API's floor for `date_from` (the timeseries take 2019-01-30 at the earliest: a
/// request from then on keeps its day, and the API answers January 2019 whole anyway,
/// its documents say). Other endpoints and day grains keep `from`.
pub fn whole_period_start(endpoint: Endpoint, task: &Value, from: NaiveDate) -> NaiveDate {
    if !is_ranged(endpoint) {
        return from;
    }
    let Some(&(start, _)) = periods(from, from, grain(endpoint, task)).first() else {
        return from;
    };
    match endpoint.earliest_date_from() {
        Some(EarliestDate::Fixed(floor)) if start < floor => from,
        _ => start,
    }
}

/// A request's `date_from` moved to the first day of its period
/// ([`whole_period_start`]).
pub fn align_date_from(endpoint: Endpoint, params: &mut serde_json::Map<String, Value>) {
    let task = Value::Object(params.clone());
    if let Some(from) = task_date(&task, "date_from") {
        let start = whole_period_start(endpoint, &task, from);
        if start != from {
            params.insert("date_from".into(), Value::from(start.to_string()));
        }
    }
}

/// Checks the request of `collection`, planned on `planned_on`, against the API's date
/// rules as they stand on `today` (UTC): an absolute date valid when the job file was
/// loaded may have aged out since. The error says what is wrong and what to write.
pub fn check_collection(
    collection: &Collection,
    planned_on: NaiveDate,
    today: NaiveDate,
) -> Result<(), String> {
    crate::jobs::check_request_dates(
        collection.endpoint,
        &collection.request_params(planned_on),
        today,
    )
}

/// Every call of every collection of `job`.
pub fn plan_job(job: &Job, today: NaiveDate) -> Vec<CallSpec> {
    job.collections
        .iter()
        .flat_map(|c| plan_collection(c, today))
        .collect()
}

/// Packs targets into chunks of at most `max_targets` with at most `max_domains`
/// distinct domains each, keeping a domain's pages together where they fit.
pub fn pack_by_domain(
    targets: &[Target],
    max_targets: usize,
    max_domains: usize,
) -> Vec<Vec<Target>> {
    let mut by_domain: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    for t in targets {
        by_domain.entry(t.domain()).or_default().push(t.clone());
    }
    let mut chunks: Vec<Vec<Target>> = Vec::new();
    let mut current: Vec<Target> = Vec::new();
    let mut domains = 0;
    for (_, pages) in by_domain {
        for piece in pages.chunks(max_targets) {
            if !current.is_empty()
                && (current.len() + piece.len() > max_targets || domains + 1 > max_domains)
            {
                chunks.push(std::mem::take(&mut current));
                domains = 0;
            }
            current.extend_from_slice(piece);
            domains += 1;
        }
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

fn date_param(params: &serde_json::Map<String, Value>, name: &str) -> Option<NaiveDate> {
    params
        .get(name)
        .and_then(Value::as_str)
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

/// Rows an answer is expected to hold, as the API bills them: one for a summary, one
/// per target of a bulk call, one per month of history (up to this month), one per
/// period of a time series (each dated the last day of its period).
pub fn estimate_rows(
    endpoint: Endpoint,
    params: &serde_json::Map<String, Value>,
    targets: usize,
    today: NaiveDate,
) -> i64 {
    let from = date_param(params, "date_from");
    let to = date_param(params, "date_to").unwrap_or(today).min(today);
    match endpoint {
        Endpoint::History => {
            let from = from.unwrap_or(crate::api::endpoint::history_earliest());
            crate::api::endpoint::months_between(from, to)
        }
        Endpoint::TimeseriesSummary | Endpoint::TimeseriesNewLostSummary => {
            let from = from.unwrap_or(today);
            let group = params
                .get("group_range")
                .and_then(Value::as_str)
                .and_then(GroupRange::parse)
                .unwrap_or(GroupRange::Month);
            crate::api::endpoint::periods(from, to, group).len() as i64
        }
        Endpoint::Summary => 1,
        _ => targets as i64,
    }
}

// What a call asks for, narrowed to what is not stored: the rules are
// `warehouse::coverage`'s; `collect::narrow` applies them against the database, and
// `Stored::narrow_calls` below against what is kept in memory (`plan`'s month ahead).

/// `call` asking only for what is not held: `missing` are the date ranges of its
/// request that no stored answer covers (an open period answered before today is). Returns `None`
/// when nothing is missing, else the call from the first missing period on, its rows
/// estimated again.
pub fn narrow(
    call: &CallSpec,
    missing: &[(NaiveDate, NaiveDate)],
    today: NaiveDate,
) -> Option<CallSpec> {
    let first_missing = missing.iter().map(|(from, _)| *from).min()?;
    let from = task_date(&call.task, "date_from")?;
    if first_missing <= from {
        return Some(call.clone());
    }
    let mut narrowed = call.clone();
    if let Some(task) = narrowed.task.as_object_mut() {
        task.insert(
            "date_from".into(),
            Value::from(first_missing.format("%Y-%m-%d").to_string()),
        );
    }
    let params = narrowed.task.as_object().cloned().unwrap_or_default();
    narrowed.estimated_rows = estimate_rows(call.endpoint, &params, 1, today);
    Some(narrowed)
}

/// The date range a ranged call asks for: (date_from, date_to).
pub fn requested_range(call: &CallSpec, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let from = task_date(&call.task, "date_from")?;
    let to = task_date(&call.task, "date_to").unwrap_or(today).min(today);
    Some((from, to))
}

/// How a history or timeseries collection asks again and reaches back: its
/// `reask_empty` and `reach_back`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reach {
    /// A period answered empty is asked again until this long after an answer first
    /// lacked it.
    pub reask_empty: Duration,
    /// A fire whose window starts after the end of what is stored reaches back to it,
    /// at most this far before the fire's day.
    pub reach_back: Duration,
}

impl Reach {
    pub fn of(collection: &Collection) -> Reach {
        Reach {
            reask_empty: collection.reask_empty,
            reach_back: collection.reach_back,
        }
    }

    /// The same, reaching back not at all (a backfill asks for the range it was given).
    pub fn without_reach_back(self) -> Reach {
        Reach {
            reach_back: Duration::ZERO,
            ..self
        }
    }
}

/// `call` reaching back to the day after `stored_until` when its window starts later
/// than that (a window shorter than the time between fires, a daemon that was down),
/// but no earlier than `reach_back` before `today` nor the API's floor, from the first
/// day of that day's period; as it is otherwise, and when nothing is stored yet (the
/// window is all the user asked for).
pub fn reach_back(
    call: &CallSpec,
    stored_until: Option<NaiveDate>,
    today: NaiveDate,
    reach_back: Duration,
) -> CallSpec {
    let (Some(until), Some(from)) = (stored_until, task_date(&call.task, "date_from")) else {
        return call.clone();
    };
    let Some(next) = until.succ_opt() else {
        return call.clone();
    };
    let mut start = next.max(today - chrono::Days::new(reach_back.as_secs() / 86_400));
    if let Some(EarliestDate::Fixed(floor)) = call.endpoint.earliest_date_from() {
        start = start.max(floor);
    }
    let start = whole_period_start(call.endpoint, &call.task, start);
    if start >= from {
        return call.clone();
    }
    let mut reached = call.clone();
    if let Some(task) = reached.task.as_object_mut() {
        task.insert("date_from".into(), Value::from(start.to_string()));
    }
    let params = reached.task.as_object().cloned().unwrap_or_default();
    reached.estimated_rows = estimate_rows(call.endpoint, &params, 1, today);
    reached
}

/// Calls split by what the warehouse holds.
#[derive(Clone, Debug, Default)]
pub struct Narrowed {
    /// What to buy: each ranged call from its first missing period on.
    pub calls: Vec<CallSpec>,
    /// Ranged calls whose whole range is stored already.
    pub skipped: Vec<CallSpec>,
}

impl Stored {
    /// `calls` reaching back to what is stored and narrowed to what is not stored for
    /// good on `today` (as `collect::narrow::narrow_calls` does against the database).
    pub fn narrow_calls(&self, calls: Vec<CallSpec>, today: NaiveDate, reach: Reach) -> Narrowed {
        let mut out = Narrowed::default();
        for call in calls {
            if !is_ranged(call.endpoint) || call.targets.len() != 1 {
                out.calls.push(call);
                continue;
            }
            let (endpoint, options) = (call.endpoint, options(&call.task));
            let target = call.targets[0].as_str().to_string();
            let until = self.stored_until(endpoint, &options, &target);
            let call = reach_back(&call, until, today, reach.reach_back);
            match requested_range(&call, today) {
                Some((from, to)) => {
                    let missing = self.missing(
                        endpoint,
                        &options,
                        &target,
                        from,
                        to,
                        today,
                        reach.reask_empty,
                    );
                    match narrow(&call, missing.ranges(), today) {
                        Some(narrowed) => out.calls.push(narrowed),
                        None => out.skipped.push(call),
                    }
                }
                None => out.calls.push(call),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_call_is_narrowed_to_its_first_missing_period_and_its_rows_estimated_again() {
        let call = CallSpec {
            job: "j".into(),
            collection: "c".into(),
            endpoint: Endpoint::History,
            targets: vec![crate::api::Target::parse("a.com").unwrap()],
            task: json!({"target": "a.com", "date_from": "2019-01-01", "date_to": "2026-12-01"}),
            estimated_rows: 96,
            settle: None,
            max_rows: None,
            listing_size: None,
        };
        let today = d("2026-12-01");
        let narrowed = narrow(&call, &[(d("2026-12-01"), d("2026-12-01"))], today).unwrap();
        assert_eq!(narrowed.task["date_from"], "2026-12-01");
        assert_eq!(narrowed.estimated_rows, 1);
        // Missing from the start: the call as planned.
        assert_eq!(
            narrow(&call, &[(d("2019-01-01"), d("2026-12-01"))], today),
            Some(call.clone())
        );
        assert_eq!(narrow(&call, &[], today), None);
    }

    #[test]
    fn a_week_month_year_or_history_request_starts_on_the_first_day_of_its_period() {
        let start = |endpoint: Endpoint, group: Option<&str>, from: &str| {
            let mut params = serde_json::Map::new();
            params.insert("date_from".into(), Value::from(from));
            if let Some(g) = group {
                params.insert("group_range".into(), Value::from(g));
            }
            align_date_from(endpoint, &mut params);
            params["date_from"].as_str().unwrap().to_string()
        };
        let ts = Endpoint::TimeseriesNewLostSummary;
        // 2026-11-07 is a Saturday: its week began on Monday 2026-11-02.
        assert_eq!(start(ts, Some("week"), "2026-11-07"), "2026-11-02");
        assert_eq!(start(ts, Some("month"), "2026-11-07"), "2026-11-01");
        assert_eq!(
            start(ts, None, "2026-11-07"),
            "2026-11-01",
            "month by default"
        );
        assert_eq!(start(ts, Some("year"), "2026-11-07"), "2026-01-01");
        assert_eq!(start(ts, Some("day"), "2026-11-07"), "2026-11-07");
        assert_eq!(start(Endpoint::History, None, "2024-03-15"), "2024-03-01");
        // Below the timeseries' floor (2019-01-30) the day stays: the API answers the
        // whole of January 2019 from it anyway.
        assert_eq!(start(ts, Some("month"), "2019-01-30"), "2019-01-30");
        assert_eq!(start(ts, Some("week"), "2019-01-30"), "2019-01-30");
        // Other endpoints keep their dates.
        assert_eq!(
            start(Endpoint::BulkNewLostBacklinks, None, "2026-11-07"),
            "2026-11-07"
        );
    }

    #[test]
    fn a_collection_of_whole_periods_is_planned_and_estimated_from_its_first_day() {
        let c = Collection {
            job: "j".into(),
            name: "c".into(),
            endpoint: Endpoint::History,
            schedule: crate::jobs::schedule::Schedule::parse("0 0 1 * *", None).unwrap(),
            params: crate::jobs::Params(
                [(
                    "date_from".to_string(),
                    crate::jobs::ParamValue::Date(crate::jobs::DateSpec::Absolute(
                        NaiveDate::from_ymd_opt(2026, 3, 15).unwrap(),
                    )),
                )]
                .into_iter()
                .collect(),
            ),
            targets: vec![Target::parse("a.com").unwrap()],
            catch_up: Default::default(),
            catch_up_window: std::time::Duration::from_secs(3600),
            refetch: Default::default(),
            settle: Duration::ZERO,
            reask_empty: crate::jobs::DEFAULT_REASK_EMPTY,
            reach_back: crate::jobs::DEFAULT_REACH_BACK,
            max_rows: None,
        };
        let calls = plan_collection(&c, NaiveDate::from_ymd_opt(2026, 12, 7).unwrap());
        assert_eq!(calls[0].task["date_from"], "2026-03-01");
        // March to December: ten months.
        assert_eq!(calls[0].estimated_rows, 10);
    }

    fn pages(domain: &str, n: usize) -> Vec<Target> {
        (0..n)
            .map(|i| Target::parse(&format!("https://{domain}/p{i}")).unwrap())
            .collect()
    }

    #[test]
    fn pages_are_packed_into_chunks_of_at_most_100_domains_and_1000_targets() {
        let mut targets = Vec::new();
        for d in 0..250 {
            targets.extend(pages(&format!("d{d}.com"), 2));
        }
        let chunks = pack_by_domain(&targets, 1000, 100);
        assert_eq!(chunks.len(), 3);
        for c in &chunks {
            let mut domains: Vec<String> = c.iter().map(Target::domain).collect();
            domains.dedup();
            assert!(domains.len() <= 100 && c.len() <= 1000);
        }
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 500);

        let big = pages("big.com", 2500);
        let chunks = pack_by_domain(&big, 1000, 100);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1000, 1000, 500]
        );
    }

    #[test]
    fn history_rows_are_estimated_per_month() {
        let mut p = serde_json::Map::new();
        p.insert("date_from".into(), "2024-01-01".into());
        p.insert("date_to".into(), "2024-12-31".into());
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        assert_eq!(estimate_rows(Endpoint::History, &p, 1, today), 12);
    }
}
