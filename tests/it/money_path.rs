//! The money path: a paid answer is never thrown away or bought twice, a crash cannot
//! loop forever, a wrong base URL stops every call, shared slots are fenced per
//! acquisition, and what a user can mistype never panics.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use linkledger::store::{ClaimScope, RunKind, Store};

use crate::common::*;

/// Each envelope quirk is answered once, charged, and kept raw; the readable ones load
/// and the unreadable ones fail their call visibly, never bought again.
#[tokio::test]
async fn a_paid_answer_of_any_shape_is_bought_once_kept_raw_and_costed() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let exec = executor(&store, &sb, 4);
    let targets: Vec<String> = [
        "quirk-envelope-types",
        "quirk-string-codes",
        "quirk-result-object",
        "quirk-no-status",
    ]
    .iter()
    .map(|q| format!("{q}.example.com"))
    .collect();
    let job = job_for("summary", &targets, "");
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();

    let stats = sb.stats();
    assert_eq!(stats.requests, 4, "one request per target: {stats:?}");
    assert!(stats.charged_usd.decimal() > rust_decimal::Decimal::ZERO);
    assert_eq!(
        ledger_total(&store).await,
        stats.charged_usd.decimal(),
        "the ledger holds what was charged"
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.raw_responses").await,
        4,
        "every paid body is kept"
    );
    let outcome = |target: &str| {
        let store = store.clone();
        let target = target.to_string();
        async move {
            sqlx::query_as::<_, (String, Option<String>)>(
                "SELECT outcome, error FROM linkledger.api_calls WHERE $1 = ANY(targets)",
            )
            .bind(target)
            .fetch_one(store.pool())
            .await
            .unwrap()
        }
    };
    for readable in [
        "quirk-envelope-types.example.com",
        "quirk-string-codes.example.com",
    ] {
        assert_eq!(outcome(readable).await.0, "ok", "{readable}");
        assert_eq!(
            count(
                &store,
                &format!("SELECT count(*) FROM linkledger.summary WHERE target = '{readable}'")
            )
            .await,
            1,
            "{readable} loaded"
        );
    }
    let (o, why) = outcome("quirk-result-object.example.com").await;
    assert_eq!(o, "invalid_response");
    assert!(
        why.as_deref().is_some_and(|w| w.contains("result")),
        "{why:?}"
    );
    let (o, why) = outcome("quirk-no-status.example.com").await;
    assert_eq!(o, "invalid_response");
    assert!(
        why.as_deref().is_some_and(|w| w.contains("status_code")),
        "{why:?}"
    );
    assert_eq!(report.ends().failed, 2, "{:?}", report.jobs);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.work WHERE state = 'failed' AND failures = 0"
        )
        .await,
        2,
        "failed without a retry"
    );

    // Replay reads the unreadable answers again (and says why it still cannot),
    // without a request.
    let replayed =
        linkledger::collect::replay::replay(&store, &linkledger::api::Endpoint::ALL, None)
            .await
            .unwrap();
    assert_eq!(replayed.responses, 4);
    assert_eq!(replayed.failures.len(), 1, "{:?}", replayed.failures);
    assert!(
        replayed.failures[0].contains("result"),
        "{:?}",
        replayed.failures
    );
    assert_eq!(sb.stats().requests, 4);
}

