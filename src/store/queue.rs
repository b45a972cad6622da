//! The work queue and schedule fires, in SQL.
//!
//! Claiming is one statement: an `UPDATE ... RETURNING` over rows picked with
//! `FOR UPDATE SKIP LOCKED`, accepting queued rows that are due and running rows whose
//! lease expired (crash recovery is nothing more). Who may claim what is data: a daemon
//! claims work of scheduled runs only, a once-run the work of its own runs. Each claim
//! increments `attempt`, and every later write of that claim says
//! `WHERE attempt = $claimed`: a worker that lost its lease can never complete or
//! overwrite the work (fencing). A claim whose lease lapsed without an outcome counts as
//! a failed attempt, so work that kills its process every time ends `exhausted`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::instrument;

use super::{RunStatus, Store, StoreError, warehouse};
use crate::money::Usd;
use crate::warehouse::normalize::Batch;

/// A claimed work item: one planned API call, with the claim's fencing token.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WorkItem {
    pub id: i64,
    pub run_id: i64,
    pub job: String,
    pub collection: String,
    pub endpoint: String,
    pub targets: Vec<String>,
    pub task: Value,
    pub estimated_rows: i64,
    /// The collection's `settle` for history and timeseries calls, in seconds (`None`:
    /// the endpoint's default).
    pub settle_seconds: Option<i64>,
    /// The fencing token of this claim.
    pub attempt: i32,
    pub failures: i32,
    pub max_attempts: i32,
}

impl WorkItem {
    /// The claim this item was taken with: what its writes must still hold.
    pub fn fence(&self) -> Fence {
        Fence {
            work_id: self.id,
            attempt: self.attempt,
        }
    }
}

/// A collection's `settle` as `work.settle_seconds` keeps it (`None`: the endpoint's
/// default).
pub fn settle_from_seconds(seconds: Option<i64>) -> Option<Duration> {
    seconds
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs)
}

/// A call to enqueue.
#[derive(Clone, Debug)]
pub struct NewWork {
    pub job: String,
    pub collection: String,
    pub endpoint: String,
    pub targets: Vec<String>,
    pub task: Value,
    pub estimated_rows: i64,
    /// The collection's `settle` for history and timeseries calls.
    pub settle: Option<std::time::Duration>,
    /// A listing's first page: its state (`work.paging`, `plan::paging::Page`).
    pub paging: Option<Value>,
}

/// Terminal states a claim can end in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminal {
    Failed,
    Cancelled,
}

impl Terminal {
    fn as_str(self) -> &'static str {
        match self {
            Terminal::Failed => "failed",
            Terminal::Cancelled => "cancelled",
        }
    }
}

/// The claim a write must still hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence {
    pub work_id: i64,
    pub attempt: i32,
}

/// Which work a claim may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimScope<'a> {
    /// Work of scheduled runs (the daemon).
    Scheduled,
    /// Work of these runs only (a once-run, demo, backfill).
    Runs(&'a [i64]),
}

/// What one claim statement took.
#[derive(Clone, Debug, Default)]
pub struct Claimed {
    /// Items now claimed by the caller.
    pub items: Vec<WorkItem>,
    /// Items whose previous claims ended without an outcome `max_attempts` times: now
    /// `exhausted`, not claimed (the runs they belong to).
    pub exhausted_runs: Vec<i64>,
}

/// The last answer an earlier claim of a work item got that settles it: data (`ok`,
/// stored raw), an answer stored as it arrived and never read (`received`), or an
/// answer that will not change by asking again (`rejected`, `invalid_response`). Its
/// body is read separately ([`Store::raw_body`], [`Store::stored_answer`]), under a
/// load permit.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PaidAnswer {
    pub call_id: i64,
    /// `ok`, `received`, `rejected` or `invalid_response`.
    pub outcome: String,
    /// Why it failed, for `rejected` and `invalid_response`.
    pub error: Option<String>,
    pub raw_id: Option<i64>,
    /// When its request was sent.
    pub sent_at: DateTime<Utc>,
    pub received_at: Option<DateTime<Utc>>,
}

/// Work items per state, for metrics.
#[derive(Clone, Debug, Default)]
pub struct QueueDepth {
    pub by_state: Vec<(String, i64)>,
    pub oldest_queued: Option<Duration>,
}

