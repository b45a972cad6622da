//! What the warehouse holds of the date-ranged collections (`history` and the two
//! timeseries endpoints), per endpoint, target and request options: the periods stored
//! answers covered. Normalization works out what an answer covers; the store records
//! it (`linkledger.coverage`) in the transaction that writes the answer's rows, so it
//! is never guessed. Planning then asks only for what is not held. A period that had
//! ended before the day its answer came is held for good; the newest period, still
//! open when answered (it can change), is held only for the rest of that day (UTC): the
//! next day's fire asks for it again with the new open one, while a second backfill or
//! fire the same day buys nothing.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::api::Endpoint;
use crate::api::endpoint::{GroupRange, periods};

/// Whether an endpoint answers for a date range (and so has coverage).
pub fn is_ranged(endpoint: Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::History | Endpoint::TimeseriesSummary | Endpoint::TimeseriesNewLostSummary
    )
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

/// The periods an answer covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Covered {
    pub endpoint: Endpoint,
    pub target: String,
    pub options: Value,
    /// The day (UTC) the answer came.
    pub day: NaiveDate,
    /// First and last day of the periods that had ended before `day` (whole periods).
    pub closed: Option<(NaiveDate, NaiveDate)>,
    /// First and last day of the periods still open on `day`: held only on `day`.
    pub open: Option<(NaiveDate, NaiveDate)>,
}

