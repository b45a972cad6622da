//! Group commit (`queue.group`): concurrent calls' writes of one kind in one
//! transaction. One member's failure is its own (the others are written once, never
//! twice), fencing holds for each member, and a once-run with grouped writes books,
//! answers and completes every call once.

use std::time::Duration;

use linkledger::api::{Attempt, Outcome};
use linkledger::collect::group::Groups;
use linkledger::store::group::{AnswerMember, BookMember, CompleteMember};
use linkledger::store::{
    Booking, CallRecord, ClaimScope, RunKind, SendDecision, Settlement, SlotBooking, Store,
    WorkItem,
};
use rust_decimal::Decimal;

use crate::common::*;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A run of `n` summary calls of job `t`, every item claimed, the budgets prepared.
async fn claimed(store: &Store, n: usize) -> (i64, Vec<WorkItem>) {
    let targets: Vec<String> = (0..n).map(|i| format!("g{i}.example.com")).collect();
    let job = job_for("summary", &targets, "");
    let run = enqueue_job(store, &job, RunKind::Once, 3).await;
    let items = store
        .claim(
            "w",
            Duration::from_secs(60),
            n as i64,
            ClaimScope::Runs(&[run]),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(items.len(), n);
    store.prepare_budgets(Some("t")).await.unwrap();
    (run, items)
}

/// A booking of `item` at $0.02003, not a sandbox's: reserved against the budgets.
fn booking_of(run: i64, item: &WorkItem) -> BookMember {
    let record = CallRecord {
        run_id: Some(run),
        job: Some("t"),
        collection: Some("summary"),
        endpoint: "summary",
        targets: &item.targets,
        request: &item.task,
        attempt: item.attempt,
        api_host: Some("127.0.0.1:1"),
    };
    BookMember::new(
        &record,
        Some(item.fence()),
        Booking {
            estimate: "0.02003".parse().unwrap(),
            sandbox: false,
            free: false,
        },
        None,
    )
}

async fn daily_booked(store: &Store) -> Decimal {
    sqlx::query_scalar("SELECT booked_usd FROM linkledger.spend_totals WHERE scope = 'daily'")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_booking_in_a_group_whose_claim_was_lost_writes_nothing_and_the_others_are_booked() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (run, items) = claimed(&store, 3).await;
    // Another worker claimed the second item again: its old claim may not spend.
    sqlx::query("UPDATE linkledger.work SET attempt = attempt + 1 WHERE id = $1")
        .bind(items[1].id)
        .execute(store.pool())
        .await
        .unwrap();
    let members: Vec<BookMember> = items.iter().map(|i| booking_of(run, i)).collect();
    let results = store.write_group(&members).await;
    let decisions: Vec<SendDecision> = results
        .into_iter()
        .map(|r| match r.unwrap() {
            SlotBooking::Booked { decision, .. } => decision,
            other => panic!("no slot was asked for: {other:?}"),
        })
        .collect();
    assert!(
        matches!(decisions[0], SendDecision::Sent(_)),
        "{decisions:?}"
    );
    assert_eq!(decisions[1], SendDecision::Stale);
    assert!(
        matches!(decisions[2], SendDecision::Sent(_)),
        "{decisions:?}"
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.api_calls").await,
        2,
        "only the calls whose claims hold have ledger rows"
    );
    assert_eq!(
        count(
            &store,
            &format!(
                "SELECT count(*) FROM linkledger.api_calls WHERE work_id = {}",
                items[1].id
            )
        )
        .await,
        0
    );
    assert_eq!(
        daily_booked(&store).await,
        dec("0.04006"),
        "two reservations"
    );
}

/// An answer of `call_id`: HTTP 200 with `body`, which cost $0.02.
fn answer(call_id: i64, body: serde_json::Value) -> AnswerMember {
    let attempt = Attempt {
        started_at: chrono::Utc::now(),
        duration: Duration::from_millis(5),
        http_status: Some(200),
        body: Some(body),
        unparsed: None,
        spilled: None,
        envelope: None,
        outcome: Outcome::Ok,
        cost: Some("0.02".parse().unwrap()),
        reached: true,
        sandbox: false,
    };
    AnswerMember {
        call_id,
        endpoint: "summary",
        keep_raw: true,
        settlement: Settlement {
            cost: attempt.cost,
            cost_estimated: false,
            budget: attempt.cost,
            sandbox: false,
        },
        attempt,
    }
}

#[tokio::test]
async fn an_answer_the_database_refuses_fails_alone_and_the_others_of_its_group_are_settled_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (run, items) = claimed(&store, 3).await;
    let mut calls = Vec::new();
    for item in &items {
        let booked = store
            .write_group(&[booking_of(run, item)])
            .await
            .remove(0)
            .unwrap();
        let SlotBooking::Booked {
            decision: SendDecision::Sent(id),
            ..
        } = booked
        else {
            panic!("not booked: {booked:?}");
        };
        calls.push(id);
    }
    assert_eq!(daily_booked(&store).await, dec("0.06009"));
    let ok = || serde_json::json!({"status_code": 20000, "cost": 0.02, "tasks": []});
    // A NUL in a string: jsonb refuses it, so this member's statement fails.
    let refused =
        serde_json::json!({"status_code": 20000, "cost": 0.02, "tasks": [{"x": "a\u{0}b"}]});
    let members = vec![
        answer(calls[0], ok()),
        answer(calls[1], refused),
        answer(calls[2], ok()),
    ];
    let results = store.write_group(&members).await;
    assert!(matches!(results[0], Ok(Some(_))), "{:?}", results[0]);
    assert!(
        results[1].as_ref().is_err_and(|e| e.is_data_exception()),
        "the refused member gets its own error: {:?}",
        results[1]
    );
    assert!(matches!(results[2], Ok(Some(_))), "{:?}", results[2]);
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.raw_responses").await,
        2,
        "each accepted body stored once"
    );
    let outcomes: Vec<String> =
        sqlx::query_scalar("SELECT outcome FROM linkledger.api_calls ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(outcomes, ["ok", "sent", "ok"]);
    // Two settled at their cost, once each; the refused one's reservation stays for
    // its own write.
    assert_eq!(daily_booked(&store).await, dec("0.06003"));
}

