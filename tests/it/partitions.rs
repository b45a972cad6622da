//! Month partitions and raw retention (migration 0013): rows land in their month's
//! partition, a month without one waits in the default partition until its partition
//! is made, daemons making partitions at once do no harm, the planner reads only the
//! months a date-bounded query asks for, and raw retention drops only whole months
//! past its window and never a body whose rows are not loaded.

use chrono::{Datelike, Days, Months, NaiveDate, TimeZone, Utc};
use linkledger::api::Endpoint;
use linkledger::store::Store;
use linkledger::store::partitions::{PARTITIONED, month_of};
use linkledger::warehouse::normalize::{self, Context};
use serde_json::json;

use crate::common::*;

/// The partition each row of `table` for `target` is in, by its date.
async fn placed(store: &Store, table: &str, column: &str, target: &str) -> Vec<(String, String)> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {column}::text, tableoid::regclass::text FROM linkledger.{table}
         WHERE target = $1 ORDER BY 1, 2"
    )))
    .bind(target)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

/// The rows of the sandbox's answer to `task` of `endpoint`, received at noon UTC of
/// `day`, written the way replay writes them.
async fn store_answer(
    store: &Store,
    endpoint: Endpoint,
    task: serde_json::Value,
    day: NaiveDate,
) -> normalize::Batch {
    let result = linkledger::sandbox::build_result(endpoint, &task, day).unwrap();
    let body = json!({"status_code": 20000, "tasks": [{"status_code": 20000, "result": result}]});
    let ctx = Context {
        endpoint,
        raw_response_id: 1,
        collected_at: Utc.from_utc_datetime(&day.and_hms_opt(12, 0, 0).unwrap()),
        sent_at: Utc.from_utc_datetime(&day.and_hms_opt(12, 0, 0).unwrap()),
        settle: endpoint.default_settle(),
        request: &task,
    };
    let batch = normalize::normalize(&ctx, &body).unwrap();
    store.store_normalized(&batch).await.unwrap();
    batch
}

/// The summary rows of a sandbox answer for `target` on `day`.
async fn store_summary(store: &Store, target: &str, day: NaiveDate) {
    store_answer(store, Endpoint::Summary, json!({"target": target}), day).await;
}

fn partition(table: &str, day: NaiveDate) -> String {
    format!(
        "linkledger_partitions.{table}_p{:04}_{:02}",
        day.year(),
        day.month()
    )
}

