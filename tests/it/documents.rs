//! The warehouse held to the API's own documents, not only to the project's sandbox:
//! the documented example of the summary endpoint goes through the real pipeline over
//! HTTP and is stored value for value; every column of every warehouse table is a field
//! its endpoint documents (and every documented field a column); the sandbox serves
//! exactly the documented fields. The documents are fixtures in
//! `tests/fixtures/reference/`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use linkledger::api::Endpoint;
use linkledger::sandbox::SandboxOptions;
use linkledger::store::RunKind;
use linkledger::warehouse::normalize::{BREAKDOWN_DIMENSIONS, TABLES};
use serde_json::{Value, json};

use crate::common::*;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reference")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One documented field: its name, JSON type and notes.
#[derive(Clone, Debug)]
struct Field {
    name: String,
    ty: String,
    notes: String,
}

/// The documented fields of one endpoint, by the kind of their class.
#[derive(Debug, Default)]
struct EndpointDoc {
    request: Vec<Field>,
    result: Vec<Field>,
    item: Vec<Field>,
    info: Vec<Field>,
}

/// `api-fields.md`, read: per endpoint, its request, result, item and `info` fields.
fn api_fields() -> BTreeMap<String, EndpointDoc> {
    let text = fixture("api-fields.md");
    let mut docs: BTreeMap<String, EndpointDoc> = BTreeMap::new();
    let (mut endpoint, mut class) = (None::<String>, String::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("### POST /v3/backlinks/") {
            let name = rest.strip_suffix("/live").expect("a live endpoint");
            endpoint = Some(name.to_string());
            docs.entry(name.to_string()).or_default();
        } else if let Some(rest) = line.strip_prefix("#### `") {
            class = rest.split('`').next().unwrap().to_string();
        } else if let (Some(e), Some(rest)) = (&endpoint, line.strip_prefix("| `")) {
            let cells: Vec<&str> = rest.splitn(3, " | ").collect();
            let field = Field {
                name: cells[0].trim_end_matches('`').to_string(),
                ty: cells[1].trim().to_string(),
                notes: cells.get(2).copied().unwrap_or("").to_string(),
            };
            let doc = docs.get_mut(e).unwrap();
            let list = if class.ends_with("RequestInfo") {
                &mut doc.request
            } else if class.ends_with("ResultInfo") {
                &mut doc.result
            } else if class.ends_with("LiveItem") {
                &mut doc.item
            } else if class == "TargetInfo" {
                &mut doc.info
            } else {
                panic!("api-fields.md: unknown class {class}");
            };
            list.push(field);
        }
    }
    docs
}

/// Fields an endpoint's own page documents beyond `api-fields.md` (the generated
/// client lacks them): summary's `backlinks_nofollow`, in the example and the field
/// list of `seed-summary-endpoint.txt`.
fn documented_elsewhere(endpoint: Endpoint) -> Vec<Field> {
    match endpoint {
        Endpoint::Summary => vec![Field {
            name: "backlinks_nofollow".into(),
            ty: "integer".into(),
            notes: "number of nofollow backlinks pointing to the target".into(),
        }],
        _ => Vec::new(),
    }
}

/// The documented example response of the summary endpoint.
fn summary_example() -> Value {
    let text = fixture("seed-summary-endpoint.txt");
    let at = text
        .find("The above command returns JSON structured like this:")
        .expect("the example's heading");
    let start = at + text[at..].find('{').expect("the example's JSON");
    serde_json::Deserializer::from_str(&text[start..])
        .into_iter::<Value>()
        .next()
        .expect("one JSON value")
        .expect("the example is JSON")
}

/// The SQL type a documented field is stored as, as information_schema names it.
fn sql_type(f: &Field) -> &'static str {
    match f.ty.as_str() {
        "integer" => "bigint",
        "boolean" => "boolean",
        "string" if f.notes.contains("date and time") => "timestamp with time zone",
        "string" => "text",
        "array<string>" => "_text",
        other => panic!("{}: no SQL type for {other}", f.name),
    }
}

/// Columns of `table` with their types.
async fn columns(pool: &sqlx::PgPool, table: &str) -> BTreeMap<String, String> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, CASE WHEN data_type = 'ARRAY' THEN udt_name::text ELSE data_type::text END
         FROM information_schema.columns WHERE table_schema = 'linkledger' AND table_name = $1",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().collect()
}