/// A claim whose lease lapses without an outcome every time (the process dies on this
/// call) counts each time, so the call ends `exhausted` instead of being retried forever.
#[tokio::test]
async fn a_call_whose_claims_keep_lapsing_ends_exhausted_after_max_attempts() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let job = job_for("summary", &["lapsing.example.com".to_string()], "");
    let run = enqueue_job(&store, &job, RunKind::Once, 3).await;
    for claim in 1..=3 {
        let got = store
            .claim(
                "dies",
                Duration::from_millis(1),
                1,
                ClaimScope::Runs(&[run]),
            )
            .await
            .unwrap();
        assert_eq!(got.items.len(), 1, "claim {claim}");
        wait_for_count(
            &store,
            Duration::from_secs(5),
            "the lease to lapse",
            "SELECT count(*) FROM linkledger.work WHERE state = 'running' AND lease_expires_at < now()",
            |n| n == 1,
        )
        .await;
    }
    // The third lapse uses up max_attempts: the next claim exhausts the item.
    let got = store
        .claim("next", Duration::from_secs(30), 1, ClaimScope::Runs(&[run]))
        .await
        .unwrap();
    assert!(got.items.is_empty(), "{:?}", got.items);
    assert_eq!(got.exhausted_runs, vec![run]);
    let (state, failures, last_error): (String, i32, String) =
        sqlx::query_as("SELECT state, failures, last_error FROM linkledger.work")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((state.as_str(), failures), ("exhausted", 3));
    assert!(last_error.contains("without an outcome"), "{last_error}");
    assert!(store.close_run_if_done(run).await.unwrap());
}

/// An attempt that panics (here in normalization) counts as a failed attempt at once:
/// the call ends `exhausted`, the answer is bought once, and the busy-workers gauge
/// comes back to zero.
#[tokio::test]
async fn an_attempt_that_panics_every_time_ends_exhausted_and_the_gauges_stay_right() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let metrics = Arc::new(linkledger::ops::metrics::Metrics::new());
    let mut api = api_config(&sb, 2);
    api.max_attempts = 3;
    let client = linkledger::api::Client::with_credentials(&api, &sandbox_credentials()).unwrap();
    let exec = linkledger::collect::executor::Executor::new(store.clone(), client)
        .with_metrics(metrics.clone())
        .with_before_normalize(Arc::new(|call| {
            panic!("forced crash normalizing {}", call.targets[0]);
        }));
    let job = job_for("summary", &["crashing.example.com".to_string()], "");
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(!report.ok());
    let (state, failures, last_error): (String, i32, String) =
        sqlx::query_as("SELECT state, failures, last_error FROM linkledger.work")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((state.as_str(), failures), ("exhausted", 3));
    assert!(last_error.contains("forced crash"), "{last_error}");
    assert_eq!(
        sb.stats().requests,
        1,
        "re-claims finished from the paid answer, never bought it again"
    );
    assert_eq!(ledger_total(&store).await, sb.stats().charged_usd.decimal());
    let status: String = sqlx::query_scalar("SELECT status FROM linkledger.runs")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(status, "failed");
    let text = metrics.render();
    assert!(text.contains("linkledger_workers_busy 0"), "{text}");
}

/// After a slot's lease lapsed and the slot was taken again (by another task of the
/// same process), releasing the old acquisition leaves the new one alone.
#[tokio::test]
async fn releasing_a_lapsed_slot_does_not_free_the_acquisition_that_took_it_since() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let holder = "host:1/once".to_string();
    let short = linkledger::collect::slots::SharedSlots::new(
        store.clone(),
        holder.clone(),
        1,
        2000,
        Duration::from_millis(20),
    );
    let long = linkledger::collect::slots::SharedSlots::new(
        store.clone(),
        holder,
        1,
        2000,
        Duration::from_secs(30),
    );
    short.prepare().await.unwrap();
    let first = short.acquire().await.unwrap();
    wait_for_count(
        &store,
        Duration::from_secs(5),
        "the first lease to lapse",
        "SELECT count(*) FROM linkledger.api_slots WHERE lease_expires_at < now()",
        |n| n == 1,
    )
    .await;
    let second = long.acquire().await.unwrap();
    assert_eq!(second.lease().slot, first.lease().slot);
    assert_ne!(second.lease().token, first.lease().token);
    short.release(first).await;
    let (holder, token): (Option<String>, Option<i64>) =
        sqlx::query_as("SELECT holder, token FROM linkledger.api_slots WHERE slot = 1")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(holder.is_some(), "the slot is still held");
    assert_eq!(token, Some(second.lease().token));
    // And the holder of the new acquisition can still give it back.
    let token = second.lease().token;
    long.release(second).await;
    assert_eq!(
        count(
            &store,
            &format!("SELECT count(*) FROM linkledger.api_slots WHERE holder IS NULL AND token IS NULL AND {token} > 0")
        )
        .await,
        1
    );
}

