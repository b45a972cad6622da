//! Budgets as caps, estimates that match the bill, answers bought once, the balance,
//! gateways' flat prices and sandbox spend: against a sandbox that passes for the
//! real API (it does not mark its answers), so its charges count.

use std::time::Duration;

use linkledger::sandbox::{GatewayOptions, Sandbox, SandboxOptions};
use linkledger::store::RunKind;
use rust_decimal::Decimal;

use crate::common::*;
use crate::harness::*;

/// The sandbox as if it were the real API: its charges are real spend.
fn real_api() -> SandboxOptions {
    SandboxOptions {
        identify: false,
        ..SandboxOptions::default()
    }
}

/// A summary answer costs $0.02 + $0.00003 for its one row.
fn summary_cost() -> Decimal {
    "0.02003".parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn summary_job_named(name: &str, targets: &[String], extra: &str) -> String {
    let list: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "name = \"{name}\"\ntargets = [{}]\n{extra}\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
        list.join(", ")
    )
}

fn targets(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{prefix}{i:02}.example.com"))
        .collect()
}

async fn work_states(
    store: &linkledger::store::Store,
    run_kind: &str,
) -> Vec<(String, Option<String>, i64)> {
    sqlx::query_as(
        "SELECT state, held_by, count(*) FROM linkledger.work WHERE run_kind = $1
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(run_kind)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

/// Waits until the scheduled work's [`work_states`] are `expected`.
async fn wait_for_scheduled_work(
    store: &linkledger::store::Store,
    within: Duration,
    what: &str,
    expected: Vec<(String, Option<String>, i64)>,
) {
    wait_for(within, what, || async {
        work_states(store, "scheduled").await == expected
    })
    .await;
}

#[tokio::test]
async fn a_daily_cap_holds_calls_back_queued_until_it_is_raised_and_reloaded() {
    // 20 calls of $0.02003 and a cap of $0.10: four fit.
    let sc = scene(20, real_api(), &[("LINKLEDGER_QUEUE__WORKERS", "30")]).await;
    sc.wd.write_config("[budget]\ndaily_usd = 0.10\n");
    let store = sc.store.clone();
    let mut d = sc.start_daemon().await;
    wait_for_scheduled_work(
        &store,
        Duration::from_secs(30),
        "four calls made and sixteen held",
        vec![
            (
                "queued".to_string(),
                Some("budget.daily_usd".to_string()),
                16,
            ),
            ("succeeded".to_string(), None, 4),
        ],
    )
    .await;
    assert_eq!(sc.sb.stats().requests, 4, "{:?}", sc.sb.stats());
    let total = ledger_total(&store).await;
    assert_eq!(total, summary_cost() * Decimal::from(4));
    assert!(total <= dec("0.10"));
    let (status, _) = d.get("/healthz").await;
    assert_eq!(status, 200, "a budget is not a fault");
    let (_, metrics) = d.get("/metrics").await;
    assert!(
        metrics.contains(r#"linkledger_budget_held_calls{budget="budget.daily_usd"} 16"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"linkledger_budget_left_usd{budget="budget.daily_usd"} 0.0198"#),
        "{metrics}"
    );
    assert!(d.log().contains("held by budget.daily_usd"), "{}", d.log());
    let last_error: String =
        sqlx::query_scalar("SELECT last_error FROM linkledger.work WHERE state = 'queued' LIMIT 1")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(
        last_error.contains("budget.daily_usd ($0.10 per UTC day)"),
        "{last_error}"
    );

    // Raise the cap and reload: the held calls go.
    d.reload_config("[budget]\ndaily_usd = 1.0\n");
    wait_for_scheduled_work(
        &store,
        Duration::from_secs(30),
        "every call made",
        vec![("succeeded".to_string(), None, 20)],
    )
    .await;
    assert_eq!(sc.sb.stats().requests, 20);
    assert_eq!(
        ledger_total(&store).await,
        summary_cost() * Decimal::from(20)
    );
    d.stop(Duration::from_secs(30)).await;
}

#[tokio::test]
async fn two_daemons_and_a_once_run_together_stay_within_one_daily_cap() {
    let sc = scene(20, real_api(), &[("LINKLEDGER_QUEUE__WORKERS", "30")]).await;
    sc.wd.write_config("[budget]\ndaily_usd = 0.10\n");
    sc.wd.write_job(
        "once.toml",
        &summary_job_named("extra", &targets("once", 10), ""),
    );
    let store = sc.store.clone();
    let (mut a, mut b) = sc.start_two_daemons().await;
    let once = linkledger(sc.wd.path(), &sc.env, &["run", "--once", "--job", "extra"]).await;
    assert_eq!(once.status.code(), Some(1), "{}", stderr(&once));
    assert!(
        stderr(&once).contains("budget.daily_usd held back"),
        "{}",
        stderr(&once)
    );
    // Nothing in flight any more: every scheduled call is done or held.
    wait_for_count(
        &store,
        Duration::from_secs(30),
        "the daemons settled",
        "SELECT count(*) FROM linkledger.work WHERE run_kind = 'scheduled' AND NOT (state = 'succeeded' OR held_by IS NOT NULL)",
        |n| n == 0,
    )
    .await;
    let stats = sc.sb.stats();
    assert_eq!(stats.requests, 4, "the cap allows four: {stats:?}");
    assert!(ledger_total(&store).await <= dec("0.10"));

    // One daemon reloads a raised cap; the caps in force are the database's, so the
    // other one runs the calls it holds too.
    a.reload_config("[budget]\ndaily_usd = 1.0\n");
    wait_for_scheduled_work(
        &store,
        Duration::from_secs(30),
        "every scheduled call made",
        vec![("succeeded".to_string(), None, 20)],
    )
    .await;
    stop_both(&mut a, &mut b, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_jobs_monthly_budget_holds_that_job_only() {
    let db = TestDb::new().await;
    let sb = sandbox(real_api()).await;
    let wd = Workdir::new(&[
        (
            "capped.toml",
            &summary_job_named("capped", &targets("capped", 5), "budget_monthly_usd = 0.05"),
        ),
        (
            "free.toml",
            &summary_job_named("free", &targets("free", 5), ""),
        ),
    ]);
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("capped.budget_monthly_usd held back 3 calls"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        sb.stats().requests,
        7,
        "two of the capped job, five of the other"
    );
    let store = db.store().await;
    let per_job: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT job, state, count(*) FROM linkledger.work GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        per_job,
        vec![
            ("capped".to_string(), "cancelled".to_string(), 3),
            ("capped".into(), "succeeded".into(), 2),
            ("free".into(), "succeeded".into(), 5),
        ]
    );
    let free: String = sqlx::query_scalar("SELECT status FROM linkledger.runs WHERE job = 'free'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(free, "succeeded");
}

#[tokio::test]
async fn estimates_of_history_and_timeseries_calls_equal_what_the_api_bills() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let exec = executor(&store, &sb, 4);
    let jobs = [
        job_for(
            "history",
            &["h.example.com".into()],
            "date_from = \"2024-03-10\"",
        ),
        job_for(
            "timeseries_summary",
            &["d.example.com".into()],
            "date_from = \"-40d\", group_range = \"day\"",
        ),
        job_for(
            "timeseries_summary",
            &["w.example.com".into()],
            "date_from = \"-100d\", group_range = \"week\"",
        ),
        job_for(
            "timeseries_new_lost_summary",
            &["m.example.com".into()],
            "date_from = \"-14m\", group_range = \"month\"",
        ),
        job_for(
            "timeseries_new_lost_summary",
            &["y.example.com".into()],
            "date_from = \"2019-02-01\", group_range = \"year\"",
        ),
    ];
    let refs: Vec<&linkledger::jobs::Job> = jobs.iter().collect();
    let report = run_once(&exec, &refs, RunKind::Once, today())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.jobs);
    let calls: Vec<(Vec<String>, Decimal, Decimal)> = sqlx::query_as(
        "SELECT targets, estimated_usd, cost_usd FROM linkledger.api_calls
         WHERE endpoint <> 'appendix/user_data' ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(calls.len(), 5);
    for (targets, estimated, cost) in calls {
        assert_eq!(
            estimated, cost,
            "{targets:?}: estimated {estimated}, billed {cost}"
        );
    }
}

#[tokio::test]
async fn two_jobs_asking_for_the_same_call_the_same_day_pay_for_it_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = sandbox(real_api()).await;
    let exec = executor(&store, &sb, 8);
    let same = ["same.example.com".to_string()];
    let a = job(&summary_job_named("first", &same, ""));
    let b = job(&summary_job_named("second", &same, ""));
    let report = run_once(&exec, &[&a, &b], RunKind::Once, today())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.jobs);
    assert_eq!(sb.stats().requests, 1, "one paid call");
    let outcomes: Vec<(String, Decimal)> = sqlx::query_as(
        "SELECT outcome, cost_usd FROM linkledger.api_calls WHERE endpoint = 'summary' ORDER BY outcome",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        outcomes,
        vec![
            ("ok".to_string(), summary_cost()),
            ("reused".into(), Decimal::ZERO)
        ]
    );
    // Later the same day, another run of either job buys nothing either.
    let again = run_once(&exec, &[&b], RunKind::Once, today())
        .await
        .unwrap();
    assert!(again.ok());
    assert_eq!(sb.stats().requests, 1);
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.summary").await,
        1
    );
}

#[tokio::test]
async fn a_balance_below_a_week_of_projected_spend_is_warned_about_and_exported() {
    // Ten summary targets daily: $0.2003 a day against a balance of $0.50.
    let sc = scene(
        10,
        SandboxOptions {
            balance: "0.50".parse().unwrap(),
            ..real_api()
        },
        &[],
    )
    .await;
    sc.wd.write_job(
        "daily.toml",
        &summary_job_named("daily", &targets("daily", 10), ""),
    );
    let mut d = sc.start_daemon().await;
    d.wait_for_log(
        Duration::from_secs(20),
        "the balance covers fewer than 7 days",
    )
    .await;
    let (_, metrics) = d.get("/metrics").await;
    assert!(metrics.contains("linkledger_balance_usd 0.5"), "{metrics}");
    let days = metric(&metrics, "linkledger_balance_days_left").expect("the runway metric");
    assert!(days < 7.0, "{days}");
    d.stop(Duration::from_secs(30)).await;
}

#[tokio::test]
async fn sandbox_calls_are_marked_and_never_count_against_a_budget() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[("j.toml", &summary_job_named("j", &targets("sb", 5), ""))]);
    let env = with_env(
        env_for(&db, &sb),
        &[("LINKLEDGER_BUDGET__DAILY_USD", "0.03")],
    );
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(sb.stats().requests, 5, "a sandbox is not held back");
    let store = db.store().await;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'summary' AND sandbox AND booked_on IS NULL"
        )
        .await,
        5
    );
    let booked: Decimal =
        sqlx::query_scalar("SELECT coalesce(sum(booked_usd), 0) FROM linkledger.spend_totals")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(booked, Decimal::ZERO);
}

