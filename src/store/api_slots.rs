//! The account's shared API limits, in SQL: `api_slots` (leased request slots, one per
//! request in flight) and `api_starts` (start instants of the last minute). Every
//! acquisition of a slot gets its own token from a sequence; renewing and releasing name
//! the token, so a holder whose lease lapsed can neither free nor keep alive a slot that
//! was taken again since.

use std::time::Duration;

use super::{Store, StoreError};

/// One acquisition of a slot: the slot and the token that proves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotLease {
    pub slot: i32,
    pub token: i64,
}

/// The answer to a request for a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotGrant {
    Granted(SlotLease),
    /// Every slot is taken, or the minute's starts are used up: ask again after this.
    Wait(Duration),
}

impl SlotGrant {
    /// What `take_api_slot` (or `acquire_api_slot`) returned: a slot and its token, or
    /// how long to wait.
    pub(super) fn read(slot: Option<i32>, token: Option<i64>, wait: Option<f64>) -> SlotGrant {
        match (slot, token) {
            (Some(slot), Some(token)) => SlotGrant::Granted(SlotLease { slot, token }),
            _ => SlotGrant::Wait(Duration::from_secs_f64(
                wait.unwrap_or(0.025).clamp(0.01, 60.0),
            )),
        }
    }
}

impl Store {
    /// Takes one of the account's `max_in_flight` request slots and one start in the
    /// sliding minute, across every process on this database, for `lease`: one round
    /// trip (`linkledger.acquire_api_slot`, migration 0010), whose commit does not wait
    /// for the disk, so the start log's lock is never held across a flush.
    pub async fn acquire_api_slot(
        &self,
        holder: &str,
        max_in_flight: i32,
        max_per_minute: i64,
        lease: Duration,
    ) -> Result<SlotGrant, StoreError> {
        let (slot, token, wait): (Option<i32>, Option<i64>, Option<f64>) = sqlx::query_as(
            "SELECT granted_slot, granted_token, wait_seconds
             FROM linkledger.acquire_api_slot($1, $2, $3, $4)",
        )
        .bind(holder)
        .bind(max_in_flight)
        .bind(max_per_minute)
        .bind(lease.as_millis() as i64)
        .fetch_one(self.pool())
        .await?;
        Ok(SlotGrant::read(slot, token, wait))
    }

    /// Makes sure slots 1..=n exist.
    pub async fn ensure_api_slots(&self, n: i32) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO linkledger.api_slots (slot) SELECT generate_series(1, $1)
             ON CONFLICT (slot) DO NOTHING",
        )
        .bind(n)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Extends the leases of these acquisitions: a live process keeps its slots, a
    /// dead one's lapse within one lease. Returns how many were still held.
    pub async fn renew_api_slots(
        &self,
        leases: &[SlotLease],
        lease: Duration,
    ) -> Result<u64, StoreError> {
        let slots: Vec<i32> = leases.iter().map(|l| l.slot).collect();
        let tokens: Vec<i64> = leases.iter().map(|l| l.token).collect();
        let done = sqlx::query(
            "UPDATE linkledger.api_slots s SET lease_expires_at = now() + $3 * interval '1 millisecond'
             FROM UNNEST($1::int[], $2::bigint[]) AS held(slot, token)
             WHERE s.slot = held.slot AND s.token = held.token",
        )
        .bind(&slots)
        .bind(&tokens)
        .bind(lease.as_millis() as i64)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Frees a slot if this acquisition still holds it; `false` when it had lapsed and
    /// the slot was taken again (that acquisition is left alone). Its commit does not
    /// wait for the disk (`linkledger.release_api_slot`).
    pub async fn release_api_slot(&self, lease: SlotLease) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT linkledger.release_api_slot($1, $2)")
                .bind(lease.slot)
                .bind(lease.token)
                .fetch_one(self.pool())
                .await?,
        )
    }
}
