//! Runs and their work enqueued, in SQL: a once-run with its calls, and each schedule
//! fire exactly once (the unique key of `fires` decides, in the transaction that
//! creates its run and its work), where a schedule resumes, and a fire that could not be
//! planned or enqueued recorded as a failed run.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::instrument;

use super::queue::NewWork;
use super::{RunKind, Store, StoreError};

async fn insert_work(
    conn: &mut sqlx::PgConnection,
    run_id: i64,
    kind: RunKind,
    fire_id: Option<i64>,
    max_attempts: i32,
    work: &[NewWork],
) -> Result<u64, sqlx::Error> {
    if work.is_empty() {
        return Ok(0);
    }
    let jobs: Vec<&str> = work.iter().map(|w| w.job.as_str()).collect();
    let collections: Vec<&str> = work.iter().map(|w| w.collection.as_str()).collect();
    let endpoints: Vec<&str> = work.iter().map(|w| w.endpoint.as_str()).collect();
    // text[][] cannot be bound ragged; the targets travel as JSON arrays.
    let targets: Vec<Value> = work
        .iter()
        .map(|w| Value::from(w.targets.clone()))
        .collect();
    let tasks: Vec<&Value> = work.iter().map(|w| &w.task).collect();
    let rows: Vec<i64> = work.iter().map(|w| w.estimated_rows).collect();
    let settle: Vec<Option<i64>> = work
        .iter()
        .map(|w| {
            w.settle
                .map(|s| i64::try_from(s.as_secs()).unwrap_or(i64::MAX))
        })
        .collect();
    let paging: Vec<Option<&Value>> = work.iter().map(|w| w.paging.as_ref()).collect();
    let done = sqlx::query(
        "INSERT INTO linkledger.work
            (run_id, run_kind, fire_id, job, collection, endpoint, targets, task, estimated_rows,
             settle_seconds, max_attempts, paging)
         SELECT $1, $10, $2, u.job, u.collection, u.endpoint,
                ARRAY(SELECT jsonb_array_elements_text(u.targets)), u.task, u.rows, u.settle, $9,
                u.paging
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[], $8::bigint[],
                     $11::bigint[], $12::jsonb[])
              AS u(job, collection, endpoint, targets, task, rows, settle, paging)",
    )
    .bind(run_id)
    .bind(fire_id)
    .bind(&jobs)
    .bind(&collections)
    .bind(&endpoints)
    .bind(&targets)
    .bind(&tasks)
    .bind(&rows)
    .bind(max_attempts)
    .bind(kind.as_str())
    .bind(&settle)
    .bind(&paging)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Inserts a scheduled run and its fire row: `(run id, fire id)`, or `None` when the
/// fire was already recorded (the caller rolls back, taking the run with it). With
/// `failed`, the run is closed at once as failed with that message.
async fn insert_fire(
    tx: &mut sqlx::PgConnection,
    job: &str,
    collection: &str,
    scheduled_for: DateTime<Utc>,
    enqueued_by: &str,
    failed: Option<&str>,
) -> Result<Option<(i64, i64)>, sqlx::Error> {
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO linkledger.runs (job, kind, status, finished_at, message)
         VALUES ($1, 'scheduled',
                 CASE WHEN $2::text IS NULL THEN 'running' ELSE 'failed' END,
                 CASE WHEN $2::text IS NULL THEN NULL ELSE now() END, $2)
         RETURNING id",
    )
    .bind(job)
    .bind(failed)
    .fetch_one(&mut *tx)
    .await?;
    let fire_id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO linkledger.fires (job, collection, scheduled_for, run_id, enqueued_by)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (job, collection, scheduled_for) DO NOTHING RETURNING id",
    )
    .bind(job)
    .bind(collection)
    .bind(scheduled_for)
    .bind(run_id)
    .bind(enqueued_by)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(fire_id.map(|fire_id| (run_id, fire_id)))
}

