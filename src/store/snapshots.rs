//! Account snapshots: the balance and price list `appendix/user_data` reported.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::{Store, StoreError};
use crate::api::account::Account;
use crate::api::prices::Prices;
use crate::money::Usd;

/// The newest snapshot.
#[derive(Clone, Debug)]
pub struct AccountSnapshot {
    pub taken_at: DateTime<Utc>,
    pub api_host: String,
    pub sandbox: bool,
    pub balance: Option<Usd>,
    pub account: Account,
}

impl AccountSnapshot {
    /// The prices it gives (the list price for what it does not name).
    pub fn prices(&self) -> Prices {
        Prices {
            per_endpoint: self.account.prices.clone(),
            flat_per_call: None,
            as_of: (!self.account.prices.is_empty()).then_some(self.taken_at),
        }
    }
}

#[derive(sqlx::FromRow)]
struct SnapshotRow {
    taken_at: DateTime<Utc>,
    api_host: String,
    sandbox: bool,
    balance_usd: Option<Decimal>,
    prices: Value,
}

impl Store {
    /// Stores what one `user_data` answer said.
    pub async fn record_account(
        &self,
        api_host: &str,
        sandbox: bool,
        account: &Account,
        body: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO linkledger.account_snapshots (api_host, sandbox, balance_usd, prices, body)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(api_host)
        .bind(sandbox)
        .bind(account.balance.map(Usd::decimal))
        .bind(account.prices_json())
        .bind(body)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The newest snapshot of the account behind `api_host` (any host when `None`).
    pub async fn latest_account(
        &self,
        api_host: Option<&str>,
    ) -> Result<Option<AccountSnapshot>, StoreError> {
        let row: Option<SnapshotRow> = sqlx::query_as(
            "SELECT taken_at, api_host, sandbox, balance_usd, prices
             FROM linkledger.account_snapshots
             WHERE $1::text IS NULL OR api_host = $1
             ORDER BY taken_at DESC, id DESC LIMIT 1",
        )
        .bind(api_host)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| AccountSnapshot {
            taken_at: r.taken_at,
            api_host: r.api_host,
            sandbox: r.sandbox,
            balance: r.balance_usd.map(Usd),
            account: Account {
                balance: r.balance_usd.map(Usd),
                prices: Account::prices_from_json(&r.prices),
                ..Account::default()
            },
        }))
    }
}
