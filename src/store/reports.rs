//! Reports over the ledger, for `spend` and `demo`.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{Store, StoreError};
use crate::money::Usd;

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SpendRow {
    pub key: String,
    pub calls: i64,
    #[sqlx(try_from = "Decimal")]
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
        "SELECT {key} AS key, count(*)::bigint AS calls, coalesce(sum(cost_usd), 0) AS cost
         FROM linkledger.api_calls
         -- The day starts at 00:00 UTC, whatever the session's time zone.
         WHERE $1::date IS NULL OR started_at >= $1::date::timestamp AT TIME ZONE 'UTC'
         GROUP BY 1 ORDER BY 1"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(since)
        .fetch_all(store.pool())
        .await?)
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