#[derive(sqlx::FromRow)]
struct DepthRow {
    state: String,
    items: i64,
    oldest_queued_secs: Option<f64>,
}

/// Claimed or exhausted, as the claim statement returns it.
#[derive(sqlx::FromRow)]
struct ClaimRow {
    state: String,
    #[sqlx(flatten)]
    item: WorkItem,
}

impl Store {
    /// Claims up to `limit` due items of `scope` for `worker`. An item whose lease
    /// lapsed (its claim ended without an outcome: the process died, or its attempt
    /// never finished) counts that claim as a failed attempt; one that has used up
    /// `max_attempts` that way is marked `exhausted` instead of being claimed again.
    pub async fn claim(
        &self,
        worker: &str,
        lease: Duration,
        limit: i64,
        scope: ClaimScope<'_>,
    ) -> Result<Claimed, StoreError> {
        self.claim_except(worker, lease, limit, scope, &[]).await
    }

    /// [`Store::claim`], leaving out the items `held` (by work id): those whose
    /// attempts this process still runs. An attempt holding a paid answer while the
    /// database was away may find its lease lapsed; its own process must not claim it
    /// again and buy the answer twice, and its heartbeat renews the lease.
    #[instrument(skip_all, fields(worker, limit, held = held.len()))]
    pub async fn claim_except(
        &self,
        worker: &str,
        lease: Duration,
        limit: i64,
        scope: ClaimScope<'_>,
        held: &[i64],
    ) -> Result<Claimed, StoreError> {
        let runs = match scope {
            ClaimScope::Scheduled => None,
            ClaimScope::Runs(runs) => Some(runs),
        };
        let rows: Vec<ClaimRow> = sqlx::query_as(
            "WITH picked AS MATERIALIZED (
                 SELECT id FROM linkledger.work
                 WHERE ((state = 'queued' AND run_after <= now())
                        OR (state = 'running' AND lease_expires_at < now()))
                   AND (($4::bigint[] IS NULL AND run_kind = 'scheduled') OR run_id = ANY($4))
                   AND NOT (id = ANY($7))
                 ORDER BY run_after, id
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED),
             -- SET reads the row as locked (a concurrent release is seen), not as the
             -- statement's snapshot had it.
             claimed AS (UPDATE linkledger.work w
             SET attempt = w.attempt + 1, held_by = NULL,
                 failures = w.failures + (w.state = 'running')::int,
                 state = CASE WHEN w.state = 'running' AND w.failures + 1 >= w.max_attempts
                              THEN 'exhausted' ELSE 'running' END,
                 leased_by = CASE WHEN w.state = 'running' AND w.failures + 1 >= w.max_attempts
                                  THEN NULL ELSE $1 END,
                 lease_expires_at = CASE WHEN w.state = 'running' AND w.failures + 1 >= w.max_attempts
                                         THEN NULL ELSE now() + $2 * interval '1 millisecond' END,
                 finished_at = CASE WHEN w.state = 'running' AND w.failures + 1 >= w.max_attempts
                                    THEN now() END,
                 last_error = CASE WHEN w.state = 'running'
                     THEN 'a claim ended without an outcome (its process died or the attempt never finished); '
                          || (w.failures + 1) || ' of ' || w.max_attempts || ' attempts failed'
                     ELSE w.last_error END
             FROM picked WHERE w.id = picked.id
             RETURNING w.state, w.id, w.run_id, w.job, w.collection, w.endpoint, w.targets, w.task,
                       w.estimated_rows, w.settle_seconds, w.attempt, w.failures,
                       w.max_attempts),
             -- An exhausted item is never claimed again: its requests left unanswered
             -- are booked now, at their list price.
             abandoned AS (UPDATE linkledger.api_calls c SET outcome = 'abandoned',
                    cost_usd = coalesce(c.estimated_usd, $5 + $6 * claimed.estimated_rows),
                    error = 'no answer: the process died with the request in flight; cost is the list-price estimate'
                 FROM claimed
                 WHERE claimed.state = 'exhausted' AND c.work_id = claimed.id AND c.outcome = 'sent')
             SELECT * FROM claimed",
        )
        .bind(worker)
        .bind(lease.as_millis() as i64)
        .bind(limit)
        .bind(runs)
        .bind(crate::api::prices::PRICE_PER_REQUEST.decimal())
        .bind(crate::api::prices::PRICE_PER_ROW.decimal())
        .bind(held)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Claimed::default();
        for row in rows {
            if row.state == "running" {
                claimed.items.push(row.item);
            } else {
                claimed.exhausted_runs.push(row.item.run_id);
            }
        }
        Ok(claimed)
    }

    /// The answer an earlier claim of this work item already paid for, if the item
    /// never reached its next state after it (its worker died, or lost its claim, or
    /// the database was away), even one stored as it arrived and never read.
    /// Re-claiming work settles the item from it instead of buying the answer again.
    pub async fn paid_answer(&self, work_id: i64) -> Result<Option<PaidAnswer>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.id AS call_id, c.outcome, c.error, r.id AS raw_id, c.started_at AS sent_at,
                    r.received_at
             FROM linkledger.api_calls c
             LEFT JOIN linkledger.raw_responses r ON r.api_call_id = c.id
             WHERE c.work_id = $1
               AND c.outcome IN ('ok', 'received', 'rejected', 'invalid_response')
             ORDER BY c.id DESC LIMIT 1",
        )
        .bind(work_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Marks the unanswered requests of earlier claims of a work item `abandoned`,
    /// with the list-price `estimate` as their cost: their process died with the
    /// request in flight, and the API charges what it processed. An answer that
    /// still arrives overwrites this.
    pub async fn abandon_unanswered(&self, fence: Fence, estimate: Usd) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE linkledger.api_calls SET outcome = 'abandoned',
                    cost_usd = coalesce(estimated_usd, $3),
                    error = 'no answer: the process died with the request in flight; cost is the list-price estimate'
             WHERE work_id = $1 AND attempt < $2 AND outcome = 'sent'",
        )
        .bind(fence.work_id)
        .bind(fence.attempt)
        .bind(estimate.decimal())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Renews a claim's lease; `false` when the claim was lost.
    pub async fn heartbeat(&self, fence: Fence, lease: Duration) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE linkledger.work SET lease_expires_at = now() + $3 * interval '1 millisecond'
             WHERE id = $1 AND attempt = $2 AND state = 'running'",
        )
        .bind(fence.work_id)
        .bind(fence.attempt)
        .bind(lease.as_millis() as i64)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Writes a response's normalized rows and completes the claim in one
    /// transaction. `None` (and nothing written) when the claim was lost.
    #[instrument(skip_all, fields(work_id = fence.work_id, rows = batch.row_count()))]
    pub async fn complete_with_rows(
        &self,
        fence: Fence,
        call_id: i64,
        batch: &Batch,
    ) -> Result<Option<u64>, StoreError> {
        self.partitions_for(batch).await?;
        let mut tx = self.pool().begin().await?;
        let Some(rows) = complete_in(&mut tx, fence, call_id, batch).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        tx.commit().await?;
        Ok(Some(rows))
    }

    /// Ends a claim in a terminal state with its error; `false` if the claim was lost.
    pub async fn finish_work(
        &self,
        fence: Fence,
        state: Terminal,
        error: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE linkledger.work SET state = $3, last_error = $4, finished_at = now(),
                    lease_expires_at = NULL
             WHERE id = $1 AND attempt = $2 AND state = 'running'",
        )
        .bind(fence.work_id)
        .bind(fence.attempt)
        .bind(state.as_str())
        .bind(error)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts a claim back in the queue to retry after `delay`. A failure (not a
    /// throttle) counts toward `max_attempts`; when they are used up the item is
    /// `exhausted`, its last error kept. `false` if the claim was lost.
    pub async fn retry_work(
        &self,
        fence: Fence,
        delay: Duration,
        counts_as_failure: bool,
        error: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE linkledger.work SET
                failures = failures + $3::int,
                state = CASE WHEN failures + $3::int >= max_attempts THEN 'exhausted' ELSE 'queued' END,
                finished_at = CASE WHEN failures + $3::int >= max_attempts THEN now() END,
                run_after = now() + $4 * interval '1 millisecond',
                last_error = $5, lease_expires_at = NULL
             WHERE id = $1 AND attempt = $2 AND state = 'running'",
        )
        .bind(fence.work_id)
        .bind(fence.attempt)
        .bind(i32::from(counts_as_failure))
        .bind(delay.as_millis() as i64)
        .bind(error)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts a claim back in the queue, held by the budget `held_by` until `until` (its
    /// next period, by the database's clock): not a failure. `false` if the claim was
    /// lost.
    pub async fn hold_work(
        &self,
        fence: Fence,
        until: DateTime<Utc>,
        held_by: &str,
        why: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE linkledger.work SET state = 'queued', held_by = $3, last_error = $4,
                    run_after = $5, lease_expires_at = NULL
             WHERE id = $1 AND attempt = $2 AND state = 'running'",
        )
        .bind(fence.work_id)
        .bind(fence.attempt)
        .bind(held_by)
        .bind(why)
        .bind(until)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a claim `cancelled` because the budget `held_by` would not take it (a
    /// once-run does not wait for the next period). `false` if the claim was lost.
    pub async fn finish_held(
        &self,
        fence: Fence,
        held_by: &str,
        why: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE linkledger.work SET state = 'cancelled', held_by = $3, last_error = $4,
                    finished_at = now(), lease_expires_at = NULL
             WHERE id = $1 AND attempt = $2 AND state = 'running'",
        )
        .bind(fence.work_id)
        .bind(fence.attempt)
        .bind(held_by)
        .bind(why)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Calls of `runs` a budget kept from being made, per budget.
    pub async fn held_back(&self, runs: &[i64]) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT held_by, count(*)::bigint FROM linkledger.work
             WHERE run_id = ANY($1) AND state = 'cancelled' AND held_by IS NOT NULL
             GROUP BY held_by ORDER BY held_by",
        )
        .bind(runs)
        .fetch_all(self.pool())
        .await?)
    }

    /// Makes every call a budget holds due at once (the caps changed): each tries its
    /// reservation again. Returns how many.
    pub async fn release_held(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE linkledger.work SET run_after = now()
             WHERE state = 'queued' AND held_by IS NOT NULL",
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Scheduled calls held back, per budget; and what is left of each capped budget
    /// in its current period.
    pub async fn budget_gauges(
        &self,
    ) -> Result<(Vec<(String, Usd)>, Vec<(String, i64)>), StoreError> {
        let left: Vec<(String, rust_decimal::Decimal)> =
            sqlx::query_as("SELECT budget, left_usd FROM linkledger.budget_status ORDER BY budget")
                .fetch_all(self.pool())
                .await?;
        let held: Vec<(String, i64)> = sqlx::query_as(
            "SELECT held_by, count(*)::bigint FROM linkledger.work
             WHERE state = 'queued' AND held_by IS NOT NULL GROUP BY held_by ORDER BY held_by",
        )
        .fetch_all(self.pool())
        .await?;
        Ok((left.into_iter().map(|(b, d)| (b, Usd(d))).collect(), held))
    }

    /// Gives a claim back untouched (shutdown): due at once for the next worker.
    pub async fn release_work(&self, fence: Fence) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE linkledger.work SET state = 'queued', run_after = now(), lease_expires_at = NULL,
                    leased_by = NULL
             WHERE id = $1 AND attempt = $2 AND state = 'running'",
        )
        .bind(fence.work_id)
        .bind(fence.attempt)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Cancels the queued work of a run (a once-run the account refused).
    pub async fn cancel_queued(&self, run_id: i64, why: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE linkledger.work SET state = 'cancelled', last_error = $2, finished_at = now()
             WHERE state = 'queued' AND run_id = $1",
        )
        .bind(run_id)
        .bind(why)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Work of `runs` not yet in a terminal state.
    pub async fn pending_work(&self, runs: &[i64]) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM linkledger.work
             WHERE run_id = ANY($1) AND state IN ('queued', 'running')",
        )
        .bind(runs)
        .fetch_one(self.pool())
        .await?)
    }

    /// Closes a run once none of its work is pending: status from its work (cancelled
    /// if `linkledger cancel` dropped its work, halted if any was cancelled otherwise,
    /// failed if any failed or was exhausted), totals from the ledger. Idempotent; `true` when this call closed it.
    pub async fn close_run_if_done(&self, run_id: i64) -> Result<bool, StoreError> {
        close_run(self.pool(), run_id, None).await
    }

    /// Stops runs a signal interrupted, once their workers have drained: requests left
    /// unanswered are booked `abandoned` at their list price, the rest of the work is
    /// `cancelled` (so no other process ever pays for it), and each run is closed
    /// `interrupted` with `why`. A call never sent says `not sent: {why}`; one whose
    /// request is booked abandoned says it was sent and not waited for, never "not
    /// sent". Returns how many calls were cancelled (abandoned ones included).
    #[instrument(skip_all, fields(runs = runs.len()))]
    pub async fn interrupt_runs(&self, runs: &[i64], why: &str) -> Result<u64, StoreError> {
        let base = why.strip_prefix("not sent: ").unwrap_or(why);
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE linkledger.api_calls c SET outcome = 'abandoned',
                    cost_usd = coalesce(c.estimated_usd, $2 + $3 * w.estimated_rows),
                    error = 'no answer: the run was interrupted with the request in flight; cost is the list-price estimate'
             FROM linkledger.work w
             WHERE c.work_id = w.id AND w.run_id = ANY($1) AND c.outcome = 'sent'",
        )
        .bind(runs)
        .bind(crate::api::prices::PRICE_PER_REQUEST.decimal())
        .bind(crate::api::prices::PRICE_PER_ROW.decimal())
        .execute(&mut *tx)
        .await?;
        let cancelled = sqlx::query(
            "UPDATE linkledger.work w SET state = 'cancelled', finished_at = now(),
                    lease_expires_at = NULL,
                    last_error = CASE WHEN EXISTS (
                                     SELECT 1 FROM linkledger.api_calls c
                                     WHERE c.work_id = w.id AND c.outcome = 'abandoned')
                                 THEN $3 ELSE $2 END
             WHERE w.run_id = ANY($1) AND w.state IN ('queued', 'running')",
        )
        .bind(runs)
        .bind(format!("not sent: {base}"))
        .bind(abandoned_because(base))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        for run in runs {
            close_run(&mut *tx, *run, Some((RunStatus::Interrupted, base))).await?;
        }
        tx.commit().await?;
        Ok(cancelled)
    }

    /// Closes every open run whose work is all done: a sweep for runs whose last item
    /// ended without closing them (its worker died, or Postgres was away). Returns the
    /// runs it closed.
    pub async fn close_finished_runs(&self) -> Result<Vec<i64>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT r.id FROM linkledger.runs r
             WHERE r.status = 'running'
               AND EXISTS (SELECT 1 FROM linkledger.work w WHERE w.run_id = r.id)
               AND NOT EXISTS (SELECT 1 FROM linkledger.work w
                               WHERE w.run_id = r.id AND w.state IN ('queued', 'running'))",
        )
        .fetch_all(self.pool())
        .await?;
        let mut closed = Vec::new();
        for id in ids {
            if self.close_run_if_done(id).await? {
                closed.push(id);
            }
        }
        Ok(closed)
    }

    /// Errors of a run's failed work, for reports: `summary [a.com]: why`, the
    /// collection named too when it is not named after its endpoint
    /// (`ranks-weekdays (bulk_ranks) [a.com and 3 more]: why`).
    pub async fn run_errors(&self, run_id: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT CASE WHEN collection = endpoint THEN endpoint
                         ELSE collection || ' (' || endpoint || ')' END || ' [' ||
                    array_to_string(targets[1:1], '') ||
                    CASE WHEN cardinality(targets) > 1 THEN ' and ' || (cardinality(targets) - 1) || ' more' ELSE '' END ||
                    ']: ' || coalesce(last_error, state)
             FROM linkledger.work WHERE run_id = $1 AND state IN ('failed', 'exhausted', 'cancelled')
             ORDER BY id",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Scheduled work items per state and the age of the oldest queued one, for the
    /// daemon's metrics (a once-run's work is its own).
    pub async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        let rows: Vec<DepthRow> = sqlx::query_as(
            "SELECT state, count(*)::bigint AS items,
                    extract(epoch FROM now() - min(created_at) FILTER (WHERE state = 'queued'))::float8
                      AS oldest_queued_secs
             FROM linkledger.work
             WHERE state IN ('queued', 'running') AND run_kind = 'scheduled'
             GROUP BY state",
        )
        .fetch_all(self.pool())
        .await?;
        let mut depth = QueueDepth {
            by_state: vec![("queued".to_string(), 0), ("running".to_string(), 0)],
            oldest_queued: None,
        };
        for r in rows {
            if let Some(d) = depth.by_state.iter_mut().find(|(s, _)| *s == r.state) {
                d.1 = r.items;
            }
            if let Some(age) = r.oldest_queued_secs {
                depth.oldest_queued = Some(Duration::from_secs_f64(age.max(0.0)));
            }
        }
        Ok(depth)
    }
}

