use super::*;
use serde_json::json;

fn envelope(result: Value) -> Value {
    json!({"status_code": 20000, "tasks": [{"status_code": 20000, "result": [result]}]})
}

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

fn col(batch: &Batch, row: usize, name: &str) -> Cell {
    let cols = batch.table.spec.columns();
    let i = cols.iter().position(|(c, _)| c == name).expect(name);
    batch.table.rows[row][i].clone()
}

#[test]
fn a_summary_becomes_one_row_with_info_columns_and_breakdowns_including_the_empty_key() {
    let req = json!({"target": "example.com", "include_subdomains": true});
    let body = envelope(json!({
        "target": "example.com", "rank": 310, "backlinks": 1200, "first_seen": "2019-11-15 12:57:46 +00:00",
        "info": {"server": "nginx", "platform_type": ["blogs"], "is_ip": false},
        "referring_links_tld": {"com": 10, "": 3}, "referring_links_countries": {"US": 4},
        "unknown_new_field": {"x": 1}
    }));
    let b = normalize(&ctx(Endpoint::Summary, &req), &body).unwrap();
    assert_eq!(b.table.rows.len(), 1);
    assert_eq!(col(&b, 0, "rank"), Cell::Int(310));
    assert_eq!(
        col(&b, 0, "broken_pages"),
        Cell::Null,
        "missing is NULL, not 0"
    );
    assert_eq!(col(&b, 0, "info_server"), Cell::Text("nginx".into()));
    assert_eq!(
        col(&b, 0, "info_platform_type"),
        Cell::TextArray(vec!["blogs".into()])
    );
    assert_eq!(col(&b, 0, "info_cms"), Cell::Null);
    // The options carry the API's defaults for what the request left out.
    assert_eq!(
        col(&b, 0, "options"),
        Cell::Json(Endpoint::Summary.default_options())
    );
    assert_eq!(col(&b, 0, "rank_scale"), Cell::Text("one_thousand".into()));
    assert_eq!(col(&b, 0, "collected_on"), Cell::Date(at().date_naive()));
    assert_eq!(
        col(&b, 0, "first_seen"),
        Cell::Timestamp("2019-11-15T12:57:46Z".parse().unwrap())
    );
    assert_eq!(b.breakdowns.len(), 3);
    assert!(
        b.breakdowns
            .iter()
            .any(|x| x.dimension == "tld" && x.key.is_empty() && x.count == Some(3))
    );
    assert_eq!(b.row_count(), 4);
}

#[test]
fn rows_are_keyed_by_the_options_that_change_the_answer_and_carry_their_rank_scale() {
    let req = json!({"target": "example.com", "date_from": "2024-01-01", "date_to": "2024-02-29",
                     "rank_scale": "one_hundred", "tag": "mine"});
    let body = envelope(json!({"target": "example.com", "items": [
        {"date": "2024-01-01 00:00:00 +00:00", "rank": 42, "referring_links_tld": {"com": 1}}
    ]}));
    let b = normalize(&ctx(Endpoint::History, &req), &body).unwrap();
    // Neither the dates (they choose the months) nor the tag are options.
    assert_eq!(
        col(&b, 0, "options"),
        Cell::Json(json!({"rank_scale": "one_hundred"}))
    );
    assert_eq!(col(&b, 0, "rank_scale"), Cell::Text("one_hundred".into()));
    assert_eq!(b.parents[0].options, json!({"rank_scale": "one_hundred"}));
    // A request that leaves the scale out gets the API's default, one_thousand.
    let req = json!({"targets": ["a.com"]});
    let body = envelope(json!({"items": [{"target": "a.com", "rank": 400}]}));
    let b = normalize(&ctx(Endpoint::BulkRanks, &req), &body).unwrap();
    assert_eq!(
        col(&b, 0, "options"),
        Cell::Json(json!({"rank_scale": "one_thousand"}))
    );
    assert_eq!(col(&b, 0, "rank_scale"), Cell::Text("one_thousand".into()));
    // group_range is a key column of its own, include_subdomains an option.
    let req = json!({"target": "a.com", "date_from": "2024-01-01", "group_range": "week",
                     "include_subdomains": false});
    let body =
        envelope(json!({"target": "a.com", "items": [{"date": "2024-01-07 00:00:00 +00:00"}]}));
    let b = normalize(&ctx(Endpoint::TimeseriesNewLostSummary, &req), &body).unwrap();
    assert_eq!(
        col(&b, 0, "options"),
        Cell::Json(json!({"include_subdomains": false}))
    );
    assert_eq!(col(&b, 0, "group_range"), Cell::Text("week".into()));
}