async fn partitions_of(store: &Store, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT inhrelid::regclass::text FROM pg_inherits
         WHERE inhparent = ('linkledger.' || $1)::regclass ORDER BY 1",
    )
    .bind(table)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn rows_of_past_current_and_future_months_land_in_their_months_partitions() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let this_month = month_of(today());
    let days = [
        this_month - Months::new(14) + Days::new(3),
        this_month - Months::new(1) + Days::new(27),
        today(),
        this_month + Months::new(1) + Days::new(9),
        this_month + Months::new(7),
    ];
    for day in days {
        store_summary(&store, "parts.example", day).await;
    }
    let got = placed(&store, "summary", "collected_on", "parts.example").await;
    let want: Vec<(String, String)> = days
        .iter()
        .map(|d| (d.to_string(), partition("summary", *d)))
        .collect();
    assert_eq!(got, want);
    // The breakdowns follow their parents into the same months.
    let breakdowns = placed(&store, "link_breakdowns", "date", "parts.example").await;
    assert!(!breakdowns.is_empty());
    for (date, part) in breakdowns {
        let day: NaiveDate = date.parse().unwrap();
        assert_eq!(part, partition("link_breakdowns", day));
    }
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger_partitions.summary_default"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_row_past_the_made_partitions_waits_in_the_default_one_and_moves_when_its_month_is_made()
{
    let db = TestDb::new().await;
    let store = db.store().await;
    let far = month_of(today()) + Months::new(6) + Days::new(4);
    // Written by hand, as a writer that does not make partitions would: never refused.
    sqlx::query(
        "INSERT INTO linkledger.timeseries_summary (target, options, group_range, date, rank_scale,
                                                   collected_at, raw_response_id)
         VALUES ('later.example', '{}', 'day', $1, 'one_thousand', now(), 1)",
    )
    .bind(far)
    .execute(store.pool())
    .await
    .unwrap();
    assert_eq!(
        placed(&store, "timeseries_summary", "date", "later.example").await,
        vec![(
            far.to_string(),
            "linkledger_partitions.timeseries_summary_default".into()
        )]
    );
    // The daemon's pass makes that month's partition (it is in the default one) and
    // moves the row into it.
    let created = store.maintain_partitions(today()).await.unwrap();
    assert_eq!(
        created, 1,
        "only the month waiting in a default partition was missing"
    );
    assert_eq!(
        placed(&store, "timeseries_summary", "date", "later.example").await,
        vec![(far.to_string(), partition("timeseries_summary", far))]
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger_partitions.timeseries_summary_default"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn two_daemons_making_partitions_at_once_neither_fail_nor_make_one_twice() {
    let db = TestDb::new().await;
    let (a, b) = (db.store().await, db.store().await);
    let future = month_of(today()) + Months::new(30);
    for round in 0..3 {
        let day = future + Months::new(round);
        let (x, y) = tokio::join!(a.maintain_partitions(day), b.maintain_partitions(day));
        let (x, y) = (x.unwrap(), y.unwrap());
        // Each round adds one month past the last one made (the first: all three).
        let expected_new = if round == 0 { 3 } else { 1 };
        assert_eq!(
            x + y,
            expected_new * PARTITIONED.len() as i32,
            "round {round}: {x} + {y}"
        );
    }
    for (table, _) in PARTITIONED {
        let parts = partitions_of(&a, table).await;
        for k in 0..5 {
            let want = partition(table, future + Months::new(k));
            assert_eq!(
                parts.iter().filter(|p| **p == want).count(),
                1,
                "{want} in {parts:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_planner_reads_only_the_months_a_date_bounded_query_asks_for() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let this_month = month_of(today());
    for k in 0..4 {
        store_summary(
            &store,
            "pruned.example",
            this_month - Months::new(k) + Days::new(1),
        )
        .await;
    }
    let last = this_month - Months::new(1);
    for (table, column) in [("summary", "collected_on"), ("link_breakdowns", "date")] {
        let plan: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (FORMAT JSON) SELECT * FROM linkledger.{table}
             WHERE target = 'pruned.example' AND {column} BETWEEN $1 AND $2"
        )))
        .bind(last)
        .bind(last + Days::new(20))
        .fetch_one(store.pool())
        .await
        .unwrap();
        let text = plan.to_string();
        let scanned: Vec<&str> = text
            .split("\"Relation Name\":\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .collect();
        let want = partition(table, last);
        assert_eq!(
            scanned,
            vec![want.trim_start_matches("linkledger_partitions.")],
            "{table}: {text}"
        );
    }
}

/// Ledger rows, raw bodies and work items of a real run of `targets`.
async fn collected(db: &TestDb, targets: &[String]) -> Store {
    let sb = default_sandbox().await;
    let store = db.store().await;
    let exec = executor(&store, &sb, 4);
    let job = job_for("summary", targets, "");
    run_once(&exec, &[&job], linkledger::store::RunKind::Once, today())
        .await
        .unwrap();
    store
}

/// Puts the work item that bought raw response `raw_id` in `state`.
async fn set_work_state(store: &Store, raw_id: i64, state: &str) {
    sqlx::query(
        "UPDATE linkledger.work w SET state = $2 FROM linkledger.api_calls c
         JOIN linkledger.raw_responses r ON r.api_call_id = c.id
         WHERE w.id = c.work_id AND r.id = $1",
    )
    .bind(raw_id)
    .bind(state)
    .execute(store.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn raw_retention_drops_only_whole_months_past_the_window_and_keeps_bodies_not_loaded() {
    let db = TestDb::new().await;
    let targets: Vec<String> = (0..6).map(|i| format!("keep{i}.example")).collect();
    let store = collected(&db, &targets).await;
    let this_month = month_of(today());
    // Their bodies, moved back in time: two in each of three months before this one.
    let months = [
        this_month - Months::new(3),
        this_month - Months::new(2),
        this_month - Months::new(1),
    ];
    for m in months {
        sqlx::query("SELECT linkledger.create_month_partition('raw_responses', $1)")
            .bind(m)
            .execute(store.pool())
            .await
            .unwrap();
    }
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM linkledger.raw_responses ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(ids.len(), 6);
    for (i, id) in ids.iter().enumerate() {
        let at =
            Utc.from_utc_datetime(&(months[i / 2] + Days::new(9)).and_hms_opt(8, 0, 0).unwrap());
        sqlx::query("UPDATE linkledger.raw_responses SET received_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(store.pool())
            .await
            .unwrap();
    }
    // In the oldest month, one body's rows are not loaded (its item never finished);
    // in the next, one answer could not be read.
    set_work_state(&store, ids[0], "running").await;
    sqlx::query(
        "UPDATE linkledger.api_calls c SET outcome = 'invalid_response'
         FROM linkledger.raw_responses r WHERE r.api_call_id = c.id AND r.id = $1",
    )
    .bind(ids[2])
    .execute(store.pool())
    .await
    .unwrap();
    let rows_before = count(&store, "SELECT count(*) FROM linkledger.summary").await;

    // The window starts mid-way through last month: the two months before it go,
    // last month stays whole.
    let keep_from = months[2] + Days::new(14);
    let report = store.drop_expired_raw(keep_from).await.unwrap();
    assert_eq!(
        report.dropped,
        vec![
            partition("raw_responses", months[0])
                .trim_start_matches("linkledger_partitions.")
                .to_string(),
            partition("raw_responses", months[1])
                .trim_start_matches("linkledger_partitions.")
                .to_string(),
        ]
    );
    assert_eq!((report.bodies_dropped, report.bodies_kept), (2, 2));
    let left: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, tableoid::regclass::text FROM linkledger.raw_responses ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        left,
        vec![
            (
                ids[0],
                "linkledger_partitions.raw_responses_default".to_string()
            ),
            (
                ids[2],
                "linkledger_partitions.raw_responses_default".to_string()
            ),
            (ids[4], partition("raw_responses", months[2])),
            (ids[5], partition("raw_responses", months[2])),
        ]
    );
    // The warehouse keeps its rows; only raw bodies go.
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.summary").await,
        rows_before
    );
    // The daemon's partition pass leaves the kept bodies where they are.
    store.maintain_partitions(today()).await.unwrap();
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger_partitions.raw_responses_default"
        )
        .await,
        2
    );

    // Once the unfinished item's rows load, the next pass drops its body; the answer
    // that could not be read stays for replay.
    set_work_state(&store, ids[0], "succeeded").await;
    let again = store.drop_expired_raw(keep_from).await.unwrap();
    assert!(again.dropped.is_empty());
    assert_eq!((again.bodies_dropped, again.bodies_kept), (1, 0));
    let ids_left: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM linkledger.raw_responses ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(ids_left, vec![ids[2], ids[4], ids[5]]);
}