/// The ledger row and the shared slot are written by one statement: with no slot free
/// nothing is booked and no start is counted; with one, the row and the slot's
/// acquisition land together. Without shared limits no slot is taken at all.
#[tokio::test]
async fn a_booking_takes_its_shared_slot_in_the_same_statement_or_writes_nothing() {
    use linkledger::store::{Booking, CallRecord, SendDecision, SlotBooking};
    let db = TestDb::new().await;
    let store = db.store().await;
    let limits = linkledger::collect::slots::SharedSlots::new(
        store.clone(),
        "host:1/once".into(),
        1,
        2000,
        Duration::from_secs(30),
    );
    limits.prepare().await.unwrap();
    let request = serde_json::json!({"target": "slot.example.com"});
    let record = CallRecord {
        run_id: None,
        job: None,
        collection: None,
        endpoint: "summary",
        targets: &[],
        request: &request,
        attempt: 1,
        api_host: Some("sandbox.local"),
    };
    let booking = Booking {
        estimate: linkledger::money::Usd::ZERO,
        sandbox: true,
        free: false,
    };
    let starts = "SELECT count(*) FROM linkledger.api_starts";
    let rows = "SELECT count(*) FROM linkledger.api_calls";

    let other = limits.acquire().await.unwrap();
    assert_eq!(count(&store, starts).await, 1);
    let busy = store
        .book_with_slot(&record, None, &booking, Some(&limits.ask()))
        .await
        .unwrap();
    assert!(matches!(busy, SlotBooking::Wait(_)), "{busy:?}");
    assert_eq!(count(&store, rows).await, 0, "no ledger row without a slot");
    assert_eq!(
        count(&store, starts).await,
        1,
        "no start counted without a slot"
    );

    limits.release(other).await;
    let booked = store
        .book_with_slot(&record, None, &booking, Some(&limits.ask()))
        .await
        .unwrap();
    let SlotBooking::Booked {
        decision: SendDecision::Sent(call_id),
        lease: Some(lease),
    } = booked
    else {
        panic!("booked with a slot: {booked:?}");
    };
    let (holder, token): (Option<String>, Option<i64>) =
        sqlx::query_as("SELECT holder, token FROM linkledger.api_slots WHERE slot = $1")
            .bind(lease.slot)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(holder.as_deref(), Some("host:1/once"));
    assert_eq!(token, Some(lease.token));
    assert_eq!(count(&store, starts).await, 2);
    assert_eq!(
        count(
            &store,
            &format!("SELECT count(*) FROM linkledger.api_calls WHERE id = {call_id} AND outcome = 'sent'")
        )
        .await,
        1
    );

    // Without shared limits: a row, and neither a slot nor a start.
    let unlimited = store
        .book_with_slot(&record, None, &booking, None)
        .await
        .unwrap();
    assert!(
        matches!(
            unlimited,
            SlotBooking::Booked {
                decision: SendDecision::Sent(_),
                lease: None
            }
        ),
        "{unlimited:?}"
    );
    assert_eq!(count(&store, starts).await, 2);
    assert_eq!(count(&store, rows).await, 2);
}

/// The booking statement takes its slot without touching the transaction's
/// synchronous_commit (the ledger row must reach the disk before the request goes
/// out); a slot taken on its own still commits without waiting for the disk.
#[tokio::test]
async fn a_slot_taken_with_a_booking_commits_durably_and_one_taken_alone_does_not_wait_for_the_disk()
 {
    let db = TestDb::new().await;
    let store = db.store().await;
    store.ensure_api_slots(2).await.unwrap();
    for (function, expected) in [("take_api_slot", "on"), ("acquire_api_slot", "off")] {
        let mut tx = store.pool().begin().await.unwrap();
        // Whatever the server's default (a throwaway cluster runs with it off): the
        // booking's transaction starts durable, and only acquire_api_slot turns it off.
        sqlx::query("SET LOCAL synchronous_commit = on")
            .execute(&mut *tx)
            .await
            .unwrap();
        let slot: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT granted_slot FROM linkledger.{function}('test', 2, 2000, 30000)"
        )))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert!(slot.is_some(), "{function} granted a slot");
        let setting: String = sqlx::query_scalar("SELECT current_setting('synchronous_commit')")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(setting, expected, "synchronous_commit after {function}");
        tx.rollback().await.unwrap();
    }
}

