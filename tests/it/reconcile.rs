//! The ledger reconciled with the account's own books (`appendix/user_data`'s
//! `money.statistics.day`), through the sandbox, on real PostgreSQL: a closed day's
//! abandoned estimates settled to what the account charged (estimate and settlement
//! both kept), `spend --reconcile`, another consumer's spend detected by the daemon,
//! and the ledger after kill -9s under faults brought within one call's price of what
//! the sandbox charged.

use std::time::Duration;

use linkledger::money::Usd;
use linkledger::ops::reconcile::{another_consumer, assess, reconcile_closed_days};
use linkledger::sandbox::OtherConsumer;
use linkledger::store::Store;
use rust_decimal::Decimal;

use crate::common::*;
use crate::harness::*;

fn usd(s: &str) -> Usd {
    s.parse().unwrap()
}

fn targets(n: usize, prefix: &str) -> Vec<String> {
    (0..n)
        .map(|i| format!("{prefix}{i:02}.example.com"))
        .collect()
}

/// What the ledger books for the account behind `host`, the credentials checks aside.
async fn ledger_of(store: &Store, host: &str) -> Decimal {
    sqlx::query_scalar(
        "SELECT coalesce(sum(cost_usd), 0) FROM linkledger.api_calls
         WHERE api_host = $1 AND endpoint <> 'appendix/user_data'",
    )
    .bind(host)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// A request a dead process booked and never sent: `abandoned` at its estimate.
async fn abandoned_never_sent(store: &Store, host: &str, estimate: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO linkledger.api_calls
           (endpoint, targets, request, attempt, started_at, outcome, cost_usd,
            estimated_usd, budget_usd, api_host, error)
         VALUES ('summary', '{x.example.com}', '[{\"target\": \"x.example.com\"}]', 1, now(),
                 'abandoned', $2::numeric, $2::numeric, $2::numeric, $1,
                 'no answer: the process died with the request in flight')
         RETURNING id",
    )
    .bind(host)
    .bind(estimate)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_closed_days_abandoned_estimates_are_settled_to_what_the_account_charged_and_spend_reconcile_shows_it()
 {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let exec = executor(&store, &sb, 4);
    let host = exec.client().api_host().to_string();
    let job = job_for("summary", &targets(5, "rec"), "");
    run_once(&exec, &[&job], linkledger::store::RunKind::Once, today())
        .await
        .unwrap();
    let charged = sb.stats().charged_usd;
    assert!(charged > Usd::ZERO);
    let dead = abandoned_never_sent(&store, &host, "0.02003").await;
    assert_eq!(
        Usd(ledger_of(&store, &host).await),
        charged + usd("0.02003"),
        "the ledger books the estimate of a call the API never saw"
    );

    exec.sample_account()
        .await
        .unwrap()
        .expect("the books read");
    // The day is open: nothing is reconciled yet.
    assert!(
        reconcile_closed_days(&store, &host, today(), usd("0.001"))
            .await
            .unwrap()
            .is_empty()
    );
    // Once it is over, it is reconciled and its abandoned estimate settled.
    let tomorrow = today().succ_opt().unwrap();
    let closed = reconcile_closed_days(&store, &host, tomorrow, usd("0.001"))
        .await
        .unwrap();
    assert_eq!(closed.len(), 1);
    let a = &closed[0].assessed;
    let total = a.total_row();
    assert_eq!(total.kind, "abandoned_estimates", "{total:?}");
    assert_eq!(total.account_usd, charged);
    assert_eq!(total.ledger_usd, charged + usd("0.02003"));
    assert_eq!(total.settlement_usd, usd("-0.02003"));
    assert_eq!(a.total.left, Usd::ZERO);
    let summary = a.rows.iter().find(|r| r.function == "summary").unwrap();
    assert_eq!(summary.account_usd, charged, "per function too");

    // The booking is not rewritten silently: the estimate is kept beside the settlement.
    let (cost, settled): (Decimal, bool) = sqlx::query_as(
        "SELECT cost_usd, settled_at IS NOT NULL FROM linkledger.api_calls WHERE id = $1",
    )
    .bind(dead)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!((cost, settled), (Decimal::ZERO, true));
    let (estimate, how): (Decimal, String) =
        sqlx::query_as("SELECT estimate_usd, how FROM linkledger.settlements WHERE call_id = $1")
            .bind(dead)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(Usd(estimate), usd("0.02003"));
    assert!(how.contains("abandoned call"), "{how}");
    assert_eq!(Usd(ledger_of(&store, &host).await), charged, "converged");

    // Reconciled once: a second pass (another daemon) changes nothing.
    assert!(
        reconcile_closed_days(&store, &host, tomorrow, usd("0.001"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.settlements").await,
        1
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.spend_reconciled WHERE kind = 'abandoned_estimates' AND left_usd = 0"
        )
        .await,
        1
    );

    // `spend --reconcile`: per day, account, ledger, difference, what explains it.
    let wd = Workdir::new(&[]);
    let env = env_for(&db, &sb);
    let since = today().to_string();
    let out = linkledger(
        wd.path(),
        &env,
        &["spend", "--reconcile", "--since", &since],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let joined = text.replace("\n  ", " ");
    for needle in [
        "account",
        "ledger",
        "difference",
        "abandoned_estimates",
        "-$0.02003",
        "the account says they cost",
        "none reached the API",
    ] {
        assert!(joined.contains(needle), "{needle:?} in\n{text}");
    }
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    let out = linkledger(
        wd.path(),
        &env,
        &["spend", "--reconcile", "--since", &since, "--json"],
    )
    .await;
    let days: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total = days
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["function"] == "*")
        .unwrap();
    assert_eq!(total["settlement_usd"], "-0.02003");
    assert_eq!(total["account_usd"], charged.0.normalize().to_string());
    sb.stop().await;
}

#[tokio::test]
async fn another_consumers_spend_is_told_apart_and_settles_nothing() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let exec = executor(&store, &sb, 4);
    let host = exec.client().api_host().to_string();
    run_once(
        &exec,
        &[&job_for("summary", &targets(3, "oth"), "")],
        linkledger::store::RunKind::Once,
        today(),
    )
    .await
    .unwrap();
    sb.other_consumer(&OtherConsumer {
        usd: usd("1.25"),
        requests: 40,
        api: "backlinks".into(),
        function: "history".into(),
    });
    exec.sample_account().await.unwrap().unwrap();
    let a = assess(&store, &host, today(), usd("0.05"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.total_row().kind, "another_consumer");
    assert_eq!(another_consumer(&a.total, usd("0.05")), Some(usd("1.25")));
    let history = a.rows.iter().find(|r| r.function == "history").unwrap();
    assert_eq!(
        (history.kind.as_str(), history.difference_usd),
        ("another_consumer", usd("1.25"))
    );
    let summary = a.rows.iter().find(|r| r.function == "summary").unwrap();
    assert_eq!(summary.kind, "matches", "our own function agrees");
    assert!(a.settlements.is_empty());
    assert_eq!(
        another_consumer(&a.total, usd("2")),
        None,
        "under the threshold"
    );
    sb.stop().await;
}

#[tokio::test]
async fn the_daemon_samples_the_books_warns_of_another_consumer_and_takes_the_accounts_daily_limit_as_a_cap()
 {
    let sc = scene(
        2,
        linkledger::sandbox::SandboxOptions::default(),
        &[
            ("LINKLEDGER_RECONCILE__SAMPLE_EVERY", "100ms"),
            ("LINKLEDGER_RECONCILE__THRESHOLD_USD", "0.5"),
        ],
    )
    .await;
    let d = sc.start_daemon().await;
    wait_for_count(
        &sc.store,
        Duration::from_secs(30),
        "the fire's two calls answered",
        "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'ok' AND endpoint = 'summary'",
        |n| n == 2,
    )
    .await;
    wait_for_count(
        &sc.store,
        Duration::from_secs(30),
        "samples of the account's books",
        "SELECT count(*) FROM linkledger.account_samples WHERE backlinks_usd > 0",
        |n| n >= 1,
    )
    .await;
    let (_, health) = d.get("/healthz").await;
    assert!(!health.contains("another consumer"), "{health}");

    sc.sb.other_consumer(&OtherConsumer {
        usd: usd("2"),
        requests: 10,
        api: "backlinks".into(),
        function: "summary".into(),
    });
    wait_for(
        Duration::from_secs(30),
        "/healthz to tell of another consumer",
        || async { d.get("/healthz").await.1.contains("another consumer") },
    )
    .await;
    let (status, health) = d.get("/healthz").await;
    assert_eq!(status, 200, "a warning, not a failure: {health}");
    let (_, metrics) = d.get("/metrics").await;
    assert_eq!(
        metric(&metrics, "linkledger_account_unexplained_usd"),
        Some(2.0),
        "{metrics}"
    );
    d.wait_for_log(
        Duration::from_secs(10),
        "another consumer: today the account spent $2",
    )
    .await;
    // Its 10 requests are within reconcile.threshold_requests (10).
    assert!(!health.contains("Backlinks requests beyond"), "{health}");

    // A daily limit set in the account's dashboard becomes a cap at the next sample,
    // and goes when it is lifted.
    sc.sb.set_limits(linkledger::sandbox::AccountLimits {
        money_day: Some(usd("5")),
        money_minute: None,
        ..Default::default()
    });
    wait_for_count(
        &sc.store,
        Duration::from_secs(30),
        "the account's daily limit in force",
        "SELECT count(*) FROM linkledger.budgets WHERE scope = 'account_daily' AND cap_usd = 5 AND name = 'money.limits.day'",
        |n| n == 1,
    )
    .await;
    sc.sb
        .set_limits(linkledger::sandbox::AccountLimits::default());
    wait_for_count(
        &sc.store,
        Duration::from_secs(30),
        "the lifted limit gone",
        "SELECT count(*) FROM linkledger.budgets WHERE scope = 'account_daily'",
        |n| n == 0,
    )
    .await;

    // A rate limit set in the account, stricter than api.max_per_minute, paces the
    // running daemon's calls from the next sample on; lifted, the configured one is
    // back. (1,200 a minute: the samples every 100 ms, themselves calls, stay under it.)
    let per_minute = |metrics: &str| metric(metrics, "linkledger_api_max_per_minute");
    let configured = per_minute(&d.get("/metrics").await.1).expect("the limit is a metric");
    assert!(configured > 1200.0, "{configured}");
    sc.sb.set_limits(linkledger::sandbox::AccountLimits {
        rate_minute: Some(1200),
        ..Default::default()
    });
    wait_for(
        Duration::from_secs(30),
        "the daemon following the account's 1,200 a minute",
        || async { per_minute(&d.get("/metrics").await.1) == Some(1200.0) },
    )
    .await;
    d.wait_for_log(
        Duration::from_secs(10),
        "calls follow 1200 a minute from now on",
    )
    .await;
    sc.sb
        .set_limits(linkledger::sandbox::AccountLimits::default());
    wait_for(
        Duration::from_secs(30),
        "the configured limit back",
        || async { per_minute(&d.get("/metrics").await.1) == Some(configured) },
    )
    .await;

    // Another consumer's requests are told apart whatever they cost: 40 more Backlinks
    // requests that cost nothing make 50 beyond the ledger's.
    sc.sb.other_consumer(&OtherConsumer {
        usd: usd("0"),
        requests: 40,
        api: "backlinks".into(),
        function: "summary".into(),
    });
    wait_for(
        Duration::from_secs(30),
        "/healthz to tell of another consumer's requests",
        || async {
            d.get("/healthz")
                .await
                .1
                .contains("another consumer: today the account made 50 Backlinks requests beyond the ledger's")
        },
    )
    .await;
    let (_, metrics) = d.get("/metrics").await;
    assert_eq!(
        metric(&metrics, "linkledger_account_unexplained_requests"),
        Some(50.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn after_kill_9s_under_faults_the_reconciled_ledger_is_within_one_calls_price_of_what_was_charged()
 {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = sandbox(linkledger::sandbox::SandboxOptions {
        latency: Duration::from_millis(150),
        fault_rate: 0.1,
        seed: 27,
        ..Default::default()
    })
    .await;
    let list = targets(80, "chaos");
    let wd = Workdir::new(&[("chaos.toml", &job_toml("chaos", "summary", &list, ""))]);
    // A killed run's shared slots lapse within one lease before the next run can send:
    // the daemon harness's 5 s, not the default 30 s, between the kills.
    let env = with_env(
        env_for(&db, &sb),
        &[
            ("LINKLEDGER_API__MAX_IN_FLIGHT", "8"),
            ("LINKLEDGER_QUEUE__LEASE", "5s"),
        ],
    );
    for kill in 0..8u64 {
        let before = sb.stats().requests;
        let mut child = spawn_quiet(wd.path(), &env, &["run", "--once"]);
        wait_for(
            Duration::from_secs(60),
            "requests of this run reaching the sandbox",
            || async { sb.stats().requests >= before + 4 + kill % 3 },
        )
        .await;
        child.kill().await.unwrap();
    }
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let exec = executor(&store, &sb, 4);
    let host = exec.client().api_host().to_string();
    let charged = sb.stats().charged_usd;
    let booked = Usd(ledger_of(&store, &host).await);
    let abandoned = count(
        &store,
        "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'abandoned'",
    )
    .await;
    let in_flight = count(
        &store,
        "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'sent'",
    )
    .await;
    exec.sample_account().await.unwrap().unwrap();
    let tomorrow = today().succ_opt().unwrap();
    let closed = reconcile_closed_days(&store, &host, tomorrow, usd("0.001"))
        .await
        .unwrap();
    assert_eq!(closed.len(), 1);
    let reconciled = Usd(ledger_of(&store, &host).await);
    let gap = Usd((reconciled.0 - charged.0).abs());
    eprintln!(
        "charged {charged}, booked {booked} without the requests still sent ({abandoned} abandoned, {in_flight} still sent), reconciled {reconciled}, gap {gap}; {:?}",
        closed[0].assessed.total_row()
    );
    assert!(
        abandoned + in_flight > 0,
        "the kills left requests without an answer"
    );
    assert_ne!(booked, charged, "the ledger alone is off");
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'sent'"
        )
        .await,
        0,
        "a closed day's unanswered requests are booked abandoned, settled"
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.settlements").await,
        abandoned + in_flight
    );
    assert!(
        gap <= linkledger::sandbox::price(1),
        "reconciled {reconciled} against {charged} charged"
    );
    let out = linkledger(
        wd.path(),
        &env,
        &["spend", "--reconcile", "--since", &today().to_string()],
    )
    .await;
    let text = stdout(&out);
    let total = closed[0].assessed.total_row();
    assert!(text.contains(&total.kind), "{text}");
    if !total.settlement_usd.is_zero() {
        assert!(
            text.contains(&format!("-{}", Usd(-total.settlement_usd.0))),
            "the settlement shown: {text}"
        );
    }
    sb.stop().await;
}

#[tokio::test]
async fn the_accounts_own_daily_limit_caps_the_calls_beside_the_budget_and_plan_shows_it() {
    let db = TestDb::new().await;
    let store = db.store().await;
    // A stand-in the client takes for the real API: its calls count against caps.
    let sb = sandbox(linkledger::sandbox::SandboxOptions {
        identify: false,
        limits: linkledger::sandbox::AccountLimits {
            money_day: Some(usd("0.05")),
            money_minute: None,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    // The daemon's sample: the account's own daily limit is known to the database.
    executor(&store, &sb, 4)
        .sample_account()
        .await
        .unwrap()
        .unwrap();
    let list = targets(6, "cap");
    let wd = Workdir::new(&[("capped.toml", &job_toml("capped", "summary", &list, ""))]);
    // A looser budget of our own: the account's limit is the stricter and wins.
    let env = with_env(env_for(&db, &sb), &[("LINKLEDGER_BUDGET__DAILY_USD", "1")]);

    let out = linkledger(wd.path(), &env, &["plan"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("money.limits.day") && text.contains("$0.05"),
        "{text}"
    );

    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("money.limits.day"), "{said}");
    // $0.02003 a call: two fit under $0.05, a third would cross it.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'ok' AND endpoint = 'summary'"
        )
        .await,
        2
    );
    assert_eq!(sb.stats().charged_usd, usd("0.04006"));
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.budget_status WHERE scope = 'account_daily' AND period_kind = 'day' AND cap_usd = 0.05"
        )
        .await,
        1
    );
    sb.stop().await;
}

#[tokio::test]
async fn with_the_account_scope_the_daily_and_monthly_budgets_count_another_consumers_spend() {
    let sc = scene(
        2,
        linkledger::sandbox::SandboxOptions {
            identify: false,
            ..Default::default()
        },
        &[
            ("LINKLEDGER_RECONCILE__SAMPLE_EVERY", "100ms"),
            ("LINKLEDGER_BUDGET__DAILY_USD", "1"),
            ("LINKLEDGER_BUDGET__MONTHLY_USD", "50"),
            ("LINKLEDGER_BUDGET__SCOPE", "account"),
        ],
    )
    .await;
    let _d = sc.start_daemon().await;
    wait_for_count(
        &sc.store,
        Duration::from_secs(30),
        "the fire's two calls answered",
        "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'ok' AND endpoint = 'summary'",
        |n| n == 2,
    )
    .await;
    sc.sb.other_consumer(&OtherConsumer {
        usd: usd("0.9"),
        requests: 30,
        api: "serp".into(),
        function: "organic".into(),
    });
    // $0.04006 ours and $0.9 another consumer's: $0.05994 left of $1.
    wait_for_count(
        &sc.store,
        Duration::from_secs(30),
        "the daily budget counting the other consumer's spend",
        "SELECT count(*) FROM linkledger.budget_status WHERE scope = 'daily' AND left_usd = 0.05994",
        |n| n == 1,
    )
    .await;
    // The month's budget counts it too: $50 less $0.94006.
    wait_for_count(
        &sc.store,
        Duration::from_secs(30),
        "the monthly budget counting the other consumer's spend",
        "SELECT count(*) FROM linkledger.budget_status WHERE scope = 'monthly' AND left_usd = 49.05994",
        |n| n == 1,
    )
    .await;
    // A once-run of four more calls gets two of them ($0.02003 each) under the cap.
    let list = targets(4, "acc");
    let wd = Workdir::new(&[("more.toml", &job_toml("more", "summary", &list, ""))]);
    let out = linkledger(wd.path(), &sc.env, &["run", "--once"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("budget.daily_usd"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        count(
            &sc.store,
            "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'ok' AND job = 'more'"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn calls_follow_the_accounts_own_rate_limit_when_it_is_stricter_than_the_configured_one() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = sandbox(linkledger::sandbox::SandboxOptions {
        max_per_minute: 10,
        ..Default::default()
    })
    .await;
    executor(&store, &sb, 4)
        .sample_account()
        .await
        .unwrap()
        .unwrap();
    // The account's minute is full: 10 starts 50 s ago by another process on this
    // database (the shared start log). Under the account's 10 a minute no call may start
    // until they are a minute old; under api.max_per_minute's 2000 all would start at
    // once. (The pace of a few calls against a full window, not a minute of calls.)
    let seeded: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "INSERT INTO linkledger.api_starts (started_at)
         SELECT clock_timestamp() - interval '50 seconds' FROM generate_series(1, 10)
         RETURNING started_at",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()[0];
    let list = targets(6, "rate");
    let wd = Workdir::new(&[("paced.toml", &job_toml("paced", "summary", &list, ""))]);
    // api.max_per_minute stays at its 2000: the account's 10 is the stricter.
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("rates.limits.minute"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'ok' AND endpoint = 'summary'"
        )
        .await,
        6
    );
    // The window slides 61 s after a start; a second's slack for the ledger's clock.
    let first: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT min(started_at) FROM linkledger.api_calls WHERE endpoint = 'summary'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(
        first >= seeded + chrono::Duration::seconds(60),
        "a call started at {first}, within the minute of the 10 starts at {seeded}"
    );
    assert_eq!(sb.stats().throttled, 0, "never beyond the account's limit");
    sb.stop().await;
}
