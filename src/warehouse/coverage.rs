//! What the warehouse holds of the date-ranged collections (`history` and the two
//! timeseries endpoints), per endpoint, target and request options, period by period.
//!
//! A period counts as stored only when an answer held its item, and as stored *for
//! good* only when that answer's request was sent after the period settled: from then
//! on no fire asks for it again. When a period settles:
//!
//! - history: its item holds "the backlinks the specified domain had on the first day
//!   of each given month" (the API's field list), so its figures are those of a day
//!   that has passed once the month's first day has ended; the documents decide, and a
//!   collection's `settle` (default none) only adds to it;
//! - a timeseries period: the documents are silent on when a day's, week's, month's or
//!   year's counts stop changing, so it settles a `settle` time (default seven days,
//!   `Endpoint::default_settle`) after its last day ended.
//!
//! A period stored before it settled is *unsettled*: later fires ask for it again (on
//! later days) until an answer sent after it settled stores it for good. A period asked
//! for whose item the answer lacked (the index holds no snapshot for it yet, or lags) is
//! *answered empty*: nothing is stored for it, and later fires ask again until
//! `reask_empty` (a collection's setting) has passed since an answer first lacked it;
//! after that `gaps` lists it and `backfill --refetch` buys it. Neither is asked again on the day it
//! was answered, so a second backfill or fire the same day buys nothing.
//!
//! [`answered`] works out what an answer says of each period it asked for; the store
//! records it (`linkledger.coverage`, `linkledger.pending_periods`) in the transaction
//! that writes the answer's rows, so it is never claimed without them. [`Stored`] keeps
//! the same rules in memory for `plan`'s month ahead.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::api::Endpoint;
use crate::api::endpoint::{GroupRange, periods};

/// Whether an endpoint answers for a date range (and so has coverage).
pub fn is_ranged(endpoint: Endpoint) -> bool {
    endpoint.has_periods()
}

/// The request options coverage is kept under: every parameter but the target and the
/// dates (group_range included: it defines the periods).
pub fn options(task: &Value) -> Value {
    let mut out = Map::new();
    if let Some(task) = task.as_object() {
        for (k, v) in task {
            if !matches!(
                k.as_str(),
                "target" | "targets" | "tag" | "date_from" | "date_to"
            ) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// A task's date parameter `name` (`date_from`, `date_to`), when it is one.
pub fn task_date(task: &Value, name: &str) -> Option<NaiveDate> {
    task.get(name)
        .and_then(Value::as_str)
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

/// The periods of `endpoint`'s answers to `task`: months for history, else the task's
/// `group_range`.
pub fn grain(endpoint: Endpoint, task: &Value) -> GroupRange {
    match endpoint {
        Endpoint::History => GroupRange::Month,
        _ => task
            .get("group_range")
            .and_then(Value::as_str)
            .and_then(GroupRange::parse)
            .unwrap_or(GroupRange::Month),
    }
}

/// The periods a request for `from..=to` is answered with, up to `today`.
fn requested_periods(
    endpoint: Endpoint,
    task: &Value,
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
) -> Vec<(NaiveDate, NaiveDate)> {
    periods(from, to.min(today), grain(endpoint, task))
}

/// Where an asked-for period stands after an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodState {
    /// Its item was stored by an answer sent after the period settled: never asked
    /// again.
    Final,
    /// Its item was stored, but the request was sent before the period settled: asked
    /// again by later fires.
    Unsettled,
    /// The answer lacked its item: nothing stored; asked again until `reask_empty`
    /// has passed since an answer first lacked it.
    Empty,
}

impl PeriodState {
    /// As `linkledger.pending_periods.state` says it (a final period has no row).
    pub fn name(self) -> &'static str {
        match self {
            PeriodState::Final => "final",
            PeriodState::Unsettled => "unsettled",
            PeriodState::Empty => "empty",
        }
    }
}

/// One period an answer was asked for: its first and last day and how it stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub state: PeriodState,
}

/// What one answer says of the periods its request asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Answered {
    pub endpoint: Endpoint,
    pub target: String,
    pub options: Value,
    /// When the request was sent: what settles is judged against it, not against when
    /// the answer arrived.
    pub sent_at: DateTime<Utc>,
    /// Every whole period asked for, up to the day the request was sent, in order.
    pub periods: Vec<Period>,
}

impl Answered {
    /// The day (UTC) the request was sent.
    pub fn day(&self) -> NaiveDate {
        self.sent_at.date_naive()
    }

