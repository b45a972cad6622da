use super::request::parse_date;
use super::*;
use chrono::Datelike;
use serde_json::json;

fn day(s: &str) -> NaiveDate {
    parse_date(s).unwrap()
}

const TODAY: &str = "2025-06-15";

fn result(endpoint: Endpoint, task: Value) -> Value {
    build_result(endpoint, &task, day(TODAY)).unwrap()
}

#[test]
fn data_is_deterministic() {
    for endpoint in Endpoint::ALL {
        let task = if endpoint.is_bulk() {
            json!({"targets": ["b.com", "https://a.com/page", "c.org"]})
        } else {
            json!({"target": "example.com"})
        };
        let a = result(endpoint, task.clone());
        let b = result(endpoint, task);
        assert_eq!(a, b, "{endpoint}");
    }
    let other = result(Endpoint::Summary, json!({"target": "other.com"}));
    assert_ne!(
        other[0]["backlinks"],
        result(Endpoint::Summary, json!({"target": "example.com"}))[0]["backlinks"]
    );
}

#[test]
fn counts_keep_the_apis_invariants() {
    for i in 0..200 {
        let t = format!("site{i}.example.com");
        let r = &result(Endpoint::Summary, json!({"target": t}))[0];
        let n = |f: &str| r[f].as_i64().unwrap();
        assert!(n("referring_domains") <= n("backlinks"), "{r}");
        assert!(n("referring_domains_nofollow") <= n("referring_domains"));
        assert!(n("referring_main_domains") <= n("referring_domains"));
        assert!(n("referring_pages_nofollow") <= n("referring_pages"));
        assert!((0..=1000).contains(&n("rank")));
        assert!((0..=100).contains(&n("backlinks_spam_score")));
        assert!(n("backlinks") <= 20_000_000);
    }
}

#[test]
fn history_for_2024_has_12_items_dated_the_first_of_each_month() {
    let r = &result(
        Endpoint::History,
        json!({"target": "example.com", "date_from": "2024-01-01", "date_to": "2024-12-31"}),
    )[0];
    assert_eq!(r["items_count"], 12);
    assert_eq!(r["date_from"], "2024-01-01");
    assert_eq!(r["date_to"], "2024-12-31");
    let items = r["items"].as_array().unwrap();
    for (i, item) in items.iter().enumerate() {
        assert_eq!(
            item["date"],
            format!("2024-{:02}-01 00:00:00 +00:00", i + 1)
        );
        assert_eq!(item["type"], "backlinks_history");
    }
}

#[test]
fn history_new_and_lost_counts_are_zero_before_may_2021() {
    let r = &result(
        Endpoint::History,
        json!({"target": "example.com", "date_from": "2021-03-01", "date_to": "2021-06-30"}),
    )[0];
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["new_backlinks"], 0);
    assert_eq!(items[1]["lost_referring_domains"], 0);
    assert!(items[2]["new_backlinks"].as_i64().unwrap() > 0);
}

#[test]
fn history_stops_at_the_month_of_today() {
    let r = &result(
        Endpoint::History,
        json!({"target": "example.com", "date_from": "2025-01-01"}),
    )[0];
    assert_eq!(r["items_count"], 6);
    assert_eq!(r["date_to"], TODAY);
}

#[test]
fn a_weekly_timeseries_item_is_dated_on_a_sunday_and_monthly_on_the_last_day_of_the_month() {
    let weekly = &result(
        Endpoint::TimeseriesSummary,
        json!({"target": "example.com", "date_from": "2025-05-01", "date_to": "2025-05-31", "group_range": "week"}),
    )[0];
    let items = weekly["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    for item in items {
        let d = day(&item["date"].as_str().unwrap()[..10]);
        assert_eq!(d.weekday(), chrono::Weekday::Sun, "{d}");
    }
    let monthly = &result(
        Endpoint::TimeseriesNewLostSummary,
        json!({"target": "example.com", "date_from": "2024-01-15", "date_to": "2024-04-02"}),
    )[0];
    assert_eq!(monthly["group_range"], "month");
    let dates: Vec<&str> = monthly["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        [
            "2024-01-31 00:00:00 +00:00",
            "2024-02-29 00:00:00 +00:00",
            "2024-03-31 00:00:00 +00:00",
            "2024-04-30 00:00:00 +00:00"
        ]
    );
    let daily = &result(
        Endpoint::TimeseriesSummary,
        json!({"target": "example.com", "date_from": "2025-06-01", "group_range": "day"}),
    )[0];
    assert_eq!(daily["items_count"], 15);
    let yearly = &result(
        Endpoint::TimeseriesSummary,
        json!({"target": "example.com", "date_from": "2023-06-01", "group_range": "year"}),
    )[0];
    assert_eq!(yearly["items"][0]["date"], "2023-12-31 00:00:00 +00:00");
    assert_eq!(yearly["items_count"], 3);
}

