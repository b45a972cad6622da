use std::collections::HashSet;

use super::super::build_result;
use super::*;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

const TODAY: &str = "2026-03-10";

fn answer(endpoint: Endpoint, task: Value, on: &str) -> Value {
    let mut r = build_result(endpoint, &task, day(on)).unwrap();
    r[0].take()
}

/// The first `n{i}.example.com` with at least `min` live backlinks today.
fn target_with(min: u64) -> String {
    targets_with(min, 0)
}

/// The first `n{i}.example.com` from `i = from` with at least `min` live backlinks today.
fn targets_with(min: u64, from: usize) -> String {
    (from..from + 500)
        .map(|i| format!("n{i}.example.com"))
        .find(|t| {
            answer(Endpoint::Backlinks, json!({"target": t, "limit": 1}), TODAY)["total_count"]
                .as_u64()
                .unwrap()
                >= min
        })
        .expect("a target that large")
}

fn urls(r: &Value) -> Vec<String> {
    r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{} -> {}", i["url_from"], i["url_to"]))
        .collect()
}

#[test]
fn pages_by_offset_cover_the_listing_once_and_agree_on_its_total() {
    let t = target_with(1200);
    let first = answer(
        Endpoint::Backlinks,
        json!({"target": t, "limit": 1000}),
        TODAY,
    );
    let total = first["total_count"].as_u64().unwrap();
    let mut seen: Vec<String> = urls(&first);
    let mut offset = 1000;
    while offset < total {
        let r = answer(
            Endpoint::Backlinks,
            json!({"target": t, "limit": 1000, "offset": offset}),
            TODAY,
        );
        assert_eq!(r["total_count"].as_u64(), Some(total));
        assert_eq!(
            r["items_count"].as_u64(),
            Some(r["items"].as_array().unwrap().len() as u64)
        );
        seen.extend(urls(&r));
        offset += 1000;
    }
    assert_eq!(seen.len() as u64, total);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len() as u64, total);
    // Past the end: nothing, the total unchanged.
    let past = answer(
        Endpoint::Backlinks,
        json!({"target": t, "limit": 10, "offset": total}),
        TODAY,
    );
    assert_eq!(past["items_count"], 0);
    assert_eq!(past["total_count"].as_u64(), Some(total));
}

#[test]
fn a_search_after_token_continues_where_its_page_ended_and_only_for_the_same_request() {
    let t = target_with(300);
    let task = json!({"target": t, "limit": 100, "order_by": ["rank,desc"]});
    let first = answer(Endpoint::Backlinks, task.clone(), TODAY);
    let token = first["search_after_token"].as_str().unwrap().to_string();
    let mut next = task.clone();
    next["search_after_token"] = json!(token);
    let by_token = answer(Endpoint::Backlinks, next, TODAY);
    let mut at_100 = task.clone();
    at_100["offset"] = json!(100);
    assert_eq!(
        urls(&by_token),
        urls(&answer(Endpoint::Backlinks, at_100, TODAY))
    );
    // Another request (another sort) cannot use it.
    let other =
        json!({"target": t, "limit": 100, "order_by": ["rank,asc"], "search_after_token": token});
    assert_eq!(
        build_result(Endpoint::Backlinks, &other, day(TODAY)).unwrap_err(),
        "Invalid Field: 'search_after_token'."
    );
    // The last page has none.
    let total = first["total_count"].as_u64().unwrap();
    let last = answer(
        Endpoint::Backlinks,
        json!({"target": t, "limit": 100, "offset": total - 1, "order_by": ["rank,desc"]}),
        TODAY,
    );
    assert_eq!(last["search_after_token"], Value::Null);
}

#[test]
fn offsets_past_the_documented_maximum_are_refused() {
    let r = build_result(
        Endpoint::Backlinks,
        &json!({"target": "a.com", "offset": 20_001}),
        day(TODAY),
    );
    assert_eq!(r.unwrap_err(), "Invalid Field: 'offset'.");
    let r = build_result(
        Endpoint::Backlinks,
        &json!({"target": "a.com", "limit": 1001}),
        day(TODAY),
    );
    assert_eq!(r.unwrap_err(), "Invalid Field: 'limit'.");
}

