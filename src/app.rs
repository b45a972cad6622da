//! The application, built once from configuration and used by every command that calls
//! the API (`run`, `run --once`, `demo`): the store (connected and migrated), the API
//! client, the account's shared limits with their keep-alive, and the metrics.
//! Commands that only read or write the database use [`connect`].

use std::sync::Arc;

use anyhow::Context as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::Client;
use crate::config::{Config, ConfigError};
use crate::executor::Executor;
use crate::limits::SharedLimits;
use crate::queue::{self, WorkerConfig};
use crate::store::Store;
use crate::telemetry::Metrics;

pub struct App {
    pub config: Config,
    pub store: Store,
    pub client: Client,
    pub limits: SharedLimits,
    pub metrics: Arc<Metrics>,
    /// Who this process is in `work.leased_by` and `api_slots.holder`: `daemon`, `once`.
    role: String,
    keep_alive: CancellationToken,
    keep_alive_task: JoinHandle<()>,
}

/// Connects to the configured database and applies the migrations.
pub async fn connect(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url().ok_or_else(|| {
        ConfigError::Invalid("no database configured: set DATABASE_URL or database.url".into())
    })?;
    let store = Store::connect(url, config.database.pool_size).await?;
    store.migrate().await?;
    Ok(store)
}

impl App {
    /// Builds everything a command that calls the API needs; `role` names this
    /// process in the queue and the shared limits.
    pub async fn build(config: Config, role: &str) -> anyhow::Result<App> {
        let creds = config.api.credentials()?;
        let client = Client::with_credentials(&config.api, &creds)?;
        let store = connect(&config).await?;
        let limits = SharedLimits::new(
            store.clone(),
            queue::worker_id(role),
            i32::try_from(config.api.max_in_flight).unwrap_or(i32::MAX),
            i64::from(config.api.max_per_minute),
            config.queue.lease,
        );
        limits.prepare().await?;
        let keep_alive = CancellationToken::new();
        let keep_alive_task = limits.keep_alive(keep_alive.clone());
        Ok(App {
            config,
            store,
            client,
            limits,
            metrics: Arc::new(Metrics::new()),
            role: role.to_string(),
            keep_alive,
            keep_alive_task,
        })
    }

    /// An executor sharing the account's limits, counting into the metrics; calls not
    /// yet sent when `stop` is cancelled are not sent.
    pub fn executor(&self, stop: CancellationToken) -> Executor {
        Executor::new(self.store.clone(), self.client.clone())
            .with_shared_limits(self.limits.clone())
            .with_metrics(self.metrics.clone())
            .with_stop(stop)
    }

    /// Workers as the queue configuration says.
    pub fn workers(&self) -> WorkerConfig {
        WorkerConfig::from_config(
            &self.role,
            &self.config.queue,
            self.config.api.max_in_flight,
        )
    }

    /// Stops renewing the shared slots (none is held once the work has drained).
    pub async fn close(self) -> anyhow::Result<()> {
        self.keep_alive.cancel();
        self.keep_alive_task
            .await
            .context("stopping the shared limits' keep-alive")
    }
}
