//! The run log and the spend ledger. A request is recorded *before* it is sent
//! (outcome `sent`), so a crash while waiting still leaves a trace of a possibly paid
//! call; its answer completes the row, and a successful body is committed to
//! `raw_responses` in the same transaction, before anything is normalized. A large
//! answer is committed as it arrives, unread (outcome `received`, [`Store::record_receipt`]),
//! and settled once it is read back from the database
//! ([`Store::stored_answer`], [`Store::settle_received`]).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use tracing::instrument;

use super::budgets::ScopeBinds;
use super::{Store, StoreError, warehouse};
use crate::api::{Attempt, Endpoint};
use crate::money::Usd;
use crate::money::budget::Scope;
use crate::warehouse::normalize::Batch;
use crate::words::CallEnds;

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

/// How an answered request is settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// What the call cost the user (the reported cost, or a gateway's flat price).
    pub cost: Option<Usd>,
    /// `cost` is the call's estimate: the answer's own cost could not be used.
    pub cost_estimated: bool,
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
    /// When its request was sent.
    pub sent_at: DateTime<Utc>,
    /// The `settle` of the collection that asked for it, in seconds (`None`: the
    /// endpoint's default).
    pub settle_seconds: Option<i64>,
    pub request: Value,
    pub body: Value,
}

/// When an answer arrived, to the microsecond Postgres keeps, so rows normalized
/// live and rows rebuilt by replay carry the same `collected_at`.
pub fn received_at(attempt: &Attempt) -> DateTime<Utc> {
    arrived(attempt.started_at, attempt.duration)
}

/// Pieces of a body too large to hold copied at a time: 1 MiB.
const COPY_PIECE: usize = 1 << 20;

/// Copies the body in `spilled` into a new `raw_responses` row of call `call_id` as
/// its bytes (`unparsed`), a piece at a time (binary COPY: the row's length is known
/// before its bytes), so it is never held whole.
async fn copy_spilled(
    conn: &mut sqlx::PgConnection,
    call_id: i64,
    endpoint: &str,
    at: DateTime<Utc>,
    spilled: &crate::api::client::Spilled,
) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::Sql(sqlx::Error::Io(e));
    let len = i32::try_from(spilled.len).map_err(|_| {
        io(std::io::Error::other(format!(
            "{} bytes do not fit in one PostgreSQL value",
            spilled.len
        )))
    })?;
    // PostgreSQL's epoch: 2000-01-01 UTC, in microseconds.
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let mut head = Vec::with_capacity(64 + endpoint.len());
    head.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    head.extend_from_slice(&0i32.to_be_bytes()); // flags
    head.extend_from_slice(&0i32.to_be_bytes()); // header extension
    head.extend_from_slice(&4i16.to_be_bytes()); // fields of the one row
    head.extend_from_slice(&8i32.to_be_bytes());
    head.extend_from_slice(&call_id.to_be_bytes());
    head.extend_from_slice(&(endpoint.len() as i32).to_be_bytes());
    head.extend_from_slice(endpoint.as_bytes());
    head.extend_from_slice(&8i32.to_be_bytes());
    head.extend_from_slice(&(at.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes());
    head.extend_from_slice(&len.to_be_bytes());
    let mut copy = conn
        .copy_in_raw(
            "COPY linkledger.raw_responses (api_call_id, endpoint, received_at, unparsed) \
             FROM STDIN (FORMAT binary)",
        )
        .await?;
    copy.send(head).await?;
    let mut offset = 0u64;
    while offset < spilled.len {
        let file = spilled.file.clone();
        let want = COPY_PIECE.min((spilled.len - offset) as usize);
        let piece = tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0u8; want];
            file.read_exact_at(&mut buf, offset).map(|()| buf)
        })
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)?;
        offset += piece.len() as u64;
        copy.send(piece).await?;
    }
    copy.send((-1i16).to_be_bytes().to_vec()).await?;
    copy.finish().await?;
    Ok(())
}

