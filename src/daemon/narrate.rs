//! What the daemon tells its log while it runs: calls per minute, and why work waits.

use super::*;

/// What the daemon tells the log on its own, looking every `tick`: once each time its
/// calls stop (a refusal, the daily cost limit, a wrong path), which runs' queued work
/// it holds and how to drop it; and every `every` (unless zero), while scheduled work
/// was done or is in flight, one line of what it did.
pub(super) async fn narrate(
    store: Store,
    exec: Executor,
    tick: Duration,
    every: Duration,
    stop: CancellationToken,
) {
    // Ticks since calls stopped: the work claimed with the refused call is put back
    // first, then what is held is told, once.
    let mut halted_for = 0u32;
    let mut last_summary = tokio::time::Instant::now();
    // Where the next summary's account of the ledger starts: now.
    let mut after = match store.scheduled_activity(i64::MAX).await {
        Ok(a) => a.last_call_id,
        Err(_) => 0,
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        match exec.halted() {
            Some(halt) => {
                halted_for += 1;
                if halted_for == 2 {
                    tell_waiting(&store, &halt).await;
                }
            }
            None => halted_for = 0,
        }
        if !every.is_zero() && last_summary.elapsed() >= every {
            let since = last_summary;
            last_summary = tokio::time::Instant::now();
            let activity = store.scheduled_activity(after).await;
            if let Ok(a) = &activity {
                after = after.max(a.last_call_id);
            }
            match activity {
                Ok(a) if a.calls > 0 || a.running > 0 => info!(
                    calls = a.calls,
                    failed = a.failed,
                    rows = a.rows,
                    cost_usd = a.cost.to_f64(),
                    queued = a.queued,
                    running = a.running,
                    "{}",
                    crate::ops::run_log::activity_line(&a, since.elapsed())
                ),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "reading what the daemon did for its summary failed"),
            }
        }
    }
}

/// Logs which runs' queued work a daemon whose calls stopped holds, and how to drop it.
pub(super) async fn tell_waiting(store: &Store, halt: &crate::collect::executor::Halt) {
    let held = match store.waiting_runs().await {
        Ok(held) => held,
        Err(e) => {
            warn!(error = %e, "reading the work held while calls are stopped failed");
            return;
        }
    };
    let until = match halt.until {
        Some(t) => format!("until {} UTC", t.format("%Y-%m-%d %H:%M")),
        None => "until a restart with fixed configuration, credentials or funds".to_string(),
    };
    if held.is_empty() {
        warn!("calls stopped ({halt}) {until}; no queued work is held");
        return;
    }
    let runs: Vec<String> = held
        .iter()
        .map(|h| {
            format!(
                "run {} ({}, {})",
                h.run_id,
                h.job,
                crate::words::count(h.queued, "call")
            )
        })
        .collect();
    let ids: Vec<i64> = held.iter().map(|h| h.run_id).collect();
    warn!(
        runs = ?ids,
        "calls stopped ({halt}); holding the queued work of {} {until}; `linkledger runs show RUN` says why, `linkledger cancel RUN` drops a run's queued work",
        runs.join(", ")
    );
}
