//! The list endpoints' answers (issue 26) normalized: the sandbox's own answers, built
//! by `sandbox::data::build_result`, into one row per item.

use super::*;
use crate::sandbox::data::build_result;
use serde_json::json;

fn at() -> DateTime<Utc> {
    "2026-11-25T10:00:00Z".parse().unwrap()
}

fn ctx<'a>(endpoint: Endpoint, request: &'a Value) -> Context<'a> {
    Context {
        endpoint,
        raw_response_id: 7,
        collected_at: at(),
        sent_at: at(),
        settle: endpoint.default_settle(),
        request,
    }
}

/// The sandbox's answer to `task` on `day`, in its envelope.
fn served(endpoint: Endpoint, task: &Value, day: NaiveDate) -> Value {
    let result = build_result(endpoint, task, day).expect("the sandbox answers");
    json!({"status_code": 20000, "tasks": [{"status_code": 20000, "result": result}]})
}

fn day() -> NaiveDate {
    at().date_naive()
}

/// A page of 200 items; lost links too where the endpoint takes
/// `backlinks_status_type` (only lost ones for anchors and pages, whose first 200 all
/// have a live link), so that `lost_date` and `is_lost` have values.
fn task(endpoint: Endpoint) -> Value {
    let mut task = if endpoint == Endpoint::DomainIntersection {
        json!({"targets": {"1": "example.com", "2": "example.org"}, "limit": 200})
    } else {
        json!({"target": "example.com", "limit": 200})
    };
    if endpoint.param("backlinks_status_type").is_some() {
        let lost = matches!(endpoint, Endpoint::Anchors | Endpoint::DomainPages);
        task["backlinks_status_type"] = json!(if lost { "lost" } else { "all" });
    }
    task
}

fn col(batch: &Batch, row: usize, name: &str) -> Cell {
    let cols = batch.table.spec.columns();
    let i = cols.iter().position(|(c, _)| c == name).expect(name);
    batch.table.rows[row][i].clone()
}

#[test]
fn one_page_of_every_list_endpoint_becomes_one_row_per_item_with_every_column_read() {
    for endpoint in Endpoint::LISTS {
        let task = task(endpoint);
        let body = served(endpoint, &task, day());
        let items = body["tasks"][0]["result"][0]["items"]
            .as_array()
            .unwrap()
            .len();
        assert!(items > 0, "{endpoint}: the sandbox served no item");
        let b = normalize(&ctx(endpoint, &task), &body).unwrap();
        assert_eq!(b.table.spec.endpoint, endpoint);
        assert!(b.rejected.is_empty(), "{endpoint}: {:?}", b.rejected);
        assert_eq!(b.table.rows.len(), items, "{endpoint}: a row per item");
        assert!(
            b.breakdowns.is_empty(),
            "{endpoint}: maps stay in their row"
        );
        // Every column is read from the answer: some row holds a value in each.
        for (i, (name, _)) in b.table.spec.columns().iter().enumerate() {
            assert!(
                b.table.rows.iter().any(|r| r[i] != Cell::Null),
                "{endpoint}.{name}: NULL in every row"
            );
        }
        assert_eq!(
            col(&b, 0, "options"),
            Cell::Json(endpoint.answer_options(&task))
        );
        assert_eq!(col(&b, 0, "collected_on"), Cell::Date(day()));
        assert_eq!(col(&b, 0, "target"), Cell::Text("example.com".into()));
    }
}

#[test]
fn nested_objects_are_flattened_and_maps_kept_whole_as_json() {
    let task = task(Endpoint::DomainPages);
    let body = served(Endpoint::DomainPages, &task, day());
    let item = &body["tasks"][0]["result"][0]["items"][0];
    let b = normalize(&ctx(Endpoint::DomainPages, &task), &body).unwrap();
    let page = item["page"].as_str().unwrap();
    let row = (0..b.table.rows.len())
        .find(|&r| col(&b, r, "page") == Cell::Text(page.into()))
        .unwrap();
    assert_eq!(
        col(&b, row, "meta_title"),
        Cell::Text(item["meta"]["title"].as_str().unwrap().into())
    );
    assert_eq!(
        col(&b, row, "page_summary_backlinks"),
        Cell::Int(item["page_summary"]["backlinks"].as_i64().unwrap())
    );
    assert_eq!(
        col(&b, row, "page_summary_referring_links_tld"),
        Cell::Json(item["page_summary"]["referring_links_tld"].clone())
    );
    assert_eq!(
        col(&b, row, "meta_technologies"),
        Cell::Json(item["meta"]["technologies"].clone())
    );
}

fn backlink() -> Map<String, Value> {
    json!({"url_from": "https://a.example/p", "url_to": "https://t.example/",
           "item_type": "anchor", "anchor": "t example", "image_url": null,
           "attributes": ["nofollow"], "dofollow": false, "rank": 12})
    .as_object()
    .unwrap()
    .clone()
}