#[test]
fn a_map_entry_with_a_null_count_is_kept_with_no_count() {
    let req = json!({"target": "example.com"});
    let body = envelope(json!({"target": "example.com",
        "referring_links_types": {"anchor": 5, "": null}}));
    let b = normalize(&ctx(Endpoint::Summary, &req), &body).unwrap();
    let mut got: Vec<(String, Option<i64>)> = b
        .breakdowns
        .iter()
        .map(|x| (x.key.clone(), x.count))
        .collect();
    got.sort();
    assert_eq!(got, [(String::new(), None), ("anchor".into(), Some(5))]);
}

#[test]
fn history_items_are_keyed_by_month_and_the_misspelled_fields_are_read() {
    let req = json!({"target": "example.com"});
    let body = envelope(json!({"target": "example.com", "items": [
        {"date": "2024-01-01 00:00:00 +00:00", "new_reffering_domains": 5, "lost_reffering_domains": 2, "referring_links_tld": {"": 1}},
        {"date": "2024-02-01 00:00:00 +00:00", "new_referring_domains": 6}
    ]}));
    let b = normalize(&ctx(Endpoint::History, &req), &body).unwrap();
    assert_eq!(b.table.rows.len(), 2);
    assert_eq!(
        col(&b, 0, "month"),
        Cell::Date(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap())
    );
    assert_eq!(col(&b, 0, "new_referring_domains"), Cell::Int(5));
    assert_eq!(col(&b, 0, "lost_referring_domains"), Cell::Int(2));
    assert_eq!(col(&b, 1, "new_referring_domains"), Cell::Int(6));
    assert_eq!(b.parents.len(), 2);
    assert_eq!(b.breakdowns.len(), 1);
}

#[test]
fn bulk_items_are_matched_by_their_own_target_and_new_lost_rows_carry_the_requested_date_from() {
    let req = json!({"targets": ["b.com", "a.com"], "date_from": "2026-10-25"});
    let body = envelope(json!({"items_count": 2, "items": [
        {"target": "a.com", "new_backlinks": 1, "lost_backlinks": 2},
        {"target": "b.com", "new_backlinks": 3, "lost_backlinks": null}
    ]}));
    let b = normalize(&ctx(Endpoint::BulkNewLostBacklinks, &req), &body).unwrap();
    assert_eq!(col(&b, 0, "target"), Cell::Text("a.com".into()));
    assert_eq!(col(&b, 1, "target"), Cell::Text("b.com".into()));
    assert_eq!(col(&b, 1, "lost_backlinks"), Cell::Null);
    assert_eq!(
        col(&b, 0, "date_from"),
        Cell::Date(NaiveDate::from_ymd_opt(2026, 10, 25).unwrap())
    );
}

#[test]
fn a_repeated_key_keeps_the_last_row_and_only_its_breakdowns() {
    let req = json!({"targets": ["https://a.com/x"]});
    let body = envelope(json!({"items": [
        {"url": "https://a.com/x", "rank": 1, "referring_links_tld": {"com": 1}},
        {"url": "https://a.com/x", "rank": 2, "referring_links_tld": {"org": 2}}
    ]}));
    let b = normalize(&ctx(Endpoint::BulkPagesSummary, &req), &body).unwrap();
    assert_eq!(b.table.rows.len(), 1);
    assert_eq!(col(&b, 0, "rank"), Cell::Int(2));
    assert_eq!(b.breakdowns.len(), 1);
    assert_eq!(b.breakdowns[0].key, "org");
}

