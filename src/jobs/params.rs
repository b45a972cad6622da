//! Endpoint parameters as a job file sets them, and the date expressions they may use.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Duration, Months, NaiveDate};

use crate::api::endpoint::{Endpoint, ParamDefault, ParamKind, ParamSpec};
use crate::words::shown;

/// The parameters a collection's job file set, by name (only those; endpoint defaults
/// are added by [`crate::jobs::Collection::request_params`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params(pub BTreeMap<String, ParamValue>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One parameter value, already checked against the endpoint's [`ParamSpec`].
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Str(String),
    Date(DateSpec),
    /// An array in the API's filter syntax (or `order_by`, `exclude_targets`, a
    /// `custom_mode` table), passed through as written.
    Filters(serde_json::Value),
}

impl ParamValue {
    /// The JSON sent to the API, with dates resolved against `today`.
    pub fn to_json(&self, today: NaiveDate) -> serde_json::Value {
        match self {
            ParamValue::Bool(b) => serde_json::Value::Bool(*b),
            ParamValue::Int(i) => serde_json::Value::from(*i),
            ParamValue::Str(s) => serde_json::Value::String(s.clone()),
            ParamValue::Date(d) => serde_json::Value::String(format_date(d.resolve(today))),
            ParamValue::Filters(v) => v.clone(),
        }
    }
}

/// A date as a job file writes it: `today`, a relative date (`-30d`, `-12w`, `-6m`,
/// `-1y`) or an absolute `yyyy-mm-dd`. Relative dates are resolved when a call is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DateSpec {
    Today,
    Relative { amount: u32, unit: DateUnit },
    Absolute(NaiveDate),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DateUnit {
    Day,
    Week,
    Month,
    Year,
}

impl DateSpec {
    pub fn parse(s: &str) -> Result<DateSpec, String> {
        let t = s.trim();
        let bad = || {
            format!(
                "`{}` is not a date: write yyyy-mm-dd, `today`, or a date relative to today like `-30d`, `-12w`, `-6m` or `-1y`",
                shown(s)
            )
        };
        if t.eq_ignore_ascii_case("today") {
            return Ok(DateSpec::Today);
        }
        if let Some(rest) = t.strip_prefix('-') {
            let (digits, unit) = rest.split_at(rest.len().saturating_sub(1));
            let unit = match unit {
                "d" | "D" => DateUnit::Day,
                "w" | "W" => DateUnit::Week,
                "m" | "M" => DateUnit::Month,
                "y" | "Y" => DateUnit::Year,
                _ => return Err(bad()),
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let amount: u32 = digits.parse().map_err(|_| bad())?;
            return Ok(DateSpec::Relative { amount, unit });
        }
        if t.len() == 10
            && let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        {
            return Ok(DateSpec::Absolute(d));
        }
        Err(bad())
    }

    /// The calendar date this spec names on `today`. Months and years step back by
    /// calendar months, clamping to the end of a shorter month (`-1m` from 2026-03-31 is
    /// 2026-02-28).
    pub fn resolve(&self, today: NaiveDate) -> NaiveDate {
        match *self {
            DateSpec::Today => today,
            DateSpec::Absolute(d) => d,
            DateSpec::Relative { amount, unit } => {
                let back = match unit {
                    DateUnit::Day => today.checked_sub_signed(Duration::days(i64::from(amount))),
                    DateUnit::Week => {
                        today.checked_sub_signed(Duration::days(7 * i64::from(amount)))
                    }
                    DateUnit::Month => today.checked_sub_months(Months::new(amount)),
                    DateUnit::Year => amount
                        .checked_mul(12)
                        .and_then(|m| today.checked_sub_months(Months::new(m))),
                };
                back.unwrap_or(NaiveDate::MIN)
            }
        }
    }

    pub fn is_relative(&self) -> bool {
        !matches!(self, DateSpec::Absolute(_))
    }
}

impl fmt::Display for DateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateSpec::Today => f.write_str("today"),
            DateSpec::Absolute(d) => f.write_str(&format_date(*d)),
            DateSpec::Relative { amount, unit } => {
                let u = match unit {
                    DateUnit::Day => 'd',
                    DateUnit::Week => 'w',
                    DateUnit::Month => 'm',
                    DateUnit::Year => 'y',
                };
                write!(f, "-{amount}{u}")
            }
        }
    }
}

