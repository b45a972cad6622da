//! The warehouse holds what it says. A period of history or a timeseries counts as
//! stored only when an answer held its item, and for good only when the request was
//! sent after the period settled; a period asked for and absent is answered empty and
//! asked again; a fire whose window starts after what is stored reaches back to it; the
//! first period of a request is whole; `gaps`, `backfill --dry-run` and the view
//! `period_gaps` say where the holes are. Against the sandbox on a bad day (its
//! `quirk-*` targets).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use linkledger::api::Endpoint;
use linkledger::api::endpoint::{GroupRange, periods};
use linkledger::collect::executor::Executor;
use linkledger::collect::scheduler::Scheduler;
use linkledger::sandbox::Sandbox;
use linkledger::store::Store;
use serde_json::Value;

use crate::common::*;

const MISSING: &str = "quirk-missing-period.example.com";
const EMPTY: &str = "quirk-empty.example.com";
const WHOLE: &str = "whole.example.com";

/// History, monthly and weekly timeseries for a target whose answers lack one period,
/// one whose answers hold nothing, and one whose answers are whole.
fn holes_job() -> String {
    format!(
        "name = \"holes\"\ntargets = [\"{MISSING}\", \"{EMPTY}\", \"{WHOLE}\"]\n\
         [[collect]]\nendpoint = \"history\"\nschedule = \"0 5 2 * *\"\n\
         [[collect]]\nendpoint = \"timeseries_summary\"\nschedule = \"0 6 * * 1\"\nparams = {{ group_range = \"month\" }}\n\
         [[collect]]\nendpoint = \"timeseries_new_lost_summary\"\nschedule = \"0 6 * * *\"\nparams = {{ group_range = \"week\" }}\n"
    )
}

/// The first day of the month five months before today's.
fn five_months_back() -> NaiveDate {
    let today = today();
    NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap() - Months::new(5)
}

/// `backfill` of job `holes` from [`five_months_back`], run to its end.
async fn backfill_holes(wd: &Workdir, env: &[(String, String)]) {
    let from = five_months_back().to_string();
    let out = linkledger(
        wd.path(),
        env,
        &["backfill", "--job", "holes", "--from", &from, "--yes"],
    )
    .await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// An endpoint's table, the column its period is keyed by, and the grain of the
/// collection in [`holes_job`].
fn shape(endpoint: Endpoint) -> (&'static str, &'static str, GroupRange) {
    match endpoint {
        Endpoint::History => ("history", "month", GroupRange::Month),
        Endpoint::TimeseriesSummary => ("timeseries_summary", "date", GroupRange::Month),
        _ => ("timeseries_new_lost_summary", "date", GroupRange::Week),
    }
}

const RANGED: [Endpoint; 3] = [
    Endpoint::History,
    Endpoint::TimeseriesSummary,
    Endpoint::TimeseriesNewLostSummary,
];

/// The dates of `target`'s rows of `endpoint`.
async fn row_dates(store: &Store, endpoint: Endpoint, target: &str) -> Vec<NaiveDate> {
    let (table, column, _) = shape(endpoint);
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT {column} FROM linkledger.{table} WHERE target = $1 ORDER BY 1"
    )))
    .bind(target)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

/// The days stored for good of `target`'s `endpoint`, as inclusive ranges.
async fn covered(store: &Store, endpoint: Endpoint, target: &str) -> Vec<(NaiveDate, NaiveDate)> {
    sqlx::query_as(
        "SELECT lower(r), upper(r) - 1 FROM linkledger.coverage c, unnest(c.covered) r
         WHERE c.target = $1 AND c.endpoint = $2 ORDER BY 1",
    )
    .bind(target)
    .bind(endpoint.name())
    .fetch_all(store.pool())
    .await
    .unwrap()
}

/// `target`'s pending periods of `endpoint`: (first day, last day, state).
async fn pending(
    store: &Store,
    endpoint: Endpoint,
    target: &str,
) -> Vec<(NaiveDate, NaiveDate, String)> {
    sqlx::query_as(
        "SELECT period_from, period_to, state FROM linkledger.pending_periods
         WHERE target = $1 AND endpoint = $2 ORDER BY 1",
    )
    .bind(target)
    .bind(endpoint.name())
    .fetch_all(store.pool())
    .await
    .unwrap()
}

