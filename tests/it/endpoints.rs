//! Every endpoint collected and normalized; bulk batching; schema drift; replay.

use std::collections::BTreeMap;

use linkledger::sandbox::Sandbox;
use linkledger::store::{RunKind, Store};
use serde_json::Value;

use crate::common::*;

const DOMAINS: &[&str] = &["dataforseo.com", "quirk-nulls.example.org", "ahrefs.com"];
const PAGES: &[&str] = &[
    "https://dataforseo.com/apis/backlinks-api",
    "https://ahrefs.com/blog/",
    "https://www.semrush.com/kb/",
];

fn every_endpoint_job() -> String {
    let list = |ts: &[&str]| {
        ts.iter()
            .map(|t| format!("{t:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = format!("name = \"all\"\ntargets = [{}]\n", list(DOMAINS));
    let collect = |endpoint: &str, params: &str| {
        format!(
            "\n[[collect]]\nendpoint = \"{endpoint}\"\nschedule = \"@daily\"\nparams = {{ {params} }}\n"
        )
    };
    s += &collect("summary", "");
    s += &collect(
        "history",
        "date_from = \"2024-01-01\", date_to = \"2024-06-30\"",
    );
    s += &collect(
        "timeseries_summary",
        "date_from = \"-20d\", group_range = \"week\"",
    );
    s += &collect(
        "timeseries_new_lost_summary",
        "date_from = \"-10d\", group_range = \"day\"",
    );
    s += &collect("bulk_new_lost_backlinks", "date_from = \"-30d\"");
    s += &collect("bulk_new_lost_referring_domains", "date_from = \"-7d\"");
    s += &collect("bulk_ranks", "");
    s += &collect("bulk_backlinks", "");
    s += &collect("bulk_referring_domains", "");
    s += &collect("bulk_spam_score", "");
    s += &format!(
        "\n[[collect]]\nendpoint = \"bulk_pages_summary\"\nschedule = \"@daily\"\ntargets = [{}]\n",
        list(PAGES)
    );
    // The list endpoints, paged (backlinks: two pages of its listing).
    for (endpoint, max_rows) in [
        ("backlinks", 1500),
        ("referring_domains", 300),
        ("anchors", 300),
        ("domain_pages", 300),
        ("competitors", 300),
        ("domain_intersection", 300),
    ] {
        s += &format!(
            "\n[[collect]]\nendpoint = \"{endpoint}\"\nschedule = \"@daily\"\nmax_rows = {max_rows}\n"
        );
    }
    s
}

async fn collect_all(store: &Store, sb: &Sandbox) {
    let exec = executor(store, sb, 8);
    let job = job(&every_endpoint_job());
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(report.ok(), "{} {:?}", report.line(), report.jobs[0].errors);
}

/// Columns of `table` that hold API values (not keys or bookkeeping).
async fn value_columns(store: &Store, table: &str) -> Vec<String> {
    let cols: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_schema = 'linkledger' AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(store.pool())
    .await
    .unwrap();
    const NOT_VALUES: &[&str] = &[
        "target",
        "options",
        "rank_scale",
        "collected_on",
        "collected_at",
        "raw_response_id",
        "month",
        "date",
        "group_range",
        "date_from",
        "type",
    ];
    cols.into_iter()
        .filter(|c| !NOT_VALUES.contains(&c.as_str()))
        .collect()
}

fn normalize_value(v: &Value) -> Value {
    if let Some(s) = v.as_str() {
        for fmt in [
            "%Y-%m-%d %H:%M:%S %:z",
            "%Y-%m-%dT%H:%M:%S%:z",
            "%Y-%m-%dT%H:%M:%S%.f%:z",
        ] {
            if let Ok(t) = chrono::DateTime::parse_from_str(s, fmt) {
                return Value::from(t.timestamp());
            }
        }
    }
    v.clone()
}

/// The value the API served for `column` of an item (aliases and `info_*` applied).
fn served_value(item: &Value, column: &str) -> Value {
    if let Some(field) = column.strip_prefix("info_") {
        return item["info"][field].clone();
    }
    let v = &item[column];
    if v.is_null()
        && let Some(alias) = column
            .strip_suffix("_referring_domains")
            .map(|p| format!("{p}_reffering_domains"))
    {
        return item[alias.as_str()].clone();
    }
    v.clone()
}

async fn assert_row_matches(
    store: &Store,
    table: &str,
    filter: &str,
    binds: &[String],
    item: &Value,
) {
    let sql = format!("SELECT to_jsonb(t) FROM linkledger.{table} t WHERE {filter}");
    let mut q = sqlx::query_scalar::<_, Value>(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    let row = q
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{table} {binds:?}: no row ({e})"));
    for col in value_columns(store, table).await {
        assert_eq!(
            normalize_value(&row[&col]),
            normalize_value(&served_value(item, &col)),
            "{table} {binds:?}: column {col}"
        );
    }
}

async fn assert_breakdowns(store: &Store, source: &str, target: &str, date: &str, item: &Value) {
    let stored: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT dimension, key, count FROM linkledger.link_breakdowns
         WHERE source_table = $1 AND target = $2 AND date = $3::date ORDER BY 1, 2",
    )
    .bind(source)
    .bind(target)
    .bind(date)
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut expected = Vec::new();
    for dim in [
        "tld",
        "types",
        "attributes",
        "platform_types",
        "semantic_locations",
        "countries",
    ] {
        if let Some(map) = item[format!("referring_links_{dim}")].as_object() {
            for (k, v) in map {
                expected.push((dim.to_string(), k.clone(), v.as_i64()));
            }
        }
    }
    expected.sort();
    assert_eq!(stored, expected, "{source} {target} {date}: breakdowns");
}

#[tokio::test]
async fn for_each_endpoint_the_stored_rows_equal_what_the_sandbox_served() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    collect_all(&store, &sb).await;
    let collected_on = today().to_string();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for rec in sb.requests() {
        let Some(resp) = rec.response else { continue };
        let task = &resp["tasks"][0];
        assert_eq!(task["status_code"], 20000, "{}", rec.endpoint);
        let result = &task["result"][0];
        let ep = rec.endpoint.as_str();
        if ep
            .parse::<linkledger::api::Endpoint>()
            .is_ok_and(|e| e.is_list())
        {
            // A list page's items, one row each: held to what was served in
            // tests/it/list_tables.rs.
            continue;
        }
        match ep {
            "summary" => {
                let t = result["target"].as_str().unwrap().to_string();
                assert_row_matches(&store, ep, "target = $1", std::slice::from_ref(&t), result)
                    .await;
                assert_breakdowns(&store, ep, &t, &collected_on, result).await;
                *checked.entry(ep.into()).or_default() += 1;
            }
            "history" => {
                let t = result["target"].as_str().unwrap().to_string();
                for item in result["items"].as_array().unwrap() {
                    let month = format!("{}-01", &item["date"].as_str().unwrap()[..7]);
                    assert_row_matches(
                        &store,
                        ep,
                        "target = $1 AND month = $2::date",
                        &[t.clone(), month.clone()],
                        item,
                    )
                    .await;
                    assert_breakdowns(&store, ep, &t, &month, item).await;
                    *checked.entry(ep.into()).or_default() += 1;
                }
            }
            "timeseries_summary" | "timeseries_new_lost_summary" => {
                let t = result["target"].as_str().unwrap().to_string();
                let g = result["group_range"].as_str().unwrap().to_string();
                for item in result["items"].as_array().unwrap() {
                    let date = item["date"].as_str().unwrap()[..10].to_string();
                    assert_row_matches(
                        &store,
                        ep,
                        "target = $1 AND group_range = $2 AND date = $3::date",
                        &[t.clone(), g.clone(), date],
                        item,
                    )
                    .await;
                    *checked.entry(ep.into()).or_default() += 1;
                }
            }
            _ => {
                let key = if ep == "bulk_pages_summary" {
                    "url"
                } else {
                    "target"
                };
                for item in result["items"].as_array().unwrap() {
                    let t = item[key].as_str().unwrap().to_string();
                    assert_row_matches(
                        &store,
                        ep,
                        "target = $1 AND collected_on = $2::date",
                        &[t.clone(), collected_on.clone()],
                        item,
                    )
                    .await;
                    if ep == "bulk_pages_summary" {
                        assert_breakdowns(&store, ep, &t, &collected_on, item).await;
                    }
                    *checked.entry(ep.into()).or_default() += 1;
                }
            }
        }
    }
    assert_eq!(checked.len(), 11, "every endpoint was checked: {checked:?}");
    // quirk-nulls sent nulls: they are NULL, not 0.
    let nulls = count(&store, "SELECT count(*) FROM linkledger.summary WHERE target = 'quirk-nulls.example.org' AND (backlinks IS NULL OR rank IS NULL OR referring_domains IS NULL)").await;
    assert_eq!(nulls, 1);
    // Its map key with a null count is kept, the count NULL (summary and history).
    let null_counts = count(&store, "SELECT count(DISTINCT source_table) FROM linkledger.link_breakdowns WHERE target = 'quirk-nulls.example.org' AND key = '' AND dimension = 'types' AND count IS NULL").await;
    assert_eq!(null_counts, 2);
    // new/lost rows carry a real date_from.
    let expected_from = (today() - chrono::Duration::days(30)).to_string();
    let date_froms: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT date_from::text FROM linkledger.bulk_new_lost_backlinks",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(date_froms, vec![expected_from]);
}

#[tokio::test]
async fn a_bulk_collection_of_2500_targets_makes_3_calls_and_stores_each_under_its_own_target() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let targets: Vec<String> = (0..2500)
        .map(|i| format!("site{i:04}.example.net"))
        .collect();
    let job = job_for("bulk_ranks", &targets, "");
    let exec = executor(&store, &sb, 8);
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(report.ok(), "{}", report.line());
    assert_eq!(sb.stats().by_endpoint.get("bulk_ranks"), Some(&3));
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.bulk_ranks").await,
        2500
    );
    // Items come back sorted, not in request order: each rank is the one served for its target.
    let mut served = BTreeMap::new();
    for rec in sb.requests() {
        for item in rec.response.unwrap()["tasks"][0]["result"][0]["items"]
            .as_array()
            .unwrap()
        {
            served.insert(
                item["target"].as_str().unwrap().to_string(),
                item["rank"].as_i64(),
            );
        }
    }
    let stored: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT target, rank FROM linkledger.bulk_ranks")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(stored.len(), served.len());
    for (t, rank) in stored {
        assert_eq!(served.get(&t), Some(&rank), "{t}");
    }
}

