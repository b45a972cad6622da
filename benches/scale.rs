//! Scale: a day-by-day history of daily `summary` for many targets, loaded through the
//! collector's own write path, then what it costs to keep and to read.
//!
//!     cargo bench --bench scale        # 10,000 targets x 30 days ending today
//!     LINKLEDGER_SCALE_TARGETS=200 LINKLEDGER_SCALE_DAYS=5 cargo bench --bench scale
//!
//! Per answer, exactly the statements the collector makes once the API has answered:
//! the ledger row booked under the work item's claim (`record_sent_booked`), the answer
//! and its raw body committed (`record_answer`), then the body normalized and its rows
//! written in the transaction that completes the work item (`complete_with_rows`:
//! `summary` upserted, its `link_breakdowns` replaced). Answers are the sandbox's own
//! (`sandbox::build_result`, wrapped in the API's envelope), built by the writers as
//! they go; one day's work is enqueued as one run and claimed in one statement, both
//! inside the day's time (the collector's workers claim in smaller batches).
//! `WRITERS` tasks write at once, one pooled connection each.
//!
//! The days end today, so a 30-day history spans two calendar months; each day's
//! answers are stamped received on that day (rows' `collected_on` is the UTC date of
//! `received_at`). The month partitions are made for the first day's month and the
//! next two before loading (`Store::maintain_partitions`), so the rows land in month
//! partitions, not the default one; the bench checks that none is left there.
//!
//! Reported: load rate per day (target-days/s, warehouse rows/s) and the last day
//! against the first; query times (median of `RUNS` warm runs) of `latest_summary` for
//! one target, a 30-day trend for 100 targets (straight from `summary`, and through the
//! `summary_daily` view) and one day over every target, against the real tables and
//! against plain unpartitioned copies of the same rows (schema `plain`), each with its
//! EXPLAIN (ANALYZE, BUFFERS) summary and the relations scanned; bytes per target-day
//! of tables (heap + TOAST), indexes and raw bodies, summed over partitions.
//!
//! Uses `DATABASE_URL` (a scratch database is created next to it and dropped; set
//! `LINKLEDGER_SCALE_KEEP=1` to keep it), else a throwaway cluster from the local
//! PostgreSQL binaries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDate, Utc};
use linkledger::api::{Attempt, Endpoint, Envelope, Outcome};
use linkledger::ops::cluster::Scratch;
use linkledger::store::{Booking, CallRecord, Fence, SendDecision, Settlement, Store};
use linkledger::warehouse::normalize::{self, Context};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Row};

mod support;

/// Concurrent writers (the pool size), as in `benches/load.rs`.
const WRITERS: usize = 8;
/// Timed runs per query, after one warm-up run.
const RUNS: usize = 7;
/// Targets in the trend queries.
const TREND_TARGETS: usize = 100;
/// The warehouse tables a summary answer writes, and the raw bodies.
const TABLES: [&str; 3] = ["summary", "link_breakdowns", "raw_responses"];

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run() -> anyhow::Result<()> {
    let targets = env_or("LINKLEDGER_SCALE_TARGETS", 10_000);
    let days = env_or("LINKLEDGER_SCALE_DAYS", 30);
    if targets < TREND_TARGETS || days == 0 {
        bail!("LINKLEDGER_SCALE_TARGETS must be at least {TREND_TARGETS} and DAYS at least 1");
    }
    let db = Scratch::create("linkledger_scale").await?;
    let result = bench(db.url(), targets, days).await;
    if std::env::var("LINKLEDGER_SCALE_KEEP").is_ok_and(|v| v == "1") {
        println!("kept the scratch database (LINKLEDGER_SCALE_KEEP=1)");
        std::mem::forget(db);
    } else {
        db.drop_database().await?;
    }
    result
}

/// One day's load.
struct Day {
    day: NaiveDate,
    took: Duration,
    rows: u64,
}

/// One query's timings against one schema.
struct Timed {
    median: Duration,
    explain: Explained,
}

