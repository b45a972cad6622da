//! `linkledger spend`: the report the ledger gives, through the real binary, against a
//! ledger written by hand. The rows are the ones the executor writes (answered, rejected
//! but charged, abandoned, reused, in flight, sandbox), so the figures can be worked out
//! on paper and asserted exactly.

use chrono::{NaiveDate, Utc};
use serde_json::Value;

use crate::common::*;

/// Two runs of real spend over 2026-11-02 and 2026-11-03, one call the day before (left
/// out by `--since 2026-11-02`), a credentials check outside any run, a job whose name
/// is too long for the key column, and a demo run against the sandbox.
///
/// Worked out for `--since 2026-11-02` (real calls):
/// - calls (answered or abandoned): 1-7, 9, 11, 13 = 10; rows 68; cost $0.17117 (12,
///   the free credentials check, is no job's call: counted apart, as `runs` does)
/// - failed but charged: 4 rejected $0.02, 6 retryable $0.01, 7 abandoned $0.02003,
///   11 invalid_response $0.02003 = 4 calls, $0.07006 (5, throttled, cost nothing)
/// - answered with an estimate: 1-6, 9, 11, 13 = 9 calls, estimated $0.1815, cost $0.15114
/// - reused: 8 (of 1, $0.02003) and 15 (of 9, $0.0209) = 2 calls, saved $0.04093
/// - in flight: 10, $0.0212 reserved
/// - sandbox left out: 20, 21, 22 = 3 calls, would have cost $0.06012
const LEDGER: &str = "
INSERT INTO linkledger.runs (id, job, kind, started_at, finished_at, status) VALUES
 (1, 'brands', 'once',      '2026-11-01 23:50Z', '2026-11-03 09:05Z', 'failed'),
 (2, 'rivals', 'scheduled', '2026-11-03 10:00Z', NULL,                'running'),
 (3, 'demo',   'demo',      '2026-11-03 12:00Z', '2026-11-03 12:05Z', 'succeeded'),
 (4, 'a-very-long-job-name-for-the-width-check', 'scheduled',
                            '2026-11-03 10:30Z', '2026-11-03 11:01Z', 'succeeded');

