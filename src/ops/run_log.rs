//! Runs as a person meets them: the one line a run ends with (printed by `run --once`,
//! logged by the daemon when it closes a run), `linkledger runs` (the newest runs),
//! `linkledger runs show ID` (one run with the calls that brought no data, and why),
//! `linkledger cancel` (the queued work of runs dropped, never a call in flight), and
//! the daemon's one-line account of what it did lately.

use std::time::Duration;

use tracing::{info, warn};

use crate::money::Usd;
use crate::store::{Activity, RunRecord, Store, StoreError};
use crate::words::{CallEnds, count};

/// What a run did, for its line.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Figures {
    /// Its planned calls by their end.
    pub ends: CallEnds,
    pub rows: i64,
    /// Items of its answers that could not be read, set aside (`rejected_items`).
    pub set_aside: i64,
    /// Pages of its listings whose total changed while they were paged.
    pub pages_changed: i64,
    pub cost: Usd,
}

/// The line a run ends with: `competitors: succeeded (11 calls, 0 failed, 6201 rows,
/// cost $0.20621)`, in the words of [`CallEnds`]: the calls made (succeeded, failed,
/// and the rejected, abandoned after sending and in flight when there are any), with
/// `, 1 item set aside` after the rows when its answers had items that could not be
/// read, `, 2 pages of a listing that changed while paged` when a listing's total
/// changed between its pages, and the calls not made when there are any (`; 3
/// cancelled before sending, 1 held by a budget`).
pub fn line(label: &str, status: &str, f: &Figures) -> String {
    let mut set_aside = if f.set_aside > 0 {
        format!(", {} set aside", count(f.set_aside, "item"))
    } else {
        String::new()
    };
    if f.pages_changed > 0 {
        set_aside.push_str(&format!(
            ", {} of a listing that changed while paged",
            count(f.pages_changed, "page")
        ));
    }
    let not_made = match f.ends.not_made_words() {
        w if w.is_empty() => w,
        w => format!("; {w}"),
    };
    format!(
        "{label}: {status} ({}, {}{set_aside}, cost {}{not_made})",
        f.ends.made_words(),
        count(f.rows, "row"),
        f.cost
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
    let figures = Figures {
        ends: r.ends(),
        rows: r.rows,
        set_aside: r.set_aside,
        pages_changed: r.pages_changed,
        cost: r.cost,
    };
    line(&label(r), &r.status, &figures)
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
            calls = r.ends().made(),
            succeeded = r.succeeded,
            failed = r.failed,
            rejected = r.rejected,
            abandoned = r.abandoned,
            cancelled = r.cancelled,
            held = r.held,
            rows = r.rows,
            set_aside = r.set_aside,
            pages_changed = r.pages_changed,
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
        let one = Figures {
            ends: CallEnds {
                succeeded: 1,
                ..CallEnds::default()
            },
            rows: 1,
            cost,
            ..Figures::default()
        };
        assert_eq!(
            line("competitors", "succeeded", &one),
            "competitors: succeeded (1 call, 0 failed, 1 row, cost $0.0803)"
        );
        let halted = Figures {
            ends: CallEnds {
                succeeded: 1,
                rejected: 1,
                cancelled: 3,
                ..CallEnds::default()
            },
            ..Figures::default()
        };
        assert_eq!(
            line("fine/summary", "halted", &halted),
            "fine/summary: halted (2 calls, 0 failed, 1 rejected, 0 rows, cost $0.00; 3 cancelled before sending)"
        );
    }

    #[test]
    fn the_run_line_says_how_many_items_were_set_aside_only_when_some_were() {
        let f = Figures {
            ends: CallEnds {
                succeeded: 1,
                ..CallEnds::default()
            },
            rows: 999,
            set_aside: 1,
            cost: "0.02".parse().unwrap(),
            ..Figures::default()
        };
        assert_eq!(
            line("ranks", "succeeded", &f),
            "ranks: succeeded (1 call, 0 failed, 999 rows, 1 item set aside, cost $0.02)"
        );
        let f = Figures { set_aside: 3, ..f };
        assert!(line("ranks", "succeeded", &f).contains("999 rows, 3 items set aside"));
    }

    #[test]
    fn the_run_line_says_how_many_pages_of_a_changing_listing_it_bought_only_when_some() {
        let f = Figures {
            rows: 0,
            pages_changed: 2,
            ..Figures::default()
        };
        assert!(
            line("links", "succeeded", &f)
                .contains("0 rows, 2 pages of a listing that changed while paged, cost"),
            "{}",
            line("links", "succeeded", &f)
        );
        let f = Figures {
            pages_changed: 0,
            ..f
        };
        assert!(!line("links", "succeeded", &f).contains("changed"));
    }
}
