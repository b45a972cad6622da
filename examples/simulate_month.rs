//! A month of the shipped example jobs (`examples/jobs/`) in a few minutes: what `plan`
//! projects for the coming 30 days, against what the ledger records when the daemon's
//! scheduler runs every fire of those 30 days against the sandbox, the clock moved from
//! fire to fire (the sandbox's "today" with it).
//!
//!     cargo run --example simulate_month          # from the repository root
//!
//! Uses `DATABASE_URL` (a scratch database is created next to it and dropped), else a
//! throwaway cluster from the local PostgreSQL binaries. Answers are timed on the
//! simulated clock, so history and timeseries fires buy only the periods not stored,
//! as on their own days. Every fire buys its calls: the days all fall in one real UTC
//! day here, where the same call would otherwise be bought once and reused.

use std::collections::BTreeSet;

use chrono::{Duration, DurationRound, Utc};
use linkledger::api::Client;
use linkledger::api::prices::Prices;
use linkledger::collect::executor::Executor;
use linkledger::collect::scheduler::Scheduler;
use linkledger::collect::workers::{Shutdown, WorkSet, WorkerConfig, Workers};
use linkledger::config::{ApiConfig, Credentials};
use linkledger::ops::cluster::Scratch;
use linkledger::plan::bill;
use linkledger::sandbox::{Sandbox, SandboxOptions};
use linkledger::store::Store;
use rust_decimal::Decimal;
use secrecy::SecretString;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let db = Scratch::create("linkledger_month").await?;
    let result = simulate(db.url()).await;
    db.drop_database().await?;
    result
}

async fn simulate(url: &SecretString) -> anyhow::Result<()> {
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
    // Answers come on the simulated day (what they cover depends on it).
    let clock = std::sync::Arc::new(std::sync::Mutex::new(Utc::now()));
    let exec = Executor::new(store.clone(), Client::with_credentials(&api, &creds)?)
        .without_same_day_reuse()
        .with_clock({
            let clock = clock.clone();
            std::sync::Arc::new(move || *clock.lock().expect("the clock"))
        });

    let start = Utc::now().duration_trunc(Duration::minutes(1))?;
    let end = start + Duration::days(bill::WINDOW_DAYS);
    let jobs =
        linkledger::jobs::load_dir(std::path::Path::new("examples/jobs"), start.date_naive())
            .map_err(|p| anyhow::anyhow!("{p}"))?;
    let bill = bill::compute(
        &jobs,
        None,
        &Prices::default(),
        bill::AccountCaps {
            daily_usd: None,
            monthly_usd: None,
            account_daily_usd: None,
        },
        start,
    );

    // Every fire instant of the window, in order; the scheduler sees the collections
    // first at `start`, so nothing from before is caught up.
    let mut instants = BTreeSet::new();
    for job in &jobs {
        for c in &job.collections {
            instants.extend(c.schedule.fires_between(start, end, 100_000));
        }
    }
    let mut scheduler = Scheduler::new(store.clone(), jobs.clone(), "simulation".into(), 8);
    scheduler.tick(start).await?;
    let mut fires = 0;
    for at in &instants {
        sb.set_today(at.date_naive());
        *clock.lock().expect("the clock") = *at;
        let enqueued = scheduler.tick(*at).await?;
        fires += enqueued.len();
        let runs: Vec<i64> = enqueued.iter().map(|e| e.run_id).collect();
        Workers::new(
            exec.clone(),
            WorkerConfig::for_once(30),
            WorkSet::Runs(runs),
        )
        .run(&Shutdown::default())
        .await?;
    }
    let (calls, ledger): (i64, Decimal) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(cost_usd), 0) FROM linkledger.api_calls
         WHERE endpoint <> 'appendix/user_data'",
    )
    .fetch_one(store.pool())
    .await?;
    let failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM linkledger.work WHERE state <> 'succeeded'")
            .fetch_one(store.pool())
            .await?;
    let projected = bill.total.pays_per_month.decimal();
    println!(
        "simulated {} to {}: {} fires at {} instants",
        start.format("%Y-%m-%d %H:%M UTC"),
        end.format("%Y-%m-%d %H:%M UTC"),
        fires,
        instants.len()
    );
    println!(
        "plan projected {} calls, {} (list price); the ledger recorded {} calls, ${} ({} calls not done)",
        bill.total.calls_per_month, bill.total.pays_per_month, calls, ledger, failed
    );
    if !projected.is_zero() {
        println!(
            "ledger / projection = {:.4}",
            (ledger / projected).round_dp(4)
        );
    }
    // The same bill with each listing sized as `plan` sizes it once the listings have
    // fired (their last fire's total_count): before, a listing is projected at its
    // max_rows, the most it may buy.
    let sizes = store
        .listing_sizes(&linkledger::plan::listing::listing_calls(
            &jobs,
            start.date_naive(),
        ))
        .await?;
    let sized = bill::compute_with_stored(
        &jobs,
        None,
        &Prices::default(),
        bill::AccountCaps::default(),
        start,
        Default::default(),
        &sizes,
    );
    let sized_projection = sized.total.pays_per_month.decimal();
    if !sized_projection.is_zero() {
        println!(
            "with the listings sized by their last fire: plan projects {} calls, {}; ledger / projection = {:.4}",
            sized.total.calls_per_month,
            sized.total.pays_per_month,
            (ledger / sized_projection).round_dp(4)
        );
    }
    sb.stop().await;
    Ok(())
}
