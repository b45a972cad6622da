//! The work queue: contention between workers, fencing of lost claims, schedule fires.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use linkledger::collect::workers::new_work;
use linkledger::collect::workers::{Shutdown, WorkSet, WorkerConfig, Workers};
use linkledger::store::{RunKind, Store, Terminal};
use secrecy::SecretString;

use crate::common::*;

/// Enqueues one `bulk_ranks` call per target under a new run.
async fn enqueue_calls(store: &Store, targets: &[String]) -> i64 {
    let job = job_for("bulk_ranks", &targets[..1], "");
    let mut work = Vec::new();
    for t in targets {
        let mut call = linkledger::plan::plan_job(&job, today()).remove(0);
        call.targets = vec![linkledger::api::Target::parse(t).unwrap()];
        call.task = serde_json::json!({"targets": [t]});
        work.push(new_work(&call));
    }
    store
        .start_run_with_work("contention", RunKind::Once, 5, &work)
        .await
        .unwrap()
}

#[tokio::test]
async fn several_workers_on_several_connections_claim_and_execute_each_call_exactly_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let targets: Vec<String> = (0..2000).map(|i| format!("c{i:04}.example.org")).collect();
    let run = enqueue_calls(&store, &targets).await;

    let mut handles = Vec::new();
    for w in 0..4 {
        // Each worker has its own pool: separate connections, separate claims.
        let own = Store::connect(&SecretString::from(db.url.clone()), 4)
            .await
            .unwrap();
        let exec = executor(&own, &sb, 8);
        let workers = Workers::new(
            exec,
            WorkerConfig {
                worker_id: format!("test-worker-{w}"),
                concurrency: 8,
                lease: Duration::from_secs(30),
                poll: Duration::from_millis(5),
                shutdown_grace: Duration::from_secs(5),
            },
            WorkSet::Runs(vec![run]),
        );
        handles.push(tokio::spawn(async move {
            workers.run(&Shutdown::default()).await
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let stats = sb.stats();
    assert_eq!(stats.requests, 2000, "each call made once: {stats:?}");
    let (succeeded, claims, workers): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'succeeded'), coalesce(sum(attempt), 0)::bigint,
                count(DISTINCT leased_by)
         FROM linkledger.work WHERE run_id = $1",
    )
    .bind(run)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(succeeded, 2000);
    assert_eq!(claims, 2000, "no item was claimed twice");
    assert!(workers >= 2, "the work was shared: {workers} workers");
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'bulk_ranks'"
        )
        .await,
        2000
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(DISTINCT target) FROM linkledger.bulk_ranks"
        )
        .await,
        2000
    );
    let status: String = sqlx::query_scalar("SELECT status FROM linkledger.runs WHERE id = $1")
        .bind(run)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(status, "succeeded");
}

#[tokio::test]
async fn a_worker_whose_claim_was_taken_over_cannot_complete_it_and_the_new_claim_reuses_its_paid_answer()
 {
    let db = TestDb::new().await;
    let store = db.store().await;
    // Slow answers, so the first worker's request is still in flight when its claim
    // is taken over.
    let sb = sandbox(with_latency(Duration::from_millis(500))).await;
    let run = enqueue_calls(&store, &["fenced.example.org".to_string()]).await;
    let exec = executor(&store, &sb, 2);

    // Worker A claims with a lease that lapses at once, and sends its request.
    let a = claim_one(&store, "worker-a", Duration::from_millis(1), run).await;
    let stale = a.fence();
    let call = linkledger::plan::CallSpec {
        job: a.job.clone(),
        collection: a.collection.clone(),
        endpoint: linkledger::api::Endpoint::BulkRanks,
        targets: vec![linkledger::api::Target::parse("fenced.example.org").unwrap()],
        task: a.task.clone(),
        estimated_rows: 1,
        settle: None,
        max_rows: None,
        listing_size: None,
    };
    let in_flight = {
        let (exec, call) = (exec.clone(), call.clone());
        tokio::spawn(async move { exec.attempt(run, &call, stale).await })
    };
    wait_for_count(
        &store,
        Duration::from_secs(10),
        "A's request in flight",
        "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'sent'",
        |n| n == 1,
    )
    .await;

    // Worker B claims the expired item: crash recovery is just the claim.
    let fresh = claim_one(&store, "worker-b", Duration::from_secs(30), run)
        .await
        .fence();
    assert_eq!(fresh.attempt, stale.attempt + 1);

    // A's answer comes back: it is paid and stored raw, but A can no longer complete
    // the item, write rows, heartbeat, retry, fail, release it or send again.
    let end = in_flight.await.unwrap().unwrap();
    assert_eq!(end, linkledger::collect::executor::AttemptEnd::Stale);
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.raw_responses").await,
        1
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.bulk_ranks").await,
        0
    );
    assert!(
        !store
            .heartbeat(stale, Duration::from_secs(30))
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_work(stale, Terminal::Failed, "stale")
            .await
            .unwrap()
    );
    assert!(
        !store
            .retry_work(stale, Duration::ZERO, true, "stale")
            .await
            .unwrap()
    );
    assert!(!store.release_work(stale).await.unwrap());
    let again = exec.attempt(run, &call, stale).await.unwrap();
    assert_eq!(again, linkledger::collect::executor::AttemptEnd::Stale);
    assert_eq!(sb.stats().requests, 1, "a lost claim cannot spend");

    // B finishes the item from the answer A paid for: no second request.
    let end = exec.recover(&call, fresh).await.unwrap();
    assert!(
        matches!(
            end,
            Some(linkledger::collect::executor::AttemptEnd::Stored { .. })
        ),
        "{end:?}"
    );
    assert_eq!(
        sb.stats().requests,
        1,
        "the paid answer was not bought again"
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.bulk_ranks").await,
        1
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.work WHERE state = 'succeeded'"
        )
        .await,
        1
    );
    assert_eq!(ledger_total(&store).await, sb.stats().charged_usd.decimal());
}

