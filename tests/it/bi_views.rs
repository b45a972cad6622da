//! The BI views answer honestly: a period is marked partial and never dated a day
//! ahead, weekly new and lost come from any stored grain or say why not, "last month"
//! is the month before this one, and each question (rank, spam score) has one value.
//! Data from the sandbox through the collector, as a BI user would have it.

use chrono::{Datelike, Days, Months, NaiveDate};
use linkledger::store::{RunKind, Store};

use crate::common::*;

async fn collect(store: &Store, jobs: &[&linkledger::jobs::Job]) {
    let sb = default_sandbox().await;
    let exec = executor(store, &sb, 8);
    let report = run_once(&exec, jobs, RunKind::Once, today()).await.unwrap();
    assert!(report.ok(), "{}", report.line());
}

/// One `[[collect]]` section of `endpoint` over `targets` with `params`.
fn section(name: &str, endpoint: &str, targets: &[&str], params: &str) -> String {
    let list = targets
        .iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "\n[[collect]]\nname = \"{name}\"\nendpoint = \"{endpoint}\"\nschedule = \"@daily\"\ntargets = [{list}]\nparams = {{ {params} }}\n"
    )
}

fn job_of(name: &str, sections: &[String]) -> linkledger::jobs::Job {
    job(&format!(
        "name = \"{name}\"\ntargets = [\"unused.example.com\"]\n{}",
        sections.concat()
    ))
}

fn monday_of(d: NaiveDate) -> NaiveDate {
    d - Days::new(u64::from(d.weekday().num_days_from_monday()))
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap()
}

#[tokio::test]
async fn a_running_period_is_marked_partial_and_dated_by_the_day_it_was_collected_never_a_day_ahead()
 {
    let db = TestDb::new().await;
    let store = db.store().await;
    let t = "running.example.com";
    let j = job_of(
        "running",
        &[
            section(
                "weekly",
                "timeseries_summary",
                &[t],
                "group_range = \"week\", date_from = \"-20d\"",
            ),
            section(
                "yearly",
                "timeseries_summary",
                &[t],
                "group_range = \"year\", date_from = \"-20d\"",
            ),
            section(
                "monthly",
                "timeseries_new_lost_summary",
                &[t],
                "group_range = \"month\", date_from = \"-40d\"",
            ),
        ],
    );
    collect(&store, &[&j]).await;
    let today = today();
    // The API dates the running week, month and year by their last day: stored so.
    let ahead = count(
        &store,
        &format!(
            "SELECT count(*) FROM linkledger.timeseries_summary WHERE target = '{t}' AND date > '{today}'"
        ),
    )
    .await;
    assert!(ahead >= 1, "the running year is dated its last day");

    // The views never show a day ahead: the running period reaches the day collected.
    let (first, last): (NaiveDate, NaiveDate) =
        sqlx::query_as("SELECT first_date, last_date FROM linkledger.targets WHERE target = $1")
            .bind(t)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(last, today, "targets.last_date");
    let earliest_year = NaiveDate::from_ymd_opt((today - Days::new(20)).year(), 1, 1).unwrap();
    assert_eq!(
        first,
        earliest_year.min(first_of_month(today - Days::new(40))),
        "targets.first_date: the first day of the earliest period"
    );
    let latest_rank: NaiveDate =
        sqlx::query_scalar("SELECT max(date) FROM linkledger.rank_trend WHERE target = $1")
            .bind(t)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(latest_rank, today, "rank_trend.date");

    // Each period says how much of it the figures cover.
    let periods: Vec<(NaiveDate, NaiveDate, i32, i32, NaiveDate, bool)> = sqlx::query_as(
        "SELECT period_start, period_end, days_in_period, days_covered, covered_to, complete
         FROM linkledger.new_lost_periods WHERE target = $1 ORDER BY period_start",
    )
    .bind(t)
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(periods.len() >= 2, "{periods:?}");
    let (start, end, days, covered, to, complete) = *periods.last().unwrap();
    assert_eq!(start, first_of_month(today));
    assert_eq!(end, first_of_month(today) + Months::new(1) - Days::new(1));
    assert_eq!(days, end.day() as i32);
    assert_eq!(
        covered,
        today.day() as i32,
        "the running month: up to today"
    );
    assert_eq!(to, today);
    assert!(!complete, "the running month is partial");
    for (start, end, days, covered, to, complete) in &periods[..periods.len() - 1] {
        assert_eq!(*start, first_of_month(*end));
        assert_eq!(covered, days, "{start}: an ended month is covered whole");
        assert_eq!(to, end);
        assert!(complete, "{start}");
    }
}

