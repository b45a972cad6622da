//! A list collection's listing bought as planned work, page by page, over HTTP from the
//! sandbox through the real binary: each page a work item with its own ledger row and
//! raw body; a listing of N rows bought in `ceil(min(N, max_rows) / 1000)` calls whose
//! costs are what the sandbox charged; a kill -9 mid-way and a restart buy no page
//! twice beyond the requests in flight at the kill.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use linkledger::api::prices::Rate;
use linkledger::api::{Client, Endpoint};
use linkledger::sandbox::Sandbox;
use linkledger::warehouse::normalize::Context;
use serde_json::{Value, json};

use crate::common::*;

/// The first `n{i}.example.com`s whose live backlinks today number in `range`, with
/// their totals, asked of a sandbox of their own (the same links the test's sandbox
/// serves today, without counting at it).
async fn targets_with(range: std::ops::RangeInclusive<u64>, n: usize) -> Vec<(String, u64)> {
    let sb = default_sandbox().await;
    let client = Client::with_credentials(&api_config(&sb, 4), &sandbox_credentials()).unwrap();
    let mut out = Vec::new();
    for i in 0..400 {
        let t = format!("n{i}.example.com");
        let permit = client.acquire().await;
        let answer = client
            .send(
                &permit,
                Endpoint::Backlinks,
                &json!({"target": t, "limit": 1}),
            )
            .await
            .unwrap_or_else(|a| panic!("no answer: {a:?}"));
        let body = client.read(answer).await.body.expect("a JSON body");
        let total = body["tasks"][0]["result"][0]["total_count"]
            .as_u64()
            .unwrap();
        if range.contains(&total) {
            out.push((t, total));
            if out.len() == n {
                sb.stop().await;
                return out;
            }
        }
    }
    panic!("fewer than {n} targets with {range:?} backlinks");
}

fn backlinks_job(targets: &[&str], max_rows: u64) -> String {
    let list: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "name = \"links\"\ntargets = [{}]\n[[collect]]\nendpoint = \"backlinks\"\nschedule = \"@daily\"\nmax_rows = {max_rows}\n",
        list.join(", ")
    )
}

/// Where a page starts: its `offset` and its `search_after_token`.
type PageKey = (u64, Option<String>);

/// The backlinks requests the sandbox answered with data, per target: each page's
/// start and the links it served.
fn pages_served(sb: &Sandbox) -> BTreeMap<String, Vec<(PageKey, Vec<String>)>> {
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for r in sb.requests() {
        if r.endpoint != "backlinks" || r.http_status != 200 {
            continue;
        }
        let task = &r.request[0];
        let key = (
            task["offset"].as_u64().unwrap_or(0),
            task["search_after_token"].as_str().map(str::to_string),
        );
        let links = r
            .response
            .as_ref()
            .and_then(|b| b["tasks"][0]["result"][0]["items"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|i| format!("{} {} {}", i["url_from"], i["url_to"], i["anchor"]))
            .collect();
        out.entry(task["target"].as_str().unwrap().to_string())
            .or_default()
            .push((key, links));
    }
    out
}

#[tokio::test]
async fn a_listing_of_n_rows_is_bought_in_ceil_of_n_over_a_thousand_calls_each_in_the_ledger_at_what_the_sandbox_charged()
 {
    // One listing under max_rows, one over it, paged past offset 20,000 by token.
    let small = targets_with(1_001..=2_400, 1).await.remove(0);
    let large = targets_with(25_000..=200_000, 1).await.remove(0);
    let max_rows = 22_500;
    let db = TestDb::new().await;
    let sb = sandbox(linkledger::sandbox::SandboxOptions {
        record_limit: 100_000,
        ..Default::default()
    })
    .await;
    let wd = Workdir::new(&[(
        "links.toml",
        &backlinks_job(&[&small.0, &large.0], max_rows),
    )]);
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let served = pages_served(&sb);
    let expect = [(&small.0, small.1), (&large.0, max_rows)];
    for (target, rows) in expect {
        let pages = &served[target.as_str()];
        assert_eq!(pages.len() as u64, rows.div_ceil(1000), "{target}: calls");
        let links: Vec<&String> = pages.iter().flat_map(|(_, l)| l).collect();
        assert_eq!(links.len() as u64, rows, "{target}: rows served");
        let distinct: HashSet<&&String> = links.iter().collect();
        assert_eq!(distinct.len(), links.len(), "{target}: a link served twice");
    }
    let tokens = served[large.0.as_str()]
        .iter()
        .filter(|((_, token), _)| token.is_some())
        .count();
    assert_eq!(tokens, 2, "pages 22 and 23 by search_after_token");
    let calls = small.1.div_ceil(1000) + 23;
    assert_eq!(sb.stats().requests, calls, "nothing else asked");

    // Each page: its work item, its ledger row and its raw body.
    let store = db.store().await;
    let per_page: Vec<(i64, String, Option<Value>, i64)> = sqlx::query_as(
        "SELECT w.id, w.state, w.paging,
                (SELECT count(*) FROM linkledger.api_calls c
                 JOIN linkledger.raw_responses r ON r.api_call_id = c.id
                 WHERE c.work_id = w.id AND c.outcome = 'ok')
         FROM linkledger.work w WHERE w.endpoint = 'backlinks' ORDER BY w.id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(per_page.len() as u64, calls);
    for (id, state, paging, answered) in &per_page {
        assert_eq!(state, "succeeded", "work {id}");
        assert_eq!(*answered, 1, "work {id}: one ledger row with its raw body");
        let paging = paging.as_ref().expect("a page's state");
        assert_eq!(paging["max_rows"], max_rows);
        assert!(paging["items"].as_u64().unwrap() > 0, "{paging}");
    }
    let last_of_large: Value = sqlx::query_scalar(
        "SELECT paging FROM linkledger.work WHERE $1 = ANY(targets) ORDER BY id DESC LIMIT 1",
    )
    .bind(&large.0)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(last_of_large["page"], 23);
    assert_eq!(last_of_large["rows_before"], 22_000);
    assert_eq!(
        last_of_large["items"], 500,
        "the last page asks only for the rows wanted"
    );
    assert_eq!(last_of_large["first_total"], large.1);

    // The ledger's costs are what the sandbox charged: the list price of each page.
    let booked: rust_decimal::Decimal = sqlx::query_scalar(
        "SELECT sum(cost_usd) FROM linkledger.api_calls WHERE endpoint = 'backlinks'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(booked, sb.stats().charged_usd.decimal());
    assert_eq!(
        booked,
        Rate::LIST
            .price_calls(calls as i64, (small.1 + max_rows) as i64)
            .decimal()
    );

    // Every link served is stored once in the backlinks table: rows stored = rows served.
    for (target, rows) in expect {
        let stored: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT link_id) FROM linkledger.backlinks WHERE target = $1",
        )
        .bind(target)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(stored as u64, rows, "{target}: rows stored");
    }
    let written: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(rows_written), 0)::bigint FROM linkledger.work")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(written as u64, small.1 + max_rows, "rows counted per page");
    sb.stop().await;
}

