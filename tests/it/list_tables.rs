//! The list endpoints' tables (issue 26, parts 4-5): every column a documented field of
//! its item (`api-fields-lists.md`); a page of each list endpoint bought through the
//! executor, its raw body stored, its items loaded into their typed table, loaded
//! again and replayed to the same rows; and links and referring domains tracked across
//! two sandbox days, the new and lost ones listed by the views.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use linkledger::api::Endpoint;
use linkledger::api::target::Target;
use linkledger::collect::executor::{AttemptEnd, Executor};
use linkledger::plan::CallSpec;
use linkledger::store::{RunKind, Store};
use linkledger::warehouse::normalize::{TABLES, table_for};
use serde_json::{Value, json};

use crate::common::*;

/// `api-fields-lists.md`, read: per class (`BacklinksBacklinksLiveItem`, `PageSummary`,
/// ...), its fields as (name, JSON type as written, description); and per endpoint
/// its classes.
struct ListDocs {
    classes: BTreeMap<String, Vec<(String, String, String)>>,
    endpoints: BTreeMap<String, Vec<String>>,
}

fn list_docs() -> ListDocs {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reference/api-fields-lists.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut docs = ListDocs {
        classes: BTreeMap::new(),
        endpoints: BTreeMap::new(),
    };
    let (mut endpoint, mut class) = (String::new(), String::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("## POST /v3/backlinks/") {
            endpoint = rest.strip_suffix("/live").unwrap().to_string();
        } else if let Some(rest) = line.strip_prefix("#### `") {
            class = rest.split('`').next().unwrap().to_string();
            docs.endpoints
                .entry(endpoint.clone())
                .or_default()
                .push(class.clone());
        } else if let Some(rest) = line.strip_prefix("| `") {
            let cells: Vec<&str> = rest.splitn(3, " | ").collect();
            docs.classes.entry(class.clone()).or_default().push((
                cells[0].trim_end_matches('`').to_string(),
                cells[1].trim().to_string(),
                cells.get(2).copied().unwrap_or("").to_string(),
            ));
        }
    }
    docs
}

/// The columns a documented item's fields make, as information_schema names their
/// types: a nested object's fields flattened under its name, maps and arrays of
/// objects `jsonb`, strings that are instants `timestamp with time zone`.
fn documented_columns(
    docs: &ListDocs,
    class: &str,
    prefix: &str,
    out: &mut BTreeMap<String, String>,
) {
    for (name, ty, notes) in &docs.classes[class] {
        if name == "type" && prefix.is_empty() {
            // The element's type: one constant per endpoint, which the table is.
            continue;
        }
        let column = format!("{prefix}{name}");
        let sql = match ty.as_str() {
            "integer" => "bigint",
            "boolean" => "boolean",
            "string" if notes.contains("date and time") || notes.contains("yyyy-mm-dd") => {
                "timestamp with time zone"
            }
            "string" => "text",
            "array of string" => "_text",
            "object (map)" => "jsonb",
            t if t.starts_with("array of object") => "jsonb",
            t if t.starts_with("object `") => {
                let inner = t.split('`').nth(1).unwrap();
                documented_columns(docs, inner, &format!("{column}_"), out);
                continue;
            }
            other => panic!("{class}.{name}: no SQL type for {other}"),
        };
        out.insert(column, sql.to_string());
    }
}

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