#[tokio::test]
async fn weekly_new_and_lost_marks_partial_weeks_and_says_why_a_month_only_target_has_no_weeks() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let daily = "daily.example.com";
    let monthly = "monthly.example.com";
    let j = job_of(
        "newlost",
        &[
            section(
                "by-day",
                "timeseries_new_lost_summary",
                &[daily],
                "group_range = \"day\", date_from = \"-20d\"",
            ),
            // No group_range: the API's default, month.
            section(
                "by-default",
                "timeseries_new_lost_summary",
                &[monthly],
                "date_from = \"-40d\"",
            ),
        ],
    );
    collect(&store, &[&j]).await;
    let today = today();

    type Week = (NaiveDate, String, i32, bool, Option<i64>, Option<String>);
    let weeks = |target: &'static str| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_as::<_, Week>(
                "SELECT week, group_range, days_covered, complete, new_backlinks, why_no_figures
                 FROM linkledger.new_lost_weekly WHERE target = $1 ORDER BY week",
            )
            .bind(target)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };

    // By day: the first week holds the days from date_from on, the running week the
    // days up to today (today's own figures partial): both partial; the ones between
    // are whole, their figures the sum of their days.
    let by_day = weeks(daily).await;
    let from = today - Days::new(20);
    let expected_weeks = (monday_of(today) - monday_of(from)).num_days() / 7 + 1;
    assert_eq!(by_day.len() as i64, expected_weeks, "{by_day:?}");
    let first = &by_day[0];
    assert_eq!(first.0, monday_of(from));
    assert_eq!(
        first.2,
        7 - from.weekday().num_days_from_monday() as i32,
        "{first:?}"
    );
    assert_eq!(first.3, first.2 == 7, "{first:?}");
    let running = by_day.last().unwrap();
    assert_eq!(running.0, monday_of(today));
    assert_eq!(running.2, today.weekday().num_days_from_monday() as i32 + 1);
    assert!(!running.3, "the running week is partial: {running:?}");
    for w in &by_day[1..by_day.len() - 1] {
        assert_eq!((w.1.as_str(), w.2, w.3), ("day", 7, true), "{w:?}");
        let sum = count(
            &store,
            &format!(
                "SELECT sum(new_backlinks)::bigint FROM linkledger.timeseries_new_lost_summary
                 WHERE target = '{daily}' AND date BETWEEN '{}' AND '{}'",
                w.0,
                w.0 + Days::new(6)
            ),
        )
        .await;
        assert_eq!(w.4, Some(sum), "{w:?}");
        assert_eq!(w.5, None);
    }

    // By month (the API's default): every week the months cover is there, without
    // figures, saying why.
    let by_month = weeks(monthly).await;
    let first_month = first_of_month(today - Days::new(40));
    let expected_weeks = (monday_of(today) - monday_of(first_month)).num_days() / 7 + 1;
    assert_eq!(by_month.len() as i64, expected_weeks, "{by_month:?}");
    assert_eq!(by_month[0].0, monday_of(first_month));
    for w in &by_month {
        assert_eq!(
            (w.1.as_str(), w.2, w.3, w.4),
            ("month", 0, false, None),
            "{w:?}"
        );
        let why = w.5.as_deref().expect("why there are no figures");
        assert!(why.contains("cannot be split into weeks"), "{why}");
        assert!(why.contains("group_range day or week"), "{why}");
    }
    // Its figures are in new_lost_periods, by month.
    assert!(
        count(
            &store,
            &format!(
                "SELECT count(*) FROM linkledger.new_lost_periods
                 WHERE target = '{monthly}' AND group_range = 'month' AND complete"
            ),
        )
        .await
            >= 1
    );
}

