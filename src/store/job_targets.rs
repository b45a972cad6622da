//! Which job collects which target: the job files' targets as the daemon and
//! `run --once` last loaded them (`linkledger.loaded_targets`, read through the views
//! `job_targets` and `target_status`).

use tracing::instrument;

use super::{Store, StoreError};
use crate::jobs::JobTarget;

/// What recording the job files' targets changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobTargetsRecorded {
    /// Rows new, changed, or named again after they were removed.
    pub changed: u64,
    /// Rows the files no longer name, marked removed now.
    pub removed: u64,
}

impl Store {
    /// Records `rows`, every target of the job files as loaded now: each row upserted by
    /// its natural key (job, collection, target), and every row they no longer name
    /// marked removed. Idempotent: recording the same rows again changes nothing.
    /// Concurrent recorders take turns (a transaction-scoped advisory lock).
    #[instrument(skip_all, fields(rows = rows.len()))]
    pub async fn record_job_targets(
        &self,
        rows: &[JobTarget],
    ) -> Result<JobTargetsRecorded, StoreError> {
        let col = |f: fn(&JobTarget) -> String| rows.iter().map(f).collect::<Vec<String>>();
        let jobs = col(|r| r.job.clone());
        let collections = col(|r| r.collection.clone());
        let targets = col(|r| r.target.clone());
        let endpoints = col(|r| r.endpoint.name().to_string());
        let options = col(|r| r.options.to_string());
        let schedules = col(|r| r.schedule.clone());
        let timezones = col(|r| r.timezone.clone().unwrap_or_else(|| "UTC".into()));
        let files = col(|r| r.file.clone());
        let group_ranges: Vec<Option<String>> =
            rows.iter().map(|r| r.group_range.clone()).collect();
        let every: Vec<Option<i64>> = rows
            .iter()
            .map(|r| r.every.map(|d| d.num_seconds()))
            .collect();

        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('linkledger.loaded_targets'))")
            .execute(&mut *tx)
            .await?;
        let changed = sqlx::query(
            "INSERT INTO linkledger.loaded_targets AS t
                 (job, collection, target, endpoint, options, group_range, schedule, timezone,
                  every, file)
             SELECT job, collection, target, endpoint, options::jsonb, group_range, schedule,
                    timezone, justify_hours(every * interval '1 second'), file
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[])
                  AS r(job, collection, target, endpoint, options, group_range, schedule,
                       timezone, every, file)
             ON CONFLICT (job, collection, target) DO UPDATE
             SET endpoint = EXCLUDED.endpoint, options = EXCLUDED.options,
                 group_range = EXCLUDED.group_range, schedule = EXCLUDED.schedule,
                 timezone = EXCLUDED.timezone, every = EXCLUDED.every, file = EXCLUDED.file,
                 changed_at = now(), removed_at = NULL
             WHERE (t.endpoint, t.options, t.group_range, t.schedule, t.timezone, t.every,
                    t.file, t.removed_at)
                   IS DISTINCT FROM
                   (EXCLUDED.endpoint, EXCLUDED.options, EXCLUDED.group_range,
                    EXCLUDED.schedule, EXCLUDED.timezone, EXCLUDED.every, EXCLUDED.file,
                    NULL::timestamptz)",
        )
        .bind(&jobs)
        .bind(&collections)
        .bind(&targets)
        .bind(&endpoints)
        .bind(&options)
        .bind(&group_ranges)
        .bind(&schedules)
        .bind(&timezones)
        .bind(&every)
        .bind(&files)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let removed = sqlx::query(
            "UPDATE linkledger.loaded_targets t SET removed_at = now()
             WHERE t.removed_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM UNNEST($1::text[], $2::text[], $3::text[])
                                         AS k(job, collection, target)
                               WHERE k.job = t.job AND k.collection = t.collection
                                 AND k.target = t.target)",
        )
        .bind(&jobs)
        .bind(&collections)
        .bind(&targets)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(JobTargetsRecorded { changed, removed })
    }
}
