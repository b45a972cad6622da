//! The request options that change an answer are part of every warehouse key: two
//! collections of one target that ask differently keep both answers, each rank beside
//! its scale; rows stored under the old keys are carried into the new ones.

use linkledger::api::Endpoint;
use linkledger::store::{RunKind, Store};
use serde_json::{Value, json};

use crate::common::*;

const TARGET: &str = "keys.example.com";

/// A job collecting every endpoint whose answer depends on `params` (one TOML inline
/// table's contents) for [`TARGET`].
fn job_with(name: &str, endpoints: &[&str], params: &str) -> linkledger::jobs::Job {
    let mut s = format!("name = \"{name}\"\ntargets = [\"{TARGET}\"]\n");
    for e in endpoints {
        let dates = match *e {
            "history" => "date_from = \"2024-01-01\", date_to = \"2024-03-31\", ",
            "timeseries_summary" | "timeseries_new_lost_summary" => {
                "date_from = \"-20d\", group_range = \"week\", "
            }
            _ => "",
        };
        s += &format!(
            "\n[[collect]]\nendpoint = \"{e}\"\nschedule = \"@daily\"\nparams = {{ {dates}{params} }}\n"
        );
    }
    job(&s)
}

async fn collect(
    store: &Store,
    sb: &linkledger::sandbox::Sandbox,
    jobs: &[&linkledger::jobs::Job],
) {
    let exec = executor(store, sb, 8);
    let report = run_once(&exec, jobs, RunKind::Once, today()).await.unwrap();
    assert!(report.ok(), "{}", report.line());
}

/// The period column of a table's key.
fn period(table: &str) -> &'static str {
    match table {
        "history" => "month",
        "timeseries_summary" | "timeseries_new_lost_summary" => "date",
        _ => "collected_on",
    }
}

/// (rows, distinct target-and-period pairs, distinct option sets) of `table`.
async fn shape(store: &Store, table: &str) -> (i64, i64, i64) {
    let p = period(table);
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), count(DISTINCT (target, {p})), count(DISTINCT options)
         FROM linkledger.{table}"
    )))
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn two_jobs_on_one_target_differing_only_in_rank_scale_keep_both_rows_in_each_table() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let tables = [
        "summary",
        "history",
        "timeseries_summary",
        "bulk_ranks",
        "bulk_pages_summary",
    ];
    let thousand = job_with("thousand", &tables, "rank_scale = \"one_thousand\"");
    let hundred = job_with("hundred", &tables, "rank_scale = \"one_hundred\"");
    collect(&store, &sb, &[&thousand, &hundred]).await;

    for table in tables {
        let (rows, periods, option_sets) = shape(&store, table).await;
        assert!(periods > 0, "{table}: nothing stored");
        assert_eq!(rows, 2 * periods, "{table}: one row per period and scale");
        assert_eq!(option_sets, 2, "{table}");
        // Each rank is stored with its scale, and the 0-100 one is the API's conversion
        // of the 0-1000 one for the same period.
        let p = period(table);
        let pairs: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT k.rank, h.rank FROM linkledger.{table} k
             JOIN linkledger.{table} h USING (target, {p})
             WHERE k.rank_scale = 'one_thousand' AND h.rank_scale = 'one_hundred'
               AND k.options->>'rank_scale' = 'one_thousand'
               AND h.options->>'rank_scale' = 'one_hundred'"
        )))
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(pairs.len() as i64, periods, "{table}");
        for (k, h) in pairs {
            assert_eq!(
                h,
                linkledger::sandbox::data::show_rank(k, true),
                "{table}: {k}"
            );
        }
    }
    // Breakdowns belong to their parent row, options included: both scales keep theirs.
    for source in ["summary", "history", "bulk_pages_summary"] {
        let sets = count(
            &store,
            &format!(
                "SELECT count(DISTINCT options) FROM linkledger.link_breakdowns WHERE source_table = '{source}'"
            ),
        )
        .await;
        assert_eq!(sets, 2, "{source} breakdowns");
    }
    // The views show the default scale unless asked.
    let latest: Vec<(String, String)> =
        sqlx::query_as("SELECT target, rank_scale FROM linkledger.latest_summary")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(latest, [(TARGET.to_string(), "one_thousand".to_string())]);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.latest_summary_by_options"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.referring_domains_trend WHERE rank_scale <> 'one_thousand'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.referring_domains_trend"
        )
        .await,
        3
    );
}