#[tokio::test]
async fn every_column_of_every_list_table_is_a_documented_field_of_its_item() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let docs = list_docs();
    for endpoint in Endpoint::LISTS {
        let spec = table_for(endpoint);
        assert!(TABLES.iter().any(|t| t.name == spec.name));
        let classes = &docs.endpoints[endpoint.name()];
        let item = classes.iter().find(|c| c.ends_with("LiveItem")).unwrap();
        let mut expected = BTreeMap::new();
        documented_columns(&docs, item, "", &mut expected);
        // The result's target keys its items; an intersection's targets, its first
        // target the row's target.
        expected.insert("target".into(), "text".into());
        if endpoint == Endpoint::DomainIntersection {
            expected.insert("targets".into(), "jsonb".into());
        }
        // A competitor's own `target` is stored as `competitor`: the row's target is
        // the domain asked about.
        if endpoint == Endpoint::Competitors {
            assert_eq!(expected.remove("target"), Some("text".into()));
            expected.insert("competitor".into(), "text".into());
            expected.insert("target".into(), "text".into());
        }
        // Columns that are no field: the request's options and rank scale, when and
        // from which answer a row came, and the identities computed from the item.
        let mut bookkeeping = vec![
            ("options", "jsonb"),
            ("rank_scale", "text"),
            ("collected_on", "date"),
            ("collected_at", "timestamp with time zone"),
            ("raw_response_id", "bigint"),
        ];
        match endpoint {
            Endpoint::Backlinks => bookkeeping.push(("link_id", "text")),
            Endpoint::DomainIntersection => bookkeeping.push(("domain", "text")),
            _ => {}
        }
        for (c, t) in bookkeeping {
            expected.insert(c.into(), t.into());
        }
        let actual = columns(store.pool(), spec.name).await;
        assert_eq!(actual, expected, "{}", spec.name);
        // Wherever a rank is stored (a column, or inside the intersection's objects),
        // its scale is stored beside it.
        assert!(actual.contains_key("rank_scale"), "{}", spec.name);
    }
}

/// The executor, its answers timed by `clock`, each call bought even when the same
/// task was bought the same day (the days here are simulated).
pub(crate) fn executor_at(
    store: &Store,
    sb: &linkledger::sandbox::Sandbox,
    clock: &Arc<Mutex<DateTime<Utc>>>,
) -> Executor {
    let clock = clock.clone();
    executor(store, sb, 2)
        .without_same_day_reuse()
        .with_clock(Arc::new(move || *clock.lock().unwrap()))
}

/// One call of `task` planned, claimed and attempted: a page of a listing (or, with
/// `targets` an array, a bulk call).
pub(crate) async fn buy(
    store: &Store,
    exec: &Executor,
    endpoint: Endpoint,
    task: Value,
) -> AttemptEnd {
    let targets = match task.get("target").and_then(Value::as_str) {
        Some(t) => vec![Target::parse(t).unwrap()],
        None => match &task["targets"] {
            Value::Array(ts) => ts.iter().collect::<Vec<_>>(),
            ts => ts.as_object().unwrap().values().collect(),
        }
        .into_iter()
        .map(|t| Target::parse(t.as_str().unwrap()).unwrap())
        .collect(),
    };
    let call = CallSpec {
        job: "lists".into(),
        collection: endpoint.name().into(),
        endpoint,
        targets,
        task,
        estimated_rows: 1000,
        settle: None,
        max_rows: None,
        listing_size: None,
    };
    let run = store
        .start_run_with_work(
            "lists",
            RunKind::Once,
            3,
            &[linkledger::collect::workers::new_work(&call)],
        )
        .await
        .unwrap();
    let fence = claim_one(store, "worker", Duration::from_secs(60), run)
        .await
        .fence();
    exec.attempt(run, &call, fence).await.unwrap()
}

