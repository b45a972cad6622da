//! Summary collection end to end, through the binary.

use serde_json::Value;

use crate::common::*;

const SUMMARY_METRICS: &[&str] = &[
    "rank",
    "backlinks",
    "backlinks_spam_score",
    "crawled_pages",
    "internal_links_count",
    "external_links_count",
    "broken_backlinks",
    "broken_pages",
    "referring_domains",
    "referring_domains_nofollow",
    "referring_main_domains",
    "referring_main_domains_nofollow",
    "referring_ips",
    "referring_subnets",
    "referring_pages",
    "referring_pages_nofollow",
];
const INFO_FIELDS: &[&str] = &[
    "server",
    "cms",
    "platform_type",
    "ip_address",
    "country",
    "is_ip",
    "target_spam_score",
];
const MAPS: &[&str] = &[
    "tld",
    "types",
    "attributes",
    "platform_types",
    "semantic_locations",
    "countries",
];

fn summary_job(targets: &[&str]) -> String {
    let list = targets
        .iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "name = \"brands\"\ntargets = [{list}]\n\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 6 * * *\"\nparams = {{ include_subdomains = true, internal_list_limit = 20 }}\n"
    )
}

fn as_instant(v: &Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let s = v.as_str()?;
    chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S %:z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .ok()
}

/// Asserts the stored summary row and breakdowns of `target` equal `served`.
async fn assert_summary_matches(store: &linkledger::store::Store, served: &Value) {
    let target = served["target"].as_str().expect("served target");
    let row: Value =
        sqlx::query_scalar("SELECT to_jsonb(s) FROM linkledger.summary s WHERE target = $1")
            .bind(target)
            .fetch_one(store.pool())
            .await
            .unwrap_or_else(|e| panic!("no summary row for {target}: {e}"));
    for field in SUMMARY_METRICS {
        assert_eq!(row[field], served[field], "{target}: {field}");
    }
    for field in ["first_seen", "lost_date"] {
        assert_eq!(
            as_instant(&row[field]),
            as_instant(&served[field]),
            "{target}: {field}"
        );
    }
    for field in INFO_FIELDS {
        assert_eq!(
            row[format!("info_{field}")],
            served["info"][field],
            "{target}: info.{field}"
        );
    }
    let stored: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT dimension, key, count FROM linkledger.link_breakdowns
         WHERE source_table = 'summary' AND target = $1 ORDER BY 1, 2",
    )
    .bind(target)
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut expected = Vec::new();
    for dim in MAPS {
        if let Some(map) = served[format!("referring_links_{dim}")].as_object() {
            for (k, v) in map {
                expected.push((dim.to_string(), k.clone(), v.as_i64().expect("count")));
            }
        }
    }
    expected.sort();
    assert!(
        !expected.is_empty(),
        "{target}: the sandbox served no breakdowns"
    );
    assert_eq!(stored, expected, "{target}: breakdowns");
}

fn served_summaries(sb: &linkledger::sandbox::Sandbox) -> Vec<Value> {
    sb.requests()
        .into_iter()
        .filter(|r| r.endpoint == "summary")
        .filter_map(|r| r.response)
        .filter(|resp| resp["tasks"][0]["status_code"] == 20000)
        .map(|resp| resp["tasks"][0]["result"][0].clone())
        .collect()
}

#[tokio::test]
async fn summary_collection_stores_exactly_the_values_the_sandbox_served() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let targets = [
        "dataforseo.com",
        "https://www.ahrefs.com/",
        "semrush.com",
        "moz.com",
    ];
    let wd = Workdir::new(&[("brands.toml", &summary_job(&targets))]);
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let line = stdout(&out);
    assert!(
        line.contains("4 calls") || line.contains("5 calls"),
        "{line}"
    );

    let store = db.store().await;
    let served = served_summaries(&sb);
    assert_eq!(served.len(), 4);
    for s in &served {
        assert_summary_matches(&store, s).await;
    }
    // The empty-string key the API uses is kept.
    assert!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.link_breakdowns WHERE key = ''"
        )
        .await
            > 0
    );
    // Raw first: every successful body is in raw_responses, and every row points at one.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.raw_responses WHERE endpoint = 'summary'"
        )
        .await,
        4
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.summary s LEFT JOIN linkledger.raw_responses r ON r.id = s.raw_response_id WHERE r.id IS NULL").await,
        0
    );
    // www. and the scheme are stripped before the call.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.summary WHERE target = 'ahrefs.com'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_second_run_the_same_day_replaces_rows_and_the_ledger_gains_the_new_calls() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[(
        "brands.toml",
        &summary_job(&["a-brand.com", "b-brand.com", "c-brand.com"]),
    )]);
    let env = env_for(&db, &sb);
    let first = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let store = db.store().await;
    let tables = "SELECT (SELECT count(*) FROM linkledger.summary) * 1000000 + (SELECT count(*) FROM linkledger.link_breakdowns)";
    let rows_after_first = count(&store, tables).await;
    let calls_after_first = count(
        &store,
        "SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'summary'",
    )
    .await;
    assert_eq!(calls_after_first, 3);

    let second = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(count(&store, tables).await, rows_after_first);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'summary'"
        )
        .await,
        6
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.runs WHERE status = 'succeeded'"
        )
        .await,
        2
    );
    assert_eq!(ledger_total(&store).await, sb.stats().charged_usd.decimal());
}

#[tokio::test]
async fn a_summary_collected_on_another_day_adds_a_row() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let exec = executor(&store, &sb, 4);
    let job = job_for("summary", &["dated.com".to_string()], "");
    let jobs = [&job];
    let r = run_once(&exec, &jobs, linkledger::store::RunKind::Once, today())
        .await
        .unwrap();
    assert!(r.ok(), "{}", r.line());
    // Pretend the first collection happened yesterday.
    sqlx::query("UPDATE linkledger.summary SET collected_on = collected_on - 1")
        .execute(store.pool())
        .await
        .unwrap();
    let r = run_once(&exec, &jobs, linkledger::store::RunKind::Once, today())
        .await
        .unwrap();
    assert!(r.ok(), "{}", r.line());
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.summary WHERE target = 'dated.com'"
        )
        .await,
        2
    );
}
