//! The run log and the spend ledger. A request is recorded *before* it is sent
//! (outcome `sent`), so a crash while waiting still leaves a trace of a possibly paid
//! call; its answer completes the row, and a successful body is committed to
//! `raw_responses` in the same transaction, before anything is normalized.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use tracing::instrument;

use super::{Fence, Store, StoreError, warehouse};
use crate::api::{Attempt, Endpoint};
use crate::money::Usd;
use crate::normalize::Batch;

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
}

impl RunStatus {
    const ALL: [RunStatus; 5] = [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Halted,
        RunStatus::Interrupted,
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

/// When an answer arrived, to the microsecond Postgres keeps, so rows normalized
/// live and rows rebuilt by replay carry the same `collected_at`.
pub fn received_at(attempt: &Attempt) -> DateTime<Utc> {
    use chrono::DurationRound;
    let at = attempt.started_at + chrono::Duration::from_std(attempt.duration).unwrap_or_default();
    at.duration_trunc(chrono::Duration::microseconds(1))
        .unwrap_or(at)
}

impl Store {
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

    /// Writes the ledger row of a request before it is sent.
    #[instrument(skip_all, fields(endpoint = call.endpoint, attempt = call.attempt))]
    pub async fn record_sent(&self, call: &CallRecord<'_>) -> Result<i64, StoreError> {
        Ok(self
            .record_sent_fenced(call, None)
            .await?
            .expect("an unfenced insert always inserts"))
    }

    /// Like [`Store::record_sent`] for a claimed work item: inserts only while the
    /// claim still holds, so a worker that lost its claim cannot spend. `None` when
    /// the claim was lost.
    pub async fn record_sent_fenced(
        &self,
        call: &CallRecord<'_>,
        fence: Option<Fence>,
    ) -> Result<Option<i64>, StoreError> {
        let id = sqlx::query_scalar(
            "INSERT INTO linkledger.api_calls
                (run_id, job, collection, endpoint, targets, request, attempt, started_at, outcome, work_id)
             SELECT $1, $2, $3, $4, $5, $6, $7, now(), 'sent', $8
             WHERE $8::bigint IS NULL OR EXISTS (
                 SELECT 1 FROM linkledger.work
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
        .bind(fence.map(|f| f.work_id))
        .fetch_optional(self.pool())
        .await?;
        Ok(id)
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
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE linkledger.api_calls SET
                started_at = $2, duration_ms = $3, http_status = $4, status_code = $5,
                status_message = $6, task_status_code = $7, task_status_message = $8,
                outcome = $9, cost_usd = $10, error = $11
             WHERE id = $1",
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
        .bind(attempt.cost.map(Usd::decimal))
        .bind(attempt.outcome.message())
        .execute(&mut *tx)
        .await?;
        let mut raw_id = None;
        if keep_raw && let Some(body) = &attempt.body {
            // A retry after a commit whose acknowledgement was lost finds the row.
            raw_id = Some(
                sqlx::query_scalar(
                    "INSERT INTO linkledger.raw_responses (api_call_id, endpoint, received_at, body)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (api_call_id) DO UPDATE SET body = EXCLUDED.body
                     RETURNING id",
                )
                .bind(call_id)
                .bind(endpoint)
                .bind(received_at(attempt))
                .bind(body)
                .fetch_one(&mut *tx)
                .await?,
            );
        }
        if attempt.outcome == crate::api::Outcome::Ok {
            // The answer is bought: the failures that count from now on are failures
            // to load it, so a crash while loading cannot exhaust an item whose earlier
            // attempts to buy it failed.
            sqlx::query(
                "UPDATE linkledger.work w SET failures = 0
                 FROM linkledger.api_calls c
                 WHERE c.id = $1 AND w.id = c.work_id AND w.attempt = c.attempt
                   AND w.state = 'running'",
            )
            .bind(call_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(raw_id)
    }

    /// Writes one response's normalized rows in one transaction, outside the queue
    /// (`replay`).
    #[instrument(skip_all, fields(rows = batch.row_count()))]
    pub async fn store_normalized(&self, batch: &Batch) -> Result<u64, StoreError> {
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
