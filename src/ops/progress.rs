//! Progress of long work (`run --once`, `backfill`), read from the database: on a
//! terminal an indicatif bar (calls done of total, rows, dollars spent against the
//! estimate, rate and ETA), else a line on stderr every few seconds with the same
//! figures.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::money::Usd;
use crate::store::Store;
use crate::store::ledger::RunProgress;
use crate::words::{CallEnds, count};

/// How often a line is written when stderr is not a terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(3);
/// How often the bar is brought up to date.
const BAR_EVERY: Duration = Duration::from_millis(250);

/// Shows the progress of some runs until [`Progress::finish`].
pub struct Progress {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Progress {
    /// Starts showing the progress of `runs`, whose calls are estimated to cost
    /// `estimate`.
    pub fn start(store: Store, runs: Vec<i64>, estimate: Usd) -> Progress {
        let stop = CancellationToken::new();
        // A terminal indicatif can draw on (not `TERM=dumb` or unset): else lines.
        let terminal = std::io::stderr().is_terminal() && !ProgressDrawTarget::stderr().is_hidden();
        let task = tokio::spawn(show(store, runs, estimate, terminal, stop.clone()));
        Progress { stop, task }
    }

    /// Stops showing it: the bar is left at its last state, short of full with what
    /// was not made when some calls were cancelled or held.
    pub async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn show(
    store: Store,
    runs: Vec<i64>,
    estimate: Usd,
    terminal: bool,
    stop: CancellationToken,
) {
    let started = Instant::now();
    let bar = terminal.then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} calls  {msg}  ETA {eta}",
            )
            .expect("a valid template"),
        );
        crate::ops::telemetry::log_above(Some(bar.clone()));
        bar
    });
    let every = if terminal { BAR_EVERY } else { LINE_EVERY };
    let mut last_line: Option<(i64, i64)> = None;
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tokio::time::sleep(every) => false,
        };
        let mut last = None;
        match store.run_progress(&runs).await {
            Ok(p) => {
                match &bar {
                    Some(bar) => {
                        bar.set_length(p.ends.planned().max(0) as u64);
                        bar.set_position(p.ends.ended_made().max(0) as u64);
                        bar.set_message(figures(&p, estimate, started.elapsed(), false));
                    }
                    None => {
                        // A line when something moved (or at the end), not a stream of
                        // repeats.
                        let moved = (p.ends.ended_made(), p.ends.not_made());
                        if last_line != Some(moved) || stopping {
                            eprintln!("progress: {}", line(&p, estimate, started.elapsed()));
                            last_line = Some(moved);
                        }
                    }
                }
                last = Some(p);
            }
            Err(e) => tracing::debug!(error = %e, "reading the progress failed"),
        }
        if stopping {
            if let Some(bar) = &bar {
                // Calls that were never made leave the bar short of full, and say why.
                match last.and_then(|p| stopped_short(&p.ends)) {
                    Some(why) => bar.abandon_with_message(why),
                    None => bar.abandon(),
                }
                crate::ops::telemetry::log_above(None);
            }
            return;
        }
    }
}

/// `3/5 calls, 2 cancelled before sending, 1204 rows, $0.20 of ~$1.20, 12.5 calls/s, ETA
/// 3s`: the calls made that ended of the planned ones, the calls not made when there
/// are any, then the figures.
fn line(p: &RunProgress, estimate: Usd, elapsed: Duration) -> String {
    let not_made = match p.ends.not_made_words() {
        w if w.is_empty() => w,
        w => format!(", {w}"),
    };
    format!(
        "{}/{} calls{not_made}, {}",
        p.ends.ended_made(),
        p.ends.planned(),
        figures(p, estimate, elapsed, true)
    )
}

/// What the bar ends with when some calls were never made (cancelled before sending or
/// held by a budget): `3 of 5 calls done, 2 cancelled before sending`; `None` when
/// every call was made.
fn stopped_short(ends: &CallEnds) -> Option<String> {
    (ends.not_made() > 0).then(|| {
        format!(
            "{} of {} done, {}",
            ends.ended_made(),
            count(ends.planned(), "call"),
            ends.not_made_words()
        )
    })
}

/// `1204 rows, $0.20 of ~$1.20, 12.5 calls/s` (and the ETA, for a line).
fn figures(p: &RunProgress, estimate: Usd, elapsed: Duration, with_eta: bool) -> String {
    let done = p.ends.ended_made();
    let rate = if elapsed.as_secs_f64() > 0.0 {
        done as f64 / elapsed.as_secs_f64()
    } else {
        0.0
    };
    // Calls still to make: neither ended nor never to be made.
    let to_make = p.ends.planned() - done - p.ends.not_made();
    let eta = if with_eta && rate > 0.0 && to_make > 0 {
        let secs = to_make as f64 / rate;
        format!(
            ", ETA {}",
            humantime::format_duration(Duration::from_secs(secs.round() as u64))
        )
    } else {
        String::new()
    };
    format!(
        "{} rows, {} of ~{}, {rate:.1} calls/s{eta}",
        p.rows, p.cost, estimate
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_whose_calls_were_cancelled_does_not_end_as_if_all_were_done() {
        let ends = CallEnds {
            succeeded: 3,
            cancelled: 2,
            ..CallEnds::default()
        };
        assert_eq!(
            stopped_short(&ends).as_deref(),
            Some("3 of 5 calls done, 2 cancelled before sending")
        );
        let p = RunProgress {
            ends,
            ..RunProgress::default()
        };
        assert!(
            line(&p, Usd::ZERO, Duration::ZERO)
                .starts_with("3/5 calls, 2 cancelled before sending, ")
        );
        let all = CallEnds {
            succeeded: 5,
            ..CallEnds::default()
        };
        assert_eq!(stopped_short(&all), None);
    }
}