async fn bench(url: &SecretString, targets: usize, days: usize) -> anyhow::Result<()> {
    let store = Store::connect(url, WRITERS as u32).await?;
    store.migrate().await?;
    let today = Utc::now().date_naive();
    let first = today - chrono::Days::new(days as u64 - 1);
    let partitioned = is_partitioned(&store, "summary").await?;
    println!(
        "{targets} targets x {days} days of summary ({first} .. {today}), {WRITERS} writers; \
         tables {}",
        if partitioned {
            "partitioned by month"
        } else {
            "plain heaps (no partitions in this schema)"
        }
    );
    maintain_partitions(&store, first).await?;

    let names: Arc<Vec<String>> = Arc::new(
        (0..targets)
            .map(|i| format!("scale-{i:07}.example.com"))
            .collect(),
    );
    // What building the answers costs, so it can be told apart from the writes (the
    // writers build each answer they write; the collector gets it from the API).
    let t = Instant::now();
    let sample = targets.min(1000);
    for name in names.iter().take(sample) {
        answer(name, today, 0)?;
    }
    let build_each = t.elapsed() / sample as u32;
    println!(
        "building one answer (sandbox data + envelope) takes {:.0} µs on one core",
        build_each.as_secs_f64() * 1e6
    );

    let mut loaded = Vec::with_capacity(days);
    println!(
        "\n{:<12} {:>9} {:>10} {:>14} {:>12} {:>9}",
        "day", "time", "rows", "target-days/s", "rows/s", "load avg"
    );
    for d in 0..days {
        let day = first + chrono::Days::new(d as u64);
        let t = Instant::now();
        let rows = load_day(&store, &names, day).await?;
        let took = t.elapsed();
        println!(
            "{:<12} {:>9} {:>10} {:>14.0} {:>12.0} {:>9}",
            day,
            fmt(took),
            rows,
            targets as f64 / took.as_secs_f64(),
            rows as f64 / took.as_secs_f64(),
            load_average()
        );
        loaded.push(Day { day, took, rows });
    }
    maintain_partitions(&store, first).await?;

    // Every row where it should be: one summary row per target-day.
    let (summary_rows, days_seen): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT collected_on) FROM linkledger.summary")
            .fetch_one(store.pool())
            .await?;
    if summary_rows as usize != targets * days || days_seen as usize != days {
        bail!(
            "expected {} summary rows over {days} days, found {summary_rows} over {days_seen}",
            targets * days
        );
    }
    let in_default: Option<i64> = if partitioned {
        Some(rows_in_default(&store).await?)
    } else {
        None
    };

    // Plain, unpartitioned copies of the same summary rows, with the same indexes, and
    // the views the queries use pointed at them.
    let t = Instant::now();
    plain_copy(&store).await?;
    println!("\nplain copy of summary made in {}", fmt(t.elapsed()));
    sqlx::query("VACUUM ANALYZE linkledger.summary, plain.summary")
        .execute(store.pool())
        .await?;

    let sizes = sizes(&store).await?;
    let target_days = (targets * days) as f64;

    // Queries.
    let one = names[targets / 2].clone();
    let stride = targets / TREND_TARGETS;
    let hundred: Vec<String> = (0..TREND_TARGETS)
        .map(|i| names[i * stride].clone())
        .collect();
    let since = today - chrono::Days::new(29);
    let queries: Vec<(&str, String, Binds)> = vec![
        (
            "latest_summary, one target",
            "SELECT * FROM {s}.latest_summary WHERE target = $1".into(),
            Binds::One(one),
        ),
        (
            "30-day trend, 100 targets (summary)",
            "SELECT target, collected_on, referring_domains FROM {s}.summary
             WHERE target = ANY($1) AND options = linkledger.default_options('summary')
               AND collected_on BETWEEN $2 AND $3
             ORDER BY target, collected_on"
                .into(),
            Binds::Many(hundred.clone(), since, today),
        ),
        (
            "30-day trend, 100 targets (summary_daily)",
            "SELECT target, day, referring_domains, referring_domains_change
             FROM {s}.summary_daily WHERE target = ANY($1) AND day BETWEEN $2 AND $3
             ORDER BY target, day"
                .into(),
            Binds::Many(hundred, since, today),
        ),
        (
            "one day, every target (avg referring_domains)",
            "SELECT count(*), avg(referring_domains) FROM {s}.summary
             WHERE collected_on = $1"
                .into(),
            Binds::Day(today),
        ),
    ];
    let mut timed = Vec::new();
    println!("\nEXPLAIN (ANALYZE, BUFFERS), one warm run each:");
    for (name, sql, binds) in &queries {
        let real = time_query(&store, &sql.replace("{s}", "linkledger"), binds).await?;
        let plain = time_query(&store, &sql.replace("{s}", "plain"), binds).await?;
        println!("  {name}");
        println!("    linkledger: {}", real.explain);
        println!("    plain copy: {}", plain.explain);
        timed.push((*name, real, plain));
    }

    // The compact table.
    let first_day = &loaded[0];
    let last_day = &loaded[loaded.len() - 1];
    let rate = |d: &Day| targets as f64 / d.took.as_secs_f64();
    let total: Duration = loaded.iter().map(|d| d.took).sum();
    let total_rows: u64 = loaded.iter().map(|d| d.rows).sum();
    println!("\n== scale: {targets} targets x {days} days ({first} .. {today}) ==");
    println!(
        "schema: {}",
        if partitioned {
            match in_default {
                Some(0) => "month partitions (no row in a default partition)".to_string(),
                Some(n) => format!("month partitions ({n} rows in default partitions)"),
                None => "month partitions".to_string(),
            }
        } else {
            "plain heaps (no partitions)".to_string()
        }
    );
    println!(
        "load: {} target-days, {} warehouse rows in {} ({:.0} target-days/s, {:.0} rows/s)",
        targets * days,
        total_rows,
        fmt(total),
        target_days / total.as_secs_f64(),
        total_rows as f64 / total.as_secs_f64()
    );
    println!(
        "first day {}: {:.0} target-days/s, {:.0} rows/s; last day {}: {:.0} target-days/s, \
         {:.0} rows/s; last/first {:.2}",
        first_day.day,
        rate(first_day),
        first_day.rows as f64 / first_day.took.as_secs_f64(),
        last_day.day,
        rate(last_day),
        last_day.rows as f64 / last_day.took.as_secs_f64(),
        rate(last_day) / rate(first_day)
    );
    // One day's rate moves with whatever else runs on the machine: the first three
    // days against the last three, and the median day, say it more steadily.
    let k = days.min(3);
    let mean_rate = |ds: &[Day]| {
        let took: Duration = ds.iter().map(|d| d.took).sum();
        (ds.len() * targets) as f64 / took.as_secs_f64()
    };
    let (head, tail) = (mean_rate(&loaded[..k]), mean_rate(&loaded[days - k..]));
    let mut rates: Vec<f64> = loaded.iter().map(rate).collect();
    rates.sort_by(f64::total_cmp);
    println!(
        "first {k} days {head:.0} target-days/s, last {k} days {tail:.0}, last/first {:.2}; \
         median day {:.0} target-days/s",
        tail / head,
        rates[days / 2]
    );
    println!(
        "\n{:<48} {:>12} {:>12} {:>6}",
        "query (median of 7, warm)",
        if partitioned {
            "partitioned"
        } else {
            "linkledger"
        },
        "plain copy",
        "scans"
    );
    for (name, real, plain) in &timed {
        println!(
            "{:<48} {:>12} {:>12} {:>6}",
            name,
            ms(real.median),
            ms(plain.median),
            format!(
                "{}/{}",
                real.explain.scanned.len(),
                plain.explain.scanned.len()
            )
        );
    }
    println!("(scans: relations scanned, linkledger/plain copy)");
    println!(
        "\n{:<16} {:>14} {:>14} {:>16} {:>16}",
        "bytes", "table", "indexes", "table/target-day", "index/target-day"
    );
    let mut sum = (0i64, 0i64);
    for s in &sizes {
        println!(
            "{:<16} {:>14} {:>14} {:>16.0} {:>16.0}",
            s.name,
            mb(s.table),
            mb(s.indexes),
            s.table as f64 / target_days,
            s.indexes as f64 / target_days
        );
        sum.0 += s.table;
        sum.1 += s.indexes;
    }
    println!(
        "{:<16} {:>14} {:>14} {:>16.0} {:>16.0}",
        "all three",
        mb(sum.0),
        mb(sum.1),
        sum.0 as f64 / target_days,
        sum.1 as f64 / target_days
    );
    println!(
        "(table = heap + TOAST, summed over partitions; ledger and queue rows: {:.0} bytes per target-day)",
        ledger_bytes(&store).await? as f64 / target_days
    );
    Ok(())
}