/// Every page of a listing, `limit` 1000 from offset 0 until `total_count`, each its own
/// call; returns the items the sandbox served.
async fn buy_listing(store: &Store, exec: &Executor, endpoint: Endpoint, task: &Value) -> usize {
    let mut offset = 0;
    let mut served = 0;
    loop {
        let mut page = task.clone();
        page["limit"] = json!(1000);
        page["offset"] = json!(offset);
        let end = buy(store, exec, endpoint, page).await;
        assert!(
            matches!(end, AttemptEnd::Stored { .. }),
            "{endpoint} offset {offset}: {end:?}"
        );
        let (total, items): (i64, i64) = sqlx::query_as(
            "SELECT (body #>> '{tasks,0,result,0,total_count}')::bigint,
                    (body #>> '{tasks,0,result,0,items_count}')::bigint
             FROM linkledger.raw_responses ORDER BY id DESC LIMIT 1",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        served += items as usize;
        offset += 1000;
        if offset >= total {
            return served;
        }
    }
}

/// A table's rows, as (how many, a digest of their content): every column but when and
/// from which stored answer they were loaded.
async fn table_rows(store: &Store, table: &str) -> (i64, String) {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), md5(coalesce(string_agg(r, E'\\n' ORDER BY r), ''))
         FROM (SELECT (to_jsonb(t) - 'collected_at' - 'raw_response_id')::text AS r
               FROM linkledger.{table} t) x"
    )))
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_page_of_each_list_endpoint_is_stored_raw_loaded_into_its_table_and_replay_rebuilds_the_same_rows()
 {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let clock = Arc::new(Mutex::new(Utc::now()));
    let exec = executor_at(&store, &sb, &clock);
    for endpoint in Endpoint::LISTS {
        let task = if endpoint == Endpoint::DomainIntersection {
            json!({"targets": {"1": "example.com", "2": "example.org"}, "limit": 300})
        } else {
            json!({"target": "example.com", "limit": 300})
        };
        let end = buy(&store, &exec, endpoint, task).await;
        assert!(
            matches!(end, AttemptEnd::Stored { .. }),
            "{endpoint}: {end:?}"
        );
        let table = table_for(endpoint).name;
        let items: i64 = sqlx::query_scalar(
            "SELECT (body #>> '{tasks,0,result,0,items_count}')::bigint
             FROM linkledger.raw_responses WHERE endpoint = $1",
        )
        .bind(endpoint.name())
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert!(items > 0, "{endpoint}: the page holds items");
        assert_eq!(
            count(&store, &format!("SELECT count(*) FROM linkledger.{table}")).await,
            items,
            "{endpoint}: a row per item of the stored answer"
        );
        assert_eq!(
            count(
                &store,
                &format!(
                    "SELECT count(*) FROM linkledger.{table} t JOIN linkledger.raw_responses r
                     ON r.id = t.raw_response_id WHERE r.endpoint = '{}'",
                    endpoint.name()
                )
            )
            .await,
            items,
            "{endpoint}: every row names the raw answer it was read from"
        );
    }
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.rejected_items").await,
        0
    );
    // The rows went to their month's partition, not to the default one.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger_partitions.backlinks_default"
        )
        .await,
        0
    );

    let before: Vec<(i64, String)> = {
        let mut v = Vec::new();
        for e in Endpoint::LISTS {
            v.push(table_rows(&store, table_for(e).name).await);
        }
        v
    };
    // Replay loads the same answers again: nothing changes. Emptied, the tables are
    // rebuilt from raw_responses alone, row for row.
    let wd = Workdir::new(&[]);
    let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
    let out = linkledger(wd.path(), &env, &["replay"]).await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    for (i, e) in Endpoint::LISTS.into_iter().enumerate() {
        assert_eq!(
            table_rows(&store, table_for(e).name).await,
            before[i],
            "{e}"
        );
    }
    for e in Endpoint::LISTS {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM linkledger.{}",
            table_for(e).name
        )))
        .execute(store.pool())
        .await
        .unwrap();
    }
    let out = linkledger(wd.path(), &env, &["replay"]).await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    for (i, e) in Endpoint::LISTS.into_iter().enumerate() {
        assert_eq!(
            table_rows(&store, table_for(e).name).await,
            before[i],
            "{e}"
        );
    }
}

/// Fails with the first few of what one set holds and the other does not.
fn same<T: Ord + std::fmt::Debug>(found: &BTreeSet<T>, expected: &BTreeSet<T>, what: &str) {
    let extra: Vec<&T> = found.difference(expected).take(5).collect();
    let missing: Vec<&T> = expected.difference(found).take(5).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{what}: {} found, {} expected; found, not expected: {extra:?}; expected, not found: {missing:?}",
        found.len(),
        expected.len()
    );
}

