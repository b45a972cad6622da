//! The application, built once from configuration and used by every command that calls
//! the API (`run`, `run --once`, `demo`): the store (connected and migrated), the API
//! client, the account's shared limits with their keep-alive, and the metrics.
//! Commands that only read or write the database use [`connect`].

use std::sync::Arc;

use anyhow::Context as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::api::Client;
use crate::api::prices::Prices;
use crate::collect::executor::Executor;
use crate::collect::group::Groups;
use crate::collect::slots::SharedSlots;
use crate::collect::workers::{self, WorkerConfig};
use crate::config::{BudgetConfig, Config, ConfigError};
use crate::jobs::Job;
use crate::money::Usd;
use crate::money::budget::{Budgets, Scope};
use crate::ops::metrics::Metrics;
use crate::store::Store;

pub struct App {
    pub config: Config,
    pub store: Store,
    pub client: Client,
    pub limits: SharedSlots,
    pub metrics: Arc<Metrics>,
    /// The caps in force (config and jobs), shared by every executor.
    pub budgets: Budgets,
    /// What calls cost, as the database last knew it (the account's price list, or a
    /// gateway's flat price); executors refresh it from `user_data`.
    pub prices: Prices,
    /// `--config` as given, to read the configuration again on reload.
    pub config_source: Option<std::path::PathBuf>,
    /// Who this process is in `work.leased_by` and `api_slots.holder`: `daemon`, `once`.
    role: String,
    keep_alive: CancellationToken,
    keep_alive_task: JoinHandle<()>,
    /// The writers of grouped writes (`queue.group`), shared by every executor.
    groups: Option<Groups>,
}

/// Connects to the configured database and applies the migrations.
pub async fn connect(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url().ok_or_else(|| {
        ConfigError::Invalid("no database configured: set DATABASE_URL (e.g. DATABASE_URL=postgres://127.0.0.1:5432/linkledger after createdb linkledger; a URL without a user logs in as yours) or database.url".into())
    })?;
    let store = Store::connect_within(
        url,
        config.database.pool_size,
        config.database.connect_timeout,
    )
    .await?;
    store.migrate().await?;
    apply_raw_retention(&store, &config.warehouse).await?;
    Ok(store)
}

/// Drops the months of raw bodies past `warehouse.raw_retention`, if one is set.
pub async fn apply_raw_retention(
    store: &Store,
    warehouse: &crate::config::WarehouseConfig,
) -> anyhow::Result<()> {
    let Some(keep_from) = warehouse.raw_keep_from(chrono::Utc::now().date_naive()) else {
        return Ok(());
    };
    let report = store
        .drop_expired_raw(keep_from)
        .await
        .context("dropping raw bodies past warehouse.raw_retention")?;
    if report.bodies_kept > 0 {
        tracing::warn!(
            kept = report.bodies_kept,
            "raw bodies past warehouse.raw_retention kept because their rows are not loaded"
        );
    }
    Ok(())
}

/// The caps the settings set: `budget.daily_usd`, `budget.monthly_usd` and each job's
/// `budget_monthly_usd`.
pub fn budget_caps(config: &BudgetConfig, jobs: &[Job]) -> Vec<(Scope, Usd)> {
    let account = [
        (Scope::Daily, config.daily_usd),
        (Scope::Monthly, config.monthly_usd),
    ];
    let own = jobs
        .iter()
        .map(|j| (Scope::Job(j.name.clone()), j.budget_monthly_usd.map(Usd)));
    account
        .into_iter()
        .chain(own)
        .filter_map(|(scope, cap)| Some((scope, cap?)))
        .collect()
}

/// Records the caps in force, which every process's bookings read (the account's, and
/// those of `jobs`); when they changed, the calls a budget held back try again at once.
async fn publish_budgets(store: &Store, budgets: &Budgets, jobs: &[Job]) -> anyhow::Result<()> {
    let caps = budgets.all();
    let names: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
    let changed = store
        .set_budgets(&caps, &names)
        .await
        .context("recording the budgets in force")?;
    if changed {
        let released = store
            .release_held()
            .await
            .context("letting held calls try again")?;
        if released > 0 {
            info!(released, "budgets changed; the calls they held try again");
        }
    }
    Ok(())
}

/// Changes the budgets in force (a reload).
#[derive(Clone, Debug)]
pub struct BudgetHandle {
    store: Store,
    budgets: Budgets,
}

impl BudgetHandle {
    /// Takes the budgets of reloaded configuration and jobs; when they changed, the
    /// calls a budget held back try again at once.
    pub async fn reload(&self, config: &BudgetConfig, jobs: &[Job]) -> anyhow::Result<()> {
        if self.budgets.replace(budget_caps(config, jobs)) {
            info!("budgets changed");
            publish_budgets(&self.store, &self.budgets, jobs).await?;
        }
        Ok(())
    }
}

impl App {
    /// Builds everything a command that calls the API needs; `role` names this
    /// process in the queue and the shared limits; `jobs` give their budgets.
    pub async fn build(config: Config, role: &str, jobs: &[Job]) -> anyhow::Result<App> {
        let creds = config.api.credentials()?;
        let client = Client::with_credentials(&config.api, &creds)?;
        let store = connect(&config).await?;
        let limits = SharedSlots::new(
            store.clone(),
            workers::worker_id(role),
            i32::try_from(config.api.max_in_flight).unwrap_or(i32::MAX),
            i64::from(config.api.max_per_minute),
            config.queue.lease,
        );
        limits.prepare().await?;
        let budgets = Budgets::new(budget_caps(&config.budget, jobs));
        publish_budgets(&store, &budgets, jobs).await?;
        let mut prices = store
            .latest_account(Some(client.api_host()))
            .await
            .context("reading the last known price list")?
            .map(|a| a.prices())
            .unwrap_or_default();
        prices.flat_per_call = config.api.price_per_call;
        let keep_alive = CancellationToken::new();
        let keep_alive_task = limits.keep_alive(keep_alive.clone());
        let groups = config.queue.group.then(|| {
            Groups::start(
                store.clone(),
                config.queue.group_window,
                config.queue.group_max,
            )
        });
        Ok(App {
            config,
            store,
            client,
            limits,
            metrics: Arc::new(Metrics::new()),
            budgets,
            prices,
            config_source: None,
            role: role.to_string(),
            keep_alive,
            keep_alive_task,
            groups,
        })
    }

    /// An executor sharing the account's limits, counting into the metrics; calls not
    /// yet sent when `stop` is cancelled are not sent.
    pub fn executor(&self, stop: CancellationToken) -> Executor {
        let exec = Executor::new(self.store.clone(), self.client.clone())
            .with_shared_limits(self.limits.clone())
            .with_metrics(self.metrics.clone())
            .with_prices(self.prices.clone())
            .with_stop(stop);
        match &self.groups {
            Some(groups) => exec.with_groups(groups.clone()),
            None => exec,
        }
    }

    /// Reads the configuration from `source` (`--config`) again on reload.
    pub fn with_config_source(mut self, source: Option<std::path::PathBuf>) -> App {
        self.config_source = source;
        self
    }

    /// What a reload needs to change the budgets in force.
    pub fn budget_handle(&self) -> BudgetHandle {
        BudgetHandle {
            store: self.store.clone(),
            budgets: self.budgets.clone(),
        }
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
