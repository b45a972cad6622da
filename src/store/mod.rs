//! Everything that talks SQL. No other module writes to the database.

pub mod account;
pub mod coverage;
pub mod ledger;
pub mod limits;
pub mod queue;
pub mod reports;
pub mod runs;
pub mod warehouse;

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tracing::instrument;

pub use ledger::{
    Booking, BoughtAnswer, CallRecord, Purchase, RunKind, RunStatus, SendDecision, Settlement,
};
pub use queue::{ClaimScope, Claimed, Fence, NewWork, PaidAnswer, QueueDepth, Terminal, WorkItem};
pub use runs::{Activity, CancelledRun, HeldRun, RunCall, RunFilter, RunRecord};

/// The database: a pool plus the queries linkledger runs.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to PostgreSQL at {where_}: {source}")]
    Connect {
        where_: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("applying migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Where a database URL points, without user or password, for messages.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => "(unparsable database URL)".to_string(),
    }
}

impl StoreError {
    /// A deadlock Postgres broke by aborting this statement: worth trying again.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, StoreError::Sql(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40P01"))
    }
}

impl Store {
    #[instrument(skip_all)]
    pub async fn connect(url: &SecretString, pool_size: u32) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(2))
            .acquire_timeout(std::time::Duration::from_secs(30))
            .connect(url.expose_secret())
            .await
            .map_err(|source| StoreError::Connect {
                where_: redacted_url(url.expose_secret()),
                source,
            })?;
        Ok(Store { pool })
    }

    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the migrations in `migrations/` (embedded at build time).
    #[instrument(skip_all)]
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    /// A round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Row count of every normalized table, for reports.
    pub async fn table_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut out = Vec::new();
        for table in warehouse::normalized_tables() {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM linkledger.{table}"
            )))
            .fetch_one(&self.pool)
            .await?;
            out.push((table.to_string(), n));
        }
        Ok(out)
    }
}
