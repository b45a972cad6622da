//! The warehouse as a dbt project and BI tools meet it: `schema-docs --format dbt`
//! writes a sources.yml of every table, view and column with tests of their grain and
//! closed sets, which `dbt test` and `dbt source freshness` pass as the reader role on
//! the demo's data; every view names its grain; freshness reads an index; "no job" is
//! one value; `options` has a text key beside it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;
use sqlx::{Connection, PgConnection, Row};

use crate::common::*;
use crate::reader::Role;

/// A database the demo filled, two real calls beside the sandbox's (one without a job,
/// as the credentials check books it: $0.07 yesterday, $0.07021 today), and a reader
/// role granted on it.
pub struct BiScene {
    // Dropped in this order: the role before its database.
    pub role: Role,
    pub db: TestDb,
    pub wd: Workdir,
}

pub async fn bi_scene(prefix: &str) -> BiScene {
    let db = TestDb::demo().await;
    let wd = Workdir::new(&[]);
    let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO linkledger.api_calls (endpoint, request, attempt, started_at, outcome, cost_usd, sandbox, job)
         VALUES ('user_data', '{}', 1, now() - interval '1 day', 'ok', 0.07, false, NULL),
                ('summary', '{}', 1, now(), 'ok', 0.07021, false, 'competitors')",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    admin.close().await.unwrap();
    let role = Role::new(&db, prefix);
    role.create_login().await;
    let out = linkledger(wd.path(), &env, &["grant-reader", &role.name]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    BiScene { role, db, wd }
}

impl BiScene {
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("DATABASE_URL".to_string(), self.db.url.clone())]
    }

    pub async fn admin(&self) -> PgConnection {
        PgConnection::connect(&self.db.url).await.unwrap()
    }

    async fn sources_yml(&self) -> String {
        let out = linkledger(
            self.wd.path(),
            &self.env(),
            &["schema-docs", "--format", "dbt"],
        )
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    }
}