INSERT INTO linkledger.api_calls
 (id, run_id, job, endpoint, targets, request, attempt, started_at, outcome, http_status,
  status_code, task_status_code, cost_usd, reported_cost_usd, estimated_usd, booked_on,
  api_host, sandbox, reused_call_id, rows_written) VALUES
 (14, 1, 'brands', 'summary', '{a.com}', '{}', 1, '2026-11-01 23:59:59Z', 'ok', 200,
  20000, 20000, 0.5, 0.5, 0.5, '2026-11-01', 'api.dataforseo.com', false, NULL, 1),
 (1, 1, 'brands', 'summary', '{a.com}', '{}', 1, '2026-11-02 10:00Z', 'ok', 200,
  20000, 20000, 0.02003, 0.02003, 0.02003, '2026-11-02', 'api.dataforseo.com', false, NULL, 1),
 (2, 1, 'brands', 'summary', '{b.com}', '{}', 1, '2026-11-02 10:01Z', 'ok', 200,
  20000, 20000, 0.02006, 0.02006, 0.02003, '2026-11-02', 'api.dataforseo.com', false, NULL, 2),
 (3, 1, 'brands', 'bulk_ranks', '{a.com,b.com,c.com}', '{}', 1, '2026-11-02 10:02Z', 'ok', 200,
  20000, 20000, 0.02009, 0.02009, 0.02009, '2026-11-02', 'api.dataforseo.com', false, NULL, 3),
 (4, 1, 'brands', 'summary', '{bad}', '{}', 1, '2026-11-02 10:03Z', 'rejected', 200,
  20000, 40501, 0.02, 0.02, 0.02003, '2026-11-02', 'api.dataforseo.com', false, NULL, 0),
 (5, 1, 'brands', 'summary', '{c.com}', '{}', 1, '2026-11-02 10:04Z', 'throttled', 200,
  40202, NULL, 0, 0, 0.02003, '2026-11-02', 'api.dataforseo.com', false, NULL, NULL),
 (6, 1, 'brands', 'summary', '{c.com}', '{}', 2, '2026-11-02 10:05Z', 'retryable', 200,
  20000, 50000, 0.01, 0.01, 0.02003, '2026-11-02', 'api.dataforseo.com', false, NULL, NULL),
 (7, 1, 'brands', 'summary', '{c.com}', '{}', 3, '2026-11-03 09:00Z', 'abandoned', NULL,
  NULL, NULL, 0.02003, NULL, 0.02003, '2026-11-03', 'api.dataforseo.com', false, NULL, NULL),
 (12, NULL, NULL, 'appendix/user_data', '{}', '{}', 1, '2026-11-03 08:00Z', 'ok', 200,
  20000, 20000, 0, 0, NULL, NULL, 'api.dataforseo.com', false, NULL, NULL),
 (8, 2, 'rivals', 'summary', '{a.com}', '{}', 1, '2026-11-03 10:00Z', 'reused', NULL,
  NULL, NULL, 0, NULL, NULL, NULL, 'api.dataforseo.com', false, 1, 1),
 (9, 2, 'rivals', 'history', '{a.com}', '{}', 1, '2026-11-03 10:01Z', 'ok', 200,
  20000, 20000, 0.0209, 0.0209, 0.0212, '2026-11-03', 'api.dataforseo.com', false, NULL, 30),
 (10, 2, 'rivals', 'history', '{b.com}', '{}', 1, '2026-11-03 10:02Z', 'sent', NULL,
  NULL, NULL, NULL, NULL, 0.0212, '2026-11-03', 'api.dataforseo.com', false, NULL, NULL),
 (11, 2, 'rivals', 'summary', '{d.com}', '{}', 1, '2026-11-03 10:03Z', 'invalid_response', 200,
  20000, 20000, 0.02003, 0.02003, 0.02003, '2026-11-03', 'api.dataforseo.com', false, NULL, 0),
 (13, 4, 'a-very-long-job-name-for-the-width-check', 'summary', '{e.com}', '{}', 1,
  '2026-11-03 11:00Z', 'ok', 200, 20000, 20000, 0.02003, 0.02003, 0.02003, '2026-11-03',
  'api.dataforseo.com', false, NULL, 1),
 (15, 4, 'a-very-long-job-name-for-the-width-check', 'history', '{a.com}', '{}', 1,
  '2026-11-03 10:30Z', 'reused', NULL, NULL, NULL, 0, NULL, NULL, NULL,
  'api.dataforseo.com', false, 9, 30),
 (25, 3, 'demo', 'summary', '{a.com}', '{}', 1, '2026-11-01 12:00Z', 'ok', 200,
  20000, 20000, 0.02003, 0.02003, 0.02003, NULL, '127.0.0.1:8089', true, NULL, 1),
 (20, 3, 'demo', 'summary', '{a.com}', '{}', 1, '2026-11-03 12:00Z', 'ok', 200,
  20000, 20000, 0.02003, 0.02003, 0.02003, NULL, '127.0.0.1:8089', true, NULL, 1),
 (21, 3, 'demo', 'bulk_ranks', '{a.com,b.com,c.com}', '{}', 1, '2026-11-03 12:01Z', 'ok', 200,
  20000, 20000, 0.02009, 0.02009, 0.02009, NULL, '127.0.0.1:8089', true, NULL, 3),
 (22, 3, 'demo', 'summary', '{bad}', '{}', 1, '2026-11-03 12:02Z', 'rejected', 200,
  20000, 40501, 0.02, 0.02, 0.02003, NULL, '127.0.0.1:8089', true, NULL, 0),
 (23, 3, 'demo', 'summary', '{a.com}', '{}', 1, '2026-11-03 12:03Z', 'reused', NULL,
  NULL, NULL, 0, NULL, NULL, NULL, '127.0.0.1:8089', true, 20, NULL),
 (24, 3, 'demo', 'summary', '{b.com}', '{}', 1, '2026-11-03 12:04Z', 'sent', NULL,
  NULL, NULL, NULL, NULL, 0.02003, NULL, '127.0.0.1:8089', true, NULL, NULL);
";

/// Caps in force and what is booked in the current UTC day and month (and the day
/// before, which must not count); two queued calls held by the job's budget.
const BUDGETS: &str = "
INSERT INTO linkledger.budgets (scope, name, cap_usd) VALUES
 ('daily', 'budget.daily_usd', 1.00),
 ('monthly', 'budget.monthly_usd', 20),
 ('job:brands', 'brands.budget_monthly_usd', 0.05),
 ('job:a-very-long-job-name-for-the-width-check',
  'a-very-long-job-name-for-the-width-check.budget_monthly_usd', 2);
