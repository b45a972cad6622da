//! Loading speed: normalized rows written the way the collector writes them (per
//! response, one transaction: `UNNEST` upserts, breakdowns replaced by DELETE + COPY,
//! the work item completed under its claim) against a plain `COPY` of the same rows
//! into the same tables, measured in the same run on the same database.
//!
//!     cargo bench --bench load                       # 1000 domains, monthly history since 2019
//!     LINKLEDGER_BENCH_TARGETS=200 cargo bench --bench load
//!
//! Uses `DATABASE_URL` (a scratch database is created next to it and dropped), else a
//! throwaway cluster from the local PostgreSQL binaries.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use linkledger::api::Endpoint;
use linkledger::ops::cluster::Scratch;
use linkledger::store::{Fence, Store};
use linkledger::warehouse::normalize::{self, Batch, Context};
use secrecy::SecretString;
use serde_json::{Value, json};

mod support;

/// Concurrent writers in the concurrent variant (the pool size).
const WRITERS: usize = 8;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let targets: usize = std::env::var("LINKLEDGER_BENCH_TARGETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let db = Scratch::create("linkledger_bench").await?;
    let result = bench(db.url(), targets).await;
    db.drop_database().await?;
    result
}

async fn bench(url: &SecretString, targets: usize) -> anyhow::Result<()> {
    let store = Store::connect(url, WRITERS as u32).await?;
    store.migrate().await?;
    let today = Utc::now().date_naive();
    let from = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap();

    // The sandbox's own answers: `targets` domains of monthly history since 2019.
    println!("building {targets} history responses since {from} ...");
    let mut bodies = Vec::with_capacity(targets);
    for i in 0..targets {
        let task = json!({"target": format!("bench-{i:05}.example.com"), "date_from": from.to_string(), "date_to": today.to_string()});
        let result = linkledger::sandbox::build_result(Endpoint::History, &task, today)
            .map_err(anyhow::Error::msg)?;
        bodies.push((
            task,
            json!({"status_code": 20000, "tasks": [{"status_code": 20000, "result": result}]}),
        ));
    }
    let stored = store_raw(&store, &bodies).await?;
    let raw_ids: Vec<i64> = stored.iter().map(|(_, raw)| *raw).collect();
    let call_ids: Vec<i64> = stored.iter().map(|(call, _)| *call).collect();

    let t = Instant::now();
    let batches: Vec<Batch> = bodies
        .iter()
        .zip(&raw_ids)
        .map(|((task, body), id)| {
            let ctx = Context {
                endpoint: Endpoint::History,
                raw_response_id: *id,
                collected_at: Utc::now(),
                sent_at: Utc::now(),
                settle: Endpoint::History.default_settle(),
                request: task,
            };
            normalize::normalize(&ctx, body).expect("sandbox answers normalize")
        })
        .collect();
    let normalize_time = t.elapsed();
    let rows: usize = batches.iter().map(Batch::row_count).sum();
    let history_rows: usize = batches.iter().map(|b| b.table.rows.len()).sum();
    println!(
        "{rows} rows ({history_rows} history, {} breakdowns); normalizing took {}",
        rows - history_rows,
        fmt(normalize_time)
    );

    // Baseline first: one plain COPY per table of the same rows.
    let copy_first = copy_all(&store, &batches, rows).await?;

    // The collector's path: each response's rows and its work item's completion,
    // fenced by the claim, in one transaction.
    truncate(&store).await?;
    let fences = claimed(&store, &bodies).await?;
    let t = Instant::now();
    let mut written = 0;
    for ((b, fence), call) in batches.iter().zip(&fences).zip(&call_ids) {
        written += store
            .complete_with_rows(*fence, *call, b)
            .await?
            .expect("the claim holds");
    }
    let upsert = t.elapsed();
    assert_eq!(written as usize, rows, "every row written once");

    // Replay's path over the same rows: every row replaced.
    let t = Instant::now();
    for b in &batches {
        store.store_normalized(b).await?;
    }
    let reload = t.elapsed();

    // As the collector's workers write: several responses at once, one per pooled
    // connection.
    truncate(&store).await?;
    let fences = claimed(&store, &bodies).await?;
    let t = Instant::now();
    let results: Vec<_> = futures::stream::iter(batches.iter().zip(&fences).zip(&call_ids))
        .map(|((b, fence), call)| store.complete_with_rows(*fence, *call, b))
        .buffer_unordered(WRITERS)
        .collect()
        .await;
    for r in results {
        r?.expect("the claim holds");
    }
    let concurrent = t.elapsed();

    // The baseline again, so neither side profits from running first or last.
    let copy_last = copy_all(&store, &batches, rows).await?;
    let copy = (copy_first + copy_last) / 2;

    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!("\n{:<44} {:>10} {:>14}", "method", "time", "rows/s");
    let lines = [
        ("collector writes, one transaction per response", upsert),
        ("replay of the same responses (rows replaced)", reload),
        ("collector writes, 8 responses at once", concurrent),
        ("plain COPY, one per table, first run", copy_first),
        ("plain COPY, one per table, last run", copy_last),
    ];
    for (what, took) in lines {
        println!("{:<44} {:>10} {:>14.0}", what, fmt(took), rate(took));
    }
    let ratio = |d: Duration| d.as_secs_f64() / copy.as_secs_f64();
    println!("\nagainst plain COPY (mean of both runs):");
    println!("  one response at a time       {:.2}x", ratio(upsert));
    println!(
        "  8 responses at once          {:.2}x   (how the collector's workers write)",
        ratio(concurrent)
    );
    println!("  replay, every row replaced   {:.2}x", ratio(reload));
    Ok(())
}

