//! The list endpoints held to their documents, over HTTP through the real client: the
//! endpoint table takes exactly the documented request fields; the sandbox answers
//! with exactly the documented result and item fields, charges the API's price per
//! returned row, serves the endpoint reference's example requests, and pages a long
//! listing by `offset` up to its maximum and then by `search_after_token`, each link
//! once. The documents are fixtures in `tests/fixtures/reference/`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use linkledger::api::{Client, Endpoint};
use linkledger::sandbox::{Sandbox, price};
use serde_json::{Value, json};

use crate::common::*;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reference")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `api-fields-lists.md`, read: per endpoint, per class (`BacklinksBacklinksLiveItem`,
/// `PageSummary`, ...), its field names.
fn list_docs() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let text = fixture("api-fields-lists.md");
    let mut docs: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let (mut endpoint, mut class) = (String::new(), String::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("## POST /v3/backlinks/") {
            endpoint = rest
                .strip_suffix("/live")
                .expect("a live endpoint")
                .to_string();
        } else if let Some(rest) = line.strip_prefix("#### `") {
            class = rest.split('`').next().unwrap().to_string();
        } else if let Some(rest) = line.strip_prefix("| `") {
            let name = rest.split('`').next().unwrap().to_string();
            docs.entry(endpoint.clone())
                .or_default()
                .entry(class.clone())
                .or_default()
                .insert(name);
        }
    }
    docs
}

