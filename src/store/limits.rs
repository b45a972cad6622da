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

/// One writer of the start log at a time (`pg_advisory_xact_lock` key).
const START_LOG_LOCK: i64 = 7_361_636;

impl Store {
    /// Takes one of the account's `max_in_flight` request slots and one start in the
    /// sliding minute, across every process on this database, for `lease`.
    pub async fn acquire_api_slot(
        &self,
        holder: &str,
        max_in_flight: i32,
        max_per_minute: i64,
        lease: Duration,
    ) -> Result<SlotGrant, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(START_LOG_LOCK)
            .execute(&mut *tx)
            .await?;
        // The clock now, not the transaction's start (now()): waiting for the lock above
        // must not date a start earlier than it is. A start counts for a minute and a
        // second: the API counts a request when it arrives, after this booking and the
        // ledger row, so the two windows must not drift apart at the ceiling.
        sqlx::query(
            "DELETE FROM linkledger.api_starts
             WHERE started_at < clock_timestamp() - interval '61 seconds'",
        )
        .execute(&mut *tx)
        .await?;
        let (started, oldest): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*)::bigint,
                    extract(epoch FROM min(started_at) + interval '61 seconds' - clock_timestamp())::float8
             FROM linkledger.api_starts",
        )
        .fetch_one(&mut *tx)
        .await?;
        if started >= max_per_minute {
            tx.rollback().await?;
            let wait = oldest.unwrap_or(0.05).clamp(0.01, 60.0);
            return Ok(SlotGrant::Wait(Duration::from_secs_f64(wait)));
        }
        let granted: Option<(i32, i64)> = sqlx::query_as(
            "UPDATE linkledger.api_slots SET holder = $1,
                    token = nextval('linkledger.api_slot_tokens'),
                    lease_expires_at = now() + $3 * interval '1 millisecond'
             WHERE slot = (SELECT slot FROM linkledger.api_slots
                           WHERE slot <= $2 AND (holder IS NULL OR lease_expires_at < now())
                           ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING slot, token",
        )
        .bind(holder)
        .bind(max_in_flight)
        .bind(lease.as_millis() as i64)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((slot, token)) = granted else {
            tx.rollback().await?;
            return Ok(SlotGrant::Wait(Duration::from_millis(25)));
        };
        sqlx::query("INSERT INTO linkledger.api_starts (started_at) VALUES (clock_timestamp())")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(SlotGrant::Granted(SlotLease { slot, token }))
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
    /// the slot was taken again (that acquisition is left alone).
    pub async fn release_api_slot(&self, lease: SlotLease) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE linkledger.api_slots SET holder = NULL, token = NULL, lease_expires_at = NULL
             WHERE slot = $1 AND token = $2",
        )
        .bind(lease.slot)
        .bind(lease.token)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