/// Columns that are no API field: they come from the request (options, rank_scale,
/// date_from) or say when and from which answer a row was loaded.
const BOOKKEEPING: &[&str] = &[
    "options",
    "rank_scale",
    "date_from",
    "collected_on",
    "collected_at",
    "raw_response_id",
];

/// Every way the warehouse tables of `pool` differ from the documented fields of their
/// endpoints, in words; none when they agree.
async fn undocumented_columns(pool: &sqlx::PgPool) -> Vec<String> {
    let docs = api_fields();
    assert_eq!(docs.len(), 11, "{:?}", docs.keys());
    let mut problems = Vec::new();
    // The list endpoints' tables are held to their own field list in `list_tables`.
    for spec in TABLES.iter().filter(|t| !t.endpoint.is_list()) {
        let endpoint = spec.endpoint;
        let doc = &docs[endpoint.name()];
        // A summary is one record per result; the others are lists of items.
        let record = if endpoint == Endpoint::Summary {
            &doc.result
        } else {
            &doc.item
        };
        assert!(!record.is_empty(), "{endpoint}: no documented fields");
        let mut expected: BTreeMap<String, &str> = BTreeMap::new();
        let mut maps = BTreeSet::new();
        // Items of one target's result (history, timeseries) carry the result's target
        // and group_range; the other result fields describe the request's range.
        if endpoint != Endpoint::Summary {
            for f in doc.result.iter() {
                if matches!(f.name.as_str(), "target" | "group_range") {
                    expected.insert(f.name.clone(), "text");
                }
            }
        }
        for f in record.iter().chain(&documented_elsewhere(endpoint)) {
            match (f.name.as_str(), f.ty.as_str()) {
                // The element's type: one constant per endpoint, which the table is.
                ("type", _) => {}
                // Bulk items name their target; pages summary items theirs as url.
                ("target" | "url", _) => {
                    expected.insert("target".into(), "text");
                }
                // The item's date is the row's period: history's month, else the date.
                ("date", _) => {
                    let col = if endpoint == Endpoint::History {
                        "month"
                    } else {
                        "date"
                    };
                    expected.insert(col.into(), "date");
                }
                (_, "object:TargetInfo") => {
                    for g in &doc.info {
                        expected.insert(format!("info_{}", g.name), sql_type(g));
                    }
                }
                (name, ty) if ty.starts_with("object/map") => {
                    maps.insert(
                        name.strip_prefix("referring_links_")
                            .expect("maps are referring_links_*")
                            .to_string(),
                    );
                }
                (name, _) => {
                    expected.insert(name.into(), sql_type(f));
                }
            }
        }
        let actual = columns(pool, spec.name).await;
        let table = spec.name;
        for (col, ty) in &expected {
            match actual.get(col) {
                None => problems.push(format!("{table}: the documented field {col} has no column")),
                Some(t) if t != ty => {
                    problems.push(format!("{table}.{col} is {t}, documented as {ty}"))
                }
                Some(_) => {}
            }
        }
        for col in actual.keys() {
            if !expected.contains_key(col) && !BOOKKEEPING.contains(&col.as_str()) {
                problems.push(format!(
                    "{table}.{col} is no documented field of {endpoint}"
                ));
            }
        }
        // Wherever a rank is stored, its scale is stored beside it.
        if actual.contains_key("rank") && !actual.contains_key("rank_scale") {
            problems.push(format!("{table}: rank without rank_scale"));
        }
        if actual.contains_key("rank_scale") && !expected.contains_key("rank") {
            problems.push(format!("{table}: rank_scale without rank"));
        }
        // The documented maps go to link_breakdowns, one dimension each.
        let dims: BTreeSet<String> = BREAKDOWN_DIMENSIONS.iter().map(|d| d.to_string()).collect();
        let kept = if spec.breakdowns {
            dims
        } else {
            BTreeSet::new()
        };
        if maps != kept {
            problems.push(format!(
                "{table}: documented maps {maps:?}, breakdowns kept: {}",
                spec.breakdowns
            ));
        }
    }
    problems
}