/// Closes a run whose work is all done, with its totals; `forced` sets the status and
/// the message (an interrupted run) instead of deriving them from the work.
pub(super) async fn close_run<'e>(
    conn: impl sqlx::PgExecutor<'e>,
    run_id: i64,
    forced: Option<(RunStatus, &str)>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE linkledger.runs r SET finished_at = now(),
             status = coalesce($2, CASE WHEN r.cancelled_at IS NOT NULL THEN 'cancelled'
                                        WHEN w.cancelled > 0 OR w.halted > 0 THEN 'halted'
                                        WHEN w.failed > 0 THEN 'failed' ELSE 'succeeded' END),
             failed_calls = w.failed + w.cancelled, rows_written = w.rows,
             message = coalesce($3, w.message), calls = s.calls, cost_usd = s.cost
         FROM (SELECT count(*) FILTER (WHERE state IN ('queued', 'running')) AS pending,
                      count(*) FILTER (WHERE state IN ('failed', 'exhausted')) AS failed,
                      count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
                      -- A call the API refused (the account, a wrong path, the daily
                      -- cost limit) halts the run, even its last call with nothing
                      -- left to cancel.
                      count(*) FILTER (WHERE state = 'failed' AND (
                          SELECT c.outcome FROM linkledger.api_calls c
                          WHERE c.work_id = work.id ORDER BY c.id DESC LIMIT 1)
                          IN ('halt', 'daily_limit')) AS halted,
                      coalesce(sum(rows_written), 0)::bigint AS rows,
                      (array_agg(last_error ORDER BY state = 'cancelled' DESC, id)
                         FILTER (WHERE state IN ('failed', 'exhausted', 'cancelled')))[1] AS message
               FROM linkledger.work WHERE run_id = $1) w,
              -- The free credentials check is not one of the run's calls.
              (SELECT count(*) FILTER (WHERE endpoint <> 'appendix/user_data')::bigint AS calls,
                      coalesce(sum(cost_usd), 0) AS cost
               FROM linkledger.api_calls WHERE run_id = $1) s
         WHERE r.id = $1 AND r.status = 'running' AND w.pending = 0
           -- Checked first (a one-time filter), so the totals are only summed once.
           AND NOT EXISTS (SELECT 1 FROM linkledger.work
                           WHERE run_id = $1 AND state IN ('queued', 'running'))",
    )
    .bind(run_id)
    .bind(forced.map(|(status, _)| status.as_str()))
    .bind(forced.map(|(_, why)| why))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Why a call whose request was booked `abandoned` ended so, when its run stopped for
