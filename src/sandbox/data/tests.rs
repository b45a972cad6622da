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

/// The result of `task` on `today`.
fn result_on(endpoint: Endpoint, task: Value, today: &str) -> Value {
    build_result(endpoint, &task, day(today)).unwrap()[0].clone()
}

/// The days the items of a history or timeseries result are dated, in order.
fn item_days(r: &Value) -> Vec<String> {
    r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["date"].as_str().unwrap()[..10].to_string())
        .collect()
}

/// The item of a history or timeseries result dated `date`.
fn item_on<'r>(r: &'r Value, date: &str) -> &'r Value {
    r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["date"].as_str().is_some_and(|d| d.starts_with(date)))
        .unwrap_or_else(|| panic!("no item on {date}: {r}"))
}

/// Every bulk endpoint with `targets` (no `date_from`: the default one is valid).
fn bulk_results(targets: &[&str]) -> Vec<(Endpoint, Value)> {
    Endpoint::ALL
        .into_iter()
        .filter(|e| e.is_bulk())
        .map(|e| (e, result(e, json!({ "targets": targets }))[0].clone()))
        .collect()
}

#[test]
fn quirk_missing_period_leaves_out_the_middle_period_of_history_and_timeseries() {
    let year_2024 = json!({"target": "quirk-missing-period.example.com", "date_from": "2024-01-01", "date_to": "2024-12-31"});
    let h = result(Endpoint::History, year_2024);
    let h = &h[0];
    let months: Vec<String> = [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]
        .iter()
        .map(|m| format!("2024-{m:02}-01"))
        .collect();
    assert_eq!(item_days(h), months, "July, index 12/2, is missing");
    assert_eq!(h["items_count"], 11);
    assert_eq!(row_count(Endpoint::History, &json!([h])), 11);
    assert_eq!(
        (&h["date_from"], &h["date_to"]),
        (&json!("2024-01-01"), &json!("2024-12-31"))
    );
    // The months that are there are the ones a one-month answer holds.
    let january = &result(
        Endpoint::History,
        json!({"target": "quirk-missing-period.example.com", "date_from": "2024-01-01", "date_to": "2024-01-31"}),
    )[0];
    assert_eq!(
        item_days(january),
        ["2024-01-01"],
        "one month: none missing"
    );
    assert_eq!(january["items"][0], h["items"][0]);

    let weekly = &result(
        Endpoint::TimeseriesSummary,
        json!({"target": "quirk-missing-period.example.com", "date_from": "2025-05-01", "date_to": "2025-05-31", "group_range": "week"}),
    )[0];
    assert_eq!(
        item_days(weekly),
        ["2025-05-04", "2025-05-11", "2025-05-25", "2025-06-01"]
    );
    assert_eq!(weekly["items_count"], 4);
    let monthly = &result(
        Endpoint::TimeseriesNewLostSummary,
        json!({"target": "quirk-missing-period.example.com", "date_from": "2024-01-15", "date_to": "2024-04-02"}),
    )[0];
    assert_eq!(
        item_days(monthly),
        ["2024-01-31", "2024-02-29", "2024-04-30"]
    );
    assert_eq!(monthly["items_count"], 3);

    // Without the label every period is there.
    let plain = &result(
        Endpoint::TimeseriesSummary,
        json!({"target": "example.com", "date_from": "2025-05-01", "date_to": "2025-05-31", "group_range": "week"}),
    )[0];
    assert_eq!(
        item_days(plain),
        [
            "2025-05-04",
            "2025-05-11",
            "2025-05-18",
            "2025-05-25",
            "2025-06-01"
        ]
    );
    assert_eq!(plain["items_count"], 5);
}

#[test]
fn quirk_empty_answers_with_no_items_and_leaves_the_targets_bulk_item_out() {
    let h = &result(
        Endpoint::History,
        json!({"target": "quirk-empty.example.com", "date_from": "2024-01-01", "date_to": "2024-12-31"}),
    )[0];
    assert_eq!(
        h,
        &json!({
            "target": "quirk-empty.example.com",
            "date_from": "2024-01-01",
            "date_to": "2024-12-31",
            "items_count": 0,
            "items": [],
        })
    );
    for endpoint in [
        Endpoint::TimeseriesSummary,
        Endpoint::TimeseriesNewLostSummary,
    ] {
        let t = &result(
            endpoint,
            json!({"target": "quirk-empty.example.com", "date_from": "2025-05-01", "group_range": "day"}),
        )[0];
        assert_eq!(t["items"], json!([]), "{endpoint}");
        assert_eq!(t["items_count"], 0);
        assert_eq!(t["group_range"], "day");
        assert_eq!(t["date_to"], TODAY);
        assert_eq!(row_count(endpoint, &json!([t])), 0);
    }

    let with = bulk_results(&["b.com", "quirk-empty.a.com", "c.com"]);
    let without = bulk_results(&["b.com", "c.com"]);
    for ((endpoint, with), (_, without)) in with.iter().zip(&without) {
        assert_eq!(with, without, "{endpoint}: as if it had not been asked");
        assert_eq!(with["items_count"], 2, "{endpoint}");
        assert_eq!(row_count(*endpoint, &json!([with])), 2);
    }
    let pages = &with[with.len() - 1];
    assert_eq!(pages.0, Endpoint::BulkPagesSummary);
    assert_eq!(pages.1["total_count"], 2);
}