#[test]
fn a_backlink_is_the_same_link_whatever_its_attributes_or_measures_and_another_by_its_page_target_kind_or_text()
 {
    let id = link_id(&backlink()).unwrap();
    assert_eq!(id.len(), 32);
    let mut same = backlink();
    same.insert("attributes".into(), json!([]));
    same.insert("dofollow".into(), json!(true));
    same.insert("rank".into(), json!(40));
    assert_eq!(link_id(&same).unwrap(), id, "rel and ranks change a link");
    for (field, value) in [
        ("url_from", json!("https://a.example/q")),
        ("url_to", json!("https://t.example/x")),
        ("item_type", json!("image")),
        ("anchor", json!("")),
        ("image_url", json!("https://a.example/i.png")),
    ] {
        let mut other = backlink();
        other.insert(field.into(), value);
        assert_ne!(link_id(&other).unwrap(), id, "{field} makes another link");
    }
    let mut without = backlink();
    without.remove("url_to");
    assert_eq!(
        link_id(&without).unwrap_err().to_string(),
        "url_to: missing"
    );
}

#[test]
fn a_list_item_without_its_identity_or_with_a_map_of_another_type_is_set_aside_alone() {
    let task = json!({"target": "example.com"});
    let body = json!({"status_code": 20000, "tasks": [{"status_code": 20000, "result": [{
    "target": "example.com", "total_count": 4, "items_count": 4, "items": [
        {"type": "backlinks_referring_domain", "domain": "a.example", "rank": 5,
         "referring_links_tld": {"com": 2}},
        {"type": "backlinks_referring_domain", "domain": null, "rank": 6},
        {"type": "backlinks_referring_domain", "domain": "b.example", "referring_links_tld": 3},
        {"type": "backlinks_referring_domain", "domain": "c.example", "rank": null}
    ]}]}]});
    let b = normalize(&ctx(Endpoint::ReferringDomains, &task), &body).unwrap();
    assert_eq!(b.table.rows.len(), 2);
    assert_eq!(col(&b, 0, "domain"), Cell::Text("a.example".into()));
    assert_eq!(
        col(&b, 0, "referring_links_tld"),
        Cell::Json(json!({"com": 2}))
    );
    assert_eq!(col(&b, 1, "rank"), Cell::Null, "a null outside the key");
    let why: Vec<(&str, &str)> = b
        .rejected
        .iter()
        .map(|r| (r.path.as_str(), r.why.as_str()))
        .collect();
    assert_eq!(
        why,
        [
            (
                "tasks[0].result[0].items[1]",
                "domain: expected string, found null"
            ),
            (
                "tasks[0].result[0].items[2]",
                "referring_links_tld: expected object or array, found integer"
            ),
        ]
    );
}

#[test]
fn an_intersection_row_is_keyed_by_the_first_target_the_whole_target_set_and_the_shared_domain() {
    let task = json!({"targets": {"2": "example.org", "1": "example.com"}, "limit": 5});
    let body = served(Endpoint::DomainIntersection, &task, day());
    let item = &body["tasks"][0]["result"][0]["items"][0];
    let b = normalize(&ctx(Endpoint::DomainIntersection, &task), &body).unwrap();
    assert_eq!(col(&b, 0, "target"), Cell::Text("example.com".into()));
    assert_eq!(col(&b, 0, "targets"), Cell::Json(task["targets"].clone()));
    assert_eq!(
        col(&b, 0, "domain"),
        Cell::Text(
            item["domain_intersection"]["1"]["target"]
                .as_str()
                .unwrap()
                .into()
        )
    );
    assert_eq!(
        col(&b, 0, "domain_intersection"),
        Cell::Json(item["domain_intersection"].clone())
    );
    assert_eq!(col(&b, 0, "summary_intersections_count"), Cell::Int(2));
    // Objects that name two domains are no one domain's: the item is set aside.
    let mut odd = item.clone();
    odd["domain_intersection"]["2"]["target"] = json!("elsewhere.example");
    let body = json!({"status_code": 20000, "tasks": [{"status_code": 20000, "result": [
        {"targets": task["targets"], "items": [odd]}]}]});
    let b = normalize(&ctx(Endpoint::DomainIntersection, &task), &body).unwrap();
    assert!(b.table.rows.is_empty());
    assert_eq!(b.rejected.len(), 1);
}

#[test]
fn the_same_backlinks_page_on_the_next_day_keeps_each_links_identity_and_adds_a_days_rows() {
    let task = task(Endpoint::Backlinks);
    let ids = |day: NaiveDate| -> std::collections::BTreeSet<String> {
        let body = served(Endpoint::Backlinks, &task, day);
        let b = normalize(&ctx(Endpoint::Backlinks, &task), &body).unwrap();
        (0..b.table.rows.len())
            .map(|r| match col(&b, r, "link_id") {
                Cell::Text(s) => s,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let today = ids(day());
    let again = ids(day());
    assert_eq!(today, again, "the same answer, the same identities");
    let later = ids(day() + chrono::Days::new(30));
    assert!(
        today.intersection(&later).count() > 0,
        "links live on both days keep their identity"
    );
}