    /// The days of the periods in `state`.
    pub fn days(&self, state: PeriodState) -> Days {
        let mut days = Days::default();
        for p in self.periods.iter().filter(|p| p.state == state) {
            days.add(p.from, p.to);
        }
        days
    }
}

/// The instant a period's figures are complete, before any settle time: for history
/// the end of the month's first day (its item is that day's snapshot), for a timeseries
/// the end of the period's last day.
pub fn complete_at(endpoint: Endpoint, from: NaiveDate, to: NaiveDate) -> DateTime<Utc> {
    let last = match endpoint {
        Endpoint::History => from,
        _ => to,
    };
    last.succ_opt()
        .unwrap_or(last)
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
}

/// What an answer to `task`, whose request was sent at `sent_at` and whose items are
/// dated `item_dates`, says of each period it asked for: the periods from `date_from`
/// to `date_to` (or the day it was sent) at the request's grain, each final, unsettled
/// (held, not settled `settle` after [`complete_at`]) or empty (no item dated in it).
/// `None` for an endpoint without dates or a task without them.
pub fn answered(
    endpoint: Endpoint,
    task: &Value,
    item_dates: &BTreeSet<NaiveDate>,
    sent_at: DateTime<Utc>,
    settle: Duration,
) -> Option<Answered> {
    if !is_ranged(endpoint) {
        return None;
    }
    let target = task.get("target").and_then(Value::as_str)?;
    let day = sent_at.date_naive();
    let from = task_date(task, "date_from")?;
    let to = task_date(task, "date_to").unwrap_or(day);
    let settle = chrono::Duration::from_std(settle).unwrap_or(chrono::Duration::MAX);
    let periods: Vec<Period> = requested_periods(endpoint, task, from, to, day)
        .into_iter()
        .map(|(from, to)| {
            let state = if item_dates.range(from..=to).next().is_none() {
                PeriodState::Empty
            } else if complete_at(endpoint, from, to)
                .checked_add_signed(settle)
                .is_some_and(|settled| settled <= sent_at)
            {
                PeriodState::Final
            } else {
                PeriodState::Unsettled
            };
            Period { from, to, state }
        })
        .collect();
    if periods.is_empty() {
        return None;
    }
    Some(Answered {
        endpoint,
        target: target.to_string(),
        options: options(task),
        sent_at,
        periods,
    })
}

/// [`answered`] for an answer that holds every period it was asked for: what `plan`
/// expects of the answers of the month ahead.
pub fn answered_in_full(
    endpoint: Endpoint,
    task: &Value,
    sent_at: DateTime<Utc>,
    settle: Duration,
) -> Option<Answered> {
    let day = sent_at.date_naive();
    let from = task_date(task, "date_from")?;
    let to = task_date(task, "date_to").unwrap_or(day);
    let dates: BTreeSet<NaiveDate> = requested_periods(endpoint, task, from, to, day)
        .into_iter()
        .map(|(from, _)| from)
        .collect();
    answered(endpoint, task, &dates, sent_at, settle)
}

/// How one period of a collection's range stands in the warehouse, for `gaps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Standing {
    /// Stored for good.
    Stored,
    /// Stored, not yet settled: later fires ask for it again.
    Unsettled,
    /// Asked for; the newest answer lacked its item: nothing stored.
    Empty,
    /// Never asked for, or asked and the answer not stored.
    Missing,
}

impl Standing {
    pub fn name(self) -> &'static str {
        match self {
            Standing::Stored => "stored",
            Standing::Unsettled => "unsettled",
            Standing::Empty => "empty",
            Standing::Missing => "missing",
        }
    }
}

/// Each period of `from..=to` at the grain of `endpoint`'s answers to `task`, with how
/// it stands given the days stored for good (`covered`) and the pending periods (first
/// day → state).
pub fn standings(
    endpoint: Endpoint,
    task: &Value,
    from: NaiveDate,
    to: NaiveDate,
    covered: &Days,
    pending: &BTreeMap<NaiveDate, PeriodState>,
) -> Vec<(NaiveDate, NaiveDate, Standing)> {
    periods(from, to, grain(endpoint, task))
        .into_iter()
        .map(|(f, t)| {
            let standing = if covered.contains(f, t) {
                Standing::Stored
            } else {
                match pending.get(&f) {
                    Some(PeriodState::Unsettled) => Standing::Unsettled,
                    Some(PeriodState::Empty) => Standing::Empty,
                    Some(PeriodState::Final) | None => Standing::Missing,
                }
            };
            (f, t, standing)
        })
        .collect()
}

