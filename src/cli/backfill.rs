//! `backfill`: a job's history and timeseries collections over a date range, buying
//! only what is not stored; the estimate first, a question before spending (or
//! `--yes`), then a run like a once-run's, resumable by running it again.

use std::process::ExitCode;
use std::time::Duration;

use chrono::NaiveDate;

use super::run::execute_runs;
use super::{Context, UsageError, endpoint_args, load_jobs, target_args, today};
use crate::app::{self, App};
use crate::collect::backfill::Request;
use crate::collect::once;
use crate::config::Config;
use crate::jobs::{self, Job};
use crate::store::RunKind;

#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// The job whose collections to fill.
    #[arg(long)]
    job: String,
    /// First day (yyyy-mm-dd).
    #[arg(long)]
    from: NaiveDate,
    /// Last day (yyyy-mm-dd); default today.
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Only these endpoints (repeatable): history, timeseries_summary,
    /// timeseries_new_lost_summary.
    #[arg(long = "endpoint", value_name = "E")]
    endpoints: Vec<String>,
    /// Only these targets (repeatable).
    #[arg(long = "target", value_name = "T")]
    targets: Vec<String>,
    /// Show what it would buy and stop.
    #[arg(long)]
    dry_run: bool,
    /// Spend without asking.
    #[arg(long)]
    yes: bool,
    /// Buy the whole range even where it is stored.
    #[arg(long)]
    refetch: bool,
}

pub(super) async fn backfill(cx: &Context, args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let cfg = cx.config()?;
    let jobs = load_jobs(&cfg)?;
    let selected = jobs::select(&jobs, Some(&args.job)).map_err(UsageError)?;
    let endpoints = endpoint_args(&args.endpoints)?;
    let targets = target_args(&args.targets)?;
    let req = Request {
        job: selected[0],
        from: args.from,
        to: args.to,
        endpoints,
        targets,
        refetch: args.refetch,
    };
    fill(cfg, &jobs, req, args.dry_run, args.yes).await
}

/// `backfill`: plans what the request would buy (less what is stored), shows it, asks
/// (unless `yes`), then runs it like a once-run, in runs of kind `backfill`.
async fn fill(
    cfg: Config,
    jobs: &[Job],
    req: Request<'_>,
    dry_run: bool,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let store = app::connect(&cfg).await?;
    let mut prices = store
        .latest_account(cfg.api.base_url.host_str())
        .await?
        .map(|a| a.prices())
        .unwrap_or_default();
    prices.flat_per_call = cfg.api.price_per_call;
    let job = req.job.name.clone();
    // One backfill of a job at a time; holding the lock also proves that any backfill
    // run of this job still open was a dead process's.
    let lock = if dry_run {
        None
    } else {
        match store.lock_backfill(&job, Duration::from_secs(10)).await? {
            Some(lock) => Some(lock),
            None => anyhow::bail!(
                "another backfill of job {job} is running on this database: wait for it, or stop it and run this again (nothing was spent)"
            ),
        }
    };
    let plan = crate::collect::backfill::plan(&store, &req, &prices, today())
        .await?
        .map_err(UsageError)?;
    print!("{}", crate::collect::backfill::render(&plan, &job, &prices));
    if req.endpoints.is_empty() {
        print!(
            "{}",
            listings_not_backfilled(&store, req.job, &prices).await?
        );
    }
    if dry_run {
        println!("dry run: nothing was spent");
        return Ok(ExitCode::SUCCESS);
    }
    if plan.calls.is_empty() {
        println!("everything asked for is stored already: nothing to buy");
        return Ok(ExitCode::SUCCESS);
    }
    if !yes {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(
                "not spending without --yes: there is no terminal to ask on (nothing was spent)"
                    .into(),
            )
            .into());
        }
        let question = format!(
            "Spend up to {} on {} calls? [y/N] ",
            plan.estimate,
            plan.calls.len()
        );
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            eprint!("{question}");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await??;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("not started: nothing was spent");
            return Ok(ExitCode::from(1));
        }
    }
    drop(store);
    let app = App::build(cfg, "backfill", jobs).await?;
    // A backfill of this job that was killed, or lost its database, left runs open:
    // close them (what they did not do is planned anew above).
    let lock = lock.expect("taken unless a dry run");
    let abandoned = app.store.abandoned_backfills(&lock, &job).await?;
    if !abandoned.is_empty() {
        app.store
            .interrupt_runs(
                &abandoned,
                "not sent: the backfill stopped before it was done; running it again finished it",
            )
            .await?;
    }
    let planned = [once::JobCalls {
        job,
        calls: plan.calls,
    }];
    let code = execute_runs(&app, &planned, RunKind::Backfill).await;
    lock.release().await;
    app.close().await?;
    code
}

/// The job's list collections, which a backfill does not buy (a listing is what the
/// API holds now, not a range), each with what one fire of it would cost as what is
/// stored sizes it (`plan::listing`).
async fn listings_not_backfilled(
    store: &crate::store::Store,
    job: &Job,
    prices: &crate::api::prices::Prices,
) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let mut out = String::new();
    for c in job.collections.iter().filter(|c| c.endpoint.is_list()) {
        let planned = crate::collect::narrow::plan_to_buy(store, c, today()).await?;
        let calls: i64 = planned.calls.iter().map(|c| c.planned_calls()).sum();
        let rows: i64 = planned.calls.iter().map(|c| c.planned_rows()).sum();
        let cost: crate::money::Usd = planned.calls.iter().map(|c| c.planned_cost(prices)).sum();
        let sized = planned
            .calls
            .iter()
            .filter(|c| c.listing_size.is_some())
            .count();
        let _ = writeln!(
            out,
            "not backfilled: {} ({}) lists what the API holds now, not a range: one fire lists {} in {}, {cost} ({} of {} sized from what is stored, the others at max_rows); `linkledger run --once --job {}` buys it, `linkledger plan` shows its month",
            c.name,
            c.endpoint,
            crate::words::count(rows, "row"),
            crate::words::count(calls, "call"),
            sized,
            crate::words::count(planned.calls.len() as i64, "listing"),
            job.name
        );
    }
    Ok(out)
}