/// The answer the API gives for `target` on `day`: the sandbox's result in the
/// envelope the sandbox sends.
fn answer(target: &str, day: NaiveDate, id: u64) -> anyhow::Result<(Value, Value)> {
    let task = json!({"target": target});
    let result = linkledger::sandbox::build_result(Endpoint::Summary, &task, day)
        .map_err(anyhow::Error::msg)?;
    let mut data = json!({"api": "backlinks", "function": "summary"});
    data["target"] = json!(target);
    let body = json!({
        "version": "0.1.20250526",
        "status_code": 20000,
        "status_message": "Ok.",
        "time": "0.0713 sec.",
        "cost": 0.02003,
        "tasks_count": 1,
        "tasks_error": 0,
        "tasks": [{
            "id": format!("{}0600-1535-0216-0000-{id:012x}", day.format("%m%d")),
            "status_code": 20000,
            "status_message": "Ok.",
            "time": "0.0654 sec.",
            "cost": 0.02003,
            "result_count": 1,
            "path": ["v3", "backlinks", "summary", "live"],
            "data": data,
            "result": result,
        }],
    });
    Ok((task, body))
}

/// Enqueues and claims one day's work, then writes every target's answer the way
/// the executor does; returns the warehouse rows written.
async fn load_day(store: &Store, names: &Arc<Vec<String>>, day: NaiveDate) -> anyhow::Result<u64> {
    let tasks: Vec<Value> = names.iter().map(|t| json!({"target": t})).collect();
    let (run, fences) = support::claim_run(store, "scale", "summary", &tasks).await?;
    let fences = Arc::new(fences);
    let midnight = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
    // Spread over the day's first hour.
    let step = Duration::from_secs(3600) / names.len() as u32;
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::with_capacity(WRITERS);
    for _ in 0..WRITERS {
        let (store, names, fences, next) =
            (store.clone(), names.clone(), fences.clone(), next.clone());
        writers.push(tokio::spawn(async move {
            let mut rows = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(target) = names.get(i) else {
                    return Ok::<u64, anyhow::Error>(rows);
                };
                let at = midnight + chrono::Duration::from_std(step * i as u32)?;
                rows += write_answer(&store, run, fences[target], target, day, at, i).await?;
            }
        }));
    }
    let mut rows = 0;
    for w in writers {
        rows += w.await??;
    }
    Ok(rows)
}