/// A task as the database compares it (jsonb: key order does not matter), its `tag`
/// left out: a tag changes nothing in the answer, so a tagged call and an untagged one
/// are the same purchase.
pub fn task_key(task: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let ordered: BTreeMap<&String, serde_json::Value> =
                    m.iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::to_value(ordered).unwrap_or_default()
            }
            serde_json::Value::Array(a) => a.iter().map(sorted).collect(),
            other => other.clone(),
        }
    }
    let mut key = sorted(task);
    if let Some(m) = key.as_object_mut() {
        m.remove("tag");
    }
    key.to_string()
}

/// Days as inclusive date ranges, sorted and apart (what a `datemultirange` holds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Days(Vec<(NaiveDate, NaiveDate)>);

impl Days {
    pub fn one(from: NaiveDate, to: NaiveDate) -> Days {
        if from <= to {
            Days(vec![(from, to)])
        } else {
            Days::default()
        }
    }

    pub fn ranges(&self) -> &[(NaiveDate, NaiveDate)] {
        &self.0
    }

    /// Adds `from..=to`, merging ranges that overlap or touch.
    pub fn add(&mut self, from: NaiveDate, to: NaiveDate) {
        if from > to {
            return;
        }
        self.0.push((from, to));
        self.0.sort();
        let mut merged: Vec<(NaiveDate, NaiveDate)> = Vec::with_capacity(self.0.len());
        for (f, t) in self.0.drain(..) {
            match merged.last_mut() {
                Some(last) if last.1.succ_opt().is_none_or(|next| f <= next) => {
                    last.1 = last.1.max(t);
                }
                _ => merged.push((f, t)),
            }
        }
        self.0 = merged;
    }

    /// Whether every day of `from..=to` is in these.
    pub fn contains(&self, from: NaiveDate, to: NaiveDate) -> bool {
        self.0.iter().any(|&(f, t)| f <= from && to <= t)
    }

    /// These days less `other`'s.
    pub fn minus(&self, other: &Days) -> Days {
        let mut out = Vec::new();
        for &(from, to) in &self.0 {
            let mut start = Some(from);
            for &(of, ot) in &other.0 {
                let Some(s) = start else { break };
                if ot < s || of > to {
                    continue;
                }
                if of > s {
                    out.push((s, of.pred_opt().expect("after a date")));
                }
                start = ot.succ_opt().filter(|n| *n <= to);
            }
            if let Some(s) = start {
                out.push((s, to));
            }
        }
        Days(out)
    }
}

/// What is stored, kept in memory the way `linkledger.coverage` and
/// `linkledger.pending_periods` keep it: for a bill that walks the fires of a month
/// ahead (`linkledger plan`), starting from what the database holds.
#[derive(Clone, Debug, Default)]
pub struct Stored {
    map: std::collections::HashMap<(Endpoint, String, String), StoredEntry>,
}

#[derive(Clone, Debug, Default)]
struct StoredEntry {
    /// Stored for good.
    covered: Days,
    /// Not stored for good, by first day: (last day, unsettled or empty, the day it was
    /// first answered).
    pending: BTreeMap<NaiveDate, (NaiveDate, PeriodState, NaiveDate)>,
    fresh: Days,
    fresh_on: Option<NaiveDate>,
}

impl Stored {
    fn key(endpoint: Endpoint, options: &Value, target: &str) -> (Endpoint, String, String) {
        (endpoint, task_key(options), target.to_string())
    }

    fn entry(&mut self, endpoint: Endpoint, options: &Value, target: &str) -> &mut StoredEntry {
        self.map
            .entry(Stored::key(endpoint, options, target))
            .or_default()
    }

    /// What `linkledger.coverage` holds for one endpoint, options and target.
    pub fn insert_stored(
        &mut self,
        endpoint: Endpoint,
        options: &Value,
        target: &str,
        covered: Days,
        fresh: Days,
        fresh_on: Option<NaiveDate>,
    ) {
        let e = self.entry(endpoint, options, target);
        e.covered = covered;
        e.fresh = fresh;
        e.fresh_on = fresh_on;
    }