#[test]
fn quirk_lag_n_leaves_out_what_is_dated_after_today_less_n_days() {
    let daily = |target: &str, today: &str| {
        result_on(
            Endpoint::TimeseriesSummary,
            json!({"target": target, "date_from": "2025-06-01", "group_range": "day"}),
            today,
        )
    };
    let days = |from: u32, to: u32| -> Vec<String> {
        (from..=to).map(|d| format!("2025-06-{d:02}")).collect()
    };
    let lagging = daily("quirk-lag-3.example.com", "2025-06-15");
    assert_eq!(item_days(&lagging), days(1, 12));
    assert_eq!(lagging["items_count"], 12);
    assert_eq!(lagging["date_to"], "2025-06-15");
    assert_eq!(
        item_days(&daily("quirk-lag-3.example.com", "2025-06-16")),
        days(1, 13)
    );
    assert_eq!(
        item_days(&daily("quirk-lag-31.example.com", "2025-07-02")),
        days(1, 1)
    );
    // What is indexed is as it would be without the lag: the same figures.
    assert_eq!(
        item_on(&lagging, "2025-06-05"),
        item_on(
            &daily("quirk-lag-3.example.com", "2025-06-30"),
            "2025-06-05"
        )
    );

    // A monthly period is dated its last day: the running month is not indexed yet.
    let monthly = result_on(
        Endpoint::TimeseriesNewLostSummary,
        json!({"target": "quirk-lag-1.example.com", "date_from": "2025-04-01"}),
        "2025-06-15",
    );
    assert_eq!(item_days(&monthly), ["2025-04-30", "2025-05-31"]);

    // History items are dated the first of their month.
    let history = |today: &str| {
        result_on(
            Endpoint::History,
            json!({"target": "quirk-lag-3.example.com", "date_from": "2025-03-01"}),
            today,
        )
    };
    assert_eq!(
        item_days(&history("2025-06-03")),
        ["2025-03-01", "2025-04-01", "2025-05-01"]
    );
    assert_eq!(history("2025-06-03")["items_count"], 3);
    assert_eq!(
        item_days(&history("2025-06-04")),
        ["2025-03-01", "2025-04-01", "2025-05-01", "2025-06-01"]
    );

    // Without the label, or with N out of 1..=31 or not plainly written, nothing lags.
    for plain in [
        "example.com",
        "quirk-lag-0.example.com",
        "quirk-lag-32.example.com",
        "quirk-lag-03.example.com",
        "quirk-lag.example.com",
        "a.quirk-lag-3.example.com",
    ] {
        assert_eq!(
            item_days(&daily(plain, "2025-06-15")),
            days(1, 15),
            "{plain}"
        );
    }
}

#[test]
fn quirk_revised_changes_the_last_seven_days_figures_from_one_day_to_the_next_and_no_older_ones() {
    let target = "quirk-revised.example.com";
    let unrevised = |date: &str| numbers::snapshot(target, day(date), 1.0).backlinks;
    let daily = |today: &str| {
        result_on(
            Endpoint::TimeseriesSummary,
            json!({"target": target, "date_from": "2025-06-01", "date_to": "2025-06-14", "group_range": "day"}),
            today,
        )
    };
    let (sunday, monday) = (daily("2025-06-15"), daily("2025-06-16"));
    assert_eq!(item_days(&sunday), item_days(&monday));
    assert_eq!(sunday["items_count"], 14);
    // Dated 06-09 to 06-14: revised on both days, with other figures each day.
    for date in ["2025-06-09", "2025-06-10", "2025-06-14"] {
        let (m, t) = (item_on(&sunday, date), item_on(&monday, date));
        assert_ne!(m["backlinks"], t["backlinks"], "{date}");
        assert_ne!(m["backlinks"], unrevised(date), "{date}");
        assert_ne!(t["backlinks"], unrevised(date), "{date}");
        assert_eq!(m["date"], t["date"]);
    }
    // 06-08 is seven days before the 15th, but eight before the 16th: settled then.
    let (m, t) = (
        item_on(&sunday, "2025-06-08"),
        item_on(&monday, "2025-06-08"),
    );
    assert_ne!(m["backlinks"], t["backlinks"]);
    assert_eq!(t["backlinks"], unrevised("2025-06-08"));
    // Older items are the same every day, the figures they always had.
    for date in ["2025-06-01", "2025-06-07"] {
        assert_eq!(item_on(&sunday, date), item_on(&monday, date), "{date}");
        assert_eq!(item_on(&sunday, date)["backlinks"], unrevised(date));
    }
    // The same day gives the same revision.
    assert_eq!(daily("2025-06-15"), sunday);

    let history = |today: &str| {
        result_on(
            Endpoint::History,
            json!({"target": target, "date_from": "2025-05-01", "date_to": "2025-06-30"}),
            today,
        )
    };
    let (thursday, friday, later) = (
        history("2025-06-05"),
        history("2025-06-06"),
        history("2025-06-09"),
    );
    let june = |r: &Value| item_on(r, "2025-06-01")["backlinks"].clone();
    let may = |r: &Value| item_on(r, "2025-05-01").clone();
    assert_ne!(june(&thursday), june(&friday));
    assert_eq!(
        june(&later),
        unrevised("2025-06-01"),
        "settled after 7 days"
    );
    assert_eq!(may(&thursday), may(&friday));
    assert_eq!(may(&friday), may(&later));

    // Without the label a period has the same figures whatever the day.
    let plain = |today: &str| {
        result_on(
            Endpoint::TimeseriesSummary,
            json!({"target": "example.com", "date_from": "2025-06-01", "date_to": "2025-06-14", "group_range": "day"}),
            today,
        )
    };
    assert_eq!(plain("2025-06-15"), plain("2025-06-16"));
}

