//! The account's own books, as `appendix/user_data` reports them: what was spent and
//! how many requests were made this UTC day and this minute (in total, for the
//! Backlinks API and per function), and the account's own limits. The day is the
//! sandbox's ("today", [`super::SandboxOptions::today`] or moved by
//! [`super::Sandbox::set_today`]): its figures start again from zero when that day
//! changes, as the API's do at 00:00 UTC. The minute is the wall clock's.
//!
//! "Another consumer" ([`super::Sandbox::other_consumer`], `POST /sandbox/other-consumer`)
//! spends from the same account: its money and requests count in the statistics and
//! the balance, never in [`super::Stats`] (which is what this sandbox served).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::money::Usd;

/// What one period (a day or a minute) counts: money and requests, in total, for the
/// Backlinks API, and per Backlinks function.
#[derive(Clone, Debug, Default)]
pub(super) struct Tally {
    pub(super) money_total: Usd,
    pub(super) money_backlinks: Usd,
    pub(super) money_by_function: BTreeMap<String, Usd>,
    pub(super) requests_total: u64,
    pub(super) requests_backlinks: u64,
    pub(super) requests_by_function: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, api: &str, function: &str, cost: Usd, requests: u64) {
        self.money_total += cost;
        self.requests_total += requests;
        if api == "backlinks" {
            self.money_backlinks += cost;
            self.requests_backlinks += requests;
            *self
                .money_by_function
                .entry(function.to_string())
                .or_default() += cost;
            *self
                .requests_by_function
                .entry(function.to_string())
                .or_default() += requests;
        }
    }

    /// Money, as the vendor's client models it (`AppendixDayStatisticsDataInfo`):
    /// `{"value": period, "total": .., "total_backlinks": .., "backlinks": {function:
    /// {"live": ..}}}`: per function, an `AppendixInfo` of its call kinds (`task_post`,
    /// `task_get`, `tasks_ready`, `live`), of which this API's live calls are `live`.
    fn money_json(&self, period: &str) -> Value {
        json!({
            "value": period,
            "total": self.money_total,
            "total_backlinks": self.money_backlinks,
            "backlinks": by_kind(&self.money_by_function),
        })
    }

    /// The same shape, request counts.
    fn requests_json(&self, period: &str) -> Value {
        json!({
            "value": period,
            "total": self.requests_total,
            "total_backlinks": self.requests_backlinks,
            "backlinks": by_kind(&self.requests_by_function),
        })
    }
}

/// `{function: {"live": figure}}`: every call here is a live one.
fn by_kind<T: serde::Serialize>(by_function: &BTreeMap<String, T>) -> Value {
    by_function
        .iter()
        .map(|(f, v)| (f.clone(), json!({ "live": v })))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The account's books: the current day's and minute's tallies, and what other
/// consumers spent in all.
#[derive(Clone, Debug, Default)]
pub(super) struct Book {
    /// The UTC day `day` counts.
    pub(super) day_of: Option<NaiveDate>,
    pub(super) day: Tally,
    /// The minute (seconds since the epoch / 60) `minute` counts.
    pub(super) minute_of: i64,
    pub(super) minute: Tally,
    /// What other consumers spent since the start (taken from the balance too).
    pub(super) others_usd: Usd,
}

/// The current minute of the wall clock.
fn this_minute() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(60)
}

impl Book {
    /// Starts the periods again when `today` or the minute moved on.
    pub(super) fn roll(&mut self, today: NaiveDate) {
        if self.day_of != Some(today) {
            self.day_of = Some(today);
            self.day = Tally::default();
        }
        let minute = this_minute();
        if self.minute_of != minute {
            self.minute_of = minute;
            self.minute = Tally::default();
        }
    }

    /// Counts `requests` requests of `api`/`function` that cost `cost` today.
    pub(super) fn count(
        &mut self,
        today: NaiveDate,
        api: &str,
        function: &str,
        cost: Usd,
        requests: u64,
    ) {
        self.roll(today);
        self.day.add(api, function, cost, requests);
        self.minute.add(api, function, cost, requests);
    }
}

/// The account's own limits, as the dashboard sets them; `None` is no limit (the API
/// reports 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountLimits {
    /// The most the account may spend in a UTC day (`money.limits.day`); beyond it
    /// every call is refused with 40203 until the day ends.
    pub money_day: Option<Usd>,
    /// The most it may spend in a minute (`money.limits.minute`); beyond it, 40203 too.
    pub money_minute: Option<Usd>,
    /// Requests it may start in a minute (`rates.limits.minute`), when set here, in
    /// place of [`crate::sandbox::SandboxOptions::max_per_minute`]; beyond it, 40202.
    pub rate_minute: Option<u32>,
    /// Requests it may make in a UTC day (`rates.limits.day`); beyond it, 40202 (the
    /// sandbox's choice: the documents give no code for it) until the day ends.
    pub rate_day: Option<u64>,
}

/// What another consumer of the account spent, as `POST /sandbox/other-consumer`
/// takes it: `{"usd": "1.5", "requests": 20, "api": "backlinks", "function": "summary"}`
/// (`api` defaults to `backlinks`, `function` to `summary`, `requests` to 0).
#[derive(Clone, Debug, Deserialize)]
pub struct OtherConsumer {
    pub usd: Usd,
    #[serde(default)]
    pub requests: u64,
    #[serde(default = "backlinks")]
    pub api: String,
    #[serde(default = "summary")]
    pub function: String,
}

fn backlinks() -> String {
    "backlinks".into()
}

fn summary() -> String {
    "summary".into()
}

/// The `money` and `rates` parts of `user_data` from `book` (rolled to today first by
/// the caller) and the limits.
pub(super) fn user_data_parts(
    book: &Book,
    limits: &AccountLimits,
    max_per_minute: u32,
) -> (Value, Value) {
    let zero_or = |l: Option<Usd>| l.unwrap_or(Usd::ZERO);
    // The periods' `value`: the day as yyyy-MM-dd, the minute as yyyy-MM-dd HH:mm.
    let day = book.day_of.map(|d| d.to_string()).unwrap_or_default();
    let minute = chrono::DateTime::from_timestamp(book.minute_of * 60, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default();
    let money = json!({
        "limits": {
            "day": {"total": zero_or(limits.money_day)},
            "minute": {"total": zero_or(limits.money_minute)},
        },
        "statistics": {
            "day": book.day.money_json(&day),
            "minute": book.minute.money_json(&minute),
        },
    });
    let rates = json!({
        "limits": {
            "day": {"total": limits.rate_day.unwrap_or(0)},
            "minute": {"total": max_per_minute},
        },
        "statistics": {
            "day": book.day.requests_json(&day),
            "minute": book.minute.requests_json(&minute),
        },
    });
    (money, rates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(s: &str) -> Usd {
        s.parse().unwrap()
    }

    #[test]
    fn the_day_starts_again_from_zero_when_the_day_changes() {
        let d1 = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let d2 = d1.succ_opt().unwrap();
        let mut book = Book::default();
        book.count(d1, "backlinks", "summary", usd("0.02"), 1);
        book.count(d1, "backlinks", "history", usd("0.1"), 1);
        book.count(d1, "serp", "organic", usd("1"), 3);
        assert_eq!(book.day.money_total, usd("1.12"));
        assert_eq!(book.day.money_backlinks, usd("0.12"));
        assert_eq!(book.day.requests_total, 5);
        assert_eq!(book.day.requests_by_function["history"], 1);
        book.roll(d2);
        assert_eq!(book.day.money_total, Usd::ZERO);
        assert!(book.day.money_by_function.is_empty());
    }
}
