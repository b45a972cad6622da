//! Reports over the ledger, for `spend` and `demo`.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::Row;

use super::{Store, StoreError};
use crate::money::Usd;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendRow {
    pub key: String,
    pub calls: i64,
    pub cost: Usd,
}

/// Calls and cost from the ledger since `since` (UTC day), grouped by `day`, `job` or
/// `endpoint`.
pub async fn spend(
    store: &Store,
    since: Option<NaiveDate>,
    by: &str,
) -> Result<Vec<SpendRow>, StoreError> {
    let key = match by {
        "day" => "to_char((started_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')",
        "job" => "coalesce(job, '(none)')",
        _ => "endpoint",
    };
    let sql = format!(
        "SELECT {key} AS k, count(*)::bigint, coalesce(sum(cost_usd), 0)
         FROM linkledger.api_calls
         WHERE $1::date IS NULL OR started_at >= $1::date
         GROUP BY 1 ORDER BY 1"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(since)
        .fetch_all(store.pool())
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| SpendRow {
            key: r.get(0),
            calls: r.get(1),
            cost: Usd(r.get::<Decimal, _>(2)),
        })
        .collect())
}

/// What the ledger says was spent in the current UTC month.
pub async fn spent_this_month(store: &Store) -> Result<Usd, StoreError> {
    let d: Decimal = sqlx::query_scalar(
        "SELECT coalesce(sum(cost_usd), 0) FROM linkledger.api_calls
         WHERE started_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    )
    .fetch_one(store.pool())
    .await?;
    Ok(Usd(d))
}
