//! Month partitions (migration 0013). The tables that grow by the day are
//! range-partitioned by month on their date, each with a default partition that takes
//! any row whose month has none, so no row is ever refused. Partitions are made ahead
//! (the current month and the next two, by `migrate` and every daemon) and, before a
//! write, for any month a batch holds that has none yet (a history answer goes back to
//! 2019): rows land in their month's partition, and the default one stays a safety net.
//! Creating a month's partition moves that month's rows out of the default one. The
//! SQL functions `linkledger.create_month_partition` and `linkledger.ensure_partitions`
//! do the work under one advisory lock, so daemons and replicas can all call them.
//!
//! Partitions live in the schema `linkledger_partitions` (migration 0024), so the
//! schema `linkledger` lists only what users query.
//!
//! Raw retention (`warehouse.raw_retention`) drops whole `raw_responses` partitions
//! older than the window; bodies whose rows are not loaded, and bodies with items set
//! aside (`rejected_items`, which only `replay` of the body can load), are kept.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{Datelike, Months, NaiveDate};
use tracing::{debug, info, instrument};

use super::{Store, StoreError};
use crate::warehouse::normalize::{Batch, Cell};

/// The partitioned tables and the date they are partitioned on. `history` is not
/// partitioned: it holds one row per target and month. A test holds this list to the
/// catalog.
pub const PARTITIONED: &[(&str, &str)] = &[
    ("anchors", "collected_on"),
    ("backlinks", "collected_on"),
    ("bulk_backlinks", "collected_on"),
    ("bulk_new_lost_backlinks", "collected_on"),
    ("bulk_new_lost_referring_domains", "collected_on"),
    ("bulk_pages_summary", "collected_on"),
    ("bulk_ranks", "collected_on"),
    ("bulk_referring_domains", "collected_on"),
    ("bulk_spam_score", "collected_on"),
    ("competitors", "collected_on"),
    ("domain_intersection", "collected_on"),
    ("domain_pages", "collected_on"),
    ("link_breakdowns", "date"),
    ("raw_responses", "received_at"),
    ("referring_domains", "collected_on"),
    ("summary", "collected_on"),
    ("timeseries_new_lost_summary", "date"),
    ("timeseries_summary", "date"),
];

/// Months ahead of the current one that `migrate` and the daemon create.
pub const MONTHS_AHEAD: i32 = 2;

/// The column `table` is partitioned on, if it is partitioned.
pub fn partition_column(table: &str) -> Option<&'static str> {
    PARTITIONED
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, c)| *c)
}

/// The first day of `day`'s month.
pub fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).expect("every month has a first day")
}

/// The (table, month) pairs a batch writes to.
pub fn months_of(batch: &Batch) -> HashSet<(&'static str, NaiveDate)> {
    let mut out = HashSet::new();
    let spec = batch.table.spec;
    if let Some(column) = partition_column(spec.name) {
        let at = spec
            .columns()
            .iter()
            .position(|(name, _)| name == column)
            .expect("a partitioned table's spec has its partition column");
        for row in &batch.table.rows {
            if let Some(Cell::Date(d)) = row.get(at) {
                out.insert((spec.name, month_of(*d)));
            }
        }
    }
    if !batch.breakdowns.is_empty() {
        for parent in &batch.parents {
            out.insert(("link_breakdowns", month_of(parent.date)));
        }
    }
    out
}