/// The end of an exchange that started at `started_at` and took `duration`, to the
/// microsecond: when its answer arrived, and the arrival its stored body is keyed by.
pub fn arrived(started_at: DateTime<Utc>, duration: std::time::Duration) -> DateTime<Utc> {
    use chrono::DurationRound;
    let at = started_at + chrono::Duration::from_std(duration).unwrap_or_default();
    at.duration_trunc(chrono::Duration::microseconds(1))
        .unwrap_or(at)
}

/// A stored answer's body, as normalizing it needs to know it: its id in
/// `raw_responses`, when its request was sent (what a period settles against) and when
/// it arrived (its rows' `collected_at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredBody {
    pub raw_id: i64,
    pub sent_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

impl StoredBody {
    /// The body `raw_id` of `attempt`'s answer.
    pub fn of(raw_id: i64, attempt: &Attempt) -> StoredBody {
        StoredBody {
            raw_id,
            sent_at: attempt.started_at,
            received_at: received_at(attempt),
        }
    }
}

/// An answer as it arrived, before it is read: what [`Store::record_receipt`] commits.
#[derive(Clone, Copy, Debug)]
pub struct Receipt<'a> {
    pub started_at: DateTime<Utc>,
    pub duration: std::time::Duration,
    pub http_status: u16,
    /// The answer said it came from a sandbox.
    pub sandbox: bool,
    /// The body as received (JSON text).
    pub body: &'a str,
}

/// An answer stored before it was read, with what the ledger holds of its exchange,
/// to be read again ([`Store::stored_answer`]).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredAnswer {
    pub raw_id: i64,
    pub received_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: Option<i64>,
    pub http_status: Option<i32>,
    pub sandbox: bool,
    /// The body as JSON text.
    pub body: String,
}

/// How far the work of some runs has come.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunProgress {
    /// Its planned calls by their end.
    pub ends: CallEnds,
    pub rows: i64,
    pub cost: Usd,
}

impl StoreError {
    /// Postgres refused a value for its type (SQLSTATE class 22): a body that is not
    /// JSON as Postgres reads it, for [`Store::record_receipt`].
    pub fn is_data_exception(&self) -> bool {
        matches!(self, StoreError::Sql(sqlx::Error::Database(e))
            if e.code().is_some_and(|c| c.starts_with("22")))
    }
}

