//! `sandbox`, an offline DataForSEO-compatible API, and `demo`, the example jobs once a
//! simulated day against one built in, into `DATABASE_URL` or a throwaway cluster.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use secrecy::SecretString;

use super::run::run_once;
use super::{UsageError, load_jobs};
use crate::api::Endpoint;
use crate::api::client::Clock;
use crate::app::App;
use crate::config::{AuthKind, Config};
use crate::jobs::Job;
use crate::money::Usd;
use crate::sandbox::{GatewayOptions, Sandbox, SandboxOptions};
use crate::store::{RunKind, reports};
use crate::words::count;

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Address to serve on (HOST:PORT; port 0 picks a free one). Its base URL is
    /// http://HOST:PORT/v3.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// Milliseconds added to every answer.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency_ms: u64,
    /// Share of requests answered with a fault (HTTP 500/502, 50000, throttling,
    /// dropped connection), from 0 to 1.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    fault_rate: f64,
    /// Seed of the fault sequence.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Requests per minute before 40202.
    #[arg(long, default_value_t = 2000)]
    max_per_minute: u32,
    /// Requests open at once before 40209.
    #[arg(long, default_value_t = 30)]
    max_in_flight: usize,
    /// Leave out the `x-linkledger-sandbox: 1` header, so that clients take this for
    /// the real API and count its charges against their budgets (tests of budgets).
    #[arg(long)]
    as_real_api: bool,
    /// The account's balance at start; `appendix/user_data` reports it less what was charged.
    #[arg(long, value_name = "USD", default_value = "100")]
    balance: Usd,
    /// Serve and charge this price per request instead of the list price ($0.02).
    #[arg(long, value_name = "USD")]
    price_per_request: Option<Usd>,
    /// Serve and charge this price per returned row instead of the list price ($0.00003).
    #[arg(long, value_name = "USD")]
    price_per_row: Option<Usd>,
    /// Serve as a gateway does: live endpoints under PATH (e.g. /apis/v1/dataforseo)
    /// instead of /v3, a bare JSON object as the body, Bearer auth only, no user_data.
    #[arg(long, value_name = "PATH")]
    gateway_prefix: Option<String>,
    /// Answer every task of ENDPOINT with the JSON envelope in FILE, verbatim (a
    /// documented example response), charged its own `cost`. Repeatable.
    #[arg(long, value_name = "ENDPOINT=FILE")]
    fixture: Vec<String>,
}

/// `sandbox`: serves until Ctrl-C, then says what it served and charged.
pub(super) async fn sandbox(args: SandboxArgs) -> anyhow::Result<ExitCode> {
    let SandboxArgs {
        listen,
        latency_ms,
        fault_rate,
        seed,
        max_per_minute,
        max_in_flight,
        as_real_api,
        balance,
        price_per_request,
        price_per_row,
        gateway_prefix,
        fixture,
    } = args;
    if !(0.0..=1.0).contains(&fault_rate) {
        return Err(UsageError("--fault-rate must be between 0 and 1".into()).into());
    }
    let fixtures = sandbox_fixtures(&fixture).map_err(UsageError)?;
    let opts = SandboxOptions {
        listen,
        latency: Duration::from_millis(latency_ms),
        fault_rate,
        seed,
        max_per_minute,
        max_in_flight,
        identify: !as_real_api,
        balance,
        // One price given: the other part stays the list price.
        prices: (price_per_request.is_some() || price_per_row.is_some()).then(|| {
            (
                price_per_request.unwrap_or(crate::api::prices::PRICE_PER_REQUEST),
                price_per_row.unwrap_or(crate::api::prices::PRICE_PER_ROW),
            )
        }),
        gateway: gateway_prefix.map(|prefix| GatewayOptions { prefix }),
        fixtures,
        ..SandboxOptions::default()
    };
    opts.check().map_err(UsageError)?;
    let auth = if opts.gateway.is_some() {
        format!("Bearer token `{}`", opts.token)
    } else {
        format!(
            "login `{}`, password `{}`, or Bearer token `{}`",
            opts.login, opts.password, opts.token
        )
    };
    let sb = Sandbox::start(opts).await?;
    println!(
        "sandbox API at {} ({auth}); {}; Ctrl-C stops it",
        sb.base_url(),
        sb.describe()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    let stats = sb.stats();
    sb.stop().await;
    println!(
        "served {}, charged {}",
        count(stats.requests as i64, "request"),
        stats.charged_usd
    );
    Ok(ExitCode::SUCCESS)
}

/// The sandbox's `--fixture ENDPOINT=FILE` arguments read: each file a JSON envelope.
fn sandbox_fixtures(args: &[String]) -> Result<BTreeMap<Endpoint, serde_json::Value>, String> {
    let mut out = BTreeMap::new();
    for arg in args {
        let (endpoint, file) = arg
            .split_once('=')
            .ok_or_else(|| format!("--fixture {arg}: expected ENDPOINT=FILE"))?;
        let endpoint: Endpoint = endpoint
            .parse()
            .map_err(|e| format!("--fixture {arg}: {e}"))?;
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("--fixture {arg}: cannot read {file}: {e}"))?;
        let body: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("--fixture {arg}: {file} is not JSON: {e}"))?;
        if !body.is_object() {
            return Err(format!(
                "--fixture {arg}: {file} must hold a response envelope (a JSON object)"
            ));
        }
        out.insert(endpoint, body);
    }
    Ok(out)
}