#[tokio::test]
async fn two_jobs_on_one_target_differing_only_in_include_subdomains_keep_both_rows_in_each_table()
{
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let tables = [
        "summary",
        "timeseries_summary",
        "timeseries_new_lost_summary",
        "bulk_pages_summary",
    ];
    let with = job_with("with", &tables, "include_subdomains = true");
    let without = job_with("without", &tables, "include_subdomains = false");
    collect(&store, &sb, &[&with, &without]).await;
    for table in tables {
        let (rows, periods, option_sets) = shape(&store, table).await;
        assert!(periods > 0, "{table}: nothing stored");
        assert_eq!(rows, 2 * periods, "{table}: one row per period and option");
        assert_eq!(option_sets, 2, "{table}");
        // Without subdomains the sandbox counts fewer links: the rows are the two
        // answers, not one answer twice.
        let (narrow, wide): (Option<i64>, Option<i64>) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT (sum(x) FILTER (WHERE NOT (options->>'include_subdomains')::boolean))::bigint,
                        (sum(x) FILTER (WHERE (options->>'include_subdomains')::boolean))::bigint
             FROM (SELECT options, {} AS x FROM linkledger.{table}) t",
                if table == "timeseries_new_lost_summary" {
                    "new_backlinks"
                } else {
                    "backlinks"
                }
            )))
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert!(
            narrow.unwrap() < wide.unwrap(),
            "{table}: {narrow:?} {wide:?}"
        );
    }
    // The default option set (include_subdomains = true) is the one the view shows.
    let opts: Value = sqlx::query_scalar("SELECT options FROM linkledger.latest_summary")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(opts["include_subdomains"], json!(true));
}

#[tokio::test]
async fn the_default_option_set_of_the_database_is_the_one_normalization_computes() {
    let db = TestDb::new().await;
    let store = db.store().await;
    for spec in linkledger::warehouse::normalize::TABLES {
        if !spec.key.iter().any(|(n, _)| *n == "options") {
            continue;
        }
        let in_db: Value = sqlx::query_scalar("SELECT linkledger.default_options($1)")
            .bind(spec.name)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(in_db, spec.endpoint.default_options(), "{}", spec.name);
    }
    // A request that sets every option to its default is the default set.
    let task = json!({"target": "a.com", "rank_scale": "one_thousand", "tag": "x",
                      "date_from": "2024-01-01", "date_to": "2024-02-01"});
    assert_eq!(
        Endpoint::History.answer_options(&task),
        Endpoint::History.default_options()
    );
}

#[tokio::test]
async fn a_tag_in_a_job_file_is_sent_and_kept_in_the_ledger_but_is_no_option() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let tagged = job_with(
        "tagged",
        &["summary", "bulk_backlinks"],
        "tag = \"q4 audit\"",
    );
    collect(&store, &sb, &[&tagged]).await;
    let tags: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT endpoint, request->>'tag' FROM linkledger.api_calls
         WHERE endpoint <> 'appendix/user_data' ORDER BY endpoint",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        tags,
        [
            ("bulk_backlinks".to_string(), Some("q4 audit".to_string())),
            ("summary".to_string(), Some("q4 audit".to_string())),
        ]
    );
    // The API echoes it in the task's data; the rows are keyed as without it.
    let echoed: Vec<Value> = sqlx::query_scalar(
        "SELECT body->'tasks'->0->'data'->'tag' FROM linkledger.raw_responses ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(echoed, [json!("q4 audit"), json!("q4 audit")]);
    let opts: Value = sqlx::query_scalar("SELECT options FROM linkledger.summary")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(opts, Endpoint::Summary.default_options());
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.bulk_backlinks WHERE options = '{}'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_tagged_call_and_the_same_call_untagged_are_bought_once_a_day() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let plain = job_with("plain", &["summary", "bulk_ranks"], "");
    let tagged = job_with("tagged", &["summary", "bulk_ranks"], "tag = \"mine\"");
    collect(&store, &sb, &[&plain, &tagged]).await;
    let stats = sb.stats();
    assert_eq!(stats.by_endpoint.get("summary"), Some(&1), "{stats:?}");
    assert_eq!(stats.by_endpoint.get("bulk_ranks"), Some(&1), "{stats:?}");
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.summary").await,
        1
    );
    // A later run the same day reuses it too, tagged or not.
    collect(&store, &sb, &[&tagged]).await;
    assert_eq!(sb.stats().requests, stats.requests);
}

