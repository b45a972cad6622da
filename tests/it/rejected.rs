//! One unreadable item costs that item: an answer whose item is null, or whose key
//! field is null or of the wrong type, loads every other item, records the one it set
//! aside in `rejected_items` (with its path, why and the item itself), completes its
//! work item and is never bought again; the run's line, `runs show` and `/metrics` say
//! how many were set aside; `replay` reads them again; raw retention keeps their bodies.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Days, Months, TimeZone, Utc};
use linkledger::api::Endpoint;
use linkledger::ops::metrics::Metrics;
use linkledger::sandbox::SandboxOptions;
use linkledger::store::RunKind;
use linkledger::store::partitions::month_of;
use serde_json::{Value, json};

use crate::common::*;

/// An answer of `endpoint` with one task whose result is `result`, as the API sends it.
fn answer(endpoint: Endpoint, result: Value) -> Value {
    json!({
        "version": "0.1.20250101", "status_code": 20000, "status_message": "Ok.",
        "time": "0.2 sec.", "cost": 0.02, "tasks_count": 1, "tasks_error": 0,
        "tasks": [{
            "id": "01011200-1535-0387-0000-9c2c8e5a5c1d", "status_code": 20000,
            "status_message": "Ok.", "time": "0.1 sec.", "cost": 0.02, "result_count": 1,
            "path": ["v3", "backlinks", endpoint.name(), "live"], "data": {},
            "result": [result]
        }]
    })
}

/// A sandbox that answers `endpoint` with `body`, verbatim.
async fn serving(endpoint: Endpoint, body: Value) -> linkledger::sandbox::Sandbox {
    sandbox(SandboxOptions {
        fixtures: BTreeMap::from([(endpoint, body)]),
        ..SandboxOptions::default()
    })
    .await
}

fn domains(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("d{i}.example.com")).collect()
}

/// A bulk_ranks answer for `targets` whose item 3 came back with a null target.
fn ranks_with_a_null_target(targets: &[String]) -> Value {
    let mut items: Vec<Value> = targets
        .iter()
        .map(|t| json!({"target": t, "rank": 212}))
        .collect();
    items[3] = json!({"target": null, "rank": 212});
    answer(
        Endpoint::BulkRanks,
        json!({"total_count": targets.len(), "items_count": targets.len(), "items": items}),
    )
}

/// A once-run of bulk_ranks for ten targets, whose answer has item 3's target null,
/// into a database of its own.
async fn ranks_with_a_null_target_loaded() -> (TestDb, linkledger::store::Store) {
    let db = TestDb::new().await;
    let store = db.store().await;
    let targets = domains(10);
    let sb = serving(Endpoint::BulkRanks, ranks_with_a_null_target(&targets)).await;
    let exec = executor(&store, &sb, 4);
    let job = job_for("bulk_ranks", &targets, "");
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(report.ok(), "{}", report.line());
    (db, store)
}