#[tokio::test]
async fn a_request_left_unanswered_by_a_dead_claim_is_booked_at_its_list_price() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let run = enqueue_calls(&store, &["orphan.example.org".to_string()]).await;
    let a = claim_one(&store, "dead-worker", Duration::from_millis(1), run).await;
    let dead = a.fence();
    // The dead worker got as far as writing its ledger row.
    let targets = vec!["orphan.example.org".to_string()];
    store.prepare_budgets(Some(&a.job)).await.unwrap();
    let sent = store
        .record_sent_booked(
            &linkledger::store::CallRecord {
                run_id: Some(run),
                job: Some(&a.job),
                collection: Some(&a.collection),
                endpoint: "bulk_ranks",
                targets: &targets,
                request: &a.task,
                attempt: dead.attempt,
                api_host: Some("127.0.0.1"),
            },
            Some(dead),
            &linkledger::store::Booking {
                estimate: linkledger::api::prices::price(1),
                sandbox: false,
                free: false,
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(sent, linkledger::store::SendDecision::Sent(_)),
        "the claim held: {sent:?}"
    );
    wait_for_count(
        &store,
        Duration::from_secs(5),
        "the lease to lapse",
        "SELECT count(*) FROM linkledger.work WHERE lease_expires_at < now()",
        |n| n == 1,
    )
    .await;
    let b = claim_one(&store, "next-worker", Duration::from_secs(30), run).await;
    let fresh = b.fence();
    let sb = default_sandbox().await;
    let exec = executor(&store, &sb, 1);
    let call = linkledger::plan::CallSpec {
        job: b.job.clone(),
        collection: b.collection.clone(),
        endpoint: linkledger::api::Endpoint::BulkRanks,
        targets: vec![linkledger::api::Target::parse("orphan.example.org").unwrap()],
        task: b.task.clone(),
        estimated_rows: 1,
        settle: None,
        max_rows: None,
        listing_size: None,
    };
    assert_eq!(
        exec.recover(&call, fresh).await.unwrap(),
        None,
        "nothing was stored to reuse"
    );
    let (outcome, cost): (String, rust_decimal::Decimal) =
        sqlx::query_as("SELECT outcome, cost_usd FROM linkledger.api_calls")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(outcome, "abandoned");
    assert_eq!(cost.to_string(), "0.02003");
}

