//! Loading speed: normalized rows written the way the collector writes them (one
//! multi-row `UNNEST` upsert transaction per response) against a plain `COPY` of the
//! same rows into the same tables, measured in the same run on the same database.
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
use linkledger::cluster::Cluster;
use linkledger::normalize::{self, Batch, Context};
use linkledger::store::Store;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::Connection;

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
    let _cluster;
    let admin = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            let c = Cluster::start()?;
            let url = c.url();
            _cluster = c;
            url
        }
    };
    let name = format!("linkledger_bench_{}", std::process::id());
    let mut admin_conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin_conn)
        .await?;
    let mut url = url::Url::parse(&admin)?;
    url.set_path(&format!("/{name}"));
    let result = bench(&SecretString::from(url.to_string()), targets).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut admin_conn)
    .await?;
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
    let raw_ids = store_raw(&store, &bodies).await?;

    let t = Instant::now();
    let batches: Vec<Batch> = bodies
        .iter()
        .zip(&raw_ids)
        .map(|((task, body), id)| {
            let ctx = Context {
                endpoint: Endpoint::History,
                raw_response_id: *id,
                collected_at: Utc::now(),
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

    // Upsert path, as the collector writes: one transaction per response.
    truncate(&store).await?;
    let t = Instant::now();
    let mut written = 0;
    for b in &batches {
        written += store.store_normalized(None, b).await?;
    }
    let upsert = t.elapsed();
    assert_eq!(written as usize, rows, "every row written once");

    // The same upserts again: the idempotent re-load (every row replaced).
    let t = Instant::now();
    for b in &batches {
        store.store_normalized(None, b).await?;
    }
    let reload = t.elapsed();

    // As the collector runs: responses written concurrently, one per pooled connection.
    truncate(&store).await?;
    let t = Instant::now();
    let results: Vec<_> = futures::stream::iter(&batches)
        .map(|b| store.store_normalized(None, b))
        .buffer_unordered(WRITERS)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let concurrent = t.elapsed();

    // The baseline again, so neither side profits from running first or last.
    let copy_last = copy_all(&store, &batches, rows).await?;
    let copy = (copy_first + copy_last) / 2;

    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!("\n{:<44} {:>10} {:>14}", "method", "time", "rows/s");
    let lines = [
        ("collector writes, one transaction per response", upsert),
        ("the same again (every row replaced)", reload),
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
    println!("  re-load, every row replaced  {:.2}x", ratio(reload));
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
async fn store_raw(store: &Store, bodies: &[(Value, Value)]) -> anyhow::Result<Vec<i64>> {
    let requests: Vec<&Value> = bodies.iter().map(|(t, _)| t).collect();
    let call_ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO linkledger.api_calls (endpoint, request, attempt, started_at, outcome)
         SELECT 'history', r, 1, now(), 'ok' FROM UNNEST($1::jsonb[]) AS r RETURNING id",
    )
    .bind(&requests)
    .fetch_all(store.pool())
    .await?;
    let bodies: Vec<&Value> = bodies.iter().map(|(_, b)| b).collect();
    let raw_ids = sqlx::query_scalar(
        "INSERT INTO linkledger.raw_responses (api_call_id, endpoint, received_at, body)
         SELECT c, 'history', now(), b FROM UNNEST($1::bigint[], $2::jsonb[]) AS u(c, b) RETURNING id",
    )
    .bind(&call_ids)
    .bind(&bodies)
    .fetch_all(store.pool())
    .await?;
    Ok(raw_ids)
}