/// A call whose claim was lost while it waited is not booked: its shared slot goes
/// back at once, nothing is written and nothing is sent.
#[tokio::test]
async fn a_call_whose_claim_was_lost_gives_its_shared_slot_back_and_sends_nothing() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let job = job_for("summary", &["lost.example.com".to_string()], "");
    let run = enqueue_job(&store, &job, RunKind::Once, 3).await;
    let fence = claim_one(&store, "worker-a", Duration::from_secs(30), run)
        .await
        .fence();
    store.release_work(fence).await.unwrap();
    let limits = linkledger::collect::slots::SharedSlots::new(
        store.clone(),
        "host:1/once".into(),
        2,
        2000,
        Duration::from_secs(30),
    );
    limits.prepare().await.unwrap();
    let exec = executor(&store, &sb, 2).with_shared_limits(limits);
    let call = linkledger::plan::plan_job(&job, today()).remove(0);
    let end = exec.attempt(run, &call, fence).await.unwrap();
    assert_eq!(end, linkledger::collect::executor::AttemptEnd::Stale);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_slots WHERE holder IS NOT NULL"
        )
        .await,
        0,
        "the slot is given back"
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.api_calls").await,
        0
    );
    assert_eq!(sb.stats().requests, 0);
}

/// A path the API does not know means a wrong base URL: the first call stops all of
/// them, and the message names `api.base_url`.
#[tokio::test]
async fn a_wrong_base_url_stops_every_call_after_the_first_and_says_so() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let targets: Vec<String> = (0..5).map(|i| format!("\"p{i}.example.com\"")).collect();
    let wd = Workdir::new(&[(
        "j.toml",
        &format!(
            "name = \"j\"\ntargets = [{}]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
            targets.join(", ")
        ),
    )]);
    let wrong = sb.base_url().replace("/v3", "/v2");
    let env = with_env(
        env_for(&db, &sb),
        &[
            ("LINKLEDGER_API__BASE_URL", &wrong),
            ("LINKLEDGER_API__MAX_IN_FLIGHT", "1"),
        ],
    );
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("api.base_url"), "{text}");
    assert!(text.contains("/v2/backlinks/summary/live"), "{text}");
    let store = db.store().await;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'summary'"
        )
        .await,
        1,
        "one call found the path wrong; the others were not made"
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.work WHERE state = 'cancelled'"
        )
        .await,
        4
    );
}

/// A base URL without a scheme (or with another scheme) is a configuration error that
/// names the key and the value: exit 2, no panic, nothing written.
#[tokio::test]
async fn a_base_url_without_http_is_a_configuration_error_not_a_panic() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[(
        "j.toml",
        "name = \"j\"\ntargets = [\"a.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
    )]);
    for bad in ["localhost:8089/v3", "ftp://localhost:8089/v3"] {
        let env = with_env(env_for(&db, &sb), &[("LINKLEDGER_API__BASE_URL", bad)]);
        let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.contains("api.base_url") && err.contains(bad),
            "{bad}: {err}"
        );
        assert!(!err.contains("panicked"), "{bad}: {err}");
    }
    let store = Store::connect(&secrecy::SecretString::from(db.url.clone()), 2)
        .await
        .unwrap();
    let migrated: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('linkledger.runs')::text")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(migrated, None, "nothing was written");
    assert_eq!(sb.stats().requests, 0);
}

