//! What the warehouse holds of the date-ranged collections (`history` and the two
//! timeseries endpoints), per endpoint, target and request options: the periods stored
//! answers covered. Normalization works out what an answer covers; the store records
//! it (`linkledger.coverage`) in the transaction that writes the answer's rows, so it
//! is never guessed. Planning then asks only for what is not held. A period that had
//! ended before the day its answer came is held for good; the newest period, still
//! open when answered (it can change), is held only for the rest of that day (UTC): the
//! next day's fire asks for it again with the new open one, while a second backfill or
//! fire the same day buys nothing.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::api::Endpoint;
use crate::api::endpoint::{GroupRange, periods};
use crate::plan::{CallSpec, estimate_rows};

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

fn date(task: &Value, name: &str) -> Option<NaiveDate> {
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
    let from = date(task, "date_from")?;
    let to = date(task, "date_to").unwrap_or(day);
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
    let from = date(&call.task, "date_from")?;
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
    let from = date(&call.task, "date_from")?;
    let to = date(&call.task, "date_to").unwrap_or(today).min(today);
    Some((from, to))
}

/// Calls split by what the warehouse holds.
#[derive(Clone, Debug, Default)]
pub struct Narrowed {
    /// What to buy: each ranged call from its first missing period on.
    pub calls: Vec<CallSpec>,
    /// Ranged calls whose whole range is stored already.
    pub skipped: Vec<CallSpec>,
}

/// Narrows the date-ranged calls of `calls` to what the warehouse does not hold yet
/// (one query per endpoint, options and range); other calls are kept as they are.
pub async fn narrow_calls(
    store: &crate::store::Store,
    calls: Vec<CallSpec>,
    today: NaiveDate,
) -> Result<Narrowed, crate::store::StoreError> {
    use std::collections::BTreeMap;
    let mut out = Narrowed::default();
    // (endpoint, options, from, to) -> calls
    let mut groups: BTreeMap<(Endpoint, String, NaiveDate, NaiveDate), Vec<CallSpec>> =
        BTreeMap::new();
    for call in calls {
        match (is_ranged(call.endpoint), requested_range(&call, today)) {
            (true, Some((from, to))) if call.targets.len() == 1 => {
                let key = (call.endpoint, options(&call.task).to_string(), from, to);
                groups.entry(key).or_default().push(call);
            }
            _ => out.calls.push(call),
        }
    }
    for ((endpoint, _, from, to), calls) in groups {
        let targets: Vec<String> = calls
            .iter()
            .map(|c| c.targets[0].as_str().to_string())
            .collect();
        let missing = store
            .missing_periods(
                endpoint,
                &options(&calls[0].task),
                &targets,
                from,
                to,
                today,
            )
            .await?;
        for call in calls {
            let target = call.targets[0].as_str();
            match missing.get(target).and_then(|m| narrow(&call, m, today)) {
                Some(narrowed) => out.calls.push(narrowed),
                None => out.skipped.push(call),
            }
        }
    }
    Ok(out)
}

/// What one fire of `collection`, planned on `planned_on`, buys: its calls, the
/// date-ranged ones narrowed to what the warehouse does not hold (unless the collection
/// says `refetch = "always"`).
pub async fn plan_to_buy(
    store: &crate::store::Store,
    collection: &crate::jobs::Collection,
    planned_on: NaiveDate,
) -> Result<Narrowed, crate::store::StoreError> {
    let calls = crate::plan::plan_collection(collection, planned_on);
    match collection.refetch {
        crate::jobs::Refetch::Always => Ok(Narrowed {
            calls,
            skipped: Vec::new(),
        }),
        crate::jobs::Refetch::Missing => narrow_calls(store, calls, planned_on).await,
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
    fn a_call_is_narrowed_to_its_first_missing_period_and_its_rows_estimated_again() {
        let call = CallSpec {
            job: "j".into(),
            collection: "c".into(),
            endpoint: Endpoint::History,
            targets: vec![crate::api::Target::parse("a.com").unwrap()],
            task: json!({"target": "a.com", "date_from": "2019-01-01", "date_to": "2026-12-01"}),
            estimated_rows: 96,
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
}