#[tokio::test]
async fn every_column_of_every_warehouse_table_is_a_documented_field_of_its_endpoint() {
    let db = TestDb::new().await;
    let store = db.store().await;
    assert_eq!(
        undocumented_columns(store.pool()).await,
        Vec::<String>::new()
    );
    // The addition is the summary page's own: its example sends the field.
    assert!(summary_example()["tasks"][0]["result"][0]["backlinks_nofollow"].is_i64());
}

#[tokio::test]
async fn the_column_check_finds_the_invented_and_missing_columns_of_the_schema_before_version_8() {
    let db = TestDb::new().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    crate::warehouse_keys::migrate_to(&pool, 7).await;
    let problems = undocumented_columns(&pool).await;
    for expected in [
        "history.backlinks_nofollow is no documented field of history",
        "bulk_pages_summary.info_server is no documented field of bulk_pages_summary",
        "bulk_pages_summary.info_target_spam_score is no documented field of bulk_pages_summary",
        "history: rank without rank_scale",
        "bulk_ranks: rank without rank_scale",
    ] {
        assert!(
            problems.iter().any(|p| p == expected),
            "{expected:?} not found in {problems:#?}"
        );
    }
    // Summary's backlinks_nofollow was there all along: documented, so no problem.
    assert!(
        !problems.iter().any(|p| p.starts_with("summary.backlinks")),
        "{problems:#?}"
    );
}

#[tokio::test]
async fn the_history_page_of_a_gateway_documents_the_same_item_fields_as_the_field_tables() {
    // The gateway's example holds placeholders, not data: its field names are what it
    // documents. They agree with api-fields.md, and neither has backlinks_nofollow.
    let text = fixture("seed-history-endpoint-gateway.txt");
    let gateway: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("\"tasks.result.items."))
        .filter_map(|l| l.split('"').next())
        .filter(|name| !name.contains('.'))
        .map(str::to_string)
        .collect();
    let docs = api_fields();
    let tables: BTreeSet<String> = docs["history"]
        .item
        .iter()
        .map(|f| f.name.clone())
        .collect();
    assert_eq!(gateway, tables);
    assert!(!gateway.contains("backlinks_nofollow"));
}

/// What the sandbox answers to `task`, today being 2025-06-15.
fn served(endpoint: Endpoint, task: Value) -> Value {
    let today = NaiveDate::from_ymd_opt(2025, 6, 15).unwrap();
    linkledger::sandbox::build_result(endpoint, &task, today).unwrap()[0].clone()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn names<'a>(fields: impl IntoIterator<Item = &'a Field>) -> BTreeSet<String> {
    fields.into_iter().map(|f| f.name.clone()).collect()
}

#[tokio::test]
async fn the_sandbox_serves_exactly_the_documented_fields_of_each_endpoint() {
    let docs = api_fields();
    for endpoint in Endpoint::ALL {
        let doc = &docs[endpoint.name()];
        let task = match endpoint {
            Endpoint::Summary => json!({"target": "example.com"}),
            Endpoint::History => {
                json!({"target": "example.com", "date_from": "2024-01-01", "date_to": "2024-02-29"})
            }
            Endpoint::TimeseriesSummary | Endpoint::TimeseriesNewLostSummary => {
                json!({"target": "example.com", "date_from": "2025-05-01", "group_range": "week"})
            }
            Endpoint::BulkNewLostBacklinks | Endpoint::BulkNewLostReferringDomains => {
                json!({"targets": ["example.com", "https://example.org/page"], "date_from": "2025-06-01"})
            }
            _ => json!({"targets": ["example.com", "https://example.org/page"]}),
        };
        let result = served(endpoint, task);
        let extra = documented_elsewhere(endpoint);
        assert_eq!(
            keys(&result),
            names(doc.result.iter().chain(&extra)),
            "{endpoint}: result fields"
        );
        let records: Vec<&Value> = if endpoint == Endpoint::Summary {
            vec![&result]
        } else {
            let items: Vec<&Value> = result["items"].as_array().unwrap().iter().collect();
            assert!(!items.is_empty(), "{endpoint}: no items");
            for item in &items {
                assert_eq!(keys(item), names(&doc.item), "{endpoint}: item fields");
            }
            items
        };
        for r in records {
            match r.get("info") {
                Some(info) => assert_eq!(keys(info), names(&doc.info), "{endpoint}: info"),
                None => assert!(
                    !doc.item.iter().chain(&doc.result).any(|f| f.name == "info"),
                    "{endpoint}: info documented but not served"
                ),
            }
        }
    }
}

