//! The client and executor against the sandbox: faults, limits, refusals.

use std::time::Duration;

use linkledger::api::Endpoint;
use linkledger::plan::CallSpec;
use linkledger::sandbox::SandboxOptions;
use linkledger::store::RunKind;

use crate::common::*;

fn targets(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}.example.com")).collect()
}

#[tokio::test]
async fn with_faults_every_target_is_stored_and_the_ledger_equals_what_the_sandbox_charged() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = sandbox(SandboxOptions {
        fault_rate: 0.3,
        seed: 7,
        ..SandboxOptions::default()
    })
    .await;
    let exec = executor(&store, &sb, 8);
    let list = targets("faulty", 40);
    let job = job_for("summary", &list, "");
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(
        report.ok(),
        "{}: {:?}",
        report.line(),
        report.jobs[0].errors
    );

    let stats = sb.stats();
    assert!(
        stats.faults >= 5,
        "the sandbox injected only {} faults",
        stats.faults
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(DISTINCT target) FROM linkledger.summary"
        )
        .await,
        40
    );
    assert_eq!(ledger_total(&store).await, stats.charged_usd.decimal());
    // Every request the sandbox saw is in the ledger (plus the free credentials check).
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'summary'"
        )
        .await as u64,
        stats.requests
    );
    assert!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE outcome IN ('retryable', 'throttled')"
        )
        .await
            > 0
    );
}

#[tokio::test]
async fn wrong_credentials_stop_the_run_after_the_first_refusal() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let job = "name = \"j\"\ntargets = [\"a.com\", \"b.com\", \"c.com\", \"d.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n[[collect]]\nendpoint = \"bulk_ranks\"\nschedule = \"@daily\"\n";
    let wd = Workdir::new(&[("j.toml", job)]);
    let env = with_env(
        env_for(&db, &sb),
        &[("DATAFORSEO_PASSWORD", "not-the-password")],
    );
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("40100"), "{text}");
    assert!(text.to_lowercase().contains("credentials"), "{text}");
    let stats = sb.stats();
    assert_eq!(stats.unauthorized, 1, "{stats:?}");
    assert_eq!(stats.requests, 0, "no paid endpoint was called: {stats:?}");
    let store = db.store().await;
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.api_calls").await,
        1
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.runs WHERE status = 'halted'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_task_level_40501_is_recorded_with_its_message_and_not_retried() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let exec = executor(&store, &sb, 2);
    // A task the API refuses: a field it does not know.
    let call = CallSpec {
        job: "j".into(),
        collection: "c".into(),
        endpoint: Endpoint::Summary,
        targets: vec![linkledger::api::Target::parse("example.com").unwrap()],
        task: serde_json::json!({"target": "example.com", "no_such_field": 1}),
        estimated_rows: 1,
        settle: None,
        max_rows: None,
        listing_size: None,
    };
    let run = store
        .start_run_with_work(
            "j",
            RunKind::Once,
            5,
            &[linkledger::collect::workers::new_work(&call)],
        )
        .await
        .unwrap();
    linkledger::collect::workers::Workers::new(
        exec,
        linkledger::collect::workers::WorkerConfig::for_once(2),
        linkledger::collect::workers::WorkSet::Runs(vec![run]),
    )
    .run(&linkledger::collect::workers::Shutdown::default())
    .await
    .unwrap();
    assert_eq!(sb.stats().requests, 1, "not retried");
    let (state, claims, last_error): (String, i32, Option<String>) =
        sqlx::query_as("SELECT state, attempt, last_error FROM linkledger.work")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((state.as_str(), claims), ("failed", 1));
    assert_eq!(
        last_error.as_deref(),
        Some("Invalid Field: 'no_such_field'.")
    );
    let (outcome, code, message): (String, Option<i32>, Option<String>) = sqlx::query_as(
        "SELECT outcome, task_status_code, task_status_message FROM linkledger.api_calls WHERE endpoint = 'summary'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(outcome, "rejected");
    assert_eq!(code, Some(40501));
    assert_eq!(message.as_deref(), Some("Invalid Field: 'no_such_field'."));
    // The answer is kept as it came (every JSON answer is), but yields no rows.
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.raw_responses").await,
        1
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.summary").await,
        0
    );
    let status: String = sqlx::query_scalar("SELECT status FROM linkledger.runs")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(status, "failed");
}