/// Every link of `t`'s listing on day `d` with `status` (`live` or `lost`), paged by offset.
fn whole_listing(t: &str, status: &str, d: &str) -> HashSet<String> {
    let mut all = HashSet::new();
    let mut offset = 0;
    loop {
        let r = answer(
            Endpoint::Backlinks,
            json!({"target": t, "limit": 1000, "offset": offset, "backlinks_status_type": status}),
            d,
        );
        let page = urls(&r);
        all.extend(page.iter().cloned());
        offset += page.len() as u64;
        if page.is_empty() || offset >= r["total_count"].as_u64().unwrap() {
            return all;
        }
    }
}

#[test]
fn from_one_day_to_the_next_some_links_are_new_and_some_lost() {
    let t = target_with(500);
    // Whole listings: a first page alone would call a link that moved past it "lost".
    let (a, b) = (
        whole_listing(&t, "live", "2026-03-10"),
        whole_listing(&t, "live", "2026-03-11"),
    );
    let new = b.difference(&a).count();
    let lost = a.difference(&b).count();
    assert!(new > 0 && lost > 0, "new {new}, lost {lost}");
    // Most links stay.
    assert!(a.intersection(&b).count() * 2 > a.len());
    // Every link gone on the second day is listed there with backlinks_status_type = lost.
    let lost_list = whole_listing(&t, "lost", "2026-03-11");
    let unlisted: Vec<&String> = a
        .difference(&b)
        .filter(|l| !lost_list.contains(*l))
        .collect();
    assert!(
        unlisted.is_empty(),
        "lost but not listed as lost: {unlisted:?}"
    );
    // And is marked is_lost.
    let gone = a.difference(&b).min().unwrap().clone();
    let url_from: String = serde_json::from_str(gone.split(" -> ").next().unwrap()).unwrap();
    let item = answer(
        Endpoint::Backlinks,
        json!({"target": t, "backlinks_status_type": "lost", "filters": ["url_from", "=", url_from]}),
        "2026-03-11",
    )["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| format!("{} -> {}", i["url_from"], i["url_to"]) == gone)
        .cloned()
        .expect("the lost link is listed as lost");
    assert_eq!(item["is_lost"], true);
}

#[test]
fn filters_and_sorting_are_applied_as_documented() {
    let t = target_with(500);
    let all = answer(Endpoint::Backlinks, json!({"target": t, "limit": 1}), TODAY);
    let r = answer(
        Endpoint::Backlinks,
        json!({
            "target": t,
            "limit": 1000,
            "filters": [["page_from_rank", ">", "55"], "and", ["dofollow", "=", true]],
            "order_by": ["domain_from_rank,desc", "page_from_rank,asc"],
        }),
        TODAY,
    );
    let items = r["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(r["total_count"].as_u64() < all["total_count"].as_u64());
    for i in items {
        assert_eq!(i["dofollow"], true);
        assert!(i["page_from_rank"].as_i64().unwrap() > 55);
    }
    for w in items.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let (ra, rb) = (
            a["domain_from_rank"].as_i64(),
            b["domain_from_rank"].as_i64(),
        );
        assert!(ra >= rb);
        if ra == rb {
            assert!(a["page_from_rank"].as_i64() <= b["page_from_rank"].as_i64());
        }
    }
    // An operator the endpoint does not document is the API's 40501.
    let bad = json!({"target": t, "filters": ["domain", "ilike", "%news%"]});
    assert_eq!(
        build_result(Endpoint::ReferringDomains, &bad, day(TODAY)).unwrap_err(),
        "Invalid Field: 'filters'."
    );
}

#[test]
fn one_per_domain_lists_each_referring_domain_once_with_its_group_count() {
    let t = target_with(500);
    let r = answer(
        Endpoint::Backlinks,
        json!({"target": t, "limit": 1000, "mode": "one_per_domain"}),
        TODAY,
    );
    let items = r["items"].as_array().unwrap();
    let domains: HashSet<&str> = items
        .iter()
        .map(|i| i["domain_from"].as_str().unwrap())
        .collect();
    assert_eq!(domains.len(), items.len());
    let rd = answer(
        Endpoint::ReferringDomains,
        json!({"target": t, "limit": 1000}),
        TODAY,
    );
    assert_eq!(r["total_count"], rd["total_count"]);
    // group_count is the domain's backlinks, as referring_domains counts them.
    let first = &items[0];
    let same = rd["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == first["domain_from"])
        .unwrap();
    assert_eq!(first["group_count"], same["backlinks"]);
}

#[test]
fn the_aggregate_lists_count_the_same_links_as_the_backlinks_list() {
    let t = target_with(300);
    let total = answer(Endpoint::Backlinks, json!({"target": t, "limit": 1}), TODAY)["total_count"]
        .as_i64()
        .unwrap();
    for endpoint in [
        Endpoint::ReferringDomains,
        Endpoint::Anchors,
        Endpoint::DomainPages,
    ] {
        let r = answer(endpoint, json!({"target": t, "limit": 1000}), TODAY);
        let sum: i64 = r["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let agg = if endpoint == Endpoint::DomainPages {
                    &i["page_summary"]
                } else {
                    i
                };
                agg["backlinks"].as_i64().unwrap()
            })
            .sum();
        assert_eq!(sum, total, "{endpoint}");
    }
    // Some pages answer 404 or 301: the wasted links of the fourth workflow.
    let pages = answer(
        Endpoint::DomainPages,
        json!({"target": t, "limit": 1000}),
        TODAY,
    );
    assert!(
        pages["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["status_code"] != 200)
    );
}

#[test]
fn an_intersection_holds_domains_linking_to_every_target_and_none_excluded() {
    let a = target_with(2000);
    let first: usize = a[1..a.find('.').unwrap()].parse().unwrap();
    let b = targets_with(2000, first + 1);
    let r = answer(
        Endpoint::DomainIntersection,
        json!({"targets": {"1": a, "2": b}, "limit": 1000}),
        TODAY,
    );
    let items = r["items"].as_array().unwrap();
    assert!(!items.is_empty(), "no shared referring domains");
    let rd = |t: &str| -> HashSet<String> {
        let mut all = HashSet::new();
        for offset in (0..).step_by(1000) {
            let page = answer(
                Endpoint::ReferringDomains,
                json!({"target": t, "limit": 1000, "offset": offset}),
                TODAY,
            );
            let items = page["items"].as_array().unwrap();
            if items.is_empty() {
                break;
            }
            all.extend(
                items
                    .iter()
                    .map(|d| d["domain"].as_str().unwrap().to_string()),
            );
        }
        all
    };
    let (ra, rb) = (rd(&a), rd(&b));
    for i in items {
        let d = i["domain_intersection"]["1"]["target"].as_str().unwrap();
        assert!(ra.contains(d) && rb.contains(d), "{d}");
        assert_eq!(i["domain_intersection"]["2"]["target"], d);
        assert_eq!(i["summary"]["intersections_count"], 2);
    }
    // `1.backlinks` filters by the first target's figures.
    let f = answer(
        Endpoint::DomainIntersection,
        json!({"targets": {"1": a, "2": b}, "filters": ["1.backlinks", ">", 5]}),
        TODAY,
    );
    for i in f["items"].as_array().unwrap() {
        assert!(i["domain_intersection"]["1"]["backlinks"].as_i64().unwrap() > 5);
    }
    // Excluding the second target's own domains leaves nothing of the first.
    let none = answer(
        Endpoint::DomainIntersection,
        json!({"targets": {"1": a}, "exclude_targets": [a]}),
        TODAY,
    );
    assert_eq!(none["total_count"], 0);
}

#[test]
fn competitors_move_a_little_from_day_to_day_and_leave_out_large_domains() {
    let t = target_with(300);
    let one = answer(Endpoint::Competitors, json!({"target": t}), "2026-03-10");
    let two = answer(Endpoint::Competitors, json!({"target": t}), "2026-03-11");
    assert_ne!(one["items"], two["items"]);
    assert!(one["total_count"].as_u64().unwrap() >= 4);
    let with_large = answer(
        Endpoint::Competitors,
        json!({"target": t, "exclude_large_domains": false}),
        TODAY,
    );
    assert!(with_large["total_count"].as_u64() >= one["total_count"].as_u64());
}