async fn row_counts(store: &Store) -> Vec<(String, i64)> {
    store.table_counts().await.unwrap()
}

#[tokio::test]
async fn running_the_same_collections_twice_changes_no_row_count() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    collect_all(&store, &sb).await;
    let first = row_counts(&store).await;
    assert!(first.iter().all(|(_, n)| *n > 0), "{first:?}");
    collect_all(&store, &sb).await;
    assert_eq!(row_counts(&store).await, first);
}

async fn checksums(store: &Store) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (table, _) in store.table_counts().await.unwrap() {
        let sum: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT md5(string_agg(to_jsonb(t)::text, '|' ORDER BY to_jsonb(t)::text)) FROM linkledger.{table} t"
        )))
        .fetch_one(store.pool())
        .await
        .unwrap();
        out.push((table, sum.unwrap_or_default()));
    }
    out
}

#[tokio::test]
async fn replay_after_truncating_every_normalized_table_gives_back_identical_tables_without_a_request()
 {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    collect_all(&store, &sb).await;
    let before = checksums(&store).await;
    let requests_before = sb.stats().requests;
    for (table, _) in store.table_counts().await.unwrap() {
        sqlx::query(sqlx::AssertSqlSafe(format!("TRUNCATE linkledger.{table}")))
            .execute(store.pool())
            .await
            .unwrap();
    }
    assert!(row_counts(&store).await.iter().all(|(_, n)| *n == 0));
    let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
    let wd = Workdir::new(&[]);
    let out = linkledger(wd.path(), &env, &["replay"]).await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(checksums(&store).await, before);
    assert_eq!(
        sb.stats().requests,
        requests_before,
        "replay made no API call"
    );
}