/// The Python environment `.ci/python-env` makes (dbt, pandas, pinned), made on first
/// use; `None` when this machine has no python3, the reason written to the test's
/// stderr uncaptured, so that a skip shows.
pub fn python_env() -> Option<PathBuf> {
    static ENV: OnceLock<Option<PathBuf>> = OnceLock::new();
    ENV.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/python-env");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .output()
            .expect("running bash .ci/python-env");
        match out.status.code() {
            Some(0) => Some(PathBuf::from(
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
            )),
            Some(3) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED (no python3 here, so no dbt or pandas): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            _ => panic!(
                ".ci/python-env failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    })
    .clone()
}

/// Every table and view of the schema with its columns in order: name → (is a view, columns).
async fn catalog(conn: &mut PgConnection) -> BTreeMap<String, (bool, Vec<String>)> {
    let rows = sqlx::query(
        "SELECT c.relname::text AS rel, c.relkind = 'v' AS view,
                array_agg(a.attname::text ORDER BY a.attnum) AS columns
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE n.nspname = 'linkledger' AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
         GROUP BY 1, 2",
    )
    .fetch_all(conn)
    .await
    .unwrap();
    rows.iter()
        .map(|r| (r.get("rel"), (r.get("view"), r.get("columns"))))
        .collect()
}

/// The columns of a `row(a, "b")::text` test expression.
fn row_columns(expr: &str) -> Vec<String> {
    let inner = expr
        .strip_prefix("row(")
        .and_then(|s| s.strip_suffix(")::text"))
        .unwrap_or_else(|| panic!("not a row(...)::text expression: {expr}"));
    inner
        .split(", ")
        .map(|c| c.trim_matches('"').to_string())
        .collect()
}

#[tokio::test]
async fn schema_docs_as_dbt_lists_every_table_view_and_column_and_tests_only_columns_that_exist() {
    let sc = bi_scene("dbtyml").await;
    let text = sc.sources_yml().await;
    let yaml: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut admin = sc.admin().await;
    let catalog = catalog(&mut admin).await;

    assert_eq!(yaml["version"], 2);
    let source = &yaml["sources"][0];
    assert_eq!(source["name"], "linkledger");
    assert_eq!(source["schema"], "linkledger");
    let tables: BTreeMap<String, &Value> = source["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t))
        .collect();
    assert_eq!(
        tables.keys().collect::<BTreeSet<_>>(),
        catalog.keys().collect::<BTreeSet<_>>(),
        "every table and view, partitions left out"
    );
    let mut tests = 0;
    for (name, t) in &tables {
        let (view, columns) = &catalog[name];
        assert!(
            !t["description"].as_str().unwrap().is_empty(),
            "{name} has its comment"
        );
        let listed: Vec<&str> = t["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(&listed, columns, "{name}: every column, in order");
        for c in t["columns"].as_array().unwrap() {
            assert!(
                !c["description"].as_str().unwrap().is_empty(),
                "{name}.{} has its comment",
                c["name"]
            );
            for test in c["data_tests"].as_array().into_iter().flatten() {
                tests += 1;
                if let Some(rel) = test.get("relationships") {
                    let to = rel["arguments"]["to"].as_str().unwrap();
                    let target = to
                        .strip_prefix("source('linkledger', '")
                        .and_then(|s| s.strip_suffix("')"))
                        .unwrap();
                    let field = rel["arguments"]["field"].as_str().unwrap();
                    assert!(
                        catalog[target].1.iter().any(|c| c == field),
                        "{name}.{}: {to}.{field} exists",
                        c["name"]
                    );
                }
            }
        }
        let grain: Vec<&str> = t["config"]["meta"]["grain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap())
            .collect();
        for g in &grain {
            assert!(columns.iter().any(|c| c == g), "{name}: grain column {g}");
        }
        if *view {
            assert!(!grain.is_empty(), "the view {name} names its grain");
        }
        for test in t["data_tests"].as_array().into_iter().flatten() {
            tests += 1;
            for c in row_columns(test["unique"]["column_name"].as_str().unwrap()) {
                assert!(columns.contains(&c), "{name}: a test of {c}, no column");
            }
        }
        let loaded_at = t["config"]["loaded_at_field"].as_str();
        if !view && columns.iter().any(|c| c == "collected_at") {
            assert_eq!(loaded_at, Some("collected_at"), "{name}");
            assert!(t["config"]["freshness"]["warn_after"].is_object(), "{name}");
        }
        if let Some(column) = loaded_at {
            assert!(columns.iter().any(|c| c == column), "{name}: {column}");
        }
    }
    assert!(tests > 100, "{tests} tests");

    // A closed set is its CHECK's values; a compound key one test of its row.
    let runs = tables["runs"];
    let status = runs["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "status")
        .unwrap();
    assert_eq!(
        status["data_tests"][0]["accepted_values"]["arguments"]["values"],
        serde_json::json!([
            "running",
            "succeeded",
            "failed",
            "halted",
            "interrupted",
            "cancelled"
        ])
    );
    assert_eq!(
        tables["summary"]["data_tests"][0]["unique"]["column_name"],
        "row(target, options, collected_on)::text"
    );
    assert_eq!(
        tables["spend_monthly"]["config"]["meta"]["grain"],
        serde_json::json!(["month", "job"])
    );
    admin.close().await.unwrap();
}

#[tokio::test]
async fn every_view_names_its_grain_and_no_two_of_its_rows_share_one_on_the_demo_data() {
    let sc = bi_scene("grain").await;
    let mut admin = sc.admin().await;
    let views: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT c.relname::text, obj_description(c.oid, 'pg_class')
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'linkledger' AND c.relkind = 'v' ORDER BY 1",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(views.len() >= 16, "{views:?}");
    let mut rows_checked = 0;
    for (view, comment) in views {
        let comment = comment.unwrap_or_default();
        let line = comment
            .trim_end()
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("grain:"))
            .unwrap_or_else(|| {
                panic!("the comment of {view} ends without a `grain: ...` line: {comment}")
            });
        let grain: Vec<(String, bool)> = line
            .split(',')
            .map(|c| {
                let c = c.trim();
                match c.strip_suffix('?') {
                    Some(n) => (n.to_string(), true),
                    None => (c.to_string(), false),
                }
            })
            .collect();
        let quoted: Vec<String> = grain.iter().map(|(c, _)| format!("\"{c}\"")).collect();
        let not_null: Vec<String> = grain
            .iter()
            .filter(|(_, nullable)| !nullable)
            .map(|(c, _)| format!("\"{c}\" IS NULL"))
            .collect();
        let sql = format!(
            "SELECT count(*), count(DISTINCT row({})::text), count(*) FILTER (WHERE {})
             FROM linkledger.{view}",
            quoted.join(", "),
            if not_null.is_empty() {
                "false".to_string()
            } else {
                not_null.join(" OR ")
            }
        );
        let (rows, distinct, nulls): (i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("{view}: grain {line}: {e}"));
        assert_eq!(rows, distinct, "{view}: two rows share the grain {line}");
        assert_eq!(nulls, 0, "{view}: a grain column NULL ({line})");
        rows_checked += rows;
    }
    assert!(rows_checked > 100, "{rows_checked}");
    admin.close().await.unwrap();
}

#[tokio::test]
async fn a_real_call_without_a_job_is_the_same_none_in_every_spend_view() {
    let sc = bi_scene("nojob").await;
    let mut admin = sc.admin().await;
    for view in ["spend_monthly", "spend_daily", "spend_by_job_month"] {
        let jobs: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT job FROM linkledger.{view} ORDER BY job"
        )))
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(
            jobs.contains(&Some("(none)".to_string())) && !jobs.contains(&None),
            "{view}: {jobs:?}"
        );
    }
    let monthly: Vec<(String, rust_decimal::Decimal)> = sqlx::query_as(
        "SELECT m.job, m.cost_usd FROM linkledger.spend_monthly m
         JOIN linkledger.spend_by_job_month j USING (month, job)
         WHERE m.cost_usd = j.cost_usd ORDER BY job",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        monthly,
        vec![
            ("(none)".to_string(), "0.07".parse().unwrap()),
            ("competitors".to_string(), "0.07021".parse().unwrap())
        ],
        "one row per month and job, the same in both views"
    );
    admin.close().await.unwrap();
}

#[tokio::test]
async fn the_newest_collected_at_of_every_table_that_has_one_is_read_from_an_index() {
    let db = TestDb::new().await;
    let _store = db.store().await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'collected_at'
         WHERE n.nspname = 'linkledger' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
         ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(tables.len() >= 13, "{tables:?}");
    // No plan without a sequential scan when there is no index to read instead.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    for t in &tables {
        let plan: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (FORMAT JSON) SELECT max(collected_at) FROM linkledger.{t}"
        )))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let plan = plan.to_string();
        assert!(
            !plan.contains("Seq Scan") && plan.contains("Index"),
            "{t}: max(collected_at) scans the table: {plan}"
        );
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn views_that_carry_options_carry_its_canonical_text_as_options_key() {
    let sc = bi_scene("optkey").await;
    let mut admin = sc.admin().await;
    let views: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT c.relname::text,
                (SELECT format_type(k.atttypid, k.atttypmod) FROM pg_attribute k
                 WHERE k.attrelid = c.oid AND k.attname = 'options_key' AND NOT k.attisdropped)
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'options' AND NOT a.attisdropped
         WHERE n.nspname = 'linkledger' AND c.relkind = 'v'
         ORDER BY 1",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(views.len() >= 3, "{views:?}");
    for (view, key_type) in &views {
        assert_eq!(key_type.as_deref(), Some("text"), "{view}.options_key");
        let (rows, same): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*), count(*) FILTER (WHERE options_key = options::text
                                                AND options_key::jsonb = options)
             FROM linkledger.{view}"
        )))
        .fetch_one(&mut admin)
        .await
        .unwrap();
        assert_eq!(rows, same, "{view}");
    }
    // Option sets in the demo: two of summary (the pages job asks with other options).
    let keys: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT options_key) FROM linkledger.latest_summary_by_options",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(keys, 2);
    // The same set written in another order is the same key.
    let same: bool = sqlx::query_scalar(
        "SELECT '{\"b\": 1, \"a\": [true, null]}'::jsonb::text = '{ \"a\":[true,null],\"b\":1 }'::jsonb::text",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(same);
    admin.close().await.unwrap();
}

