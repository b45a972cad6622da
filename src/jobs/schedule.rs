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
                        "unknown nickname `{text}`{hint}; nicknames are: {}",
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
                    "{} field `{field}` is invalid: {} (it takes {}, with `*`, `,`, `-` and `/`)",
                    FIELD_NAMES[i],
                    describe_error(&e),
                    FIELD_RANGES[i]
                ));
            }
        }
        let cron = parser
            .parse(&fields.join(" "))
            .map_err(|e| format!("invalid cron expression `{text}`: {}", describe_error(&e)))?;
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
            return Err(format!("`{text}` never fires"));
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
fn describe_error(e: &croner::errors::CronError) -> String {
    let s = e.to_string();
    for prefix in [
        "Component error: ",
        "Invalid pattern: ",
        "Pattern contains illegal characters: ",
    ] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return lower_first(rest.trim_end_matches('.'));
        }
    }
    lower_first(s.trim_end_matches('.'))
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap()
    }

    fn berlin() -> Option<Tz> {
        Some(chrono_tz::Europe::Berlin)
    }

    #[test]
    fn a_daily_six_oclock_line_fires_at_six_utc_every_day() {
        let s = Schedule::parse("0 6 * * *", None).unwrap();
        assert_eq!(
            s.next_after(utc(2026, 1, 1, 5, 0)),
            Some(utc(2026, 1, 1, 6, 0))
        );
        // Strictly after.
        assert_eq!(
            s.next_after(utc(2026, 1, 1, 6, 0)),
            Some(utc(2026, 1, 2, 6, 0))
        );
        assert_eq!(
            s.latest_at_or_before(utc(2026, 1, 1, 6, 0)),
            Some(utc(2026, 1, 1, 6, 0))
        );
        assert_eq!(
            s.latest_at_or_before(utc(2026, 1, 1, 5, 59)),
            Some(utc(2025, 12, 31, 6, 0))
        );
        assert_eq!(s.as_str(), "0 6 * * *");
        assert_eq!(s.timezone(), None);
    }

    #[test]
    fn sub_second_instants_are_handled() {
        let s = Schedule::parse("0 6 * * *", None).unwrap();
        let t = utc(2026, 1, 1, 6, 0) + chrono::Duration::milliseconds(500);
        assert_eq!(s.latest_at_or_before(t), Some(utc(2026, 1, 1, 6, 0)));
        assert_eq!(s.next_after(t), Some(utc(2026, 1, 2, 6, 0)));
    }

    #[test]
    fn nicknames_like_daily_and_hourly_mean_what_crontab_says() {
        let s = Schedule::parse("@daily", None).unwrap();
        assert_eq!(
            s.next_after(utc(2026, 5, 5, 13, 0)),
            Some(utc(2026, 5, 6, 0, 0))
        );
        let m = Schedule::parse("@midnight", None).unwrap();
        assert_eq!(
            m.next_after(utc(2026, 5, 5, 13, 0)),
            Some(utc(2026, 5, 6, 0, 0))
        );
        let h = Schedule::parse("@hourly", None).unwrap();
        assert_eq!(
            h.next_after(utc(2026, 5, 5, 13, 0)),
            Some(utc(2026, 5, 5, 14, 0))
        );
        let w = Schedule::parse("@weekly", None).unwrap();
        // 2026-05-10 is a Sunday.
        assert_eq!(
            w.next_after(utc(2026, 5, 5, 13, 0)),
            Some(utc(2026, 5, 10, 0, 0))
        );
        let mo = Schedule::parse("@monthly", None).unwrap();
        assert_eq!(
            mo.next_after(utc(2026, 5, 5, 13, 0)),
            Some(utc(2026, 6, 1, 0, 0))
        );
        for y in ["@yearly", "@annually", "@YEARLY"] {
            let y = Schedule::parse(y, None).unwrap();
            assert_eq!(
                y.next_after(utc(2026, 5, 5, 13, 0)),
                Some(utc(2027, 1, 1, 0, 0))
            );
        }
        let err = Schedule::parse("@dayly", None).unwrap_err();
        assert!(err.contains("did you mean `@daily`"), "{err}");
        assert!(Schedule::parse("@reboot", None).is_err());
    }

    #[test]
    fn a_step_of_fifteen_minutes_fires_four_times_an_hour() {
        let s = Schedule::parse("*/15 * * * *", None).unwrap();
        let fires = s.fires_between(utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 1, 0), 100);
        assert_eq!(
            fires,
            vec![
                utc(2026, 1, 1, 0, 15),
                utc(2026, 1, 1, 0, 30),
                utc(2026, 1, 1, 0, 45),
                utc(2026, 1, 1, 1, 0)
            ]
        );
        assert_eq!(
            s.fires_between(utc(2026, 1, 1, 0, 0), utc(2026, 1, 2, 0, 0), 2)
                .len(),
            2
        );
        assert!(
            s.fires_between(utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 0, 0), 10)
                .is_empty()
        );
        assert_eq!(
            s.latest_at_or_before(utc(2026, 1, 1, 0, 14)),
            Some(utc(2026, 1, 1, 0, 0))
        );
    }

    #[test]
    fn latest_fires_are_found_walking_backwards_newest_first() {
        let s = Schedule::parse("*/15 * * * *", None).unwrap();
        let fires = s.latest_fires(utc(2020, 1, 1, 0, 0), utc(2026, 1, 1, 1, 0), 3);
        assert_eq!(
            fires,
            vec![
                utc(2026, 1, 1, 1, 0),
                utc(2026, 1, 1, 0, 45),
                utc(2026, 1, 1, 0, 30)
            ]
        );
        let fires = s.latest_fires(utc(2026, 1, 1, 0, 30), utc(2026, 1, 1, 1, 0), 10);
        assert_eq!(fires, vec![utc(2026, 1, 1, 1, 0), utc(2026, 1, 1, 0, 45)]);
    }

    #[test]
    fn the_31st_skips_short_months() {
        let s = Schedule::parse("0 0 31 * *", None).unwrap();
        let fires = s.fires_between(utc(2026, 1, 1, 0, 0), utc(2026, 12, 31, 23, 0), 100);
        let months: Vec<u32> = fires.iter().map(chrono::Datelike::month).collect();
        assert_eq!(months, vec![1, 3, 5, 7, 8, 10, 12]);
    }

    #[test]
    fn l_fires_on_the_last_day_of_every_month() {
        let s = Schedule::parse("0 0 L * *", None).unwrap();
        assert_eq!(
            s.next_after(utc(2026, 2, 1, 0, 0)),
            Some(utc(2026, 2, 28, 0, 0))
        );
        assert_eq!(
            s.next_after(utc(2028, 2, 1, 0, 0)),
            Some(utc(2028, 2, 29, 0, 0))
        );
        assert_eq!(
            s.next_after(utc(2026, 4, 1, 0, 0)),
            Some(utc(2026, 4, 30, 0, 0))
        );
    }

    #[test]
    fn a_0230_berlin_job_fires_once_on_the_spring_forward_day() {
        let s = Schedule::parse("30 2 * * *", berlin()).unwrap();
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let fires = s.fires_between(utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 12, 0), 10);
        assert_eq!(fires.len(), 1, "{fires:?}");
        // 03:00 CEST = 01:00 UTC.
        assert_eq!(fires[0], utc(2026, 3, 29, 1, 0));
        // The day before and after: 02:30 local.
        assert_eq!(
            s.next_after(utc(2026, 3, 27, 12, 0)),
            Some(utc(2026, 3, 28, 1, 30))
        );
        assert_eq!(
            s.next_after(utc(2026, 3, 29, 12, 0)),
            Some(utc(2026, 3, 30, 0, 30))
        );
        assert_eq!(
            s.latest_at_or_before(utc(2026, 3, 29, 12, 0)),
            Some(utc(2026, 3, 29, 1, 0))
        );
    }

    #[test]
    fn a_0230_berlin_job_fires_once_on_the_fall_back_day() {
        let s = Schedule::parse("30 2 * * *", berlin()).unwrap();
        // 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let fires = s.fires_between(utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 12, 0), 10);
        assert_eq!(fires.len(), 1, "{fires:?}");
        // The earlier 02:30, in CEST = 00:30 UTC.
        assert_eq!(fires[0], utc(2026, 10, 25, 0, 30));
        // Looking back from after the second 02:30 finds the one fire, not the repeat.
        assert_eq!(
            s.latest_at_or_before(utc(2026, 10, 25, 1, 45)),
            Some(utc(2026, 10, 25, 0, 30))
        );
        assert_eq!(
            s.next_after(utc(2026, 10, 25, 0, 30)),
            Some(utc(2026, 10, 26, 1, 30))
        );
        assert_eq!(s.timezone(), berlin());
    }

    #[test]
    fn a_berlin_schedule_fires_at_berlin_local_time() {
        let s = Schedule::parse("0 6 * * *", berlin()).unwrap();
        // Winter: CET = UTC+1; summer: CEST = UTC+2.
        assert_eq!(
            s.next_after(utc(2026, 1, 10, 0, 0)),
            Some(utc(2026, 1, 10, 5, 0))
        );
        assert_eq!(
            s.next_after(utc(2026, 7, 10, 0, 0)),
            Some(utc(2026, 7, 10, 4, 0))
        );
    }

    #[test]
    fn sunday_is_both_0_and_7() {
        let zero = Schedule::parse("0 0 * * 0", None).unwrap();
        let seven = Schedule::parse("0 0 * * 7", None).unwrap();
        let sun = Schedule::parse("0 0 * * SUN", None).unwrap();
        let from = utc(2026, 1, 1, 0, 0);
        let until = utc(2026, 3, 1, 0, 0);
        let a = zero.fires_between(from, until, 100);
        assert_eq!(a.len(), 9);
        assert!(
            a.iter()
                .all(|d| chrono::Datelike::weekday(d) == chrono::Weekday::Sun)
        );
        assert_eq!(a, seven.fires_between(from, until, 100));
        assert_eq!(a, sun.fires_between(from, until, 100));
        // A range ending in 7 includes Sunday.
        let weekend = Schedule::parse("0 0 * * 6-7", None).unwrap();
        assert_eq!(weekend.fires_between(from, until, 100).len(), 18);
    }

    #[test]
    fn day_of_month_and_day_of_week_are_ored() {
        // The 1st of the month, and every Monday.
        let s = Schedule::parse("0 0 1 * 1", None).unwrap();
        let fires = s.fires_between(utc(2026, 1, 31, 0, 0), utc(2026, 2, 28, 0, 0), 100);
        // Feb 2026: Sunday the 1st, Mondays 2, 9, 16, 23.
        let days: Vec<u32> = fires.iter().map(chrono::Datelike::day).collect();
        assert_eq!(days, vec![1, 2, 9, 16, 23]);
    }

    #[test]
    fn six_and_seven_fields_are_rejected() {
        let err = Schedule::parse("0 0 6 * * *", None).unwrap_err();
        assert!(
            err.starts_with(
                "expected 5 fields (minute hour day-of-month month day-of-week), found 6"
            ),
            "{err}"
        );
        assert!(
            Schedule::parse("0 0 6 * * * 2026", None)
                .unwrap_err()
                .contains("found 7")
        );
        assert!(
            Schedule::parse("0 6 * *", None)
                .unwrap_err()
                .contains("found 4")
        );
        assert!(Schedule::parse("", None).is_err());
    }

    #[test]
    fn out_of_range_values_are_rejected_naming_the_field() {
        let err = Schedule::parse("61 * * * *", None).unwrap_err();
        assert!(err.starts_with("minute field `61`"), "{err}");
        let err = Schedule::parse("0 24 * * *", None).unwrap_err();
        assert!(err.starts_with("hour field `24`"), "{err}");
        let err = Schedule::parse("0 0 * 13 *", None).unwrap_err();
        assert!(err.starts_with("month field `13`"), "{err}");
        assert!(Schedule::parse("every day", None).is_err());
    }

    #[test]
    fn a_schedule_that_never_fires_is_rejected() {
        let err = Schedule::parse("0 0 30 2 *", None).unwrap_err();
        assert!(err.contains("never fires"), "{err}");
    }

    #[test]
    fn a_schedule_displays_with_its_time_zone() {
        let s = Schedule::parse("0 6 * * *", berlin()).unwrap();
        assert_eq!(s.to_string(), "0 6 * * * (Europe/Berlin)");
    }
}