#[tokio::test]
async fn unknown_fields_load_a_wrong_typed_field_sets_aside_only_its_item_and_the_misspelling_is_read()
 {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let exec = executor(&store, &sb, 4);
    let targets = [
        "quirk-unknown-fields.example.com",
        "quirk-wrong-type.example.com",
        "quirk-misspelled.example.com",
        "plain.example.com",
    ]
    .map(String::from);
    let summary = job_for("summary", &targets, "");
    let history = job_for(
        "history",
        &targets[2..3],
        "date_from = \"2024-01-01\", date_to = \"2024-12-31\"",
    );
    let report = run_once(&exec, &[&summary, &history], RunKind::Once, today())
        .await
        .unwrap();
    // The wrong-typed summary is its answer's one item: set aside, the call is ok.
    assert!(report.ok(), "{}", report.line());
    assert_eq!(report.set_aside(), 1, "{:?}", report.jobs);
    let outcome: String = sqlx::query_scalar(
        "SELECT outcome FROM linkledger.api_calls WHERE 'quirk-wrong-type.example.com' = ANY(targets)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(outcome, "ok");
    let (path, reason): (String, String) =
        sqlx::query_as("SELECT path, reason FROM linkledger.rejected_items")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(path, "tasks[0].result[0]");
    assert_eq!(reason, "backlinks: expected integer, found string");
    // Its body is kept for a later replay; the others loaded.
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.raw_responses").await,
        5
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.summary").await,
        3
    );
    assert_eq!(count(&store, "SELECT count(*) FROM linkledger.summary WHERE target = 'quirk-unknown-fields.example.com' AND backlinks IS NOT NULL").await, 1);
    let misspelled = count(&store, "SELECT count(*) FROM linkledger.history WHERE target = 'quirk-misspelled.example.com' AND new_referring_domains IS NOT NULL AND lost_referring_domains IS NOT NULL").await;
    assert_eq!(misspelled, 12);
}

