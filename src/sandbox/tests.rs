use super::envelope::MSG_ONE_TASK;
use super::modes::{EnvelopeQuirk, TargetMode, target_mode};
use super::*;
use base64::Engine;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

#[test]
fn price_of_3_rows_is_exactly_2009_hundred_thousandths_of_a_dollar() {
    assert_eq!(price(3), "0.02009".parse::<Usd>().unwrap());
    assert_eq!(price(3).to_string(), "$0.02009");
    assert_eq!(price(0), "0.02".parse::<Usd>().unwrap());
}

#[test]
fn options_never_show_their_credentials() {
    let text = format!("{:?}", SandboxOptions::default());
    assert!(!text.contains("sandbox-token"), "{text}");
    assert!(text.contains("REDACTED"));
}

/// One HTTP/1.1 exchange over a raw TCP connection: (status, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let (status, _, body) = exchange(addr, method, path, auth, body).await;
    (status, body)
}

/// The value of the response header `name` in a raw response head.
fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// One HTTP/1.1 exchange over a raw TCP connection: (status, head, body).
async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let Some((head, rest)) = text.split_once("\r\n\r\n") else {
        return (0, text, String::new());
    };
    let status = head[9..12].parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, head.to_string(), body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        // A dropped connection leaves the last chunk short.
        let Some(chunk) = rest.get(..n) else {
            out.push_str(rest);
            break;
        };
        out.push_str(chunk);
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}

fn basic(login: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"))
    )
}

