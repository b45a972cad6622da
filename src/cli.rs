//! The command line: parses arguments, loads configuration and job files, handles
//! signals, and calls into the library. The commands' own output (stdout, and the
//! summaries on stderr) is printed here and nowhere else; everything else is logged.
//!
//! Exit status: 0 success, 1 work failed, 2 bad usage, configuration or job files (in
//! which case nothing was written anywhere), 128 + the signal's number when a signal
//! interrupted a once-run (130 for SIGINT, 143 for SIGTERM).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tokio::sync::Notify;

use crate::api::Endpoint;
use crate::app::{self, App};
use crate::collect::once::{self, RunReport};
use crate::collect::workers::Shutdown;
use crate::config::{AuthKind, Config};
use crate::jobs::{self, Job};
use crate::money::Usd;
use crate::sandbox::{GatewayOptions, Sandbox, SandboxOptions};
use crate::store::{RunKind, reports};
use crate::words::count;

#[derive(Debug, Parser)]
#[command(
    name = "linkledger",
    version,
    about = "DataForSEO Backlinks API data into PostgreSQL, with a ledger of every cent spent",
    after_help = help::TOP
)]
pub struct Cli {
    /// Configuration file (default: $LINKLEDGER_CONFIG, else config/linkledger.toml if it exists).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Applies the schema migrations.
    #[command(after_help = help::MIGRATE)]
    Migrate,
    /// Job file commands.
    #[command(after_help = help::JOBS_CHECK)]
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// The bill before anything runs: per fire, per day and per month, against each
    /// budget, and the cheaper way. Spends nothing.
    #[command(after_help = help::PLAN)]
    Plan {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// The bill as JSON, for scripts (money as exact decimal strings).
        #[arg(long)]
        json: bool,
        /// The bill as of this instant instead of now (RFC 3339, e.g. 2026-03-29T00:00:00Z):
        /// fires are counted over the 30 days after it.
        #[arg(long, value_name = "TIME")]
        at: Option<chrono::DateTime<Utc>>,
    },
    /// The daemon: schedules, executes, serves /healthz and /metrics; `--once` runs
    /// every collection once, now, then exits.
    #[command(after_help = help::RUN)]
    Run {
        /// Run every collection of the selected jobs once, now, then exit.
        #[arg(long)]
        once: bool,
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
    },
    /// Rebuilds the normalized tables from stored raw responses, without calling the API.
    #[command(after_help = help::REPLAY)]
    Replay {
        /// Only these endpoints (repeatable); default all.
        #[arg(long = "endpoint", value_name = "E")]
        endpoints: Vec<String>,
        /// Only responses received on or after this UTC day (yyyy-mm-dd).
        #[arg(long)]
        since: Option<NaiveDate>,
    },
    /// Spend from the ledger: calls, rows and cost, failed-but-charged calls, estimate
    /// against actual, answers reused, budgets used and left, the last known balance.
    #[command(after_help = help::SPEND)]
    Spend {
        /// From this UTC day (yyyy-mm-dd, from 00:00 UTC); default the first of the current month.
        #[arg(long)]
        since: Option<NaiveDate>,
        /// Group by UTC day, job, endpoint, or run (with its job, kind and status).
        #[arg(long, default_value = "day", value_parser = ["day", "job", "endpoint", "run"])]
        by: String,
        /// Only the sandbox calls (not real spend), which are otherwise left out.
        #[arg(long)]
        sandbox: bool,
        /// Print the report as JSON (amounts as exact decimal strings).
        #[arg(long)]
        json: bool,
    },
    /// The newest runs: kind, job, when, status, calls, rows, cost and the work left;
    /// `runs show RUN` shows one with its calls that brought no data, and why.
    #[command(args_conflicts_with_subcommands = true, after_help = help::RUNS)]
    Runs {
        #[command(subcommand)]
        command: Option<RunsCommand>,
        /// Only the runs of this job.
        #[arg(long)]
        job: Option<String>,
        /// Only the runs with this status.
        #[arg(long, value_name = "S", value_parser = RUN_STATUSES)]
        status: Option<String>,
        /// How many runs, the newest first.
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: i64,
    },
    /// Drops the queued work of runs (never a call in flight) and closes them
    /// `cancelled`: what a refusal or a crash left, without SQL. Sends and books nothing.
    #[command(after_help = help::CANCEL)]
    Cancel {
        /// The runs (ids as `linkledger runs` lists them).
        #[arg(
            value_name = "RUN",
            required_unless_present = "job",
            conflicts_with = "job"
        )]
        runs: Vec<i64>,
        /// Every open run of this job.
        #[arg(long)]
        job: Option<String>,
    },
    /// Serves an offline DataForSEO-compatible API with deterministic fake data.
    #[command(after_help = help::SANDBOX)]
    Sandbox {
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
    },
    /// Zero-setup tour: runs the example jobs once against a built-in sandbox.
    #[command(after_help = help::DEMO)]
    Demo,
    /// Makes a role a read-only user of the warehouse (for BI tools): USAGE on the
    /// schema, SELECT on every table and view, now and on those added later.
    #[command(after_help = help::GRANT_READER)]
    GrantReader {
        /// The role (it must exist unless --password-env is given).
        #[arg(value_name = "ROLE")]
        role: String,
        /// Create the role with LOGIN if it does not exist, and set its password to the
        /// value of this environment variable (never on the command line).
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
    /// Prints the schema as Markdown from the database's own comments: every table and
    /// view with its columns, types and key, and the functions (docs/schema.md is this
    /// output).
    #[command(after_help = help::SCHEMA_DOCS)]
    SchemaDocs,
    /// Prints the statements that distribute the warehouse over Citus by target (the
    /// ledger and queue stay on the coordinator). Reads no database.
    #[command(after_help = help::CITUS_DDL)]
    CitusDdl,
    /// Fills a job's history and timeseries collections over a date range, buying only
    /// what is not stored; shows the estimate first and asks before spending.
    #[command(after_help = "Examples:
  linkledger backfill --job competitors --from 2019-01-01 --dry-run
  linkledger backfill --job competitors --from 2024-01-01 --endpoint history --yes

Running the same command again after an interruption (Ctrl-C, kill, a lost database)
finishes the backfill: what is stored is skipped, nothing is bought twice.

Exit status: 0 done (or nothing to do); 1 some calls failed or were held by a budget, or
you declined; 2 bad usage, or no --yes and no terminal to ask on; 130/143 interrupted.")]
    Backfill {
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
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run: its figures and every planned call that brought no data (or has not
    /// yet), with why.
    #[command(after_help = help::RUNS)]
    Show {
        /// The run's id.
        #[arg(value_name = "RUN")]
        run: i64,
    },
}

/// The statuses a run can have, for `runs --status`.
const RUN_STATUSES: [&str; 6] = [
    "running",
    "succeeded",
    "failed",
    "halted",
    "interrupted",
    "cancelled",
];

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Validates every job file.
    #[command(after_help = help::JOBS_CHECK)]
    Check,
}

/// What `--help` shows after the options: examples and exit statuses.
mod help {
    macro_rules! help {
        ($($line:expr),* $(,)?) => {
            concat!("Examples:\n", $("  ", $line, "\n",)* "\n")
        };
    }

    pub const TOP: &str = concat!(
        help!(
            "linkledger demo                 # the example jobs once against a built-in sandbox",
            "linkledger jobs check && linkledger plan",
            "linkledger run                  # the daemon: schedules, /healthz, /metrics",
            "linkledger runs                 # what ran, what failed, what is left",
        ),
        "Configuration: config/linkledger.toml (or --config, LINKLEDGER_CONFIG), then DATABASE_URL, \
DATAFORSEO_LOGIN, DATAFORSEO_PASSWORD and LINKLEDGER_<SECTION>__<KEY>.\n\n",
        "Exit status: 0 success; 1 work failed; 2 bad usage, configuration or job files (nothing \
was written); 130 or 143 a once-run interrupted by SIGINT or SIGTERM."
    );
    pub const MIGRATE: &str = concat!(
        help!("DATABASE_URL=postgres://me@localhost/linkledger linkledger migrate"),
        "Exit status: 0 applied (or nothing to apply); 1 the database could not be reached or a \
migration failed; 2 bad configuration."
    );
    pub const JOBS_CHECK: &str = concat!(
        help!(
            "linkledger jobs check",
            "linkledger --config /etc/linkledger.toml jobs check",
        ),
        "Exit status: 0 every job file is valid (warnings, if any, on stderr); 2 problems, each \
printed as file: field: why."
    );
    pub const PLAN: &str = concat!(
        help!(
            "linkledger plan",
            "linkledger plan --job competitors --json",
            "linkledger plan --at 2026-03-29T00:00:00Z",
        ),
        "Exit status: 0 shown; 2 bad usage (an unknown --job), configuration or job files."
    );
    pub const RUN: &str = concat!(
        help!(
            "linkledger run                  # the daemon, until SIGTERM or SIGINT",
            "linkledger run --once --job competitors",
            "LINKLEDGER_API__BASE_URL=http://127.0.0.1:8089/v3 DATAFORSEO_LOGIN=sandbox \
DATAFORSEO_PASSWORD=sandbox linkledger run --once   # against `linkledger sandbox`",
        ),
        "Exit status: 0 success (the daemon: stopped by a signal); 1 some call failed, the API \
refused the account, or a budget held calls back; 2 bad usage, configuration or job files; 130 \
or 143 a once-run interrupted by SIGINT or SIGTERM."
    );
    pub const REPLAY: &str = concat!(
        help!(
            "linkledger replay",
            "linkledger replay --endpoint history --since 2026-01-01",
        ),
        "Exit status: 0 every response replayed; 1 some could not be normalized (each printed); \
2 bad usage or configuration."
    );
    pub const SPEND: &str = concat!(
        help!(
            "linkledger spend",
            "linkledger spend --since 2026-11-01 --by job",
            "linkledger spend --by run --json",
        ),
        "Exit status: 0 shown; 1 the database could not be read; 2 bad usage or configuration."
    );
    pub const RUNS: &str = concat!(
        help!(
            "linkledger runs",
            "linkledger runs --job competitors --status failed",
            "linkledger runs show 42",
        ),
        "Exit status: 0 shown; 1 the database could not be read; 2 bad usage (no such run) or \
configuration."
    );
    pub const CANCEL: &str = concat!(
        help!(
            "linkledger cancel 42 43",
            "linkledger cancel --job competitors   # every open run of the job",
        ),
        "Exit status: 0 done (a run already finished is said so); 1 the database could not be \
written; 2 bad usage (a run that does not exist: nothing is cancelled) or configuration."
    );
    pub const SANDBOX: &str = concat!(
        help!(
            "linkledger sandbox",
            "linkledger sandbox --listen 0.0.0.0:8089 --fault-rate 0.1 --latency-ms 200",
            "then: LINKLEDGER_API__BASE_URL=http://127.0.0.1:8089/v3 DATAFORSEO_LOGIN=sandbox \
DATAFORSEO_PASSWORD=sandbox linkledger run --once",
            "linkledger sandbox --fixture summary=example.json   # answers summary with that envelope",
        ),
        "It takes login sandbox with password sandbox, or Bearer token sandbox-token.\n\n",
        "Exit status: 0 stopped by Ctrl-C; 1 the address could not be served; 2 bad usage."
    );
    pub const GRANT_READER: &str = concat!(
        help!(
            "linkledger grant-reader grafana      # an existing role",
            "LINKLEDGER_READER_PASSWORD=... linkledger grant-reader grafana --password-env LINKLEDGER_READER_PASSWORD",
        ),
        "Run it as the role that runs the migrations (DATABASE_URL): the tables and views that \
role creates later are readable by the reader too. It applies the migrations first, and \
running it again changes nothing.\n\n",
        "Exit status: 0 granted; 1 the database refused (e.g. no right to create roles); 2 bad \
usage (the role does not exist and no --password-env, an empty password, a superuser role) or \
configuration."
    );
    pub const SCHEMA_DOCS: &str = concat!(
        help!(
            "linkledger schema-docs > docs/schema.md",
            "DATABASE_URL=postgres://me@localhost/scratch linkledger schema-docs",
        ),
        "It applies the migrations first, so it documents the schema this version creates.\n\n",
        "Exit status: 0 printed; 1 the database could not be read; 2 bad configuration."
    );
    pub const CITUS_DDL: &str = concat!(
        help!(
            "linkledger citus-ddl > distribute.sql",
            "linkledger citus-ddl | psql -h coordinator -U postgres linkledger",
        ),
        "Run the output once on the Citus coordinator, after `linkledger migrate`, with every\n",
        "daemon stopped. docs/scaling.md says when to move and which queries stay on one shard.\n\n",
        "Exit status: 0 printed."
    );
    pub const DEMO: &str = concat!(
        help!(
            "linkledger demo                 # into a throwaway cluster when DATABASE_URL is unset",
            "DATABASE_URL=postgres://me@localhost/scratch linkledger demo",
        ),
        "Exit status: 0 every call succeeded; 1 some work failed; 2 bad configuration or job files."
    );
}

/// The sandbox's `--fixture ENDPOINT=FILE` arguments read: each file a JSON envelope.
fn sandbox_fixtures(
    args: &[String],
) -> Result<std::collections::BTreeMap<crate::api::Endpoint, serde_json::Value>, String> {
    let mut out = std::collections::BTreeMap::new();
    for arg in args {
        let (endpoint, file) = arg
            .split_once('=')
            .ok_or_else(|| format!("--fixture {arg}: expected ENDPOINT=FILE"))?;
        let endpoint: crate::api::Endpoint = endpoint
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

/// Bad usage, configuration or job files: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = crate::ops::telemetry::init() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            if let Some(usage) = e.downcast_ref::<UsageError>() {
                eprintln!("{usage}");
                return ExitCode::from(2);
            }
            if let Some(cfg) = e.downcast_ref::<crate::config::ConfigError>() {
                eprintln!("error: {cfg}");
                return ExitCode::from(2);
            }
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = || {
        let cfg = Config::load(cli.config.as_deref())?;
        for warning in cfg.warnings() {
            eprintln!("warning: {warning}");
        }
        Ok::<_, anyhow::Error>(cfg)
    };
    match &cli.command {
        Command::Migrate => {
            let store = app::connect(&config()?).await?;
            drop(store);
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs {
            command: JobsCommand::Check,
        } => {
            let cfg = config()?;
            let jobs = load_jobs(&cfg)?;
            for warning in fire_cost_warnings(&cfg, &jobs, today()) {
                eprintln!("warning: {warning}");
            }
            let collections: usize = jobs.iter().map(|j| j.collections.len()).sum();
            println!(
                "ok: {} in {}, {}, {}",
                count(jobs.len() as i64, "job file"),
                cfg.jobs.dir.display(),
                count(jobs.len() as i64, "job"),
                count(collections as i64, "collection")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { job, json, at } => {
            let cfg = config()?;
            let jobs = load_jobs(&cfg)?;
            jobs::select(&jobs, job.as_deref()).map_err(UsageError)?;
            print_plan(
                &cfg,
                &jobs,
                job.as_deref(),
                *json,
                at.unwrap_or_else(Utc::now),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { once, job } => {
            let cfg = config()?;
            if !once {
                if job.is_some() {
                    return Err(
                        UsageError("--job needs --once; the daemon runs every job".into()).into(),
                    );
                }
                let loaded_from = crate::daemon::fingerprint(&cfg.jobs.dir);
                let jobs = print_warnings(
                    jobs::load_dir_for_daemon(&cfg.jobs.dir, today())
                        .map_err(|problems| UsageError(problems.to_string()))?,
                );
                return daemon(cfg, cli.config.clone(), jobs, loaded_from).await;
            }
            let jobs = load_jobs(&cfg)?;
            let selected = jobs::select(&jobs, job.as_deref()).map_err(UsageError)?;
            let app = App::build(cfg, "once", &jobs).await?;
            let code = run_once(&app, &selected, RunKind::Once).await;
            app.close().await?;
            code
        }
        Command::Replay { endpoints, since } => {
            let endpoints: Vec<Endpoint> = if endpoints.is_empty() {
                Endpoint::ALL.to_vec()
            } else {
                endpoints
                    .iter()
                    .map(|e| {
                        e.parse::<Endpoint>()
                            .map_err(|e| UsageError(format!("--endpoint: {e}")))
                    })
                    .collect::<Result<_, _>>()?
            };
            let cfg = config()?;
            let store = app::connect(&cfg).await?;
            let oldest = store.oldest_raw_month().await?;
            if let Some(note) = retention_note(&cfg.warehouse, *since, oldest, today()) {
                eprintln!("{note}");
            }
            let report = crate::collect::replay::replay(&store, &endpoints, *since).await?;
            println!(
                "replayed {} into {}, no API call made",
                count(report.responses as i64, "raw response"),
                count(report.rows as i64, "row")
            );
            for f in &report.failures {
                eprintln!("error: {f}");
            }
            Ok(if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Spend {
            since,
            by,
            sandbox,
            json,
        } => {
            let by: reports::SpendBy = by.parse().map_err(UsageError)?;
            let store = app::connect(&config()?).await?;
            let since = since.unwrap_or_else(|| {
                let t = today();
                NaiveDate::from_ymd_opt(chrono::Datelike::year(&t), chrono::Datelike::month(&t), 1)
                    .expect("first of month")
            });
            let report = reports::spend_report(&store, since, by, *sandbox).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs {
            command,
            job,
            status,
            limit,
        } => {
            let store = app::connect(&config()?).await?;
            runs_command(
                &store,
                command.as_ref(),
                job.clone(),
                status.clone(),
                *limit,
            )
            .await
        }
        Command::Cancel { runs, job } => {
            let store = app::connect(&config()?).await?;
            cancel_command(&store, runs, job.as_deref()).await
        }
        Command::Sandbox {
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
        } => {
            if !(0.0..=1.0).contains(fault_rate) {
                return Err(UsageError("--fault-rate must be between 0 and 1".into()).into());
            }
            let fixtures = sandbox_fixtures(fixture).map_err(UsageError)?;
            let opts = SandboxOptions {
                listen: *listen,
                latency: Duration::from_millis(*latency_ms),
                fault_rate: *fault_rate,
                seed: *seed,
                max_per_minute: *max_per_minute,
                max_in_flight: *max_in_flight,
                identify: !*as_real_api,
                balance: *balance,
                // One price given: the other part stays the list price.
                prices: (price_per_request.is_some() || price_per_row.is_some()).then(|| {
                    (
                        price_per_request.unwrap_or(crate::api::prices::PRICE_PER_REQUEST),
                        price_per_row.unwrap_or(crate::api::prices::PRICE_PER_ROW),
                    )
                }),
                gateway: gateway_prefix.as_ref().map(|prefix| GatewayOptions {
                    prefix: prefix.clone(),
                }),
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
        Command::Demo => demo(config()?).await,
        Command::GrantReader { role, password_env } => {
            if role.trim().is_empty() {
                return Err(UsageError("grant-reader: ROLE must not be empty".into()).into());
            }
            let password = match password_env {
                None => None,
                Some(var) => match std::env::var(var) {
                    Ok(p) if !p.is_empty() => Some(SecretString::from(p)),
                    _ => {
                        return Err(UsageError(format!(
                            "grant-reader: --password-env {var}: the variable {var} is not set or empty"
                        ))
                        .into());
                    }
                },
            };
            let store = app::connect(&config()?).await?;
            let grant = match store.grant_reader(role, password.as_ref()).await {
                Ok(g) => g,
                Err(
                    e @ (crate::store::catalog::GrantError::NoSuchRole(_)
                    | crate::store::catalog::GrantError::Privileged(_)),
                ) => return Err(UsageError(format!("grant-reader: {e}")).into()),
                Err(e) => return Err(anyhow::Error::new(e).context("granting read access")),
            };
            println!(
                "{}{} may read schema {}: USAGE on it, SELECT on {} and {}, and on the tables and views {} creates there later; nothing else",
                if grant.created {
                    "created role "
                } else {
                    "role "
                },
                grant.role,
                crate::store::catalog::SCHEMA,
                count(grant.tables, "table"),
                count(grant.views, "view"),
                grant.future_objects_of,
            );
            if grant.password_set {
                println!("its password was set (LOGIN)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::CitusDdl => {
            print!("{}", crate::warehouse::citus::ddl());
            Ok(ExitCode::SUCCESS)
        }
        Command::SchemaDocs => {
            let store = app::connect(&config()?).await?;
            let relations = store
                .describe_schema()
                .await
                .context("reading the schema's comments")?;
            let functions = store
                .describe_functions()
                .await
                .context("reading the schema's functions")?;
            print!(
                "{}",
                crate::ops::schema_docs::render(&relations, &functions)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Backfill {
            job,
            from,
            to,
            endpoints,
            targets,
            dry_run,
            yes,
            refetch,
        } => {
            let cfg = config()?;
            let jobs = load_jobs(&cfg)?;
            let selected = jobs::select(&jobs, Some(job)).map_err(UsageError)?;
            let endpoints = endpoints
                .iter()
                .map(|e| {
                    e.parse::<Endpoint>()
                        .map_err(|e| UsageError(format!("--endpoint: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let targets = targets
                .iter()
                .map(|t| {
                    crate::api::Target::parse(t)
                        .map_err(|e| UsageError(format!("--target {t}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let req = crate::collect::backfill::Request {
                job: selected[0],
                from: *from,
                to: *to,
                endpoints,
                targets,
                refetch: *refetch,
            };
            backfill(cfg, &jobs, req, *dry_run, *yes).await
        }
    }
}

/// Loads and validates the job files; problems are a usage error (exit 2), warnings
/// are printed and the jobs load.
fn load_jobs(cfg: &Config) -> anyhow::Result<Vec<Job>> {
    let jobs = jobs::load_dir(&cfg.jobs.dir, today())
        .map_err(|problems| UsageError(problems.to_string()))?;
    Ok(print_warnings(jobs))
}

fn print_warnings(jobs: Vec<Job>) -> Vec<Job> {
    for warning in jobs.iter().flat_map(|j| &j.warnings) {
        eprintln!("warning: {warning}");
    }
    jobs
}

/// Signals asking this process to stop (SIGINT, SIGTERM) or to reload (SIGHUP).
struct Signals {
    /// The first SIGINT or SIGTERM stops; a second one aborts the calls in flight.
    shutdown: Shutdown,
    reload: Arc<Notify>,
    /// The number of the signal that cancelled `shutdown` (0: none).
    received: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl Signals {
    fn listen() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
        let mut hup = signal(SignalKind::hangup()).context("installing a SIGHUP handler")?;
        let shutdown = Shutdown::default();
        let reload = Arc::new(Notify::new());
        let received = Arc::new(AtomicU8::new(0));
        let task = tokio::spawn({
            let (shutdown, reload, received) = (shutdown.clone(), reload.clone(), received.clone());
            async move {
                loop {
                    let (number, name) = tokio::select! {
                        _ = term.recv() => (15, "SIGTERM"),
                        _ = int.recv() => (2, "SIGINT"),
                        _ = hup.recv() => {
                            tracing::info!("SIGHUP: reloading the job files");
                            reload.notify_one();
                            continue;
                        }
                    };
                    if shutdown.is_stopping() {
                        tracing::warn!(
                            signal = name,
                            "second signal: abandoning the calls in flight (their requests are booked at list price)"
                        );
                        shutdown.abort.cancel();
                        continue;
                    }
                    tracing::info!(
                        signal = name,
                        "stopping: no new calls; calls in flight may finish within queue.shutdown_grace (a second signal stops them now)"
                    );
                    received.store(number, Ordering::SeqCst);
                    shutdown.stop.cancel();
                }
            }
        });
        Ok(Signals {
            shutdown,
            reload,
            received,
            task,
        })
    }

    /// The signal that stopped the process, if one did: (number, name).
    fn received(&self) -> Option<(u8, &'static str)> {
        match self.received.load(Ordering::SeqCst) {
            2 => Some((2, "SIGINT")),
            15 => Some((15, "SIGTERM")),
            _ => None,
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `run`: the daemon, until SIGTERM or SIGINT.
async fn daemon(
    cfg: Config,
    config_source: Option<PathBuf>,
    jobs: Vec<Job>,
    loaded_from: crate::daemon::Fingerprint,
) -> anyhow::Result<ExitCode> {
    let listen = cfg.server.listen;
    let app = App::build(cfg, "daemon", &jobs)
        .await?
        .with_config_source(config_source);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("serving /healthz and /metrics on {listen}"))?;
    let addr = listener.local_addr()?;
    let signals = Signals::listen()?;
    // The one line operators and tests look for.
    println!("linkledger daemon: /healthz and /metrics on http://{addr}");
    let result = crate::daemon::run(
        &app,
        jobs,
        loaded_from,
        listener,
        signals.shutdown.clone(),
        signals.reload.clone(),
    )
    .await;
    app.close().await?;
    result?;
    Ok(ExitCode::SUCCESS)
}

/// `run --once` and `demo`: the selected jobs once, now; a signal interrupts them.
async fn run_once(app: &App, jobs: &[&Job], kind: RunKind) -> anyhow::Result<ExitCode> {
    let planned = once::plan(&app.store, jobs, today()).await?;
    execute_runs(app, &planned, kind).await
}

/// Runs `planned` (one run of `kind` per job), showing progress; a signal interrupts
/// them. Prints the report and returns the exit status.
async fn execute_runs(
    app: &App,
    planned: &[once::JobCalls],
    kind: RunKind,
) -> anyhow::Result<ExitCode> {
    let signals = Signals::listen()?;
    let exec = app.executor(signals.shutdown.stop.clone());
    let mut workers = app.workers();
    workers.poll = workers.poll.min(Duration::from_millis(20));
    let enqueued = once::enqueue(&exec, planned, kind).await?;
    let progress = crate::ops::progress::Progress::start(
        app.store.clone(),
        enqueued.runs.clone(),
        enqueued.estimate,
    );
    let report = once::execute(&exec, workers, &enqueued.runs, &signals.shutdown).await;
    progress.finish().await;
    let report = report?;
    let code = print_report(&report);
    Ok(match signals.received().filter(|_| report.interrupted) {
        Some((number, name)) => {
            eprintln!(
                "interrupted by {name}: {} done, {} not made (cancelled; nothing is left queued)",
                count(report.done(), "planned call"),
                report.cancelled()
            );
            ExitCode::from(128 + number)
        }
        None => code,
    })
}

/// `backfill`: plans what the request would buy (less what is stored), shows it, asks
/// (unless `yes`), then runs it like a once-run, in runs of kind `backfill`.
async fn backfill(
    cfg: Config,
    jobs: &[Job],
    req: crate::collect::backfill::Request<'_>,
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

/// `plan`: the bill of `jobs` (all loaded, so that answers bought once across jobs are
/// seen), showing `only` when given. Reads the stored price list when a database is
/// configured and reachable, never writes, never calls the API.
async fn print_plan(
    cfg: &Config,
    jobs: &[Job],
    only: Option<&str>,
    json: bool,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let (mut prices, note, held) = plan_prices(cfg).await;
    // A gateway's flat price is what the user pays, whatever the price list says.
    prices.flat_per_call = cfg.api.price_per_call;
    let caps = crate::money::bill::AccountCaps {
        daily_usd: cfg.budget.daily_usd,
        monthly_usd: cfg.budget.monthly_usd,
    };
    let mut bill = crate::money::bill::compute_with_stored(jobs, only, &prices, caps, now, held);
    bill.prices_note = note;
    if json {
        println!("{}", serde_json::to_string_pretty(&bill)?);
    } else {
        print!("{}", crate::money::bill::render_text(&bill));
    }
    Ok(())
}

/// What `replay` cannot rebuild because `warehouse.raw_retention` dropped its raw
/// bodies, when the request reaches past the window; `None` otherwise. `oldest` is
/// the first day of the oldest month of raw bodies still stored.
pub fn retention_note(
    warehouse: &crate::config::WarehouseConfig,
    since: Option<NaiveDate>,
    oldest: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<String> {
    let keep_from = warehouse.raw_keep_from(today)?;
    let window = warehouse.raw_retention?;
    let window = match window.as_secs() {
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        _ => humantime::format_duration(window).to_string(),
    };
    let asked = match since {
        Some(since) if since >= keep_from => return None,
        Some(since) => format!("--since {since} reaches past"),
        None => "replay covers what is kept of".to_string(),
    };
    let kept = match oldest {
        Some(oldest) => format!("the oldest kept are from {oldest}, so replay rebuilds from there"),
        None => "none is kept".to_string(),
    };
    Some(format!(
        "note: {asked} warehouse.raw_retention ({window}): raw bodies go by whole months once \
         entirely older than {keep_from}; {kept} (rows already in the warehouse stay as they are)"
    ))
}

/// The prices `plan` estimates with: the newest price list `appendix/user_data` gave
/// (stored by the daemon) when the database is configured and answers, else the list
/// price; and why, for the output. Connects without migrating: `plan` writes nothing.
async fn plan_prices(
    cfg: &Config,
) -> (
    crate::api::prices::Prices,
    Option<String>,
    crate::warehouse::coverage::Stored,
) {
    use crate::api::prices::Prices;
    let none = crate::warehouse::coverage::Stored::default;
    let Some(url) = cfg.database_url() else {
        return (
            Prices::default(),
            Some("no database configured".into()),
            none(),
        );
    };
    let connect = crate::store::Store::connect(url, 1);
    let store = match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(store)) => store,
        Ok(Err(e)) => {
            return (
                Prices::default(),
                Some(format!("the database did not answer: {e}")),
                none(),
            );
        }
        Err(_) => {
            return (
                Prices::default(),
                Some("the database did not answer within 3 s".into()),
                none(),
            );
        }
    };
    // The account behind the configured API first, else the newest of any real one.
    let host = cfg.api.base_url.host_str().map(str::to_string);
    let mut snapshot = store.latest_account(host.as_deref()).await;
    if matches!(snapshot, Ok(None)) {
        snapshot = store
            .latest_account(None)
            .await
            .map(|s| s.filter(|s| !s.sandbox));
    }
    // What history and timeseries periods are stored (none in a database that was
    // never migrated).
    let held = store.stored().await.unwrap_or_else(|e| {
        tracing::debug!(error = %e, "no coverage readable; planning as if nothing is stored");
        none()
    });
    store.pool().close().await;
    let (prices, note) = match snapshot {
        Ok(Some(s)) if !s.account.prices.is_empty() => {
            (s.prices(), Some(format!("read from {}", s.api_host)))
        }
        Ok(_) => (
            Prices::default(),
            Some("no price list stored yet: the daemon reads it from appendix/user_data".into()),
        ),
        Err(e) => (
            Prices::default(),
            Some(format!("no price list readable in the database: {e}")),
        ),
    };
    (prices, note, held)
}

fn print_report(report: &RunReport) -> ExitCode {
    for j in &report.jobs {
        println!("{}", j.line());
        for e in j.errors.iter().take(10) {
            eprintln!("  {}: {e}", j.job);
        }
        if j.errors.len() > 10 {
            eprintln!(
                "  {}: ... and {} more failed calls",
                j.job,
                j.errors.len() - 10
            );
        }
    }
    println!("{}", report.line());
    for (budget, calls) in &report.held {
        eprintln!(
            "error: {budget} held back {}: not made (raise the cap, or run again in its next period)",
            count(*calls, "call")
        );
    }
    if let Some(h) = &report.halt {
        eprintln!("error: run halted: {h}");
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `demo`: the example jobs once against an in-process sandbox, into `DATABASE_URL` or
/// a throwaway cluster.
async fn demo(cfg: Config) -> anyhow::Result<ExitCode> {
    let jobs = load_jobs(&cfg)?;
    if jobs.is_empty() {
        return Err(UsageError(format!("no job files in {}", cfg.jobs.dir.display())).into());
    }
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
    let mut cfg = cfg;
    cfg.database.url = Some(url);
    cfg.api.base_url = sb.base_url().parse().context("sandbox URL")?;
    cfg.api.auth = AuthKind::Basic;
    cfg.api.login = Some("sandbox".into());
    cfg.api.password = Some(SecretString::from("sandbox"));
    let app = App::build(cfg, "demo", &jobs).await?;
    let selected: Vec<&Job> = jobs.iter().collect();
    println!(
        "running {} from {} once against the built-in sandbox at {}",
        count(selected.len() as i64, "example job"),
        app.config.jobs.dir.display(),
        sb.base_url()
    );
    let store = app.store.clone();
    // This demo's runs are the demo runs started from here on.
    let before = reports::newest_run_id(&store).await?;
    let code = run_once(&app, &selected, RunKind::Demo).await?;
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

/// `runs` and `runs show RUN`.
async fn runs_command(
    store: &crate::store::Store,
    command: Option<&RunsCommand>,
    job: Option<String>,
    status: Option<String>,
    limit: i64,
) -> anyhow::Result<ExitCode> {
    match command {
        Some(RunsCommand::Show { run }) => match crate::ops::runs::show(store, *run).await? {
            Some(text) => print!("{text}"),
            None => {
                return Err(UsageError(format!("error: runs show: there is no run {run}")).into());
            }
        },
        None => {
            let filter = crate::store::RunFilter { job, status, limit };
            print!("{}", crate::ops::runs::list(store, &filter).await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cancel RUN...` or `cancel --job NAME`: every run named must exist, else nothing is
/// cancelled (exit 2).
async fn cancel_command(
    store: &crate::store::Store,
    runs: &[i64],
    job: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let runs = match job {
        Some(job) => {
            let open = store.open_runs_of(job).await?;
            if open.is_empty() {
                println!("job {job} has no open run; nothing to cancel");
                return Ok(ExitCode::SUCCESS);
            }
            open
        }
        None => {
            let mut missing = Vec::new();
            for run in runs {
                if store.run_record(*run).await?.is_none() {
                    missing.push(run.to_string());
                }
            }
            if !missing.is_empty() {
                return Err(UsageError(format!(
                    "error: cancel: no run {}; nothing was cancelled (`linkledger runs` lists them)",
                    missing.join(", ")
                ))
                .into());
            }
            runs.to_vec()
        }
    };
    print!("{}", crate::ops::runs::cancel(store, &runs).await?);
    Ok(ExitCode::SUCCESS)
}

/// `jobs check`'s warnings about collections one fire of which would cost more than
/// `jobs.fire_cost_warning_usd` (at the list price, or the gateway's flat price), as
/// `file: collect[N]: why` with the figure.
fn fire_cost_warnings(cfg: &Config, jobs: &[Job], today: NaiveDate) -> Vec<String> {
    let prices = crate::api::prices::Prices {
        flat_per_call: cfg.api.price_per_call,
        ..crate::api::prices::Prices::default()
    };
    let over = cfg.jobs.fire_cost_warning_usd;
    let mut out = Vec::new();
    for job in jobs {
        for (i, c) in job.collections.iter().enumerate() {
            let calls = crate::money::plan::plan_collection(c, today);
            let cost: Usd = calls.iter().map(|call| call.estimated_cost(&prices)).sum();
            if cost > over {
                out.push(format!(
                    "{}: collect[{}]: one fire of {} makes {} estimated at {cost} ({}), more than \
                     jobs.fire_cost_warning_usd = {over}; `linkledger plan` shows the month's bill",
                    job.file.display(),
                    i + 1,
                    c.name,
                    count(calls.len() as i64, "call"),
                    prices.source()
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every command below `cmd`, itself included, with its path (`linkledger runs show`).
    fn commands(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        let path = format!("{path} {}", cmd.get_name()).trim().to_string();
        out.push((path.clone(), cmd.clone()));
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            commands(sub, &path, out);
        }
    }

    #[test]
    fn replay_notes_the_retention_window_only_when_it_reaches_past_it() {
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let today = day("2026-12-02");
        let keep_all = crate::config::WarehouseConfig::default();
        assert_eq!(
            retention_note(&keep_all, Some(day("2019-01-01")), None, today),
            None
        );
        let window = crate::config::WarehouseConfig {
            raw_retention: Some(std::time::Duration::from_secs(90 * 86_400)),
        };
        assert_eq!(window.raw_keep_from(today), Some(day("2026-09-03")));
        assert_eq!(
            retention_note(&window, Some(day("2026-09-03")), None, today),
            None
        );
        let note = retention_note(
            &window,
            Some(day("2026-01-15")),
            Some(day("2026-09-01")),
            today,
        )
        .unwrap();
        assert_eq!(
            note,
            "note: --since 2026-01-15 reaches past warehouse.raw_retention (90 days): \
             raw bodies go by whole months once entirely older than 2026-09-03; the oldest kept \
             are from 2026-09-01, so replay rebuilds from there (rows already in the warehouse \
             stay as they are)"
        );
        assert!(
            retention_note(&window, None, None, today)
                .unwrap()
                .contains("replay covers what is kept of warehouse.raw_retention")
        );
    }

    #[test]
    fn every_help_has_examples_and_the_exit_statuses_and_every_option_says_what_it_is() {
        let mut root = Cli::command();
        root.build();
        let mut all = Vec::new();
        commands(&root, "", &mut all);
        assert!(all.len() >= 12, "{}", all.len());
        for (path, mut cmd) in all {
            let help = cmd.render_long_help().to_string();
            // A group (`jobs`) shows its subcommands' examples in theirs.
            let examples = help.split("Examples:\n").nth(1).unwrap_or_default();
            assert!(
                examples.starts_with("  ") && examples.contains(" linkledger "),
                "{path}:\n{help}"
            );
            assert!(help.contains("Exit status: 0 "), "{path}:\n{help}");
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(
                    arg.get_help().is_some() || arg.get_long_help().is_some(),
                    "{path}: --{id} has no description"
                );
            }
        }
    }
}
