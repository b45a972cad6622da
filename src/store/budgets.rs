//! Bookings against the budgets, in SQL: a request's ledger row written in one
//! statement with its estimate reserved in `spend_totals` against every budget scope
//! its job counts against (and, when asked, a shared API slot), only if no cap in
//! `linkledger.budgets` would be crossed; the totals of a new period prepared; the caps
//! in force recorded. `money::budget` says the whole trip of a cap.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::instrument;

use super::api_slots::{SlotGrant, SlotLease};
use super::{Fence, Store, StoreError};
use crate::money::Usd;
use crate::money::budget::{Cap, Scope};

/// A request about to be sent.
#[derive(Clone, Debug)]
pub struct CallRecord<'a> {
    pub run_id: Option<i64>,
    pub job: Option<&'a str>,
    pub collection: Option<&'a str>,
    /// `summary`, ..., or `appendix/user_data`.
    pub endpoint: &'a str,
    pub targets: &'a [String],
    pub request: &'a Value,
    pub attempt: i32,
    /// Host of the API it goes to.
    pub api_host: Option<&'a str>,
}

/// The budget scopes a call of `job` counts against, as the ledger's statements bind
/// them: their keys, their periods (`day`, `month`) and the job each counts alone
/// (`None` for the account's).
pub(super) struct ScopeBinds {
    pub(super) keys: Vec<String>,
    pub(super) periods: Vec<&'static str>,
    pub(super) jobs: Vec<Option<String>>,
}

impl ScopeBinds {
    pub(super) fn of_call(job: Option<&str>) -> ScopeBinds {
        let scopes = Scope::of_call(job);
        ScopeBinds {
            keys: scopes.iter().map(Scope::key).collect(),
            periods: scopes.iter().map(|s| s.period().sql()).collect(),
            jobs: scopes.iter().map(|s| s.job().map(str::to_string)).collect(),
        }
    }
}

/// What a request is booked against before it is sent. The caps are the ones in
/// force in `linkledger.budgets`, the same for every process.
#[derive(Clone, Copy, Debug)]
pub struct Booking {
    /// Reserved against every budget the call counts against.
    pub estimate: Usd,
    /// A sandbox call: booked against nothing.
    pub sandbox: bool,
    /// A free call (`appendix/user_data`): booked against nothing.
    pub free: bool,
}

impl Booking {
    /// Booked against nothing (the free `appendix/user_data`).
    pub const FREE: Booking = Booking {
        estimate: Usd::ZERO,
        sandbox: false,
        free: true,
    };

    fn books(&self) -> bool {
        !self.sandbox && !self.free
    }
}

/// Whether a request may be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendDecision {
    /// Its ledger row is written and its estimate reserved.
    Sent(i64),
    /// The claim was lost: nothing written.
    Stale,
    /// These caps would be crossed now: nothing written. They take calls again from
    /// `until` (the database's clock).
    Held {
        caps: Vec<Cap>,
        until: DateTime<Utc>,
    },
    /// The call's estimate alone is more than these caps: it can never be sent.
    TooLarge(Vec<Cap>),
    /// A budget the call counts against has no `spend_totals` row for this period
    /// yet: [`Store::prepare_budgets`] first.
    Unprepared,
}

/// A shared API slot asked for with a booking ([`Store::book_with_slot`]).
#[derive(Clone, Copy, Debug)]
pub struct SlotAsk<'a> {
    /// Who holds it (host:pid/role), for people reading `api_slots.holder`.
    pub holder: &'a str,
    pub max_in_flight: i32,
    pub max_per_minute: i64,
    /// How long it stays held if its holder dies (renewed while it lives).
    pub lease: Duration,
}

/// What [`Store::book_with_slot`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotBooking {
    /// The booking's decision, and the slot taken with it (`None` when none was asked
    /// for).
    Booked {
        decision: SendDecision,
        lease: Option<SlotLease>,
    },
    /// No slot is free, or the minute's starts are used up: nothing written; ask
    /// again after this.
    Wait(Duration),
}