INSERT INTO linkledger.spend_totals (scope, period, booked_usd) VALUES
 ('daily', (now() AT TIME ZONE 'UTC')::date, 0.12003),
 ('daily', (now() AT TIME ZONE 'UTC')::date - 1, 0.5),
 ('monthly', date_trunc('month', now() AT TIME ZONE 'UTC')::date, 3.25),
 ('job:brands', date_trunc('month', now() AT TIME ZONE 'UTC')::date, 0.06);
INSERT INTO linkledger.runs (id, job, kind, status) VALUES (9, 'brands', 'scheduled', 'running');
INSERT INTO linkledger.work (run_id, run_kind, job, collection, endpoint, targets, task,
                             estimated_rows, max_attempts, state, held_by) VALUES
 (9, 'scheduled', 'brands', 'summary', 'summary', '{x.com}', '{}', 1, 3, 'queued',
  'brands.budget_monthly_usd'),
 (9, 'scheduled', 'brands', 'summary', 'summary', '{y.com}', '{}', 1, 3, 'queued',
  'brands.budget_monthly_usd'),
 (9, 'scheduled', 'brands', 'summary', 'summary', '{z.com}', '{}', 1, 3, 'queued', NULL);
";

/// Balances read from the real API (an older and a newer one) and, newest of all, from
/// the sandbox.
const SNAPSHOTS: &str = "
INSERT INTO linkledger.account_snapshots (taken_at, api_host, sandbox, balance_usd, body) VALUES
 ('2026-11-29 06:00Z', 'api.dataforseo.com', false, 99, '{}'),
 ('2026-11-30 06:00Z', 'api.dataforseo.com', false, 12.34567, '{}'),
 ('2026-11-30 07:00Z', '127.0.0.1:8089', true, 1000, '{}');
";

async fn fixture(db: &TestDb, sql: &[&str]) {
    let store = db.store().await;
    for s in sql {
        sqlx::raw_sql(sqlx::AssertSqlSafe(s.to_string()))
            .execute(store.pool())
            .await
            .unwrap_or_else(|e| panic!("fixture: {e}"));
    }
}

fn env(db: &TestDb) -> Vec<(String, String)> {
    vec![("DATABASE_URL".to_string(), db.url.clone())]
}

/// `linkledger spend ARGS`, which must succeed; its stdout.
async fn spend_text(db: &TestDb, args: &[&str]) -> String {
    let wd = Workdir::new(&[]);
    let mut all = vec!["spend"];
    all.extend_from_slice(args);
    let out = linkledger(wd.path(), &env(db), &all).await;
    assert!(out.status.success(), "spend {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// `linkledger spend ARGS --json`, parsed.
async fn spend_json(db: &TestDb, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let text = spend_text(db, &all).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn group<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["key"] == key)
        .unwrap_or_else(|| panic!("no group {key} in {report:#}"))
}

fn keys(report: &Value) -> Vec<&str> {
    report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["key"].as_str().expect("key"))
        .collect()
}

/// The figures of one group (or `total`) as `name=value` pairs, for compact asserts.
fn figures(g: &Value, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            let v = &g[*n];
            let s = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            format!("{n}={s}")
        })
        .collect()
}

const MAIN: &[&str] = &["calls", "rows", "cost_usd"];

