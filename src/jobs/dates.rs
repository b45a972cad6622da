//! The API's date rules over a collection's date parameters: no given date in the
//! future, `date_from` not before the endpoint's first day of data nor outside its
//! one-year window, `date_from` not after `date_to`. Checked when a job file loads
//! (each broken rule a problem, an absolute `date_from` about to age out a warning) and
//! again on a later day for a request ([`check_request_dates`]).

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate};

use super::params::{self, DateSpec, ParamValue, format_date};
use super::report::Ctx;
use crate::api::endpoint::{EarliestDate, Endpoint, ParamKind};

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
pub(super) fn check_dates(
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
                let d = DateSpec::parse(s).map_err(|_| {
                    format!(
                        "{} `{}` is not a yyyy-mm-dd date",
                        p.name,
                        crate::words::shown(s)
                    )
                })?;
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
