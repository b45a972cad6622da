//! `linkledger plan`: the month's bill through the real binary, asserted against hand
//! calculations at the list price ($0.02 per call + $0.00003 per row), with the clock
//! pinned by `--at`.

use rust_decimal::Decimal;
use serde_json::Value;

use crate::common::*;

/// Summary, bulk_ranks and history for three domains, in UTC.
const BRANDS: &str = r#"
name = "brands"
targets = ["a.com", "b.com", "c.com"]

[[collect]]
endpoint = "summary"
schedule = "0 6 * * *"

[[collect]]
endpoint = "bulk_ranks"
schedule = "30 8 * * 1-5"

[[collect]]
endpoint = "history"
schedule = "0 7 2 * *"
targets = ["a.com"]
params = { date_from = "2025-01-01" }
"#;

/// A daily 02:30 in Berlin: on 2026-03-29 02:30 does not exist, on 2026-10-25 it
/// happens twice.
const BERLIN: &str = r#"
name = "berlin"
timezone = "Europe/Berlin"
targets = ["berlin.de"]

[[collect]]
endpoint = "summary"
schedule = "30 2 * * *"
"#;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A money or percent field of the JSON bill (an exact decimal string).
fn money(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("money is a decimal string, not {v}"))
        .parse()
        .unwrap()
}