#[tokio::test]
async fn bad_credentials_get_a_401_and_a_summary_is_answered_and_counted() {
    let sb = Sandbox::start(SandboxOptions {
        today: NaiveDate::from_ymd_opt(2025, 6, 15),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    assert!(sb.base_url().starts_with("http://127.0.0.1:"));
    assert!(sb.base_url().ends_with("/v3"));
    let addr = sb.addr();
    let task = r#"[{"target":"example.com","tag":"t1"}]"#;

    let (status, body) = http(
        addr,
        "POST",
        "/v3/backlinks/summary/live",
        Some(&basic("sandbox", "wrong")),
        task,
    )
    .await;
    assert_eq!(status, 401);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status_code"], 40100);
    let (status, _) = http(addr, "GET", "/v3/appendix/user_data", None, "").await;
    assert_eq!(status, 401);
    assert_eq!(sb.stats().unauthorized, 2);
    assert_eq!(sb.stats().requests, 0);

    let (status, body) = http(
        addr,
        "POST",
        "/v3/backlinks/summary/live",
        Some(&basic("sandbox", "sandbox")),
        task,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status_code"], 20000);
    assert_eq!(v["tasks_count"], 1);
    assert_eq!(v["tasks_error"], 0);
    let t = &v["tasks"][0];
    assert_eq!(t["status_code"], 20000);
    assert_eq!(t["path"], json!(["v3", "backlinks", "summary", "live"]));
    assert_eq!(t["data"]["function"], "summary");
    assert_eq!(t["data"]["tag"], "t1");
    assert_eq!(t["result"][0]["target"], "example.com");
    assert_eq!(Usd::from_json(&v["cost"]), Some(price(1)));

    let (status, body) = http(
        addr,
        "POST",
        "/v3/backlinks/bulk_ranks/live",
        Some("Bearer sandbox-token"),
        r#"[{"targets":["b.com","a.com"]}]"#,
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(Usd::from_json(&v["tasks"][0]["cost"]), Some(price(2)));

    let (status, body) = http(
        addr,
        "POST",
        "/v3/backlinks/summary/live",
        Some("Bearer sandbox-token"),
        r#"[{"target":"a.com","x":1}]"#,
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status_code"], 20000);
    assert_eq!(v["tasks_error"], 1);
    assert_eq!(v["tasks"][0]["status_code"], 40501);
    assert_eq!(v["tasks"][0]["status_message"], "Invalid Field: 'x'.");
    assert!(v["tasks"][0]["result"].is_null());

    let (status, body) = http(
        addr,
        "POST",
        "/v3/backlinks/no_such/live",
        Some("Bearer sandbox-token"),
        "[]",
    )
    .await;
    assert_eq!(status, 404);
    assert!(body.contains("40400"));

    let (status, body) = http(
        addr,
        "GET",
        "/v3/appendix/user_data",
        Some("Bearer sandbox-token"),
        "",
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["tasks"][0]["result"][0]["login"], "sandbox");
    assert_eq!(v["cost"], 0);

    let stats = sb.stats();
    assert_eq!(stats.requests, 3, "{stats:?}");
    assert_eq!(stats.by_endpoint.get("summary"), Some(&2));
    assert_eq!(stats.charged_usd, price(1) + price(2));
    assert_eq!(stats.max_in_flight, 1);
    let records = sb.requests();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].request[0]["tag"], "t1");
    assert_eq!(records[0].cost, price(1));
    assert_eq!(records[2].cost, Usd::ZERO);

    let (status, body) = http(addr, "GET", "/sandbox/stats", None, "").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["requests"], 3);
    sb.stop().await;
}

#[tokio::test]
async fn faults_are_counted_cost_nothing_and_break_the_answer() {
    let sb = Sandbox::start(SandboxOptions {
        fault_rate: 1.0,
        seed: 3,
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let auth = basic("sandbox", "sandbox");
    let mut answers = Vec::new();
    for _ in 0..20 {
        answers.push(
            http(
                sb.addr(),
                "POST",
                "/v3/backlinks/bulk_backlinks/live",
                Some(&auth),
                r#"[{"targets":["a.com"]}]"#,
            )
            .await,
        );
    }
    // The dropped connection: a 200 whose body breaks off.
    assert!(
        answers
            .iter()
            .any(|(status, body)| *status == 200 && serde_json::from_str::<Value>(body).is_err()),
        "{answers:?}"
    );
    let stats = sb.stats();
    assert_eq!(stats.faults, 20);
    assert_eq!(stats.throttled, 0);
    assert_eq!(stats.charged_usd, Usd::ZERO);
    let statuses: std::collections::BTreeSet<u16> =
        sb.requests().iter().map(|r| r.http_status).collect();
    assert!(statuses.contains(&500) && statuses.contains(&502) && statuses.contains(&200));
    sb.set_fault_rate(0.0);
    let (status, _) = http(
        sb.addr(),
        "POST",
        "/v3/backlinks/bulk_backlinks/live",
        Some(&auth),
        r#"[{"targets":["a.com"]}]"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sb.stats().charged_usd, price(1));
    sb.stop().await;
}

#[tokio::test]
async fn the_account_limits_answer_40209_and_40202() {
    let sb = Sandbox::start(SandboxOptions {
        latency: Duration::from_millis(200),
        max_in_flight: 1,
        max_per_minute: 2,
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let auth = basic("sandbox", "sandbox");
    let task = r#"[{"target":"a.com"}]"#;
    let addr = sb.addr();
    let (a, b) = tokio::join!(
        http(
            addr,
            "POST",
            "/v3/backlinks/summary/live",
            Some(&auth),
            task
        ),
        async {
            // Sent once the first request is open (and held by the latency).
            let deadline = Instant::now() + Duration::from_secs(5);
            while sb.stats().max_in_flight < 1 {
                assert!(Instant::now() < deadline, "the first request never arrived");
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            http(
                addr,
                "POST",
                "/v3/backlinks/summary/live",
                Some(&auth),
                task,
            )
            .await
        }
    );
    assert_eq!(a.0, 200);
    assert!(a.1.contains("\"status_code\":20000"));
    assert!(b.1.contains("40209"), "{}", b.1);
    let _ = http(
        addr,
        "POST",
        "/v3/backlinks/summary/live",
        Some(&auth),
        task,
    )
    .await;
    let (_, third) = http(
        addr,
        "POST",
        "/v3/backlinks/summary/live",
        Some(&auth),
        task,
    )
    .await;
    assert!(third.contains("40202"), "{third}");
    let stats = sb.stats();
    assert_eq!(stats.throttled, 2);
    assert_eq!(stats.requests, 4);
    sb.stop().await;
}

#[tokio::test]
async fn only_the_most_recent_requests_are_kept_but_all_are_counted() {
    let sb = Sandbox::start(SandboxOptions {
        record_limit: 5,
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let auth = basic("sandbox", "sandbox");
    for i in 0..8 {
        let (status, _) = http(
            sb.addr(),
            "POST",
            "/v3/backlinks/summary/live",
            Some(&auth),
            &format!(r#"[{{"target":"site{i}.com","tag":"r{i}"}}]"#),
        )
        .await;
        assert_eq!(status, 200);
    }
    let stats = sb.stats();
    assert_eq!(stats.requests, 8);
    assert_eq!(stats.charged_usd, price(1) * 8);
    let tags = |records: &[Value]| -> Vec<String> {
        records
            .iter()
            .map(|r| r["request"][0]["tag"].as_str().unwrap().to_string())
            .collect()
    };
    let kept: Vec<Value> = sb.requests().iter().map(|r| json!(r)).collect();
    assert_eq!(kept.len(), 5);
    assert_eq!(tags(&kept), ["r3", "r4", "r5", "r6", "r7"]);
    assert_eq!(
        kept[4]["response"]["tasks"][0]["result"][0]["target"],
        "site7.com"
    );

    let (status, body) = http(sb.addr(), "GET", "/sandbox/requests", None, "").await;
    assert_eq!(status, 200);
    let served: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(tags(&served), ["r3", "r4", "r5", "r6", "r7"]);
    sb.stop().await;
}

#[tokio::test]
async fn the_log_keeps_no_more_bytes_than_its_limit_and_always_the_newest_request() {
    const LIMIT: usize = 20_000;
    let sb = Sandbox::start(SandboxOptions {
        record_bytes: LIMIT,
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let auth = basic("sandbox", "sandbox");
    let size = |records: &[RequestRecord]| -> usize {
        records
            .iter()
            .map(|r| {
                serde_json::to_vec(&r.request).unwrap().len()
                    + r.response.as_ref().map_or(0, |b| b.to_string().len())
            })
            .sum()
    };
    let summary = |i: usize| format!(r#"[{{"target":"site{i}.com","tag":"s{i}"}}]"#);
    for i in 0..3 {
        http(
            sb.addr(),
            "POST",
            "/v3/backlinks/summary/live",
            Some(&auth),
            &summary(i),
        )
        .await;
    }
    let small = sb.requests();
    assert_eq!(small.len(), 3, "small answers fit");
    // A bulk answer for 1000 targets alone is larger than the limit: it is kept
    // (the newest always is), and everything before it goes.
    let targets: Vec<String> = (0..1000).map(|i| format!("\"b{i}.com\"")).collect();
    let bulk = format!(r#"[{{"targets":[{}],"tag":"bulk"}}]"#, targets.join(","));
    http(
        sb.addr(),
        "POST",
        "/v3/backlinks/bulk_ranks/live",
        Some(&auth),
        &bulk,
    )
    .await;
    let kept = sb.requests();
    assert!(
        size(&kept) > LIMIT,
        "the bulk answer is large: {}",
        size(&kept)
    );
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].request[0]["tag"], "bulk");
    for i in 3..40 {
        http(
            sb.addr(),
            "POST",
            "/v3/backlinks/summary/live",
            Some(&auth),
            &summary(i),
        )
        .await;
    }
    let kept = sb.requests();
    assert!(
        size(&kept) <= LIMIT,
        "{} bytes in {} records",
        size(&kept),
        kept.len()
    );
    assert!(
        kept.len() < 37,
        "older records were dropped: {}",
        kept.len()
    );
    assert_eq!(kept.last().unwrap().request[0]["tag"], "s39");
    assert_eq!(sb.stats().requests, 41, "every request is counted");
    sb.stop().await;
}

#[test]
fn a_task_asks_for_a_mode_by_the_first_host_label_of_any_of_its_targets() {
    let mode = |task: Value| target_mode(&task);
    assert_eq!(mode(json!({"target": "example.com"})), None);
    assert_eq!(mode(json!({"target": "example.quirk-no-status.com"})), None);
    assert_eq!(
        mode(json!({"target": "https://www.Quirk-No-Status.example.com/page"})),
        Some(TargetMode::Envelope(EnvelopeQuirk::NoStatus))
    );
    assert_eq!(
        mode(
            json!({"targets": ["a.com", "quirk-result-object.b.com", "quirk-string-codes.c.com"]})
        ),
        Some(TargetMode::Envelope(EnvelopeQuirk::ResultObject))
    );
    assert_eq!(
        mode(json!({"targets": ["quirk-envelope-types.a.com", "quirk-no-funds.b.com"]})),
        Some(TargetMode::NoFunds)
    );
}

const BULK: &str = "/v3/backlinks/bulk_backlinks/live";
const SUMMARY: &str = "/v3/backlinks/summary/live";

/// A sandbox with a fixed "today", so that results can be compared.
async fn dated_sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions {
        today: NaiveDate::from_ymd_opt(2025, 6, 15),
        ..SandboxOptions::default()
    })
    .await
    .unwrap()
}

/// POSTs `body` and returns the JSON served, after checking that the sandbox
/// recorded exactly that and charged `charge` for it, in the record and the stats.
async fn served_and_charged(sb: &Sandbox, path: &str, body: &str, charge: Usd) -> Value {
    let before = sb.stats().charged_usd;
    let (status, text) = http(sb.addr(), "POST", path, Some("Bearer sandbox-token"), body).await;
    assert_eq!(status, 200, "{text}");
    let served: Value = serde_json::from_str(&text).unwrap();
    let record = sb.requests().pop().unwrap();
    assert_eq!(record.response.as_ref(), Some(&served));
    assert_eq!(record.cost, charge, "{text}");
    assert_eq!(sb.stats().charged_usd - before, charge, "{text}");
    served
}

/// Three targets, three billed rows, led by `first`.
fn bulk_task(first: &str) -> String {
    format!(r#"[{{"targets":["{first}","b.com","c.com"]}}]"#)
}

#[tokio::test]
async fn envelope_types_mode_retypes_the_fields_classification_ignores_and_charges_as_usual() {
    let sb = dated_sandbox().await;
    let plain = served_and_charged(&sb, BULK, &bulk_task("a.com"), price(3)).await;
    let v = served_and_charged(
        &sb,
        BULK,
        &bulk_task("quirk-envelope-types.example.com"),
        price(3),
    )
    .await;
    assert!(plain["time"].is_string() && plain["tasks_count"] == 1);

    assert!(v["time"].is_f64(), "{v}");
    assert_eq!(v["tasks_count"], "1");
    assert_eq!(v["tasks_error"], "0");
    assert_eq!(v["status_code"], 20000);
    assert_eq!(Usd::from_json(&v["cost"]), Some(price(3)));
    assert!(v["cost"].is_number());
    let t = &v["tasks"][0];
    assert!(t["id"].is_u64(), "{t}");
    assert!(t["time"].is_f64(), "{t}");
    assert_eq!(t["result_count"], "1");
    assert_eq!(t["path"], "v3/backlinks/bulk_backlinks/live");
    assert_eq!(t["status_code"], 20000);
    assert_eq!(t["status_message"], "Ok.");
    assert!(t["cost"].is_number());
    assert_eq!(Usd::from_json(&t["cost"]), Some(price(3)));
    assert_eq!(t["result"].as_array().unwrap().len(), 1);
    assert_eq!(t["result"][0]["items"].as_array().unwrap().len(), 3);
    sb.stop().await;
}

#[tokio::test]
async fn string_codes_mode_sends_status_codes_and_costs_as_strings_and_charges_as_usual() {
    let sb = dated_sandbox().await;
    let v = served_and_charged(
        &sb,
        BULK,
        &bulk_task("quirk-string-codes.example.com"),
        price(3),
    )
    .await;
    assert_eq!(v["status_code"], "20000", "{v}");
    assert_eq!(v["cost"], "0.02009");
    assert_eq!(v["status_message"], "Ok.");
    assert_eq!(v["tasks_count"], 1);
    assert!(v["time"].is_string());
    let t = &v["tasks"][0];
    assert_eq!(t["status_code"], "20000");
    assert_eq!(t["cost"], "0.02009");
    assert_eq!(t["result_count"], 1);
    assert_eq!(
        t["path"],
        json!(["v3", "backlinks", "bulk_backlinks", "live"])
    );
    assert!(t["id"].is_string());
    assert_eq!(t["result"][0]["items"].as_array().unwrap().len(), 3);
    sb.stop().await;
}

#[tokio::test]
async fn result_object_mode_sends_the_result_without_its_array_and_charges_as_usual() {
    let sb = dated_sandbox().await;
    let target = "quirk-result-object.example.com";
    let v = served_and_charged(
        &sb,
        SUMMARY,
        &format!(r#"[{{"target":"{target}"}}]"#),
        price(1),
    )
    .await;
    let t = &v["tasks"][0];
    assert!(t["result"].is_object(), "{t}");
    let expected = data::build_result(
        Endpoint::Summary,
        &json!({"target": target}),
        NaiveDate::from_ymd_opt(2025, 6, 15).unwrap(),
    )
    .unwrap();
    assert_eq!(t["result"], expected[0]);
    assert_eq!(t["result"]["target"], target);
    assert_eq!(t["result_count"], 1);
    assert_eq!(t["status_code"], 20000);
    assert_eq!(v["status_code"], 20000);
    assert_eq!(Usd::from_json(&v["cost"]), Some(price(1)));

    let v = served_and_charged(
        &sb,
        BULK,
        &bulk_task("quirk-result-object.example.com"),
        price(3),
    )
    .await;
    let result = &v["tasks"][0]["result"];
    assert_eq!(result["items"].as_array().unwrap().len(), 3, "{result}");
    sb.stop().await;
}

#[tokio::test]
async fn no_status_mode_sends_no_status_code_or_message_at_either_level_and_charges_as_usual() {
    let sb = dated_sandbox().await;
    let v = served_and_charged(
        &sb,
        BULK,
        &bulk_task("quirk-no-status.example.com"),
        price(3),
    )
    .await;
    let top = v.as_object().unwrap();
    let task = v["tasks"][0].as_object().unwrap();
    for key in ["status_code", "status_message"] {
        assert!(!top.contains_key(key), "{v}");
        assert!(!task.contains_key(key), "{v}");
    }
    assert_eq!(Usd::from_json(&v["cost"]), Some(price(3)));
    assert_eq!(Usd::from_json(&task["cost"]), Some(price(3)));
    assert_eq!(v["tasks_count"], 1);
    assert_eq!(task["result_count"], 1);
    assert_eq!(task["result"][0]["items"].as_array().unwrap().len(), 3);
    sb.stop().await;
}

/// The items of the one result of a served envelope.
fn served_items(v: &Value) -> &Vec<Value> {
    v["tasks"][0]["result"][0]["items"].as_array().unwrap()
}

#[tokio::test]
async fn bad_day_answers_are_charged_for_the_rows_they_return_on_the_sandboxs_today() {
    let sb = dated_sandbox().await;
    let history = "/v3/backlinks/history/live";
    let year = |target: &str| {
        format!(r#"[{{"target":"{target}","date_from":"2024-01-01","date_to":"2024-12-31"}}]"#)
    };
    let plain = served_and_charged(&sb, history, &year("example.com"), price(12)).await;
    assert_eq!(served_items(&plain).len(), 12);
    let v = served_and_charged(&sb, history, &year("quirk-missing-period.a.com"), price(11)).await;
    assert_eq!(served_items(&v).len(), 11);
    assert_eq!(v["tasks"][0]["status_code"], 20000);
    assert_eq!(v["tasks"][0]["result_count"], 1);
    let v = served_and_charged(&sb, history, &year("quirk-empty.a.com"), price(0)).await;
    assert!(served_items(&v).is_empty(), "{v}");
    assert_eq!(v["tasks"][0]["status_code"], 20000);
    let v = served_and_charged(&sb, history, &year("quirk-null-item.a.com"), price(12)).await;
    assert!(served_items(&v)[1].is_null());

    let v = served_and_charged(&sb, BULK, &bulk_task("quirk-empty.example.com"), price(2)).await;
    assert_eq!(served_items(&v).len(), 2);
    let v = served_and_charged(
        &sb,
        BULK,
        &bulk_task("quirk-null-key.example.com"),
        price(3),
    )
    .await;
    assert!(served_items(&v)[2]["target"].is_null(), "{v}");

    // The lag follows the sandbox's today, moved by `set_today`.
    let daily = r#"[{"target":"quirk-lag-3.a.com","date_from":"2025-06-01","group_range":"day"}]"#;
    let path = "/v3/backlinks/timeseries_summary/live";
    let v = served_and_charged(&sb, path, daily, price(12)).await;
    assert_eq!(
        served_items(&v).last().unwrap()["date"],
        "2025-06-12 00:00:00 +00:00"
    );
    sb.set_today(NaiveDate::from_ymd_opt(2025, 6, 16).unwrap());
    let v = served_and_charged(&sb, path, daily, price(13)).await;
    assert_eq!(
        served_items(&v).last().unwrap()["date"],
        "2025-06-13 00:00:00 +00:00"
    );
    sb.stop().await;
}

/// Every kind of answer the sandbox gives, as (what, status, its sandbox header):
/// live, 40501, bad JSON, 401, 404s, 405, user_data, the statistics and, with
/// faults switched on, HTTP 500 and 502 and a dropped connection.
async fn every_kind_of_answer(opts: SandboxOptions) -> Vec<(String, u16, Option<String>)> {
    let sb = Sandbox::start(SandboxOptions { seed: 3, ..opts })
        .await
        .unwrap();
    let auth = basic("sandbox", "sandbox");
    let asks: [(&str, &str, Option<&str>, &str); 10] = [
        ("POST", SUMMARY, Some(&auth), r#"[{"target":"a.com"}]"#),
        (
            "POST",
            SUMMARY,
            Some(&auth),
            r#"[{"target":"a.com","x":1}]"#,
        ),
        ("POST", SUMMARY, Some(&auth), "[{"),
        ("POST", SUMMARY, Some("Bearer wrong"), "[]"),
        ("GET", "/v3/appendix/user_data", Some(&auth), ""),
        ("POST", "/v3/backlinks/no_such/live", Some(&auth), "[]"),
        ("GET", "/nowhere", None, ""),
        ("GET", SUMMARY, Some(&auth), ""),
        ("GET", "/sandbox/stats", None, ""),
        ("GET", "/sandbox/requests", None, ""),
    ];
    let mut seen = Vec::new();
    for (method, path, auth, body) in asks {
        let (status, head, _) = exchange(sb.addr(), method, path, auth, body).await;
        seen.push((
            format!("{method} {path}"),
            status,
            header(&head, SANDBOX_HEADER).map(str::to_string),
        ));
    }
    sb.set_fault_rate(1.0);
    for i in 0..20 {
        let (status, head, body) =
            exchange(sb.addr(), "POST", BULK, Some(&auth), &bulk_task("a.com")).await;
        let what = if serde_json::from_str::<Value>(&body).is_err() && status == 200 {
            "dropped connection".to_string()
        } else {
            format!("fault {i}")
        };
        seen.push((
            what,
            status,
            header(&head, SANDBOX_HEADER).map(str::to_string),
        ));
    }
    sb.stop().await;
    seen
}

#[tokio::test]
async fn every_answer_says_it_comes_from_the_sandbox_unless_it_is_to_pass_for_the_real_api() {
    let seen = every_kind_of_answer(SandboxOptions::default()).await;
    let statuses: std::collections::BTreeSet<u16> = seen.iter().map(|s| s.1).collect();
    for status in [200, 400, 401, 404, 405, 500, 502] {
        assert!(statuses.contains(&status), "no {status} in {seen:?}");
    }
    assert!(seen.iter().any(|s| s.0 == "dropped connection"), "{seen:?}");
    for (what, status, mark) in &seen {
        assert_eq!(mark.as_deref(), Some("1"), "{what} ({status})");
    }

    let seen = every_kind_of_answer(SandboxOptions {
        identify: false,
        ..SandboxOptions::default()
    })
    .await;
    assert_eq!(seen.len(), 30);
    for (what, status, mark) in &seen {
        assert_eq!(mark, &None, "{what} ({status})");
    }
}

/// `GET /v3/appendix/user_data` read the way the daemon reads it.
async fn account(sb: &Sandbox) -> (crate::api::account::Account, Value) {
    let (status, body) = http(
        sb.addr(),
        "GET",
        "/v3/appendix/user_data",
        Some("Bearer sandbox-token"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    (crate::api::account::Account::read(&v), v)
}

fn usd(s: &str) -> Usd {
    s.parse().unwrap()
}

#[tokio::test]
async fn the_balance_user_data_reports_falls_by_what_was_charged_and_the_client_reads_it() {
    use crate::api::prices::Rate;
    let sb = dated_sandbox().await;
    let (before, v) = account(&sb).await;
    assert_eq!(before.balance, Some(usd("100")));
    let money = &v["tasks"][0]["result"][0]["money"];
    assert_eq!(Usd::from_json(&money["total"]), Some(usd("100")));
    assert_eq!(before.prices.len(), Endpoint::every().count());
    for e in Endpoint::every() {
        assert_eq!(before.prices.get(&e), Some(&Rate::LIST), "{e:?}");
    }
    assert_eq!(v["cost"], 0);

    served_and_charged(&sb, SUMMARY, r#"[{"target":"a.com"}]"#, price(1)).await;
    served_and_charged(&sb, BULK, &bulk_task("a.com"), price(3)).await;
    // A bad request is not charged, so it costs the balance nothing.
    served_and_charged(&sb, SUMMARY, r#"[{"target":"a.com","x":1}]"#, Usd::ZERO).await;

    let (after, v) = account(&sb).await;
    let left = usd("100") - price(1) - price(3);
    assert_eq!(left, usd("99.95988"));
    assert_eq!(after.balance, Some(left));
    assert_eq!(sb.balance(), left);
    assert_eq!(
        sb.describe(),
        "balance $99.95988, $0.02 per request + $0.00003 per row, \
         answers marked x-linkledger-sandbox: 1"
    );
    let money = &v["tasks"][0]["result"][0]["money"];
    assert_eq!(Usd::from_json(&money["total"]), Some(usd("100")));
    assert_eq!(after.prices, before.prices);
    assert_eq!(sb.stats().requests, 3, "user_data is not counted");
    sb.stop().await;
}

#[tokio::test]
async fn an_account_with_its_own_price_list_and_balance_is_served_and_charged_by_it() {
    use crate::api::prices::Rate;
    let rate = Rate {
        per_request: usd("0.05"),
        per_row: usd("0.0001"),
    };
    let sb = Sandbox::start(SandboxOptions {
        today: NaiveDate::from_ymd_opt(2025, 6, 15),
        balance: usd("1"),
        prices: Some((rate.per_request, rate.per_row)),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let (before, _) = account(&sb).await;
    assert_eq!(before.balance, Some(usd("1")));
    for e in Endpoint::ALL {
        assert_eq!(before.prices.get(&e), Some(&rate), "{e:?}");
    }

    let v = served_and_charged(&sb, BULK, &bulk_task("a.com"), usd("0.0503")).await;
    assert_eq!(Usd::from_json(&v["cost"]), Some(usd("0.0503")));
    assert_eq!(Usd::from_json(&v["tasks"][0]["cost"]), Some(rate.price(3)));
    served_and_charged(&sb, SUMMARY, r#"[{"target":"a.com"}]"#, rate.price(1)).await;

    let (after, _) = account(&sb).await;
    assert_eq!(after.balance, Some(usd("0.8996")));
    assert_eq!(sb.stats().charged_usd, usd("0.1004"));
    sb.stop().await;
}

#[tokio::test]
async fn a_negative_price_is_refused_before_the_sandbox_starts() {
    let opts = SandboxOptions {
        prices: Some((usd("0.02"), usd("-0.001"))),
        ..SandboxOptions::default()
    };
    assert!(opts.check().unwrap_err().contains("negative"));
    let e = Sandbox::start(opts).await.unwrap_err();
    assert!(e.to_string().contains("negative"), "{e}");
    assert!(SandboxOptions::default().check().is_ok());
}

const GATEWAY: &str = "/apis/v1/dataforseo";

/// A dated sandbox serving as a gateway under [`GATEWAY`].
async fn gateway_sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions {
        today: NaiveDate::from_ymd_opt(2025, 6, 15),
        gateway: Some(GatewayOptions {
            prefix: GATEWAY.into(),
        }),
        ..SandboxOptions::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_gateway_serves_under_its_prefix_takes_a_bare_object_and_passes_the_cost_through() {
    let sb = gateway_sandbox().await;
    assert_eq!(sb.base_url(), format!("http://{}{GATEWAY}", sb.addr()));
    assert!(
        sb.describe().starts_with("no user_data, "),
        "{}",
        sb.describe()
    );
    let history = format!("{GATEWAY}/backlinks/history/live");
    let task = r#"{"target":"example.com","date_from":"2025-01-01","tag":"h1"}"#;
    // January to June: six monthly rows.
    let v = served_and_charged(&sb, &history, task, price(6)).await;
    assert_eq!(v["status_code"], 20000, "{v}");
    assert_eq!(Usd::from_json(&v["cost"]), Some(price(6)));
    let t = &v["tasks"][0];
    assert_eq!(t["status_code"], 20000);
    assert_eq!(Usd::from_json(&t["cost"]), Some(price(6)));
    assert_eq!(t["path"], json!(["v3", "backlinks", "history", "live"]));
    assert_eq!(t["data"]["tag"], "h1");
    assert_eq!(t["result"][0]["target"], "example.com");
    assert_eq!(t["result"][0]["items"].as_array().unwrap().len(), 6);
    assert_eq!(sb.requests().pop().unwrap().request["tag"], "h1");

    // The same task as an array of one is the same answer.
    let array = served_and_charged(&sb, &history, &format!("[{task}]"), price(6)).await;
    assert_eq!(array["tasks"][0]["result"], t["result"]);

    let summary = format!("{GATEWAY}/backlinks/summary/live");
    let v = served_and_charged(&sb, &summary, r#"{"target":"a.com","x":1}"#, Usd::ZERO).await;
    assert_eq!(v["tasks"][0]["status_code"], 40501);
    assert_eq!(v["tasks"][0]["status_message"], "Invalid Field: 'x'.");
    let v = served_and_charged(
        &sb,
        &summary,
        r#"[{"target":"a.com"},{"target":"b.com"}]"#,
        Usd::ZERO,
    )
    .await;
    assert_eq!(v["status_code"], 40000, "{v}");
    let v = served_and_charged(&sb, &summary, r#""a.com""#, Usd::ZERO).await;
    assert_eq!(v["status_code"], 40000, "{v}");

    let stats = sb.stats();
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.by_endpoint.get("history"), Some(&2));
    assert_eq!(stats.by_endpoint.get("summary"), Some(&3));
    assert_eq!(stats.charged_usd, price(6) * 2);
    sb.stop().await;
}

#[tokio::test]
async fn a_gateway_serves_nothing_under_v3_no_user_data_and_takes_only_a_bearer_token() {
    let sb = gateway_sandbox().await;
    let bearer = Some("Bearer sandbox-token");
    let task = r#"{"target":"a.com"}"#;
    for path in [
        SUMMARY.to_string(),
        "/v3/appendix/user_data".to_string(),
        format!("{GATEWAY}/appendix/user_data"),
    ] {
        let method = if path.contains("user_data") {
            "GET"
        } else {
            "POST"
        };
        let (status, body) = http(sb.addr(), method, &path, bearer, task).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let summary = format!("{GATEWAY}/backlinks/summary/live");
    let (status, _) = http(
        sb.addr(),
        "POST",
        &summary,
        Some(&basic("sandbox", "sandbox")),
        task,
    )
    .await;
    assert_eq!(status, 401, "a gateway takes no login and password");
    let (status, _) = http(sb.addr(), "POST", &summary, bearer, task).await;
    assert_eq!(status, 200);
    let stats = sb.stats();
    assert_eq!((stats.requests, stats.unauthorized), (1, 1));
    sb.stop().await;

    // The API itself takes no bare object.
    let sb = dated_sandbox().await;
    let v = served_and_charged(&sb, SUMMARY, task, Usd::ZERO).await;
    assert_eq!(v["status_code"], 40000, "{v}");
    assert_eq!(v["status_message"], MSG_ONE_TASK);
    sb.stop().await;
}

#[tokio::test]
async fn a_gateway_prefix_is_read_with_or_without_slashes_and_a_malformed_one_is_refused() {
    let path = |p: &str| GatewayOptions { prefix: p.into() }.path();
    assert_eq!(path("/apis/v1/dataforseo").unwrap(), "/apis/v1/dataforseo");
    assert_eq!(path("apis/v1/dataforseo/").unwrap(), "/apis/v1/dataforseo");
    assert_eq!(path("/").unwrap(), "");
    for bad in ["/a//b", "/a/{name}", "/a b", "/a/../b", "/*rest", "/a?b=1"] {
        assert!(path(bad).is_err(), "{bad}");
    }

    let sb = Sandbox::start(SandboxOptions {
        gateway: Some(GatewayOptions {
            prefix: "gw/".into(),
        }),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(sb.base_url(), format!("http://{}/gw", sb.addr()));
    let (status, _) = http(
        sb.addr(),
        "POST",
        "/gw/backlinks/summary/live",
        Some("Bearer sandbox-token"),
        r#"{"target":"a.com"}"#,
    )
    .await;
    assert_eq!(status, 200);
    sb.stop().await;

    let e = Sandbox::start(SandboxOptions {
        gateway: Some(GatewayOptions {
            prefix: "/a/{name}".into(),
        }),
        ..SandboxOptions::default()
    })
    .await
    .unwrap_err();
    assert!(e.to_string().contains("gateway prefix"), "{e}");
}

#[tokio::test]
async fn user_data_reports_the_days_spend_per_function_and_another_consumers_and_starts_again_at_midnight()
 {
    let sb = dated_sandbox().await;
    served_and_charged(&sb, SUMMARY, r#"[{"target":"a.com"}]"#, price(1)).await;
    served_and_charged(&sb, BULK, &bulk_task("a.com"), price(3)).await;
    let (acct, body) = account(&sb).await;
    // The shape of the vendor's client (AppendixMoneyData): each period names itself in
    // `value`; per function an AppendixInfo of call kinds, these live calls under `live`.
    let stats = &body["tasks"][0]["result"][0]["money"]["statistics"];
    assert_eq!(stats["day"]["value"], json!("2025-06-15"));
    let minute = stats["minute"]["value"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(minute, "%Y-%m-%d %H:%M").is_ok(),
        "{minute}"
    );
    assert!(
        stats["day"]["backlinks"]["summary"]["live"].is_number(),
        "{stats}"
    );
    let rates = &body["tasks"][0]["result"][0]["rates"]["statistics"]["day"];
    assert_eq!(rates["backlinks"]["summary"]["live"], json!(1), "{rates}");
    let day = acct.books.spent_day.clone().unwrap();
    assert_eq!(day.total, Some(price(1) + price(3)));
    assert_eq!(day.backlinks, Some(price(1) + price(3)));
    assert_eq!(day.by_function["summary"], price(1));
    assert_eq!(day.by_function["bulk_backlinks"], price(3));
    assert_eq!(acct.books.spent_minute.unwrap().total, day.total);
    let requests = acct.books.requests_day.unwrap();
    assert_eq!(requests.backlinks, Some(usd("2")));
    assert_eq!(acct.books.rate_limit_minute, Some(2000));
    assert_eq!(acct.books.money_limit_day, None);

    // Another consumer of the same account, told over HTTP as another process would.
    let (status, text) = http(
        sb.addr(),
        "POST",
        "/sandbox/other-consumer",
        None,
        r#"{"usd": 1.5, "requests": 7, "function": "history"}"#,
    )
    .await;
    assert_eq!(status, 204, "{text}");
    let (acct, _) = account(&sb).await;
    let day = acct.books.spent_day.unwrap();
    assert_eq!(day.total, Some(price(1) + price(3) + usd("1.5")));
    assert_eq!(day.by_function["history"], usd("1.5"));
    assert_eq!(acct.books.requests_day.unwrap().total, Some(usd("9")));
    assert_eq!(
        acct.balance,
        Some(usd("100") - price(1) - price(3) - usd("1.5"))
    );
    assert_eq!(
        sb.stats().charged_usd,
        price(1) + price(3),
        "what this sandbox served is apart"
    );
    let (status, _) = http(
        sb.addr(),
        "POST",
        "/sandbox/other-consumer",
        None,
        r#"{"usd": -1}"#,
    )
    .await;
    assert_eq!(status, 400);

    // The next day (the sandbox's clock) starts from zero; the balance stays spent.
    sb.set_today(NaiveDate::from_ymd_opt(2025, 6, 16).unwrap());
    let (acct, _) = account(&sb).await;
    assert_eq!(acct.books.spent_day.unwrap().total, Some(Usd::ZERO));
    assert_eq!(acct.books.requests_day.unwrap().total, Some(Usd::ZERO));
    assert_eq!(
        acct.balance,
        Some(usd("100") - price(1) - price(3) - usd("1.5"))
    );
    sb.stop().await;
}

#[tokio::test]
async fn the_accounts_own_daily_limit_is_reported_and_refuses_with_40203_once_reached() {
    let sb = Sandbox::start(SandboxOptions {
        today: NaiveDate::from_ymd_opt(2025, 6, 15),
        limits: AccountLimits {
            money_day: Some(usd("0.03")),
            money_minute: None,
            ..Default::default()
        },
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let (acct, _) = account(&sb).await;
    assert_eq!(acct.books.money_limit_day, Some(usd("0.03")));
    served_and_charged(&sb, SUMMARY, r#"[{"target":"a.com"}]"#, price(1)).await;
    served_and_charged(&sb, SUMMARY, r#"[{"target":"b.com"}]"#, price(1)).await;
    // $0.04006 spent of $0.03: refused, not charged.
    let v = served_and_charged(&sb, SUMMARY, r#"[{"target":"c.com"}]"#, Usd::ZERO).await;
    assert_eq!(v["status_code"], 40203, "{v}");
    // Another consumer's spend counts against the same limit, and a new day frees it.
    sb.set_today(NaiveDate::from_ymd_opt(2025, 6, 16).unwrap());
    sb.other_consumer(&OtherConsumer {
        usd: usd("0.05"),
        requests: 1,
        api: "backlinks".into(),
        function: "summary".into(),
    });
    let v = served_and_charged(&sb, SUMMARY, r#"[{"target":"c.com"}]"#, Usd::ZERO).await;
    assert_eq!(v["status_code"], 40203, "{v}");
    sb.set_limits(AccountLimits::default());
    served_and_charged(&sb, SUMMARY, r#"[{"target":"c.com"}]"#, price(1)).await;
    sb.stop().await;
}

#[tokio::test]
async fn a_rate_limit_set_on_the_account_is_reported_and_refuses_with_40202_past_it() {
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let (a, _) = account(&sb).await;
    assert_eq!(a.books.rate_limit_minute, Some(2000));
    sb.set_limits(AccountLimits {
        rate_minute: Some(3),
        ..AccountLimits::default()
    });
    let (a, _) = account(&sb).await;
    assert_eq!(a.books.rate_limit_minute, Some(3));
    // Three calls start in the minute (the free user_data is not counted); the
    // fourth is refused.
    let auth = basic("sandbox", "sandbox");
    let task = r#"[{"target":"a.com"}]"#;
    let post = || {
        http(
            sb.addr(),
            "POST",
            "/v3/backlinks/summary/live",
            Some(&auth),
            task,
        )
    };
    for _ in 0..3 {
        let (status, body) = post().await;
        assert!(body.contains("\"status_code\":20000"), "{status}: {body}");
    }
    let (status, body) = post().await;
    assert!(body.contains("40202"), "{status}: {body}");
    sb.stop().await;
}

#[tokio::test]
async fn a_request_limit_per_day_is_reported_and_refuses_with_40202_once_the_days_are_used() {
    let sb = Sandbox::start(SandboxOptions {
        today: NaiveDate::from_ymd_opt(2025, 6, 15),
        limits: AccountLimits {
            rate_day: Some(2),
            ..Default::default()
        },
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let (acct, _) = account(&sb).await;
    assert_eq!(acct.books.rate_limit_day, Some(2));
    // Another consumer's request counts: one of the day's two is left.
    sb.other_consumer(&OtherConsumer {
        usd: usd("0.02"),
        requests: 1,
        api: "backlinks".into(),
        function: "summary".into(),
    });
    served_and_charged(&sb, SUMMARY, r#"[{"target":"a.com"}]"#, price(1)).await;
    let v = served_and_charged(&sb, SUMMARY, r#"[{"target":"b.com"}]"#, Usd::ZERO).await;
    assert_eq!(v["status_code"], 40202, "{v}");
    assert!(
        v["status_message"]
            .as_str()
            .is_some_and(|m| m.contains("requests per day")),
        "{v}"
    );
    // The next day starts again.
    sb.set_today(NaiveDate::from_ymd_opt(2025, 6, 16).unwrap());
    served_and_charged(&sb, SUMMARY, r#"[{"target":"b.com"}]"#, price(1)).await;
    sb.stop().await;
}