#[tokio::test]
async fn a_once_run_with_grouped_writes_books_answers_and_completes_every_call_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let targets: Vec<String> = (0..40).map(|i| format!("grouped{i}.example.com")).collect();
    let job = job_for("summary", &targets, "");
    let exec = executor(&store, &sb, 8).with_groups(Groups::start(
        store.clone(),
        Duration::from_millis(2),
        8,
    ));
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(sb.stats().requests, 40, "each call sent once");
    for (sql, want) in [
        (
            "SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'summary' AND outcome = 'ok'",
            40,
        ),
        (
            "SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'summary'",
            40,
        ),
        (
            "SELECT count(*) FROM linkledger.raw_responses WHERE endpoint = 'summary'",
            40,
        ),
        (
            "SELECT count(*) FROM linkledger.work WHERE state = 'succeeded'",
            40,
        ),
        ("SELECT count(DISTINCT target) FROM linkledger.summary", 40),
        (
            "SELECT count(*) FROM linkledger.runs WHERE status = 'succeeded'",
            1,
        ),
    ] {
        assert_eq!(count(&store, sql).await, want, "{sql}");
    }
}

/// The rows of the sandbox's summary answer to `task`, as its completion writes them.
fn summary_rows(task: &serde_json::Value) -> linkledger::warehouse::normalize::Batch {
    use linkledger::api::Endpoint;
    use linkledger::warehouse::normalize::{self, Context};
    let result = linkledger::sandbox::build_result(Endpoint::Summary, task, today()).unwrap();
    let body = serde_json::json!({"status_code": 20000, "tasks": [{"status_code": 20000, "result": result}]});
    let now = chrono::Utc::now();
    let ctx = Context {
        endpoint: Endpoint::Summary,
        raw_response_id: 1,
        collected_at: now,
        sent_at: now,
        settle: Endpoint::Summary.default_settle(),
        request: task,
    };
    normalize::normalize(&ctx, &body).unwrap()
}

async fn states(store: &Store, items: &[WorkItem]) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        out.push(
            sqlx::query_scalar("SELECT state FROM linkledger.work WHERE id = $1")
                .bind(item.id)
                .fetch_one(store.pool())
                .await
                .unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn a_completion_in_a_group_whose_claim_was_lost_writes_no_rows_and_the_others_complete() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (_, items) = claimed(&store, 3).await;
    sqlx::query("UPDATE linkledger.work SET attempt = attempt + 1 WHERE id = $1")
        .bind(items[1].id)
        .execute(store.pool())
        .await
        .unwrap();
    let members: Vec<CompleteMember> = items
        .iter()
        .map(|i| CompleteMember {
            fence: i.fence(),
            call_id: 0,
            batch: summary_rows(&i.task),
        })
        .collect();
    let results = store.complete_group(&members).await;
    let written: Vec<Option<u64>> = results.into_iter().map(Result::unwrap).collect();
    assert!(written[0].is_some_and(|n| n > 0), "{written:?}");
    assert_eq!(written[1], None, "the lost claim writes nothing");
    assert!(written[2].is_some_and(|n| n > 0), "{written:?}");
    assert_eq!(
        states(&store, &items).await,
        ["succeeded", "running", "succeeded"]
    );
    let targets: Vec<String> =
        sqlx::query_scalar("SELECT target FROM linkledger.summary ORDER BY target")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        targets,
        [items[0].targets[0].clone(), items[2].targets[0].clone()]
    );
}

#[tokio::test]
async fn two_completions_of_the_same_row_in_one_group_are_both_written() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (_, items) = claimed(&store, 2).await;
    // Both answers hold the first target's row: one upsert could not take both.
    let members: Vec<CompleteMember> = items
        .iter()
        .map(|i| CompleteMember {
            fence: i.fence(),
            call_id: 0,
            batch: summary_rows(&items[0].task),
        })
        .collect();
    let written: Vec<Option<u64>> = store
        .complete_group(&members)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        written.iter().all(|w| w.is_some_and(|n| n > 0)),
        "{written:?}"
    );
    assert_eq!(states(&store, &items).await, ["succeeded", "succeeded"]);
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.summary").await,
        1
    );
}
