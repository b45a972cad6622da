//! Runs as people list, inspect and cancel them (`linkledger runs`, `runs show`,
//! `linkledger cancel`), the daemon's account of the runs it holds, and what it did
//! lately.
//!
//! Figures of a finished run are the totals it was closed with; those of a running
//! run are read live from the ledger and the queue.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tracing::instrument;

use super::queue::close_run;
use super::{RunKind, Store, StoreError};
use crate::money::Usd;
use crate::words::{CallEnd, CallEnds};

/// One run with what became of its work.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RunRecord {
    pub id: i64,
    /// scheduled, once, backfill, replay or demo.
    pub kind: String,
    pub job: String,
    /// The collection a scheduled run fired for; `None` for a run of every collection
    /// of its job (`run --once`, `demo`).
    pub collection: Option<String>,
    /// The instant a scheduled run fired for.
    pub scheduled_for: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: String,
    pub rows: i64,
    #[sqlx(try_from = "Decimal")]
    pub cost: Usd,
    /// Why it failed, halted or was cancelled.
    pub message: Option<String>,
    /// Its planned calls by their end ([`CallEnd`]; read with [`RunRecord::ends`]).
    pub succeeded: i64,
    pub failed: i64,
    pub rejected: i64,
    pub abandoned: i64,
    pub in_flight: i64,
    pub held: i64,
    pub cancelled: i64,
    pub queued: i64,
    /// Planned calls not done yet: queued (held by a budget or not) or claimed.
    pub pending: i64,
    /// HTTP requests answered or abandoned, retries included, reused answers not (as
    /// `spend` counts calls).
    pub requests: i64,
    /// Items of the answers its calls loaded (bought or reused) that could not be read
    /// and are set aside, still unread (`rejected_items`; `replay` loads those the code
    /// reads now).
    pub set_aside: i64,
    /// Pages of its listings whose `total_count` was not their first page's: the
    /// listing changed while it was paged (`work.paging.total_changed`).
    pub pages_changed: i64,
}

impl RunRecord {
    /// Planned calls not done yet (queued, held in the queue, or in flight).
    pub fn left(&self) -> i64 {
        self.pending
    }

    /// Its planned calls by their end.
    pub fn ends(&self) -> CallEnds {
        CallEnds {
            succeeded: self.succeeded,
            failed: self.failed,
            rejected: self.rejected,
            abandoned: self.abandoned,
            in_flight: self.in_flight,
            held: self.held,
            cancelled: self.cancelled,
            queued: self.queued,
        }
    }
}

/// How a planned call (a row `w` of `linkledger.work`) ended or stands, as the key of a
/// [`CallEnd`]: the one place the queue's states and the ledger's outcomes become the
/// words every output uses.
///
/// - `succeeded`: it got its data (bought or reused).
/// - `in_flight`: claimed; `queued`, or `held` when a budget holds it in the queue.
/// - `failed`: retries used up (`exhausted`), or sent and its answer could not be read.
/// - `rejected`: sent and refused by the API (a request error, the account refused).
/// - `abandoned`: cancelled with a request of it booked `abandoned` (sent, and its
///   answer not waited for: the API may have charged it).
/// - `held`: a budget kept it from being sent (a once-run's held call, or one whose
///   estimate alone crosses a cap); `cancelled`: cancelled before it was sent.
pub(crate) const CALL_END: &str = "
    CASE w.state
        WHEN 'succeeded' THEN 'succeeded'
        WHEN 'running' THEN 'in_flight'
        WHEN 'queued' THEN CASE WHEN w.held_by IS NULL THEN 'queued' ELSE 'held' END
        WHEN 'exhausted' THEN 'failed'
        WHEN 'cancelled' THEN
            CASE WHEN EXISTS (SELECT 1 FROM linkledger.api_calls ab
                              WHERE ab.work_id = w.id AND ab.outcome = 'abandoned')
                      THEN 'abandoned'
                 WHEN w.held_by IS NOT NULL THEN 'held'
                 ELSE 'cancelled' END
        ELSE coalesce(
            (SELECT CASE WHEN coalesce(src.outcome, own.outcome) IN ('rejected', 'halt', 'daily_limit')
                         THEN 'rejected' ELSE 'failed' END
             FROM linkledger.api_calls own
             LEFT JOIN linkledger.api_calls src ON src.id = own.reused_call_id
             WHERE own.work_id = w.id ORDER BY own.id DESC LIMIT 1),
            'held')
    END";