#[test]
fn a_failed_task_or_a_null_result_gives_no_rows() {
    let req = json!({"target": "example.com"});
    let body = json!({"status_code": 20000, "tasks": [{"status_code": 40501, "result": null}]});
    let b = normalize(&ctx(Endpoint::Summary, &req), &body).unwrap();
    assert_eq!(b.row_count(), 0);
}

#[test]
fn status_codes_are_read_as_leniently_as_the_client_reads_them() {
    let req = json!({"target": "example.com"});
    let result = json!({"target": "example.com", "backlinks": 5});
    // Codes written as strings still say ok.
    let strings =
        json!({"status_code": "20000", "tasks": [{"status_code": "20000", "result": [result]}]});
    let batch = normalize(&ctx(Endpoint::Summary, &req), &strings).unwrap();
    assert_eq!(batch.row_count(), 1);
    // A task without a code is loaded under an envelope that says ok...
    let top_only = json!({"status_code": 20000, "tasks": [{"result": [result]}]});
    let batch = normalize(&ctx(Endpoint::Summary, &req), &top_only).unwrap();
    assert_eq!(batch.row_count(), 1);
    // ...but an answer that says ok nowhere gives no rows, as it failed live.
    let silent = json!({"cost": 0.02, "tasks": [{"result": [result]}]});
    let batch = normalize(&ctx(Endpoint::Summary, &req), &silent).unwrap();
    assert_eq!(batch.row_count(), 0);
}

#[test]
fn every_table_has_columns_named_once() {
    for t in TABLES {
        let cols = t.columns();
        let mut names: Vec<_> = cols.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), cols.len(), "{}", t.name);
    }
}

/// The items an answer set aside: (path, why).
fn rejects(b: &Batch) -> Vec<(String, String)> {
    b.rejected
        .iter()
        .map(|r| (r.path.clone(), r.why.clone()))
        .collect()
}

/// The `i`th item set aside, as it came.
fn rejected_item(b: &Batch, i: usize) -> Value {
    b.rejected[i].item.clone()
}

#[test]
fn a_null_item_is_set_aside_and_the_rest_of_the_answer_loads() {
    let req = json!({"target": "example.com"});
    let body = envelope(json!({"target": "example.com", "items": [
        {"date": "2024-01-01 00:00:00 +00:00", "backlinks": 10},
        null,
        {"date": "2024-03-01 00:00:00 +00:00", "backlinks": 30}
    ]}));
    let b = normalize(&ctx(Endpoint::History, &req), &body).expect("the answer loads");
    assert_eq!(b.table.rows.len(), 2);
    assert_eq!(col(&b, 1, "backlinks"), Cell::Int(30));
    assert_eq!(
        rejects(&b),
        [(
            "tasks[0].result[0].items[1]".to_string(),
            "expected object, found null".to_string()
        )]
    );
    assert_eq!(rejected_item(&b, 0), Value::Null);
}