#[derive(sqlx::FromRow)]
struct SentRow {
    call_id: Option<i64>,
    over: Option<Vec<String>>,
    over_caps: Option<Vec<rust_decimal::Decimal>>,
    too_large: Option<Vec<String>>,
    until: Option<DateTime<Utc>>,
    missing: i64,
    claim_held: bool,
    slot: Option<i32>,
    slot_token: Option<i64>,
    slot_wait: Option<f64>,
}

impl Store {
    /// Writes the ledger row of a request before it is sent, booked against nothing
    /// (the free `appendix/user_data`).
    #[instrument(skip_all, fields(endpoint = call.endpoint, attempt = call.attempt))]
    pub async fn record_sent(&self, call: &CallRecord<'_>) -> Result<i64, StoreError> {
        match self.record_sent_booked(call, None, &Booking::FREE).await? {
            SendDecision::Sent(id) => Ok(id),
            other => Err(StoreError::Sql(sqlx::Error::Protocol(format!(
                "an unfenced, unbooked ledger row was not written: {other:?}"
            )))),
        }
    }

    /// Writes the ledger row of a request before it is sent, in one statement with its
    /// booking: only while the claim `fence` still holds (a worker that lost its claim
    /// cannot spend), and only if reserving `booking.estimate` crosses none of the caps
    /// in force (`linkledger.budgets`), in which case it is reserved against every
    /// budget the call counts against (their rows are locked in scope order, so
    /// concurrent callers cannot jointly cross a cap).
    pub async fn record_sent_booked(
        &self,
        call: &CallRecord<'_>,
        fence: Option<Fence>,
        booking: &Booking,
    ) -> Result<SendDecision, StoreError> {
        match self.book_with_slot(call, fence, booking, None).await? {
            SlotBooking::Booked { decision, .. } => Ok(decision),
            SlotBooking::Wait(_) => unreachable!("no slot was asked for"),
        }
    }

    /// [`Store::record_sent_booked`] that also takes one of the account's shared API
    /// slots (`slot`) in the same statement and commit: the ledger row is written only
    /// with a slot granted ([`SlotBooking::Wait`] when none is free or the minute's
    /// starts are used up). A slot granted with any decision but `Sent` is the
    /// caller's to release at once.
    #[instrument(skip_all, fields(endpoint = call.endpoint, attempt = call.attempt))]
    pub async fn book_with_slot(
        &self,
        call: &CallRecord<'_>,
        fence: Option<Fence>,
        booking: &Booking,
        slot: Option<&SlotAsk<'_>>,
    ) -> Result<SlotBooking, StoreError> {
        book_on(self.pool(), call, fence, booking, slot).await
    }

