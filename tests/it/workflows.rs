//! The five workflows as views (issue 26, part 6): a sandbox fill over HTTP of 20
//! targets and 3 competitors each, over 3 simulated days, and each view's rows checked
//! against direct queries of the tables it reads (the latest fire only).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use linkledger::api::Endpoint;
use linkledger::collect::executor::AttemptEnd;
use linkledger::store::Store;
use serde_json::json;

use crate::common::*;
use crate::list_tables::{buy, executor_at};

/// The first page (up to 1000 items) of a listing, bought and stored.
async fn buy_page(
    store: &Store,
    exec: &linkledger::collect::executor::Executor,
    endpoint: Endpoint,
    target: &str,
) {
    let end = buy(
        store,
        exec,
        endpoint,
        json!({"target": target, "limit": 1000, "offset": 0}),
    )
    .await;
    assert!(
        matches!(end, AttemptEnd::Stored { .. }),
        "{endpoint} {target}: {end:?}"
    );
}

/// Each `(endpoint, target)`'s first page, bought and stored, a few at a time: the
/// sandbox building the answers is most of the fill's time (the days are set before).
async fn buy_pages<'a>(
    store: &Store,
    exec: &linkledger::collect::executor::Executor,
    pages: impl Iterator<Item = (Endpoint, &'a str)>,
) {
    use futures::StreamExt;
    futures::stream::iter(pages)
        .for_each_concurrent(4, |(endpoint, target)| {
            buy_page(store, exec, endpoint, target)
        })
        .await;
}

