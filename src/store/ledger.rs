//! The run log and the spend ledger. A request is recorded *before* it is sent
//! (outcome `sent`), so a crash while waiting still leaves a trace of a possibly paid
//! call; its answer completes the row, and a successful body is committed to
//! `raw_responses` in the same transaction, before anything is normalized.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use tracing::instrument;

use super::slots::{SlotGrant, SlotLease};
use super::{Fence, Store, StoreError, warehouse};
use crate::api::{Attempt, Endpoint};
use crate::money::Usd;
use crate::money::budget::{Cap, Scope};
use crate::warehouse::normalize::Batch;

/// The budget scopes a call of `job` counts against, as the ledger's statements bind
/// them: their keys, their periods (`day`, `month`) and the job each counts alone
/// (`None` for the account's).
struct ScopeBinds {
    keys: Vec<String>,
    periods: Vec<&'static str>,
    jobs: Vec<Option<String>>,
}

impl ScopeBinds {
    fn of_call(job: Option<&str>) -> ScopeBinds {
        let scopes = Scope::of_call(job);
        ScopeBinds {
            keys: scopes.iter().map(Scope::key).collect(),
            periods: scopes.iter().map(|s| s.period().sql()).collect(),
            jobs: scopes.iter().map(|s| s.job().map(str::to_string)).collect(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    Scheduled,
    Once,
    Backfill,
    Replay,
    Demo,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Scheduled => "scheduled",
            RunKind::Once => "once",
            RunKind::Backfill => "backfill",
            RunKind::Replay => "replay",
            RunKind::Demo => "demo",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Halted,
    Interrupted,
    /// `linkledger cancel` dropped its queued work.
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Halted,
        RunStatus::Interrupted,
        RunStatus::Cancelled,
    ];

    pub fn parse(s: &str) -> Option<RunStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Halted => "halted",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// A run as the `runs` table has it, with what became of its work.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RunRow {
    pub job: String,
    pub status: String,
    /// HTTP requests made.
    pub calls: i64,
    /// Logical calls that ended without data (failed, exhausted or cancelled).
    pub failed_calls: i64,
    pub rows_written: i64,
    #[sqlx(try_from = "Decimal")]
    pub cost: Usd,
    pub message: Option<String>,
    /// Planned calls that got their data.
    pub done: i64,
    /// Planned calls never made (cancelled: a refusal, an interrupt).
    pub cancelled: i64,
}

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

/// How an answered request is settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// What the call cost the user (the reported cost, or a gateway's flat price).
    pub cost: Option<Usd>,
    /// What it counts against the budgets, replacing its reservation; `None` keeps the
    /// reservation (no answer arrived to say what it cost).
    pub budget: Option<Usd>,
    /// The answer came from a sandbox: nothing counts.
    pub sandbox: bool,
}

/// One stored raw response, as replay reads it back.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RawResponse {
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub endpoint: Endpoint,
    pub received_at: DateTime<Utc>,
    pub request: Value,
    pub body: Value,
}

/// Who buys a call today.
#[derive(Clone, Debug)]
pub enum Purchase {
    /// Bought already today: reuse this answer.
    Reuse(BoughtAnswer),
    /// This attempt buys it.
    Buy,
    /// Another live attempt is buying it: wait for its answer.
    Wait,
}

#[derive(sqlx::FromRow)]
struct PurchaseRow {
    call_id: Option<i64>,
    sandbox: Option<bool>,
    raw_id: Option<i64>,
    received_at: Option<DateTime<Utc>>,
    body: Option<Value>,
    buyer: Option<i64>,
}

/// An answer already bought, stored raw.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct BoughtAnswer {
    pub call_id: i64,
    pub sandbox: bool,
    pub raw_id: i64,
    pub received_at: DateTime<Utc>,
    pub body: Value,
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

/// When an answer arrived, to the microsecond Postgres keeps, so rows normalized
/// live and rows rebuilt by replay carry the same `collected_at`.
pub fn received_at(attempt: &Attempt) -> DateTime<Utc> {
    use chrono::DurationRound;
    let at = attempt.started_at + chrono::Duration::from_std(attempt.duration).unwrap_or_default();
    at.duration_trunc(chrono::Duration::microseconds(1))
        .unwrap_or(at)
}

/// How far the work of some runs has come.
#[derive(Clone, Copy, Debug, Default, sqlx::FromRow)]
pub struct RunProgress {
    /// Planned calls.
    pub total: i64,
    /// Planned calls that reached their end (succeeded, failed, exhausted, cancelled).
    pub ended: i64,
    pub rows: i64,
    #[sqlx(try_from = "Decimal")]
    pub cost: Usd,
}

