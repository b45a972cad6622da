//! Incremental windows, measured: 30 days of a daily schedule for 100 targets — monthly
//! history since 2019 and daily new/lost timeseries (`group_range = "day"`) from 30
//! days back — run by the daemon's scheduler and executor against the sandbox on a
//! simulated clock, once as shipped (`refetch = "missing"`: only the periods not
//! stored for good, the timeseries' last seven days asked again until they settle),
//! once the same without a settle time (`settle = "0s"`: every ended day final on its
//! first answer), and once naive (`refetch = "always"`: the whole range every fire),
//! each into its own scratch database. Prints, for each: rows paid for against rows
//! stored, dollars paid against buying each stored row once, and rows loaded per fire;
//! and what the settle time costs.
//!
//!     cargo run --release --example simulate_incremental            # 100 targets, 30 days
//!     cargo run --release --example simulate_incremental -- 20 10   # 20 targets, 10 days
//!
//! Uses `DATABASE_URL` (scratch databases are created next to it and dropped), else a
//! throwaway cluster from the local PostgreSQL binaries.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use linkledger::api::Client;
use linkledger::collect::executor::Executor;
use linkledger::collect::scheduler::Scheduler;
use linkledger::collect::workers::{Shutdown, WorkSet, WorkerConfig, Workers};
use linkledger::config::{ApiConfig, Credentials};
use linkledger::money::Usd;
use linkledger::ops::cluster::Scratch;
use linkledger::sandbox::{Sandbox, SandboxOptions};
use linkledger::store::Store;
use rust_decimal::Decimal;
use secrecy::SecretString;

/// The first simulated day: the window crosses a month's end, so history's open month
/// closes once on the way.
const START: (i32, u32, u32) = (2026, 10, 17);

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let targets: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let days: i64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(30);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let mut figures = Vec::new();
            for (refetch, settle) in [("missing", None), ("missing", Some("0s")), ("always", None)]
            {
                let db = Scratch::create("linkledger_incremental").await?;
                let result = simulate(db.url(), targets, days, refetch, settle).await;
                db.drop_database().await?;
                figures.push(result?);
            }
            print(&figures, targets, days);
            Ok(())
        })
}

/// What one mode bought and stored.
struct Figures {
    refetch: &'static str,
    /// The new/lost collection's `settle`, when set (else the default, seven days).
    settle: Option<&'static str>,
    seconds: f64,
    /// Answered calls (each charged).
    calls: i64,
    other_attempts: Vec<(String, i64)>,
    charged: Usd,
    /// Items in the answers: what the API bills rows for.
    rows_paid: i64,
    /// Rows in `history` and `timeseries_new_lost_summary` at the end.
    rows_stored: i64,
    /// Rows written per fire of each collection: the first fire, and the mean of the others.
    history_first: i64,
    history_later: f64,
    daily_first: i64,
    daily_later: f64,
}

fn job_file(targets: usize, refetch: &str, settle: Option<&str>) -> String {
    let list: Vec<String> = (0..targets)
        .map(|i| format!("\"t{i:03}.example.com\""))
        .collect();
    format!(
        "name = \"analyst\"\ntargets = [{}]\n\
         [[collect]]\nendpoint = \"history\"\nschedule = \"0 5 * * *\"\nrefetch = \"{refetch}\"\n\
         params = {{ date_from = \"2019-01-01\" }}\n\
         [[collect]]\nendpoint = \"timeseries_new_lost_summary\"\nschedule = \"0 6 * * *\"\nrefetch = \"{refetch}\"\n\
         params = {{ group_range = \"day\", date_from = \"-30d\" }}\n{}",
        list.join(", "),
        settle
            .map(|s| format!("settle = \"{s}\"\n"))
            .unwrap_or_default()
    )
}