#[test]
fn quirk_null_item_sends_null_for_the_second_item_or_the_bulk_targets_item() {
    let h = &result(
        Endpoint::History,
        json!({"target": "quirk-null-item.example.com", "date_from": "2024-01-01", "date_to": "2024-03-31"}),
    )[0];
    let items = h["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items[1].is_null(), "{h}");
    assert_eq!(items[0]["date"], "2024-01-01 00:00:00 +00:00");
    assert_eq!(items[2]["date"], "2024-03-01 00:00:00 +00:00");
    assert_eq!(h["items_count"], 3, "the null is an item of the array");
    let one = &result(
        Endpoint::TimeseriesNewLostSummary,
        json!({"target": "quirk-null-item.example.com", "date_from": "2025-06-10", "date_to": "2025-06-10", "group_range": "day"}),
    )[0];
    assert_eq!(one["items"], json!([null]));
    assert_eq!(one["items_count"], 1);
    let weekly = &result(
        Endpoint::TimeseriesSummary,
        json!({"target": "quirk-null-item.example.com", "date_from": "2025-05-01", "date_to": "2025-05-31", "group_range": "week"}),
    )[0];
    let nulls: Vec<bool> = weekly["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::is_null)
        .collect();
    assert_eq!(nulls, [false, true, false, false, false]);

    // Sorted by target, the quirk's item is the last; the others are as without it.
    let with = bulk_results(&["b.com", "quirk-null-item.a.com", "c.com"]);
    let without = bulk_results(&["b.com", "c.com"]);
    for ((endpoint, with), (_, without)) in with.iter().zip(&without) {
        let items = with["items"].as_array().unwrap();
        assert_eq!(items.len(), 3, "{endpoint}");
        assert!(items[2].is_null(), "{endpoint}: {with}");
        assert_eq!(
            items[..2],
            without["items"].as_array().unwrap()[..],
            "{endpoint}"
        );
        assert_eq!(with["items_count"], 3);
    }
}

#[test]
fn quirk_null_key_nulls_the_date_of_the_second_item_or_the_bulk_targets_key() {
    let plain_keys = |r: &Value| {
        r["items"][0]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    let h = &result(
        Endpoint::History,
        json!({"target": "quirk-null-key.example.com", "date_from": "2024-01-01", "date_to": "2024-03-31"}),
    )[0];
    let dates: Vec<&Value> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["date"])
        .collect();
    assert_eq!(
        dates,
        [
            &json!("2024-01-01 00:00:00 +00:00"),
            &Value::Null,
            &json!("2024-03-01 00:00:00 +00:00")
        ]
    );
    let second: Vec<String> = h["items"][1].as_object().unwrap().keys().cloned().collect();
    assert_eq!(second, plain_keys(h), "the key is there, null");
    assert!(h["items"][1]["backlinks"].is_i64());
    let one = &result(
        Endpoint::TimeseriesSummary,
        json!({"target": "quirk-null-key.example.com", "date_from": "2025-06-10", "date_to": "2025-06-10", "group_range": "day"}),
    )[0];
    assert!(one["items"][0]["date"].is_null(), "{one}");
    assert!(one["items"][0]["backlinks"].is_i64());

    let with = bulk_results(&["b.com", "quirk-null-key.a.com", "c.com"]);
    let without = bulk_results(&["b.com", "c.com"]);
    for ((endpoint, with), (_, without)) in with.iter().zip(&without) {
        let key = if *endpoint == Endpoint::BulkPagesSummary {
            "url"
        } else {
            "target"
        };
        let items = with["items"].as_array().unwrap();
        assert!(items[2][key].is_null(), "{endpoint}: {with}");
        assert_eq!(
            items[2].as_object().unwrap().keys().collect::<Vec<_>>(),
            items[0].as_object().unwrap().keys().collect::<Vec<_>>(),
            "{endpoint}"
        );
        assert_eq!(
            items[..2],
            without["items"].as_array().unwrap()[..],
            "{endpoint}"
        );
    }
}
