//! Paid answers are durable on arrival: a received body is committed to
//! `raw_responses` before it waits for a load permit, so a kill -9 re-buys at most the
//! requests in flight at the kill, and a stored answer that was never read is settled
//! and loaded from the stored body, never bought again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use linkledger::collect::executor::AttemptEnd;
use linkledger::sandbox::SandboxOptions;
use linkledger::store::RunKind;

use crate::common::*;

/// Large answers: monthly history since 2019 (over 64 KiB each).
const SINCE: &str = "2019-01-01";

fn archive_job(targets: &[String]) -> String {
    let list: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "name = \"archive\"\ntargets = [{}]\n[[collect]]\nendpoint = \"history\"\nschedule = \"0 5 2 * *\"\n",
        list.join(", ")
    )
}

#[tokio::test]
async fn a_backfill_of_large_answers_killed_mid_way_rebuys_at_most_the_requests_in_flight_at_the_kill()
 {
    const IN_FLIGHT: usize = 24;
    let in_flight = IN_FLIGHT.to_string();
    let list: Vec<String> = (0..72).map(|i| format!("arch{i:02}.example.com")).collect();
    let wd = Workdir::new(&[("archive.toml", &archive_job(&list))]);
    let args = ["backfill", "--job", "archive", "--from", SINCE, "--yes"];
    let limits = [("LINKLEDGER_API__MAX_IN_FLIGHT", in_flight.as_str())];

    // Uninterrupted, into its own database.
    let whole_db = TestDb::new().await;
    let whole_sb = default_sandbox().await;
    let out = linkledger(
        wd.path(),
        &with_env(env_for(&whole_db, &whole_sb), &limits),
        &args,
    )
    .await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let whole_store = whole_db.store().await;
    let whole = content_checksums(&whole_store).await;
    let smallest = count(
        &whole_store,
        "SELECT min(octet_length(body::text))::bigint FROM linkledger.raw_responses",
    )
    .await;
    assert!(smallest > 64 * 1024, "large answers ({smallest} bytes)");

    // Slow answers, many at once: answers arrive faster than they are loaded, so at
    // the kill some wait for a load permit.
    let db = TestDb::new().await;
    let sb = sandbox(with_latency(Duration::from_millis(300))).await;
    // The killed run's shared slots lapse within one lease before the second run can
    // send: the daemon harness's 5 s, not the default 30 s.
    let env = with_env(
        env_for(&db, &sb),
        &[limits[0], ("LINKLEDGER_QUEUE__LEASE", "5s")],
    );
    let mut child = spawn_quiet(wd.path(), &env, &args);
    wait_for(
        Duration::from_secs(60),
        "more answers received than are loaded at once",
        || async { sb.stats().requests >= 2 * IN_FLIGHT as u64 },
    )
    .await;
    child.kill().await.unwrap();
    let at_kill = sb.stats().requests;
    assert!(
        at_kill < list.len() as u64,
        "killed mid-way ({at_kill} requests)"
    );
    let store = db.store().await;
    // In flight at the kill: requests whose ledger row was written and whose answer
    // never reached the database.
    let unanswered: Vec<String> = sqlx::query_scalar(
        "SELECT targets[1] FROM linkledger.api_calls WHERE outcome = 'sent' ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let loaded = count(
        &store,
        "SELECT count(*) FROM linkledger.work WHERE state = 'succeeded'",
    )
    .await;
    let stored_unloaded = count(
        &store,
        "SELECT count(*) FROM linkledger.api_calls c
         WHERE EXISTS (SELECT 1 FROM linkledger.raw_responses r WHERE r.api_call_id = c.id)
           AND NOT EXISTS (SELECT 1 FROM linkledger.work w
                           WHERE w.id = c.work_id AND w.state = 'succeeded')",
    )
    .await;

    let again = linkledger(wd.path(), &env, &args).await;
    assert!(
        again.status.success(),
        "{}{}",
        stdout(&again),
        stderr(&again)
    );
    let bought_twice = sb.stats().requests - whole_sb.stats().requests;
    eprintln!(
        "at the kill: {at_kill} requests, {loaded} loaded, {stored_unloaded} stored but not loaded, \
         {} in flight (ledger rows sent, never answered); bought twice: {bought_twice}",
        unanswered.len()
    );
    // The client lets at most IN_FLIGHT requests out at once: every other answer that
    // had arrived was in the database.
    assert!(
        unanswered.len() <= IN_FLIGHT,
        "{} ledger rows without their answer at the kill, at most {IN_FLIGHT} requests in flight",
        unanswered.len()
    );
    assert!(
        bought_twice <= unanswered.len() as u64,
        "{bought_twice} bought twice, {} in flight at the kill",
        unanswered.len()
    );
    let their_price: rust_decimal::Decimal = sqlx::query_scalar(
        "SELECT coalesce(sum(cost_usd), 0) FROM linkledger.api_calls WHERE targets[1] = ANY($1)",
    )
    .bind(&unanswered)
    .fetch_one(whole_store.pool())
    .await
    .unwrap();
    let extra = (sb.stats().charged_usd - whole_sb.stats().charged_usd).decimal();
    assert!(
        extra <= their_price,
        "paid {extra} more, the requests in flight cost {their_price}"
    );
    assert_eq!(
        content_checksums(&store).await,
        whole,
        "the same rows as uninterrupted"
    );
    // Every paid answer was read and settled: nothing left waiting in the ledger.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE outcome NOT IN ('ok', 'reused', 'abandoned')"
        )
        .await,
        0
    );
}