async fn simulate(
    url: &SecretString,
    targets: usize,
    days: i64,
    refetch: &'static str,
    settle: Option<&'static str>,
) -> anyhow::Result<Figures> {
    let store = Store::connect(url, 8).await?;
    store.migrate().await?;
    let sb = Sandbox::start(SandboxOptions {
        identify: false,
        ..SandboxOptions::default()
    })
    .await?;
    let api = ApiConfig {
        base_url: sb.base_url().parse()?,
        ..ApiConfig::default()
    };
    let creds = Credentials::Basic {
        login: "sandbox".into(),
        password: SecretString::from("sandbox"),
    };
    let start_day = NaiveDate::from_ymd_opt(START.0, START.1, START.2).expect("a date");
    let start: DateTime<Utc> =
        Utc.from_utc_datetime(&start_day.and_hms_opt(0, 0, 0).expect("midnight"));
    // Answers come on the simulated day: what they cover depends on it.
    let clock = Arc::new(Mutex::new(start));
    let exec = Executor::new(store.clone(), Client::with_credentials(&api, &creds)?)
        // Each simulated day buys its own answers (they all fall in one real UTC day).
        .without_same_day_reuse()
        .with_clock({
            let clock = clock.clone();
            Arc::new(move || *clock.lock().expect("the clock"))
        });
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("analyst.toml"),
        job_file(targets, refetch, settle),
    )?;
    let jobs =
        linkledger::jobs::load_dir(dir.path(), start_day).map_err(|p| anyhow::anyhow!("{p}"))?;
    let mut instants: Vec<DateTime<Utc>> = jobs
        .iter()
        .flat_map(|j| &j.collections)
        .flat_map(|c| {
            c.schedule
                .fires_between(start, start + Duration::days(days), 100_000)
        })
        .collect();
    instants.sort();
    instants.dedup();

    let mut scheduler = Scheduler::new(store.clone(), jobs, "simulation".into(), 8);
    scheduler.tick(start).await?;
    let began = Instant::now();
    for at in &instants {
        sb.set_today(at.date_naive());
        *clock.lock().expect("the clock") = *at;
        let enqueued = scheduler.tick(*at).await?;
        let runs: Vec<i64> = enqueued.iter().map(|e| e.run_id).collect();
        Workers::new(
            exec.clone(),
            WorkerConfig::for_once(30),
            WorkSet::Runs(runs),
        )
        .run(&Shutdown::default())
        .await?;
    }
    let seconds = began.elapsed().as_secs_f64();

    let not_done: i64 =
        sqlx::query_scalar("SELECT count(*) FROM linkledger.work WHERE state <> 'succeeded'")
            .fetch_one(store.pool())
            .await?;
    anyhow::ensure!(not_done == 0, "{not_done} calls did not succeed");
    let (calls, rows_paid): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(jsonb_array_length(r.body #> '{tasks,0,result,0,items}')), 0)::bigint
         FROM linkledger.api_calls c JOIN linkledger.raw_responses r ON r.api_call_id = c.id
         WHERE c.endpoint <> 'appendix/user_data' AND c.outcome = 'ok'",
    )
    .fetch_one(store.pool())
    .await?;
    // Attempts that brought no answer (throttled, retried): the sandbox charges none.
    let other_attempts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT outcome, count(*) FROM linkledger.api_calls
         WHERE endpoint <> 'appendix/user_data' AND outcome <> 'ok' GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await?;
    let rows_stored: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM linkledger.history)
              + (SELECT count(*) FROM linkledger.timeseries_new_lost_summary)",
    )
    .fetch_one(store.pool())
    .await?;
    // Rows written per fire of each collection, in fire order.
    let per_fire = |collection: &'static str| {
        let store = store.clone();
        async move {
            let rows: Vec<i64> = sqlx::query_scalar(
                "SELECT coalesce(sum(w.rows_written), 0)::bigint
                 FROM linkledger.fires f JOIN linkledger.work w ON w.run_id = f.run_id
                 WHERE f.collection = $1 GROUP BY f.scheduled_for ORDER BY f.scheduled_for",
            )
            .bind(collection)
            .fetch_all(store.pool())
            .await?;
            let first = rows.first().copied().unwrap_or(0);
            let later = &rows[rows.len().min(1)..];
            let mean = if later.is_empty() {
                0.0
            } else {
                later.iter().sum::<i64>() as f64 / later.len() as f64
            };
            anyhow::Ok((first, mean))
        }
    };
    let (history_first, history_later) = per_fire("history").await?;
    let (daily_first, daily_later) = per_fire("timeseries_new_lost_summary").await?;
    let charged = sb.stats().charged_usd;
    sb.stop().await;
    Ok(Figures {
        refetch,
        settle,
        seconds,
        calls,
        other_attempts,
        charged,
        rows_paid,
        rows_stored,
        history_first,
        history_later,
        daily_first,
        daily_later,
    })
}

fn print(figures: &[Figures], targets: usize, days: i64) {
    println!(
        "{targets} targets, {days} days from {}-{:02}-{:02}: monthly history since 2019-01-01 and daily new/lost from 30 days back, both fired daily",
        START.0, START.1, START.2
    );
    for f in figures {
        // What the stored rows cost bought once each, in the calls the schedule makes
        // anyway: $0.02 a call + $0.00003 a stored row.
        let once = Decimal::new(2, 2) * Decimal::from(f.calls)
            + Decimal::new(3, 5) * Decimal::from(f.rows_stored);
        let others: Vec<String> = f
            .other_attempts
            .iter()
            .map(|(outcome, n)| format!("{n} {outcome}"))
            .collect();
        let others = if others.is_empty() {
            String::new()
        } else {
            format!(" (other attempts, not charged: {})", others.join(", "))
        };
        let mode = match f.settle {
            Some(s) => format!("{:?}, settle = {s:?}", f.refetch),
            None => format!("{:?}", f.refetch),
        };
        println!(
            "refetch = {:<22}  {} calls{others}, {:.0} s; rows paid {} for {} stored ({:.2}×); paid {} against {} buying each stored row once ({:.3}×); rows loaded per fire: history {} then {:.1}, new/lost {} then {:.1}",
            mode,
            f.calls,
            f.seconds,
            f.rows_paid,
            f.rows_stored,
            f.rows_paid as f64 / f.rows_stored.max(1) as f64,
            f.charged,
            Usd(once),
            (f.charged.decimal() / once).round_dp(3),
            f.history_first,
            f.history_later,
            f.daily_first,
            f.daily_later,
        );
    }
    if let [inc, unsettled, naive] = figures {
        println!(
            "incremental against naive: {:.3}× the dollars, {:.3}× the rows paid, {:.3}× the rows loaded per later fire",
            (inc.charged.decimal() / naive.charged.decimal()).round_dp(3),
            inc.rows_paid as f64 / naive.rows_paid.max(1) as f64,
            (inc.history_later + inc.daily_later)
                / (naive.history_later + naive.daily_later).max(1.0),
        );
        println!(
            "the settle time (seven days for the daily new/lost): {} more than without ({:.3}×), {} rows paid more",
            Usd(inc.charged.decimal() - unsettled.charged.decimal()),
            (inc.charged.decimal() / unsettled.charged.decimal()).round_dp(3),
            inc.rows_paid - unsettled.rows_paid,
        );
    }
}