#[tokio::test]
async fn each_fire_is_enqueued_once_however_many_schedulers_tick() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let job = job(
        "name = \"fires\"\ntargets = [\"a.com\", \"b.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"*/10 * * * *\"\ncatch_up = \"all\"\ncatch_up_window = \"1h\"\n",
    );
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 5, 0).unwrap();
    // It last fired at 10:00, before the window.
    seed_fire(
        &store,
        "fires",
        "summary",
        Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap(),
    )
    .await;
    let mut schedulers: Vec<_> = (0..3)
        .map(|i| {
            linkledger::collect::scheduler::Scheduler::new(
                store.clone(),
                vec![job.clone()],
                format!("s{i}"),
                5,
            )
        })
        .collect();
    // The three tick at once, racing to enqueue the same fires.
    let mut enqueued: usize = futures::future::join_all(schedulers.iter_mut().map(|s| s.tick(now)))
        .await
        .into_iter()
        .map(|r| r.unwrap().len())
        .sum();
    // 11:10, 11:20, ..., 12:00 are within the hour before 12:05.
    assert_eq!(enqueued, 6);
    let later = now + chrono::Duration::minutes(10);
    enqueued += futures::future::join_all(schedulers.iter_mut().map(|s| s.tick(later)))
        .await
        .into_iter()
        .map(|r| r.unwrap().len())
        .sum::<usize>();
    assert_eq!(enqueued, 7, "12:10 once");
    let enqueued_here = "FROM linkledger.fires WHERE enqueued_by <> 'test'";
    assert_eq!(
        count(&store, &format!("SELECT count(*) {enqueued_here}")).await,
        7
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.work").await,
        14
    );
    assert_eq!(
        count(
            &store,
            &format!("SELECT count(DISTINCT run_id) {enqueued_here}")
        )
        .await,
        7
    );
}

#[tokio::test]
async fn missed_fires_follow_the_catch_up_policy() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let body = |policy: &str| {
        format!(
            "name = \"{policy}\"\ntargets = [\"a.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 * * * *\"\ncatch_up = \"{policy}\"\ncatch_up_window = \"1d\"\n"
        )
    };
    let jobs: Vec<_> = ["latest", "skip", "all"]
        .iter()
        .map(|p| job(&body(p)))
        .collect();
    // A daemon fired each at 08:00 and stopped; the next one starts at 14:30.
    let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap();
    for j in &jobs {
        seed_fire(&store, &j.name, "summary", t0).await;
    }
    let fired = |job: &'static str| {
        let store = store.clone();
        async move {
            count(
                &store,
                &format!("SELECT count(*) FROM linkledger.fires WHERE job = '{job}'"),
            )
            .await
                - 1
        }
    };
    let mut later =
        linkledger::collect::scheduler::Scheduler::new(store.clone(), jobs, "second".into(), 5);
    later
        .tick(t0 + chrono::Duration::minutes(6 * 60 + 30))
        .await
        .unwrap();
    // Missed: 09:00 ... 14:00 (6 fires).
    assert_eq!(
        fired("latest").await,
        1,
        "latest: only the newest missed fire"
    );
    assert_eq!(fired("skip").await, 0, "skip: none");
    assert_eq!(
        fired("all").await,
        6,
        "all: every missed fire in the window"
    );
    let newest: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT max(scheduled_for) FROM linkledger.fires WHERE job = 'latest'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(
        newest,
        Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap()
    );
}