/// The properties of one schema of `seed-json-schema.txt`, read as text (the excerpt
/// is cut short, so not JSON as a whole): the keys one level inside its `properties`.
fn schema_properties(name: &str) -> BTreeSet<String> {
    let text = fixture("seed-json-schema.txt");
    let mut lines = text
        .lines()
        .skip_while(|l| l.trim() != format!("\"{name}\": {{"))
        .skip(1);
    let (mut depth, mut names) = (1, BTreeSet::new());
    for line in lines.by_ref() {
        let l = line.trim();
        if l.ends_with('{') {
            if depth == 2
                && let Some(key) = l.strip_prefix('"').and_then(|r| r.split('"').next())
            {
                names.insert(key.to_string());
            }
            depth += 1;
        } else if l.starts_with('}') {
            depth -= 1;
            if depth == 0 {
                break;
            }
        }
    }
    assert!(!names.is_empty(), "{name} in seed-json-schema.txt");
    names
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn client(sb: &Sandbox) -> Client {
    Client::with_credentials(&api_config(sb, 8), &sandbox_credentials()).unwrap()
}

/// One task to `endpoint` over HTTP: the whole answer body.
async fn call(client: &Client, endpoint: Endpoint, task: &Value) -> Value {
    let permit = client.acquire().await;
    let answer = client
        .send(&permit, endpoint, task)
        .await
        .unwrap_or_else(|a| panic!("no answer: {a:?}"));
    let attempt = client.read(answer).await;
    attempt.body.expect("a JSON body")
}

/// The result of an answer that must have succeeded.
fn result(body: &Value) -> &Value {
    assert_eq!(body["tasks"][0]["status_code"], 20000, "{body}");
    &body["tasks"][0]["result"][0]
}

/// The first `n{i}.example.com` with at least `min` live backlinks (on the sandbox's day).
async fn target_with(client: &Client, min: u64) -> String {
    for i in 0..300 {
        let t = format!("n{i}.example.com");
        let body = call(
            client,
            Endpoint::Backlinks,
            &json!({"target": t, "limit": 1}),
        )
        .await;
        if result(&body)["total_count"].as_u64().unwrap() >= min {
            return t;
        }
    }
    panic!("no target with {min} backlinks");
}

#[test]
fn every_list_endpoint_takes_exactly_its_documented_request_fields() {
    let docs = list_docs();
    for endpoint in Endpoint::LISTS {
        let doc = &docs[endpoint.name()];
        let (_, documented) = doc
            .iter()
            .find(|(class, _)| class.ends_with("RequestInfo"))
            .unwrap();
        let mut ours: BTreeSet<String> = endpoint.params().iter().map(|p| p.name.into()).collect();
        ours.insert(if endpoint == Endpoint::DomainIntersection {
            "targets".into()
        } else {
            "target".into()
        });
        assert_eq!(&ours, documented, "{endpoint}");
    }
}

#[tokio::test]
async fn the_sandbox_answers_every_list_endpoint_with_exactly_its_documented_fields() {
    let docs = list_docs();
    let sb = default_sandbox().await;
    let client = client(&sb);
    let t = target_with(&client, 200).await;
    let class = |e: Endpoint, suffix: &str| -> BTreeSet<String> {
        docs[e.name()]
            .iter()
            .find(|(c, _)| c.ends_with(suffix))
            .unwrap_or_else(|| panic!("{e}: a class ending {suffix}"))
            .1
            .clone()
    };
    for endpoint in Endpoint::LISTS {
        let task = if endpoint == Endpoint::DomainIntersection {
            json!({"targets": {"1": t, "2": "n1.example.com"}, "limit": 5})
        } else {
            json!({"target": t, "limit": 5})
        };
        let body = call(&client, endpoint, &task).await;
        let r = result(&body);
        assert_eq!(
            keys(r),
            class(endpoint, "LiveResultInfo"),
            "{endpoint}: result"
        );
        let items = r["items"].as_array().unwrap();
        assert!(!items.is_empty(), "{endpoint}: no items");
        assert_eq!(r["items_count"].as_u64(), Some(items.len() as u64));
        for item in items {
            assert_eq!(keys(item), class(endpoint, "LiveItem"), "{endpoint}: item");
        }
        let item = &items[0];
        match endpoint {
            Endpoint::Backlinks => {
                let docs = &docs["backlinks"];
                assert_eq!(
                    keys(&item["ranked_keywords_info"]),
                    docs["RankedKeywordsInfo"]
                );
            }
            Endpoint::DomainPages => {
                let docs = &docs["domain_pages"];
                assert_eq!(keys(&item["meta"]), docs["BacklinksPageMeta"]);
                assert_eq!(keys(&item["page_summary"]), docs["PageSummary"]);
            }
            Endpoint::DomainIntersection => {
                let docs = &docs["domain_intersection"];
                assert_eq!(keys(&item["summary"]), docs["IntersectionSummaryInfo"]);
                let one = &item["domain_intersection"]["1"];
                assert_eq!(keys(one), schema_properties("BacklinksDomainIntersection"));
            }
            _ => {}
        }
    }
    // An indirect link's path, where one is on the first thousand.
    let body = call(
        &client,
        Endpoint::Backlinks,
        &json!({"target": t, "limit": 1000}),
    )
    .await;
    let path = result(&body)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|i| i["indirect_link_path"].as_array().cloned())
        .expect("an indirect link");
    assert_eq!(keys(&path[0]), docs["backlinks"]["BacklinksRedirectInfo"]);
    sb.stop().await;
}