async fn pairs(store: &Store, sql: &str, day: NaiveDate) -> BTreeSet<(String, String)> {
    sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(day)
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn triples(store: &Store, sql: &str, day: NaiveDate) -> BTreeSet<(String, String, String)> {
    sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(day)
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn one<T>(store: &Store, sql: &str, day: NaiveDate) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    let (v,): (T,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(day)
        .fetch_one(store.pool())
        .await
        .unwrap();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_workflow_view_answers_its_question_from_the_latest_fire_of_the_stored_lists() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let day1 = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let days = [day1, day1.succ_opt().unwrap(), day1 + chrono::Days::new(2)];
    let day3 = days[2];
    let noon = |d: NaiveDate| d.and_hms_opt(12, 0, 0).unwrap().and_utc();
    let clock = Arc::new(Mutex::new(noon(day1)));
    let exec = executor_at(&store, &sb, &clock);
    // 20 targets whose backlinks fit a page.
    let targets: Vec<String> = (0..400)
        .map(|i| format!("shop{i}.example.com"))
        .filter(|t| {
            let task = json!({"target": t, "limit": 1});
            let result = linkledger::sandbox::build_result(Endpoint::Backlinks, &task, day1)
                .unwrap()[0]
                .clone();
            (50..900).contains(&result["total_count"].as_u64().unwrap())
        })
        .take(20)
        .collect();
    assert_eq!(targets.len(), 20);

    let mut rivals: Vec<String> = Vec::new();
    for (n, &day) in days.iter().enumerate() {
        sb.set_today(day);
        *clock.lock().unwrap() = noon(day);
        let pages = targets.iter().flat_map(|t| {
            [
                Endpoint::Backlinks,
                Endpoint::ReferringDomains,
                Endpoint::Anchors,
                Endpoint::DomainPages,
                Endpoint::Competitors,
            ]
            .map(|endpoint| (endpoint, t.as_str()))
        });
        buy_pages(&store, &exec, pages).await;
        if n == 0 {
            // Each target's 3 competitors with the most intersections on day 1.
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT DISTINCT competitor FROM (
                     SELECT competitor, row_number() OVER (PARTITION BY target
                                                           ORDER BY intersections DESC, competitor) AS n
                     FROM linkledger.competitors) c
                 WHERE n <= 3 ORDER BY competitor",
            )
            .fetch_all(store.pool())
            .await
            .unwrap();
            rivals = rows.into_iter().map(|(c,)| c).collect();
            assert!(rivals.len() >= 3, "{rivals:?}");
        }
        let pages = rivals
            .iter()
            .map(|c| (Endpoint::ReferringDomains, c.as_str()));
        buy_pages(&store, &exec, pages).await;
    }
    // Ranks of some of the referring domains, stored on the last day: half of target 0's
    // gap domains against its first competitor.
    let gap_domains: Vec<(String,)> = sqlx::query_as(
        "SELECT domain FROM linkledger.workflow_backlink_gaps
         WHERE (target, competitor) = (SELECT target, competitor FROM linkledger.workflow_backlink_gaps
                                       ORDER BY target, competitor LIMIT 1)
         ORDER BY domain",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(gap_domains.len() >= 2, "{gap_domains:?}");
    let ranked: Vec<&str> = gap_domains
        .iter()
        .step_by(2)
        .take(1000)
        .map(|(d,)| d.as_str())
        .collect();
    let end = buy(
        &store,
        &exec,
        Endpoint::BulkRanks,
        json!({"targets": ranked}),
    )
    .await;
    assert!(matches!(end, AttemptEnd::Stored { .. }), "{end:?}");
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.bulk_ranks").await,
        ranked.len() as i64
    );
    // Every day's rows are stored; the views read the last day's.
    assert_eq!(
        count(
            &store,
            "SELECT count(DISTINCT collected_on) FROM linkledger.backlinks"
        )
        .await,
        3
    );

    // 1. Strongest backlinks by referring domain: one row per live referring domain of
    //    the last fire, the strongest link's rank the domain's highest.
    let view = pairs(
        &store,
        "SELECT target, domain_from FROM linkledger.workflow_strongest_backlinks WHERE $1 = $1",
        day3,
    )
    .await;
    let base = pairs(
        &store,
        "SELECT DISTINCT target, domain_from FROM linkledger.backlinks
         WHERE collected_on = $1 AND is_lost IS NOT TRUE",
        day3,
    )
    .await;
    assert!(!view.is_empty());
    assert_eq!(view, base, "one row per referring domain of the last fire");
    let stale: i64 = one(
        &store,
        "SELECT count(*) FROM linkledger.workflow_strongest_backlinks WHERE fire_on <> $1",
        day3,
    )
    .await;
    assert_eq!(stale, 0, "only the latest fire is read");
    let t0 = targets[0].as_str();
    let (rank, top_rank, links, listed): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT strongest_rank FROM linkledger.workflow_strongest_backlinks
                 WHERE target = $1 AND strength_order = 1),
                (SELECT max(rank) FROM linkledger.backlinks
                 WHERE target = $1 AND collected_on = $2 AND is_lost IS NOT TRUE),
                (SELECT sum(links_listed)::bigint FROM linkledger.workflow_strongest_backlinks
                 WHERE target = $1),
                (SELECT count(*) FROM linkledger.backlinks
                 WHERE target = $1 AND collected_on = $2 AND is_lost IS NOT TRUE)",
    )
    .bind(t0)
    .bind(day3)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        rank, top_rank,
        "the strongest domain holds the strongest link"
    );
    assert_eq!(
        links, listed,
        "every live link of the last fire counted once"
    );
    let with_anchor_backlinks: i64 = one(
        &store,
        "SELECT count(*) FROM linkledger.workflow_strongest_backlinks w
         JOIN linkledger.anchors a ON a.target = w.target AND a.anchor = w.strongest_anchor
                                  AND a.collected_on = $1
         WHERE a.backlinks = w.strongest_anchor_backlinks",
        day3,
    )
    .await;
    assert!(
        with_anchor_backlinks > 0,
        "the anchors listing's count beside the link"
    );

    // 2. Pages earning the most links: the last fire's pages, the first the one with
    //    the most backlinks, its top anchor the most used by the stored links to it.
    let view = pairs(
        &store,
        "SELECT target, page FROM linkledger.workflow_pages_earning_links WHERE $1 = $1",
        day3,
    )
    .await;
    let base = pairs(
        &store,
        "SELECT target, page FROM linkledger.domain_pages WHERE collected_on = $1",
        day3,
    )
    .await;
    assert!(!view.is_empty());
    assert_eq!(view, base);
    let (most, top): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT backlinks FROM linkledger.workflow_pages_earning_links
                 WHERE target = $1 AND backlinks_order = 1),
                (SELECT max(page_summary_backlinks) FROM linkledger.domain_pages
                 WHERE target = $1 AND collected_on = $2)",
    )
    .bind(t0)
    .bind(day3)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(most, top);
    let (page, first_anchor): (String, String) = sqlx::query_as(
        "SELECT page, top_anchors[1] FROM linkledger.workflow_pages_earning_links
         WHERE top_anchors IS NOT NULL ORDER BY target, page LIMIT 1",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let (expected_anchor,): (String,) = sqlx::query_as(
        "SELECT anchor FROM linkledger.backlinks
         WHERE url_to = $1 AND collected_on = $2 AND is_lost IS NOT TRUE AND anchor IS NOT NULL
         GROUP BY anchor ORDER BY count(*) DESC, anchor LIMIT 1",
    )
    .bind(&page)
    .bind(day3)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(first_anchor, expected_anchor, "{page}");

    // 3. Link opportunities: the domains of the competitors' last fire absent from the
    //    target's last fire.
    let view = pairs(
        &store,
        "SELECT target, domain FROM linkledger.workflow_link_opportunities WHERE $1 = $1",
        day3,
    )
    .await;
    let base = pairs(
        &store,
        "SELECT c.target, r.domain
         FROM linkledger.competitors c
         JOIN linkledger.referring_domains r ON r.target = c.competitor AND r.collected_on = $1
         WHERE c.collected_on = $1 AND r.domain <> c.target
         EXCEPT
         SELECT target, domain FROM linkledger.referring_domains WHERE collected_on = $1",
        day3,
    )
    .await;
    assert!(!view.is_empty());
    assert_eq!(view, base, "linking to a competitor, not to me");
    let (t, domain, linked): (String, String, i64) = sqlx::query_as(
        "SELECT target, domain, competitors_linked FROM linkledger.workflow_link_opportunities
         ORDER BY competitors_linked DESC, target, domain LIMIT 1",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let (direct,): (i64,) = sqlx::query_as(
        "SELECT count(DISTINCT c.competitor) FROM linkledger.competitors c
         JOIN linkledger.referring_domains r ON r.target = c.competitor AND r.collected_on = $3
         WHERE c.target = $1 AND c.collected_on = $3 AND r.domain = $2",
    )
    .bind(&t)
    .bind(&domain)
    .bind(day3)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(linked, direct, "{t} {domain}");

    // 4. Pages wasting links: the last fire's pages answering 300 or more, with the
    //    stored links pointing at them.
    let view = pairs(
        &store,
        "SELECT target, page FROM linkledger.workflow_wasted_link_pages WHERE $1 = $1",
        day3,
    )
    .await;
    let base = pairs(
        &store,
        "SELECT target, page FROM linkledger.domain_pages
         WHERE collected_on = $1 AND status_code >= 300",
        day3,
    )
    .await;
    assert!(!view.is_empty());
    assert_eq!(view, base);
    let codes: i64 = one(
        &store,
        "SELECT count(DISTINCT status_code) FROM linkledger.workflow_wasted_link_pages WHERE $1 = $1",
        day3,
    )
    .await;
    assert_eq!(codes, 2, "redirected (301) and broken (404) pages");
    let (page, stored): (String, i64) = sqlx::query_as(
        "SELECT page, links_stored FROM linkledger.workflow_wasted_link_pages
         ORDER BY links_stored DESC, page LIMIT 1",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let direct: i64 = sqlx::query_as::<_, (i64,)>(
        "SELECT count(DISTINCT link_id) FROM linkledger.backlinks
         WHERE url_to = $1 AND collected_on = $2 AND is_lost IS NOT TRUE",
    )
    .bind(&page)
    .bind(day3)
    .fetch_one(store.pool())
    .await
    .unwrap()
    .0;
    assert!(stored > 0);
    assert_eq!(stored, direct, "{page}");

    // 5. Backlink gaps: per target and competitor, the competitor's domains absent from
    //    the target's, ranked by the stored bulk ranks where there are some.
    let view = triples(
        &store,
        "SELECT target, competitor, domain FROM linkledger.workflow_backlink_gaps WHERE $1 = $1",
        day3,
    )
    .await;
    let base = triples(
        &store,
        "SELECT c.target, c.competitor, r.domain
         FROM linkledger.competitors c
         JOIN linkledger.referring_domains r ON r.target = c.competitor AND r.collected_on = $1
         WHERE c.collected_on = $1 AND r.domain <> c.target
           AND NOT EXISTS (SELECT 1 FROM linkledger.referring_domains m
                           WHERE m.target = c.target AND m.collected_on = $1 AND m.domain = r.domain)",
        day3,
    )
    .await;
    assert!(!view.is_empty());
    assert_eq!(view, base);
    let (ranked_rows, matching, first_is_top): (i64, i64, bool) = sqlx::query_as(
        "WITH g AS (SELECT * FROM linkledger.workflow_backlink_gaps
                    WHERE (target, competitor) = (SELECT target, competitor
                                                  FROM linkledger.workflow_backlink_gaps
                                                  ORDER BY target, competitor LIMIT 1))
         SELECT count(bulk_rank),
                count(*) FILTER (WHERE bulk_rank = (SELECT rank FROM linkledger.bulk_ranks b
                                                    WHERE b.target = g.domain)),
                (SELECT bulk_rank FROM g WHERE gap_order = 1) = (SELECT max(rank) FROM linkledger.bulk_ranks)
         FROM g",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        ranked_rows,
        ranked.len() as i64,
        "a rank where one is stored"
    );
    assert_eq!(matching, ranked_rows, "the stored bulk rank");
    assert!(first_is_top, "the gap ranked by the stored bulk ranks");

    // Each view's rows are one per its grain (the `grain:` line of its comment).
    for (view, grain) in [
        (
            "workflow_strongest_backlinks",
            "target, options_key, domain_from",
        ),
        ("workflow_pages_earning_links", "target, options_key, page"),
        ("workflow_link_opportunities", "target, options_key, domain"),
        ("workflow_wasted_link_pages", "target, options_key, page"),
        (
            "workflow_backlink_gaps",
            "target, competitor, options_key, domain",
        ),
    ] {
        let comment: String = one(
            &store,
            &format!("SELECT obj_description('linkledger.{view}'::regclass) WHERE $1 = $1"),
            day3,
        )
        .await;
        assert!(comment.ends_with(&format!("grain: {grain}")), "{view}");
        let dupes = count(
            &store,
            &format!(
                "SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT {grain} FROM linkledger.{view}) d)
                 FROM linkledger.{view}"
            ),
        )
        .await;
        assert_eq!(dupes, 0, "{view}");
    }
}
