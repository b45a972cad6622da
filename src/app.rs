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
    /// The account's own daily limit as last read, shared with [`BudgetHandle`].
    account_daily: Arc<std::sync::RwLock<Option<Usd>>>,
    /// What calls cost, as the database last knew it (the account's price list, or a
    /// gateway's flat price); executors refresh it from `user_data`.
    pub prices: Prices,
    /// `--config` as given, to read the configuration again on reload.
    pub config_source: Option<std::path::PathBuf>,
    /// Who this process is in `work.leased_by` and `api_slots.holder`: `daemon`, `once`.
    role: String,
    /// A simulation's clock (`demo`'s days): answers are timed by it and nothing is
    /// reused by the real day, since every simulated day falls in the same real one.
    clock: Option<crate::api::client::Clock>,
    keep_alive: CancellationToken,
    keep_alive_task: JoinHandle<()>,
    /// The writers of grouped writes (`queue.group`), shared by every executor.
    groups: Option<Groups>,
    /// `api.max_per_minute` as configured, before the account's own rate limit.
    configured_per_minute: u32,
    /// The account's own spending limit per minute, shared by every executor.
    account_caps: crate::money::budget::AccountCaps,
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
pub fn budget_caps(
    config: &BudgetConfig,
    jobs: &[Job],
    account_daily: Option<Usd>,
) -> Vec<(Scope, Usd)> {
    let account = [
        (Scope::Daily, config.daily_usd),
        (Scope::Monthly, config.monthly_usd),
        (Scope::AccountDaily, account_daily),
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
    /// The account's own daily limit as last read (`money.limits.day`).
    account_daily: Arc<std::sync::RwLock<Option<Usd>>>,
}

impl BudgetHandle {
    /// Takes the budgets of reloaded configuration and jobs; when they changed, the
    /// calls a budget held back try again at once.
    pub async fn reload(&self, config: &BudgetConfig, jobs: &[Job]) -> anyhow::Result<()> {
        let account_daily = *self.account_daily.read().expect("account limit");
        if self
            .budgets
            .replace(budget_caps(config, jobs, account_daily))
        {
            info!("budgets changed");
            publish_budgets(&self.store, &self.budgets, jobs).await?;
        }
        Ok(())
    }

    /// Takes the account's own daily limit as `user_data` reported it (`None`: no
    /// limit); when it changed, it is a cap from now on, in every process.
    pub async fn set_account_daily(&self, limit: Option<Usd>) -> anyhow::Result<bool> {
        {
            let mut known = self.account_daily.write().expect("account limit");
            if *known == limit {
                return Ok(false);
            }
            *known = limit;
        }
        let pairs = self
            .budgets
            .all()
            .into_iter()
            .filter(|c| c.scope != Scope::AccountDaily)
            .map(|c| (c.scope, c.usd))
            .chain(limit.map(|l| (Scope::AccountDaily, l)))
            .collect::<Vec<_>>();
        self.budgets.replace(pairs);
        info!(
            limit_usd = limit.map(|l| l.to_f64()),
            "the account's own daily spending limit (money.limits.day) changed; it caps the calls from now on"
        );
        publish_budgets(&self.store, &self.budgets, &[]).await?;
        Ok(true)
    }
}

/// The per-minute request limit of this process, following the account's own
/// (`rates.limits.minute`) as the daemon samples it: the stricter of it and
/// `api.max_per_minute`, in the client-side and the shared limits alike.
#[derive(Clone)]
pub struct RateHandle {
    configured: u32,
    account_caps: crate::money::budget::AccountCaps,
    client: crate::api::limits::Limits,
    shared: SharedSlots,
    metrics: Arc<Metrics>,
}

impl RateHandle {
    /// Takes the account's own per-minute limit as just sampled (`None`: not said):
    /// calls follow the stricter of it and `api.max_per_minute` from now on. The new
    /// limit when it changed.
    pub fn follow(&self, account: Option<u32>) -> Option<u32> {
        let want = account
            .filter(|&a| a > 0)
            .map_or(self.configured, |a| a.min(self.configured));
        if self.client.max_per_minute() == want {
            return None;
        }
        self.client.set_max_per_minute(want);
        self.shared.set_max_per_minute(i64::from(want));
        self.metrics.set_max_per_minute(want);
        info!(
            per_minute = want,
            account_per_minute = account,
            configured_per_minute = self.configured,
            "the account's own rate limit (rates.limits.minute) changed: calls follow {want} a minute from now on"
        );
        Some(want)
    }

    /// Takes the account's own spending limit per minute as just sampled (`None`:
    /// none): each call reserves its estimate in its minute against it from now on.
    pub fn follow_money_minute(&self, limit: Option<Usd>) {
        if self.account_caps.set_money_minute(limit) {
            info!(
                limit_usd = limit.map(|l| l.to_f64()),
                "the account's own spending limit per minute (money.limits.minute) changed; each call reserves its estimate in its minute against it"
            );
        }
    }

    /// Takes the account's own request limit per day as just sampled (`None`: none):
    /// each paid call takes one of the day's requests against it from now on.
    pub fn follow_requests_day(&self, limit: Option<u64>) {
        if self.account_caps.set_requests_day(limit) {
            info!(
                requests_per_day = limit,
                "the account's own request limit per day (rates.limits.day) changed; each paid call takes one of the day's requests against it"
            );
        }
    }
}

impl App {
    /// Builds everything a command that calls the API needs; `role` names this
    /// process in the queue and the shared limits; `jobs` give their budgets.
    pub async fn build(mut config: Config, role: &str, jobs: &[Job]) -> anyhow::Result<App> {
        let creds = config.api.credentials()?;
        let mut client = Client::with_credentials(&config.api, &creds)?;
        let configured_per_minute = config.api.max_per_minute;
        let store = connect(&config).await?;
        // The account's own limits, as last sampled. Its rate limit, when stricter
        // than api.max_per_minute: the shared and in-process limits follow it.
        let sampled = store
            .latest_limits(client.api_host())
            .await
            .context("reading the account's own limits")?;
        if let Some(rate) = sampled.rate_minute
            && rate < config.api.max_per_minute
        {
            info!(
                account_per_minute = rate,
                configured_per_minute = config.api.max_per_minute,
                "the account's own rate limit (rates.limits.minute) is stricter than api.max_per_minute; calls follow it"
            );
            config.api.max_per_minute = rate;
            client = Client::with_credentials(&config.api, &creds)?;
        }
        let limits = SharedSlots::new(
            store.clone(),
            workers::worker_id(role),
            i32::try_from(config.api.max_in_flight).unwrap_or(i32::MAX),
            i64::from(config.api.max_per_minute),
            config.queue.lease,
        );
        limits.prepare().await?;
        let account_daily = sampled.money_day;
        let account_caps =
            crate::money::budget::AccountCaps::new(crate::money::budget::CapsInForce {
                money_minute: sampled.money_minute,
                requests_day: sampled.rate_day,
            });
        let budgets = Budgets::new(budget_caps(&config.budget, jobs, account_daily));
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
        let metrics = Arc::new(Metrics::new());
        metrics.set_max_per_minute(config.api.max_per_minute);
        Ok(App {
            config,
            store,
            client,
            limits,
            metrics,
            budgets,
            account_daily: Arc::new(std::sync::RwLock::new(account_daily)),
            prices,
            config_source: None,
            role: role.to_string(),
            clock: None,
            keep_alive,
            keep_alive_task,
            groups,
            configured_per_minute,
            account_caps,
        })
    }

    /// Follows the account's own rate limit while running (the daemon's samples of
    /// `user_data`).
    pub fn rate_handle(&self) -> RateHandle {
        RateHandle {
            configured: self.configured_per_minute,
            account_caps: self.account_caps.clone(),
            client: self.client.limits().clone(),
            shared: self.limits.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// An executor sharing the account's limits, counting into the metrics; calls not
    /// yet sent when `stop` is cancelled are not sent.
    pub fn executor(&self, stop: CancellationToken) -> Executor {
        let exec = Executor::new(self.store.clone(), self.client.clone())
            .with_shared_limits(self.limits.clone())
            .with_metrics(self.metrics.clone())
            .with_prices(self.prices.clone())
            .with_account_caps(self.account_caps.clone())
            .with_stop(stop);
        let exec = match &self.groups {
            Some(groups) => exec.with_groups(groups.clone()),
            None => exec,
        };
        match &self.clock {
            Some(clock) => exec.with_clock(clock.clone()).without_same_day_reuse(),
            None => exec,
        }
    }

    /// Times the answers of this app's executors by `clock` (a simulation: `demo`'s
    /// days), each simulated day buying its own calls.
    pub fn with_simulated_clock(mut self, clock: crate::api::client::Clock) -> App {
        self.clock = Some(clock);
        self
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
            account_daily: self.account_daily.clone(),
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