impl Store {
    /// How far the work of `runs` has come: calls ended of planned, rows written, what
    /// the requests cost so far.
    pub async fn run_progress(&self, runs: &[i64]) -> Result<RunProgress, StoreError> {
        Ok(sqlx::query_as(
            "SELECT (SELECT count(*) FROM linkledger.work WHERE run_id = ANY($1)) AS total,
                    (SELECT count(*) FROM linkledger.work
                     WHERE run_id = ANY($1) AND state NOT IN ('queued', 'running')) AS ended,
                    (SELECT coalesce(sum(rows_written), 0)::bigint FROM linkledger.work
                     WHERE run_id = ANY($1)) AS rows,
                    (SELECT coalesce(sum(cost_usd), 0) FROM linkledger.api_calls
                     WHERE run_id = ANY($1)) AS cost",
        )
        .bind(runs)
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn run_summary(&self, run_id: i64) -> Result<RunRow, StoreError> {
        Ok(sqlx::query_as(
            "SELECT r.job, r.status, r.calls, r.failed_calls, r.rows_written, r.cost_usd AS cost,
                    r.message,
                    count(w.id) FILTER (WHERE w.state = 'succeeded') AS done,
                    count(w.id) FILTER (WHERE w.state = 'cancelled') AS cancelled
             FROM linkledger.runs r LEFT JOIN linkledger.work w ON w.run_id = r.id
             WHERE r.id = $1 GROUP BY r.id",
        )
        .bind(run_id)
        .fetch_one(self.pool())
        .await?)
    }

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
        .fetch_one(self.pool())
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

    /// Who buys this call (endpoint and task, its `tag` aside) today, from this API: an answer already
    /// bought today is reused ([`Purchase::Reuse`]); else the first live attempt to ask
    /// is the buyer ([`Purchase::Buy`]) and the others wait for its answer
    /// ([`Purchase::Wait`]). A buyer whose claim is gone (its answer failed, its process
    /// died) is replaced by the next attempt that asks.
    pub async fn purchase(
        &self,
        endpoint: &str,
        task: &Value,
        api_host: &str,
        sandbox: bool,
        fence: Fence,
    ) -> Result<Purchase, StoreError> {
        let row: PurchaseRow = sqlx::query_as(
            "WITH today AS (SELECT (now() AT TIME ZONE 'UTC')::date AS day),
             bought AS (
                 SELECT c.id AS call_id, c.sandbox, r.id AS raw_id, r.received_at, r.body
                 FROM linkledger.api_calls c
                 JOIN linkledger.raw_responses r ON r.api_call_id = c.id
                 -- The tag changes nothing in the answer: tagged or not, one purchase.
                 -- By its hash first (api_calls_request_md5_idx), then exactly.
                 WHERE c.endpoint = $1 AND c.outcome = 'ok'
                   AND md5((c.request - 'tag')::text) = md5(($2::jsonb - 'tag')::text)
                   AND c.request - 'tag' = $2::jsonb - 'tag'
                   AND c.api_host IS NOT DISTINCT FROM $3
                   -- A sandbox answer never stands in for a real one.
                   AND (NOT c.sandbox OR $6)
                   AND c.started_at >= (SELECT day FROM today)::timestamp AT TIME ZONE 'UTC'
                   -- (answered after it started: this bound lets the planner read
                   -- only this month's partition of raw_responses)
                   AND r.received_at >= (SELECT day FROM today)::timestamp AT TIME ZONE 'UTC'
                 ORDER BY c.id DESC LIMIT 1),
             buyer AS (
                 INSERT INTO linkledger.purchases AS p
                     (day, api_host, endpoint, request_md5, work_id, attempt)
                 SELECT t.day, $3, $1, md5(($2::jsonb - 'tag')::text), $4, $5
                 FROM today t WHERE NOT EXISTS (SELECT 1 FROM bought)
                 ON CONFLICT (day, api_host, endpoint, request_md5) DO UPDATE
                     SET work_id = EXCLUDED.work_id, attempt = EXCLUDED.attempt
                 WHERE (p.work_id = EXCLUDED.work_id AND p.attempt = EXCLUDED.attempt)
                    OR NOT EXISTS (SELECT 1 FROM linkledger.work w
                                   WHERE w.id = p.work_id AND w.attempt = p.attempt
                                     AND w.state = 'running' AND w.lease_expires_at > now())
                 RETURNING p.work_id)
             SELECT b.call_id, b.sandbox, b.raw_id, b.received_at, b.body,
                    (SELECT work_id FROM buyer) AS buyer
             FROM (SELECT 1) AS one LEFT JOIN bought b ON true",
        )
        .bind(endpoint)
        .bind(task)
        .bind(api_host)
        .bind(fence.work_id)
        .bind(fence.attempt)
        .bind(sandbox)
        .fetch_one(self.pool())
        .await?;
        Ok(match row {
            PurchaseRow {
                call_id: Some(call_id),
                sandbox: Some(sandbox),
                raw_id: Some(raw_id),
                received_at: Some(received_at),
                body: Some(body),
                ..
            } => Purchase::Reuse(BoughtAnswer {
                call_id,
                sandbox,
                raw_id,
                received_at,
                body,
            }),
            PurchaseRow { buyer: Some(b), .. } if b == fence.work_id => Purchase::Buy,
            _ => Purchase::Wait,
        })
    }

    /// Forgets the buyers of past days.
    pub async fn prune_purchases(&self) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM linkledger.purchases WHERE day < (now() AT TIME ZONE 'UTC')::date - 1",
        )
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// Writes the ledger row of a call answered from `reused` instead of being bought
    /// (nothing sent, nothing booked), only while the claim `fence` holds. `None` when
    /// the claim was lost.
    pub async fn record_reused(
        &self,
        call: &CallRecord<'_>,
        fence: Fence,
        reused: &BoughtAnswer,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO linkledger.api_calls
                (run_id, job, collection, endpoint, targets, request, attempt, started_at,
                 outcome, work_id, cost_usd, api_host, sandbox, reused_call_id, duration_ms)
             SELECT $1, $2, $3, $4, $5, $6, $7, now(), 'reused', $8, 0, $9, $10, $11, 0
             WHERE EXISTS (SELECT 1 FROM linkledger.work
                           WHERE id = $8 AND attempt = $7 AND state = 'running')
             RETURNING id",
        )
        .bind(call.run_id)
        .bind(call.job)
        .bind(call.collection)
        .bind(call.endpoint)
        .bind(call.targets)
        .bind(call.request)
        .bind(call.attempt)
        .bind(fence.work_id)
        .bind(call.api_host)
        .bind(reused.sandbox)
        .bind(reused.call_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Makes sure every budget a call of `job` counts against has its row for the
    /// current period, starting from what the ledger already booked in it (what an
    /// earlier version spent, after an upgrade). A booking needs all of them, so the
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

    /// Completes a ledger row with its answer. With `keep_raw`, the body is stored in
    /// `raw_responses` in the same transaction (the executor keeps every JSON body of
    /// an HTTP 2xx answer to a paid call, whatever its shape); returns its id.
    #[instrument(skip_all, fields(call_id, outcome = attempt.outcome.label()))]
    pub async fn record_answer(
        &self,
        call_id: i64,
        endpoint: &str,
        attempt: &Attempt,
        keep_raw: bool,
        settlement: &Settlement,
    ) -> Result<Option<i64>, StoreError> {
        // The reservation becomes what the call counts against the budgets; only while
        // the row still waits for its answer, so a retry after a lost commit
        // acknowledgement does not settle twice.
        // A sandbox answer counts nothing, whatever was reserved before it said so.
        let budget = if settlement.sandbox {
            Some(Usd::ZERO)
        } else {
            settlement.budget
        };
        // The answer, its settlement against the budgets, the raw body and the item's
        // failures: one statement, one commit.
        let body = if keep_raw {
            attempt.body.as_ref()
        } else {
            None
        };
        // A job's scope is its key's prefix followed by the job's name.
        let account = ScopeBinds::of_call(None);
        let job_scope = Scope::Job(String::new());
        let raw_id = sqlx::query_scalar(
            "WITH old AS (
                 SELECT id, job, booked_on, budget_usd,
                        $17 AND booked_on IS NOT NULL AND budget_usd IS NOT NULL
                            AND outcome IN ('sent', 'abandoned') AS settles
                 FROM linkledger.api_calls WHERE id = $1 FOR UPDATE),
             c AS (
                 UPDATE linkledger.api_calls a SET
                    started_at = $2, duration_ms = $3, http_status = $4, status_code = $5,
                    status_message = $6, task_status_code = $7, task_status_message = $8,
                    outcome = $9, cost_usd = $10, error = $11, reported_cost_usd = $12,
                    sandbox = a.sandbox OR $13,
                    booked_on = CASE WHEN $13 THEN NULL ELSE a.booked_on END,
                    budget_usd = CASE WHEN old.settles THEN $18 ELSE a.budget_usd END
                 FROM old
                 WHERE a.id = old.id
                 RETURNING a.id, a.work_id, a.attempt),
             -- The reservation's change, against the period it was booked in (read
             -- before this statement's update).
             -- The scopes of the row's own job: the account's ($19, $20) and the job's
             -- ($21 || job, $22), none for a call of no job.
             keyed AS (
                 SELECT s.scope,
                        CASE WHEN s.per = 'day' THEN old.booked_on
                             ELSE date_trunc('month', old.booked_on)::date END AS period,
                        $18 - old.budget_usd AS delta
                 FROM old,
                      UNNEST($19::text[] || ($21::text || old.job), $20::text[] || $22::text)
                          AS s(scope, per)
                 WHERE old.settles AND s.scope IS NOT NULL),
             -- Locked in the order bookings lock them in: no deadlock.
             locked AS (
                 SELECT st.scope FROM linkledger.spend_totals st
                 JOIN keyed k ON st.scope = k.scope AND st.period = k.period
                 ORDER BY st.scope FOR UPDATE OF st),
             -- `locked` is read (an init plan) before the first row is updated.
             settled AS (
                 UPDATE linkledger.spend_totals st SET booked_usd = st.booked_usd + k.delta
                 FROM keyed k
                 WHERE st.scope = k.scope AND st.period = k.period
                   AND (SELECT count(*) FROM locked) >= 0),
             -- The answer is bought: the failures that count from now on are failures
             -- to load it, so a crash while loading cannot exhaust an item whose
             -- earlier attempts to buy it failed.
             bought AS (
                 UPDATE linkledger.work w SET failures = 0
                 FROM c
                 WHERE $9 = 'ok' AND w.id = c.work_id AND w.attempt = c.attempt
                   AND w.state = 'running'),
             -- A retry after a commit whose acknowledgement was lost finds the row.
             raw AS (
                 INSERT INTO linkledger.raw_responses (api_call_id, endpoint, received_at, body)
                 SELECT c.id, $14, $15, $16 FROM c WHERE $16::jsonb IS NOT NULL
                 ON CONFLICT (api_call_id, received_at) DO UPDATE SET body = EXCLUDED.body
                 RETURNING id)
             SELECT (SELECT id FROM raw)",
        )
        .bind(call_id)
        .bind(attempt.started_at)
        .bind(attempt.duration.as_millis() as i64)
        .bind(attempt.http_status.map(i32::from))
        .bind(attempt.status_code().and_then(|c| i32::try_from(c).ok()))
        .bind(attempt.status_message())
        .bind(
            attempt
                .task_status_code()
                .and_then(|c| i32::try_from(c).ok()),
        )
        .bind(attempt.task_status_message())
        .bind(attempt.outcome.label())
        .bind(settlement.cost.map(Usd::decimal))
        .bind(attempt.outcome.message())
        .bind(attempt.cost.map(Usd::decimal))
        .bind(settlement.sandbox)
        .bind(endpoint)
        .bind(received_at(attempt))
        .bind(body)
        .bind(budget.is_some())
        .bind(budget.map(Usd::decimal))
        .bind(&account.keys)
        .bind(&account.periods)
        .bind(job_scope.key())
        .bind(job_scope.period().sql())
        .fetch_one(self.pool())
        .await?;
        Ok(raw_id)
    }

    /// Writes one response's normalized rows in one transaction, outside the queue
    /// (`replay`).
    #[instrument(skip_all, fields(rows = batch.row_count()))]
    pub async fn store_normalized(&self, batch: &Batch) -> Result<u64, StoreError> {
        self.partitions_for(batch).await?;
        let mut tx = self.pool().begin().await?;
        let rows = warehouse::write_batch(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Marks a call whose answer could not be normalized; the raw body stays stored.
    pub async fn record_normalize_failure(
        &self,
        call_id: i64,
        why: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE linkledger.api_calls SET outcome = 'invalid_response', error = $2 WHERE id = $1",
        )
        .bind(call_id)
        .bind(why)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Raw responses with id greater than `after`, oldest first, for replay: the
    /// answers that carried data (`ok`) and those that could not be read when they
    /// arrived (`invalid_response`), which replay loads once the code can.
    pub async fn raw_responses_after(
        &self,
        after: i64,
        endpoints: &[Endpoint],
        since: Option<NaiveDate>,
        limit: i64,
    ) -> Result<Vec<RawResponse>, StoreError> {
        let names: Vec<&str> = endpoints.iter().map(|e| e.name()).collect();
        Ok(sqlx::query_as(
            "SELECT r.id, r.endpoint, r.received_at, c.request, r.body
             FROM linkledger.raw_responses r
             JOIN linkledger.api_calls c ON c.id = r.api_call_id
             WHERE r.id > $1 AND r.endpoint = ANY($2)
               AND c.outcome IN ('ok', 'invalid_response')
               AND ($3::date IS NULL OR r.received_at >= $3::date::timestamp AT TIME ZONE 'UTC')
             ORDER BY r.id LIMIT $4",
        )
        .bind(after)
        .bind(&names)
        .bind(since)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