/// The counts of [`CALL_END`] over the work rows `w` a query selects, as columns named
/// after each end's key (`succeeded`, ..., `queued`).
fn end_counts() -> String {
    CallEnd::ALL
        .iter()
        .map(|e| {
            format!(
                "count(*) FILTER (WHERE e.call_end = '{0}')::bigint AS {0}",
                e.key()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which runs `linkledger runs` lists.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub job: Option<String>,
    pub status: Option<String>,
    /// The newest this many.
    pub limit: i64,
}

/// A planned call of a run that did not (yet) bring its data.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RunCall {
    pub work_id: i64,
    pub collection: String,
    pub endpoint: String,
    pub targets: Vec<String>,
    /// queued, running, failed, exhausted or cancelled.
    pub state: String,
    /// How it ended or stands: the key of a [`CallEnd`] (as `CALL_END` reads it).
    pub call_end: String,
    /// Claims made of it.
    pub attempt: i32,
    pub failures: i32,
    pub last_error: Option<String>,
    pub held_by: Option<String>,
    /// When a queued call is due.
    pub run_after: DateTime<Utc>,
}

/// What `linkledger cancel` did to one run.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CancelledRun {
    pub run_id: i64,
    pub job: String,
    /// Its status now: `cancelled` once closed, `running` while calls it had in
    /// flight finish, or the status it had already finished with.
    pub status: String,
    /// Whether the run was still open when asked.
    pub was_running: bool,
    /// Planned calls dropped now.
    pub cancelled: i64,
    /// Calls in flight, left to finish.
    pub in_flight: i64,
}

/// Scheduled runs with queued work, for a daemon that holds it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct WaitingRun {
    pub run_id: i64,
    pub job: String,
    pub queued: i64,
}

/// What scheduled work did since a point in the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Activity {
    /// HTTP requests of scheduled runs answered since (reused answers included).
    pub calls: i64,
    /// Of those, the ones that brought no data.
    pub failed: i64,
    pub rows: i64,
    #[sqlx(try_from = "Decimal")]
    pub cost: Usd,
    /// Scheduled calls queued now, and running now.
    pub queued: i64,
    pub running: i64,
    /// The newest ledger row now: where the next account starts.
    pub last_call_id: i64,
}

/// The columns of a [`RunRecord`] over `linkledger.runs r`.
fn record() -> String {
    format!(
        "
    SELECT r.id, r.kind, r.job, f.collection, f.scheduled_for, r.started_at, r.finished_at,
           CASE WHEN gone.dead THEN 'interrupted' ELSE r.status END AS status,
           CASE WHEN r.finished_at IS NULL THEN w.rows ELSE r.rows_written END AS rows,
           CASE WHEN r.finished_at IS NULL THEN c.cost ELSE r.cost_usd END AS cost,
           CASE WHEN gone.dead
                THEN 'its process is gone (killed, or lost the database): run the same backfill again to finish it'
                ELSE r.message END AS message,
           w.succeeded, w.failed, w.rejected, w.abandoned, w.in_flight, w.held, w.cancelled,
           w.queued, w.pending, c.requests, sa.set_aside, w.pages_changed
    FROM linkledger.runs r
    LEFT JOIN linkledger.fires f ON f.run_id = r.id
    CROSS JOIN LATERAL (
        SELECT {ends},
               count(*) FILTER (WHERE w.state IN ('queued', 'running'))::bigint AS pending,
               coalesce(sum(w.rows_written), 0)::bigint AS rows,
               count(*) FILTER (WHERE (w.paging ->> 'total_changed')::boolean)::bigint
                   AS pages_changed
        FROM linkledger.work w CROSS JOIN LATERAL (SELECT {CALL_END} AS call_end) e
        WHERE w.run_id = r.id) w
    -- Requests as `spend` counts them: answered or abandoned, retries included, not
    -- the reused answers (a run's calls never include the credentials check).
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(cost_usd), 0) AS cost,
               count(*) FILTER (WHERE outcome NOT IN ('sent', 'reused'))::bigint AS requests
        FROM linkledger.api_calls WHERE run_id = r.id) c
    -- Items set aside of the answers its calls loaded: each call's own, or the one it
    -- reused (read from rejected_items, which holds only what is still unread).
    CROSS JOIN LATERAL (
        SELECT count(*)::bigint AS set_aside
        FROM linkledger.rejected_items x
        JOIN linkledger.raw_responses rr ON rr.id = x.raw_response_id
        WHERE rr.api_call_id IN (SELECT coalesce(a.reused_call_id, a.id)
                                 FROM linkledger.api_calls a WHERE a.run_id = r.id)) sa
    -- A backfill still open whose job's backfill lock no session holds (see
    -- Store::lock_backfill; a bigint advisory key shows as classid:objid) was killed.
    CROSS JOIN LATERAL (
        SELECT r.kind = 'backfill' AND r.status = 'running' AND NOT EXISTS (
                   SELECT 1 FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                     AND l.classid::bigint = (k.key >> 32) & 4294967295
                     AND l.objid::bigint = k.key & 4294967295) AS dead
        FROM (SELECT hashtextextended('linkledger backfill|' || r.job, 0) AS key) k) gone",
        ends = end_counts()
    )
}