#[test]
fn a_history_or_timeseries_item_without_a_readable_date_is_set_aside_with_its_path_and_why() {
    let req = json!({"target": "example.com", "date_from": "2024-01-01"});
    let body = envelope(json!({"target": "example.com", "items": [
        {"date": null, "backlinks": 1},
        {"date": "2024-02-01 00:00:00 +00:00", "backlinks": 2, "referring_links_tld": {"com": 2}},
        {"date": 20240301, "backlinks": 3},
        {"date": "last month", "backlinks": 4},
        {"backlinks": 5}
    ]}));
    let b = normalize(&ctx(Endpoint::History, &req), &body).expect("the answer loads");
    assert_eq!(b.table.rows.len(), 1);
    assert_eq!(col(&b, 0, "backlinks"), Cell::Int(2));
    assert_eq!((b.parents.len(), b.breakdowns.len()), (1, 1));
    let items = |i: usize| format!("tasks[0].result[0].items[{i}]");
    assert_eq!(
        rejects(&b),
        [
            (items(0), "date: expected string, found null".to_string()),
            (items(2), "date: expected string, found integer".to_string()),
            (items(3), "date: not a date: \"last month\"".to_string()),
            (items(4), "date: missing".to_string()),
        ]
    );
    assert_eq!(rejected_item(&b, 0), json!({"date": null, "backlinks": 1}));
    for endpoint in [
        Endpoint::TimeseriesSummary,
        Endpoint::TimeseriesNewLostSummary,
    ] {
        let body = envelope(json!({"target": "example.com", "items": [
            {"date": "2024-01-31 00:00:00 +00:00"},
            {"date": null},
            {"date": "2024-03-31 00:00:00 +00:00"}
        ]}));
        let b = normalize(&ctx(endpoint, &req), &body).expect("the answer loads");
        assert_eq!(b.table.rows.len(), 2, "{endpoint}");
        assert_eq!(
            rejects(&b),
            [(items(1), "date: expected string, found null".to_string())],
            "{endpoint}"
        );
    }
}

#[test]
fn a_bulk_item_whose_target_is_null_or_not_a_string_is_set_aside_and_every_other_target_loads() {
    let targets: Vec<String> = (0..1000).map(|i| format!("d{i}.com")).collect();
    let req = json!({ "targets": targets });
    let mut items: Vec<Value> = targets
        .iter()
        .map(|t| json!({"target": t, "rank": 7}))
        .collect();
    items[3] = json!({"target": null, "rank": 7});
    items[998] = json!({"target": 42, "rank": 7});
    let body = envelope(json!({ "items": items }));
    let b = normalize(&ctx(Endpoint::BulkRanks, &req), &body).expect("the answer loads");
    assert_eq!(b.table.rows.len(), 998);
    assert_eq!(
        rejects(&b),
        [
            (
                "tasks[0].result[0].items[3]".to_string(),
                "target: expected string, found null".to_string()
            ),
            (
                "tasks[0].result[0].items[998]".to_string(),
                "target: expected string, found integer".to_string()
            ),
        ]
    );
    // The pages summary is keyed by its item's `url`.
    let req = json!({"targets": ["https://a.com/x", "https://a.com/y"]});
    let body = envelope(json!({"items": [
        {"url": "https://a.com/x", "rank": 1, "referring_links_tld": {"com": 1}},
        {"url": null, "rank": 2, "referring_links_tld": {"org": 2}}
    ]}));
    let b = normalize(&ctx(Endpoint::BulkPagesSummary, &req), &body).expect("the answer loads");
    assert_eq!((b.table.rows.len(), b.breakdowns.len()), (1, 1));
    assert_eq!(
        rejects(&b),
        [(
            "tasks[0].result[0].items[1]".to_string(),
            "url: expected string, found null".to_string()
        )]
    );
}