/// The month partitions this process knows exist, so that a write asks the database
/// only for a month it has not seen.
#[derive(Clone, Debug, Default)]
pub(crate) struct KnownPartitions(Arc<Mutex<HashSet<(&'static str, NaiveDate)>>>);

/// What a pass of raw retention did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Partitions dropped, by name.
    pub dropped: Vec<String>,
    /// Raw bodies those partitions held.
    pub bodies_dropped: i64,
    /// Bodies older than the window kept because their rows are not loaded (their
    /// work item has not succeeded, the answer could not be read yet, or items of it
    /// are set aside): they stay, in the default partition.
    pub bodies_kept: i64,
}

impl Store {
    /// Creates the month partitions of every partitioned table for `today`'s month and
    /// the next [`MONTHS_AHEAD`], and for the months of rows waiting in a default
    /// partition (but raw bodies of past months: those are the ones raw retention
    /// kept). Idempotent and safe to run from many processes at once. Returns how
    /// many partitions it created.
    #[instrument(skip_all, fields(%today))]
    pub async fn maintain_partitions(&self, today: NaiveDate) -> Result<i32, StoreError> {
        let created: i32 = sqlx::query_scalar("SELECT linkledger.ensure_partitions($1, $2)")
            .bind(today)
            .bind(MONTHS_AHEAD)
            .fetch_one(self.pool())
            .await?;
        if created > 0 {
            debug!(created, "created month partitions");
        }
        Ok(created)
    }

    /// Makes sure the month partitions `batch` writes to exist, before its transaction
    /// opens: its rows then go to their month, not to the default partition.
    pub(crate) async fn partitions_for(&self, batch: &Batch) -> Result<(), StoreError> {
        let wanted = months_of(batch);
        let missing: Vec<(&'static str, NaiveDate)> = {
            let known = self.partitions.0.lock().expect("partition cache lock");
            wanted.into_iter().filter(|p| !known.contains(p)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let tables: Vec<&str> = missing.iter().map(|(t, _)| *t).collect();
        let months: Vec<NaiveDate> = missing.iter().map(|(_, m)| *m).collect();
        let created: i64 = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE linkledger.create_month_partition(t, m))
             FROM unnest($1::text[], $2::date[]) AS x(t, m)",
        )
        .bind(&tables)
        .bind(&months)
        .fetch_one(self.pool())
        .await?;
        if created > 0 {
            debug!(
                created,
                "created month partitions for the rows being written"
            );
        }
        self.partitions
            .0
            .lock()
            .expect("partition cache lock")
            .extend(missing);
        Ok(())
    }

    /// Drops the `raw_responses` partitions whose whole month ends on or before
    /// `keep_from` (the first day of the retention window). A body whose rows are not
    /// loaded (its work item has not succeeded, its answer could not be read yet, or
    /// items of it are set aside in `rejected_items`) is never dropped: it moves to the
    /// default partition first. Each partition goes in its own transaction.
    #[instrument(skip_all, fields(%keep_from))]
    pub async fn drop_expired_raw(
        &self,
        keep_from: NaiveDate,
    ) -> Result<RetentionReport, StoreError> {
        let expired = self
            .raw_months()
            .await?
            .into_iter()
            .filter(|(_, month)| *month + Months::new(1) <= keep_from)
            .map(|(part, _)| part);
        let mut report = RetentionReport::default();
        for part in expired {
            // Which bodies must stay, read before the partition is locked: no new body
            // arrives in a month past the window, and a loaded one stays loaded.
            let (total, kept): (i64, Vec<i64>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT count(*),
                        coalesce(array_agg(r.id) FILTER (
                            WHERE c.outcome = 'invalid_response'
                               OR (c.work_id IS NOT NULL AND w.state IS DISTINCT FROM 'succeeded')
                               OR EXISTS (SELECT 1 FROM linkledger.rejected_items x
                                          WHERE x.raw_response_id = r.id)),
                                 '{{}}')
                 FROM linkledger_partitions.{part} r
                 JOIN linkledger.api_calls c ON c.id = r.api_call_id
                 LEFT JOIN linkledger.work w ON w.id = c.work_id"
            )))
            .fetch_one(self.pool())
            .await?;
            let mut tx = self.pool().begin().await?;
            // The partition leaves the table first, so the bodies kept can go back in
            // (to the default partition: their month has none any more).
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "ALTER TABLE linkledger.raw_responses DETACH PARTITION linkledger_partitions.{part}"
            )))
            .execute(&mut *tx)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO linkledger.raw_responses
                 SELECT * FROM linkledger_partitions.{part} WHERE id = ANY($1)"
            )))
            .bind(&kept)
            .execute(&mut *tx)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP TABLE linkledger_partitions.{part}"
            )))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            let kept = kept.len() as i64;
            info!(partition = %part, bodies = total - kept, kept, "dropped raw bodies past the retention window");
            report.bodies_dropped += total - kept;
            report.bodies_kept += kept;
            report.dropped.push(part);
        }
        // Bodies kept earlier whose rows have loaded since (and none of whose items is
        // still set aside) go too.
        let gone = sqlx::query(
            "DELETE FROM linkledger_partitions.raw_responses_default r
             USING linkledger.api_calls c
             LEFT JOIN linkledger.work w ON w.id = c.work_id
             WHERE c.id = r.api_call_id
               AND r.received_at < $1::date::timestamp AT TIME ZONE 'UTC'
               AND c.outcome <> 'invalid_response'
               AND (c.work_id IS NULL OR w.state = 'succeeded')
               AND NOT EXISTS (SELECT 1 FROM linkledger.rejected_items x
                               WHERE x.raw_response_id = r.id)",
        )
        .bind(keep_from)
        .execute(self.pool())
        .await?
        .rows_affected();
        report.bodies_dropped += gone as i64;
        Ok(report)
    }

    /// The oldest UTC day whose raw bodies are all still stored: the start of the
    /// oldest month partition of `raw_responses` (`None` when none is stored).
    pub async fn oldest_raw_month(&self) -> Result<Option<NaiveDate>, StoreError> {
        Ok(self.raw_months().await?.first().map(|(_, month)| *month))
    }

    /// The month partitions of `raw_responses` with the first day of their month,
    /// oldest first.
    async fn raw_months(&self) -> Result<Vec<(String, NaiveDate)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.relname::text, to_date(right(c.relname, 7), 'YYYY_MM')
             FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'linkledger.raw_responses'::regclass
               AND c.relname ~ '^raw_responses_p[0-9]{4}_[0-9]{2}$'
             ORDER BY 2",
        )
        .fetch_all(self.pool())
        .await?)
    }
}