#[tokio::test]
async fn a_collection_that_never_fired_starts_at_its_next_instant_and_catches_nothing_up() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let jobs = |prefix: &str| -> Vec<linkledger::jobs::Job> {
        ["latest", "all"]
            .iter()
            .map(|policy| {
                job(&format!(
                    "name = \"{prefix}-{policy}\"\ntargets = [\"a.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 * * * *\"\ncatch_up = \"{policy}\"\ncatch_up_window = \"7d\"\n"
                ))
            })
            .collect()
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 14, 30, 0).unwrap();
    let mut scheduler =
        linkledger::collect::scheduler::Scheduler::new(store.clone(), jobs("new"), "s".into(), 5);
    let first = scheduler.tick(now).await.unwrap();
    assert!(
        first.is_empty(),
        "nothing from before it existed: {first:?}"
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.work").await,
        0
    );
    let next = scheduler
        .tick(now + chrono::Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(next.len(), 2, "each starts at 15:00: {next:?}");
    assert!(
        next.iter()
            .all(|e| e.scheduled_for == Utc.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).unwrap())
    );

    // Seen by a daemon that stopped before their first instant: the next daemon, at
    // 17:30, catches up what they missed since they were first seen, not before.
    linkledger::collect::scheduler::Scheduler::new(store.clone(), jobs("seen"), "first".into(), 5)
        .tick(now)
        .await
        .unwrap();
    let caught_up = linkledger::collect::scheduler::Scheduler::new(
        store.clone(),
        jobs("seen"),
        "next".into(),
        5,
    )
    .tick(now + chrono::Duration::hours(3))
    .await
    .unwrap();
    let when = |job: &str| {
        caught_up
            .iter()
            .filter(|e| e.job == job)
            .map(|e| e.scheduled_for.format("%H:%M").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(when("seen-latest"), vec!["17:00"]);
    assert_eq!(when("seen-all"), vec!["15:00", "16:00", "17:00"]);
}

#[tokio::test]
async fn catch_up_latest_reaches_past_the_catch_up_window() {
    let db = TestDb::new().await;
    let store = db.store().await;
    // Monthly, a one-day window: the window is for `all` only.
    let monthly = job(
        "name = \"monthly\"\ntargets = [\"a.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 6 1 * *\"\ncatch_up = \"latest\"\ncatch_up_window = \"1d\"\n",
    );
    seed_fire(
        &store,
        "monthly",
        "summary",
        Utc.with_ymd_and_hms(2026, 9, 1, 6, 0, 0).unwrap(),
    )
    .await;
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    let enqueued =
        linkledger::collect::scheduler::Scheduler::new(store.clone(), vec![monthly], "s".into(), 5)
            .tick(now)
            .await
            .unwrap();
    assert_eq!(enqueued.len(), 1, "{enqueued:?}");
    assert_eq!(
        enqueued[0].scheduled_for,
        Utc.with_ymd_and_hms(2026, 11, 1, 6, 0, 0).unwrap(),
        "the newest missed fire, 19 days before now"
    );
}

#[tokio::test]
async fn a_call_that_keeps_failing_is_exhausted_with_its_last_error_visible_in_sql() {
    let db = TestDb::new().await;
    let store = db.store().await;
    // Every request fails (500/502, 50000, dropped connections; throttles do not count).
    let sb = sandbox(linkledger::sandbox::SandboxOptions {
        fault_rate: 1.0,
        ..Default::default()
    })
    .await;
    let mut api = api_config(&sb, 2);
    api.max_attempts = 3;
    let client = linkledger::api::Client::with_credentials(&api, &sandbox_credentials()).unwrap();
    let exec = linkledger::collect::executor::Executor::new(store.clone(), client);
    let job = job_for("summary", &["doomed.example.com".to_string()], "");
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(!report.ok());
    let (state, failures, last_error): (String, i32, Option<String>) =
        sqlx::query_as("SELECT state, failures, last_error FROM linkledger.work")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(state, "exhausted");
    assert_eq!(failures, 3);
    assert!(
        last_error.as_deref().is_some_and(|e| !e.is_empty()),
        "{last_error:?}"
    );
    let (status, message): (String, Option<String>) =
        sqlx::query_as("SELECT status, message FROM linkledger.runs")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert_eq!(message, last_error, "the run says why");
    assert!(
        report.jobs[0].errors[0].contains("doomed.example.com"),
        "{:?}",
        report.jobs[0].errors
    );
}

#[tokio::test]
async fn schedule_lag_is_the_lag_of_the_fire_run_not_the_age_of_a_caught_up_one() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let j = job(
        "name = \"lag\"\ntargets = [\"a.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 * * * *\"\n",
    );
    // Last fired a month ago: the newest missed fire (13:00) is caught up at 13:30.
    let t0 = Utc.with_ymd_and_hms(2026, 10, 25, 8, 0, 0).unwrap();
    seed_fire(&store, "lag", "summary", t0).await;
    let metrics = std::sync::Arc::new(linkledger::ops::metrics::Metrics::new());
    let mut s =
        linkledger::collect::scheduler::Scheduler::new(store.clone(), vec![j], "lag".into(), 5)
            .with_metrics(metrics.clone());
    let lag = |metrics: &linkledger::ops::metrics::Metrics| -> f64 {
        let text = metrics.render();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(
                    r#"linkledger_schedule_lag_seconds{job="lag",collection="summary"} "#,
                )
            })
            .unwrap_or_else(|| panic!("no lag: {text}"))
            .parse()
            .unwrap()
    };
    let start = Utc.with_ymd_and_hms(2026, 11, 25, 13, 30, 0).unwrap();
    assert_eq!(s.tick(start).await.unwrap().len(), 1);
    assert_eq!(lag(&metrics), 0.0, "caught up at once: no lag");
    // The 14:00 fire, enqueued by a tick 2.5 s after it was due.
    let late = Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap()
        + chrono::Duration::milliseconds(2500);
    assert_eq!(s.tick(late).await.unwrap().len(), 1);
    assert_eq!(lag(&metrics), 2.5);
}