#[tokio::test]
async fn the_client_never_has_more_than_max_in_flight_requests_open() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = sandbox(SandboxOptions {
        latency: Duration::from_millis(40),
        ..SandboxOptions::default()
    })
    .await;
    let exec = executor(&store, &sb, 5);
    let job = job_for("summary", &targets("inflight", 40), "");
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(report.ok(), "{}", report.line());
    let stats = sb.stats();
    assert_eq!(stats.requests, 40);
    assert!(stats.max_in_flight <= 5, "{stats:?}");
    assert!(
        stats.max_in_flight >= 3,
        "the limit is also used, not undershot: {stats:?}"
    );
    assert_eq!(stats.throttled, 0);
}

#[tokio::test]
async fn throttling_answers_make_the_client_back_off_and_retry_until_done() {
    let db = TestDb::new().await;
    let store = db.store().await;
    // The account allows 3 open requests; the client is misconfigured for 10.
    let sb = sandbox(SandboxOptions {
        latency: Duration::from_millis(30),
        max_in_flight: 3,
        ..SandboxOptions::default()
    })
    .await;
    let exec = executor(&store, &sb, 10);
    let job = job_for("summary", &targets("throttle", 30), "");
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(report.ok(), "{} {:?}", report.line(), report.jobs[0].errors);
    let stats = sb.stats();
    assert!(stats.throttled > 0, "{stats:?}");
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.summary").await,
        30
    );
    let throttled_in_ledger = count(
        &store,
        "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'throttled' AND status_code = 40209",
    )
    .await;
    assert_eq!(throttled_in_ledger as u64, stats.throttled);
    // Each retry of a throttled call came after a pause, not at once.
    let immediate: i64 = count(
        &store,
        "SELECT count(*) FROM linkledger.api_calls a JOIN linkledger.api_calls b
           ON b.request = a.request AND b.attempt = a.attempt + 1
         WHERE a.outcome = 'throttled'
           AND b.started_at < a.started_at + (a.duration_ms * interval '1 millisecond') + interval '4 milliseconds'",
    )
    .await;
    assert_eq!(immediate, 0, "retries after a throttle must wait");
}

#[tokio::test]
async fn a_payment_refusal_in_the_middle_of_a_run_stops_every_further_call_and_halts_the_run() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    // One call at a time and one worker, so calls are sent in the order they are
    // claimed; the third target's account check fails with 40210.
    let exec = executor(&store, &sb, 1);
    let mut list = targets("paid", 10);
    list[2] = "quirk-no-funds.example.com".into();
    let job = job_for("summary", &list, "");
    let mut workers = linkledger::collect::workers::WorkerConfig::for_once(1);
    workers.concurrency = 1;
    let report = run_once_with(&exec, workers, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(!report.ok());
    let halt = report.halt.clone().expect("the run was halted");
    assert_eq!(halt.code, Some(40210));
    assert!(report.line().contains("balance"), "{}", report.line());
    // One call at a time: whichever calls came before the refusal were answered, and
    // none was sent after it.
    let ledger: Vec<String> = sqlx::query_scalar(
        "SELECT outcome FROM linkledger.api_calls WHERE endpoint = 'summary' ORDER BY started_at, id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        ledger.last().map(String::as_str),
        Some("halt"),
        "{ledger:?}"
    );
    assert!(
        ledger[..ledger.len() - 1].iter().all(|o| o == "ok"),
        "{ledger:?}"
    );
    assert_eq!(
        sb.stats().requests as usize,
        ledger.len(),
        "nothing was sent after the refusal: {:?}",
        sb.stats()
    );
    // Claims are taken in order, by one worker: the refused third target goes third.
    // (With more workers than requests in flight, calls waiting for a free slot are
    // not served in the order claimed, so the refusal may come later.)
    let answered = ledger.len() as i64 - 1;
    assert_eq!(
        answered, 2,
        "the refused target is the third sent: {ledger:?}"
    );
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM linkledger.work GROUP BY state ORDER BY state")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        states,
        vec![
            ("cancelled".into(), 9 - answered),
            ("failed".into(), 1),
            ("succeeded".into(), answered)
        ]
    );
    let (status, message): (String, Option<String>) =
        sqlx::query_as("SELECT status, message FROM linkledger.runs")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(status, "halted");
    assert!(
        message.as_deref().is_some_and(|m| m.contains("40210")),
        "{message:?}"
    );
}