#[tokio::test]
async fn each_date_rule_is_rejected_by_jobs_check_with_its_message() {
    let cases = [
        (
            "history",
            "example.com",
            "date_from = \"2018-12-31\"",
            "2019-01-01",
        ),
        (
            "timeseries_summary",
            "example.com",
            "date_from = \"2019-01-29\"",
            "2019-01-30",
        ),
        (
            "timeseries_new_lost_summary",
            "example.com",
            "date_from = \"2019-01-01\"",
            "2019-01-30",
        ),
        (
            "bulk_new_lost_backlinks",
            "example.com",
            "date_from = \"-13m\"",
            "year",
        ),
        (
            "bulk_new_lost_referring_domains",
            "example.com",
            "date_from = \"-2y\"",
            "year",
        ),
        (
            "history",
            "example.com",
            "date_from = \"2024-05-01\", date_to = \"2024-04-01\"",
            "date_to",
        ),
        (
            "timeseries_summary",
            "example.com",
            "date_from = \"-10d\", date_to = \"-20d\"",
            "date_to",
        ),
        ("history", "https://example.com/page", "", "bare domain"),
        (
            "timeseries_summary",
            "https://example.com/page",
            "",
            "bare domain",
        ),
    ];
    for (endpoint, target, params, expected) in cases {
        let body = format!(
            "name = \"d\"\ntargets = [{target:?}]\n[[collect]]\nendpoint = \"{endpoint}\"\nschedule = \"@daily\"\nparams = {{ {params} }}\n"
        );
        let wd = Workdir::new(&[("d.toml", &body)]);
        let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{endpoint} {params}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(err.contains("jobs/d.toml: "), "{err}");
        assert!(
            err.contains(expected),
            "{endpoint} {params}: expected `{expected}` in {err}"
        );
    }
}