/// Every period the warehouse claims for `target` (stored for good, or stored and
/// unsettled) has its row: "never claimed without its rows".
async fn assert_claimed_periods_have_rows(store: &Store, endpoint: Endpoint, target: &str) {
    let (_, _, grain) = shape(endpoint);
    let rows = row_dates(store, endpoint, target).await;
    let mut claimed: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for (from, to) in covered(store, endpoint, target).await {
        claimed.extend(periods(from, to, grain));
    }
    for (from, to, state) in pending(store, endpoint, target).await {
        if state == "unsettled" {
            claimed.push((from, to));
        }
    }
    for (from, to) in claimed {
        assert!(
            rows.iter().any(|d| from <= *d && *d <= to),
            "{endpoint} {target}: {from}..{to} claimed without a row ({rows:?})"
        );
    }
}

#[tokio::test]
async fn a_period_an_answer_lacked_is_answered_empty_not_stored_and_asked_again_the_next_day() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[("holes.toml", &holes_job())]);
    let env = env_for(&db, &sb);
    backfill_holes(&wd, &env).await;
    let store = db.store().await;
    for endpoint in RANGED {
        let (_, _, grain) = shape(endpoint);
        let asked = periods(five_months_back(), today(), grain);
        // The whole target: a row per period asked for.
        assert_eq!(
            row_dates(&store, endpoint, WHOLE).await.len(),
            asked.len(),
            "{endpoint}"
        );
        // One period short: its rows, and that one period answered empty, not stored.
        let rows = row_dates(&store, endpoint, MISSING).await;
        assert_eq!(rows.len(), asked.len() - 1, "{endpoint}: {rows:?}");
        let lacked: Vec<(NaiveDate, NaiveDate)> = asked
            .iter()
            .copied()
            .filter(|(f, t)| !rows.iter().any(|d| f <= d && d <= t))
            .collect();
        assert_eq!(lacked.len(), 1, "{endpoint}");
        let empty: Vec<(NaiveDate, NaiveDate)> = pending(&store, endpoint, MISSING)
            .await
            .into_iter()
            .filter(|p| p.2 == "empty")
            .map(|p| (p.0, p.1))
            .collect();
        assert_eq!(empty, lacked, "{endpoint}");
        for (from, to) in covered(&store, endpoint, MISSING).await {
            assert!(
                to < lacked[0].0 || from > lacked[0].1,
                "{endpoint}: {lacked:?} recorded as stored ({from}..{to})"
            );
        }
        // `items: []`: no rows, nothing stored, every period answered empty.
        assert!(row_dates(&store, endpoint, EMPTY).await.is_empty());
        assert!(
            covered(&store, endpoint, EMPTY).await.is_empty(),
            "{endpoint}"
        );
        let nothing = pending(&store, endpoint, EMPTY).await;
        assert_eq!(nothing.len(), asked.len(), "{endpoint}: {nothing:?}");
        assert!(nothing.iter().all(|p| p.2 == "empty"), "{nothing:?}");
        for target in [WHOLE, MISSING, EMPTY] {
            assert_claimed_periods_have_rows(&store, endpoint, target).await;
        }
    }

    // The view, the dry run and `gaps` say where the holes are.
    let in_view = count(
        &store,
        &format!(
            "SELECT count(*) FROM linkledger.period_gaps WHERE target = '{EMPTY}' AND standing = 'empty'"
        ),
    )
    .await;
    assert!(in_view > 0);
    let dry = linkledger(
        wd.path(),
        &env,
        &[
            "backfill",
            "--job",
            "holes",
            "--from",
            &five_months_back().to_string(),
            "--dry-run",
        ],
    )
    .await;
    assert!(dry.status.success(), "{}", stderr(&dry));
    let text = stdout(&dry);
    assert!(text.contains("were answered empty"), "{text}");
    let history = text
        .lines()
        .find(|l| l.trim_start().starts_with("history"))
        .unwrap_or_else(|| panic!("{text}"));
    // history: 6 months; MISSING lacks 1, EMPTY all 6: 7 empty, nothing missing.
    let cells: Vec<&str> = history.split_whitespace().collect();
    assert_eq!(cells[cells.len() - 3..], ["0", "7", "0"], "{history}");
    let gaps = linkledger(
        wd.path(),
        &env,
        &["gaps", "--job", "holes", "--endpoint", "history"],
    )
    .await;
    assert!(gaps.status.success(), "{}", stderr(&gaps));
    let gaps = stdout(&gaps);
    let line = gaps
        .lines()
        .find(|l| l.contains(MISSING))
        .unwrap_or_else(|| panic!("{gaps}"));
    let lacked_month = {
        let rows = row_dates(&store, Endpoint::History, MISSING).await;
        periods(five_months_back(), today(), GroupRange::Month)
            .into_iter()
            .find(|(f, _)| !rows.contains(f))
            .unwrap()
            .0
    };
    assert!(line.contains(&format!("empty {lacked_month}")), "{gaps}");

    // The next day, the empty periods are asked again; the whole target's history is
    // not (its months were all final).
    let job = linkledger::jobs::load_dir(&wd.path().join("jobs"), today())
        .unwrap()
        .remove(0);
    let tomorrow = today().succ_opt().unwrap();
    let plan = linkledger::collect::backfill::plan(
        &store,
        &linkledger::collect::backfill::Request {
            job: &job,
            from: five_months_back(),
            to: None,
            endpoints: vec![Endpoint::History],
            targets: Vec::new(),
            refetch: false,
        },
        &linkledger::api::prices::Prices::default(),
        tomorrow,
    )
    .await
    .unwrap()
    .unwrap();
    let asked: Vec<(String, String)> = plan
        .calls
        .iter()
        .map(|c| {
            (
                c.task["target"].as_str().unwrap().to_string(),
                c.task["date_from"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        asked,
        [
            (MISSING.to_string(), lacked_month.to_string()),
            (EMPTY.to_string(), five_months_back().to_string()),
        ],
        "{asked:?}"
    );
}

/// A daemon on a simulated clock: each [`Clocked::fire_on`] ticks the scheduler at
/// 06:00 of a day with the sandbox's "today" set to it, and runs what fired.
struct Clocked {
    _db: TestDb,
    store: Store,
    sb: Sandbox,
    exec: Executor,
    clock: Arc<Mutex<DateTime<Utc>>>,
    scheduler: Scheduler,
    seen: usize,
}

impl Clocked {
    /// `toml`'s job, its collection `collection` having last fired at `last`.
    async fn new(toml: &str, collection: &str, last: DateTime<Utc>) -> Clocked {
        let db = TestDb::new().await;
        let store = db.store().await;
        let sb = default_sandbox().await;
        let clock = Arc::new(Mutex::new(last));
        let exec = {
            let clock = clock.clone();
            executor(&store, &sb, 4)
                .without_same_day_reuse()
                .with_clock(Arc::new(move || *clock.lock().unwrap()))
        };
        let job = job(toml);
        seed_fire(&store, &job.name, collection, last).await;
        let scheduler = Scheduler::new(store.clone(), vec![job], "s".into(), 5);
        Clocked {
            _db: db,
            store,
            sb,
            exec,
            clock,
            scheduler,
            seen: 0,
        }
    }

    /// Fires on `day` at 06:00 UTC: the tasks sent.
    async fn fire_on(&mut self, day: NaiveDate) -> Vec<Value> {
        let fire = day.and_hms_opt(6, 0, 0).unwrap().and_utc();
        self.sb.set_today(day);
        *self.clock.lock().unwrap() = fire + chrono::Duration::minutes(1);
        let fired = self.scheduler.tick(fire).await.unwrap();
        assert_eq!(fired.len(), 1, "one fire on {day}");
        linkledger::collect::workers::Workers::new(
            self.exec.clone(),
            linkledger::collect::workers::WorkerConfig::for_once(4),
            linkledger::collect::workers::WorkSet::Runs(fired.iter().map(|e| e.run_id).collect()),
        )
        .run(&linkledger::collect::workers::Shutdown::default())
        .await
        .unwrap();
        let sent: Vec<Value> = self.sb.requests()[self.seen..]
            .iter()
            .map(|r| r.request[0].clone())
            .collect();
        self.seen += sent.len();
        sent
    }
}

fn daily_job(target: &str, extra: &str) -> String {
    format!(
        "name = \"daily\"\ntargets = [\"{target}\"]\n[[collect]]\nendpoint = \"timeseries_new_lost_summary\"\n\
         schedule = \"0 6 * * *\"\nparams = {{ group_range = \"day\", date_from = \"-30d\" }}\n{extra}"
    )
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn at6(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(6, 0, 0).unwrap().and_utc()
}

#[tokio::test]
async fn the_days_a_lagging_index_left_out_are_asked_again_by_the_next_days_fire() {
    let day0 = day("2026-11-20");
    // No settle time: every day that ended is final once held.
    let mut d = Clocked::new(
        &daily_job("quirk-lag-3.example.com", "settle = \"0s\"\n"),
        "timeseries_new_lost_summary",
        at6(day0.pred_opt().unwrap()),
    )
    .await;
    let first = d.fire_on(day0).await;
    assert_eq!(first[0]["date_from"], "2026-10-21");
    // The index lags three days: the answer holds up to 11-17.
    let rows = row_dates(
        &d.store,
        Endpoint::TimeseriesNewLostSummary,
        "quirk-lag-3.example.com",
    )
    .await;
    assert_eq!(rows.last(), Some(&day("2026-11-17")));
    let second = d.fire_on(day("2026-11-21")).await;
    assert_eq!(second.len(), 1);
    // 11-18, 11-19 and 11-20 were answered empty: asked again, with the new day.
    assert_eq!(second[0]["date_from"], "2026-11-18", "{second:?}");
    let rows = row_dates(
        &d.store,
        Endpoint::TimeseriesNewLostSummary,
        "quirk-lag-3.example.com",
    )
    .await;
    assert_eq!(rows.last(), Some(&day("2026-11-18")));
    assert_claimed_periods_have_rows(
        &d.store,
        Endpoint::TimeseriesNewLostSummary,
        "quirk-lag-3.example.com",
    )
    .await;
}

/// The rows of `target`'s daily new/lost series, without when and from which answer
/// they were collected.
async fn series(store: &Store, target: &str) -> Vec<(NaiveDate, Value)> {
    sqlx::query_as(
        "SELECT t.date, to_jsonb(t) - 'collected_at' - 'raw_response_id'
         FROM linkledger.timeseries_new_lost_summary t WHERE t.target = $1 ORDER BY 1",
    )
    .bind(target)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn days_revised_within_the_settle_time_are_asked_again_and_hold_the_api_s_newest_figures() {
    const REVISED: &str = "quirk-revised.example.com";
    let day0 = day("2026-11-20");
    let day1 = day("2026-11-21");
    // The default settle time of a timeseries: seven days.
    let mut d = Clocked::new(
        &daily_job(REVISED, ""),
        "timeseries_new_lost_summary",
        at6(day0.pred_opt().unwrap()),
    )
    .await;
    d.fire_on(day0).await;
    let second = d.fire_on(day1).await;
    // The days not settled when the first request was sent are asked again.
    assert_eq!(second[0]["date_from"], "2026-11-13", "{second:?}");
    // What a full fetch on day 1 holds: the figures the API says now.
    let full_db = TestDb::new().await;
    let full_store = full_db.store().await;
    let full_sb = default_sandbox().await;
    full_sb.set_today(day1);
    let job = job(&daily_job(REVISED, ""));
    let report = run_once(
        &executor(&full_store, &full_sb, 4),
        &[&job],
        linkledger::store::RunKind::Once,
        day1,
    )
    .await
    .unwrap();
    assert!(report.ok());
    // (The incremental tables hold day 0's first day too, before day 1's window.)
    let window_start = day1 - chrono::Days::new(30);
    let incremental: Vec<(NaiveDate, Value)> = series(&d.store, REVISED)
        .await
        .into_iter()
        .filter(|(d, _)| *d >= window_start)
        .collect();
    let full = series(&full_store, REVISED).await;
    assert_eq!((incremental.len(), full.len()), (31, 31));
    let differ: Vec<NaiveDate> = incremental
        .iter()
        .zip(&full)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0)
        .collect();
    assert!(differ.is_empty(), "days with stale figures: {differ:?}");
}

#[tokio::test]
async fn a_window_shorter_than_the_time_between_fires_reaches_back_to_what_is_stored() {
    // Mondays, three days back, no settle time.
    let toml = "name = \"weekly\"\ntargets = [\"a.example.com\"]\n[[collect]]\n\
                endpoint = \"timeseries_new_lost_summary\"\nschedule = \"0 6 * * 1\"\n\
                params = { group_range = \"day\", date_from = \"-3d\" }\nsettle = \"0s\"\n";
    let monday = day("2026-11-16");
    let mut d = Clocked::new(
        toml,
        "timeseries_new_lost_summary",
        at6(monday - chrono::Days::new(7)),
    )
    .await;
    let first = d.fire_on(monday).await;
    assert_eq!(first[0]["date_from"], "2026-11-13");
    let next = monday + chrono::Days::new(7);
    let second = d.fire_on(next).await;
    // From the day after the last day stored for good (the 16th was open when asked),
    // not from the window's start (the 20th).
    assert_eq!(second[0]["date_from"], "2026-11-16", "{second:?}");
    let rows = row_dates(
        &d.store,
        Endpoint::TimeseriesNewLostSummary,
        "a.example.com",
    )
    .await;
    let expected: Vec<NaiveDate> = (0..=10)
        .map(|n| day("2026-11-13") + chrono::Days::new(n))
        .collect();
    assert_eq!(rows, expected, "no day left unasked");
}

#[tokio::test]
async fn jobs_check_and_plan_say_when_a_window_can_never_be_covered() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let toml = "name = \"weekly\"\ntargets = [\"a.example.com\"]\n[[collect]]\n\
                endpoint = \"timeseries_new_lost_summary\"\nschedule = \"0 6 * * 1\"\n\
                params = { group_range = \"day\", date_from = \"-3d\" }\nreach_back = \"1d\"\n";
    let wd = Workdir::new(&[("weekly.toml", toml)]);
    let env = env_for(&db, &sb);
    for args in [&["jobs", "check"][..], &["plan"][..]] {
        let out = linkledger(wd.path(), &env, args).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("cover less than the 7 days between two of its fires: the days between are never asked"),
            "{args:?}: {err}"
        );
    }
    // With the default reach_back (92 days) the same window is covered: no warning.
    let covered = toml.replace("reach_back = \"1d\"\n", "");
    let wd = Workdir::new(&[("weekly.toml", &covered)]);
    let out = linkledger(wd.path(), &env, &["jobs", "check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("never asked"), "{}", stderr(&out));
}

#[tokio::test]
async fn the_first_period_of_a_request_is_whole() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    // A Wednesday: a month back is 2026-10-18, ten days back a Sunday (2026-11-08).
    let today = day("2026-11-18");
    sb.set_today(today);
    let job = job("name = \"whole\"\ntargets = [\"a.example.com\"]\n\
         [[collect]]\nendpoint = \"history\"\nschedule = \"@daily\"\nparams = { date_from = \"-1m\" }\n\
         [[collect]]\nendpoint = \"timeseries_summary\"\nschedule = \"@daily\"\nparams = { group_range = \"week\", date_from = \"-10d\" }\n");
    let report = run_once(
        &executor(&store, &sb, 4),
        &[&job],
        linkledger::store::RunKind::Once,
        today,
    )
    .await
    .unwrap();
    assert!(report.ok());
    let mut sent: Vec<(String, String)> = sb
        .requests()
        .iter()
        .map(|r| {
            (
                r.endpoint.clone(),
                r.request[0]["date_from"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            ("history".to_string(), "2026-10-01".to_string()),
            ("timeseries_summary".to_string(), "2026-11-02".to_string()),
        ]
    );
    // October is stored whole, from its first day.
    assert_eq!(
        row_dates(&store, Endpoint::History, "a.example.com").await,
        [day("2026-10-01"), day("2026-11-01")]
    );
}

#[tokio::test]
async fn the_daemon_counts_each_collections_gap_periods_on_metrics() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let job = format!(
        "name = \"holes\"\ntargets = [\"{MISSING}\", \"{EMPTY}\", \"{WHOLE}\"]\n\
         [[collect]]\nendpoint = \"history\"\nschedule = \"0 5 2 * *\"\n"
    );
    let wd = Workdir::new(&[("holes.toml", &job)]);
    let env = env_for(&db, &sb);
    backfill_holes(&wd, &env).await;
    let mut d = crate::harness::Daemon::start(wd.path(), &env).await;
    let (_, metrics) = d.get("/metrics").await;
    let gap = |standing: &str| {
        crate::harness::metric(
            &metrics,
            &format!(
                "linkledger_gap_periods{{job=\"holes\",collection=\"history\",standing=\"{standing}\"}}"
            ),
        )
    };
    // One month the first target's answer lacked, six the second's: seven empty.
    assert_eq!(gap("empty"), Some(7.0), "{metrics}");
    assert_eq!(gap("unsettled"), Some(0.0), "{metrics}");
    // The months from 2019 to the backfill's start, for each of the three targets.
    let before = periods(
        day("2019-01-01"),
        five_months_back().pred_opt().unwrap(),
        GroupRange::Month,
    )
    .len();
    assert_eq!(gap("missing"), Some((3 * before) as f64), "{metrics}");
    d.stop(std::time::Duration::from_secs(30)).await;
}