impl Store {
    /// The planned calls of `runs` counted by their end.
    pub async fn call_ends(&self, runs: &[i64]) -> Result<CallEnds, StoreError> {
        let sql = format!(
            "SELECT e.call_end, count(*)::bigint
             FROM linkledger.work w CROSS JOIN LATERAL (SELECT {CALL_END} AS call_end) e
             WHERE w.run_id = ANY($1) GROUP BY 1"
        );
        let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(runs)
            .fetch_all(self.pool())
            .await?;
        Ok(CallEnds::from_keys(
            rows.iter().map(|(k, n)| (k.as_str(), *n)),
        ))
    }

    /// The newest runs that pass `filter`, newest first.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let sql = format!(
            "{}
             WHERE ($1::text IS NULL OR r.job = $1) AND ($2::text IS NULL OR r.status = $2)
             ORDER BY r.id DESC LIMIT $3",
            record()
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(filter.job.as_deref())
            .bind(filter.status.as_deref())
            .bind(filter.limit.max(0))
            .fetch_all(self.pool())
            .await?)
    }

    /// One run, if it exists.
    pub async fn run_record(&self, run_id: i64) -> Result<Option<RunRecord>, StoreError> {
        let sql = format!("{} WHERE r.id = $1", record());
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(run_id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// The planned calls of a run that have not brought their data: the ones that
    /// ended without it (failed, exhausted, cancelled) and the ones still waiting
    /// (queued, running), in the order they were planned; at most `limit`.
    pub async fn run_calls(&self, run_id: i64, limit: i64) -> Result<Vec<RunCall>, StoreError> {
        let sql = format!(
            "SELECT w.id AS work_id, w.collection, w.endpoint, w.targets, w.state,
                    {CALL_END} AS call_end, w.attempt, w.failures, w.last_error, w.held_by,
                    w.run_after
             FROM linkledger.work w WHERE w.run_id = $1 AND w.state <> 'succeeded'
             ORDER BY w.id LIMIT $2"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(run_id)
            .bind(limit.max(0))
            .fetch_all(self.pool())
            .await?)
    }

    /// The ids of the open runs of `job` (to cancel them all).
    pub async fn open_runs_of(&self, job: &str) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM linkledger.runs WHERE job = $1 AND status = 'running' ORDER BY id",
        )
        .bind(job)
        .fetch_all(self.pool())
        .await?)
    }

    /// Drops the work of `runs` that no process is working on: queued calls (held by a
    /// budget or not) and claims whose lease lapsed (their process died; a request one
    /// of them left unanswered is booked `abandoned` at its estimate, as a new claim
    /// would book it). Calls in flight are left to finish. Each open run is marked
    /// cancelled and closed `cancelled` once nothing of it is pending (now, or when
    /// its last call in flight ends). Nothing is sent and nothing is reserved. Runs that
    /// do not exist are left out of the answer.
    #[instrument(skip_all, fields(runs = runs.len()))]
    pub async fn cancel_runs(
        &self,
        runs: &[i64],
        why: &str,
    ) -> Result<Vec<CancelledRun>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let open: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT id, job, status FROM linkledger.runs WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(runs)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE linkledger.api_calls c SET outcome = 'abandoned',
                    cost_usd = coalesce(c.estimated_usd, $2 + $3 * w.estimated_rows),
                    error = 'no answer: the process died with the request in flight; cost is the list-price estimate'
             FROM linkledger.work w
             WHERE c.work_id = w.id AND w.run_id = ANY($1) AND w.state = 'running'
               AND w.lease_expires_at < now() AND c.outcome = 'sent'",
        )
        .bind(runs)
        .bind(crate::api::prices::PRICE_PER_REQUEST.decimal())
        .bind(crate::api::prices::PRICE_PER_ROW.decimal())
        .execute(&mut *tx)
        .await?;
        let dropped: Vec<i64> = sqlx::query_scalar(
            "UPDATE linkledger.work w SET state = 'cancelled', finished_at = now(),
                    last_error = CASE WHEN EXISTS (
                                     SELECT 1 FROM linkledger.api_calls c
                                     WHERE c.work_id = w.id AND c.outcome = 'abandoned')
                                 THEN $3
                                 ELSE $2 || coalesce('; last try: ' || w.last_error, '') END,
                    lease_expires_at = NULL, leased_by = NULL, held_by = NULL
             WHERE w.run_id = ANY($1)
               AND (w.state = 'queued' OR (w.state = 'running' AND w.lease_expires_at < now()))
             RETURNING w.run_id",
        )
        .bind(runs)
        .bind(why)
        .bind(super::queue::abandoned_because(&format!(
            "its process died with the request in flight; {}",
            why.strip_prefix("not sent: ").unwrap_or(why)
        )))
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE linkledger.runs SET cancelled_at = now()
             WHERE id = ANY($1) AND status = 'running'",
        )
        .bind(runs)
        .execute(&mut *tx)
        .await?;
        let mut out = Vec::new();
        for (run_id, job, status) in open {
            let was_running = status == "running";
            if was_running {
                close_run(&mut *tx, run_id, None).await?;
            }
            let (status, in_flight): (String, i64) = sqlx::query_as(
                "SELECT r.status,
                        (SELECT count(*) FROM linkledger.work w
                         WHERE w.run_id = r.id AND w.state = 'running')::bigint
                 FROM linkledger.runs r WHERE r.id = $1",
            )
            .bind(run_id)
            .fetch_one(&mut *tx)
            .await?;
            out.push(CancelledRun {
                run_id,
                job,
                status,
                was_running,
                cancelled: dropped.iter().filter(|r| **r == run_id).count() as i64,
                in_flight,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Scheduled runs with queued work, oldest first: what a daemon whose calls are
    /// stopped holds.
    pub async fn waiting_runs(&self) -> Result<Vec<WaitingRun>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT run_id, job, count(*)::bigint AS queued FROM linkledger.work
             WHERE state = 'queued' AND run_kind = 'scheduled'
             GROUP BY run_id, job ORDER BY run_id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// What scheduled work did after ledger row `after` (requests answered, rows,
    /// cost), and the scheduled queue now.
    pub async fn scheduled_activity(&self, after: i64) -> Result<Activity, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.calls, c.failed, c.rows, c.cost, q.queued, q.running,
                    (SELECT coalesce(max(id), 0) FROM linkledger.api_calls)::bigint AS last_call_id
             FROM (SELECT count(*)::bigint AS calls,
                          count(*) FILTER (WHERE a.outcome NOT IN ('ok', 'reused'))::bigint AS failed,
                          coalesce(sum(a.rows_written), 0)::bigint AS rows,
                          coalesce(sum(a.cost_usd), 0) AS cost
                   FROM linkledger.api_calls a JOIN linkledger.runs r ON r.id = a.run_id
                   WHERE a.id > $1 AND a.outcome <> 'sent' AND r.kind = 'scheduled') c,
                  (SELECT count(*) FILTER (WHERE state = 'queued')::bigint AS queued,
                          count(*) FILTER (WHERE state = 'running')::bigint AS running
                   FROM linkledger.work
                   WHERE state IN ('queued', 'running') AND run_kind = 'scheduled') q",
        )
        .bind(after)
        .fetch_one(self.pool())
        .await?)
    }
}