#[tokio::test]
async fn plan_shows_a_listing_as_its_pages_at_most_at_the_list_price() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[("links.toml", &backlinks_job(&["example.com"], 5_000))]);
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["plan", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let line = &plan["jobs"][0]["collections"][0];
    assert_eq!(line["calls_per_fire"], 5, "{line}");
    assert_eq!(line["rows_per_fire"], 5_000, "{line}");
    assert_eq!(line["cost_per_fire"], "0.25", "{line}");
    assert_eq!(sb.stats().requests, 0);
    sb.stop().await;
}

#[tokio::test]
async fn a_twenty_page_listing_killed_mid_way_and_run_again_buys_no_page_twice_beyond_those_in_flight()
 {
    let targets = targets_with(20_000..=200_000, 2).await;
    let names: Vec<&str> = targets.iter().map(|(t, _)| t.as_str()).collect();
    let db = TestDb::new().await;
    let sb = sandbox(linkledger::sandbox::SandboxOptions {
        record_limit: 100_000,
        ..with_latency(Duration::from_millis(250))
    })
    .await;
    let wd = Workdir::new(&[("links.toml", &backlinks_job(&names, 20_000))]);
    // The killed run's shared slots lapse within one lease before the second run can
    // send: the daemon harness's 5 s, not the default 30 s.
    let env = with_env(env_for(&db, &sb), &[("LINKLEDGER_QUEUE__LEASE", "5s")]);
    let mut child = spawn_quiet(wd.path(), &env, &["run", "--once"]);
    wait_for(Duration::from_secs(60), "a dozen pages bought", || async {
        sb.stats().requests >= 12
    })
    .await;
    child.kill().await.unwrap();
    let at_kill = sb.stats().requests;
    assert!(at_kill < 40, "killed mid-way ({at_kill} requests)");
    let store = db.store().await;
    let in_flight = count(
        &store,
        "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'sent'",
    )
    .await;
    // Each listing has one page in flight at most: its next page is enqueued only
    // once it is answered.
    assert!(in_flight <= 2, "{in_flight} requests in flight");

    let again = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let served = pages_served(&sb);
    let mut twice = 0;
    for (target, _) in &targets {
        let pages = &served[target.as_str()];
        let mut per_page: BTreeMap<&PageKey, usize> = BTreeMap::new();
        for (key, _) in pages {
            *per_page.entry(key).or_default() += 1;
        }
        assert_eq!(per_page.len(), 20, "{target}: every page bought");
        twice += per_page.values().map(|n| n - 1).sum::<usize>();
        let links: HashSet<&String> = pages.iter().flat_map(|(_, l)| l).collect();
        assert_eq!(links.len(), 20_000, "{target}: every row of the listing");
    }
    eprintln!("at the kill: {at_kill} requests, {in_flight} in flight; bought twice: {twice}");
    assert!(
        twice as i64 <= in_flight,
        "{twice} pages bought twice, {in_flight} in flight at the kill"
    );
    // The run that finished holds all 40 pages: those bought before the kill reused.
    let done = count(
        &store,
        "SELECT count(*) FROM linkledger.work w JOIN linkledger.runs r ON r.id = w.run_id
         WHERE r.status = 'succeeded' AND w.state = 'succeeded'",
    )
    .await;
    assert_eq!(done, 40);
    sb.stop().await;
}

