//! The account: its balance watched hourly, the runway (days the balance lasts at the
//! jobs' 30-day bill) computed off the runtime, bounded in time.

use super::*;

/// How often the daemon reads the account's balance and price list (it also does at
/// start, with the credentials check).
pub(super) const ACCOUNT_EVERY: Duration = Duration::from_secs(3600);

/// Below this many days of projected spend, the balance is worth a warning.
pub const RUNWAY_WARNING_DAYS: i64 = 7;

/// How long the runway's bill (the jobs' bill over the coming 30 days, `plan::bill`)
/// may take before the daemon stops waiting for it. Thousands of targets fired every
/// minute take tens of seconds (33 s seen for 2,000 in a release build); the runway
/// is worth an hourly look, not a core held for minutes.
pub const RUNWAY_BILL_TIMEOUT: Duration = Duration::from_secs(120);

/// Reads the account (free) every [`ACCOUNT_EVERY`] until `stop`, and checks how long
/// the balance lasts: then, and each time `ticked` says the scheduler went through its
/// first tick since the start or a reload.
pub(super) async fn watch_account(
    store: Store,
    exec: Executor,
    jobs: CurrentJobs,
    metrics: Arc<Metrics>,
    ticked: Arc<Notify>,
    stop: CancellationToken,
) {
    let bill = BillSlot::default();
    let mut next_read = tokio::time::Instant::now() + ACCOUNT_EVERY;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticked.notified() => {}
            _ = tokio::time::sleep_until(next_read) => {
                next_read = tokio::time::Instant::now() + ACCOUNT_EVERY;
                if exec.halted().is_some() {
                    continue;
                }
                match exec.refresh_account().await {
                    Ok(Some(account)) => {
                        info!(
                            balance_usd = account.balance.map(|b| b.to_f64()),
                            "account read"
                        )
                    }
                    Ok(None) => warn!("the API did not answer with the account's balance"),
                    Err(e) => warn!(error = format!("{e:#}"), "reading the account failed"),
                }
            }
        }
        check_runway(&store, &exec, &jobs, &metrics, &bill).await;
    }
}

/// At most one runway bill computes at a time: one that outlasted its timeout still
/// holds the slot until it ends.
#[derive(Clone, Default)]
pub struct BillSlot(Arc<std::sync::atomic::AtomicBool>);

/// What became of a computation handed to [`off_the_runtime`].
#[derive(Debug, PartialEq, Eq)]
pub enum OffRuntime<T> {
    Done(T),
    /// It did not end within its time; it ends on its own thread, unwaited for.
    GaveUp,
    /// The previous one has not ended yet; this one was not started.
    Busy,
    /// Its thread could not be started, or it panicked.
    Failed,
}

/// Runs `f` on a thread of its own, never on the runtime's (a long computation there
/// would stall `/healthz` and the scheduler), and waits for it at most `within`. A
/// computation that outlasts `within` finishes unwaited for and holds `slot` until
/// then; a process that exits does not wait for it.
pub async fn off_the_runtime<T: Send + 'static>(
    slot: &BillSlot,
    within: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> OffRuntime<T> {
    use std::sync::atomic::Ordering;
    if slot.0.swap(true, Ordering::AcqRel) {
        return OffRuntime::Busy;
    }
    /// Frees the slot when the computation ends, even by a panic.
    struct Release(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Release {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Release);
        }
    }
    let release = Release(slot.0.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let started = std::thread::Builder::new()
        .name("runway-bill".into())
        .spawn(move || {
            let _release = release;
            let _ = tx.send(f());
        });
    if started.is_err() {
        return OffRuntime::Failed;
    }
    match tokio::time::timeout(within, rx).await {
        Ok(Ok(done)) => OffRuntime::Done(done),
        Ok(Err(_)) => OffRuntime::Failed,
        Err(_) => OffRuntime::GaveUp,
    }
}

/// How many days the last known balance lasts at the spend the jobs project (their
/// bill over the coming 30 days); warns below [`RUNWAY_WARNING_DAYS`]. The bill is
/// computed off the runtime's threads, within [`RUNWAY_BILL_TIMEOUT`].
pub(super) async fn check_runway(
    store: &Store,
    exec: &Executor,
    jobs: &CurrentJobs,
    metrics: &Metrics,
    bill: &BillSlot,
) {
    let account = match store.latest_account(Some(exec.client().api_host())).await {
        Ok(Some(account)) => account,
        Ok(None) => return,
        Err(e) => {
            warn!(error = %e, "reading the last known balance failed");
            return;
        }
    };
    let Some(balance) = account.balance else {
        return;
    };
    let jobs = jobs.read().expect("jobs lock").clone();
    let prices = exec.prices();
    let per_day = match off_the_runtime(bill, RUNWAY_BILL_TIMEOUT, move || {
        crate::plan::bill::compute(
            &jobs,
            None,
            &prices,
            crate::plan::bill::AccountCaps {
                daily_usd: None,
                monthly_usd: None,
                account_daily_usd: None,
            },
            Utc::now(),
        )
        .total
        .pays_per_day
    })
    .await
    {
        OffRuntime::Done(per_day) => per_day,
        OffRuntime::GaveUp => {
            warn!(
                timeout_s = RUNWAY_BILL_TIMEOUT.as_secs(),
                "the runway's bill took longer than {}s; the balance's runway is not projected this time (`linkledger plan` computes the bill)",
                RUNWAY_BILL_TIMEOUT.as_secs()
            );
            return;
        }
        OffRuntime::Busy => {
            warn!(
                "the previous runway bill is still computing; the balance's runway is not projected this time"
            );
            return;
        }
        OffRuntime::Failed => {
            warn!(
                "computing the runway's bill failed; the balance's runway is not projected this time"
            );
            return;
        }
    };
    let Some(days) = runway_days(balance, per_day) else {
        return;
    };
    metrics.set_runway_days(days);
    if days < RUNWAY_WARNING_DAYS as f64 {
        warn!(
            balance_usd = balance.to_f64(),
            projected_usd_per_day = per_day.to_f64(),
            days = (days * 10.0).round() / 10.0,
            sandbox = account.sandbox,
            "the balance covers fewer than {RUNWAY_WARNING_DAYS} days of the projected spend ({balance} at {per_day}/day lasts {days:.1} days); top up the account"
        );
    }
}

/// Days `balance` lasts at `per_day`; `None` when nothing is spent.
pub fn runway_days(balance: crate::money::Usd, per_day: crate::money::Usd) -> Option<f64> {
    use rust_decimal::prelude::ToPrimitive;
    if per_day.decimal() <= rust_decimal::Decimal::ZERO {
        return None;
    }
    (balance.decimal() / per_day.decimal()).to_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_computation_that_outlasts_its_time_is_given_up_and_holds_its_slot_until_it_ends() {
        let slot = BillSlot::default();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let slow = off_the_runtime(&slot, Duration::from_millis(50), move || {
            let _ = wait.recv();
            1
        });
        assert_eq!(slow.await, OffRuntime::GaveUp);
        assert_eq!(
            off_the_runtime(&slot, Duration::from_secs(5), || 2).await,
            OffRuntime::Busy
        );
        release.send(()).unwrap();
        let freed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match off_the_runtime(&slot, Duration::from_secs(5), || 3).await {
                    OffRuntime::Busy => tokio::task::yield_now().await,
                    done => return done,
                }
            }
        })
        .await
        .expect("the slot is freed once the slow one ends");
        assert_eq!(freed, OffRuntime::Done(3));
    }
}
