//! The API on a bad day: target modes that keep the schema and the charge rule but
//! change which items an answer holds, or their figures (see the module doc of
//! [`crate::sandbox`], "Target modes"). History and the timeseries ask [`indexed`] and
//! [`revised_scale`] while they build their items and [`shape_series`] after; the bulk
//! endpoints pass each target's item through [`shape_bulk_item`].

use chrono::{Days, NaiveDate};
use serde_json::Value;

use super::numbers::between;
use super::targets::first_label;

/// How far back from today figures are still revised (`quirk-revised`), in days.
const REVISED_DAYS: u64 = 7;

/// The longest lag `quirk-lag-N` takes, in days.
const MAX_LAG_DAYS: u32 = 31;

/// The bad day a target's first host label asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BadDay {
    /// `quirk-missing-period`: one period in the middle of the series is not there.
    MissingPeriod,
    /// `quirk-empty`: no items (bulk: not the target's).
    Empty,
    /// `quirk-lag-N`: nothing dated after today − N days is indexed yet.
    Lag(u32),
    /// `quirk-revised`: the last days' figures change from one day to the next.
    Revised,
    /// `quirk-null-item`: one item is JSON `null` (bulk: the target's).
    NullItem,
    /// `quirk-null-key`: one item's `date` is null (bulk: the target's `target`/`url`).
    NullKey,
}

impl BadDay {
    pub(super) fn of(target: &str) -> Option<BadDay> {
        match first_label(target).as_str() {
            "quirk-missing-period" => Some(BadDay::MissingPeriod),
            "quirk-empty" => Some(BadDay::Empty),
            "quirk-revised" => Some(BadDay::Revised),
            "quirk-null-item" => Some(BadDay::NullItem),
            "quirk-null-key" => Some(BadDay::NullKey),
            other => other
                .strip_prefix("quirk-lag-")
                .and_then(lag_days)
                .map(BadDay::Lag),
        }
    }
}

/// `N` of `quirk-lag-N`: 1 to 31, written without leading zeros (`quirk-lag-03` and
/// `quirk-lag-0` are plain targets).
fn lag_days(n: &str) -> Option<u32> {
    let days: u32 = n.parse().ok()?;
    (days.to_string() == n && (1..=MAX_LAG_DAYS).contains(&days)).then_some(days)
}

/// `today` less `days`, or the earliest date there is.
fn days_before(today: NaiveDate, days: u64) -> NaiveDate {
    today
        .checked_sub_days(Days::new(days))
        .unwrap_or(NaiveDate::MIN)
}

/// Whether a history or timeseries item dated `date` is in the answer: under
/// `quirk-lag-N` only what is dated today − N days or earlier is.
pub(super) fn indexed(mode: Option<BadDay>, date: NaiveDate, today: NaiveDate) -> bool {
    match mode {
        Some(BadDay::Lag(days)) => date <= days_before(today, days.into()),
        _ => true,
    }
}

/// The scale of the counts of a history or timeseries item dated `date`: `scale`
/// itself, except under `quirk-revised` for an item dated today − 7 days or later,
/// whose counts are scaled by a factor of 0.9 to 1.1 drawn from the date and `today`,
/// so that the same period has other figures when asked on another day.
pub(super) fn revised_scale(
    mode: Option<BadDay>,
    target: &str,
    date: NaiveDate,
    today: NaiveDate,
    scale: f64,
) -> f64 {
    if mode != Some(BadDay::Revised) || date < days_before(today, REVISED_DAYS) {
        return scale;
    }
    scale * between(target, "revision", &format!("{date}@{today}"), 0.9, 1.1)
}

/// The item a series mode picks: the second when there are at least two, else the first.
fn second_or_first(items: &[Value]) -> usize {
    usize::from(items.len() >= 2)
}

/// Reshapes the built items of a history or timeseries answer: `quirk-missing-period`
/// takes out the one at index len/2 (when there are at least two), `quirk-empty` all
/// of them; `quirk-null-item` replaces the second (or only) one by `null`, and
/// `quirk-null-key` makes its `date` null. Other modes change nothing here.
pub(super) fn shape_series(mode: Option<BadDay>, items: &mut Vec<Value>) {
    let at = second_or_first(items);
    match mode {
        Some(BadDay::MissingPeriod) if items.len() >= 2 => {
            items.remove(items.len() / 2);
        }
        Some(BadDay::Empty) => items.clear(),
        Some(BadDay::NullItem) => {
            if let Some(item) = items.get_mut(at) {
                *item = Value::Null;
            }
        }
        Some(BadDay::NullKey) => {
            if let Some(date) = items.get_mut(at).and_then(|i| i.get_mut("date")) {
                *date = Value::Null;
            }
        }
        _ => {}
    }
}

/// A bulk item as its target's mode serves it: left out (`None`) under `quirk-empty`,
/// `null` under `quirk-null-item`, with `key` (the field naming the target, `target`
/// or `url`) null under `quirk-null-key`; as built otherwise.
pub(super) fn shape_bulk_item(target: &str, key: &str, mut item: Value) -> Option<Value> {
    match BadDay::of(target) {
        Some(BadDay::Empty) => None,
        Some(BadDay::NullItem) => Some(Value::Null),
        Some(BadDay::NullKey) => {
            if let Some(v) = item.get_mut(key) {
                *v = Value::Null;
            }
            Some(item)
        }
        _ => Some(item),
    }
}