/// A task's date parameter `name` (`date_from`, `date_to`), when it is one.
pub fn task_date(task: &Value, name: &str) -> Option<NaiveDate> {
    task.get(name)
        .and_then(Value::as_str)
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

/// The periods of `endpoint`'s answers to `task`: months for history, else the task's
/// `group_range`.
fn grain(endpoint: Endpoint, task: &Value) -> GroupRange {
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

/// What an answer to `task`, received on `day` (UTC), covers: the periods it was
/// asked for, split into those that had ended before `day` and those still open.
/// `None` for an endpoint without dates or a task without them.
pub fn covered_by(endpoint: Endpoint, task: &Value, day: NaiveDate) -> Option<Covered> {
    if !is_ranged(endpoint) {
        return None;
    }
    let target = task.get("target").and_then(Value::as_str)?;
    let from = task_date(task, "date_from")?;
    let to = task_date(task, "date_to").unwrap_or(day);
    let asked = requested_periods(endpoint, task, from, to, day);
    let span = |periods: &[&(NaiveDate, NaiveDate)]| Some((periods.first()?.0, periods.last()?.1));
    let (closed, open): (Vec<_>, Vec<_>) = asked.iter().partition(|(_, end)| *end < day);
    let (closed, open) = (span(&closed), span(&open));
    if closed.is_none() && open.is_none() {
        return None;
    }
    Some(Covered {
        endpoint,
        target: target.to_string(),
        options: options(task),
        day,
        closed,
        open,
    })
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

/// What is held, kept in memory the way `linkledger.coverage` keeps it: for a bill
/// that walks the fires of a month ahead (`linkledger plan`), starting from what the
/// database holds.
#[derive(Clone, Debug, Default)]
pub struct Stored {
    map: std::collections::HashMap<(Endpoint, String, String), StoredEntry>,
}

#[derive(Clone, Debug, Default)]
struct StoredEntry {
    covered: Days,
    fresh: Days,
    fresh_on: Option<NaiveDate>,
}

impl Stored {
    fn key(endpoint: Endpoint, options: &Value, target: &str) -> (Endpoint, String, String) {
        (endpoint, task_key(options), target.to_string())
    }

    /// What the database holds for one endpoint, options and target.
    pub fn insert_stored(
        &mut self,
        endpoint: Endpoint,
        options: &Value,
        target: &str,
        covered: Days,
        fresh: Days,
        fresh_on: Option<NaiveDate>,
    ) {
        self.map.insert(
            Stored::key(endpoint, options, target),
            StoredEntry {
                covered,
                fresh,
                fresh_on,
            },
        );
    }

    /// Holds what an answer covers, as the store records it with the answer's rows.
    pub fn record(&mut self, c: &Covered) {
        let e = self
            .map
            .entry(Stored::key(c.endpoint, &c.options, &c.target))
            .or_default();
        if let Some((from, to)) = c.closed {
            e.covered.add(from, to);
        }
        if let Some((from, to)) = c.open {
            match e.fresh_on {
                Some(on) if on > c.day => {}
                Some(on) if on == c.day => e.fresh.add(from, to),
                _ => {
                    e.fresh = Days::one(from, to);
                    e.fresh_on = Some(c.day);
                }
            }
        }
    }

    /// The days of `from..=to` not held on `today` (as [`Store::missing_periods`]).
    ///
    /// [`Store::missing_periods`]: crate::store::Store::missing_periods
    pub fn missing(
        &self,
        endpoint: Endpoint,
        options: &Value,
        target: &str,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> Days {
        let asked = Days::one(from, to);
        match self.map.get(&Stored::key(endpoint, options, target)) {
            None => asked,
            Some(e) => {
                let left = asked.minus(&e.covered);
                if e.fresh_on == Some(today) {
                    left.minus(&e.fresh)
                } else {
                    left
                }
            }
        }
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
    fn an_answer_holds_the_ended_periods_for_good_and_the_open_one_for_its_day() {
        let task = json!({"target": "a.com", "date_from": "2019-01-01", "date_to": "2026-12-01", "rank_scale": "one_thousand"});
        let c = covered_by(Endpoint::History, &task, d("2026-12-01")).unwrap();
        // December 2026 is still open on 2026-12-01.
        assert_eq!(c.closed, Some((d("2019-01-01"), d("2026-11-30"))));
        assert_eq!(c.open, Some((d("2026-12-01"), d("2026-12-31"))));
        assert_eq!(c.day, d("2026-12-01"));
        assert_eq!(c.options, json!({"rank_scale": "one_thousand"}));
        let days = json!({"target": "a.com", "date_from": "2026-11-01", "date_to": "2026-12-01", "group_range": "day"});
        let c = covered_by(Endpoint::TimeseriesNewLostSummary, &days, d("2026-12-01")).unwrap();
        assert_eq!(c.closed, Some((d("2026-11-01"), d("2026-11-30"))));
        assert_eq!(c.open, Some((d("2026-12-01"), d("2026-12-01"))));
        assert_eq!(c.options, json!({"group_range": "day"}));
        // Weeks run Monday to Sunday: 2026-11-25 is in the week that ended on
        // 2026-11-29; the week of 2026-12-01 (a Tuesday) has not ended.
        let weeks = json!({"target": "a.com", "date_from": "2026-11-25", "date_to": "2026-12-01", "group_range": "week"});
        let c = covered_by(Endpoint::TimeseriesSummary, &weeks, d("2026-12-01")).unwrap();
        assert_eq!(c.closed, Some((d("2026-11-23"), d("2026-11-29"))));
        assert_eq!(c.open, Some((d("2026-11-30"), d("2026-12-06"))));
        let open = json!({"target": "a.com", "date_from": "2026-11-30", "date_to": "2026-12-01", "group_range": "week"});
        let c = covered_by(Endpoint::TimeseriesSummary, &open, d("2026-12-01")).unwrap();
        assert_eq!(
            (c.closed, c.open),
            (None, Some((d("2026-11-30"), d("2026-12-06"))))
        );
        // A range that ended in the past has no open period.
        let past = json!({"target": "a.com", "date_from": "2026-01-01", "date_to": "2026-03-31"});
        let c = covered_by(Endpoint::History, &past, d("2026-12-01")).unwrap();
        assert_eq!(
            (c.closed, c.open),
            (Some((d("2026-01-01"), d("2026-03-31"))), None)
        );
        assert!(
            covered_by(
                Endpoint::Summary,
                &json!({"target": "a.com"}),
                d("2026-12-01")
            )
            .is_none()
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

    #[test]
    fn held_in_memory_follows_the_stores_rules_for_open_periods() {
        let mut held = Stored::default();
        let task = json!({"target": "a.com", "date_from": "2026-11-01", "date_to": "2026-12-01", "group_range": "day"});
        let e = Endpoint::TimeseriesNewLostSummary;
        let opts = options(&task);
        held.record(&covered_by(e, &task, d("2026-12-01")).unwrap());
        // The same day: all held. The next day: the day that was open, and the new one.
        let same_day = held.missing(
            e,
            &opts,
            "a.com",
            d("2026-11-01"),
            d("2026-12-01"),
            d("2026-12-01"),
        );
        assert!(same_day.ranges().is_empty(), "{same_day:?}");
        let next = held.missing(
            e,
            &opts,
            "a.com",
            d("2026-11-02"),
            d("2026-12-02"),
            d("2026-12-02"),
        );
        assert_eq!(next.ranges(), &[(d("2026-12-01"), d("2026-12-02"))]);
        // An older answer (a replay) does not take the place of a newer open period.
        let old = json!({"target": "a.com", "date_from": "2026-11-29", "date_to": "2026-11-30", "group_range": "day"});
        held.record(&covered_by(e, &old, d("2026-11-30")).unwrap());
        let still = held.missing(
            e,
            &opts,
            "a.com",
            d("2026-11-01"),
            d("2026-12-01"),
            d("2026-12-01"),
        );
        assert!(still.ranges().is_empty(), "{still:?}");
        // Other options are other data.
        let weekly = json!({"group_range": "week"});
        assert_eq!(
            held.missing(
                e,
                &weekly,
                "a.com",
                d("2026-11-01"),
                d("2026-11-30"),
                d("2026-12-01")
            )
            .ranges(),
            &[(d("2026-11-01"), d("2026-11-30"))]
        );
    }
}