#[tokio::test]
async fn the_endpoint_references_example_requests_are_answered_and_charged_per_row() {
    let sb = default_sandbox().await;
    let client = client(&sb);
    // seed-endpoint-reference.txt's examples, as the raw API takes them: its note on
    // domain_intersection says the array of targets goes as a numbered map.
    let reference = fixture("seed-endpoint-reference.txt");
    let examples = [
        (
            Endpoint::Backlinks,
            r#"{"target": "forbes.com", "mode": "one_per_domain", "limit": 20}"#,
        ),
        (
            Endpoint::Anchors,
            r#"{"target": "forbes.com", "limit": 20}"#,
        ),
        (
            Endpoint::ReferringDomains,
            r#"{"target": "forbes.com", "limit": 20}"#,
        ),
        (
            Endpoint::Competitors,
            r#"{"target": "forbes.com", "limit": 20, "exclude_large_domains": true}"#,
        ),
        (
            Endpoint::DomainPages,
            r#"{"target": "forbes.com", "limit": 20}"#,
        ),
    ];
    let mut charged = rust_decimal::Decimal::ZERO;
    for (endpoint, example) in examples {
        assert!(
            reference.contains(&format!(
                "echo '{example}' | python3 $SKILL_DIR/scripts/dataforseo.py --endpoint /v3/backlinks/{endpoint}/live"
            )),
            "{endpoint}: the example is the reference's"
        );
        let body = call(&client, endpoint, &serde_json::from_str(example).unwrap()).await;
        let r = result(&body);
        let n = r["items_count"].as_u64().unwrap() as usize;
        assert!(n > 0 && n <= 20, "{endpoint}: {n} items");
        assert!(r["total_count"].as_u64().unwrap() >= n as u64);
        // $0.02 per request and $0.00003 per returned row.
        let cost = body["tasks"][0]["cost"]
            .to_string()
            .parse::<rust_decimal::Decimal>()
            .unwrap();
        assert_eq!(cost, price(n).decimal(), "{endpoint}");
        charged += cost;
    }
    // one_per_domain: one link per referring domain.
    let body = call(
        &client,
        Endpoint::Backlinks,
        &json!({"target": "forbes.com", "mode": "one_per_domain", "limit": 20}),
    )
    .await;
    let domains: HashSet<&str> = result(&body)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["domain_from"].as_str().unwrap())
        .collect();
    assert_eq!(
        domains.len(),
        result(&body)["items_count"].as_u64().unwrap() as usize
    );
    charged += price(domains.len()).decimal();

    assert!(
        reference
            .contains(r#"echo '{"targets": ["forbes.com", "cnn.com", "bbc.com"], "limit": 20}'"#)
    );
    let numbered =
        json!({"targets": {"1": "forbes.com", "2": "cnn.com", "3": "bbc.com"}, "limit": 20});
    let body = call(&client, Endpoint::DomainIntersection, &numbered).await;
    let r = result(&body);
    assert_eq!(r["targets"], numbered["targets"]);
    charged += price(r["items_count"].as_u64().unwrap() as usize).decimal();
    // The array form is not what the raw API takes: a 40501, free.
    let body = call(
        &client,
        Endpoint::DomainIntersection,
        &json!({"targets": ["forbes.com", "cnn.com"], "limit": 20}),
    )
    .await;
    assert_eq!(body["tasks"][0]["status_code"], 40501);
    assert_eq!(body["tasks"][0]["cost"], 0);

    // The field lists' filter examples are taken (and applied).
    for (endpoint, filters) in [
        (Endpoint::Backlinks, json!(["rank", ">", "80"])),
        (
            Endpoint::Backlinks,
            json!([
                ["page_from_rank", ">", "55"],
                "and",
                ["dofollow", "=", true]
            ]),
        ),
        (
            Endpoint::Backlinks,
            json!([
                ["first_seen", ">", "2017-10-23 11:31:45 +00:00"],
                "and",
                [
                    ["anchor", "like", "%seo%"],
                    "or",
                    ["text_pre", "like", "%seo%"]
                ]
            ]),
        ),
        (
            Endpoint::ReferringDomains,
            json!([
                ["referring_pages", ">", "2"],
                "and",
                ["backlinks", ">", "10"]
            ]),
        ),
        (
            Endpoint::Competitors,
            json!([
                ["target", "like", "%forbes%"],
                "and",
                [["rank", ">", "100"], "or", ["intersections", ">", "5"]]
            ]),
        ),
    ] {
        let body = call(
            &client,
            endpoint,
            &json!({"target": "forbes.com", "filters": filters, "limit": 100}),
        )
        .await;
        let r = result(&body);
        charged += price(r["items_count"].as_u64().unwrap() as usize).decimal();
        if endpoint == Endpoint::Backlinks && filters[0] == "rank" {
            for i in r["items"].as_array().unwrap() {
                assert!(i["rank"].as_i64().unwrap() > 80, "{i}");
            }
        }
    }
    assert_eq!(sb.stats().charged_usd.decimal(), charged);
    sb.stop().await;
}

