//! The run log and the spend ledger. A request is recorded *before* it is sent
//! (outcome `sent`), so a crash while waiting still leaves a trace of a possibly paid
//! call; its answer completes the row, and a successful body is committed to
//! `raw_responses` in the same transaction, before anything is normalized.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::Row;
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
    Succeeded,
    Failed,
    Halted,
}

impl RunStatus {
    pub fn parse(s: &str) -> Option<RunStatus> {
        [RunStatus::Succeeded, RunStatus::Failed, RunStatus::Halted]
            .into_iter()
            .find(|st| st.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Halted => "halted",
        }
    }
}

/// A run as the `runs` table has it.
#[derive(Clone, Debug)]
pub struct RunRow {
    pub job: String,
    pub status: String,
    pub calls: i64,
    pub failed_calls: i64,
    pub rows_written: i64,
    pub cost: Usd,
    pub message: Option<String>,
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
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub id: i64,
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
        let r = sqlx::query(
            "SELECT job, status, calls, failed_calls, rows_written, cost_usd, message
             FROM linkledger.runs WHERE id = $1",
        )
        .bind(run_id)
        .fetch_one(self.pool())
        .await?;
        Ok(RunRow {
            job: r.get(0),
            status: r.get(1),
            calls: r.get(2),
            failed_calls: r.get(3),
            rows_written: r.get(4),
            cost: Usd(r.get::<Decimal, _>(5)),
            message: r.get(6),
        })
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

    /// Completes a ledger row with its answer. With `keep_raw`, a successful body is
    /// stored in `raw_responses` in the same transaction; returns its id.
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
        .bind(attempt.status_code().map(|c| c as i32))
        .bind(attempt.status_message())
        .bind(attempt.task_status_code().map(|c| c as i32))
        .bind(attempt.task_status_message())
        .bind(attempt.outcome.label())
        .bind(attempt.cost.map(Usd::decimal))
        .bind(attempt.outcome.message())
        .execute(&mut *tx)
        .await?;
        let mut raw_id = None;
        if keep_raw && let Some(body) = &attempt.body {
            raw_id = Some(
                sqlx::query_scalar(
                    "INSERT INTO linkledger.raw_responses (api_call_id, endpoint, received_at, body)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(call_id)
                .bind(endpoint)
                .bind(received_at(attempt))
                .bind(body)
                .fetch_one(&mut *tx)
                .await?,
            );
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

    /// Raw responses with id greater than `after`, oldest first, for replay.
    pub async fn raw_responses_after(
        &self,
        after: i64,
        endpoints: &[Endpoint],
        since: Option<NaiveDate>,
        limit: i64,
    ) -> Result<Vec<RawResponse>, StoreError> {
        let names: Vec<&str> = endpoints.iter().map(|e| e.name()).collect();
        let rows = sqlx::query(
            "SELECT r.id, r.endpoint, r.received_at, c.request, r.body
             FROM linkledger.raw_responses r
             JOIN linkledger.api_calls c ON c.id = r.api_call_id
             WHERE r.id > $1 AND r.endpoint = ANY($2)
               AND ($3::date IS NULL OR r.received_at >= $3::date)
             ORDER BY r.id LIMIT $4",
        )
        .bind(after)
        .bind(&names)
        .bind(since)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                let endpoint: String = r.get(1);
                Ok(RawResponse {
                    id: r.get(0),
                    endpoint: endpoint.parse().map_err(
                        |e: crate::api::endpoint::UnknownEndpoint| {
                            StoreError::Sql(sqlx::Error::Decode(e.to_string().into()))
                        },
                    )?,
                    received_at: r.get(2),
                    request: r.get(3),
                    body: r.get(4),
                })
            })
            .collect()
    }
}