#[tokio::test]
async fn replay_says_when_its_since_reaches_past_the_raw_retention_window() {
    let db = TestDb::new().await;
    db.store().await;
    let wd = Workdir::new(&[]);
    let env = vec![
        ("DATABASE_URL".to_string(), db.url.clone()),
        (
            "LINKLEDGER_WAREHOUSE__RAW_RETENTION".to_string(),
            "30days".to_string(),
        ),
    ];
    let out = linkledger(wd.path(), &env, &["replay", "--since", "2020-01-01"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let keep_from = today() - Days::new(30);
    assert!(
        err.contains(&format!(
            "--since 2020-01-01 reaches past warehouse.raw_retention (30 days): raw bodies go by whole months once entirely older than {keep_from}"
        )),
        "{err}"
    );
    // Inside the window: nothing to say.
    let inside = (today() - Days::new(3)).to_string();
    let out = linkledger(wd.path(), &env, &["replay", "--since", &inside]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("raw_retention"), "{}", stderr(&out));
}

#[tokio::test]
async fn the_migration_moves_stored_rows_into_month_partitions_and_keeps_the_views() {
    let db = TestDb::new().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    crate::warehouse_keys::migrate_to(&pool, 12).await;
    let old = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    for (target, day) in [
        ("a.example", old),
        ("a.example", today()),
        ("b.example", old),
    ] {
        sqlx::query(
            "WITH c AS (
                 INSERT INTO linkledger.api_calls (endpoint, request, attempt, started_at, outcome, cost_usd)
                 VALUES ('summary', jsonb_build_object('target', $1::text), 1, now(), 'ok', 0.02) RETURNING id),
             r AS (
                 INSERT INTO linkledger.raw_responses (api_call_id, endpoint, received_at, body)
                 SELECT id, 'summary', $2::date + time '12:00', '{\"status_code\": 20000}' FROM c RETURNING id)
             INSERT INTO linkledger.summary (target, options, collected_on, rank_scale, collected_at,
                                             raw_response_id, backlinks)
             SELECT $1, linkledger.default_options('summary'), $2, 'one_thousand', now(), id, 7 FROM r",
        )
        .bind(target)
        .bind(day)
        .execute(&pool)
        .await
        .unwrap();
    }
    let store = Store::from_pool(pool);
    store.migrate().await.unwrap();
    assert_eq!(
        placed(&store, "summary", "collected_on", "a.example").await,
        vec![
            (old.to_string(), partition("summary", old)),
            (today().to_string(), partition("summary", today())),
        ]
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger_partitions.raw_responses_default"
        )
        .await,
        0
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.raw_responses").await,
        3
    );
    // The views are back, over the partitioned tables.
    let latest: Vec<(String, NaiveDate, i64)> = sqlx::query_as(
        "SELECT target, collected_on, backlinks FROM linkledger.latest_summary ORDER BY target",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        latest,
        vec![
            ("a.example".into(), today(), 7),
            ("b.example".into(), old, 7)
        ]
    );
    // New raw bodies still take ids from the same sequence, after the old ones.
    let max_old: i64 = sqlx::query_scalar("SELECT max(id) FROM linkledger.raw_responses")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let next: i64 = sqlx::query_scalar(
        "SELECT nextval(pg_get_serial_sequence('linkledger.raw_responses', 'id'))",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(next > max_old);
}

#[tokio::test]
async fn the_store_knows_every_partitioned_table_and_its_column() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let catalog: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text
         FROM pg_partitioned_table pt
         JOIN pg_class c ON c.oid = pt.partrelid
         JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
         WHERE c.relnamespace = 'linkledger'::regnamespace ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let known: Vec<(String, String)> = PARTITIONED
        .iter()
        .map(|(t, c)| (t.to_string(), c.to_string()))
        .collect();
    assert_eq!(catalog, known);
    // Each has its default partition and this month's.
    for (table, _) in PARTITIONED {
        let parts = partitions_of(&store, table).await;
        assert!(
            parts.contains(&format!("linkledger_partitions.{table}_default")),
            "{parts:?}"
        );
        assert!(parts.contains(&partition(table, today())), "{parts:?}");
    }
}