/// What the executor does with one answer: book, record it with its raw body,
/// normalize, write the rows completing the work item.
async fn write_answer(
    store: &Store,
    run: i64,
    fence: Fence,
    target: &str,
    day: NaiveDate,
    started_at: DateTime<Utc>,
    i: usize,
) -> anyhow::Result<u64> {
    let (task, body) = answer(target, day, i as u64)?;
    let targets = [target.to_string()];
    let record = CallRecord {
        run_id: Some(run),
        job: Some("scale"),
        collection: Some("summary"),
        endpoint: "summary",
        targets: &targets,
        request: &task,
        attempt: fence.attempt,
        api_host: Some("sandbox.local"),
    };
    let booking = Booking {
        estimate: "0.02003".parse()?,
        sandbox: true,
        free: false,
    };
    let call_id = match store
        .record_sent_booked(&record, Some(fence), &booking)
        .await?
    {
        SendDecision::Sent(id) => id,
        other => bail!("the call was not booked: {other:?}"),
    };
    let envelope = Envelope::read(&body);
    let cost = envelope.as_ref().and_then(Envelope::cost);
    let attempt = Attempt {
        started_at,
        duration: Duration::from_millis(70),
        http_status: Some(200),
        body: Some(body),
        unparsed: None,
        spilled: None,
        envelope,
        outcome: Outcome::Ok,
        cost,
        reached: true,
        sandbox: true,
    };
    let settlement = Settlement {
        cost,
        cost_estimated: false,
        budget: cost,
        sandbox: true,
    };
    let raw_id = store
        .record_answer(call_id, "summary", &attempt, true, &settlement)
        .await?
        .context("the raw body was kept")?;
    let ctx = Context {
        endpoint: Endpoint::Summary,
        raw_response_id: raw_id,
        collected_at: linkledger::store::ledger::received_at(&attempt),
        sent_at: attempt.started_at,
        settle: Endpoint::Summary.default_settle(),
        request: &task,
    };
    let body = attempt.body.as_ref().expect("set above");
    let batch = normalize::normalize(&ctx, body).map_err(|e| anyhow::anyhow!("{e}"))?;
    store
        .complete_with_rows(fence, call_id, &batch)
        .await?
        .context("the claim holds")
}