pub(crate) fn format_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The value of a default, as it would be sent.
pub(crate) fn default_value(default: &ParamDefault) -> ParamValue {
    match *default {
        ParamDefault::Bool(b) => ParamValue::Bool(b),
        ParamDefault::Int(i) => ParamValue::Int(i),
        ParamDefault::Str(s) => ParamValue::Str(s.to_string()),
        ParamDefault::Date(expr) => ParamValue::Date(
            DateSpec::parse(expr).expect("endpoint table defaults are valid date expressions"),
        ),
    }
}

/// Checks one parameter a job file set, returning its value or why it is wrong.
pub(crate) fn check_param(
    endpoint: Endpoint,
    name: &str,
    value: &toml::Value,
) -> Result<ParamValue, String> {
    let Some(spec) = endpoint.param(name) else {
        return Err(unknown_param(endpoint, name));
    };
    if name == "search_after_token" {
        return Err(
            "set by linkledger as it pages a listing (from each answer), not by a job file".into(),
        );
    }
    check_value(endpoint, spec, value)
}

fn unknown_param(endpoint: Endpoint, name: &str) -> String {
    let names: Vec<&str> = endpoint.params().iter().map(|p| p.name).collect();
    let mut why = format!("{endpoint} takes no parameter `{}`", shown(name));
    if let Some(s) = crate::words::suggest(name, names.iter().copied()) {
        why.push_str(&format!(" (did you mean `{s}`?)"));
    } else if names.is_empty() {
        why.push_str(&format!("; {endpoint} takes no parameters"));
    } else {
        why.push_str(&format!("; it takes {}", names.join(", ")));
    }
    why
}

fn check_value(
    endpoint: Endpoint,
    spec: &ParamSpec,
    value: &toml::Value,
) -> Result<ParamValue, String> {
    let found = || type_name(value);
    match spec.kind {
        ParamKind::Bool => match value {
            toml::Value::Boolean(b) => Ok(ParamValue::Bool(*b)),
            _ => Err(format!("expected a boolean, found {}", found())),
        },
        ParamKind::Int { min, max } => match value {
            toml::Value::Integer(i) if (min..=max).contains(i) => Ok(ParamValue::Int(*i)),
            toml::Value::Integer(i) => Err(format!("must be between {min} and {max}, found {i}")),
            _ => Err(format!("expected an integer, found {}", found())),
        },
        ParamKind::Choice(choices) => match value {
            toml::Value::String(s) if choices.contains(&s.as_str()) => {
                Ok(ParamValue::Str(s.clone()))
            }
            toml::Value::String(s) => {
                let hint = crate::words::suggest(s, choices.iter().copied())
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                Err(format!(
                    "must be one of {}; found `{}`{hint}",
                    choices.join(", "),
                    shown(s)
                ))
            }
            _ => Err(format!(
                "expected a string (one of {}), found {}",
                choices.join(", "),
                found()
            )),
        },
        ParamKind::Date => match value {
            toml::Value::String(s) => DateSpec::parse(s).map(ParamValue::Date),
            // An unquoted TOML local date (`date_from = 2024-01-01`).
            toml::Value::Datetime(dt) if dt.date.is_some() && dt.time.is_none() => {
                DateSpec::parse(&dt.to_string()).map(ParamValue::Date)
            }
            _ => Err(format!(
                "expected a date (yyyy-mm-dd, `today` or like `-30d`), found {}",
                found()
            )),
        },
        ParamKind::Text { max_chars } => match value {
            toml::Value::String(s) if s.chars().count() <= max_chars => {
                Ok(ParamValue::Str(s.clone()))
            }
            toml::Value::String(s) => Err(format!(
                "must be at most {max_chars} characters, found {}",
                s.chars().count()
            )),
            _ => Err(format!("expected a string, found {}", found())),
        },
        ParamKind::Filters => match value {
            toml::Value::Array(_) => {
                let json = to_json(value)?;
                // `backlinks_filters` filter the backlinks an aggregate counts: the
                // backlinks endpoint's operators; `filters` the endpoint's own.
                let by = if spec.name == "backlinks_filters" {
                    Endpoint::Backlinks
                } else {
                    endpoint
                };
                crate::api::filters::Filter::parse(by, &json).map_err(|e| e.to_string())?;
                Ok(ParamValue::Filters(json))
            }
            _ => Err(format!(
                "expected an array in the API's filter syntax (like [\"dofollow\", \"=\", true]), found {}",
                found()
            )),
        },
        ParamKind::OrderBy => match value {
            toml::Value::Array(_) => {
                let json = to_json(value)?;
                crate::api::filters::parse_order_by(&json).map_err(|e| e.to_string())?;
                Ok(ParamValue::Filters(json))
            }
            _ => Err(format!(
                "expected an array of sorting rules (like [\"rank,desc\"]), found {}",
                found()
            )),
        },
        ParamKind::TextList { max_items } => match value {
            toml::Value::Array(items)
                if items.len() <= max_items && items.iter().all(toml::Value::is_str) =>
            {
                Ok(ParamValue::Filters(to_json(value)?))
            }
            toml::Value::Array(items) if items.len() > max_items => Err(format!(
                "at most {max_items} entries, found {}",
                items.len()
            )),
            _ => Err(format!("expected an array of strings, found {}", found())),
        },
        ParamKind::Object => match value {
            toml::Value::Table(_) => Ok(ParamValue::Filters(to_json(value)?)),
            _ => Err(format!("expected a table, found {}", found())),
        },
    }
}