/// Monthly history of `target` since 2025 (one breakdown parent per month).
async fn store_history(store: &Store, target: &str, today: NaiveDate) {
    let task = json!({"target": target, "date_from": "2025-01-01", "date_to": today.to_string()});
    let batch = store_answer(store, Endpoint::History, task, today).await;
    assert!(batch.parents.len() > 12, "a parent per month");
}

/// link_breakdowns' partitions as the statistics count them: (rows read by sequential
/// scans, rows deleted).
async fn breakdown_scans(store: &Store) -> (i64, i64) {
    sqlx::query_as(
        "SELECT coalesce(sum(seq_tup_read), 0)::bigint, coalesce(sum(n_tup_del), 0)::bigint
         FROM pg_stat_user_tables
         WHERE schemaname = 'linkledger_partitions' AND relname LIKE 'link\\_breakdowns\\_%'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// Replacing one target's breakdowns reads that target's rows by the index, never a
/// partition whole: otherwise every answer's write costs as much as the table holds.
#[tokio::test]
async fn rewriting_one_targets_breakdowns_reads_no_partition_whole() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let today = Utc::now().date_naive();
    for i in 0..40 {
        store_history(&store, &format!("site-{i:02}.example.com"), today).await;
    }
    sqlx::query("ANALYZE linkledger.link_breakdowns")
        .execute(store.pool())
        .await
        .unwrap();
    let (read, deleted) = breakdown_scans(&store).await;
    store_history(&store, "site-07.example.com", today).await;
    // The statistics arrive when the writing session reports them (within seconds).
    wait_for(
        std::time::Duration::from_secs(30),
        "the rewrite's deletions in the statistics",
        || async { breakdown_scans(&store).await.1 > deleted },
    )
    .await;
    let (read_after, deleted_after) = breakdown_scans(&store).await;
    let total = count(&store, "SELECT count(*) FROM linkledger.link_breakdowns").await;
    // At most a target's worth of rows (a small partition may be scanned), never the
    // table's forty.
    assert!(
        read_after - read <= deleted_after - deleted,
        "one target's rewrite read {} rows by sequential scans of {total}",
        read_after - read
    );
}

#[tokio::test]
async fn a_bi_tools_table_list_of_the_schema_holds_no_partition_and_the_reader_still_reads_the_rows()
 {
    let db = TestDb::new().await;
    let store = db.store().await;
    store.maintain_partitions(today()).await.unwrap();
    // What a BI tool lists: information_schema.tables of the schema.
    let listed: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'linkledger' ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(listed.contains(&"summary".to_string()), "{listed:?}");
    let partitions: Vec<&String> = listed
        .iter()
        .filter(|t| t.ends_with("_default") || t.contains("_p20"))
        .collect();
    assert!(partitions.is_empty(), "partitions listed: {partitions:?}");
    // They are in a schema of their own.
    let elsewhere: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
         WHERE c.relnamespace = 'linkledger_partitions'::regnamespace",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(
        elsewhere > 12,
        "{elsewhere} partitions in linkledger_partitions"
    );
    // A read-only role reads the parent's rows without any privilege on them.
    let day = today();
    let role = format!("bi_{}", db.name);
    let wd = Workdir::new(&[]);
    let env = vec![
        ("DATABASE_URL".to_string(), db.url.clone()),
        ("BI_PW".to_string(), "pw".to_string()),
    ];
    let out = linkledger(
        wd.path(),
        &env,
        &["grant-reader", &role, "--password-env", "BI_PW"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    sqlx::query(
        "INSERT INTO linkledger.summary (target, options, collected_on, rank_scale, collected_at, raw_response_id)
         VALUES ('a.example.com', linkledger.default_options('summary'), $1, 'one_thousand', now(), 1)",
    )
    .bind(day)
    .execute(store.pool())
    .await
    .unwrap();
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(Some("pw")).unwrap();
    use sqlx::Connection;
    let mut reader = sqlx::PgConnection::connect(url.as_str()).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM linkledger.summary")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    reader.close().await.unwrap();
    // Roles belong to the server: this one goes with the test.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP OWNED BY {role}; DROP ROLE {role}"
    )))
    .execute(store.pool())
    .await
    .unwrap();
}