fn job<'a>(bill: &'a Value, name: &str) -> &'a Value {
    bill["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("job {name} in {bill:#}"))
}

fn collection<'a>(bill: &'a Value, job_name: &str, name: &str) -> &'a Value {
    job(bill, job_name)["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("collection {job_name}/{name} in {bill:#}"))
}

/// `linkledger plan --json --at AT` in `wd` with `env`, parsed.
async fn plan_json(wd: &Workdir, env: &[(String, String)], at: &str) -> Value {
    let out = linkledger(wd.path(), env, &["plan", "--json", "--at", at]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("plan --json prints JSON ({e}):\n{}", stdout(&out)))
}

/// (calls, rows, cost) per fire, fires, cost per day and per month of a collection.
fn figures(c: &Value) -> (i64, i64, Decimal, i64, Decimal, Decimal) {
    (
        c["calls_per_fire"].as_i64().unwrap(),
        c["rows_per_fire"].as_i64().unwrap(),
        money(&c["cost_per_fire"]),
        c["fires_per_month"].as_i64().unwrap(),
        money(&c["cost_per_day"]),
        money(&c["cost_per_month"]),
    )
}

#[tokio::test]
async fn plan_gives_the_per_fire_per_day_and_per_month_figures_of_a_hand_calculation_across_dst() {
    let wd = Workdir::new(&[("brands.toml", BRANDS), ("berlin.toml", BERLIN)]);
    // 2026-03-15 is a Sunday; the 30 days to 2026-04-14 hold Berlin's spring forward.
    let bill = plan_json(&wd, &[], "2026-03-15T00:00:00Z").await;
    assert_eq!(bill["now"], "2026-03-15T00:00:00Z");
    assert_eq!(bill["until"], "2026-04-14T00:00:00Z");

    // 3 summary calls of 1 row: 3 × $0.02003; 06:00 on each of the 30 days.
    assert_eq!(
        figures(collection(&bill, "brands", "summary")),
        (3, 3, dec("0.06009"), 30, dec("0.06009"), dec("1.8027"))
    );
    // 1 bulk call of 3 rows: $0.02009; 21 weekdays (5+5+5+5 and Monday 04-13);
    // $0.42189 / 30 = $0.014063.
    assert_eq!(
        figures(collection(&bill, "brands", "bulk_ranks")),
        (1, 3, dec("0.02009"), 21, dec("0.01406"), dec("0.42189"))
    );
    // 2025-01 to 2026-03: 15 months, $0.02045; fires on 04-02 only.
    assert_eq!(
        figures(collection(&bill, "brands", "history")),
        (1, 15, dec("0.02045"), 1, dec("0.00068"), dec("0.02045"))
    );
    let brands = &job(&bill, "brands")["total"];
    assert_eq!(brands["calls_per_fire"], 5);
    assert_eq!(money(&brands["cost_per_fire"]), dec("0.10063"));
    assert_eq!(brands["calls_per_month"], 3 * 30 + 21 + 1);
    assert_eq!(money(&brands["cost_per_month"]), dec("2.24504"));
    assert_eq!(money(&brands["pays_per_day"]), dec("0.07483"));

    // Berlin: 30 fires, 03-15 to 04-13, the one of 03-29 at 03:00 CEST: crontab's count.
    let berlin = collection(&bill, "berlin", "summary");
    assert_eq!(
        figures(berlin),
        (1, 1, dec("0.02003"), 30, dec("0.02003"), dec("0.6009"))
    );
    assert_eq!(berlin["next_fire"], "2026-03-15T02:30:00+01:00");
    assert_eq!(job(&bill, "berlin")["timezone"], "Europe/Berlin");

    // All: 2.24504 + 0.6009 a month; / 30 a day.
    assert_eq!(money(&bill["total"]["cost_per_month"]), dec("2.84594"));
    assert_eq!(money(&bill["total"]["pays_per_month"]), dec("2.84594"));
    assert_eq!(money(&bill["total"]["pays_per_day"]), dec("0.09486"));
    assert_eq!(
        bill["prices"],
        "list price $0.02 per call + $0.00003 per row"
    );

    // Autumn: 02:30 happens twice on 2026-10-25 and fires once.
    let autumn = plan_json(&wd, &[], "2026-10-15T00:00:00Z").await;
    let berlin = collection(&autumn, "berlin", "summary");
    assert_eq!(berlin["fires_per_month"], 30);
    assert_eq!(money(&berlin["cost_per_month"]), dec("0.6009"));
    // And the day after the spring-forward gap starts at 03:00 CEST.
    let gap = plan_json(&wd, &[], "2026-03-28T12:00:00Z").await;
    assert_eq!(
        collection(&gap, "berlin", "summary")["next_fire"],
        "2026-03-29T03:00:00+02:00"
    );
}

#[tokio::test]
async fn a_job_over_its_monthly_budget_is_flagged_beside_the_share_of_each_cap() {
    let big = "name = \"big\"\ntargets = [\"a.com\", \"b.com\"]\nbudget_monthly_usd = 1\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 6 * * *\"\n";
    let small = "name = \"small\"\ntargets = [\"c.com\"]\nbudget_monthly_usd = 10\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 6 * * *\"\n";
    let wd = Workdir::new(&[("big.toml", big), ("small.toml", small)]);
    let env = vec![
        (
            "LINKLEDGER_BUDGET__DAILY_USD".to_string(),
            "0.05".to_string(),
        ),
        (
            "LINKLEDGER_BUDGET__MONTHLY_USD".to_string(),
            "100".to_string(),
        ),
    ];
    let bill = plan_json(&wd, &env, "2026-03-01T00:00:00Z").await;
    // big: 2 × $0.02003 × 30 = $1.2018 of $1.
    let big = job(&bill, "big");
    assert_eq!(big["over_budget"], true);
    assert_eq!(big["budget"]["budget"], "budget_monthly_usd");
    assert_eq!(money(&big["budget"]["projected"]), dec("1.2018"));
    assert_eq!(money(&big["budget"]["share_percent"]), dec("120.2"));
    // small: $0.6009 of $10.
    let small = job(&bill, "small");
    assert_eq!(small["over_budget"], false);
    assert_eq!(money(&small["budget"]["share_percent"]), dec("6.0"));
    // The account: $1.8027 a month, $0.06009 a day.
    let budgets = bill["budgets"].as_array().unwrap();
    assert_eq!(budgets.len(), 2);
    assert_eq!(budgets[0]["budget"], "budget.daily_usd");
    assert_eq!(money(&budgets[0]["projected"]), dec("0.06009"));
    assert_eq!(money(&budgets[0]["share_percent"]), dec("120.2"));
    assert_eq!(budgets[0]["over"], true);
    assert_eq!(budgets[1]["budget"], "budget.monthly_usd");
    assert_eq!(money(&budgets[1]["projected"]), dec("1.8027"));
    assert_eq!(money(&budgets[1]["share_percent"]), dec("1.8"));
    assert_eq!(budgets[1]["over"], false);

    let out = linkledger(wd.path(), &env, &["plan", "--at", "2026-03-01T00:00:00Z"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("budget_monthly_usd $1.00: 120.2% of it used by $1.2018/month  OVER BUDGET"),
        "{text}"
    );
    assert!(
        text.contains("budget_monthly_usd $10.00: 6.0% of it used by $0.6009/month\n"),
        "{text}"
    );
    assert!(
        text.contains("budget.daily_usd $0.05: 120.2% of it used by $0.06009/day  OVER BUDGET"),
        "{text}"
    );
}

#[tokio::test]
async fn plan_finds_each_kind_of_waste_with_the_money_at_stake_per_month() {
    let waste = r#"
name = "waste"

[[collect]]
endpoint = "history"
schedule = "0 7 * * *"
targets = ["h.com"]
params = { date_from = "2025-01-01" }

[[collect]]
endpoint = "timeseries_summary"
schedule = "0 7 * * *"
targets = ["t.com"]
params = { group_range = "month", date_from = "2025-12-01" }

[[collect]]
endpoint = "summary"
schedule = "0 * * * *"
targets = ["s.com"]

[[collect]]
endpoint = "bulk_new_lost_backlinks"
schedule = "0 */12 * * *"
targets = ["n.com"]
"#;
    let first = "name = \"first\"\ntargets = [\"x.com\", \"y.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 6 * * *\"\n";
    let second = "name = \"second\"\ntargets = [\"y.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 9 * * *\"\n";
    let many: String = (0..120).map(|i| format!("t{i}.com\n")).collect();
    let big = "name = \"big\"\ntargets_file = \"many.txt\"\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 6 * * *\"\n";
    let wd = Workdir::new(&[
        ("waste.toml", waste),
        ("first.toml", first),
        ("second.toml", second),
        ("big.toml", big),
        ("many.txt", &many),
    ]);
    let bill = plan_json(&wd, &[], "2026-03-01T00:00:00Z").await;
    let cheaper = &bill["cheaper"];

    let finer: Vec<(String, i64, Decimal)> = cheaper["finer_than_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                format!(
                    "{}/{} ({})",
                    f["job"].as_str().unwrap(),
                    f["collection"].as_str().unwrap(),
                    f["data_period"].as_str().unwrap()
                ),
                f["fires_per_month"].as_i64().unwrap(),
                money(&f["stake_per_month"]),
            )
        })
        .collect();
    assert_eq!(
        finer,
        vec![
            // The daily history is not waste: a month's item is the snapshot of its
            // first day (the API's documents), so after the fire of March 2nd stores
            // March for good, the others buy nothing.
            //
            // 2025-12 to 2026-03 by month: 4 rows, $0.02012; then February (settled a
            // week after it ended, on March 8th) and March, $0.02006, on the 7 fires
            // to March 8th, and March alone, $0.02003, on the 22 after: $0.6012, of
            // which all but one fire is waste.
            (
                "waste/timeseries_summary (month)".to_string(),
                30,
                dec("0.58108")
            ),
            // The hourly summary and the twice-daily bulk_new_lost_backlinks fire more
            // often than their daily data changes too, but every later fire of a day
            // reuses the day's first answer: they cost nothing more (bought once below).
        ]
    );
    assert_eq!(money(&cheaper["finer_than_data_per_month"]), dec("0.58108"));

    let once: Vec<(String, serde_json::Value, i64, Decimal)> = cheaper["bought_once"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["job"].as_str().unwrap(),
                    o["collection"].as_str().unwrap()
                ),
                o["bought_by"].clone(),
                o["fires"].as_i64().unwrap(),
                money(&o["saves_per_month"]),
            )
        })
        .collect();
    assert_eq!(
        once,
        vec![
            // second's y.com is bought by first at 06:00 and reused at 09:00, every day.
            (
                "second/summary".to_string(),
                serde_json::json!(["first/summary"]),
                30,
                dec("0.6009")
            ),
            // The window (03-01 00:00, 03-31 00:00] holds 720 hourly fires on 31 UTC
            // days: all but each day's first reuse it, 689 × $0.02003.
            (
                "waste/summary".to_string(),
                serde_json::json!(["waste/summary"]),
                689,
                dec("13.80067")
            ),
            // 03-01 has only its 12:00 fire and 03-31 only its 00:00 one: the 29 days
            // between buy at 00:00 and reuse at 12:00, 29 × $0.02003.
            (
                "waste/bulk_new_lost_backlinks".to_string(),
                serde_json::json!(["waste/bulk_new_lost_backlinks"]),
                29,
                dec("0.58087")
            ),
        ]
    );
    let second = job(&bill, "second");
    assert_eq!(money(&second["total"]["cost_per_month"]), dec("0.6009"));
    assert_eq!(money(&second["total"]["pays_per_month"]), dec("0"));

    // 120 summaries a day: $2.4036; 3 bulk calls of 120 rows: 3 × $0.0236 = $0.0708.
    let alt = cheaper["bulk_alternatives"].as_array().unwrap();
    assert_eq!(alt.len(), 1, "{alt:#?}");
    assert_eq!(alt[0]["job"], "big");
    assert_eq!(alt[0]["targets"], 120);
    assert_eq!(money(&alt[0]["summary_per_day"]), dec("2.4036"));
    assert_eq!(money(&alt[0]["bulk_per_day"]), dec("0.0708"));
    assert_eq!(money(&alt[0]["difference_per_month"]), dec("69.984"));

    let out = linkledger(wd.path(), &[], &["plan", "--at", "2026-03-01T00:00:00Z"]).await;
    let text = stdout(&out);
    for line in [
        "waste/timeseries_summary: `0 7 * * *` fires 30 times in 30 days, but group_range = \"month\" gives one item per month",
        "once a month is enough (e.g. `0 7 2 * *`): $0.58108/month at stake",
        "bought once: second/summary (summary) reuses 1 target first/summary bought the same UTC day: saves $0.6009/month",
        "summary for 120 targets daily: $2.4036/day; bulk_ranks + bulk_backlinks + bulk_referring_domains give rank, backlinks and referring domains for $0.0708/day ($69.984/month less)",
    ] {
        assert!(text.contains(line), "`{line}` in:\n{text}");
    }
}