    /// A row of `linkledger.pending_periods`.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_pending(
        &mut self,
        endpoint: Endpoint,
        options: &Value,
        target: &str,
        from: NaiveDate,
        to: NaiveDate,
        state: PeriodState,
        first_answered: NaiveDate,
    ) {
        self.entry(endpoint, options, target)
            .pending
            .insert(from, (to, state, first_answered));
    }

    /// Holds what an answer says, as the store records it with the answer's rows.
    pub fn record(&mut self, a: &Answered) {
        let day = a.day();
        let e = self.entry(a.endpoint, &a.options, &a.target);
        for p in &a.periods {
            match p.state {
                PeriodState::Final => {
                    e.covered.add(p.from, p.to);
                    e.pending.remove(&p.from);
                }
                state if e.covered.contains(p.from, p.to) => {
                    let _ = state;
                }
                state => {
                    let keep = e.pending.get(&p.from).map(|&(_, s, _)| s);
                    let state = if keep == Some(PeriodState::Unsettled) {
                        PeriodState::Unsettled
                    } else {
                        state
                    };
                    let first = e.pending.get(&p.from).map_or(day, |&(_, _, f)| f.min(day));
                    e.pending.insert(p.from, (p.to, state, first));
                }
            }
        }
        let answered = {
            let mut days = a.days(PeriodState::Unsettled);
            for (from, to) in a.days(PeriodState::Empty).ranges() {
                days.add(*from, *to);
            }
            days
        };
        match e.fresh_on {
            Some(on) if on > day => {}
            Some(on) if on == day => {
                for (from, to) in answered.ranges() {
                    e.fresh.add(*from, *to);
                }
            }
            _ => {
                e.fresh = answered;
                e.fresh_on = Some(day);
            }
        }
    }

    /// The days of `from..=to` a request on `today` asks for (as
    /// `Store::missing_periods` does): all but those stored for good, those answered
    /// today, and those answered empty first more than `reask_empty` before `today`.
    /// Unsettled periods are asked again.
    #[allow(clippy::too_many_arguments)]
    pub fn missing(
        &self,
        endpoint: Endpoint,
        options: &Value,
        target: &str,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
        reask_empty: Duration,
    ) -> Days {
        let asked = Days::one(from, to);
        let Some(e) = self.map.get(&Stored::key(endpoint, options, target)) else {
            return asked;
        };
        let mut left = asked.minus(&e.covered);
        if e.fresh_on == Some(today) {
            left = left.minus(&e.fresh);
        }
        let reask_from = today - chrono::Days::new(reask_empty.as_secs() / 86_400);
        let mut given_up = Days::default();
        for (&p_from, &(p_to, state, first)) in &e.pending {
            if state == PeriodState::Empty && first < reask_from {
                given_up.add(p_from, p_to);
            }
        }
        left.minus(&given_up)
    }

    /// Where a fire reaching back meets the warehouse, for one endpoint, options and
    /// target: the last day stored for good, or when nothing is, the day before the
    /// first pending period (unsettled and empty periods after it are still to be
    /// asked again, so they are reached for too).
    pub fn stored_until(
        &self,
        endpoint: Endpoint,
        options: &Value,
        target: &str,
    ) -> Option<NaiveDate> {
        let e = self.map.get(&Stored::key(endpoint, options, target))?;
        e.covered
            .ranges()
            .last()
            .map(|r| r.1)
            .or_else(|| e.pending.keys().next().and_then(|from| from.pred_opt()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn dates(list: &[&str]) -> BTreeSet<NaiveDate> {
        list.iter().map(|s| d(s)).collect()
    }

    const WEEK: Duration = Duration::from_secs(7 * 86_400);

    #[test]
    fn a_period_is_stored_only_when_the_answer_holds_its_item() {
        let task = json!({"target": "a.com", "date_from": "2026-08-01", "date_to": "2026-11-30"});
        // Four months asked for; October's item is missing (no snapshot for it yet).
        let a = answered(
            Endpoint::History,
            &task,
            &dates(&["2026-08-01", "2026-09-01", "2026-11-01"]),
            at("2026-12-07T10:00:00Z"),
            Duration::ZERO,
        )
        .unwrap();
        let states: Vec<(NaiveDate, PeriodState)> =
            a.periods.iter().map(|p| (p.from, p.state)).collect();
        assert_eq!(
            states,
            [
                (d("2026-08-01"), PeriodState::Final),
                (d("2026-09-01"), PeriodState::Final),
                (d("2026-10-01"), PeriodState::Empty),
                (d("2026-11-01"), PeriodState::Final),
            ]
        );
        // An answer with no items stores nothing.
        let none = answered(
            Endpoint::History,
            &task,
            &BTreeSet::new(),
            at("2026-12-07T10:00:00Z"),
            Duration::ZERO,
        )
        .unwrap();
        assert!(none.periods.iter().all(|p| p.state == PeriodState::Empty));
        assert!(none.days(PeriodState::Final).ranges().is_empty());
    }

    #[test]
    fn weeks_run_monday_to_sunday_and_the_week_still_open_when_sent_is_unsettled() {
        let task = json!({"target": "a.com", "date_from": "2026-11-23", "date_to": "2026-12-01", "group_range": "week"});
        let a = answered(
            Endpoint::TimeseriesSummary,
            &task,
            &dates(&["2026-11-23", "2026-11-30"]),
            at("2026-12-01T10:00:00Z"),
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(
            a.periods,
            [
                Period {
                    from: d("2026-11-23"),
                    to: d("2026-11-29"),
                    state: PeriodState::Final
                },
                Period {
                    from: d("2026-11-30"),
                    to: d("2026-12-06"),
                    state: PeriodState::Unsettled
                },
            ]
        );
        assert_eq!(a.options, json!({"group_range": "week"}));
        // An endpoint without dates has no periods.
        assert!(
            answered(
                Endpoint::Summary,
                &json!({"target": "a.com"}),
                &BTreeSet::new(),
                at("2026-12-01T10:00:00Z"),
                Duration::ZERO
            )
            .is_none()
        );
    }

    #[test]
    fn a_history_month_settles_when_its_first_day_is_over_as_the_documents_say() {
        let task = json!({"target": "a.com", "date_from": "2026-12-01"});
        let held = dates(&["2026-12-01"]);
        // Sent during December 1st: its snapshot day is not over.
        let early = answered(
            Endpoint::History,
            &task,
            &held,
            at("2026-12-01T23:59:00Z"),
            Duration::ZERO,
        );
        assert_eq!(early.unwrap().periods[0].state, PeriodState::Unsettled);
        let next = answered(
            Endpoint::History,
            &task,
            &held,
            at("2026-12-02T00:00:00Z"),
            Duration::ZERO,
        );
        assert_eq!(next.unwrap().periods[0].state, PeriodState::Final);
        // A settle time of the collection's adds to it.
        let later = answered(
            Endpoint::History,
            &task,
            &held,
            at("2026-12-02T00:00:00Z"),
            Duration::from_secs(86_400),
        );
        assert_eq!(later.unwrap().periods[0].state, PeriodState::Unsettled);
    }

    #[test]
    fn a_timeseries_period_settles_its_settle_time_after_it_ended_judged_by_when_it_was_sent() {
        let task = json!({"target": "a.com", "date_from": "2026-11-25", "date_to": "2026-12-07", "group_range": "day"});
        let all: Vec<String> = (25..=30)
            .map(|n| format!("2026-11-{n}"))
            .chain((1..=7).map(|n| format!("2026-12-0{n}")))
            .collect();
        let held: BTreeSet<NaiveDate> = all.iter().map(|s| d(s)).collect();
        let a = answered(
            Endpoint::TimeseriesNewLostSummary,
            &task,
            &held,
            at("2026-12-07T00:00:01Z"),
            WEEK,
        )
        .unwrap();
        // Ended at least seven days before the request was sent: 2026-11-29 ended
        // 2026-11-30 00:00, seven days before 2026-12-07 00:00.
        assert_eq!(
            a.days(PeriodState::Final).ranges(),
            &[(d("2026-11-25"), d("2026-11-29"))]
        );
        assert_eq!(
            a.days(PeriodState::Unsettled).ranges(),
            &[(d("2026-11-30"), d("2026-12-07"))]
        );
        // Judged by when the request was sent: the same answer arriving a second later
        // (sent a second before midnight) leaves 2026-11-29 unsettled.
        let sent_before = answered(
            Endpoint::TimeseriesNewLostSummary,
            &task,
            &held,
            at("2026-12-06T23:59:59Z"),
            WEEK,
        )
        .unwrap();
        assert_eq!(
            sent_before.days(PeriodState::Final).ranges(),
            &[(d("2026-11-25"), d("2026-11-28"))]
        );
    }

    #[test]
    fn in_memory_a_lagging_answer_leaves_its_newest_days_to_ask_again_the_next_day() {
        let mut stored = Stored::default();
        let e = Endpoint::TimeseriesNewLostSummary;
        let task = json!({"target": "a.com", "date_from": "2026-11-01", "date_to": "2026-12-01", "group_range": "day"});
        let opts = options(&task);
        // The index lags: the newest three days are absent.
        let held: BTreeSet<NaiveDate> = (1..=28)
            .map(|n| NaiveDate::from_ymd_opt(2026, 11, n).unwrap())
            .collect();
        let a = answered(e, &task, &held, at("2026-12-01T06:00:00Z"), Duration::ZERO).unwrap();
        stored.record(&a);
        let missing = |stored: &Stored, today: &str, reask: Duration| {
            stored
                .missing(
                    e,
                    &opts,
                    "a.com",
                    d("2026-11-01"),
                    d(today),
                    d(today),
                    reask,
                )
                .ranges()
                .to_vec()
        };
        // The same day nothing is asked again; the next day the absent days are.
        assert_eq!(missing(&stored, "2026-12-01", WEEK), []);
        assert_eq!(
            missing(&stored, "2026-12-02", WEEK),
            [(d("2026-11-29"), d("2026-12-02"))]
        );
        // Past the re-ask bound, an empty period is left to `gaps`.
        assert_eq!(
            missing(&stored, "2026-12-20", WEEK),
            [(d("2026-12-02"), d("2026-12-20"))]
        );
        assert_eq!(
            stored.stored_until(e, &opts, "a.com"),
            Some(d("2026-11-28"))
        );
    }

    #[test]
    fn in_memory_unsettled_periods_are_asked_again_until_an_answer_sent_after_they_settled() {
        let mut stored = Stored::default();
        let e = Endpoint::TimeseriesSummary;
        let task = json!({"target": "a.com", "date_from": "2026-11-30", "group_range": "day"});
        let opts = options(&task);
        let held = dates(&["2026-11-30", "2026-12-01"]);
        stored.record(&answered(e, &task, &held, at("2026-12-01T06:00:00Z"), WEEK).unwrap());
        let missing = |stored: &Stored, today: &str| {
            stored
                .missing(e, &opts, "a.com", d("2026-11-30"), d(today), d(today), WEEK)
                .ranges()
                .to_vec()
        };
        assert_eq!(missing(&stored, "2026-12-01"), []);
        assert_eq!(
            missing(&stored, "2026-12-02"),
            [(d("2026-11-30"), d("2026-12-02"))]
        );
        // Nothing is stored for good: a fire reaching back reaches for the first
        // unsettled day.
        assert_eq!(
            stored.stored_until(e, &opts, "a.com"),
            Some(d("2026-11-29"))
        );
        // Asked again after 2026-11-30 settled (2026-12-08): that day is final.
        let later = json!({"target": "a.com", "date_from": "2026-11-30", "date_to": "2026-12-08", "group_range": "day"});
        let all: BTreeSet<NaiveDate> = (0..9)
            .map(|n| d("2026-11-30") + chrono::Days::new(n))
            .collect();
        stored.record(&answered(e, &later, &all, at("2026-12-08T06:00:00Z"), WEEK).unwrap());
        assert_eq!(
            missing(&stored, "2026-12-09"),
            [(d("2026-12-01"), d("2026-12-09"))]
        );
        assert_eq!(
            stored.stored_until(e, &opts, "a.com"),
            Some(d("2026-11-30"))
        );
    }

    #[test]
    fn days_add_and_subtract_like_a_multirange() {
        let mut days = Days::one(d("2026-01-01"), d("2026-01-10"));
        days.add(d("2026-01-11"), d("2026-01-15"));
        days.add(d("2026-02-01"), d("2026-02-05"));
        assert_eq!(
            days.ranges(),
            &[
                (d("2026-01-01"), d("2026-01-15")),
                (d("2026-02-01"), d("2026-02-05"))
            ]
        );
        let asked = Days::one(d("2025-12-30"), d("2026-02-10"));
        assert_eq!(
            asked.minus(&days).ranges(),
            &[
                (d("2025-12-30"), d("2025-12-31")),
                (d("2026-01-16"), d("2026-01-31")),
                (d("2026-02-06"), d("2026-02-10"))
            ]
        );
        assert!(
            Days::one(d("2026-01-03"), d("2026-01-04"))
                .minus(&days)
                .ranges()
                .is_empty()
        );
        assert!(
            Days::one(d("2026-01-04"), d("2026-01-03"))
                .ranges()
                .is_empty()
        );
    }
}