/// The whitespace-separated fields of the text line that starts with `key`.
fn text_line(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .find(|l| l.starts_with(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no line for {key} in\n{text}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn spend_by_day_counts_calls_rows_and_cost_per_utc_day_from_the_since_day() {
    let db = TestDb::new().await;
    fixture(&db, &[LEDGER]).await;
    let r = spend_json(&db, &["--since", "2026-11-02", "--by", "day"]).await;
    assert_eq!(r["since"], "2026-11-02");
    assert_eq!(r["by"], "day");
    assert_eq!(r["sandbox"], false);
    // The call at 23:59:59 UTC the day before is not counted.
    assert_eq!(keys(&r), ["2026-11-02", "2026-11-03"]);
    assert_eq!(
        figures(group(&r, "2026-11-02"), MAIN),
        ["calls=6", "rows=6", "cost_usd=0.09018"]
    );
    assert_eq!(
        figures(group(&r, "2026-11-03"), MAIN),
        ["calls=4", "rows=62", "cost_usd=0.08099"]
    );
    assert_eq!(
        figures(&r["total"], MAIN),
        ["calls=10", "rows=68", "cost_usd=0.17117"]
    );
    let text = spend_text(&db, &["--since", "2026-11-02", "--by", "day"]).await;
    assert_eq!(
        text_line(&text, "2026-11-03")[..4],
        ["2026-11-03", "4", "62", "$0.08099"]
    );
    assert_eq!(
        text_line(&text, "total")[..4],
        ["total", "10", "68", "$0.17117"]
    );
    assert_eq!(r["credentials_checks"], 1, "{r:#}");
    assert!(
        text.contains("credentials checks: 1 (appendix/user_data, free; no job's call"),
        "{text}"
    );
}

#[tokio::test]
async fn spend_by_job_and_by_endpoint_split_the_same_calls_to_the_same_total() {
    let db = TestDb::new().await;
    fixture(&db, &[LEDGER]).await;
    let by_job = spend_json(&db, &["--since", "2026-11-02", "--by", "job"]).await;
    assert_eq!(
        keys(&by_job),
        [
            "a-very-long-job-name-for-the-width-check",
            "brands",
            "rivals"
        ]
    );
    assert_eq!(
        figures(group(&by_job, "brands"), MAIN),
        ["calls=7", "rows=6", "cost_usd=0.11021"]
    );
    assert_eq!(
        figures(group(&by_job, "rivals"), MAIN),
        ["calls=2", "rows=31", "cost_usd=0.04093"]
    );
    let by_endpoint = spend_json(&db, &["--since", "2026-11-02", "--by", "endpoint"]).await;
    assert_eq!(keys(&by_endpoint), ["bulk_ranks", "history", "summary"]);
    assert_eq!(
        figures(group(&by_endpoint, "summary"), MAIN),
        ["calls=8", "rows=5", "cost_usd=0.13018"]
    );
    assert_eq!(
        figures(group(&by_endpoint, "history"), MAIN),
        ["calls=1", "rows=60", "cost_usd=0.0209"]
    );
    assert_eq!(by_job["total"], by_endpoint["total"]);
    let text = spend_text(&db, &["--since", "2026-11-02", "--by", "endpoint"]).await;
    // summary: 8 calls, 5 rows, $0.13018, of which 4 failed for $0.07006; 1 reused,
    // saving $0.02003.
    assert_eq!(
        text_line(&text, "summary"),
        [
            "summary", "8", "5", "$0.13018", "4", "$0.07006", "1", "$0.02003"
        ]
    );
}

#[tokio::test]
async fn spend_by_run_shows_each_run_with_its_job_kind_and_status() {
    let db = TestDb::new().await;
    fixture(&db, &[LEDGER]).await;
    let r = spend_json(&db, &["--since", "2026-11-02", "--by", "run"]).await;
    assert_eq!(
        keys(&r),
        [
            "#1 brands (once, failed)",
            "#2 rivals (scheduled, running)",
            "#4 a-very-long-job-name-for-the-width-check (scheduled, succeeded)"
        ]
    );
    let first = group(&r, "#1 brands (once, failed)");
    assert_eq!(
        first["run"],
        serde_json::json!({"id": 1, "job": "brands", "kind": "once", "status": "failed"})
    );
    assert_eq!(
        figures(first, MAIN),
        ["calls=7", "rows=6", "cost_usd=0.11021"]
    );
    assert_eq!(
        figures(&r["total"], MAIN),
        ["calls=10", "rows=68", "cost_usd=0.17117"]
    );
    // The demo run's calls were answered by the sandbox: not real spend, no line.
    assert!(!keys(&r).iter().any(|k| k.contains("demo")), "{r:#}");
    let text = spend_text(&db, &["--since", "2026-11-02", "--by", "run"]).await;
    assert_eq!(
        text_line(&text, "#2")[..7],
        [
            "#2",
            "rivals",
            "(scheduled,",
            "running)",
            "2",
            "31",
            "$0.04093"
        ]
    );
}

#[tokio::test]
async fn calls_that_brought_no_data_but_cost_money_are_shown_apart_per_outcome() {
    let db = TestDb::new().await;
    fixture(&db, &[LEDGER]).await;
    let r = spend_json(&db, &["--since", "2026-11-02", "--by", "day"]).await;
    let failed = ["failed_charged_calls", "failed_charged_usd"];
    assert_eq!(
        figures(&r["total"], &failed),
        ["failed_charged_calls=4", "failed_charged_usd=0.07006"]
    );
    // The rejected call and the retry that cost something, on the first day; the
    // throttled call cost nothing and is not among them.
    assert_eq!(
        figures(group(&r, "2026-11-02"), &failed),
        ["failed_charged_calls=2", "failed_charged_usd=0.03"]
    );
    assert_eq!(
        r["failed_charged_by_outcome"],
        serde_json::json!([
            {"outcome": "abandoned", "calls": 1, "cost_usd": "0.02003"},
            {"outcome": "invalid_response", "calls": 1, "cost_usd": "0.02003"},
            {"outcome": "rejected", "calls": 1, "cost_usd": "0.02"},
            {"outcome": "retryable", "calls": 1, "cost_usd": "0.01"},
        ])
    );
    let text = spend_text(&db, &["--since", "2026-11-02"]).await;
    assert!(
        text.contains("failed but charged: 4 calls, $0.07006\n"),
        "{text}"
    );
    assert_eq!(
        text_line(&text, "  rejected")[..3],
        ["rejected", "1", "call"]
    );
    assert!(!text.contains("throttled"), "{text}");
}

#[tokio::test]
async fn estimate_against_actual_compares_only_calls_an_answer_came_back_for() {
    let db = TestDb::new().await;
    fixture(&db, &[LEDGER]).await;
    let r = spend_json(&db, &["--since", "2026-11-02", "--by", "endpoint"]).await;
    let est = [
        "answered_calls",
        "answered_estimated_usd",
        "answered_cost_usd",
    ];
    // Not the abandoned call (its cost is its estimate), not the one in flight, not the
    // reused ones, not the free credentials check, which carries no estimate.
    assert_eq!(
        figures(&r["total"], &est),
        [
            "answered_calls=9",
            "answered_estimated_usd=0.1815",
            "answered_cost_usd=0.15114"
        ]
    );
    assert_eq!(
        figures(group(&r, "history"), &est),
        [
            "answered_calls=1",
            "answered_estimated_usd=0.0212",
            "answered_cost_usd=0.0209"
        ]
    );
    let text = spend_text(&db, &["--since", "2026-11-02", "--by", "endpoint"]).await;
    let estimates = text
        .split("estimate against actual")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_else(|| panic!("no estimate section in\n{text}"));
    // -$0.03036 of $0.1815 is 16.7% below the estimate.
    assert_eq!(
        text_line(estimates, "total"),
        ["total", "9", "$0.1815", "$0.15114", "-$0.03036", "-16.7%"]
    );
    assert_eq!(
        text_line(estimates, "history"),
        ["history", "1", "$0.0212", "$0.0209", "-$0.0003", "-1.4%"]
    );
    // The credentials check has no estimate, so no line.
    assert!(!estimates.contains("appendix/user_data"), "{estimates}");
}

#[tokio::test]
async fn reused_answers_count_the_cost_of_the_call_they_reused_as_saved() {
    let db = TestDb::new().await;
    fixture(&db, &[LEDGER]).await;
    let r = spend_json(&db, &["--since", "2026-11-02", "--by", "job"]).await;
    let reused = ["reused_calls", "reused_saved_usd"];
    assert_eq!(
        figures(&r["total"], &reused),
        ["reused_calls=2", "reused_saved_usd=0.04093"]
    );
    assert_eq!(
        figures(group(&r, "rivals"), &reused),
        ["reused_calls=1", "reused_saved_usd=0.02003"]
    );
    assert_eq!(
        figures(
            group(&r, "a-very-long-job-name-for-the-width-check"),
            &reused
        ),
        ["reused_calls=1", "reused_saved_usd=0.0209"]
    );
    // A reused answer is not a request: no call, no cost.
    assert_eq!(group(&r, "rivals")["calls"], 2);
    let text = spend_text(&db, &["--since", "2026-11-02", "--by", "job"]).await;
    assert!(
        text.contains("reused answers: 2 calls, saved $0.04093\n"),
        "{text}"
    );
}

#[tokio::test]
async fn calls_in_flight_show_the_estimate_reserved_and_no_cost() {
    let db = TestDb::new().await;
    fixture(&db, &[LEDGER]).await;
    let r = spend_json(&db, &["--since", "2026-11-02", "--by", "endpoint"]).await;
    assert_eq!(
        figures(
            group(&r, "history"),
            &["calls", "in_flight_calls", "in_flight_estimated_usd"]
        ),
        [
            "calls=1",
            "in_flight_calls=1",
            "in_flight_estimated_usd=0.0212"
        ]
    );
    let text = spend_text(&db, &["--since", "2026-11-02"]).await;
    assert!(
        text.contains("in flight: 1 call sent, not answered yet, $0.0212 reserved"),
        "{text}"
    );
}

#[tokio::test]
async fn sandbox_calls_are_left_out_of_every_figure_and_counted_on_one_line() {
    let db = TestDb::new().await;
    fixture(&db, &[LEDGER, SNAPSHOTS]).await;
    let real = spend_json(&db, &["--since", "2026-11-02", "--by", "job"]).await;
    assert!(!keys(&real).contains(&"demo"), "{real:#}");
    assert_eq!(
        real["sandbox_left_out"],
        serde_json::json!({"calls": 3, "cost_usd": "0.06012"})
    );
    // Nothing of the sandbox's rejected call or its reused answer leaks into the figures.
    assert_eq!(real["total"]["failed_charged_calls"], 4);
    assert_eq!(real["total"]["reused_calls"], 2);
    assert_eq!(real["total"]["in_flight_calls"], 1);
    // Nor its balance: the newest real snapshot, though the sandbox's is newer.
    assert_eq!(real["balance"]["balance_usd"], "12.34567");
    let text = spend_text(&db, &["--since", "2026-11-02", "--by", "job"]).await;
    assert!(
        text.contains("sandbox: 3 calls left out, would have cost $0.06012"),
        "{text}"
    );
}

#[tokio::test]
async fn the_sandbox_flag_reports_only_the_sandbox_calls() {
    let db = TestDb::new().await;
    fixture(&db, &[LEDGER, SNAPSHOTS]).await;
    let r = spend_json(&db, &["--since", "2026-11-02", "--by", "job", "--sandbox"]).await;
    assert_eq!(r["sandbox"], true);
    assert_eq!(keys(&r), ["demo"]);
    assert_eq!(
        figures(
            &r["total"],
            &[
                "calls",
                "rows",
                "cost_usd",
                "failed_charged_calls",
                "failed_charged_usd",
                "answered_calls",
                "answered_estimated_usd",
                "answered_cost_usd",
                "reused_calls",
                "reused_saved_usd",
                "in_flight_calls",
                "in_flight_estimated_usd"
            ]
        ),
        [
            "calls=3",
            "rows=4",
            "cost_usd=0.06012",
            "failed_charged_calls=1",
            "failed_charged_usd=0.02",
            "answered_calls=3",
            "answered_estimated_usd=0.06015",
            "answered_cost_usd=0.06012",
            "reused_calls=1",
            "reused_saved_usd=0.02003",
            "in_flight_calls=1",
            "in_flight_estimated_usd=0.02003"
        ]
    );
    // What the default report says it left out is exactly what this one shows.
    let real = spend_json(&db, &["--since", "2026-11-02"]).await;
    assert_eq!(real["sandbox_left_out"]["calls"], r["total"]["calls"]);
    assert_eq!(real["sandbox_left_out"]["cost_usd"], r["total"]["cost_usd"]);
    assert_eq!(r["sandbox_left_out"], Value::Null);
    assert_eq!(r["balance"]["api_host"], "127.0.0.1:8089");
    let text = spend_text(&db, &["--since", "2026-11-02", "--by", "job", "--sandbox"]).await;
    assert!(
        text.contains("sandbox calls only: not real spend"),
        "{text}"
    );
    assert_eq!(
        text_line(&text, "demo")[..4],
        ["demo", "3", "4", "$0.06012"]
    );
    // Keys shorter than "total" do not cut it.
    assert_eq!(
        text_line(&text, "total")[..4],
        ["total", "3", "4", "$0.06012"]
    );
    assert!(text.contains("sandbox balance: $1000.00, read 2026-11-30 07:00:00 UTC"));
}

#[tokio::test]
async fn budgets_in_force_show_what_is_booked_and_left_in_the_current_day_and_month() {
    let db = TestDb::new().await;
    let before = Utc::now().date_naive();
    fixture(&db, &[LEDGER, BUDGETS]).await;
    let r = spend_json(&db, &["--since", "2026-11-02"]).await;
    let text = spend_text(&db, &["--since", "2026-11-02"]).await;
    let today = Utc::now().date_naive();
    if today != before {
        // The fixture booked yesterday's totals; a report of the new day shows nothing
        // booked for it, rightly.
        eprintln!(
            "crossed midnight UTC during the test; the current day's figures are not checked"
        );
        return;
    }
    let month = NaiveDate::from_ymd_opt(
        chrono::Datelike::year(&today),
        chrono::Datelike::month(&today),
        1,
    )
    .unwrap();
    let budgets: Vec<String> = r["budgets"]
        .as_array()
        .expect("budgets")
        .iter()
        .map(|b| {
            format!(
                "{} {} {} cap {} booked {} left {} held {}",
                b["budget"].as_str().unwrap(),
                b["period_kind"].as_str().unwrap(),
                b["period"].as_str().unwrap(),
                b["cap_usd"].as_str().unwrap(),
                b["booked_usd"].as_str().unwrap(),
                b["left_usd"].as_str().unwrap(),
                b["held_calls"]
            )
        })
        .collect();
    assert_eq!(
        budgets,
        [
            format!("budget.daily_usd day {today} cap 1 booked 0.12003 left 0.87997 held 0"),
            format!("budget.monthly_usd month {month} cap 20 booked 3.25 left 16.75 held 0"),
            format!(
                "a-very-long-job-name-for-the-width-check.budget_monthly_usd month {month} cap 2 booked 0 left 2 held 0"
            ),
            format!(
                "brands.budget_monthly_usd month {month} cap 0.05 booked 0.06 left -0.01 held 2"
            ),
        ]
    );
    assert_eq!(
        text_line(&text, "budget.daily_usd"),
        [
            "budget.daily_usd",
            "day",
            &today.to_string(),
            "$1.00",
            "$0.12003",
            "$0.87997",
            "0"
        ]
    );
    // Over its cap by the estimate error of the calls in flight: a negative left.
    assert_eq!(
        text_line(&text, "brands.budget_monthly_usd")[3..],
        ["$0.05", "$0.06", "-$0.01", "2"]
    );
}

#[tokio::test]
async fn without_budgets_or_a_balance_the_report_says_so() {
    let db = TestDb::new().await;
    fixture(&db, &[LEDGER]).await;
    let r = spend_json(&db, &["--since", "2026-11-02"]).await;
    assert_eq!(r["budgets"], serde_json::json!([]));
    assert_eq!(r["balance"], Value::Null);
    let text = spend_text(&db, &["--since", "2026-11-02"]).await;
    assert!(text.contains("\nbudgets: none in force"), "{text}");
    assert!(text.contains("\nbalance: unknown"), "{text}");
}

#[tokio::test]
async fn the_last_known_balance_is_the_newest_real_snapshot_with_its_host_and_time() {
    let db = TestDb::new().await;
    fixture(&db, &[SNAPSHOTS]).await;
    let r = spend_json(&db, &[]).await;
    assert_eq!(
        r["balance"],
        serde_json::json!({
            "balance_usd": "12.34567",
            "taken_at": "2026-11-30T06:00:00Z",
            "api_host": "api.dataforseo.com"
        })
    );
    let text = spend_text(&db, &[]).await;
    assert!(
        text.contains(
            "\nbalance: $12.34567, read 2026-11-30 06:00:00 UTC from api.dataforseo.com\n"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn without_since_the_report_covers_the_current_utc_month() {
    let db = TestDb::new().await;
    let before = Utc::now().date_naive();
    fixture(&db, &[]).await;
    let store = db.store().await;
    sqlx::raw_sql(
        "INSERT INTO linkledger.api_calls (endpoint, request, attempt, started_at, outcome, cost_usd)
         VALUES ('summary', '{}', 1, now(), 'ok', 0.01),
                ('summary', '{}', 1, date_trunc('month', now() AT TIME ZONE 'UTC')
                                     AT TIME ZONE 'UTC' - interval '1 second', 'ok', 0.5)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let r = spend_json(&db, &[]).await;
    let after = Utc::now().date_naive();
    if chrono::Datelike::month(&before) != chrono::Datelike::month(&after) {
        eprintln!("crossed into a new UTC month during the test; not checked");
        return;
    }
    let first = NaiveDate::from_ymd_opt(
        chrono::Datelike::year(&after),
        chrono::Datelike::month(&after),
        1,
    )
    .unwrap();
    assert_eq!(r["since"], first.to_string());
    assert_eq!(
        figures(&r["total"], MAIN),
        ["calls=1", "rows=0", "cost_usd=0.01"]
    );
}

#[tokio::test]
async fn the_text_report_fits_in_100_columns_and_prints_money_to_a_fraction_of_a_cent() {
    let db = TestDb::new().await;
    fixture(&db, &[LEDGER, BUDGETS, SNAPSHOTS]).await;
    for by in ["day", "job", "endpoint", "run"] {
        for sandbox in [false, true] {
            let mut args = vec!["--since", "2026-11-02", "--by", by];
            if sandbox {
                args.push("--sandbox");
            }
            let text = spend_text(&db, &args).await;
            for line in text.lines() {
                assert!(
                    line.chars().count() <= 100,
                    "{args:?}: {} columns: {line}\n{text}",
                    line.chars().count()
                );
            }
        }
    }
    let text = spend_text(&db, &["--since", "2026-11-02", "--by", "run"]).await;
    // The long key is cut to fit, and still says which run it is and how it ended.
    assert!(
        text.lines().any(|l| l.starts_with("#4 a-very-long-job")
            && l.contains("… (scheduled, succeeded) ")),
        "{text}"
    );
    assert!(text.contains("$0.02003"), "{text}");
    assert!(text.contains("$0.17117"), "{text}");
}

/// The same figures whether or not this database marks the sandbox's answers as
/// sandbox calls: between them, the real and the sandbox report account for every
/// request the sandbox served and every cent it charged.
#[tokio::test]
async fn spend_accounts_for_what_a_real_run_against_the_sandbox_was_charged() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let job = "name = \"brands\"\ntargets = [\"a.com\", \"b.com\", \"c.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n[[collect]]\nendpoint = \"bulk_ranks\"\nschedule = \"@daily\"\n";
    let wd = Workdir::new(&[("brands.toml", job)]);
    let env = env_for(&db, &sb);
    let run = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert!(run.status.success(), "{}", stderr(&run));
    let report = |sandbox: bool| {
        let mut args = vec!["spend", "--by", "endpoint", "--json"];
        if sandbox {
            args.push("--sandbox");
        }
        let (path, env) = (wd.path().to_path_buf(), env.clone());
        async move {
            let out = linkledger(&path, &env, &args).await;
            assert!(out.status.success(), "{}", stderr(&out));
            serde_json::from_str::<Value>(&stdout(&out)).expect("JSON")
        }
    };
    let (real, sandbox) = (report(false).await, report(true).await);
    let sum = |key: &str, field: &str| -> rust_decimal::Decimal {
        [&real, &sandbox]
            .iter()
            .flat_map(|r| r["groups"].as_array().unwrap().iter())
            .filter(|g| g["key"] == key)
            .map(|g| -> rust_decimal::Decimal {
                match &g[field] {
                    Value::String(s) => s.parse().unwrap(),
                    n => n.to_string().parse().unwrap(),
                }
            })
            .sum()
    };
    // 3 summary calls of 1 row, 1 bulk_ranks call of 3 rows.
    assert_eq!(sum("summary", "calls"), 3.into());
    assert_eq!(sum("summary", "cost_usd"), "0.06009".parse().unwrap());
    assert_eq!(sum("bulk_ranks", "calls"), 1.into());
    assert_eq!(sum("bulk_ranks", "cost_usd"), "0.02009".parse().unwrap());
    let charged: rust_decimal::Decimal = sb.stats().charged_usd.decimal();
    assert_eq!(
        sum("summary", "cost_usd") + sum("bulk_ranks", "cost_usd"),
        charged
    );
}

/// What `spend --by job` says of a month is what the `spend_by_job_month` view, which BI
/// tools read, says of it; the view's `(none)` row holds only the free credentials
/// check here, which `spend` counts apart.
#[tokio::test]
async fn spend_by_job_agrees_with_the_spend_by_job_month_view() {
    let db = TestDb::new().await;
    fixture(&db, &[LEDGER]).await;
    let store = db.store().await;
    let view: Vec<(
        String,
        i64,
        i64,
        rust_decimal::Decimal,
        rust_decimal::Decimal,
        i64,
    )> = sqlx::query_as(
        "SELECT job, calls, rows, cost_usd, failed_charged_usd, reused_calls
             FROM linkledger.spend_by_job_month
             WHERE month = '2026-11-01' AND job <> '(none)' ORDER BY job",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let r = spend_json(&db, &["--since", "2026-11-01", "--by", "job"]).await;
    let report: Vec<(
        String,
        i64,
        i64,
        rust_decimal::Decimal,
        rust_decimal::Decimal,
        i64,
    )> = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap().to_string(),
                g["calls"].as_i64().unwrap(),
                g["rows"].as_i64().unwrap(),
                g["cost_usd"].as_str().unwrap().parse().unwrap(),
                g["failed_charged_usd"].as_str().unwrap().parse().unwrap(),
                g["reused_calls"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(report, view);
    // The call of 2026-11-01 23:59:59 UTC is in this month's figures.
    assert_eq!(group(&r, "brands")["cost_usd"], "0.61021");
}