#[tokio::test]
async fn a_long_listing_pages_by_offset_to_its_maximum_then_by_token_each_link_once() {
    let sb = default_sandbox().await;
    let client = client(&sb);
    let t = target_with(&client, 21_500).await;
    let before = sb.stats().requests;
    let mut seen: HashSet<String> = HashSet::new();
    let mut total = None;
    let mut offset = 0;
    let mut token: Option<String> = None;
    let mut pages = 0u64;
    loop {
        let mut task = json!({"target": t, "limit": 1000, "offset": offset.min(20_000)});
        if let Some(tok) = &token {
            task["search_after_token"] = json!(tok);
        }
        let body = call(&client, Endpoint::Backlinks, &task).await;
        let r = result(&body);
        pages += 1;
        let n = r["total_count"].as_u64().unwrap();
        assert_eq!(*total.get_or_insert(n), n, "one day, one total");
        for i in r["items"].as_array().unwrap() {
            let id = format!("{} {} {}", i["url_from"], i["url_to"], i["anchor"]);
            assert!(seen.insert(id), "a link served twice");
        }
        offset += 1000;
        // Past the offset maximum, only the token goes on.
        match r["search_after_token"].as_str() {
            Some(tok) if offset > 20_000 => token = Some(tok.to_string()),
            Some(_) => {}
            None => break,
        }
    }
    let total = total.unwrap();
    assert!(total > 21_000);
    assert_eq!(seen.len() as u64, total);
    assert_eq!(pages, total.div_ceil(1000));
    assert_eq!(sb.stats().requests - before, pages);
    sb.stop().await;
}

/// A job with one list collection of `endpoint`: `extra` lines in its section.
fn list_job(endpoint: &str, extra: &str) -> String {
    format!(
        "name = \"lists\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"{endpoint}\"\nschedule = \"@daily\"\n{extra}\n"
    )
}

#[tokio::test]
async fn list_collections_with_the_documented_options_pass_jobs_check() {
    let job = r#"name = "links"
targets = ["example.com", "competitor.org"]

[[collect]]
endpoint = "backlinks"
schedule = "@daily"
max_rows = 50000
params = { mode = "one_per_domain", backlinks_status_type = "all", order_by = ["domain_from_rank,desc", "page_from_rank,asc", "first_seen,desc"], filters = [["first_seen", ">", "2017-10-23 11:31:45 +00:00"], "and", [["anchor", "like", "%seo%"], "or", ["text_pre", "like", "%seo%"]]] }

[[collect]]
endpoint = "referring_domains"
schedule = "@daily"
max_rows = 21000
params = { filters = [["referring_pages", ">", "2"], "and", ["backlinks", ">", "10"]], backlinks_filters = [["dofollow", "=", true]] }

[[collect]]
endpoint = "anchors"
schedule = "@weekly"
max_rows = 1000
params = { filters = ["anchor", "ilike", "%Seo%"] }

[[collect]]
endpoint = "domain_pages"
schedule = "@weekly"
max_rows = 5000
params = { order_by = ["page_summary.backlinks,desc"], limit = 1000 }

[[collect]]
endpoint = "competitors"
schedule = "@monthly"
max_rows = 100
params = { exclude_large_domains = true }

[[collect]]
endpoint = "domain_intersection"
schedule = "@weekly"
max_rows = 2000
targets = ["competitor.org", "rival.net"]
params = { exclude_targets = ["example.com"], filters = [["2.referring_pages", ">", "2"], "and", ["1.backlinks", ">", "10"]] }
"#;
    let wd = Workdir::new(&[("links.toml", job)]);
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("6 collections"), "{}", stdout(&out));
}