#[tokio::test]
async fn last_month_in_month_over_month_is_the_change_between_the_snapshots_on_its_first_day_and_this_months()
 {
    let db = TestDb::new().await;
    let store = db.store().await;
    let t = "history.example.com";
    let j = job_of(
        "hist",
        &[section("history", "history", &[t], "date_from = \"-5m\"")],
    );
    collect(&store, &[&j]).await;
    let this_month = first_of_month(today());
    let last_month = this_month - Months::new(1);

    let snapshot = |month: NaiveDate| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_as::<_, (i64, i64, i64)>(
                "SELECT referring_domains, backlinks, new_referring_domains
                 FROM linkledger.history WHERE target = $1 AND month = $2",
            )
            .bind(t)
            .bind(month)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let (start_rd, start_bl, _) = snapshot(last_month).await;
    let (end_rd, end_bl, end_new_rd) = snapshot(this_month).await;

    // The natural query: last month's row.
    let row: (i64, i64, i64, i64, i64, bool) = sqlx::query_as(
        "SELECT referring_domains_start, referring_domains_end, referring_domains_change,
                backlinks_change, new_referring_domains, complete
         FROM linkledger.month_over_month
         WHERE target = $1 AND month = date_trunc('month', current_date - interval '1 month')",
    )
    .bind(t)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            start_rd,
            end_rd,
            end_rd - start_rd,
            end_bl - start_bl,
            end_new_rd,
            true
        ),
        "last month runs from its first day's snapshot to this month's first day's"
    );
    // This month's closing snapshot is not there yet.
    let (end, complete): (Option<i64>, bool) = sqlx::query_as(
        "SELECT referring_domains_end, complete FROM linkledger.month_over_month
         WHERE target = $1 AND month = $2",
    )
    .bind(t)
    .bind(this_month)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!((end, complete), (None, false));

    // The three sources of "last month's gainers" each say which question they answer.
    for (column, names) in [
        ("history.month", "month_over_month"),
        ("history.new_referring_domains", "month_over_month"),
        (
            "timeseries_new_lost_summary.new_referring_domains",
            "new_lost_periods",
        ),
        (
            "bulk_new_lost_referring_domains.new_referring_domains",
            "not a calendar month",
        ),
        (
            "referring_domains_trend.referring_domains_change",
            "month_over_month",
        ),
    ] {
        let (table, col) = column.split_once('.').unwrap();
        let doc: String = sqlx::query_scalar(
            "SELECT col_description(c.oid, a.attnum) FROM pg_class c
             JOIN pg_attribute a ON a.attrelid = c.oid
             WHERE c.relnamespace = 'linkledger'::regnamespace AND c.relname = $1 AND a.attname = $2",
        )
        .bind(table)
        .bind(col)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert!(doc.contains(names), "{column}: {doc}");
    }
}