#[tokio::test]
async fn the_documented_summary_example_is_stored_value_for_value_through_the_real_pipeline() {
    let example = summary_example();
    let task = &example["tasks"][0];
    let result = &task["result"][0];
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = sandbox(SandboxOptions {
        fixtures: BTreeMap::from([(Endpoint::Summary, example.clone())]),
        ..SandboxOptions::default()
    })
    .await;
    // The request the document made, as a job file asks for it.
    let job = job(r#"name = "documented"
targets = ["explodingtopics.com"]
[[collect]]
endpoint = "summary"
schedule = "@daily"
params = { internal_list_limit = 10, include_subdomains = true, backlinks_filters = ["dofollow", "=", true], backlinks_status_type = "all" }
"#);
    let exec = executor(&store, &sb, 4);
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(report.ok(), "{}", report.line());

    // What was sent is what the document sent (its `data` echo), defaults beside it.
    let (sent, cost): (Value, Option<rust_decimal::Decimal>) = sqlx::query_as(
        "SELECT request, cost_usd FROM linkledger.api_calls WHERE endpoint = 'summary'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    for (k, v) in task["data"].as_object().unwrap() {
        if k != "api" && k != "function" {
            assert_eq!(&sent[k], v, "request field {k}");
        }
    }
    // The ledger books the document's cost; the raw answer is the document's envelope.
    assert_eq!(cost, Some("0.02003".parse().unwrap()));
    let raw: Value = sqlx::query_scalar("SELECT body FROM linkledger.raw_responses")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(raw, example);

    let row: Value = sqlx::query_scalar("SELECT to_jsonb(s) FROM linkledger.summary s")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let instant = |v: &Value| {
        v.as_str().map(|s| {
            linkledger::warehouse::normalize::parse_instant(s)
                .unwrap_or_else(|| panic!("not an instant: {s}"))
        })
    };
    let mut maps_seen = 0;
    for (field, value) in result.as_object().unwrap() {
        match field.as_str() {
            "info" => {
                for (g, gv) in value.as_object().unwrap() {
                    assert_eq!(&row[format!("info_{g}")], gv, "info.{g}");
                }
            }
            "first_seen" | "lost_date" => {
                assert_eq!(instant(&row[field]), instant(value), "{field}");
            }
            map if map.starts_with("referring_links_") => {
                let dim = map.strip_prefix("referring_links_").unwrap();
                let stored: Vec<(String, Option<i64>)> = sqlx::query_as(
                    "SELECT key, count FROM linkledger.link_breakdowns
                     WHERE source_table = 'summary' AND dimension = $1 ORDER BY key",
                )
                .bind(dim)
                .fetch_all(store.pool())
                .await
                .unwrap();
                let mut documented: Vec<(String, Option<i64>)> = value
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, c)| (k.clone(), c.as_i64()))
                    .collect();
                documented.sort();
                assert_eq!(stored, documented, "{map}");
                maps_seen += 1;
            }
            _ => {
                assert!(
                    row.as_object().unwrap().contains_key(field),
                    "the documented field {field} has no column"
                );
                assert_eq!(&row[field], value, "{field}");
            }
        }
    }
    assert_eq!(maps_seen, 6);
    // The empty keys the document sends are rows like any other.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.link_breakdowns
             WHERE key = '' AND dimension IN ('semantic_locations', 'countries')"
        )
        .await,
        2
    );
    let empty: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT dimension, count FROM linkledger.link_breakdowns WHERE key = '' ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        empty,
        [
            ("countries".to_string(), Some(27445)),
            ("semantic_locations".to_string(), Some(20318)),
        ]
    );
    // Keyed by what was asked: the document's options over the API's defaults; the
    // rank (371) on the default scale.
    let mut options = Endpoint::Summary.default_options();
    for (k, v) in task["data"].as_object().unwrap() {
        if !matches!(k.as_str(), "api" | "function" | "target") {
            options[k] = v.clone();
        }
    }
    assert_eq!(row["options"], options);
    assert_eq!(row["rank_scale"], json!("one_thousand"));
    assert_eq!(row["rank"], json!(371));
    assert_eq!(row["collected_on"], json!(today().to_string()));
    // Asked with other options, the default set has no row, so latest_summary shows
    // none; latest_summary_by_options shows this one.
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.latest_summary").await,
        0
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.latest_summary_by_options WHERE rank = 371"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn linkledger_sandbox_serves_a_fixture_file_to_a_once_run_and_refuses_a_bad_one() {
    let wd = Workdir::new(&[(
        "documented.toml",
        "name = \"documented\"\ntargets = [\"explodingtopics.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
    )]);
    let file = wd.path().join("summary-example.json");
    std::fs::write(&file, summary_example().to_string()).unwrap();
    std::fs::write(wd.path().join("list.json"), "[1]").unwrap();

    // Bad fixtures are usage errors that name the argument and say why.
    for (arg, why) in [
        ("sumary=summary-example.json", "did you mean `summary`"),
        ("summary", "expected ENDPOINT=FILE"),
        ("summary=nope.json", "cannot read nope.json"),
        ("summary=list.json", "must hold a response envelope"),
    ] {
        let out = linkledger(
            wd.path(),
            &[],
            &["sandbox", "--listen", "127.0.0.1:0", "--fixture", arg],
        )
        .await;
        assert_eq!(out.status.code(), Some(2), "{arg}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("--fixture {arg}")) && stderr(&out).contains(why),
            "{arg}: {}",
            stderr(&out)
        );
    }

    // A good one answers the once-run's summary call with the document.
    let mut sandbox = command(
        wd.path(),
        &[],
        &[
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--fixture",
            "summary=summary-example.json",
        ],
    );
    let mut child = sandbox
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("the sandbox says where it listens")
        .unwrap()
        .unwrap();
    let url = first
        .split_once(" at ")
        .and_then(|(_, r)| r.split_once(' '))
        .map(|(u, _)| u.to_string())
        .unwrap_or_else(|| panic!("no URL in {first:?}"));
    let db = TestDb::new().await;
    let env = vec![
        ("DATABASE_URL".to_string(), db.url.clone()),
        ("LINKLEDGER_API__BASE_URL".to_string(), url),
        ("DATAFORSEO_LOGIN".to_string(), "sandbox".to_string()),
        ("DATAFORSEO_PASSWORD".to_string(), "sandbox".to_string()),
    ];
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    child.kill().await.unwrap();
    let store = db.store().await;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.summary WHERE target = 'explodingtopics.com' AND rank = 371 AND backlinks = 41245"
        )
        .await,
        1
    );
}