/// A backlink as the sandbox serves it, by the fields that make it one link.
fn link(item: &Value) -> (String, String, String, String, String) {
    let s = |f: &str| match &item[f] {
        Value::Null => "<null>".to_string(),
        v => v.as_str().unwrap().to_string(),
    };
    (
        s("url_from"),
        s("url_to"),
        s("item_type"),
        s("anchor"),
        s("image_url"),
    )
}

/// The whole live listing of `endpoint` for `target` on `day`, as the sandbox serves it.
fn served_all(endpoint: Endpoint, target: &str, day: NaiveDate) -> Vec<Value> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let task = json!({"target": target, "limit": 1000, "offset": offset});
        let result = linkledger::sandbox::build_result(endpoint, &task, day).unwrap()[0].clone();
        out.extend(result["items"].as_array().unwrap().iter().cloned());
        offset += 1000;
        if offset >= result["total_count"].as_u64().unwrap() as usize {
            return out;
        }
    }
}

#[tokio::test]
async fn the_links_and_referring_domains_new_and_lost_since_the_previous_fire_are_the_sandboxs_changes_between_its_days()
 {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let day1 = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let day2 = day1.succ_opt().unwrap();
    let noon = |d: NaiveDate| d.and_hms_opt(12, 0, 0).unwrap().and_utc();
    let clock = Arc::new(Mutex::new(noon(day1)));
    let exec = executor_at(&store, &sb, &clock);
    // Two targets whose whole listing is a few pages (offset stops at 20,000).
    let targets: Vec<String> = (0..200)
        .map(|i| format!("site{i}.example.com"))
        .filter(|t| {
            let task = json!({"target": t, "limit": 1});
            let result = linkledger::sandbox::build_result(Endpoint::Backlinks, &task, day1)
                .unwrap()[0]
                .clone();
            (200..3000).contains(&result["total_count"].as_u64().unwrap())
        })
        .take(2)
        .collect();
    assert_eq!(targets.len(), 2);
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();

    // What the sandbox changes between its two days: the expected new and lost.
    type Link = (String, String, String, String, String);
    let mut expected_links: BTreeSet<(String, &str, Link)> = BTreeSet::new();
    let mut expected_domains: BTreeSet<(String, &str, String)> = BTreeSet::new();
    let mut kept_links = 0;
    for &t in &targets {
        let links = |d| -> BTreeSet<Link> {
            served_all(Endpoint::Backlinks, t, d)
                .iter()
                .map(link)
                .collect()
        };
        let (a, b) = (links(day1), links(day2));
        kept_links += a.intersection(&b).count();
        for l in b.difference(&a) {
            expected_links.insert((t.to_string(), "new", l.clone()));
        }
        for l in a.difference(&b) {
            expected_links.insert((t.to_string(), "lost", l.clone()));
        }
        let domains = |d| -> BTreeSet<String> {
            served_all(Endpoint::ReferringDomains, t, d)
                .iter()
                .map(|i| i["domain"].as_str().unwrap().to_string())
                .collect()
        };
        let (a, b) = (domains(day1), domains(day2));
        for d in b.difference(&a) {
            expected_domains.insert((t.to_string(), "new", d.clone()));
        }
        for d in a.difference(&b) {
            expected_domains.insert((t.to_string(), "lost", d.clone()));
        }
    }
    for change in ["new", "lost"] {
        assert!(
            expected_links.iter().any(|(_, c, _)| *c == change),
            "the sandbox's links change between its days: {change}"
        );
    }
    assert!(kept_links > 0);

    // Two fires, a day apart, each the whole listing of each target.
    let mut stored_items = 0;
    for day in [day1, day2] {
        sb.set_today(day);
        *clock.lock().unwrap() = noon(day);
        for &t in &targets {
            for endpoint in [Endpoint::Backlinks, Endpoint::ReferringDomains] {
                stored_items += buy_listing(&store, &exec, endpoint, &json!({"target": t})).await;
            }
        }
    }
    assert_eq!(
        count(
            &store,
            "SELECT (SELECT count(*) FROM linkledger.backlinks) + (SELECT count(*) FROM linkledger.referring_domains)"
        )
        .await,
        stored_items as i64,
        "a row per item served"
    );

    let found_links: BTreeSet<(String, &str, Link)> = sqlx::query_as::<
        _,
        (
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        ),
    >(
        "SELECT target, change, url_from, url_to, item_type, anchor, image_url
         FROM linkledger.backlinks_new_lost",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|(t, c, from, to, ty, anchor, image)| {
        let n = |v: Option<String>| v.unwrap_or_else(|| "<null>".into());
        let c = if c == "new" { "new" } else { "lost" };
        (t, c, (from, to, n(ty), n(anchor), n(image)))
    })
    .collect();
    same(&found_links, &expected_links, "backlinks new and lost");
    let found_domains: BTreeSet<(String, &str, String)> =
        sqlx::query_as::<_, (String, String, String)>(
            "SELECT target, change, domain FROM linkledger.referring_domains_new_lost",
        )
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .map(|(t, c, d)| (t, if c == "new" { "new" } else { "lost" }, d))
        .collect();
    same(
        &found_domains,
        &expected_domains,
        "referring domains new and lost",
    );

    // First and last seen by us: a new link was first seen on day 2, a lost one last
    // seen on day 1, one kept through both first on day 1 and last on day 2; the
    // API's own fields stand beside them.
    let change_of = |t: &str, l: &Link| -> &'static str {
        if expected_links.contains(&(t.to_string(), "new", l.clone())) {
            "new"
        } else if expected_links.contains(&(t.to_string(), "lost", l.clone())) {
            "lost"
        } else {
            "kept"
        }
    };
    type Known = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        DateTime<Utc>,
        DateTime<Utc>,
        i64,
        bool,
    );
    let known: Vec<Known> = sqlx::query_as(
        "SELECT target, url_from, url_to, item_type, anchor, image_url,
                first_seen_by_us, last_seen_by_us, fires_listed,
                first_seen IS NOT NULL AND last_seen IS NOT NULL AND is_new IS NOT NULL AND is_lost IS NOT NULL
         FROM linkledger.known_backlinks",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    // When an answer arrived: its fire's day (the clock, plus the time it took).
    let (d1, d2) = (day1, day2);
    let mut kept = 0;
    for (t, from, to, ty, anchor, image, first, last, fires, api) in known {
        let n = |v: Option<String>| v.unwrap_or_else(|| "<null>".into());
        let change = change_of(&t, &(from, to, n(ty), n(anchor), n(image)));
        let want = match change {
            "new" => (d2, d2, 1),
            "lost" => (d1, d1, 1),
            _ => (d1, d2, 2),
        };
        kept += usize::from(change == "kept");
        assert_eq!(
            (first.date_naive(), last.date_naive(), fires),
            want,
            "{change}"
        );
        assert!(api, "the API's own first_seen, last_seen, is_new, is_lost");
    }
    assert_eq!(kept, kept_links, "every link of both days is one link");
    let domains_seen: Vec<(String, String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT target, domain, first_seen_by_us, last_seen_by_us FROM linkledger.known_referring_domains",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    for (t, d, first, last) in domains_seen {
        let want = if expected_domains.contains(&(t.clone(), "new", d.clone())) {
            (d2, d2)
        } else if expected_domains.contains(&(t.clone(), "lost", d.clone())) {
            (d1, d1)
        } else {
            (d1, d2)
        };
        assert_eq!((first.date_naive(), last.date_naive()), want, "{t} {d}");
    }

    // A third fire the same as the second: nothing new or lost since it.
    let day3 = day2.succ_opt().unwrap();
    *clock.lock().unwrap() = noon(day3);
    for &t in &targets {
        buy_listing(&store, &exec, Endpoint::Backlinks, &json!({"target": t})).await;
    }
    let links_day3: usize = targets
        .iter()
        .map(|t| served_all(Endpoint::Backlinks, t, day2).len())
        .sum();
    assert!(links_day3 > 0);
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.backlinks_new_lost").await,
        0,
        "the sandbox still on day 2: the third fire lists what the second did"
    );
}