#[tokio::test]
async fn a_gateways_flat_price_is_what_the_ledger_books_with_the_reported_cost_beside_it() {
    let db = TestDb::new().await;
    let sb = sandbox(SandboxOptions {
        gateway: Some(GatewayOptions {
            prefix: "/apis/v1/dataforseo".into(),
        }),
        ..real_api()
    })
    .await;
    let wd = Workdir::new(&[("j.toml", &summary_job_named("j", &targets("gw", 3), ""))]);
    let env = vec![
        ("DATABASE_URL".to_string(), db.url.clone()),
        ("LINKLEDGER_API__BASE_URL".into(), sb.base_url()),
        ("LINKLEDGER_API__AUTH".into(), "bearer".into()),
        ("DATAFORSEO_TOKEN".into(), "sandbox-token".into()),
        ("LINKLEDGER_API__BODY".into(), "object".into()),
        ("LINKLEDGER_API__PRICE_PER_CALL".into(), "0.05".into()),
        ("LINKLEDGER_BUDGET__DAILY_USD".into(), "0.12".into()),
    ];
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    // Two calls fit $0.12 at the gateway's $0.05; the third is held.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(sb.stats().requests, 2, "{:?}", sb.stats());
    let store = db.store().await;
    let rows: Vec<(Decimal, Decimal, Decimal)> = sqlx::query_as(
        "SELECT estimated_usd, cost_usd, reported_cost_usd FROM linkledger.api_calls
         WHERE endpoint = 'summary' ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(rows, vec![(dec("0.05"), dec("0.05"), summary_cost()); 2]);
}

#[tokio::test]
async fn a_call_whose_estimate_alone_is_over_a_cap_fails_at_once_saying_so() {
    let db = TestDb::new().await;
    let sb = sandbox(real_api()).await;
    let wd = Workdir::new(&[(
        "tiny.toml",
        &summary_job_named("tiny", &targets("tiny", 2), "budget_monthly_usd = 0.01"),
    )]);
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("alone is more than tiny.budget_monthly_usd ($0.01)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sb.stats().requests, 0);
    let store = db.store().await;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.work WHERE state = 'failed' AND failures = 0"
        )
        .await,
        2,
        "failed without a retry"
    );
}