async fn is_partitioned(store: &Store, table: &str) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT c.relkind = 'p' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'linkledger' AND c.relname = $1",
    )
    .bind(table)
    .fetch_one(store.pool())
    .await?)
}

/// Month partitions for `first`'s month and the next two, rows moved out of the
/// default partition: what `migrate` and the daemon do.
async fn maintain_partitions(store: &Store, first: NaiveDate) -> anyhow::Result<()> {
    let created = store.maintain_partitions(first).await?;
    println!("month partitions made for {first}'s month and the next two: {created} new");
    Ok(())
}

/// Rows of the three tables held in default partitions.
async fn rows_in_default(store: &Store) -> anyhow::Result<i64> {
    let mut n = 0;
    for table in TABLES {
        let parts: Vec<String> = sqlx::query_scalar(
            "SELECT c.oid::regclass::text FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_partitioned_table p ON p.partrelid = i.inhparent
             WHERE i.inhparent = ('linkledger.' || $1)::regclass AND p.partdefid = c.oid",
        )
        .bind(table)
        .fetch_all(store.pool())
        .await?;
        for part in parts {
            let rows: i64 =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {part}")))
                    .fetch_one(store.pool())
                    .await?;
            n += rows;
        }
    }
    Ok(n)
}

/// `plain.summary`: an unpartitioned copy of `linkledger.summary` with its columns,
/// defaults, constraints and indexes, filled with the same rows; `plain.latest_summary`
/// and `plain.summary_daily`: the views' own SQL, reading it.
async fn plain_copy(store: &Store) -> anyhow::Result<()> {
    let pool = store.pool();
    sqlx::query("DROP SCHEMA IF EXISTS plain CASCADE")
        .execute(pool)
        .await?;
    sqlx::query("CREATE SCHEMA plain").execute(pool).await?;
    // LIKE copies the columns, defaults and NOT NULL and CHECK constraints; the
    // indexes (the key included) are made after the rows are in, from the originals.
    sqlx::query(
        "CREATE TABLE plain.summary (LIKE linkledger.summary INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
    )
    .execute(pool)
    .await?;
    sqlx::query("INSERT INTO plain.summary SELECT * FROM linkledger.summary")
        .execute(pool)
        .await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.relname::text, pg_get_indexdef(x.indexrelid)
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
         WHERE x.indrelid = 'linkledger.summary'::regclass",
    )
    .fetch_all(pool)
    .await?;
    if indexes.is_empty() {
        bail!("linkledger.summary has no index to copy");
    }
    for (name, def) in indexes {
        let def = def
            .replacen(" ON ONLY linkledger.summary ", " ON plain.summary ", 1)
            .replacen(" ON linkledger.summary ", " ON plain.summary ", 1)
            .replacen(
                &format!("INDEX {name} "),
                &format!("INDEX plain_{name} "),
                1,
            );
        sqlx::query(AssertSqlSafe(def.clone()))
            .execute(pool)
            .await
            .with_context(|| def)?;
    }
    for view in ["latest_summary", "summary_daily"] {
        let def: String = sqlx::query_scalar("SELECT pg_get_viewdef($1::regclass)")
            .bind(format!("linkledger.{view}"))
            .fetch_one(pool)
            .await?;
        // pg_get_viewdef qualifies the table with its schema where it is not on the
        // search path (it is not: the pool's search_path is the default).
        if !def.contains("linkledger.summary ") {
            bail!("the view {view} does not read linkledger.summary as expected: {def}");
        }
        let def = def.replace("linkledger.summary ", "plain.summary ");
        sqlx::query(AssertSqlSafe(format!("CREATE VIEW plain.{view} AS {def}")))
            .execute(pool)
            .await?;
    }
    Ok(())
}

enum Binds {
    One(String),
    Many(Vec<String>, NaiveDate, NaiveDate),
    Day(NaiveDate),
}

fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    binds: &'q Binds,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    match binds {
        Binds::One(t) => q.bind(t),
        Binds::Many(ts, since, until) => q.bind(ts).bind(since).bind(until),
        Binds::Day(d) => q.bind(d),
    }
}