impl Store {
    /// How far the work of `runs` has come: its calls by their end, rows written, what
    /// the requests cost so far.
    pub async fn run_progress(&self, runs: &[i64]) -> Result<RunProgress, StoreError> {
        let (rows, cost): (i64, Decimal) = sqlx::query_as(
            "SELECT (SELECT coalesce(sum(rows_written), 0)::bigint FROM linkledger.work
                     WHERE run_id = ANY($1)),
                    (SELECT coalesce(sum(cost_usd), 0) FROM linkledger.api_calls
                     WHERE run_id = ANY($1))",
        )
        .bind(runs)
        .fetch_one(self.pool())
        .await?;
        Ok(RunProgress {
            ends: self.call_ends(runs).await?,
            rows,
            cost: Usd(cost),
        })
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
        let (raw_id, _) = self
            .answer(call_id, endpoint, attempt, keep_raw, settlement, false)
            .await?;
        Ok(raw_id)
    }

    /// Completes the ledger row of an answer committed unread ([`Store::record_receipt`])
    /// with what reading it back found: its status codes, outcome and cost, the
    /// reservation settled to the cost. Only while the row is still `received`: an
    /// answer read twice (by its own attempt and by a reuse or a re-claim) is settled
    /// once, and a row already settled keeps what it says. `true` when this settled
    /// it.
    pub async fn settle_received(
        &self,
        call_id: i64,
        endpoint: &str,
        attempt: &Attempt,
        settlement: &Settlement,
    ) -> Result<bool, StoreError> {
        let (_, settled) = self
            .answer(call_id, endpoint, attempt, false, settlement, true)
            .await?;
        Ok(settled)
    }

    /// [`Store::record_answer`]; with `received_only`, only a row still `received`.
    /// The raw body's id, and whether the row was completed.
    async fn answer(
        &self,
        call_id: i64,
        endpoint: &str,
        attempt: &Attempt,
        keep_raw: bool,
        settlement: &Settlement,
        received_only: bool,
    ) -> Result<(Option<i64>, bool), StoreError> {
        // A body too large to hold is copied from its file into the raw row a piece at
        // a time, in the answer's transaction.
        let Some(spilled) = attempt.spilled.as_ref().filter(|_| keep_raw) else {
            return answer_on(
                self.pool(),
                call_id,
                endpoint,
                attempt,
                keep_raw,
                settlement,
                received_only,
            )
            .await;
        };
        let at = received_at(attempt);
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "DELETE FROM linkledger.raw_responses WHERE api_call_id = $1 AND received_at = $2",
        )
        .bind(call_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        copy_spilled(&mut tx, call_id, endpoint, at, spilled).await?;
        let (_, done) = answer_on(
            &mut *tx,
            call_id,
            endpoint,
            attempt,
            keep_raw,
            settlement,
            received_only,
        )
        .await?;
        let raw_id = sqlx::query_scalar(
            "SELECT id FROM linkledger.raw_responses WHERE api_call_id = $1 AND received_at = $2",
        )
        .bind(call_id)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((raw_id, done))
    }

    /// Commits an answer as it arrives, before it is read or waits for anything: the
    /// body in `raw_responses` as received, and the ledger row `received` (answered,
    /// not yet read) with its HTTP status and timing, its cost the estimate until the
    /// answer is read; the reservation stays until then ([`Store::settle_received`]).
    /// The answer is bought: the item's failures count failures to load it from now
    /// on. Returns the body's id (`None` when the row already holds a read answer).
    /// A body the database does not take as JSON fails with a data exception
    /// ([`StoreError::is_data_exception`]) and nothing is written.
    #[instrument(skip_all, fields(call_id, bytes = receipt.body.len()))]
    pub async fn record_receipt(
        &self,
        call_id: i64,
        endpoint: &str,
        receipt: &Receipt<'_>,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "WITH c AS (
                 UPDATE linkledger.api_calls a SET
                    started_at = $2, duration_ms = $3, http_status = $4, outcome = 'received',
                    cost_usd = a.estimated_usd, error = NULL, sandbox = a.sandbox OR $5
                 WHERE a.id = $1 AND a.outcome IN ('sent', 'abandoned', 'received')
                 RETURNING a.id, a.work_id, a.attempt),
             bought AS (
                 UPDATE linkledger.work w SET failures = 0
                 FROM c
                 WHERE w.id = c.work_id AND w.attempt = c.attempt AND w.state = 'running'),
             -- A retry after a commit whose acknowledgement was lost finds the row.
             raw AS (
                 INSERT INTO linkledger.raw_responses (api_call_id, endpoint, received_at, body)
                 SELECT c.id, $6, $7, $8::text::jsonb FROM c
                 ON CONFLICT (api_call_id, received_at) DO UPDATE SET body = EXCLUDED.body
                 RETURNING id)
             SELECT (SELECT id FROM raw)",
        )
        .bind(call_id)
        .bind(receipt.started_at)
        .bind(receipt.duration.as_millis() as i64)
        .bind(i32::from(receipt.http_status))
        .bind(receipt.sandbox)
        .bind(endpoint)
        .bind(arrived(receipt.started_at, receipt.duration))
        .bind(receipt.body)
        .fetch_one(self.pool())
        .await?)
    }

    /// The answer of ledger row `call_id` as it was stored, with what the row says of
    /// its exchange, to be read again; `None` when no body of it is stored.
    pub async fn stored_answer(&self, call_id: i64) -> Result<Option<StoredAnswer>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT r.id AS raw_id, r.received_at, c.started_at, c.duration_ms::bigint AS duration_ms,
                    c.http_status, c.sandbox, r.body::text AS body
             FROM linkledger.api_calls c
             JOIN linkledger.raw_responses r ON r.api_call_id = c.id
             WHERE c.id = $1
             ORDER BY r.received_at DESC LIMIT 1",
        )
        .bind(call_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// A stored body, by its id and arrival (its partition).
    pub async fn raw_body(
        &self,
        raw_id: i64,
        received_at: DateTime<Utc>,
    ) -> Result<Option<Value>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT body FROM linkledger.raw_responses WHERE id = $1 AND received_at = $2",
        )
        .bind(raw_id)
        .bind(received_at)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Writes one response's normalized rows in one transaction, outside the queue
    /// (`replay`): the items it set aside before and reads now leave `rejected_items`.
    #[instrument(skip_all, fields(rows = batch.row_count()))]
    pub async fn store_normalized(&self, batch: &Batch) -> Result<u64, StoreError> {
        self.partitions_for(batch).await?;
        let mut tx = self.pool().begin().await?;
        super::rejected::forget_read(&mut tx, batch).await?;
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
            "SELECT r.id, r.endpoint, r.received_at, c.started_at AS sent_at, w.settle_seconds,
                    c.request, r.body
             FROM linkledger.raw_responses r
             JOIN linkledger.api_calls c ON c.id = r.api_call_id
             LEFT JOIN linkledger.work w ON w.id = c.work_id
             WHERE r.id > $1 AND r.endpoint = ANY($2) AND r.body IS NOT NULL
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

/// [`Store::record_answer`]'s statement on `conn` (a pool, or a transaction: the
/// answer's own with a spilled body, or a group's).
pub(super) async fn answer_on<'e>(
    conn: impl sqlx::PgExecutor<'e>,
    call_id: i64,
    endpoint: &str,
    attempt: &Attempt,
    keep_raw: bool,
    settlement: &Settlement,
    received_only: bool,
) -> Result<(Option<i64>, bool), StoreError> {
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
    let (body, unparsed) = if keep_raw {
        (attempt.body.as_ref(), attempt.unparsed.as_deref())
    } else {
        (None, None)
    };
    // A job's scope is its key's prefix followed by the job's name.
    let account = ScopeBinds::of_call(None);
    let job_scope = Scope::Job(String::new());
    let query = sqlx::query_as(
        "WITH old AS (
             SELECT id, job, booked_on, budget_usd, outcome,
                    $17 AND booked_on IS NOT NULL AND budget_usd IS NOT NULL
                        AND outcome IN ('sent', 'abandoned', 'received') AS settles
             FROM linkledger.api_calls WHERE id = $1 FOR UPDATE),
         c AS (
             UPDATE linkledger.api_calls a SET
                started_at = $2, duration_ms = $3, http_status = $4, status_code = $5,
                status_message = $6, task_status_code = $7, task_status_message = $8,
                outcome = $9, cost_usd = $10, error = $11, reported_cost_usd = $12,
                cost_estimated = $24,
                sandbox = a.sandbox OR $13,
                booked_on = CASE WHEN $13 THEN NULL ELSE a.booked_on END,
                budget_usd = CASE WHEN old.settles THEN $18 ELSE a.budget_usd END
             FROM old
             WHERE a.id = old.id AND (NOT $23 OR old.outcome = 'received')
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
             FROM old JOIN c ON c.id = old.id,
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
             INSERT INTO linkledger.raw_responses
                 (api_call_id, endpoint, received_at, body, unparsed)
             SELECT c.id, $14, $15, $16, $25 FROM c
             WHERE $16::jsonb IS NOT NULL OR $25::bytea IS NOT NULL
             ON CONFLICT (api_call_id, received_at)
                 DO UPDATE SET body = EXCLUDED.body, unparsed = EXCLUDED.unparsed
             RETURNING id)
         SELECT (SELECT id FROM raw), EXISTS (SELECT 1 FROM c)",
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
    .bind(received_only)
    .bind(settlement.cost_estimated)
    .bind(unparsed);
    Ok(query.fetch_one(conn).await?)
}
