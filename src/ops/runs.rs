//! Runs as a person meets them: the one line a run ends with (printed by `run --once`,
//! logged by the daemon when it closes a run), `linkledger runs` (the newest runs),
//! `linkledger runs show ID` (one run with the calls that brought no data, and why),
//! `linkledger cancel` (the queued work of runs dropped, never a call in flight), and
//! the daemon's one-line account of what it did lately.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::money::Usd;
use crate::store::{Activity, CancelledRun, RunCall, RunFilter, RunRecord, Store, StoreError};
use crate::words::count;

/// The line a run ends with: `competitors: succeeded (11 calls, 0 failed, 6201 rows,
/// cost $0.20621)`, and `; 3 calls not made` when some were not.
pub fn line(
    label: &str,
    status: &str,
    calls: i64,
    failed: i64,
    rows: i64,
    cost: Usd,
    not_made: i64,
) -> String {
    let not_made = if not_made > 0 {
        format!("; {} not made", count(not_made, "call"))
    } else {
        String::new()
    };
    format!(
        "{label}: {status} ({}, {failed} failed, {}, cost {cost}{not_made})",
        count(calls, "call"),
        count(rows, "row")
    )
}

/// `job`, or `job/collection` for a run of one collection.
pub fn label(r: &RunRecord) -> String {
    match &r.collection {
        Some(c) => format!("{}/{c}", r.job),
        None => r.job.clone(),
    }
}

/// The line `r` ends (or ended) with.
pub fn record_line(r: &RunRecord) -> String {
    line(
        &label(r),
        &r.status,
        r.calls,
        r.failed,
        r.rows,
        r.cost,
        r.cancelled,
    )
}

/// A planned call as people name it: its endpoint, the collection too when its name
/// is not the endpoint's, and its first target: `summary [a.com]`,
/// `ranks-weekdays (bulk_ranks) [a.com and 3 more]`.
pub fn call_label(collection: &str, endpoint: &str, targets: &[String]) -> String {
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

/// Closes a run once none of its work is pending and, when this call closed it, logs
/// the line it ended with (INFO, with its figures as fields). `true` when it closed.
pub async fn close_if_done(store: &Store, run_id: i64) -> Result<bool, StoreError> {
    let closed = store.close_run_if_done(run_id).await?;
    if closed {
        log_finished(store, run_id).await;
    }
    Ok(closed)
}

/// Logs the line a closed run ended with.
pub async fn log_finished(store: &Store, run_id: i64) {
    match store.run_record(run_id).await {
        Ok(Some(r)) => info!(
            run_id,
            kind = %r.kind,
            job = %r.job,
            collection = r.collection.as_deref(),
            status = %r.status,
            calls = r.calls,
            failed = r.failed,
            rows = r.rows,
            cost_usd = r.cost.to_f64(),
            reason = r.message.as_deref(),
            "run finished: {}",
            record_line(&r)
        ),
        Ok(None) => {}
        Err(e) => warn!(error = %e, run_id, "reading a finished run for the log failed"),
    }
}

/// The daemon's periodic line: what scheduled work did in the last `span`, and the
/// queue now.
pub fn activity_line(a: &Activity, span: Duration) -> String {
    format!(
        "last {}s: {} ({} failed), {}, cost {}; queue: {} queued, {} running",
        span.as_secs(),
        count(a.calls, "call"),
        a.failed,
        count(a.rows, "row"),
        a.cost,
        a.queued,
        a.running
    )
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `linkledger runs`: the newest runs that pass `filter`, as a table.
pub async fn list(store: &Store, filter: &RunFilter) -> anyhow::Result<String> {
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
    let header = [
        "run",
        "kind",
        "job/collection",
        "started (UTC)",
        "finished (UTC)",
        "status",
        "calls",
        "failed",
        "rows",
        "cost",
        "left",
    ];
    let rows: Vec<[String; 11]> = runs
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                r.kind.clone(),
                label(r),
                when(r.started_at),
                r.finished_at.map(when).unwrap_or_else(|| "-".into()),
                r.status.clone(),
                r.calls.to_string(),
                r.failed.to_string(),
                r.rows.to_string(),
                r.cost.to_string(),
                r.left().to_string(),
            ]
        })
        .collect();
    // Numbers right-aligned, words left-aligned.
    let right = [
        true, false, false, false, false, false, true, true, true, true, true,
    ];
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
    let _ = writeln!(out, "{}", render(header.to_vec()));
    for r in &rows {
        let _ = writeln!(out, "{}", render(r.iter().map(String::as_str).collect()));
    }
    let _ = writeln!(
        out,
        "(calls: requests made; failed: planned calls that brought no data; left: planned \
         calls queued or in flight)\n`linkledger runs show RUN` shows a run's calls without \
         data and why; `linkledger cancel RUN` drops its queued work"
    );
    Ok(out)
}

/// The planned calls `runs show` lists at most.
const SHOW_CALLS: i64 = 100;

/// `linkledger runs show ID`: one run, its figures and the calls that brought no data
/// (or have not yet), with why. `None` when there is no such run.
pub async fn show(store: &Store, run_id: i64) -> anyhow::Result<Option<String>> {
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
    let mut planned = format!(
        "{}: {} done, {} queued",
        count(r.planned, "call"),
        r.done,
        r.queued
    );
    if r.held > 0 {
        let _ = write!(planned, " ({} held by a budget)", r.held);
    }
    let _ = write!(
        planned,
        ", {} in flight, {} without data",
        r.running, r.failed
    );
    let _ = writeln!(out, "planned:  {planned}");
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
        let total = r.planned - r.done;
        if total > shown {
            let _ = writeln!(out, "  ... and {} more", count(total - shown, "call"));
        }
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

/// One call of `runs show`: `#7 summary [b.com]: failed after 3 attempts: why`.
fn call_line(c: &RunCall) -> String {
    let name = call_label(&c.collection, &c.endpoint, &c.targets);
    // "not made: not sent: ..." says it twice.
    let why = c
        .last_error
        .as_deref()
        .map(|w| w.strip_prefix("not sent: ").unwrap_or(w));
    let state = match c.state.as_str() {
        "queued" => {
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
        "running" => "in flight".to_string(),
        "failed" => "failed".to_string(),
        "exhausted" => format!("failed after {}", count(c.failures, "attempt")),
        "cancelled" => "not made".to_string(),
        other => other.to_string(),
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
pub const CANCELLED: &str = "not sent: cancelled by `linkledger cancel`";

/// `linkledger cancel`: drops the queued work of `runs` (and the claims whose process
/// died); calls in flight finish. One line per run saying what was done.
pub async fn cancel(store: &Store, runs: &[i64]) -> anyhow::Result<String> {
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
            "{run}: {dropped}; {} in flight will finish, then the run closes cancelled",
            count(c.in_flight, "call")
        )
    } else {
        format!("{run}: {dropped}; the run is {}", c.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_line_counts_in_words_and_says_what_was_not_made() {
        let cost: Usd = "0.0803".parse().unwrap();
        assert_eq!(
            line("competitors", "succeeded", 1, 0, 1, cost, 0),
            "competitors: succeeded (1 call, 0 failed, 1 row, cost $0.0803)"
        );
        assert_eq!(
            line("fine/summary", "halted", 2, 3, 0, Usd::ZERO, 1),
            "fine/summary: halted (2 calls, 3 failed, 0 rows, cost $0.00; 1 call not made)"
        );
    }

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
}