async fn rejected(store: &linkledger::store::Store) -> Vec<(String, String, String, Value)> {
    sqlx::query_as(
        "SELECT endpoint, path, reason, item FROM linkledger.rejected_items ORDER BY raw_response_id, path",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_bulk_answer_with_one_null_target_stores_every_other_target_and_is_not_bought_again() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let targets = domains(1000);
    let sb = serving(Endpoint::BulkRanks, ranks_with_a_null_target(&targets)).await;
    let metrics = Arc::new(Metrics::new());
    let exec = executor(&store, &sb, 4).with_metrics(metrics.clone());
    let job = job_for("bulk_ranks", &targets, "");
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();

    // The work item succeeded with the 999 readable targets: not invalid_response.
    assert!(report.ok(), "{}", report.line());
    let outcome: String = sqlx::query_scalar("SELECT outcome FROM linkledger.api_calls")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(outcome, "ok");
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.work WHERE state = 'succeeded'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.bulk_ranks").await,
        999
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.bulk_ranks WHERE target = 'd3.example.com'"
        )
        .await,
        0
    );
    // The one item is set aside with where it was, why, and what it was.
    assert_eq!(
        rejected(&store).await,
        [(
            "bulk_ranks".to_string(),
            "tasks[0].result[0].items[3]".to_string(),
            "target: expected string, found null".to_string(),
            json!({"target": null, "rank": 212}),
        )]
    );

    // The run's line, `runs show` and /metrics count it.
    let line = report.jobs[0].line();
    assert!(line.contains("999 rows, 1 item set aside"), "{line}");
    let run = report.jobs[0].run_id;
    let wd = Workdir::new(&[]);
    let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
    let out = linkledger(wd.path(), &env, &["runs", "show", &run.to_string()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(shown.contains("1 item set aside"), "{shown}");
    assert!(
        shown.contains(
            "bulk_ranks tasks[0].result[0].items[3]: target: expected string, found null"
        ),
        "{shown}"
    );
    let text = metrics.render();
    assert!(
        text.contains(r#"linkledger_items_set_aside_total{endpoint="bulk_ranks"} 1"#),
        "{text}"
    );

    // A second run the same day reuses the answer: nothing is bought again.
    let again = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(again.ok(), "{}", again.line());
    assert_eq!(sb.stats().by_endpoint.get("bulk_ranks"), Some(&1));
    assert_eq!(
        rejected(&store).await.len(),
        1,
        "loading it again adds nothing"
    );
}

#[tokio::test]
async fn a_history_answer_with_a_null_item_loads_the_other_months_and_its_periods_are_not_bought_again()
 {
    let db = TestDb::new().await;
    let store = db.store().await;
    let body = answer(
        Endpoint::History,
        json!({"target": "example.com", "date_from": "2024-01-01", "date_to": "2024-03-31",
               "items_count": 3, "items": [
            {"type": "backlinks_history", "date": "2024-01-01 00:00:00 +00:00", "backlinks": 10},
            null,
            {"type": "backlinks_history", "date": "2024-03-01 00:00:00 +00:00", "backlinks": 30}
        ]}),
    );
    let sb = serving(Endpoint::History, body).await;
    let exec = executor(&store, &sb, 4);
    let job = job_for(
        "history",
        &["example.com".to_string()],
        "date_from = \"2024-01-01\", date_to = \"2024-03-31\"",
    );
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(report.ok(), "{}", report.line());
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.history").await,
        2
    );
    assert_eq!(
        rejected(&store).await,
        [(
            "history".to_string(),
            "tasks[0].result[0].items[1]".to_string(),
            "expected object, found null".to_string(),
            Value::Null,
        )]
    );
    // The answer covers its months: the next run has nothing to buy.
    let again = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(again.ok(), "{}", again.line());
    assert_eq!(sb.stats().by_endpoint.get("history"), Some(&1));
}

#[tokio::test]
async fn replay_keeps_exactly_the_items_still_unreadable_and_loads_the_ones_it_can_now_read() {
    let (db, store) = ranks_with_a_null_target_loaded().await;
    let snapshot = || async {
        sqlx::query_as::<_, (i64, String, String, Value, chrono::DateTime<Utc>)>(
            "SELECT raw_response_id, path, reason, item, set_aside_at FROM linkledger.rejected_items",
        )
        .fetch_all(store.pool())
        .await
        .unwrap()
    };
    let before = snapshot().await;
    assert_eq!(before.len(), 1);

    // Replayed twice: the same rejected row, untouched, never a second one.
    let wd = Workdir::new(&[]);
    let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
    for _ in 0..2 {
        let out = linkledger(wd.path(), &env, &["replay"]).await;
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        assert!(
            stdout(&out).contains("1 item still set aside"),
            "{}",
            stdout(&out)
        );
        assert_eq!(snapshot().await, before);
        assert_eq!(
            count(&store, "SELECT count(*) FROM linkledger.bulk_ranks").await,
            9
        );
    }

    // Once the item can be read (here: the stored answer says its target), replay loads
    // it and its rejected row goes.
    sqlx::query(
        "UPDATE linkledger.raw_responses
         SET body = jsonb_set(body, '{tasks,0,result,0,items,3,target}', '\"d3.example.com\"')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let out = linkledger(wd.path(), &env, &["replay"]).await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(rejected(&store).await.is_empty());
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.bulk_ranks").await,
        10
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.bulk_ranks WHERE target = 'd3.example.com'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn raw_retention_keeps_a_body_while_items_of_it_are_set_aside() {
    let (_db, store) = ranks_with_a_null_target_loaded().await;
    // The body, moved to a month past the window.
    let old = month_of(today()) - Months::new(3);
    sqlx::query("SELECT linkledger.create_month_partition('raw_responses', $1)")
        .bind(old)
        .execute(store.pool())
        .await
        .unwrap();
    let at = Utc.from_utc_datetime(&(old + Days::new(9)).and_hms_opt(8, 0, 0).unwrap());
    sqlx::query("UPDATE linkledger.raw_responses SET received_at = $1")
        .bind(at)
        .execute(store.pool())
        .await
        .unwrap();
    let keep_from = month_of(today()) - Months::new(1);
    let report = store.drop_expired_raw(keep_from).await.unwrap();
    assert_eq!((report.bodies_dropped, report.bodies_kept), (0, 1));
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger_partitions.raw_responses_default"
        )
        .await,
        1
    );
    // Once nothing of it is set aside, the next pass lets it go.
    sqlx::query("DELETE FROM linkledger.rejected_items")
        .execute(store.pool())
        .await
        .unwrap();
    let report = store.drop_expired_raw(keep_from).await.unwrap();
    assert_eq!(report.bodies_dropped, 1);
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.raw_responses").await,
        0
    );
}