/// A TOML value's kind as a message names it.
pub(crate) fn type_name(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "string",
        toml::Value::Integer(_) => "integer",
        toml::Value::Float(_) => "float",
        toml::Value::Boolean(_) => "boolean",
        toml::Value::Datetime(_) => "date-time",
        toml::Value::Array(_) => "array",
        toml::Value::Table(_) => "table",
    }
}

fn to_json(value: &toml::Value) -> Result<serde_json::Value, String> {
    Ok(match value {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("{f} cannot be sent as JSON"))?,
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(dt) => serde_json::Value::String(dt.to_string()),
        toml::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(to_json).collect::<Result<Vec<_>, _>>()?)
        }
        toml::Value::Table(t) => serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
                .collect::<Result<serde_json::Map<_, _>, String>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn date_specs_parse() {
        assert_eq!(DateSpec::parse("today"), Ok(DateSpec::Today));
        assert_eq!(
            DateSpec::parse("-30d"),
            Ok(DateSpec::Relative {
                amount: 30,
                unit: DateUnit::Day
            })
        );
        assert_eq!(
            DateSpec::parse("-12w"),
            Ok(DateSpec::Relative {
                amount: 12,
                unit: DateUnit::Week
            })
        );
        assert_eq!(
            DateSpec::parse("-6m"),
            Ok(DateSpec::Relative {
                amount: 6,
                unit: DateUnit::Month
            })
        );
        assert_eq!(
            DateSpec::parse("-1y"),
            Ok(DateSpec::Relative {
                amount: 1,
                unit: DateUnit::Year
            })
        );
        assert_eq!(
            DateSpec::parse("2024-01-31"),
            Ok(DateSpec::Absolute(d("2024-01-31")))
        );
        for bad in [
            "",
            "yesterday",
            "-d",
            "-3",
            "-3x",
            "+3d",
            "30d",
            "2024-02-30",
            "2024-1-1",
            "-1.5m",
        ] {
            let err = DateSpec::parse(bad).unwrap_err();
            assert!(err.contains("is not a date"), "{bad}: {err}");
        }
    }

    #[test]
    fn date_specs_display_as_written() {
        for s in ["today", "-30d", "-12w", "-6m", "-1y", "2024-01-31"] {
            assert_eq!(DateSpec::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn relative_dates_resolve_on_the_calendar() {
        let today = d("2026-03-31");
        let r = |s: &str| DateSpec::parse(s).unwrap().resolve(today);
        assert_eq!(r("today"), today);
        assert_eq!(r("-1m"), d("2026-02-28"));
        assert_eq!(r("-1y"), d("2025-03-31"));
        assert_eq!(r("-30d"), d("2026-03-01"));
        assert_eq!(r("-2w"), d("2026-03-17"));
        assert_eq!(r("-13m"), d("2025-02-28"));
        assert_eq!(r("2024-01-31"), d("2024-01-31"));
        assert_eq!(
            DateSpec::parse("-1y").unwrap().resolve(d("2024-02-29")),
            d("2023-02-28")
        );
        assert_eq!(DateSpec::parse("-0d").unwrap().resolve(today), today);
    }

    #[test]
    fn parameter_values_are_checked_against_the_endpoint() {
        let v = |s: &str| -> toml::Value {
            let t: toml::Table = format!("v = {s}").parse().unwrap();
            t["v"].clone()
        };
        let e = Endpoint::Summary;
        assert_eq!(
            check_param(e, "include_subdomains", &v("false")),
            Ok(ParamValue::Bool(false))
        );
        assert_eq!(
            check_param(e, "include_subdomains", &v("\"yes\"")).unwrap_err(),
            "expected a boolean, found string"
        );
        assert_eq!(
            check_param(e, "internal_list_limit", &v("5000")).unwrap_err(),
            "must be between 1 and 1000, found 5000"
        );
        assert_eq!(
            check_param(e, "internal_list_limit", &v("100")),
            Ok(ParamValue::Int(100))
        );
        assert_eq!(
            check_param(e, "backlinks_status_type", &v("\"dead\"")).unwrap_err(),
            "must be one of all, live, lost; found `dead`"
        );
        assert_eq!(
            check_param(e, "include_subdomain", &v("true")).unwrap_err(),
            "summary takes no parameter `include_subdomain` (did you mean `include_subdomains`?)"
        );
        assert_eq!(
            check_param(Endpoint::BulkBacklinks, "rank_scale", &v("\"one_hundred\"")).unwrap_err(),
            "bulk_backlinks takes no parameter `rank_scale`; it takes tag"
        );
        // `tag`: any endpoint, a string of up to 255 characters.
        assert_eq!(
            check_param(Endpoint::BulkBacklinks, "tag", &v("\"weekly report\"")),
            Ok(ParamValue::Str("weekly report".into()))
        );
        let long = format!("\"{}\"", "é".repeat(255));
        assert!(check_param(Endpoint::History, "tag", &v(&long)).is_ok());
        let too_long = format!("\"{}\"", "x".repeat(256));
        assert_eq!(
            check_param(Endpoint::Summary, "tag", &v(&too_long)).unwrap_err(),
            "must be at most 255 characters, found 256"
        );
        assert_eq!(
            check_param(Endpoint::Summary, "tag", &v("7")).unwrap_err(),
            "expected a string, found integer"
        );
        let filters = check_param(
            e,
            "backlinks_filters",
            &v("[[\"dofollow\", \"=\", true], \"and\", [\"rank\", \">\", 1.5]]"),
        )
        .unwrap();
        assert_eq!(
            filters,
            ParamValue::Filters(serde_json::json!([
                ["dofollow", "=", true],
                "and",
                ["rank", ">", 1.5]
            ]))
        );
        assert!(
            check_param(e, "backlinks_filters", &v("\"dofollow = true\""))
                .unwrap_err()
                .starts_with("expected an array")
        );
        let h = Endpoint::History;
        assert_eq!(
            check_param(h, "date_from", &v("2024-01-01")),
            Ok(ParamValue::Date(DateSpec::Absolute(d("2024-01-01"))))
        );
        assert!(check_param(h, "date_from", &v("\"soon\"")).is_err());
        assert!(check_param(h, "date_from", &v("3")).is_err());
    }
}
