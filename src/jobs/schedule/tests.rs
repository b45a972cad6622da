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
        err.starts_with("expected 5 fields (minute hour day-of-month month day-of-week), found 6"),
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

#[test]
fn the_longest_gap_between_fires_is_the_weekend_for_weekdays_and_25_hours_across_autumns_change() {
    let weekdays = Schedule::parse("30 8 * * 1-5", None).unwrap();
    assert_eq!(
        weekdays.longest_gap(utc(2026, 3, 2, 0, 0)),
        Some(chrono::TimeDelta::days(3))
    );
    let daily = Schedule::parse("30 8 * * *", berlin()).unwrap();
    // A year ahead holds the autumn change (25 hours) and the spring one (23 hours).
    assert_eq!(
        daily.longest_gap(utc(2026, 3, 2, 0, 0)),
        Some(chrono::TimeDelta::hours(25))
    );
    let hourly = Schedule::parse("@hourly", None).unwrap();
    assert_eq!(
        hourly.longest_gap(utc(2026, 3, 2, 0, 0)),
        Some(chrono::TimeDelta::hours(1))
    );
    let yearly = Schedule::parse("@yearly", None).unwrap();
    assert_eq!(
        yearly.longest_gap(utc(2026, 3, 2, 0, 0)),
        Some(chrono::TimeDelta::days(365))
    );
    // Every fourth year only: no two fires within the horizon.
    let leap = Schedule::parse("0 0 29 2 *", None).unwrap();
    assert_eq!(leap.longest_gap(utc(2026, 3, 2, 0, 0)), None);
}