/// Row counts of every table in the schema `linkledger`.
async fn table_rows(db: &TestDb) -> Vec<(String, i64)> {
    let store = db.store().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'linkledger' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM linkledger.{t}"
        )))
        .fetch_one(store.pool())
        .await
        .unwrap();
        out.push((t, n));
    }
    out
}

#[tokio::test]
async fn plan_estimates_with_the_stored_price_list_and_writes_nothing_and_calls_no_api() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let store = db.store().await;
    let account = linkledger::api::account::Account {
        balance: Some("12.5".parse().unwrap()),
        prices: [(
            linkledger::api::Endpoint::Summary,
            linkledger::api::prices::Rate {
                per_request: "0.01".parse().unwrap(),
                per_row: "0.001".parse().unwrap(),
            },
        )]
        .into(),
        ..Default::default()
    };
    let host = url::Url::parse(&sb.base_url())
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    store
        .record_account(&host, true, &account, &serde_json::json!({}))
        .await
        .unwrap();
    let before = table_rows(&db).await;
    assert!(before.iter().any(|(t, _)| t == "api_calls"), "{before:?}");

    let wd = Workdir::new(&[("brands.toml", BRANDS)]);
    let bill = plan_json(&wd, &env_for(&db, &sb), "2026-03-01T00:00:00Z").await;
    // summary from the price list: $0.01 + 1 row × $0.001; bulk_ranks at list price.
    assert_eq!(
        money(&collection(&bill, "brands", "summary")["cost_per_fire"]),
        dec("0.033")
    );
    assert_eq!(
        money(&collection(&bill, "brands", "bulk_ranks")["cost_per_fire"]),
        dec("0.02009")
    );
    assert!(
        bill["prices"]
            .as_str()
            .unwrap()
            .starts_with("the account's price list of "),
        "{bill:#}"
    );
    assert_eq!(bill["prices_note"], format!("read from {host}"));

    assert_eq!(table_rows(&db).await, before, "plan wrote to the database");
    let ledger: i64 = sqlx::query_scalar("SELECT count(*) FROM linkledger.api_calls")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(ledger, 0);
    assert_eq!(sb.stats().requests, 0, "plan called the API");
}

