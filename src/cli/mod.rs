//! The command line: parses arguments, loads configuration and job files, handles
//! signals, and calls into the library. The commands' own output (stdout, and the
//! summaries on stderr) is printed here and nowhere else; everything else is logged.
//!
//! One file per command family: `run` (the daemon and `run --once`), `backfill`,
//! `plan` (and `jobs check`, the bill's text), `gaps`, `runs` (`runs`, `runs show`, `cancel`),
//! `spend` (the report's text), `sandbox` (and `demo`), `admin` (`migrate`, `replay`,
//! `grant-reader`, `schema-docs`, `citus-ddl`); `help` holds the texts `--help` ends
//! with, `signals` the handling of SIGINT, SIGTERM and SIGHUP.
//!
//! Exit status: 0 success, 1 work failed, 2 bad usage, configuration or job files (in
//! which case nothing was written anywhere), 128 + the signal's number when a signal
//! interrupted a once-run (130 for SIGINT, 143 for SIGTERM).

mod admin;
mod backfill;
mod gaps;
mod help;
pub(crate) mod plan;
mod run;
mod runs;
mod sandbox;
mod signals;
mod spend;

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{NaiveDate, Utc};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::jobs::{self, Job};

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
    Plan(plan::PlanArgs),
    /// The daemon: schedules, executes, serves /healthz and /metrics; `--once` runs
    /// every collection once, now, then exits.
    #[command(after_help = help::RUN)]
    Run(run::RunArgs),
    /// Rebuilds the normalized tables from stored raw responses, without calling the API.
    #[command(after_help = help::REPLAY)]
    Replay(admin::ReplayArgs),
    /// Spend from the ledger: calls, rows and cost, failed-but-charged calls, estimate
    /// against actual, answers reused, budgets used and left, the last known balance.
    #[command(after_help = help::SPEND)]
    Spend(spend::SpendArgs),
    /// The newest runs: kind, job, when, status, calls, rows, cost and the work left;
    /// `runs show RUN` shows one with its calls that brought no data, and why.
    #[command(args_conflicts_with_subcommands = true, after_help = help::RUNS)]
    Runs(runs::RunsArgs),
    /// Drops the queued work of runs (never a call in flight) and closes them
    /// `cancelled`: what a refusal or a crash left, without SQL. Sends and books nothing.
    #[command(after_help = help::CANCEL)]
    Cancel(runs::CancelArgs),
    /// Serves an offline DataForSEO-compatible API with deterministic fake data.
    #[command(after_help = help::SANDBOX)]
    Sandbox(sandbox::SandboxArgs),
    /// Zero-setup tour: runs the example jobs once a day over the last few simulated
    /// days against a built-in sandbox.
    #[command(after_help = help::DEMO)]
    Demo(sandbox::DemoArgs),
    /// Makes a role a read-only user of the warehouse (for BI tools): USAGE on the
    /// schema, SELECT on every table and view, now and on those added later.
    #[command(after_help = help::GRANT_READER)]
    GrantReader(admin::GrantReaderArgs),
    /// Prints the schema from the database's own comments: as Markdown, every table and
    /// view with its columns, types and key, and the functions (docs/schema.md is this
    /// output); or as a dbt sources.yml with tests of the keys and closed sets.
    #[command(after_help = help::SCHEMA_DOCS)]
    SchemaDocs(admin::SchemaDocsArgs),
    /// Prints the statements that distribute the warehouse over Citus by target (the
    /// ledger and queue stay on the coordinator). Reads no database.
    #[command(after_help = help::CITUS_DDL)]
    CitusDdl,
    /// Fills a job's history and timeseries collections over a date range, buying only
    /// what is not stored; shows the estimate first and asks before spending.
    #[command(after_help = help::BACKFILL)]
    Backfill(backfill::BackfillArgs),
    /// Where the holes are: per history or timeseries collection and target, the
    /// periods of its range stored, unsettled, answered empty or missing.
    #[command(after_help = help::GAPS)]
    Gaps(gaps::GapsArgs),
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Validates every job file.
    #[command(after_help = help::JOBS_CHECK)]
    Check,
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

/// One line per command: each family's file does the rest.
async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let cx = Context {
        config_path: cli.config,
    };
    match cli.command {
        Command::Migrate => admin::migrate(&cx).await,
        Command::Jobs {
            command: JobsCommand::Check,
        } => plan::jobs_check(&cx),
        Command::Plan(args) => plan::plan(&cx, args).await,
        Command::Run(args) => run::run(&cx, args).await,
        Command::Replay(args) => admin::replay(&cx, args).await,
        Command::Spend(args) => spend::spend(&cx, args).await,
        Command::Runs(args) => runs::runs(&cx, args).await,
        Command::Cancel(args) => runs::cancel(&cx, args).await,
        Command::Sandbox(args) => sandbox::sandbox(args).await,
        Command::Demo(args) => sandbox::demo(cx.config()?, args).await,
        Command::GrantReader(args) => admin::grant_reader(&cx, args).await,
        Command::SchemaDocs(args) => admin::schema_docs(&cx, args).await,
        Command::CitusDdl => admin::citus_ddl(),
        Command::Backfill(args) => backfill::backfill(&cx, args).await,
        Command::Gaps(args) => gaps::gaps_command(&cx, args).await,
    }
}

/// What every command starts from: where the configuration comes from.
struct Context {
    /// `--config`.
    config_path: Option<PathBuf>,
}

impl Context {
    /// The configuration, its warnings printed.
    fn config(&self) -> anyhow::Result<Config> {
        let cfg = Config::load(self.config_path.as_deref())?;
        for warning in cfg.warnings() {
            eprintln!("warning: {warning}");
        }
        Ok(cfg)
    }
}

/// `--endpoint E` values, each a usage error when it names no endpoint.
fn endpoint_args(names: &[String]) -> Result<Vec<crate::api::Endpoint>, UsageError> {
    names
        .iter()
        .map(|e| {
            e.parse::<crate::api::Endpoint>()
                .map_err(|e| UsageError(format!("--endpoint: {e}")))
        })
        .collect()
}

/// `--target T` values, each a usage error (quoted escaped) when it is no target.
fn target_args(names: &[String]) -> Result<Vec<crate::api::Target>, UsageError> {
    names
        .iter()
        .map(|t| {
            crate::api::Target::parse(t)
                .map_err(|e| UsageError(format!("--target {}: {e}", crate::words::shown(t))))
        })
        .collect()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
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
