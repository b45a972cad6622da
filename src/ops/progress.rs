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

    /// Stops showing it (the bar is left at its last state).
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
        bar
    });
    let every = if terminal { BAR_EVERY } else { LINE_EVERY };
    let mut last_line: Option<i64> = None;
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tokio::time::sleep(every) => false,
        };
        match store.run_progress(&runs).await {
            Ok(p) => match &bar {
                Some(bar) => {
                    bar.set_length(p.total.max(0) as u64);
                    bar.set_position(p.ended.max(0) as u64);
                    bar.set_message(figures(&p, estimate, started.elapsed(), false));
                }
                None => {
                    // A line when something moved (or at the end), not a stream of repeats.
                    if last_line != Some(p.ended) || stopping {
                        eprintln!(
                            "progress: {}/{} calls, {}",
                            p.ended,
                            p.total,
                            figures(&p, estimate, started.elapsed(), true)
                        );
                        last_line = Some(p.ended);
                    }
                }
            },
            Err(e) => tracing::debug!(error = %e, "reading the progress failed"),
        }
        if stopping {
            if let Some(bar) = &bar {
                bar.abandon();
            }
            return;
        }
    }
}

/// `1204 rows, $0.20 of ~$1.20, 12.5 calls/s` (and the ETA, for a line).
fn figures(p: &RunProgress, estimate: Usd, elapsed: Duration, with_eta: bool) -> String {
    let rate = if elapsed.as_secs_f64() > 0.0 {
        p.ended as f64 / elapsed.as_secs_f64()
    } else {
        0.0
    };
    let eta = if with_eta && rate > 0.0 && p.total > p.ended {
        let secs = (p.total - p.ended) as f64 / rate;
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
