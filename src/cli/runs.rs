//! `runs` (the newest runs as a table), `runs show RUN` (one run with the calls that
//! brought no data, and why, and the items of its answers set aside) and `cancel` (the
//! queued work of runs dropped, never a call in flight).

use std::fmt::Write as _;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::{Context, UsageError};
use crate::app;
use crate::ops::run_log::{label, record_line};
use crate::store::{CancelledRun, RunCall, RunFilter, Store};
use crate::words::{CallEnd, CallEnds, count};

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
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
}

#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// One run: its figures, every planned call that brought no data (or has not
    /// yet), with why, and the items of its answers set aside.
    #[command(after_help = super::help::RUNS)]
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

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
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
}

/// `runs` and `runs show RUN`.
pub(super) async fn runs(cx: &Context, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let store = app::connect(&cx.config()?).await?;
    match args.command {
        Some(RunsCommand::Show { run }) => match show(&store, run).await? {
            Some(text) => print!("{text}"),
            None => {
                return Err(UsageError(format!("error: runs show: there is no run {run}")).into());
            }
        },
        None => {
            let filter = RunFilter {
                job: args.job,
                status: args.status,
                limit: args.limit,
            };
            print!("{}", list(&store, &filter).await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cancel RUN...` or `cancel --job NAME`: every run named must exist, else nothing is
/// cancelled (exit 2).
pub(super) async fn cancel(cx: &Context, args: CancelArgs) -> anyhow::Result<ExitCode> {
    let store = app::connect(&cx.config()?).await?;
    let runs = match args.job.as_deref() {
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
            for run in &args.runs {
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
            args.runs
        }
    };
    print!("{}", cancel_runs(&store, &runs).await?);
    Ok(ExitCode::SUCCESS)
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `linkledger runs`: the newest runs that pass `filter`, as a table.
async fn list(store: &Store, filter: &RunFilter) -> anyhow::Result<String> {
    let runs = store.list_runs(filter).await?;
    if runs.is_empty() {
        let mut none = "no runs".to_string();
        if let Some(job) = &filter.job {
            let _ = write!(none, " of job {job}");
        }
        if let Some(status) = &filter.status {
            let _ = write!(none, " with status {status}");
        }
        none.push('\n');
        return Ok(none);
    }
    // The ends of calls made and not made, in the words every output uses; the rarer
    // ones only when a run listed has some.
    let optional = [
        CallEnd::Rejected,
        CallEnd::Abandoned,
        CallEnd::Cancelled,
        CallEnd::Held,
    ];
    let shown_ends: Vec<CallEnd> = optional
        .into_iter()
        .filter(|e| runs.iter().any(|r| r.ends().get(*e) > 0))
        .collect();
    // Requests (as `spend` counts calls) only when retries or reused answers make them
    // differ from the calls made.
    let with_requests = runs.iter().any(|r| r.requests != r.ends().made());
    let mut header: Vec<&str> = vec![
        "run",
        "kind",
        "job/collection",
        "started (UTC)",
        "finished (UTC)",
        "status",
        "calls",
        "failed",
    ];
    header.extend(shown_ends.iter().map(|e| e.key()));
    if with_requests {
        header.push("requests");
    }
    header.extend(["rows", "cost", "left"]);
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let ends = r.ends();
            let mut row = vec![
                r.id.to_string(),
                r.kind.clone(),
                label(r),
                when(r.started_at),
                r.finished_at.map(when).unwrap_or_else(|| "-".into()),
                r.status.clone(),
                ends.made().to_string(),
                ends.failed.to_string(),
            ];
            row.extend(shown_ends.iter().map(|e| ends.get(*e).to_string()));
            if with_requests {
                row.push(r.requests.to_string());
            }
            row.extend([r.rows.to_string(), r.cost.to_string(), r.left().to_string()]);
            row
        })
        .collect();
    // Numbers right-aligned, words left-aligned.
    let right: Vec<bool> = (0..header.len()).map(|i| i == 0 || i >= 6).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let render = |cells: Vec<&str>| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            if right[i] {
                let _ = write!(line, "{cell:>w$}", w = widths[i]);
            } else {
                let _ = write!(line, "{cell:<w$}", w = widths[i]);
            }
        }
        line.trim_end().to_string()
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", render(header.clone()));
    for r in &rows {
        let _ = writeln!(out, "{}", render(r.iter().map(String::as_str).collect()));
    }
    let _ = writeln!(out, "{LIST_NOTE}");
    Ok(out)
}

/// What the columns of `runs` count.
const LIST_NOTE: &str = "\
(calls: planned calls made: succeeded, failed (retries used up, or an answer that could not be
 read), rejected (refused by the API), abandoned (after sending: booked at list price) or in
 flight; cancelled (before sending) and held (by a budget) were not made; requests: HTTP
 requests answered or abandoned, retries included, reused answers not, as `spend` counts calls;
 left: planned calls queued or in flight; the free credentials check is no run's call)
`linkledger runs show RUN` shows a run's calls without data and why; `linkledger cancel RUN`
drops its queued work";

/// The planned calls `runs show` lists at most.
const SHOW_CALLS: i64 = 100;

/// The items set aside `runs show` lists at most.
const SHOW_SET_ASIDE: i64 = 20;

/// `linkledger runs show ID`: one run, its figures, the calls that brought no data (or
/// have not yet), with why, and the items of its answers set aside. `None` when there
/// is no such run.
async fn show(store: &Store, run_id: i64) -> anyhow::Result<Option<String>> {
    let Some(r) = store.run_record(run_id).await? else {
        return Ok(None);
    };
    let calls = store.run_calls(run_id, SHOW_CALLS).await?;
    let mut out = String::new();
    let what = match (&r.collection, r.scheduled_for) {
        (Some(c), Some(at)) => format!(
            "{} run of {}/{c}, fired for {} UTC",
            r.kind,
            r.job,
            at.format("%Y-%m-%d %H:%M")
        ),
        _ => format!("{} run of {}", r.kind, r.job),
    };
    let _ = writeln!(out, "run {}: {what}", r.id);
    let finished = match r.finished_at {
        Some(t) => format!("finished {} UTC", when(t)),
        None => "not finished".into(),
    };
    let _ = writeln!(
        out,
        "status:   {} (started {} UTC, {finished})",
        r.status,
        when(r.started_at)
    );
    let _ = writeln!(out, "result:   {}", record_line(&r));
    let _ = writeln!(out, "planned:  {}", planned_line(&r.ends()));
    if let Some(m) = &r.message {
        let _ = writeln!(out, "why:      {m}");
    }
    if calls.is_empty() {
        let _ = writeln!(out, "every planned call brought its data");
    } else {
        let _ = writeln!(out, "\ncalls without data (yet):");
        for c in &calls {
            let _ = writeln!(out, "  {}", call_line(c));
        }
        let shown = calls.len() as i64;
        let total = r.ends().planned() - r.succeeded;
        if total > shown {
            let _ = writeln!(out, "  ... and {} more", count(total - shown, "call"));
        }
    }
    if r.set_aside > 0 {
        let items = store.set_aside_of_run(run_id, SHOW_SET_ASIDE).await?;
        let _ = writeln!(
            out,
            "\nitems set aside (could not be read; the rest of their answers loaded):"
        );
        for i in &items {
            let _ = writeln!(
                out,
                "  raw response {} {} {}: {}",
                i.raw_response_id, i.endpoint, i.path, i.reason
            );
        }
        let shown = items.len() as i64;
        if r.set_aside > shown {
            let _ = writeln!(out, "  ... and {} more", count(r.set_aside - shown, "item"));
        }
        let _ = writeln!(
            out,
            "  (all in linkledger.rejected_items; `linkledger replay` loads those the code \
             reads now)"
        );
    }
    if r.left() > 0 && r.status == "running" {
        let _ = writeln!(
            out,
            "\nto drop its queued work (calls in flight finish): linkledger cancel {}",
            r.id
        );
    }
    Ok(Some(out))
}

/// `runs show`'s count of a run's planned calls by their end: `10 calls: 3 succeeded, 1
/// failed, 2 abandoned after sending, 4 cancelled before sending` (succeeded and
/// failed always, the other ends when there are any).
fn planned_line(ends: &CallEnds) -> String {
    let parts: Vec<String> = CallEnd::ALL
        .into_iter()
        .filter(|e| matches!(e, CallEnd::Succeeded | CallEnd::Failed) || ends.get(*e) > 0)
        .map(|e| format!("{} {}", ends.get(e), e.word()))
        .collect();
    format!("{}: {}", count(ends.planned(), "call"), parts.join(", "))
}

/// One call of `runs show`: `#7 summary [b.com]: failed after 3 attempts: why`, in the
/// words of its end ([`CallEnd`]).
fn call_line(c: &RunCall) -> String {
    let name = call_label(&c.collection, &c.endpoint, &c.targets);
    let end = CallEnd::parse(&c.call_end);
    // A reason that says "not sent" is one of a call never sent, and its end says so:
    // "cancelled before sending: not sent: ..." would say it twice. A call abandoned
    // after sending keeps its reason whole, and is never said not to be sent.
    let why = c.last_error.as_deref().map(|w| match end {
        Some(CallEnd::Abandoned) => w,
        _ => w.strip_prefix("not sent: ").unwrap_or(w),
    });
    let state = match end {
        Some(CallEnd::Queued | CallEnd::Held) if c.state == "queued" => {
            let due = if c.run_after <= Utc::now() {
                "due now".to_string()
            } else {
                format!("due {} UTC", when(c.run_after))
            };
            match &c.held_by {
                Some(budget) => format!("queued, held by {budget}, {due}"),
                None => format!("queued, {due}"),
            }
        }
        Some(CallEnd::Failed) if c.state == "exhausted" => {
            format!("failed after {}", count(c.failures, "attempt"))
        }
        Some(CallEnd::Held) => match &c.held_by {
            Some(budget) => format!("held by {budget}"),
            None => CallEnd::Held.word().to_string(),
        },
        Some(CallEnd::Abandoned) => {
            "abandoned after sending (booked at list price: the API may have charged it)"
                .to_string()
        }
        Some(end) => end.word().to_string(),
        None => c.state.clone(),
    };
    match why {
        Some(why) if c.state == "queued" || c.state == "running" => {
            format!("#{} {name}: {state}; last try: {why}", c.work_id)
        }
        Some(why) => format!("#{} {name}: {state}: {why}", c.work_id),
        None => format!("#{} {name}: {state}", c.work_id),
    }
}

/// Why the work `linkledger cancel` drops was not done.
const CANCELLED: &str = "not sent: cancelled by `linkledger cancel`";

/// `linkledger cancel`: drops the queued work of `runs` (and the claims whose process
/// died); calls in flight finish. One line per run saying what was done.
async fn cancel_runs(store: &Store, runs: &[i64]) -> anyhow::Result<String> {
    let done = store.cancel_runs(runs, CANCELLED).await?;
    let mut out = String::new();
    for c in &done {
        let _ = writeln!(out, "{}", cancel_line(c));
    }
    Ok(out)
}

fn cancel_line(c: &CancelledRun) -> String {
    let run = format!("run {} ({})", c.run_id, c.job);
    if !c.was_running {
        return format!("{run}: already {}; nothing to cancel", c.status);
    }
    let dropped = format!("{} dropped", count(c.cancelled, "queued call"));
    if c.in_flight > 0 {
        format!(
            "{run}: {dropped}; {} in flight: they finish if their process still runs, then the run closes cancelled; if it died, their leases lapse within queue.lease and this command then drops them",
            count(c.in_flight, "call")
        )
    } else {
        format!("{run}: {dropped}; the run is {}", c.status)
    }
}

/// A planned call as people name it: its endpoint, the collection too when its name
/// is not the endpoint's, and its first target: `summary [a.com]`,
/// `ranks-weekdays (bulk_ranks) [a.com and 3 more]`.
fn call_label(collection: &str, endpoint: &str, targets: &[String]) -> String {
    let what = if collection == endpoint {
        endpoint.to_string()
    } else {
        format!("{collection} ({endpoint})")
    };
    match targets {
        [] => what,
        [one] => format!("{what} [{one}]"),
        [first, rest @ ..] => format!("{what} [{first} and {} more]", rest.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_named_once_when_its_collection_is_named_after_its_endpoint() {
        let t = |n: usize| -> Vec<String> { (0..n).map(|i| format!("d{i}.com")).collect() };
        assert_eq!(
            call_label("bulk_pages_summary", "bulk_pages_summary", &t(1)),
            "bulk_pages_summary [d0.com]"
        );
        assert_eq!(
            call_label("ranks-weekdays", "bulk_ranks", &t(4)),
            "ranks-weekdays (bulk_ranks) [d0.com and 3 more]"
        );
    }

    #[test]
    fn cancelling_a_run_with_calls_in_flight_promises_nothing_a_dead_process_cannot_keep() {
        let line = cancel_line(&CancelledRun {
            run_id: 7,
            job: "j".into(),
            status: "running".into(),
            was_running: true,
            cancelled: 3,
            in_flight: 2,
        });
        assert_eq!(
            line,
            "run 7 (j): 3 queued calls dropped; 2 calls in flight: they finish if their process still runs, then the run closes cancelled; if it died, their leases lapse within queue.lease and this command then drops them"
        );
        assert!(!line.contains("will finish"));
    }
}