#[test]
fn an_item_with_a_field_of_the_wrong_type_is_set_aside_whole_and_the_others_load() {
    let req = json!({"targets": ["a.com", "b.com", "c.com", "d.com"], "date_from": "2026-10-25"});
    let body = envelope(json!({"items": [
        {"target": "a.com", "new_backlinks": 1},
        {"target": "b.com", "new_backlinks": "12345"},
        {"target": "c.com", "new_backlinks": 3},
        {"target": "d.com", "lost_backlinks": [1]}
    ]}));
    let b = normalize(&ctx(Endpoint::BulkNewLostBacklinks, &req), &body).expect("the answer loads");
    assert_eq!(b.table.rows.len(), 2);
    assert_eq!(col(&b, 1, "target"), Cell::Text("c.com".into()));
    assert_eq!(
        rejects(&b),
        [
            (
                "tasks[0].result[0].items[1]".to_string(),
                "new_backlinks: expected integer, found string".to_string()
            ),
            (
                "tasks[0].result[0].items[3]".to_string(),
                "lost_backlinks: expected integer, found array".to_string()
            ),
        ]
    );
    // `info` and the breakdown maps are the item's fields too: no row, no breakdowns.
    let req = json!({"target": "example.com"});
    let body = envelope(json!({"target": "example.com", "items": [
        {"date": "2024-01-01 00:00:00 +00:00", "info": "nginx", "referring_links_tld": {"com": 1}},
        {"date": "2024-02-01 00:00:00 +00:00", "referring_links_tld": {"com": "many"}},
        {"date": "2024-03-01 00:00:00 +00:00", "referring_links_types": ["anchor"]},
        {"date": "2024-04-01 00:00:00 +00:00", "referring_links_tld": {"org": 4}}
    ]}));
    let b = normalize(&ctx(Endpoint::History, &req), &body).expect("the answer loads");
    assert_eq!(b.table.rows.len(), 1);
    assert_eq!((b.parents.len(), b.breakdowns.len()), (1, 1));
    assert_eq!(b.breakdowns[0].key, "org");
    let items = |i: usize| format!("tasks[0].result[0].items[{i}]");
    assert_eq!(
        rejects(&b),
        [
            (items(0), "info: expected object, found string".to_string()),
            (
                items(1),
                "referring_links_tld[\"com\"]: expected integer, found string".to_string()
            ),
            (
                items(2),
                "referring_links_types: expected object, found array".to_string()
            ),
        ]
    );
}

#[test]
fn a_summary_result_is_its_one_item_and_is_set_aside_when_it_cannot_be_read() {
    let req = json!({"target": "example.com"});
    let body = json!({"status_code": 20000, "tasks": [{"status_code": 20000, "result": [
        {"target": "example.com", "backlinks": "12345"},
        null
    ]}]});
    let b = normalize(&ctx(Endpoint::Summary, &req), &body).expect("the answer loads");
    assert_eq!(b.row_count(), 0);
    assert_eq!(
        rejects(&b),
        [
            (
                "tasks[0].result[0]".to_string(),
                "backlinks: expected integer, found string".to_string()
            ),
            (
                "tasks[0].result[1]".to_string(),
                "expected object, found null".to_string()
            ),
        ]
    );
}

#[test]
fn a_null_outside_the_key_is_a_null_column_and_its_item_loads() {
    let req = json!({"target": "example.com"});
    let body = envelope(json!({"target": "example.com", "items": [
        {"date": "2024-01-01 00:00:00 +00:00", "rank": null, "backlinks": null, "info": null,
         "referring_links_tld": null, "referring_links_types": {"anchor": null}}
    ]}));
    let b = normalize(&ctx(Endpoint::History, &req), &body).unwrap();
    assert_eq!(b.table.rows.len(), 1);
    for c in ["rank", "backlinks", "info_server", "info_is_ip"] {
        assert_eq!(col(&b, 0, c), Cell::Null, "{c}");
    }
    assert_eq!(b.breakdowns.len(), 1);
    assert_eq!(b.breakdowns[0].count, None);
}

#[test]
fn an_envelope_that_cannot_be_read_fails_the_whole_answer_with_its_path() {
    let req = json!({"target": "example.com"});
    let cases = [
        (
            json!({"status_code": 20000, "tasks": {"result": []}}),
            "tasks",
        ),
        (json!({"status_code": 20000, "tasks": [null]}), "tasks[0]"),
        (
            json!({"status_code": 20000, "tasks": [{"status_code": 20000, "result": {"items": []}}]}),
            "tasks[0].result",
        ),
        (
            json!({"status_code": 20000, "tasks": [{"status_code": 20000, "result": [null]}]}),
            "tasks[0].result[0]",
        ),
        (
            envelope(json!({"target": "example.com", "items": {"date": "2024-01-01"}})),
            "tasks[0].result[0].items",
        ),
        (
            envelope(json!({"target": 42, "items": []})),
            "tasks[0].result[0].target",
        ),
    ];
    for (body, path) in cases {
        let e = normalize(&ctx(Endpoint::History, &req), &body).unwrap_err();
        assert_eq!(e.path, path, "{e}");
    }
}