async fn copy_all(store: &Store, batches: &[Batch], rows: usize) -> anyhow::Result<Duration> {
    truncate(store).await?;
    let mut conn = store.pool().acquire().await?;
    let t = Instant::now();
    let copied = linkledger::store::warehouse::copy_batches(&mut conn, batches).await?;
    let took = t.elapsed();
    assert_eq!(copied as usize, rows, "COPY loaded the same rows");
    Ok(took)
}

fn fmt(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

async fn truncate(store: &Store) -> anyhow::Result<()> {
    sqlx::query("TRUNCATE linkledger.history, linkledger.link_breakdowns")
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Ledger and raw rows the normalized rows point at (not measured).
async fn store_raw(store: &Store, bodies: &[(Value, Value)]) -> anyhow::Result<Vec<(i64, i64)>> {
    let mut ids = Vec::with_capacity(bodies.len());
    for (task, body) in bodies {
        let call: i64 = sqlx::query_scalar(
            "INSERT INTO linkledger.api_calls (endpoint, request, attempt, started_at, outcome)
             VALUES ('history', $1, 1, now(), 'ok') RETURNING id",
        )
        .bind(task)
        .fetch_one(store.pool())
        .await?;
        let raw: i64 = sqlx::query_scalar(
            "INSERT INTO linkledger.raw_responses (api_call_id, endpoint, received_at, body)
             VALUES ($1, 'history', now(), $2) RETURNING id",
        )
        .bind(call)
        .bind(body)
        .fetch_one(store.pool())
        .await?;
        ids.push((call, raw));
    }
    Ok(ids)
}

/// One claimed work item per response, in the order of `bodies` (not measured).
async fn claimed(store: &Store, bodies: &[(Value, Value)]) -> anyhow::Result<Vec<Fence>> {
    let tasks: Vec<Value> = bodies.iter().map(|(task, _)| task.clone()).collect();
    let (_, by_target) = support::claim_run(store, "bench", "history", &tasks).await?;
    Ok(bodies
        .iter()
        .map(|(task, _)| by_target[task["target"].as_str().unwrap_or_default()])
        .collect())
}
