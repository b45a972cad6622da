//! The account's limits shared by every process on the database: at most
//! `api.max_in_flight` requests open and `api.max_per_minute` started per sliding minute,
//! whichever daemon, replica or once-run sends them. A request holds a leased slot of
//! `api_slots` (see `store::api_slots`); a keep-alive task renews the leases this process
//! holds, so a dead process's slots lapse within one lease.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::store::api_slots::{SlotGrant, SlotLease};
use crate::store::{SlotAsk, Store};

#[derive(Clone, Debug)]
pub struct SharedSlots {
    store: Store,
    /// Who holds a slot (host:pid/role), for people reading `api_slots.holder`.
    holder: String,
    max_in_flight: i32,
    /// Shared by the clones of this process (the executors'), changed while running
    /// when the account's own rate limit changes.
    max_per_minute: Arc<std::sync::atomic::AtomicI64>,
    /// How long a slot stays held if its holder dies.
    lease: Duration,
    /// The acquisitions this process holds now: only these are renewed, so one whose
    /// release failed (Postgres restarting) lapses instead of leaking.
    held: Arc<Mutex<HashSet<SlotLease>>>,
}

/// A held slot. Dropping it without [`SharedSlots::release`] (a shutdown, a panic)
/// stops its renewal, so its lease lapses instead of leaking.
#[derive(Debug)]
pub struct Slot {
    lease: SlotLease,
    held: Arc<Mutex<HashSet<SlotLease>>>,
}

impl Slot {
    pub fn lease(&self) -> SlotLease {
        self.lease
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(&self.lease);
        }
    }
}

impl SharedSlots {
    pub fn new(
        store: Store,
        holder: String,
        max_in_flight: i32,
        max_per_minute: i64,
        lease: Duration,
    ) -> SharedSlots {
        SharedSlots {
            store,
            holder,
            max_in_flight,
            max_per_minute: Arc::new(std::sync::atomic::AtomicI64::new(max_per_minute)),
            lease,
            held: Arc::default(),
        }
    }

    /// Makes sure the account's slots exist.
    pub async fn prepare(&self) -> anyhow::Result<()> {
        self.store
            .ensure_api_slots(self.max_in_flight)
            .await
            .context("preparing the shared API slots")
    }

    /// Renews this process's slot leases every third of a lease until `stop`.
    pub fn keep_alive(&self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(this.lease / 3) => {}
                }
                let held: Vec<SlotLease> = this
                    .held
                    .lock()
                    .expect("held slots")
                    .iter()
                    .copied()
                    .collect();
                if held.is_empty() {
                    continue;
                }
                if let Err(e) = this.store.renew_api_slots(&held, this.lease).await {
                    warn!(error = %e, "renewing the shared API slots failed; retrying");
                }
            }
        })
    }

    /// Requests this process lets start in a sliding minute across the processes.
    pub fn max_per_minute(&self) -> i64 {
        self.max_per_minute
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Takes another per-minute limit (the account's own changed) for the slots
    /// taken from now on.
    pub fn set_max_per_minute(&self, max_per_minute: i64) {
        self.max_per_minute
            .store(max_per_minute.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// What to ask the store for to take a slot with a booking
    /// ([`Store::book_with_slot`]).
    pub fn ask(&self) -> SlotAsk<'_> {
        SlotAsk {
            holder: &self.holder,
            max_in_flight: self.max_in_flight,
            max_per_minute: self.max_per_minute(),
            lease: self.lease,
        }
    }

    /// A slot the store granted with a booking: renewed from now on, until released.
    pub fn adopt(&self, lease: SlotLease) -> Slot {
        self.held.lock().expect("held slots").insert(lease);
        Slot {
            lease,
            held: self.held.clone(),
        }
    }

    /// Waits for a slot and a start in the minute.
    pub async fn acquire(&self) -> anyhow::Result<Slot> {
        loop {
            let grant = self
                .store
                .acquire_api_slot(
                    &self.holder,
                    self.max_in_flight,
                    self.max_per_minute(),
                    self.lease,
                )
                .await
                .context("taking a shared API slot")?;
            match grant {
                SlotGrant::Granted(lease) => return Ok(self.adopt(lease)),
                SlotGrant::Wait(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Gives the slot back, if this acquisition still holds it.
    pub async fn release(&self, slot: Slot) {
        let lease = slot.lease;
        drop(slot);
        self.release_lease(lease).await;
    }

    /// Gives back a slot no longer held as a [`Slot`] (no longer renewed), if this
    /// acquisition still holds it.
    pub async fn release_lease(&self, lease: SlotLease) {
        match self.store.release_api_slot(lease).await {
            Ok(true) => {}
            Ok(false) => warn!(
                slot = lease.slot,
                "a shared API slot had lapsed and was taken again; left to its new holder"
            ),
            // No longer renewed: the lease lapses on its own.
            Err(e) => warn!(error = %e, slot = lease.slot, "releasing a shared API slot failed"),
        }
    }
}