#[tokio::test]
async fn an_answer_that_turns_out_to_be_a_sandboxs_releases_its_reservation() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let job = job_for("summary", &["late.example.com".to_string()], "");
    let run = enqueue_job(&store, &job, RunKind::Once, 3).await;
    let claimed = claim_one(&store, "w", Duration::from_secs(30), run).await;
    let fence = claimed.fence();
    let targets = vec!["late.example.com".to_string()];
    let record = linkledger::store::CallRecord {
        run_id: Some(run),
        job: Some("t"),
        collection: Some("summary"),
        endpoint: "summary",
        targets: &targets,
        request: &claimed.task,
        attempt: fence.attempt,
        api_host: Some("127.0.0.1:1"),
    };
    // Not known as a sandbox when it was booked.
    let booking = linkledger::store::Booking {
        estimate: "0.02003".parse().unwrap(),
        sandbox: false,
        free: false,
    };
    store.prepare_budgets(Some("t")).await.unwrap();
    let linkledger::store::SendDecision::Sent(call_id) = store
        .record_sent_booked(&record, Some(fence), &booking)
        .await
        .unwrap()
    else {
        panic!("not booked");
    };
    let booked = || async {
        sqlx::query_scalar::<_, Decimal>(
            "SELECT booked_usd FROM linkledger.spend_totals WHERE scope = 'daily'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap()
    };
    assert_eq!(booked().await, summary_cost());
    // Its answer says it came from a sandbox.
    let attempt = linkledger::api::Attempt {
        started_at: chrono::Utc::now(),
        duration: Duration::from_millis(5),
        http_status: Some(200),
        body: Some(serde_json::json!({"status_code": 20000, "cost": 0.02003, "tasks": []})),
        unparsed: None,
        spilled: None,
        envelope: None,
        outcome: linkledger::api::Outcome::Ok,
        cost: Some("0.02003".parse().unwrap()),
        reached: true,
        sandbox: true,
    };
    let settlement = linkledger::store::Settlement {
        cost: attempt.cost,
        cost_estimated: false,
        budget: attempt.cost,
        sandbox: true,
    };
    store
        .record_answer(call_id, "summary", &attempt, true, &settlement)
        .await
        .unwrap();
    assert_eq!(
        booked().await,
        Decimal::ZERO,
        "sandbox spend counts nothing"
    );
    let (sandbox, booked_on): (bool, Option<chrono::NaiveDate>) =
        sqlx::query_as("SELECT sandbox, booked_on FROM linkledger.api_calls WHERE id = $1")
            .bind(call_id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(sandbox && booked_on.is_none());
}

/// A once-run of `targets` summaries against an API that charges as usual but
/// reports the cost `quirk` says, under a daily cap of $0.10.
async fn once_with_cost_quirk(
    quirk: &str,
    targets: usize,
) -> (TestDb, Sandbox, std::process::Output) {
    let db = TestDb::new().await;
    let sb = sandbox(real_api()).await;
    let list: Vec<String> = (0..targets)
        .map(|i| format!("\"{quirk}.t{i}.example.com\""))
        .collect();
    let wd = Workdir::new(&[(
        "costs.toml",
        &format!(
            "name = \"costs\"\ntargets = [{}]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
            list.join(", ")
        ),
    )]);
    let env = with_env(
        env_for(&db, &sb),
        &[
            ("LINKLEDGER_BUDGET__DAILY_USD", "0.10"),
            ("LINKLEDGER_API__MAX_IN_FLIGHT", "1"),
        ],
    );
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    (db, sb, out)
}

#[tokio::test]
async fn a_negative_cost_in_an_answer_never_credits_the_budgets() {
    // Twenty calls of $0.02003, each answer saying it cost -$5: the cap of $0.10 holds
    // all but four, as it would with the true cost.
    let (db, sb, out) = once_with_cost_quirk("quirk-cost-negative", 20).await;
    assert!(!out.status.success(), "held calls fail the run");
    assert!(
        stdout(&out).contains("budget.daily_usd") || stderr(&out).contains("budget.daily_usd"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(sb.stats().requests, 4, "{:?}", sb.stats());
    let store = db.store().await;
    let booked: Vec<(Decimal, Decimal, Option<Decimal>, bool)> = sqlx::query_as(
        "SELECT cost_usd, estimated_usd, reported_cost_usd, cost_estimated
         FROM linkledger.api_calls WHERE endpoint = 'summary' AND outcome = 'ok'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(booked.len(), 4);
    for (cost, estimate, reported, estimated) in booked {
        assert_eq!(cost, estimate);
        assert_eq!(reported, Some(dec("-5")));
        assert!(estimated);
    }
    let spend = linkledger(
        std::path::Path::new("."),
        &[("DATABASE_URL".to_string(), db.url.clone())],
        &["spend"],
    )
    .await;
    assert!(
        stdout(&spend).contains("booked at the estimate: 4 calls, $0.08012"),
        "{}",
        stdout(&spend)
    );
}

#[tokio::test]
async fn a_huge_or_missing_cost_is_booked_at_the_estimate_not_as_free() {
    for quirk in ["quirk-cost-huge", "quirk-cost-missing"] {
        let (db, sb, out) = once_with_cost_quirk(quirk, 2).await;
        assert!(out.status.success(), "{quirk}: {}", stderr(&out));
        assert_eq!(sb.stats().requests, 2);
        let store = db.store().await;
        let (total, estimated): (Decimal, i64) = sqlx::query_as(
            "SELECT sum(cost_usd), count(*) FILTER (WHERE cost_estimated)
             FROM linkledger.api_calls WHERE endpoint = 'summary'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(total, dec("0.04006"), "{quirk}");
        assert_eq!(estimated, 2, "{quirk}");
        assert_eq!(ledger_total(&store).await, sb.stats().charged_usd.decimal());
    }
}
