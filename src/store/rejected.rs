//! Items set aside (`linkledger.rejected_items`, migration 0015): the items of stored
//! answers that could not be read while the rest of their answers loaded. They are
//! written in the transaction that writes their answer's rows (and completes its work
//! item), keyed by the answer and the item's path in it, so loading an answer again (a
//! reused answer, a re-claimed item, `replay`) changes nothing; `replay` deletes the
//! rows of the items it can read now. Raw retention keeps the body of an answer that
//! still has items here ([`Store::drop_expired_raw`]).

use sqlx::PgConnection;

use super::{Store, StoreError};
use crate::warehouse::normalize::Batch;

/// One item a run's answers set aside, for `runs show`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SetAside {
    pub raw_response_id: i64,
    pub endpoint: String,
    /// Where it is in its answer: `tasks[0].result[0].items[3]`.
    pub path: String,
    pub reason: String,
}

/// The answers the calls of run `$1` loaded: each call's own, or the one it reused.
const ANSWERS_OF_RUNS: &str = "
    SELECT x.raw_response_id, x.endpoint, x.path, x.reason
    FROM linkledger.rejected_items x
    JOIN linkledger.raw_responses rr ON rr.id = x.raw_response_id
    WHERE rr.api_call_id IN (SELECT coalesce(a.reused_call_id, a.id) FROM linkledger.api_calls a
                             WHERE a.run_id = ANY($1))";

/// Writes the items `batch` set aside, in one statement; the caller owns the
/// transaction. An item already recorded keeps its row and when it was first set
/// aside (its reason is brought up to date). Returns the rows written.
pub(super) async fn write(conn: &mut PgConnection, batch: &Batch) -> sqlx::Result<u64> {
    if batch.rejected.is_empty() {
        return Ok(0);
    }
    let n = batch.rejected.len();
    let (mut paths, mut reasons, mut items) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in &batch.rejected {
        paths.push(r.path.as_str());
        reasons.push(r.why.as_str());
        items.push(&r.item);
    }
    Ok(sqlx::query(
        "INSERT INTO linkledger.rejected_items AS x
             (raw_response_id, path, endpoint, reason, item, collected_at)
         SELECT $1, u.path, $2, u.reason, u.item, $3
         FROM UNNEST($4::text[], $5::text[], $6::jsonb[]) AS u(path, reason, item)
         ON CONFLICT (raw_response_id, path) DO UPDATE
            SET reason = EXCLUDED.reason, item = EXCLUDED.item
            WHERE (x.reason, x.item) IS DISTINCT FROM (EXCLUDED.reason, EXCLUDED.item)",
    )
    .bind(batch.raw_response_id)
    .bind(batch.table.spec.endpoint.name())
    .bind(batch.collected_at)
    .bind(&paths)
    .bind(&reasons)
    .bind(&items)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Before an answer is loaded again by `replay`: deletes the rows of its items that
/// `batch` no longer sets aside (the code reads them now). Returns how many.
pub(super) async fn forget_read(conn: &mut PgConnection, batch: &Batch) -> sqlx::Result<u64> {
    let paths: Vec<&str> = batch.rejected.iter().map(|r| r.path.as_str()).collect();
    Ok(sqlx::query(
        "DELETE FROM linkledger.rejected_items
         WHERE raw_response_id = $1 AND path <> ALL($2::text[])",
    )
    .bind(batch.raw_response_id)
    .bind(&paths)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

impl Store {
    /// How many items of the answers the calls of `runs` loaded are set aside and
    /// still unread.
    pub async fn set_aside_in_runs(&self, runs: &[i64]) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM ({ANSWERS_OF_RUNS}) s"
        )))
        .bind(runs)
        .fetch_one(self.pool())
        .await?)
    }

    /// The items of the answers the calls of run `run_id` loaded that are set aside and
    /// still unread, in the order of their answers; at most `limit`.
    pub async fn set_aside_of_run(
        &self,
        run_id: i64,
        limit: i64,
    ) -> Result<Vec<SetAside>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{ANSWERS_OF_RUNS}
             ORDER BY x.raw_response_id, length(x.path), x.path LIMIT $2"
        )))
        .bind(vec![run_id])
        .bind(limit.max(0))
        .fetch_all(self.pool())
        .await?)
    }
}