/// The median of `RUNS` runs after one warm-up, on one connection, with the
/// statement prepared (as a BI tool's driver does); then one EXPLAIN of it.
async fn time_query(store: &Store, sql: &str, binds: &Binds) -> anyhow::Result<Timed> {
    let mut conn = store.pool().acquire().await?;
    let mut times = Vec::with_capacity(RUNS);
    for run in 0..=RUNS {
        let t = Instant::now();
        let rows = bind(sqlx::query(AssertSqlSafe(sql.to_string())), binds)
            .fetch_all(&mut *conn)
            .await
            .with_context(|| sql.to_string())?;
        let took = t.elapsed();
        if rows.is_empty() {
            bail!("no rows from {sql}");
        }
        if run > 0 {
            times.push(took);
        }
    }
    times.sort();
    let explain_sql = format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}");
    let plan: Value = bind(sqlx::query(AssertSqlSafe(explain_sql)), binds)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    Ok(Timed {
        median: times[RUNS / 2],
        explain: Explained::read(&plan),
    })
}

/// What an EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) says in one line.
struct Explained {
    planning_ms: f64,
    execution_ms: f64,
    shared_hit: i64,
    shared_read: i64,
    /// Relations scanned (partitions, each once).
    scanned: Vec<String>,
    /// Partitions pruned at execution (`Subplans Removed`).
    removed: i64,
}

impl Explained {
    fn read(v: &Value) -> Explained {
        let top = &v[0];
        let plan = &top["Plan"];
        let mut scanned = Vec::new();
        let mut removed = 0;
        walk(plan, &mut scanned, &mut removed);
        scanned.sort();
        scanned.dedup();
        Explained {
            planning_ms: top["Planning Time"].as_f64().unwrap_or(0.0),
            execution_ms: top["Execution Time"].as_f64().unwrap_or(0.0),
            shared_hit: plan["Shared Hit Blocks"].as_i64().unwrap_or(0),
            shared_read: plan["Shared Read Blocks"].as_i64().unwrap_or(0),
            scanned,
            removed,
        }
    }
}

fn walk(node: &Value, scanned: &mut Vec<String>, removed: &mut i64) {
    if let Some(rel) = node["Relation Name"].as_str() {
        scanned.push(rel.to_string());
    }
    *removed += node["Subplans Removed"].as_i64().unwrap_or(0);
    if let Some(children) = node["Plans"].as_array() {
        for c in children {
            walk(c, scanned, removed);
        }
    }
}

impl std::fmt::Display for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "planning {:.2} ms, execution {:.2} ms, buffers hit {} read {}, {} relation(s) scanned",
            self.planning_ms,
            self.execution_ms,
            self.shared_hit,
            self.shared_read,
            self.scanned.len()
        )?;
        if self.removed > 0 {
            write!(f, ", {} pruned at run time", self.removed)?;
        }
        let shown: Vec<&str> = self.scanned.iter().map(String::as_str).take(4).collect();
        write!(f, " [{}", shown.join(", "))?;
        if self.scanned.len() > shown.len() {
            write!(f, ", ...")?;
        }
        write!(f, "]")
    }
}

struct Size {
    name: &'static str,
    table: i64,
    indexes: i64,
}

/// Heap + TOAST and indexes of each of the three tables, summed over its partitions
/// (`pg_partition_tree` of a plain table is empty: the table itself is added).
async fn sizes(store: &Store) -> anyhow::Result<Vec<Size>> {
    let mut out = Vec::new();
    for name in TABLES {
        let (table, indexes): (i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(pg_table_size(relid)), 0)::bigint,
                    coalesce(sum(pg_indexes_size(relid)), 0)::bigint
             FROM (SELECT relid FROM pg_partition_tree(('linkledger.' || $1)::regclass)
                   UNION SELECT ('linkledger.' || $1)::regclass) r",
        )
        .bind(name)
        .fetch_one(store.pool())
        .await?;
        out.push(Size {
            name,
            table,
            indexes,
        });
    }
    Ok(out)
}

/// Bytes of the ledger and queue rows the load wrote (`api_calls`, `work`, `runs`:
/// plain tables), with their indexes.
async fn ledger_bytes(store: &Store) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT sum(pg_total_relation_size(t))::bigint
         FROM unnest('{linkledger.api_calls,linkledger.work,linkledger.runs}'::regclass[]) t",
    )
    .fetch_one(store.pool())
    .await?)
}

/// The machine's 1-minute load average at the end of a day's load (other work on
/// the same cores slows the load down: this says how much there was).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "-".into())
}

fn fmt(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mb(bytes: i64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