/// An absolute `date_from` that was valid when the job loaded ages out of the API's
/// one-year window while the daemon runs: the fire is recorded as failed with what to
/// do, nothing is sent, and the health check names the job.
#[tokio::test]
async fn a_date_that_aged_out_fails_the_fire_at_plan_time_and_names_the_job() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let today = Utc::now().date_naive();
    let from = today - chrono::Days::new(300);
    let job = job(&format!(
        "name = \"aging\"\ntargets = [\"a.com\"]\n[[collect]]\nendpoint = \"bulk_new_lost_backlinks\"\nschedule = \"0 6 * * *\"\nparams = {{ date_from = \"{from}\" }}\n"
    ));
    seed_fire(
        &store,
        "aging",
        "bulk_new_lost_backlinks",
        Utc::now() - chrono::Duration::days(2),
    )
    .await;
    let job_for_aging = job.clone();
    let mut scheduler =
        linkledger::collect::scheduler::Scheduler::new(store.clone(), vec![job], "s".into(), 5);
    // A hundred days later the date is more than a year old.
    let later = Utc::now() + chrono::Duration::days(100);
    let enqueued = scheduler.tick(later).await.unwrap();
    assert!(enqueued.is_empty(), "{enqueued:?}");
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.work").await,
        0,
        "nothing to pay for"
    );
    let (status, message): (String, String) = sqlx::query_as(
        "SELECT r.status, r.message FROM linkledger.runs r
         JOIN linkledger.fires f ON f.run_id = r.id WHERE f.enqueued_by = 's'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(status, "failed");
    assert_eq!(
        message,
        format!(
            "bulk_new_lost_backlinks: date_from {from} is now older than the API's one-year window; use a relative date such as -30d"
        )
    );
    let check = linkledger::daemon::jobs_health(&scheduler.problems(), &[]);
    assert_eq!(check.state, linkledger::ops::health::HealthState::Unhealthy);
    assert!(
        check.detail.contains("aging") && check.detail.contains("one-year window"),
        "{}",
        check.detail
    );
    // A replica ticking at the same instant neither records the fire again nor sends it.
    let mut replica = linkledger::collect::scheduler::Scheduler::new(
        store.clone(),
        vec![job_for_aging.clone()],
        "replica".into(),
        5,
    );
    assert!(replica.tick(later).await.unwrap().is_empty());
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.fires WHERE enqueued_by <> 'test'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.work").await,
        0
    );
}

/// `spend --since` starts the day at 00:00 UTC, whatever the database session's time
/// zone is.
#[tokio::test]
async fn spend_since_a_day_counts_from_midnight_utc_in_any_session_time_zone() {
    let db = TestDb::new().await;
    let store = db.store().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {} SET timezone TO 'Pacific/Kiritimati'",
        db.name
    )))
    .execute(store.pool())
    .await
    .unwrap();
    for (at, cost) in [
        (Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap(), "0.5"),
        (Utc.with_ymd_and_hms(2026, 12, 1, 1, 0, 0).unwrap(), "0.25"),
    ] {
        sqlx::query(
            "INSERT INTO linkledger.api_calls (endpoint, request, attempt, started_at, outcome, cost_usd)
             VALUES ('summary', '{}', 1, $1, 'ok', $2::numeric)",
        )
        .bind(at)
        .bind(cost)
        .execute(store.pool())
        .await
        .unwrap();
    }
    let wd = Workdir::new(&[]);
    let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
    let out = linkledger(
        wd.path(),
        &env,
        &["spend", "--since", "2026-12-01", "--by", "day"],
    )
    .await;
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("2026-12-01"), "{text}");
    assert!(!text.contains("2026-11-30"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("total") && l.contains("$0.25")),
        "{text}"
    );
}