/// The history field list says how its items are built: "the metrics are aggregated
/// according to the backlinks the specified domain had on the first day of each given
/// month". So a month's figures are complete once its first day is over, and an answer
/// to a request sent after that stores the month for good, settle time or not.
#[test]
fn a_history_month_is_final_once_its_first_day_is_over_as_the_field_list_says() {
    let docs = api_fields();
    let items = docs["history"]
        .result
        .iter()
        .find(|f| f.name == "items")
        .expect("history documents its items");
    assert!(
        items.notes.contains(
            "the backlinks the specified domain had on the first day of each given month"
        ),
        "{}",
        items.notes
    );
    use linkledger::warehouse::coverage::{PeriodState, answered, complete_at};
    let day = |s: &str| s.parse::<NaiveDate>().unwrap();
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    assert_eq!(
        complete_at(Endpoint::History, day("2026-11-01"), day("2026-11-30")),
        at("2026-11-02T00:00:00Z")
    );
    let task = json!({"target": "a.com", "date_from": "2026-11-01", "date_to": "2026-11-30"});
    let held = BTreeSet::from([day("2026-11-01")]);
    let state = |sent: &str| {
        answered(
            Endpoint::History,
            &task,
            &held,
            at(sent),
            Endpoint::History.default_settle(),
        )
        .unwrap()
        .periods[0]
            .state
    };
    assert_eq!(state("2026-11-01T23:59:59Z"), PeriodState::Unsettled);
    assert_eq!(state("2026-11-02T00:00:00Z"), PeriodState::Final);
}