    /// Makes sure every budget a call of `job` counts against has its row for the
    /// current period, starting from what the ledger already booked in it (what an
    /// earlier version spent, after an upgrade) and, for the account's own budgets,
    /// what other consumers spent in it as counted so far (`account_others`, written
    /// only with `budget.scope = "account"`). A booking needs all of them, so the
    /// totals are current whether or not a cap is in force.
    pub async fn prepare_budgets(&self, job: Option<&str>) -> Result<(), StoreError> {
        let scopes = ScopeBinds::of_call(job);
        sqlx::query(
            "WITH today AS (SELECT (now() AT TIME ZONE 'UTC')::date AS day),
             keyed AS (
                 SELECT s.scope, s.per, s.job,
                        CASE WHEN s.per = 'day' THEN t.day
                             ELSE date_trunc('month', t.day)::date END AS period
                 FROM UNNEST($1::text[], $2::text[], $3::text[]) AS s(scope, per, job), today t)
             INSERT INTO linkledger.spend_totals (scope, period, booked_usd)
             SELECT k.scope, k.period,
                    (SELECT coalesce(sum(c.budget_usd), 0)
                     FROM linkledger.api_calls c
                     WHERE c.booked_on IS NOT NULL
                       AND CASE WHEN k.per = 'day' THEN c.booked_on = k.period
                                ELSE c.booked_on >= k.period
                                     AND c.booked_on < (k.period + interval '1 month')::date END
                       AND (k.job IS NULL OR c.job = k.job))
                    + CASE WHEN k.job IS NULL THEN
                          (SELECT coalesce(sum(o.others_usd), 0)
                           FROM linkledger.account_others o
                           WHERE CASE WHEN k.per = 'day' THEN o.day = k.period
                                      ELSE o.day >= k.period
                                           AND o.day < (k.period + interval '1 month')::date END)
                      ELSE 0 END
             FROM keyed k
             WHERE NOT EXISTS (SELECT 1 FROM linkledger.spend_totals st
                               WHERE st.scope = k.scope AND st.period = k.period)
             ON CONFLICT (scope, period) DO NOTHING",
        )
        .bind(&scopes.keys)
        .bind(&scopes.periods)
        .bind(&scopes.jobs)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records the caps in force, which every process's bookings read: the account's
    /// caps as given, and the caps of the jobs `jobs` names (other jobs' are left as
    /// they are). `true` when anything changed.
    pub async fn set_budgets(&self, caps: &[Cap], jobs: &[String]) -> Result<bool, StoreError> {
        let scopes: Vec<String> = caps.iter().map(|c| c.scope.key()).collect();
        let names: Vec<String> = caps.iter().map(Cap::name).collect();
        let usd: Vec<rust_decimal::Decimal> = caps.iter().map(|c| c.usd.decimal()).collect();
        let job_scopes: Vec<String> = jobs.iter().map(|j| Scope::Job(j.clone()).key()).collect();
        let account_scopes = ScopeBinds::of_call(None).keys;
        let mut tx = self.pool().begin().await?;
        let removed = sqlx::query(
            "DELETE FROM linkledger.budgets
             WHERE (scope = ANY($3) OR scope = ANY($2)) AND NOT (scope = ANY($1))",
        )
        .bind(&scopes)
        .bind(&job_scopes)
        .bind(&account_scopes)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let set = sqlx::query(
            "INSERT INTO linkledger.budgets (scope, name, cap_usd)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::numeric[])
             ON CONFLICT (scope) DO UPDATE SET name = EXCLUDED.name, cap_usd = EXCLUDED.cap_usd,
                 updated_at = now()
             WHERE linkledger.budgets.cap_usd <> EXCLUDED.cap_usd
                OR linkledger.budgets.name <> EXCLUDED.name",
        )
        .bind(&scopes)
        .bind(&names)
        .bind(&usd)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(removed + set > 0)
    }
}

/// [`Store::book_with_slot`]'s statement on `conn` (the pool, or a group's
/// transaction).
pub(super) async fn book_on<'e>(
    conn: impl sqlx::PgExecutor<'e>,
    call: &CallRecord<'_>,
    fence: Option<Fence>,
    booking: &Booking,
    slot: Option<&SlotAsk<'_>>,
) -> Result<SlotBooking, StoreError> {
    let scopes = ScopeBinds::of_call(call.job);
    let row: SentRow = sqlx::query_as(
        "WITH today AS (SELECT (now() AT TIME ZONE 'UTC')::date AS day),
         -- The shared API slot, when one is asked for (a one-time filter: without
         -- $14 the function is not called). Materialized: called exactly once.
         slot AS MATERIALIZED (
             SELECT granted_slot, granted_token, wait_seconds
             FROM linkledger.take_api_slot($14, $15, $16, $17)
             WHERE $14::text IS NOT NULL),
         keyed AS (
             SELECT s.scope,
                    CASE WHEN s.per = 'day' THEN t.day
                         ELSE date_trunc('month', t.day)::date END AS period,
                    CASE WHEN s.per = 'day' THEN t.day + 1
                         ELSE (date_trunc('month', t.day) + interval '1 month')::date
                    END AS next_period,
                    b.cap_usd AS cap
             FROM UNNEST($11::text[], $18::text[]) AS s(scope, per)
             CROSS JOIN today t
             LEFT JOIN linkledger.budgets b ON b.scope = s.scope
             WHERE $12),
         locked AS (
             SELECT k.scope, k.cap, k.next_period, st.booked_usd
             FROM keyed k
             JOIN linkledger.spend_totals st ON st.scope = k.scope AND st.period = k.period
             ORDER BY k.scope
             FOR UPDATE OF st),
         verdict AS (
             SELECT (SELECT array_agg(scope ORDER BY scope) FROM locked
                     WHERE cap IS NOT NULL AND booked_usd + $10 > cap) AS over,
                    (SELECT array_agg(cap ORDER BY scope) FROM locked
                     WHERE cap IS NOT NULL AND booked_usd + $10 > cap) AS over_caps,
                    (SELECT array_agg(scope ORDER BY scope) FROM locked
                     WHERE cap IS NOT NULL AND $10 > cap) AS too_large,
                    (SELECT max(next_period)::timestamp AT TIME ZONE 'UTC' FROM locked
                     WHERE cap IS NOT NULL AND booked_usd + $10 > cap) AS until,
                    (SELECT count(*) FROM keyed) - (SELECT count(*) FROM locked) AS missing,
                    ($8::bigint IS NULL OR EXISTS (
                        SELECT 1 FROM linkledger.work
                        WHERE id = $8 AND attempt = $7 AND state = 'running')) AS claim_held),
         go AS (SELECT over IS NULL AND missing = 0 AND claim_held
                       AND ($14::text IS NULL OR (SELECT granted_slot FROM slot) IS NOT NULL)
                       AS go
                FROM verdict),
         reserve AS (
             UPDATE linkledger.spend_totals st SET booked_usd = st.booked_usd + $10
             FROM keyed k, go
             WHERE go.go AND st.scope = k.scope AND st.period = k.period),
         ins AS (
             INSERT INTO linkledger.api_calls
                (run_id, job, collection, endpoint, targets, request, attempt, started_at,
                 outcome, work_id, estimated_usd, booked_on, budget_usd, api_host, sandbox)
             SELECT $1, $2, $3, $4, $5, $6, $7, now(), 'sent', $8, $10,
                    CASE WHEN $12 THEN (SELECT day FROM today) END,
                    CASE WHEN $12 THEN $10 END, $9, $13
             FROM go WHERE go.go
             RETURNING id)
         SELECT (SELECT id FROM ins) AS call_id, v.over, v.over_caps,
                v.too_large, v.until,
                v.missing::bigint AS missing, v.claim_held,
                (SELECT granted_slot FROM slot) AS slot,
                (SELECT granted_token FROM slot) AS slot_token,
                (SELECT wait_seconds FROM slot) AS slot_wait
         FROM verdict v",
    )
    .bind(call.run_id)
    .bind(call.job)
    .bind(call.collection)
    .bind(call.endpoint)
    .bind(call.targets)
    .bind(call.request)
    .bind(call.attempt)
    .bind(fence.map(|f| f.work_id))
    .bind(call.api_host)
    .bind(booking.estimate.decimal())
    .bind(&scopes.keys)
    .bind(booking.books())
    .bind(booking.sandbox)
    .bind(slot.map(|s| s.holder))
    .bind(slot.map(|s| s.max_in_flight))
    .bind(slot.map(|s| s.max_per_minute))
    .bind(slot.map(|s| s.lease.as_millis() as i64))
    .bind(&scopes.periods)
    .fetch_one(conn)
    .await?;
    let lease = match slot.map(|_| SlotGrant::read(row.slot, row.slot_token, row.slot_wait)) {
        Some(SlotGrant::Wait(wait)) => return Ok(SlotBooking::Wait(wait)),
        Some(SlotGrant::Granted(lease)) => Some(lease),
        None => None,
    };
    let decision = match row {
        SentRow {
            call_id: Some(id), ..
        } => SendDecision::Sent(id),
        SentRow {
            claim_held: false, ..
        } => SendDecision::Stale,
        SentRow {
            over: Some(scopes),
            over_caps: Some(caps),
            too_large,
            until,
            ..
        } => {
            // The keys are the ones this statement was given: each parses.
            let caps: Vec<Cap> = scopes
                .iter()
                .zip(caps)
                .filter_map(|(key, usd)| {
                    Some(Cap {
                        scope: Scope::parse(key)?,
                        usd: Usd(usd),
                    })
                })
                .collect();
            match (too_large, until) {
                (Some(too_large), _) => SendDecision::TooLarge(
                    caps.into_iter()
                        .filter(|c| too_large.contains(&c.scope.key()))
                        .collect(),
                ),
                (None, Some(until)) => SendDecision::Held { caps, until },
                (None, None) => SendDecision::Stale,
            }
        }
        SentRow { missing, .. } if missing > 0 => SendDecision::Unprepared,
        _ => SendDecision::Stale,
    };
    Ok(SlotBooking::Booked { decision, lease })
}