#[tokio::test]
async fn plan_leaves_an_unmigrated_database_untouched_and_uses_the_list_price() {
    let db = TestDb::new().await;
    let wd = Workdir::new(&[("brands.toml", BRANDS)]);
    let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
    let bill = plan_json(&wd, &env, "2026-03-01T00:00:00Z").await;
    assert_eq!(
        bill["prices"],
        "list price $0.02 per call + $0.00003 per row"
    );
    assert!(
        bill["prices_note"]
            .as_str()
            .unwrap()
            .starts_with("no price list readable in the database"),
        "{bill:#}"
    );
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let schemas: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'linkledger'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(schemas, 0, "plan migrated the database");
}

#[tokio::test]
async fn plan_with_an_unreachable_database_uses_the_list_price_and_says_why() {
    let wd = Workdir::new(&[("brands.toml", BRANDS)]);
    let env = vec![(
        "DATABASE_URL".to_string(),
        "postgres://postgres@127.0.0.1:1/postgres".to_string(),
    )];
    let bill = plan_json(&wd, &env, "2026-03-01T00:00:00Z").await;
    assert_eq!(money(&bill["total"]["cost_per_fire"]), dec("0.10063"));
    let note = bill["prices_note"].as_str().unwrap();
    assert!(note.starts_with("the database did not answer"), "{note}");
}