#[tokio::test]
async fn each_list_collection_mistake_is_named_as_file_field_why() {
    let nine = (0..9)
        .map(|i| format!("[\"rank\", \">\", {i}]"))
        .collect::<Vec<_>>()
        .join(", \"and\", ");
    let many: String = (0..21)
        .map(|i| format!("\"t{i}.com\""))
        .collect::<Vec<_>>()
        .join(", ");
    let cases: Vec<(String, &str)> = vec![
        (
            list_job("backlinks", &format!("max_rows = 100\nparams = {{ filters = [{nine}] }}")),
            "collect[1].params.filters: 9 conditions; the API takes at most 8 filters",
        ),
        (
            list_job("referring_domains", "max_rows = 100\nparams = { filters = [\"domain\", \"ilike\", \"%a%\"] }"),
            "collect[1].params.filters: at [1]: `ilike` is not an operator referring_domains supports",
        ),
        (
            list_job("backlinks", "max_rows = 100\nparams = { filters = [[\"rank\", \">\", 1], \"xor\", [\"rank\", \"<\", 9]] }"),
            "collect[1].params.filters: at [1]: expected \"and\" or \"or\"",
        ),
        (
            list_job("anchors", "max_rows = 100\nparams = { order_by = [\"a,desc\", \"b,asc\", \"c,asc\", \"d,asc\"] }"),
            "collect[1].params.order_by: 4 sorting rules; the API takes at most 3",
        ),
        (
            list_job("backlinks", "max_rows = 100\nparams = { limit = 5000 }"),
            "collect[1].params.limit: must be between 1 and 1000, found 5000",
        ),
        (
            list_job("domain_pages", "max_rows = 100\nparams = { offset = 20001 }"),
            "collect[1].params.offset: must be between 0 and 20000, found 20001",
        ),
        (
            list_job("backlinks", "max_rows = 100\nparams = { search_after_token = \"x\" }"),
            "collect[1].params.search_after_token: set by linkledger",
        ),
        (
            list_job("backlinks", "max_rows = 100\nparams = { mode = \"one_per_page\" }"),
            "collect[1].params.mode: must be one of as_is, one_per_domain, one_per_anchor",
        ),
        (list_job("backlinks", ""), "collect[1].max_rows: missing"),
        (
            list_job("summary", "max_rows = 100"),
            "collect[1].max_rows: summary is not a list endpoint",
        ),
        (
            list_job("anchors", "max_rows = 30000"),
            "collect[1].max_rows: anchors pages by offset, at most 20000",
        ),
        (
            list_job("backlinks", "max_rows = 0"),
            "collect[1].max_rows: must be at least 1",
        ),
        (
            "name = \"p\"\ntargets = [\"https://example.com/page\"]\n[[collect]]\nendpoint = \"domain_pages\"\nschedule = \"@daily\"\nmax_rows = 10\n".to_string(),
            "targets[1]: domain_pages takes a bare domain",
        ),
        (
            list_job("domain_intersection", &format!("max_rows = 10\ntargets = [{many}]")),
            "collect[1].targets: domain_intersection intersects its targets in one call, at most 20; found 21",
        ),
    ];
    for (body, expected) in cases {
        let wd = Workdir::new(&[("job.toml", &body)]);
        let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{expected}: {err}");
        assert!(
            err.contains(&format!("jobs/job.toml: {expected}")),
            "expected `jobs/job.toml: {expected}` in: {err}"
        );
    }
}

#[tokio::test]
async fn a_list_collection_says_what_one_fire_buys_at_most_and_is_collected() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[("job.toml", &list_job("backlinks", "max_rows = 5000"))]);
    // What one fire costs at most is said before anything is bought: 5 calls ($0.02
    // each) and 5,000 rows ($0.00003 each).
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["jobs", "check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "note: jobs/job.toml: collect[1]: backlinks (backlinks) is a list collection: one fire buys at most 5000 rows in 5 calls per target, $0.25 at list price"
        ),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).is_empty(), "no warnings: {}", stderr(&out));
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Collected: each page asked of the backlinks endpoint is in the ledger.
    let asked = sb
        .stats()
        .by_endpoint
        .get("backlinks")
        .copied()
        .unwrap_or(0);
    assert!((1..=5).contains(&asked), "{asked} pages");
    let store = db.store().await;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'backlinks' AND outcome = 'ok'"
        )
        .await,
        asked as i64
    );
    sb.stop().await;
}