/// `why`: it was sent, and its answer was not waited for.
pub(super) fn abandoned_because(why: &str) -> String {
    format!(
        "sent, and its answer not waited for ({why}): booked at its list price, as the API may have charged it"
    )
}

/// [`Store::complete_with_rows`] inside the caller's transaction (its own, or a
/// group's): the claim checked and locked, the rows written and the item completed.
/// `None`, and nothing written, when the claim was lost. The month partitions the
/// rows need are the caller's to make first ([`Store::partitions_for`]).
pub(super) async fn complete_in(
    conn: &mut sqlx::PgConnection,
    fence: Fence,
    call_id: i64,
    batch: &Batch,
) -> Result<Option<u64>, StoreError> {
    let held = sqlx::query(
        "SELECT 1 FROM linkledger.work WHERE id = $1 AND attempt = $2 AND state = 'running' FOR UPDATE",
    )
    .bind(fence.work_id)
    .bind(fence.attempt)
    .fetch_optional(&mut *conn)
    .await?;
    if held.is_none() {
        return Ok(None);
    }
    let rows = warehouse::write_batch(conn, batch).await?;
    sqlx::query(
        "WITH c AS (UPDATE linkledger.api_calls SET rows_written = $3 WHERE id = $4)
         UPDATE linkledger.work SET state = 'succeeded', rows_written = $3, finished_at = now(),
                lease_expires_at = NULL, last_error = NULL
         WHERE id = $1 AND attempt = $2",
    )
    .bind(fence.work_id)
    .bind(fence.attempt)
    .bind(rows as i64)
    .bind(call_id)
    .execute(&mut *conn)
    .await?;
    Ok(Some(rows))
}