#[tokio::test]
async fn plan_for_one_job_shows_that_job_and_an_unknown_one_is_a_usage_error() {
    let wd = Workdir::new(&[("brands.toml", BRANDS), ("berlin.toml", BERLIN)]);
    let out = linkledger(wd.path(), &[], &["plan", "--job", "berlin", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let bill: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bill["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(bill["only_job"], "berlin");

    let out = linkledger(wd.path(), &[], &["plan", "--job", "brand"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `brands`"),
        "{}",
        stderr(&out)
    );
}

/// A daily summary of example.com (job `counts`), and a daily backlinks listing of it
/// with a history beside it (job `links`, over a budget of $0.50 a month).
const COUNTS: &str = r#"
name = "counts"
targets = ["example.com"]

[[collect]]
endpoint = "summary"
schedule = "0 3 * * *"
"#;

const LINKS: &str = r#"
name = "links"
targets = ["example.com"]
budget_monthly_usd = 0.5

[[collect]]
endpoint = "backlinks"
schedule = "0 4 * * *"
max_rows = 3000

[[collect]]
endpoint = "history"
schedule = "0 5 2 * *"
params = { date_from = "2026-06-01" }
"#;

#[tokio::test]
async fn a_listing_is_planned_from_the_stored_summary_then_from_its_last_total_and_flagged_over_its_budget()
 {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let env = env_for(&db, &sb);
    let wd = Workdir::new(&[("counts.toml", COUNTS), ("links.toml", LINKS)]);
    let now = chrono::Utc::now().to_rfc3339();
    let listing = |bill: &Value| collection(bill, "links", "backlinks").clone();

    // Nothing stored: the listing is planned at its max_rows.
    let bill = plan_json(&wd, &env, &now).await;
    let l = listing(&bill);
    assert_eq!(l["rows_per_fire"], 3000, "{l:#}");
    assert_eq!(l["listing"]["unsized_listings"], 1, "{l:#}");

    // With a summary stored, by its backlinks count.
    let out = linkledger(wd.path(), &env, &["run", "--once", "--job", "counts"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let store = db.store().await;
    let (backlinks, nofollow, domains): (i64, i64, i64) = sqlx::query_as(
        "SELECT backlinks, backlinks_nofollow, referring_domains FROM linkledger.summary
         WHERE target = 'example.com'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let bill = plan_json(&wd, &env, &now).await;
    let l = listing(&bill);
    assert_eq!(l["listing"]["sized"]["summary.backlinks"], 1, "{l:#}");
    assert_eq!(l["listing"]["full_rows_per_fire"], backlinks, "{l:#}");
    assert_eq!(l["rows_per_fire"], backlinks.min(3000), "{l:#}");
    // Its whole listing daily is over the job's $0.50 a month: flagged, with shapes
    // sized from the same summary row.
    let large = &bill["cheaper"]["large_listings"][0];
    assert_eq!(large["collection"], "backlinks", "{bill:#}");
    assert_eq!(large["budget"], "budget_monthly_usd");
    let shape = |prefix: &str| {
        large["shapes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["change"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} in {large:#}"))
            .clone()
    };
    assert_eq!(shape("mode = \"one_per_domain\"")["rows_per_fire"], domains);
    assert_eq!(shape("filters = ")["rows_per_fire"], backlinks - nofollow);
    assert!(shape("schedule = \"0 4 * * 1\"")["cost_per_month"].is_string());
    let text = stdout(&linkledger(wd.path(), &env, &["plan", "--at", &now]).await);
    assert!(
        text.contains("links/backlinks (backlinks, `0 4 * * *`): the whole listing is"),
        "{text}"
    );

    // After a fire of the listing, by the total its first page answered.
    let out = linkledger(wd.path(), &env, &["run", "--once", "--job", "links"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let total = count(
        &store,
        "SELECT (paging->>'total_count')::bigint FROM linkledger.work
         WHERE endpoint = 'backlinks' AND paging->>'page' = '1' AND state = 'succeeded'",
    )
    .await;
    let bill = plan_json(&wd, &env, &now).await;
    let l = listing(&bill);
    assert_eq!(
        l["listing"]["sized"]["the last fire's total_count"], 1,
        "{l:#}"
    );
    assert_eq!(l["listing"]["full_rows_per_fire"], total, "{l:#}");
    assert_eq!(l["rows_per_fire"], total.min(3000), "{l:#}");
    assert_eq!(
        l["calls_per_fire"],
        (total.clamp(1, 3000) as u64).div_ceil(1000),
        "{l:#}"
    );

    // A backfill does not buy the listing, and says what a fire of it costs.
    let out = linkledger(
        wd.path(),
        &env,
        &[
            "backfill",
            "--job",
            "links",
            "--from",
            "2026-06-01",
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = total.min(3000);
    assert!(
        stdout(&out).contains(&format!(
            "not backfilled: backlinks (backlinks) lists what the API holds now, not a range: one fire lists {} in",
            if rows == 1 { "1 row".to_string() } else { format!("{rows} rows") }
        )),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("(1 of 1 listing sized from what is stored"),
        "{}",
        stdout(&out)
    );
    sb.stop().await;
}
