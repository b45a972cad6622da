//! Signals: the first SIGINT or SIGTERM stops (no new calls; calls in flight may
//! finish within `queue.shutdown_grace`), a second one aborts the calls in flight,
//! SIGHUP reloads the job files.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::Context as _;
use tokio::sync::Notify;

use crate::collect::workers::Shutdown;

/// Signals asking this process to stop (SIGINT, SIGTERM) or to reload (SIGHUP).
pub(super) struct Signals {
    /// The first SIGINT or SIGTERM stops; a second one aborts the calls in flight.
    pub(super) shutdown: Shutdown,
    pub(super) reload: Arc<Notify>,
    /// The number of the signal that cancelled `shutdown` (0: none).
    received: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl Signals {
    pub(super) fn listen() -> anyhow::Result<Signals> {
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
    pub(super) fn received(&self) -> Option<(u8, &'static str)> {
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
