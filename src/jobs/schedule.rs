//! Cron schedules of collections: standard 5-field crontab syntax (or a nickname such as
//! `@daily`), evaluated in a job's time zone, else UTC.
//!
//! Every method takes and returns instants (`DateTime<Utc>`); no method reads the clock,
//! so callers (and tests) pass the instant they mean.
//!
//! Crontab semantics: Sunday is both 0 and 7; when both day-of-month and day-of-week are
//! restricted, a day matching either fires (they are OR'ed). Across a daylight saving
//! change a fixed-time schedule fires once: a wall clock time skipped by the spring-forward
//! gap fires at the first instant after the gap, and one repeated by the fall-back overlap
//! fires at its earlier instant only.

use std::fmt;

use crate::words::shown;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::{Cron, Direction};

/// The nicknames crontab accepts (except `@reboot`, which has no meaning here) and the
/// 5-field expression each stands for.
const NICKNAMES: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

const FIELD_NAMES: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
const FIELD_RANGES: [&str; 5] = [
    "0-59",
    "0-23",
    "1-31 or L",
    "1-12 or JAN-DEC",
    "0-7 or SUN-SAT (0 and 7 are Sunday)",
];

/// A parsed cron schedule with the time zone it is evaluated in.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    tz: Option<Tz>,
    text: String,
}

impl Schedule {
    /// Parses a 5-field crontab expression or a nickname. The error says what is wrong,
    /// naming the field when one field is at fault.
    pub fn parse(expr: &str, tz: Option<Tz>) -> Result<Schedule, String> {
        let text = expr.trim();
        if text.is_empty() {
            return Err("empty schedule: write a 5-field cron expression like `0 6 * * *` or a nickname like `@daily`".into());
        }
        let expanded = if text.starts_with('@') {
            NICKNAMES
                .iter()
                .find(|(nick, _)| nick.eq_ignore_ascii_case(text))
                .map(|(_, e)| *e)
                .ok_or_else(|| {
                    let known: Vec<&str> = NICKNAMES.iter().map(|(n, _)| *n).collect();
                    let hint =
                        crate::words::suggest(&text.to_ascii_lowercase(), known.iter().copied())
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default();
                    format!(
                        "unknown nickname `{}`{hint}; nicknames are: {}",
                        shown(text),
                        known.join(", ")
                    )
                })?
        } else {
            text
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            let extra = match fields.len() {
                6 | 7 => " (seconds and years are not supported)",
                _ => "",
            };
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}{extra}",
                fields.len()
            ));
        }
        let parser = parser();
        // Check each field alone first, so that the error names the field at fault.
        for (i, field) in fields.iter().enumerate() {
            let mut alone = ["*"; 5];
            alone[i] = field;
            if let Err(e) = parser.parse(&alone.join(" ")) {
                return Err(format!(
                    "{} field `{}` is invalid: {} (it takes {}, with `*`, `,`, `-` and `/`)",
                    FIELD_NAMES[i],
                    shown(field),
                    describe_error(&e),
                    FIELD_RANGES[i]
                ));
            }
        }
        let cron = parser.parse(&fields.join(" ")).map_err(|e| {
            format!(
                "invalid cron expression `{}`: {}",
                shown(text),
                describe_error(&e)
            )
        })?;
        let schedule = Schedule {
            cron,
            tz,
            text: text.to_string(),
        };
        // A pattern such as `0 0 30 2 *` parses but never fires.
        let probe = Utc
            .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
            .single()
            .expect("valid instant");
        if schedule.next_after(probe).is_none() {
            return Err(format!("`{}` never fires", shown(text)));
        }
        Ok(schedule)
    }

    /// The expression as written in the job file.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The time zone the schedule is evaluated in; `None` is UTC.
    pub fn timezone(&self) -> Option<Tz> {
        self.tz
    }

    /// The first fire strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.tz {
            Some(tz) => self
                .cron
                .find_next_occurrence(&t.with_timezone(&tz), false)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            None => self.cron.find_next_occurrence(&t, false).ok(),
        }
    }

    /// The most recent fire at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.tz {
            Some(tz) => self
                .cron
                .find_previous_occurrence(&t.with_timezone(&tz), true)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            None => self.cron.find_previous_occurrence(&t, true).ok(),
        }
    }

    /// The fires in `(after, until]`, oldest first, at most `limit` of them.
    pub fn fires_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        if limit == 0 || until <= after {
            return Vec::new();
        }
        match self.tz {
            Some(tz) => self
                .cron
                .iter_after(after.with_timezone(&tz))
                .map(|d| d.with_timezone(&Utc))
                .take_while(|d| *d <= until)
                .take(limit)
                .collect(),
            None => self
                .cron
                .iter_after(after)
                .take_while(|d| *d <= until)
                .take(limit)
                .collect(),
        }
    }

    /// The most recent fires at or before `until` and strictly after `after`, newest
    /// first, at most `limit` of them (walks backwards, so it stays cheap for a
    /// frequent schedule over a long window).
    pub fn latest_fires(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        if limit == 0 || until <= after {
            return Vec::new();
        }
        let start_inclusive = |t: DateTime<Utc>| self.latest_at_or_before(t);
        let mut out = Vec::new();
        let mut cursor = start_inclusive(until);
        while let Some(fire) = cursor {
            if fire <= after || out.len() == limit {
                break;
            }
            out.push(fire);
            cursor = match self.tz {
                Some(tz) => self
                    .cron
                    .iter_from(fire.with_timezone(&tz), Direction::Backward)
                    .nth(1)
                    .map(|d| d.with_timezone(&Utc)),
                None => self.cron.iter_from(fire, Direction::Backward).nth(1),
            };
        }
        out
    }
}

impl Schedule {
    /// The longest time between two consecutive fires after `from`, over the next
    /// [`GAP_HORIZON_DAYS`] days (at most [`GAP_FIRES`] fires): how long a target of
    /// the collection may go without a new answer while every fire succeeds (a
    /// weekday schedule: the weekend's three days; a daily one across a daylight saving
    /// change: 25 hours). `None` when fewer than two fires fall in that horizon.
    pub fn longest_gap(&self, from: DateTime<Utc>) -> Option<chrono::TimeDelta> {
        let fires = self.fires_between(
            from,
            from + chrono::TimeDelta::days(GAP_HORIZON_DAYS),
            GAP_FIRES,
        );
        fires.windows(2).map(|w| w[1] - w[0]).max()
    }
}

/// How far ahead [`Schedule::longest_gap`] looks: over two years, so that a yearly
/// schedule has two fires.
pub const GAP_HORIZON_DAYS: i64 = 800;
/// The most fires [`Schedule::longest_gap`] compares (a minutely schedule's first
/// days).
pub const GAP_FIRES: usize = 2000;

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        if let Some(tz) = self.tz {
            write!(f, " ({tz})")?;
        }
        Ok(())
    }
}

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        // crontab: day-of-month and day-of-week are OR'ed when both are restricted.
        .dom_and_dow(false)
        .build()
}

/// croner's message without its "Component error: " style prefix.
///
/// croner's messages quote the part at fault, so what they say is cut and escaped
/// like any value a job file wrote ([`shown`]).
fn describe_error(e: &croner::errors::CronError) -> String {
    let s = e.to_string();
    for prefix in [
        "Component error: ",
        "Invalid pattern: ",
        "Pattern contains illegal characters: ",
    ] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return shown(&lower_first(rest.trim_end_matches('.')));
        }
    }
    shown(&lower_first(s.trim_end_matches('.')))
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
