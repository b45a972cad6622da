//! `run`: the daemon until SIGTERM or SIGINT, or with `--once` the selected jobs once,
//! now; and the report a once-run (or a backfill, or the demo) ends with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;

use super::signals::Signals;
use super::{Context, UsageError, load_jobs, print_warnings, today};
use crate::app::App;
use crate::collect::once::{self, RunReport};
use crate::config::Config;
use crate::jobs::{self, Job};
use crate::store::RunKind;
use crate::words::{CallEnd, CallEnds, count};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run every collection of the selected jobs once, now, then exit.
    #[arg(long)]
    once: bool,
    /// Only this job.
    #[arg(long)]
    job: Option<String>,
}

pub(super) async fn run(cx: &Context, args: RunArgs) -> anyhow::Result<ExitCode> {
    let RunArgs { once, job } = args;
    let cfg = cx.config()?;
    if !once {
        if job.is_some() {
            return Err(UsageError("--job needs --once; the daemon runs every job".into()).into());
        }
        let loaded_from = crate::daemon::fingerprint(&cfg.jobs.dir);
        // Only a jobs directory that cannot be read at all keeps the daemon from
        // starting; a broken file is reported by the daemon, and the others run.
        let mut loaded = jobs::load_dir_for_daemon(&cfg.jobs.dir, today(), &[])
            .map_err(|problems| UsageError(problems.to_string()))?;
        loaded.jobs = print_warnings(loaded.jobs);
        return daemon(cfg, cx.config_path.clone(), loaded, loaded_from).await;
    }
    let jobs = load_jobs(&cfg)?;
    let selected = jobs::select(&jobs, job.as_deref()).map_err(UsageError)?;
    if selected.iter().all(|j| j.collections.is_empty()) {
        // Nothing would be done: said plainly, and no success (a job directory set
        // wrong would otherwise pass unnoticed).
        return Err(UsageError(no_jobs(&cfg.jobs.dir)).into());
    }
    let app = App::build(cfg, "once", &jobs).await?;
    once::record_job_targets(&app.store, &jobs).await;
    let code = run_once(&app, &selected, RunKind::Once, today()).await;
    app.close().await?;
    code
}

/// `run --once` with no collection to run: where it looked, and the setting that
/// says so.
fn no_jobs(dir: &Path) -> String {
    format!(
        "no jobs in {} (jobs.dir, or LINKLEDGER_JOBS__DIR): nothing to collect; put job files there (the repository's jobs/ holds examples) or point jobs.dir at them",
        std::path::absolute(dir)
            .unwrap_or_else(|_| dir.to_path_buf())
            .display()
    )
}

/// `run`: the daemon, until SIGTERM or SIGINT.
async fn daemon(
    cfg: Config,
    config_source: Option<PathBuf>,
    loaded: jobs::DirJobs,
    loaded_from: crate::daemon::Fingerprint,
) -> anyhow::Result<ExitCode> {
    let listen = cfg.server.listen;
    let app = App::build(cfg, "daemon", &loaded.jobs)
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
        loaded,
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

/// `run --once` and `demo`: the selected jobs once, on `day` (today, or one of the
/// demo's simulated days); a signal interrupts them.
pub(super) async fn run_once(
    app: &App,
    jobs: &[&Job],
    kind: RunKind,
    day: NaiveDate,
) -> anyhow::Result<ExitCode> {
    let planned = once::plan(&app.store, jobs, day).await?;
    execute_runs(app, &planned, kind).await
}

/// Runs `planned` (one run of `kind` per job), showing progress; a signal interrupts
/// them. Prints the report and returns the exit status.
pub(super) async fn execute_runs(
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
    let code = print_report(&report, app.client.is_sandbox());
    Ok(match signals.received().filter(|_| report.interrupted) {
        Some((number, name)) => {
            eprintln!("{}", interrupted_line(name, &report.ends()));
            ExitCode::from(128 + number)
        }
        None => code,
    })
}

/// `sandbox`: the answers came from a sandbox, so the totals are what the real API
/// would have charged, not spend.
fn print_report(report: &RunReport, sandbox: bool) -> ExitCode {
    for j in &report.jobs {
        println!("{}", j.line());
        for e in j.errors.iter().take(10) {
            eprintln!("  {}: {e}", j.job);
        }
        if j.errors.len() > 10 {
            eprintln!(
                "  {}: ... and {} more calls without data",
                j.job,
                j.errors.len() - 10
            );
        }
    }
    if sandbox {
        println!(
            "{} (sandbox: nothing was charged; the cost is what the real API would have charged)",
            report.line()
        );
    } else {
        println!("{}", report.line());
    }
    for (budget, calls) in &report.held {
        eprintln!(
            "error: {budget} held back {}: not sent (raise the cap, or run again in its next period)",
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

/// What an interrupted once-run says on stderr, in the words of its calls' ends: `interrupted
/// by SIGINT: 3 of 20 calls succeeded, 2 abandoned after sending (booked at list price:
/// the API may have charged them), 15 cancelled before sending; nothing is left
/// queued`.
fn interrupted_line(signal: &str, ends: &CallEnds) -> String {
    let mut parts = vec![format!(
        "{} of {} succeeded",
        ends.succeeded,
        count(ends.planned(), "call")
    )];
    for end in [CallEnd::Failed, CallEnd::Rejected] {
        if ends.get(end) > 0 {
            parts.push(format!("{} {}", ends.get(end), end.word()));
        }
    }
    if ends.abandoned > 0 {
        parts.push(format!(
            "{} {} (booked at list price: the API may have charged them)",
            ends.abandoned,
            CallEnd::Abandoned.word()
        ));
    }
    for end in [CallEnd::Held, CallEnd::Cancelled] {
        if ends.get(end) > 0 {
            parts.push(format!("{} {}", ends.get(end), end.word()));
        }
    }
    format!(
        "interrupted by {signal}: {}; nothing is left queued",
        parts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupt_names_calls_abandoned_after_sending_apart_from_those_never_sent() {
        let ends = CallEnds {
            succeeded: 3,
            abandoned: 2,
            cancelled: 15,
            ..CallEnds::default()
        };
        let line = interrupted_line("SIGINT", &ends);
        assert_eq!(
            line,
            "interrupted by SIGINT: 3 of 20 calls succeeded, 2 abandoned after sending (booked at list price: the API may have charged them), 15 cancelled before sending; nothing is left queued"
        );
        assert!(!line.contains("not made") && !line.contains("not sent"));
    }
}