impl Store {
    /// Starts a run and enqueues its calls in one transaction (`run --once`), so no
    /// run exists without its work (a sweep would close it as finished).
    #[instrument(skip_all, fields(job, items = work.len()))]
    pub async fn start_run_with_work(
        &self,
        job: &str,
        kind: super::RunKind,
        max_attempts: i32,
        work: &[NewWork],
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO linkledger.runs (job, kind) VALUES ($1, $2) RETURNING id",
        )
        .bind(job)
        .bind(kind.as_str())
        .fetch_one(&mut *tx)
        .await?;
        insert_work(&mut tx, run_id, kind, None, max_attempts, work).await?;
        tx.commit().await?;
        Ok(run_id)
    }

    /// Enqueues one schedule fire: a run, the fire row and its calls, in one
    /// transaction. `None` when the fire was already enqueued (by this or another
    /// daemon): the unique key decides, so each fire becomes work exactly once.
    #[instrument(skip_all, fields(job, collection, %scheduled_for))]
    pub async fn enqueue_fire(
        &self,
        job: &str,
        collection: &str,
        scheduled_for: DateTime<Utc>,
        enqueued_by: &str,
        max_attempts: i32,
        work: &[NewWork],
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let Some((run_id, fire_id)) =
            insert_fire(&mut tx, job, collection, scheduled_for, enqueued_by, None).await?
        else {
            tx.rollback().await?;
            return Ok(None);
        };
        insert_work(
            &mut tx,
            run_id,
            RunKind::Scheduled,
            Some(fire_id),
            max_attempts,
            work,
        )
        .await?;
        // Calls of earlier fires of this collection still held by a budget are
        // superseded by this fire's: buying them once the budget's period turns would
        // only buy older data first.
        if work.is_empty() {
            // Everything the fire would buy is stored already.
            sqlx::query(
                "UPDATE linkledger.runs SET status = 'succeeded', finished_at = now(),
                        message = 'nothing to buy: every period it asks for is stored'
                 WHERE id = $1",
            )
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        }
        let superseded: Vec<i64> = sqlx::query_scalar(
            "UPDATE linkledger.work SET state = 'cancelled', finished_at = now(),
                    last_error = 'superseded by the fire of ' || $3 || ' while held by ' || held_by
             WHERE job = $1 AND collection = $2 AND state = 'queued' AND held_by IS NOT NULL
               AND run_id <> $4
             RETURNING run_id",
        )
        .bind(job)
        .bind(collection)
        .bind(scheduled_for.to_rfc3339())
        .bind(run_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut closed = std::collections::BTreeSet::new();
        for run in superseded {
            if closed.insert(run) {
                self.close_run_if_done(run).await?;
            }
        }
        Ok(Some(run_id))
    }

    /// Where a collection's schedule resumes: its newest fire, else the instant a
    /// daemon first saw it (`now`, recorded, when none has).
    pub async fn schedule_anchor(
        &self,
        job: &str,
        collection: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, StoreError> {
        Ok(sqlx::query_scalar(
            "WITH seen AS (
                 INSERT INTO linkledger.collections (job, collection, first_seen_at)
                 VALUES ($1, $2, $3) ON CONFLICT (job, collection) DO NOTHING
                 RETURNING first_seen_at)
             SELECT coalesce(
                 (SELECT max(scheduled_for) FROM linkledger.fires WHERE job = $1 AND collection = $2),
                 (SELECT first_seen_at FROM seen),
                 (SELECT first_seen_at FROM linkledger.collections WHERE job = $1 AND collection = $2))",
        )
        .bind(job)
        .bind(collection)
        .bind(now)
        .fetch_one(self.pool())
        .await?)
    }

    /// Records a fire that could not be planned (a rule of the API it would break) or
    /// enqueued (the database refused its work): the fire row and a run that failed
    /// with `why`, no work. Its run id, or `None` when the fire was already recorded
    /// (by this or another daemon).
    #[instrument(skip_all, fields(job, collection, %scheduled_for))]
    pub async fn record_failed_fire(
        &self,
        job: &str,
        collection: &str,
        scheduled_for: DateTime<Utc>,
        enqueued_by: &str,
        why: &str,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let recorded = insert_fire(
            &mut tx,
            job,
            collection,
            scheduled_for,
            enqueued_by,
            Some(why),
        )
        .await?;
        let Some((run_id, _)) = recorded else {
            tx.rollback().await?;
            return Ok(None);
        };
        tx.commit().await?;
        Ok(Some(run_id))
    }
}