/// A worker that dies after its large answer was committed, while the answer waits for
/// a load permit: the next claim of its item reads the stored body, settles the ledger
/// row and the budgets with the cost the answer reports, and loads its rows, without a
/// request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_stored_but_never_read_is_settled_and_loaded_by_the_next_claim_without_a_request()
{
    let db = TestDb::new().await;
    let store = db.store().await;
    // Taken for the real API: its charges count against the budgets.
    let sb = sandbox(SandboxOptions {
        identify: false,
        ..SandboxOptions::default()
    })
    .await;
    // The first answer's load is held until the test lets it go, keeping the one load
    // permit, so the second answer waits for it.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = Arc::new(Mutex::new(held));
    let loading = Arc::new(AtomicBool::new(false));
    let hook_loading = loading.clone();
    let exec = executor(&store, &sb, 4)
        .with_loads(1)
        .with_before_normalize(Arc::new(move |call| {
            if call.targets[0].to_string() == "holder.example.com" {
                hook_loading.store(true, Ordering::SeqCst);
                // Its worker thread hands its other tasks on while it waits.
                tokio::task::block_in_place(|| {
                    let _ = held.lock().unwrap().recv();
                });
            }
        }));
    let targets = vec![
        "holder.example.com".to_string(),
        "unread.example.com".to_string(),
    ];
    let job = job_for("history", &targets, &format!("date_from = \"{SINCE}\""));
    let run = enqueue_job(&store, &job, RunKind::Once, 5).await;
    let calls = linkledger::plan::plan_job(&job, today());
    let call_of = |item: &linkledger::store::WorkItem| {
        calls
            .iter()
            .find(|c| c.targets[0].to_string() == item.targets[0])
            .unwrap()
            .clone()
    };
    let first = claim_one(&store, "w1", Duration::from_secs(30), run).await;
    let second = claim_one(&store, "dies", Duration::from_millis(500), run).await;
    let (holder, unread) = if first.targets[0] == "holder.example.com" {
        (first, second)
    } else {
        (second, first)
    };
    let (holder_call, unread_call) = (call_of(&holder), call_of(&unread));

    let e = exec.clone();
    let holder_call2 = holder_call.clone();
    let holder_fence = holder.fence();
    let holding =
        tokio::spawn(async move { e.attempt(run, &holder_call2, holder_fence).await.unwrap() });
    wait_for(
        Duration::from_secs(20),
        "the first answer loading",
        || async { loading.load(Ordering::SeqCst) },
    )
    .await;
    let e = exec.clone();
    let unread_call2 = unread_call.clone();
    let unread_fence = unread.fence();
    let dying =
        tokio::spawn(async move { e.attempt(run, &unread_call2, unread_fence).await.unwrap() });
    let stored = "SELECT count(*) FROM linkledger.api_calls c
                  JOIN linkledger.raw_responses r ON r.api_call_id = c.id
                  WHERE c.targets[1] = 'unread.example.com'";
    wait_for_count(
        &store,
        Duration::from_secs(10),
        "the second answer stored while it waits for the load permit",
        stored,
        |n| n == 1,
    )
    .await;
    // Its process dies there: nothing of it runs any more.
    dying.abort();
    assert!(dying.await.unwrap_err().is_cancelled(), "died waiting");
    release.send(()).unwrap();
    assert!(matches!(holding.await.unwrap(), AttemptEnd::Stored { rows } if rows > 0));
    assert_eq!(sb.stats().requests, 2);

    wait_for_count(
        &store,
        Duration::from_secs(10),
        "the dead claim's lease to lapse",
        &format!(
            "SELECT count(*) FROM linkledger.work WHERE id = {} AND lease_expires_at < now()",
            unread.id
        ),
        |n| n == 1,
    )
    .await;
    let fresh = claim_one(&store, "next", Duration::from_secs(30), run)
        .await
        .fence();
    assert_eq!(fresh.work_id, unread.id);
    let end = exec.recover(&unread_call, fresh).await.unwrap();
    assert!(
        matches!(end, Some(AttemptEnd::Stored { rows }) if rows > 0),
        "{end:?}"
    );
    assert_eq!(sb.stats().requests, 2, "not bought again");

    // The ledger row holds the answer and the cost the answer reported; the rows come
    // from the stored body; the budgets count each call once, at its cost.
    let charged: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| r.request.to_string().contains("unread.example.com"))
        .map(|r| r.cost.decimal())
        .collect();
    let (outcome, cost, budget, raw_id): (
        String,
        Option<rust_decimal::Decimal>,
        Option<rust_decimal::Decimal>,
        i64,
    ) = sqlx::query_as(
        "SELECT c.outcome, c.cost_usd, c.budget_usd, r.id FROM linkledger.api_calls c
             JOIN linkledger.raw_responses r ON r.api_call_id = c.id
             WHERE c.targets[1] = 'unread.example.com'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(outcome, "ok");
    assert_eq!(vec![cost.unwrap()], charged);
    assert_eq!(budget, cost);
    assert!(
        count(
            &store,
            &format!("SELECT count(*) FROM linkledger.history WHERE raw_response_id = {raw_id}")
        )
        .await
            > 0,
        "rows loaded from the stored body"
    );
    let booked: rust_decimal::Decimal = sqlx::query_scalar(
        "SELECT booked_usd FROM linkledger.spend_totals WHERE scope = 'daily' AND period = (now() AT TIME ZONE 'UTC')::date",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(booked, ledger_total(&store).await);
    assert_eq!(booked, sb.stats().charged_usd.decimal());
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.work WHERE state = 'succeeded'"
        )
        .await,
        2
    );
}