#[tokio::test]
async fn a_daemons_fire_of_a_list_collection_buys_its_listing_page_by_page_in_its_run() {
    use crate::harness::{ONE_FIRE, ONE_FIRE_CATCH_UP, scene_with_jobs};
    let (target, total) = targets_with(2_001..=9_000, 1).await.remove(0);
    let job = format!(
        "name = \"links\"\ntargets = [{target:?}]\n[[collect]]\nendpoint = \"backlinks\"\nschedule = \"{ONE_FIRE}\"\n{ONE_FIRE_CATCH_UP}\nmax_rows = 10000\n"
    );
    let sc = scene_with_jobs(&[("links.toml", &job)], Default::default(), &[]).await;
    let long_ago = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z").unwrap();
    seed_fire(&sc.store, "links", "backlinks", long_ago.into()).await;
    let mut d = sc.start_daemon().await;
    let pages = total.div_ceil(1000) as i64;
    wait_for_count(
        &sc.store,
        Duration::from_secs(60),
        "the fire's run closed",
        "SELECT count(*) FROM linkledger.runs WHERE kind = 'scheduled' AND status <> 'running'",
        |n| n >= 2,
    )
    .await;
    d.stop(Duration::from_secs(15)).await;
    let (status, calls): (String, i64) = sqlx::query_as(
        "SELECT r.status, (SELECT count(*) FROM linkledger.work w
                           WHERE w.run_id = r.id AND w.state = 'succeeded')
         FROM linkledger.runs r JOIN linkledger.fires f ON f.run_id = r.id
         WHERE f.scheduled_for > '2001-01-01'",
    )
    .fetch_one(sc.store.pool())
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), calls),
        ("succeeded", pages),
        "{}",
        d.log()
    );
    assert_eq!(
        sc.sb.stats().by_endpoint.get("backlinks").copied(),
        Some(pages as u64)
    );
}

/// A worker that dies after its page's answer was stored, before the page completed:
/// the next claim finishes the page from the stored answer without a request and
/// enqueues the next page; the dead claim can enqueue nothing any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_whose_worker_died_after_its_answer_is_finished_from_it_and_its_next_page_enqueued_once()
 {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use linkledger::collect::executor::AttemptEnd;
    use linkledger::plan::paging::Answered;
    use linkledger::store::RunKind;

    let (target, total) = targets_with(3_001..=9_000, 1).await.remove(0);
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let dies = Arc::new(AtomicBool::new(true));
    let hook_dies = dies.clone();
    let exec = executor(&store, &sb, 2).with_before_normalize(Arc::new(move |_| {
        if hook_dies.swap(false, Ordering::SeqCst) {
            panic!("the worker dies before its page completes");
        }
    }));
    let job = job(&backlinks_job(&[&target], 10_000));
    let run = enqueue_job(&store, &job, RunKind::Once, 5).await;
    let first_call = linkledger::plan::plan_job(&job, today()).remove(0);
    let first = claim_one(&store, "dies", Duration::from_millis(300), run).await;
    let e = exec.clone();
    let (call, fence) = (first_call.clone(), first.fence());
    let died = tokio::spawn(async move { e.attempt(run, &call, fence).await }).await;
    assert!(died.unwrap_err().is_panic());
    assert_eq!(sb.stats().requests, 1);
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.work").await,
        1,
        "no next page before its page completes"
    );

    wait_for_count(
        &store,
        Duration::from_secs(10),
        "the dead claim's lease to lapse",
        "SELECT count(*) FROM linkledger.work WHERE lease_expires_at < now()",
        |n| n == 1,
    )
    .await;
    let again = claim_one(&store, "next", Duration::from_secs(30), run).await;
    assert_eq!(again.id, first.id);
    let end = exec.recover(&first_call, again.fence()).await.unwrap();
    // Finished from the paid answer: its thousand links stored, nothing bought again.
    assert_eq!(end, Some(AttemptEnd::Stored { rows: 1000 }));
    assert_eq!(sb.stats().requests, 1, "not bought again");
    // The dead claim, were it to finish now, is fenced off: no second next page.
    let request = json!({});
    let no_rows = linkledger::warehouse::normalize::normalize(
        &Context {
            endpoint: Endpoint::Backlinks,
            raw_response_id: 0,
            collected_at: chrono::Utc::now(),
            sent_at: chrono::Utc::now(),
            settle: Duration::ZERO,
            request: &request,
        },
        &json!({}),
    )
    .unwrap();
    let stale = store
        .complete_page(
            first.fence(),
            0,
            Endpoint::Backlinks,
            &Answered::empty(),
            &no_rows,
        )
        .await
        .unwrap();
    assert_eq!(stale, None);
    let next: Vec<(Value, String)> =
        sqlx::query_as("SELECT task, state FROM linkledger.work WHERE id <> $1 ORDER BY id")
            .bind(first.id)
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(next.len(), 1, "{next:?}");
    assert_eq!(next[0].0["offset"], 1000);
    assert_eq!(next[0].1, "queued");

    // The rest of the listing, by the workers as a once-run would: each page once.
    use linkledger::collect::workers::{Shutdown, WorkSet, WorkerConfig, Workers};
    Workers::new(
        exec.clone(),
        WorkerConfig::for_once(2),
        WorkSet::Runs(vec![run]),
    )
    .run(&Shutdown::default())
    .await
    .unwrap();
    assert_eq!(sb.stats().requests, total.div_ceil(1000));
    sb.stop().await;
}