/// A dbt project of the sources.yml alone, connecting as `role`.
fn dbt_project(dir: &Path, sc: &BiScene, sources: &str) {
    let pg: std::collections::HashMap<String, String> = sc.db.libpq_env().into_iter().collect();
    std::fs::create_dir_all(dir.join("models/linkledger")).unwrap();
    std::fs::write(
        dir.join("dbt_project.yml"),
        "name: linkledger_check\nversion: \"1.0\"\nconfig-version: 2\nprofile: linkledger\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("profiles.yml"),
        format!(
            "linkledger:\n  target: reader\n  outputs:\n    reader:\n      type: postgres\n      host: \"{}\"\n      port: {}\n      user: \"{}\"\n      password: \"\"\n      dbname: \"{}\"\n      schema: dbt_unused\n      threads: 2\n",
            // A socket directory (the quick start's throwaway cluster) or a host.
            pg["PGHOST"],
            pg["PGPORT"],
            sc.role.name,
            sc.db.name
        ),
    )
    .unwrap();
    std::fs::write(dir.join("models/linkledger/sources.yml"), sources).unwrap();
}

async fn dbt(python: &Path, project: &Path, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(python.join("bin/dbt"))
        .args(args)
        .args(["--profiles-dir", ".", "--project-dir", "."])
        .current_dir(project)
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("DBT_VERSION_CHECK", "false")
        .env("DBT_USE_COLORS", "false")
        .env_remove("DATABASE_URL")
        .output()
        .await
        .expect("running dbt")
}