/// Workers of a once-run never claim the daemon's scheduled work, and the daemon's
/// never claim a once-run's.
#[tokio::test]
async fn who_may_claim_work_follows_the_kind_of_its_run() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let job = job_for("summary", &["kind.example.com".to_string()], "");
    let once = enqueue_job(&store, &job, RunKind::Once, 3).await;
    let other_once = enqueue_job(&store, &job, RunKind::Once, 3).await;
    let work: Vec<_> = linkledger::plan::plan_job(&job, today())
        .iter()
        .map(linkledger::collect::workers::new_work)
        .collect();
    let scheduled = store
        .enqueue_fire("t", "summary", Utc::now(), "s", 3, &work)
        .await
        .unwrap()
        .unwrap();
    // Everything is due; each claim may take up to ten items.
    let runs_of =
        |c: linkledger::store::Claimed| c.items.iter().map(|w| w.run_id).collect::<Vec<_>>();
    let own = store
        .claim(
            "once",
            Duration::from_secs(30),
            10,
            ClaimScope::Runs(&[once]),
        )
        .await
        .unwrap();
    assert_eq!(
        runs_of(own),
        vec![once],
        "a once-run takes only its own work"
    );
    let daemon = store
        .claim("daemon", Duration::from_secs(30), 10, ClaimScope::Scheduled)
        .await
        .unwrap();
    assert_eq!(
        runs_of(daemon),
        vec![scheduled],
        "a daemon takes only scheduled work"
    );
    assert_eq!(
        count(
            &store,
            &format!("SELECT count(*) FROM linkledger.work WHERE run_id = {other_once} AND state = 'queued'")
        )
        .await,
        1,
        "another once-run's work is left to it"
    );
}

/// A worker that died after its answer was recorded but before the item reached its
/// next state leaves the answer in the ledger: the next claim settles the item from it
/// (a refusal stays a refusal, an unreadable answer stays unreadable) and buys nothing.
#[tokio::test]
async fn a_reclaimed_item_is_settled_from_a_refusal_or_an_unreadable_answer_already_paid_for() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let exec = executor(&store, &sb, 2);
    let cases = [
        // An unknown field: the API refuses the task (40501).
        (
            "refused.example.com",
            serde_json::json!({"target": "refused.example.com", "no_such_field": 1}),
            "rejected",
        ),
        // A charged answer whose result is not an array: it cannot be normalized.
        (
            "quirk-result-object.example.com",
            serde_json::json!({"target": "quirk-result-object.example.com"}),
            "invalid",
        ),
    ];
    for (i, (target, task, expected)) in cases.into_iter().enumerate() {
        let call = linkledger::plan::CallSpec {
            job: "j".into(),
            collection: "c".into(),
            endpoint: linkledger::api::Endpoint::Summary,
            targets: vec![linkledger::api::Target::parse(target).unwrap()],
            task,
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
        let dying = claim_one(&store, "dies", Duration::from_millis(300), run)
            .await
            .fence();
        // The attempt gets and records its answer; the worker dies before settling.
        exec.attempt(run, &call, dying).await.unwrap();
        assert_eq!(sb.stats().requests as usize, i + 1);
        wait_for_count(
            &store,
            Duration::from_secs(5),
            "the lease to lapse",
            &format!("SELECT count(*) FROM linkledger.work WHERE run_id = {run} AND lease_expires_at < now()"),
            |n| n == 1,
        )
        .await;
        let fresh = claim_one(&store, "next", Duration::from_secs(30), run)
            .await
            .fence();
        let end = exec.recover(&call, fresh).await.unwrap();
        match (expected, &end) {
            ("rejected", Some(linkledger::collect::executor::AttemptEnd::Rejected(why))) => {
                assert!(why.contains("no_such_field"), "{why}")
            }
            ("invalid", Some(linkledger::collect::executor::AttemptEnd::Invalid(why))) => {
                assert!(why.contains("result"), "{why}")
            }
            _ => panic!("{target}: expected {expected}, got {end:?}"),
        }
        assert_eq!(
            sb.stats().requests as usize,
            i + 1,
            "{target}: not bought again"
        );
    }
    assert_eq!(ledger_total(&store).await, sb.stats().charged_usd.decimal());
}