/// target, month, options, rank_scale, rank, referring_domains
type HistoryRow = (String, String, Value, String, Option<i64>, Option<i64>);

/// Applies the migrations up to `version` only.
pub(crate) async fn migrate_to(pool: &sqlx::PgPool, version: i64) {
    let mut m = sqlx::migrate!("./migrations");
    m.migrations = std::borrow::Cow::Owned(
        m.migrations
            .iter()
            .filter(|x| x.version <= version)
            .cloned()
            .collect(),
    );
    m.run(pool).await.expect("migrating to the older version");
}

/// Stores an answer to `request` the way version 7 did: a ledger row and its raw
/// response. Returns the raw response's id.
async fn old_answer(pool: &sqlx::PgPool, endpoint: &str, request: Value) -> i64 {
    sqlx::query_scalar(
        "WITH c AS (
            INSERT INTO linkledger.api_calls (endpoint, request, attempt, started_at, outcome, cost_usd)
            VALUES ($1, $2, 1, now(), 'ok', 0.02) RETURNING id)
         INSERT INTO linkledger.raw_responses (api_call_id, endpoint, received_at, body)
         SELECT id, $1, now(), '{\"status_code\": 20000}' FROM c RETURNING id",
    )
    .bind(endpoint)
    .bind(request)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_migration_carries_rows_stored_under_the_old_keys_into_the_new_ones() {
    let db = TestDb::new().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    migrate_to(&pool, 7).await;

    // What version 7 stored: history of a.com asked on the 0-100 scale, of b.com on
    // the default one; a weekly timeseries without subdomains; ranks and a pages
    // summary on the 0-100 scale, with the invented info columns; a summary.
    let h100 = old_answer(
        &pool,
        "history",
        json!({"target": "a.com", "date_from": "2024-01-01", "date_to": "2024-02-29", "rank_scale": "one_hundred"}),
    )
    .await;
    let h1000 = old_answer(
        &pool,
        "history",
        json!({"target": "b.com", "date_from": "2024-01-01", "date_to": "2024-01-31", "rank_scale": "one_thousand"}),
    )
    .await;
    let ts = old_answer(
        &pool,
        "timeseries_summary",
        json!({"target": "a.com", "date_from": "2024-01-01", "date_to": "2024-01-14", "group_range": "week", "include_subdomains": false, "rank_scale": "one_thousand", "tag": "old"}),
    )
    .await;
    let tnl = old_answer(
        &pool,
        "timeseries_new_lost_summary",
        json!({"target": "a.com", "date_from": "2024-01-01", "date_to": "2024-01-07", "group_range": "week", "include_subdomains": false}),
    )
    .await;
    let ranks = old_answer(
        &pool,
        "bulk_ranks",
        json!({"targets": ["a.com"], "rank_scale": "one_hundred"}),
    )
    .await;
    let pages = old_answer(
        &pool,
        "bulk_pages_summary",
        json!({"targets": ["https://a.com/x"], "include_subdomains": true, "rank_scale": "one_hundred"}),
    )
    .await;
    let backlinks = old_answer(&pool, "bulk_backlinks", json!({"targets": ["a.com"]})).await;
    let summary = old_answer(
        &pool,
        "summary",
        json!({"target": "a.com", "include_subdomains": true, "rank_scale": "one_hundred"}),
    )
    .await;
    let fill = [
        format!(
            "INSERT INTO linkledger.history (target, month, rank, backlinks, backlinks_nofollow, referring_domains, info_server, collected_at, raw_response_id)
             VALUES ('a.com', '2024-01-01', 55, 100, 7, 10, 'nginx', now(), {h100}),
                    ('a.com', '2024-02-01', 56, 110, 8, 11, 'nginx', now(), {h100}),
                    ('b.com', '2024-01-01', 371, 500, 9, 50, NULL, now(), {h1000})"
        ),
        format!(
            "INSERT INTO linkledger.timeseries_summary (target, group_range, date, rank, backlinks, collected_at, raw_response_id)
             VALUES ('a.com', 'week', '2024-01-07', 300, 90, now(), {ts}), ('a.com', 'week', '2024-01-14', 301, 91, now(), {ts})"
        ),
        format!(
            "INSERT INTO linkledger.timeseries_new_lost_summary (target, group_range, date, new_backlinks, collected_at, raw_response_id)
             VALUES ('a.com', 'week', '2024-01-07', 4, now(), {tnl})"
        ),
        format!(
            "INSERT INTO linkledger.bulk_ranks (target, collected_on, rank, collected_at, raw_response_id)
             VALUES ('a.com', '2024-03-01', 55, now(), {ranks})"
        ),
        format!(
            "INSERT INTO linkledger.bulk_pages_summary (target, collected_on, rank, main_domain_rank, backlinks, info_server, collected_at, raw_response_id)
             VALUES ('https://a.com/x', '2024-03-01', 20, 55, 12, 'invented', now(), {pages})"
        ),
        format!(
            "INSERT INTO linkledger.bulk_backlinks (target, collected_on, backlinks, collected_at, raw_response_id)
             VALUES ('a.com', '2024-03-01', 77, now(), {backlinks})"
        ),
        format!(
            "INSERT INTO linkledger.summary (target, options, collected_on, rank, backlinks, backlinks_nofollow, collected_at, raw_response_id)
             VALUES ('a.com', '{{\"include_subdomains\": true, \"rank_scale\": \"one_hundred\"}}', '2024-03-01', 55, 100, 3, now(), {summary})"
        ),
        format!(
            "INSERT INTO linkledger.link_breakdowns (source_table, target, date, dimension, key, count, collected_at, raw_response_id)
             VALUES ('history', 'a.com', '2024-01-01', 'tld', '', 4, now(), {h100}),
                    ('history', 'b.com', '2024-01-01', 'tld', 'com', 5, now(), {h1000}),
                    ('bulk_pages_summary', 'https://a.com/x', '2024-03-01', 'countries', 'US', 6, now(), {pages})"
        ),
    ];
    for sql in &fill {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let tables = [
        "history",
        "timeseries_summary",
        "timeseries_new_lost_summary",
        "bulk_ranks",
        "bulk_pages_summary",
        "bulk_backlinks",
        "summary",
        "link_breakdowns",
    ];
    let mut before = Vec::new();
    for t in tables {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM linkledger.{t}"
        )))
        .fetch_one(&pool)
        .await
        .unwrap();
        before.push(n);
    }

    // Forward to the newest version, as any command does at start.
    let store = db.store().await;
    for (t, n) in tables.iter().zip(before) {
        let after = count(&store, &format!("SELECT count(*) FROM linkledger.{t}")).await;
        assert_eq!(after, n, "{t}: every row carried over");
    }
    let history: Vec<HistoryRow> = sqlx::query_as(
        "SELECT target, month::text, options, rank_scale, rank, referring_domains
         FROM linkledger.history ORDER BY target, month",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let hundred = json!({"rank_scale": "one_hundred"});
    let thousand = json!({"rank_scale": "one_thousand"});
    assert_eq!(
        history,
        [
            (
                "a.com".into(),
                "2024-01-01".into(),
                hundred.clone(),
                "one_hundred".into(),
                Some(55),
                Some(10)
            ),
            (
                "a.com".into(),
                "2024-02-01".into(),
                hundred.clone(),
                "one_hundred".into(),
                Some(56),
                Some(11)
            ),
            (
                "b.com".into(),
                "2024-01-01".into(),
                thousand.clone(),
                "one_thousand".into(),
                Some(371),
                Some(50)
            ),
        ]
    );
    let carried = |sql: &'static str| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_scalar::<_, Value>(sql)
                .fetch_all(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        carried("SELECT DISTINCT jsonb_build_object('o', options, 's', rank_scale) FROM linkledger.timeseries_summary").await,
        [json!({"o": {"include_subdomains": false, "rank_scale": "one_thousand"}, "s": "one_thousand"})],
        "the tag is no option"
    );
    assert_eq!(
        carried("SELECT options FROM linkledger.timeseries_new_lost_summary").await,
        [json!({"include_subdomains": false})]
    );
    assert_eq!(
        carried("SELECT jsonb_build_object('o', options, 's', rank_scale, 'r', rank) FROM linkledger.bulk_ranks").await,
        [json!({"o": hundred, "s": "one_hundred", "r": 55})]
    );
    assert_eq!(
        carried("SELECT to_jsonb(p) - 'collected_at' - 'raw_response_id' FROM linkledger.bulk_pages_summary p").await[0]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| !v.is_null() || k.as_str() == "options")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<serde_json::Map<_, _>>(),
        json!({"target": "https://a.com/x", "collected_on": "2024-03-01", "rank": 20,
               "main_domain_rank": 55, "backlinks": 12, "rank_scale": "one_hundred",
               "options": {"include_subdomains": true, "rank_scale": "one_hundred"}})
            .as_object()
            .unwrap()
            .clone(),
        "the info columns are gone, the rest carried"
    );
    assert_eq!(
        carried("SELECT options FROM linkledger.bulk_backlinks").await,
        [json!({})]
    );
    assert_eq!(
        carried("SELECT jsonb_build_object('s', rank_scale, 'n', backlinks_nofollow) FROM linkledger.summary").await,
        [json!({"s": "one_hundred", "n": 3})]
    );
    // The breakdowns follow their parents' options.
    assert_eq!(
        carried("SELECT jsonb_build_object('t', target, 'o', options) FROM linkledger.link_breakdowns ORDER BY source_table, target").await,
        [
            json!({"t": "https://a.com/x", "o": {"include_subdomains": true, "rank_scale": "one_hundred"}}),
            json!({"t": "a.com", "o": hundred}),
            json!({"t": "b.com", "o": thousand}),
        ]
    );
    let dropped = count(
        &store,
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'linkledger'
         AND ((table_name = 'history' AND column_name = 'backlinks_nofollow')
           OR (table_name = 'bulk_pages_summary' AND column_name LIKE 'info\\_%'))",
    )
    .await;
    assert_eq!(dropped, 0);

    // Under the new keys, the same months on the other scale are a second row, not an
    // overwrite of the migrated one.
    let sb = default_sandbox().await;
    let job = job(
        "name = \"again\"\ntargets = [\"a.com\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@daily\"\nparams = { date_from = \"2024-01-01\", date_to = \"2024-02-29\" }\n",
    );
    collect(&store, &sb, &[&job]).await;
    let scales: Vec<(String, i64)> = sqlx::query_as(
        "SELECT rank_scale, count(*) FROM linkledger.history WHERE target = 'a.com' GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        scales,
        [
            ("one_hundred".to_string(), 2),
            ("one_thousand".to_string(), 2)
        ]
    );
    let old: Option<i64> = sqlx::query_scalar(
        "SELECT rank FROM linkledger.history WHERE target = 'a.com' AND month = '2024-01-01' AND rank_scale = 'one_hundred'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(old, Some(55), "the migrated row is untouched");
}