impl Store {
    /// Takes the lock one backfill of `job` holds while it runs: a session advisory
    /// lock on a connection of its own, which the database releases when the process
    /// ends, however it ends (kill -9, a lost connection). `None` when another process
    /// still holds it after `wait`.
    #[instrument(skip_all, fields(job))]
    pub async fn lock_backfill(
        &self,
        job: &str,
        wait: Duration,
    ) -> Result<Option<JobLock>, StoreError> {
        let mut conn = self.pool().acquire().await?.detach();
        let mut tx = sqlx::Connection::begin(&mut conn).await?;
        sqlx::query("SELECT set_config('lock_timeout', $1, true)")
            .bind(format!("{}ms", wait.as_millis()))
            .execute(&mut *tx)
            .await?;
        // The same key `linkledger runs` looks for in pg_locks (store/runs.rs).
        let locked = sqlx::query(
            "SELECT pg_advisory_lock(hashtextextended('linkledger backfill|' || $1, 0))",
        )
        .bind(job)
        .execute(&mut *tx)
        .await;
        match locked {
            Ok(_) => {
                // A session lock: it outlives the transaction, until the connection ends.
                tx.commit().await?;
                Ok(Some(JobLock { conn }))
            }
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Backfill runs of `job` still open. Called with the job's backfill lock held
    /// ([`Store::lock_backfill`]), they are a dead process's: a backfill killed with
    /// kill -9, or one that lost its database. Their leftovers are closed like an
    /// interrupt; running the command again plans what is missing anew.
    pub async fn abandoned_backfills(
        &self,
        _lock: &JobLock,
        job: &str,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM linkledger.runs
             WHERE kind = $1 AND job = $2 AND status = 'running' ORDER BY id",
        )
        .bind(RunKind::Backfill.as_str())
        .bind(job)
        .fetch_all(self.pool())
        .await?)
    }
}

/// A backfill's hold on its job ([`Store::lock_backfill`]); released when dropped or
/// when the process ends.
pub struct JobLock {
    conn: sqlx::PgConnection,
}

impl JobLock {
    /// Lets go of the lock (closing its connection does).
    pub async fn release(self) {
        let _ = sqlx::Connection::close(self.conn).await;
    }
}