#[tokio::test]
async fn rank_trend_has_one_rank_per_target_day_and_scale_taken_in_a_documented_order() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let t = "rank.example.com";
    let hundred = "hundred.example.com";
    let j = job_of(
        "ranks",
        &[
            section("summary", "summary", &[t], ""),
            section("bulk", "bulk_ranks", &[t], ""),
            section(
                "daily",
                "timeseries_summary",
                &[t],
                "group_range = \"day\", date_from = \"-10d\"",
            ),
            section("history", "history", &[t], "date_from = \"-3m\""),
            section(
                "hundred",
                "bulk_ranks",
                &[hundred],
                "rank_scale = \"one_hundred\"",
            ),
        ],
    );
    collect(&store, &[&j]).await;
    let today = today();

    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM (SELECT 1 FROM linkledger.rank_trend
                                   GROUP BY target, date, rank_scale HAVING count(*) > 1) d"
        )
        .await,
        0,
        "one row per target, day and scale"
    );

    type Rank = (i64, String, Option<String>, Vec<String>);
    let on = |day: NaiveDate| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_as::<_, Rank>(
                "SELECT rank, source_table, group_range, sources FROM linkledger.rank_trend
                 WHERE target = $1 AND date = $2 AND rank_scale = 'one_thousand'",
            )
            .bind(t)
            .bind(day)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    // Today: summary, bulk_ranks and the day row of the timeseries each have one; the
    // summary's is the answer.
    let summary_rank = count(
        &store,
        &format!("SELECT rank FROM linkledger.summary WHERE target = '{t}'"),
    )
    .await;
    let (rank, source, range, sources) = on(today).await;
    assert_eq!(
        (rank, source.as_str(), range),
        (summary_rank, "summary", None)
    );
    let mut expected = vec!["summary", "bulk_ranks", "timeseries_summary by day"];
    if today.day() == 1 {
        expected.push("history");
    }
    assert_eq!(sources, expected);
    // A day only the timeseries has: its day row.
    let (rank, source, range, _) = on(today - Days::new(5)).await;
    let day_rank = count(
        &store,
        &format!(
            "SELECT rank FROM linkledger.timeseries_summary WHERE target = '{t}' AND date = '{}'",
            today - Days::new(5)
        ),
    )
    .await;
    assert_eq!(
        (rank, source.as_str(), range.as_deref()),
        (day_rank, "timeseries_summary", Some("day"))
    );
    // A month's first day before the timeseries starts: history.
    let month = first_of_month(today - Months::new(2));
    let (_, source, _, sources) = on(month).await;
    assert_eq!(
        (source.as_str(), sources),
        ("history", vec!["history".to_string()])
    );

    // A target collected on the 0-100 scale only has its series on that scale.
    assert_eq!(
        count(
            &store,
            &format!(
                "SELECT count(*) FROM linkledger.rank_trend WHERE target = '{hundred}' AND rank_scale = 'one_hundred'"
            ),
        )
        .await,
        1
    );
}

#[tokio::test]
async fn spam_score_daily_gives_one_spam_score_of_the_target_and_apart_that_of_its_backlinks() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let both = "spam.example.com";
    let bulk_only = "bulk-only.example.com";
    let page = "https://spam.example.com/page";
    let j = job_of(
        "spam",
        &[
            section("summary", "summary", &[both], ""),
            section("bulk", "bulk_spam_score", &[both, bulk_only], ""),
            section("pages", "bulk_pages_summary", &[page], ""),
        ],
    );
    collect(&store, &[&j]).await;

    assert_eq!(
        count(
            &store,
            "SELECT count(*) - count(DISTINCT (target, day)) FROM linkledger.spam_score_daily"
        )
        .await,
        0,
        "one row per target and day"
    );
    type Spam = (Option<i64>, Option<String>, Option<i64>, Option<String>);
    let of = |target: &'static str| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_as::<_, Spam>(
                "SELECT target_spam_score, target_spam_score_source,
                        backlinks_spam_score, backlinks_spam_score_source
                 FROM linkledger.spam_score_daily WHERE target = $1",
            )
            .bind(target)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let (info, backlinks): (i64, i64) = sqlx::query_as(
        "SELECT info_target_spam_score, backlinks_spam_score FROM linkledger.summary WHERE target = $1",
    )
    .bind(both)
    .fetch_one(store.pool())
    .await
    .unwrap();
    let bulk = "SELECT spam_score FROM linkledger.bulk_spam_score WHERE target = ";
    let b = count(&store, &format!("{bulk}'{both}'")).await;
    // Three columns, two questions: the target's own score from bulk_spam_score
    // (summary's info the same metric, second), its links' score apart.
    assert_eq!(
        of(both).await,
        (
            Some(b),
            Some("bulk_spam_score.spam_score".into()),
            Some(backlinks),
            Some("summary.backlinks_spam_score".into())
        ),
        "summary's info_target_spam_score {info} comes second"
    );
    assert_eq!(
        of(bulk_only).await,
        (
            Some(count(&store, &format!("{bulk}'{bulk_only}'")).await),
            Some("bulk_spam_score.spam_score".into()),
            None,
            None
        )
    );
    let page_backlinks = count(
        &store,
        &format!(
            "SELECT backlinks_spam_score FROM linkledger.bulk_pages_summary WHERE target = '{page}'"
        ),
    )
    .await;
    assert_eq!(
        of(page).await,
        (
            None,
            None,
            Some(page_backlinks),
            Some("bulk_pages_summary.backlinks_spam_score".into())
        )
    );
}