/// The live backlinks of `target` on `day`, asked of a sandbox of its own.
async fn total_on(target: &str, day: chrono::NaiveDate) -> u64 {
    let sb = sandbox(linkledger::sandbox::SandboxOptions {
        today: Some(day),
        ..Default::default()
    })
    .await;
    let client = Client::with_credentials(&api_config(&sb, 1), &sandbox_credentials()).unwrap();
    let permit = client.acquire().await;
    let answer = client
        .send(
            &permit,
            Endpoint::Backlinks,
            &json!({"target": target, "limit": 1}),
        )
        .await
        .unwrap_or_else(|a| panic!("no answer: {a:?}"));
    let body = client.read(answer).await.body.expect("a JSON body");
    sb.stop().await;
    body["tasks"][0]["result"][0]["total_count"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_listing_whose_total_changes_between_its_pages_is_marked_on_the_pages_after_the_change() {
    use linkledger::store::RunKind;
    let (today, tomorrow) = (today(), today() + chrono::Days::new(1));
    let mut changed = None;
    for (t, total) in targets_with(3_001..=9_000, 8).await {
        let later = total_on(&t, tomorrow).await;
        if later != total {
            changed = Some((t, total, later));
            break;
        }
    }
    let (target, total, later) = changed.expect("a target whose links change overnight");
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = sandbox(linkledger::sandbox::SandboxOptions {
        today: Some(today),
        ..Default::default()
    })
    .await;
    let exec = executor(&store, &sb, 2);
    let job = job(&backlinks_job(&[&target], 3_000));
    let run = enqueue_job(&store, &job, RunKind::Once, 5).await;
    let first = claim_one(&store, "w", Duration::from_secs(30), run).await;
    let call = linkledger::plan::plan_job(&job, today).remove(0);
    exec.attempt(run, &call, first.fence()).await.unwrap();
    // The links change before the rest is paged.
    sb.set_today(tomorrow);
    use linkledger::collect::workers::{Shutdown, WorkSet, WorkerConfig, Workers};
    Workers::new(
        exec.clone(),
        WorkerConfig::for_once(2),
        WorkSet::Runs(vec![run]),
    )
    .run(&Shutdown::default())
    .await
    .unwrap();
    let pages: Vec<Value> = sqlx::query_scalar("SELECT paging FROM linkledger.work ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(pages[0]["total_count"], total);
    assert_eq!(pages[0].get("total_changed"), None, "{}", pages[0]);
    for p in &pages[1..] {
        assert_eq!(p["first_total"], total, "{p}");
        assert_eq!(p["total_count"], later, "{p}");
        assert_eq!(p["total_changed"], true, "{p}");
    }
    // The run's line says so.
    let record = store.run_record(run).await.unwrap().unwrap();
    assert_eq!(record.pages_changed, 2);
    let line = linkledger::ops::run_log::record_line(&record);
    assert!(
        line.contains("2 pages of a listing that changed while paged"),
        "{line}"
    );
    sb.stop().await;
}