#[tokio::test]
async fn dbt_test_and_source_freshness_pass_as_the_reader_on_the_demo_data() {
    let Some(python) = python_env() else {
        return;
    };
    let sc = bi_scene("dbtrun").await;
    let project = tempfile::tempdir().unwrap();
    dbt_project(project.path(), &sc, &sc.sources_yml().await);

    let out = dbt(&python, project.path(), &["test"]).await;
    let log = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "dbt test failed:\n{log}");
    assert!(
        !log.contains("Deprecat"),
        "the sources.yml uses no deprecated property:\n{log}"
    );
    let results: Value = serde_json::from_slice(
        &std::fs::read(project.path().join("target/run_results.json")).unwrap(),
    )
    .unwrap();
    let results = results["results"].as_array().unwrap();
    assert!(results.len() > 100, "{}", results.len());
    let failed: Vec<&Value> = results.iter().filter(|r| r["status"] != "pass").collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let ids: Vec<&str> = results
        .iter()
        .map(|r| r["unique_id"].as_str().unwrap())
        .collect();
    for expected in [
        "linkledger_spend_monthly_unique_month_job",
        "linkledger_summary_unique_target_options_collected_on",
        "accepted_values_linkledger_runs_status",
        "not_null_linkledger_spend_monthly_job",
        "unique_linkledger_latest_summary_target",
    ] {
        assert!(
            ids.iter().any(|id| id.contains(expected)),
            "{expected} ran: {ids:?}"
        );
    }

    let out = dbt(&python, project.path(), &["source", "freshness"]).await;
    let log = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "dbt source freshness failed:\n{log}");
    let sources: Value =
        serde_json::from_slice(&std::fs::read(project.path().join("target/sources.json")).unwrap())
            .unwrap();
    let status: BTreeMap<String, String> = sources["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["unique_id"]
                    .as_str()
                    .unwrap()
                    .rsplit('.')
                    .next()
                    .unwrap()
                    .to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for fresh in [
        "summary",
        "history",
        "timeseries_summary",
        "bulk_ranks",
        "link_breakdowns",
        "api_calls",
    ] {
        assert_eq!(
            status.get(fresh).map(String::as_str),
            Some("pass"),
            "{fresh}: {status:?}"
        );
    }
    assert_eq!(
        status.get("rejected_items").map(String::as_str),
        Some("warn"),
        "an empty table has no fresh row: {status:?}"
    );
    assert!(
        !status.contains_key("runs") && !status.contains_key("latest_summary"),
        "only tables with a load time: {status:?}"
    );
}
