//! Runs as a person meets them: the one line a run ends with (printed by `run --once`,
//! logged by the daemon when it closes a run), `linkledger runs` (the newest runs),
//! `linkledger runs show ID` (one run with the calls that brought no data, and why),
//! `linkledger cancel` (the queued work of runs dropped, never a call in flight), and
//! the daemon's one-line account of what it did lately.

use std::time::Duration;

use tracing::{info, warn};

use crate::money::Usd;
use crate::store::{Activity, RunRecord, Store, StoreError};
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
}