/// `demo`'s arguments.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Simulated days to collect, ending today: the example jobs run once on each day,
    /// the sandbox's data moving from day to day, so that daily charts draw lines.
    #[arg(long, value_name = "N", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..=31))]
    days: u32,
}

/// `demo`: the example jobs once on each of the last `--days` simulated days against an
/// in-process sandbox, into `DATABASE_URL` or a throwaway cluster.
pub(super) async fn demo(cfg: Config, args: DemoArgs) -> anyhow::Result<ExitCode> {
    // The examples built into the binary, whatever the jobs directory holds: the
    // user's own jobs are not the tour's.
    let examples = tempfile::tempdir().context("making a directory for the example jobs")?;
    crate::jobs::examples::write_examples(examples.path()).context("writing the example jobs")?;
    let mut cfg = cfg;
    cfg.jobs.dir = examples.path().to_path_buf();
    let jobs = load_jobs(&cfg)?;
    let mut _cluster = None;
    let url = match cfg.database_url() {
        Some(url) => url.clone(),
        None => {
            println!("DATABASE_URL is not set: starting a throwaway PostgreSQL cluster");
            let cluster = tokio::task::spawn_blocking(crate::ops::cluster::Cluster::start)
                .await
                .context("starting a throwaway cluster")??;
            let url = SecretString::from(cluster.url());
            _cluster = Some(cluster);
            url
        }
    };
    let sb = Sandbox::start(SandboxOptions::default()).await?;
    cfg.database.url = Some(url);
    cfg.api.base_url = sb.base_url().parse().context("sandbox URL")?;
    cfg.api.auth = AuthKind::Basic;
    cfg.api.login = Some("sandbox".into());
    cfg.api.password = Some(SecretString::from("sandbox"));
    // The simulated day is today less `back` days: the clock that times the answers is
    // the real one moved back by as much, so a day's calls and rows are dated that day.
    let back = Arc::new(Mutex::new(chrono::Duration::zero()));
    let clock: Clock = {
        let back = back.clone();
        Arc::new(move || Utc::now() - *back.lock().expect("the demo's clock"))
    };
    let app = App::build(cfg, "demo", &jobs)
        .await?
        .with_simulated_clock(clock);
    let today = super::today();
    let days = args.days;
    println!(
        "running {} (examples/jobs, built in) once a day for {} against the built-in sandbox at {}",
        count(jobs.len() as i64, "example job"),
        count(i64::from(days), "simulated day"),
        sb.base_url()
    );
    let store = app.store.clone();
    // This demo's runs are the demo runs started from here on.
    let before = reports::newest_run_id(&store).await?;
    crate::collect::once::record_job_targets(&store, &jobs).await;
    let mut code = ExitCode::SUCCESS;
    for i in 0..days {
        let ago = days - 1 - i;
        let day = today - chrono::Days::new(u64::from(ago));
        sb.set_today(day);
        *back.lock().expect("the demo's clock") = chrono::Duration::days(i64::from(ago));
        // The jobs' relative dates ("-30d") as on that day.
        let day_jobs = crate::jobs::load_dir(examples.path(), day)
            .map_err(|problems| UsageError(problems.to_string()))?;
        let selected: Vec<&Job> = day_jobs.iter().collect();
        println!("\nday {} of {days}: {day}", i + 1);
        let day_code = run_once(&app, &selected, RunKind::Demo, day).await?;
        if day_code == ExitCode::SUCCESS {
            continue;
        }
        code = day_code;
        if day_code != ExitCode::from(1) {
            // Interrupted: the days left are not run.
            break;
        }
    }
    println!("\nstored (schema linkledger, the whole warehouse):");
    for (table, n) in store.table_counts().await? {
        println!("  {table:<34} {:>12}", count(n, "row"));
    }
    println!("\ncost by endpoint of this demo's calls (what the real API would have charged):");
    let spent =
        reports::spend_by_endpoint_of_runs_after(&store, RunKind::Demo.as_str(), before).await?;
    for r in &spent {
        println!(
            "  {:<34} {:>9} {:>12}",
            r.key,
            count(r.calls, "call"),
            r.cost.to_string()
        );
    }
    let stats = sb.stats();
    println!(
        "\nthe sandbox served {} and charged {}; the ledger books {} for this demo's calls",
        count(stats.requests as i64, "request"),
        stats.charged_usd,
        spent.iter().map(|r| r.cost).sum::<Usd>()
    );
    if _cluster.is_some() {
        println!("(the throwaway cluster is removed now; set DATABASE_URL to keep the data)");
    }
    app.close().await?;
    sb.stop().await;
    Ok(code)
}