#[test]
fn every_breakdown_map_has_the_empty_key() {
    let s = &result(
        Endpoint::Summary,
        json!({"target": "example.com", "internal_list_limit": 3}),
    )[0];
    let h = &result(
        Endpoint::History,
        json!({"target": "example.com", "date_from": "2025-01-01"}),
    )[0]["items"][0];
    let p = &result(
        Endpoint::BulkPagesSummary,
        json!({"targets": ["https://example.com/a"]}),
    )[0]["items"][0];
    for record in [s, h, p] {
        for dim in [
            "tld",
            "types",
            "attributes",
            "platform_types",
            "semantic_locations",
            "countries",
        ] {
            let map = record[format!("referring_links_{dim}")]
                .as_object()
                .unwrap();
            assert!(map.contains_key(""), "{dim}: {map:?}");
            assert!(map.values().all(|v| v.as_i64().unwrap() > 0));
            if std::ptr::eq(record, s) {
                assert!(map.len() <= 3, "{dim}: {map:?}");
            }
        }
    }
}

#[test]
fn bulk_items_are_sorted_by_target() {
    let targets = json!([
        "zeta.com",
        "alpha.com",
        "https://mid.com/x",
        "beta.org",
        "alpha.com"
    ]);
    for endpoint in Endpoint::ALL.into_iter().filter(|e| e.is_bulk()) {
        let r = &result(endpoint, json!({"targets": targets}))[0];
        let key = if endpoint == Endpoint::BulkPagesSummary {
            "url"
        } else {
            "target"
        };
        let got: Vec<&str> = r["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i[key].as_str().unwrap())
            .collect();
        assert_eq!(
            got,
            ["alpha.com", "beta.org", "https://mid.com/x", "zeta.com"],
            "{endpoint}"
        );
        assert_eq!(r["items_count"], 4);
    }
}

#[test]
fn an_unknown_field_gives_invalid_field_with_its_name() {
    let err = build_result(
        Endpoint::Summary,
        &json!({"target": "a.com", "x": 1}),
        day(TODAY),
    )
    .unwrap_err();
    assert_eq!(err, "Invalid Field: 'x'.");
    let err =
        build_result(Endpoint::BulkRanks, &json!({"target": "a.com"}), day(TODAY)).unwrap_err();
    assert_eq!(err, "Invalid Field: 'target'.");
}

#[test]
fn bad_targets_dates_and_types_are_rejected_with_the_field_named() {
    let cases = [
        (Endpoint::Summary, json!({}), "target"),
        (Endpoint::BulkRanks, json!({}), "targets"),
        (
            Endpoint::History,
            json!({"target": "a.com", "date_from": "2018-12-31"}),
            "date_from",
        ),
        (
            Endpoint::History,
            json!({"target": "a.com", "date_from": "2024-13-01"}),
            "date_from",
        ),
        (
            Endpoint::History,
            json!({"target": "https://a.com/p"}),
            "target",
        ),
        (
            Endpoint::TimeseriesSummary,
            json!({"target": "a.com", "date_from": "2019-01-29"}),
            "date_from",
        ),
        (
            Endpoint::TimeseriesSummary,
            json!({"target": "a.com", "group_range": "hour"}),
            "group_range",
        ),
        (
            Endpoint::BulkNewLostBacklinks,
            json!({"targets": ["a.com"], "date_from": "2024-01-01"}),
            "date_from",
        ),
        (
            Endpoint::Summary,
            json!({"target": "a.com", "include_subdomains": "yes"}),
            "include_subdomains",
        ),
        (
            Endpoint::Summary,
            json!({"target": "a.com", "internal_list_limit": 0}),
            "internal_list_limit",
        ),
    ];
    for (endpoint, task, field) in cases {
        let err = build_result(endpoint, &task, day(TODAY)).unwrap_err();
        assert_eq!(err, invalid_field(field), "{endpoint} {task}");
    }
    let many: Vec<String> = (0..1001).map(|i| format!("t{i}.com")).collect();
    let err = build_result(Endpoint::BulkRanks, &json!({"targets": many}), day(TODAY)).unwrap_err();
    assert_eq!(err, invalid_field("targets"));
    let domains: Vec<String> = (0..101).map(|i| format!("https://d{i}.com/p")).collect();
    let err = build_result(
        Endpoint::BulkPagesSummary,
        &json!({"targets": domains}),
        day(TODAY),
    )
    .unwrap_err();
    assert_eq!(err, invalid_field("targets"));
}

#[test]
fn quirk_targets_drift_the_schema_as_documented() {
    let s = |t: &str| result(Endpoint::Summary, json!({"target": t}))[0].clone();
    let unknown = s("quirk-unknown-fields.example.com");
    assert_eq!(unknown["backlinks_velocity"], 12);
    assert_eq!(unknown["info"]["hosting"], "x");
    assert!(unknown["backlinks"].is_i64());
    assert!(s("quirk-wrong-type.example.com")["backlinks"].is_string());
    let nulls = s("https://www.quirk-nulls.example.org/");
    assert!(
        nulls["rank"].is_null() && nulls["backlinks"].is_null() && nulls["first_seen"].is_null()
    );
    assert!(nulls.get("info").is_none() && nulls.get("crawled_pages").is_none());
    assert!(nulls.get("referring_links_countries").is_none());
    let h = &result(
        Endpoint::History,
        json!({"target": "quirk-misspelled.example.com", "date_from": "2024-01-01", "date_to": "2024-12-31"}),
    )[0];
    let item = h["items"][0].as_object().unwrap();
    assert!(
        item.contains_key("new_reffering_domains") && item.contains_key("lost_reffering_domains")
    );
    assert!(!item.contains_key("new_referring_domains"));
    let b = &result(
        Endpoint::BulkNewLostReferringDomains,
        json!({"targets": ["quirk-misspelled.a.com", "plain.com"]}),
    )[0];
    assert_eq!(b["items"][0]["target"], "plain.com");
    assert!(b["items"][0].get("new_referring_domains").is_some());
    assert!(b["items"][1].get("new_reffering_domains").is_some());
}

#[test]
fn rank_scale_one_hundred_is_the_apis_sine_conversion_of_the_0_to_1000_rank() {
    for (rank, hundred) in [
        (0, 0),
        (100, 16),
        (371, 55),
        (500, 71),
        (900, 99),
        (1000, 100),
    ] {
        assert_eq!(show_rank(rank, true), hundred, "{rank}");
        assert_eq!(show_rank(rank, false), rank);
    }
    // The same answer on both scales: every rank converted, nothing else changed.
    let thousand = result(
        Endpoint::BulkPagesSummary,
        json!({"targets": ["https://example.com/a"], "rank_scale": "one_thousand"}),
    );
    let hundred = result(
        Endpoint::BulkPagesSummary,
        json!({"targets": ["https://example.com/a"], "rank_scale": "one_hundred"}),
    );
    let (t, h) = (&thousand[0]["items"][0], &hundred[0]["items"][0]);
    for field in ["rank", "main_domain_rank"] {
        assert_eq!(
            h[field].as_i64().unwrap(),
            show_rank(t[field].as_i64().unwrap(), true),
            "{field}"
        );
    }
    assert_eq!(h["backlinks"], t["backlinks"]);
}

#[test]
fn billed_rows_are_the_items_returned() {
    let r = result(
        Endpoint::BulkRanks,
        json!({"targets": ["a.com", "b.com", "c.com"]}),
    );
    assert_eq!(row_count(Endpoint::BulkRanks, &r), 3);
    let r = result(Endpoint::Summary, json!({"target": "a.com"}));
    assert_eq!(row_count(Endpoint::Summary, &r), 1);
}
