//! Prometheus metrics, kept in a `prometheus_client` registry and rendered as
//! OpenMetrics text for `/metrics`. Money stays exact here too: the cost counter adds
//! decimals ([`UsdCounter`]) and every amount becomes the `f64` nearest its decimal
//! only when it is printed, so `/metrics` shows `0.14021`, never the
//! `0.14020999999999998` that adding floats drifts to.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::money::Usd;

/// A counter of US dollars that adds exact decimals and prints the sum as the
/// shortest number that reads back as it (`0.14021`). Cheap to clone; clones share
/// the sum.
#[derive(Clone, Debug, Default)]
pub struct UsdCounter(Arc<Mutex<Usd>>);

impl UsdCounter {
    /// Adds `amount`; a counter never goes down, so a negative amount is ignored.
    pub fn inc_by(&self, amount: Usd) {
        if amount > Usd::ZERO {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) += amount;
        }
    }

    pub fn get(&self) -> Usd {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TypedMetric for UsdCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for UsdCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.get().to_f64(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    endpoint: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    budget: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScheduleLabels {
    job: String,
    collection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GapLabels {
    job: String,
    collection: String,
    standing: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric the collector exports. Cheap to update from any thread; share it
/// as `Arc<Metrics>`.
pub struct Metrics {
    registry: Registry,
    api_calls: Family<CallLabels, Counter>,
    api_cost: Family<EndpointLabels, UsdCounter>,
    api_retries: Family<EndpointLabels, Counter>,
    rows_written: Family<EndpointLabels, Counter>,
    items_set_aside: Family<EndpointLabels, Counter>,
    queue_depth: Family<StateLabels, Gauge>,
    queue_oldest_age: FloatGauge,
    schedule_lag: Family<ScheduleLabels, FloatGauge>,
    fire_failures: Family<ScheduleLabels, Counter>,
    gap_periods: Family<GapLabels, Gauge>,
    job_files_broken: Gauge,
    scheduler_last_tick: FloatGauge,
    last_tick: Mutex<Option<DateTime<Utc>>>,
    workers_busy: Gauge,
    max_per_minute: Gauge,
    balance: FloatGauge,
    runway_days: FloatGauge,
    reconcile_left: FloatGauge,
    account_unexplained: FloatGauge,
    account_unexplained_requests: Gauge,
    budget_left: Family<BudgetLabels, FloatGauge>,
    budget_held: Family<BudgetLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The `f64` nearest an amount, which prints back as its decimal.
fn usd_f64(amount: Usd) -> f64 {
    amount.to_f64()
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("linkledger");
        let api_calls = Family::<CallLabels, Counter>::default();
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "api_calls",
            "HTTP requests made to the DataForSEO API, by endpoint and outcome",
            api_calls.clone(),
        );
        let api_cost = Family::<EndpointLabels, UsdCounter>::default();
        registry.register(
            "api_cost_usd",
            "US dollars the API reported as spent, by endpoint",
            api_cost.clone(),
        );
        let api_retries = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "api_retries",
            "API requests retried after a failure, by endpoint",
            api_retries.clone(),
        );
        let rows_written = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "rows_written",
            "Result rows written to the warehouse, by endpoint",
            rows_written.clone(),
        );
        let items_set_aside = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "items_set_aside",
            "Items of answers that could not be read and were set aside (linkledger.rejected_items) while the rest of their answers loaded, by endpoint; an answer loaded again (reused) counts again, as its rows do",
            items_set_aside.clone(),
        );
        let queue_depth = Family::<StateLabels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Scheduled work items by state, as of the last refresh",
            queue_depth.clone(),
        );
        let queue_oldest_age = FloatGauge::default();
        registry.register(
            "queue_oldest_age_seconds",
            "Age in seconds of the oldest queued scheduled item (0 if none)",
            queue_oldest_age.clone(),
        );
        let schedule_lag = Family::<ScheduleLabels, FloatGauge>::default();
        registry.register(
            "schedule_lag_seconds",
            "How many seconds after it was due the last fire of a collection was enqueued (a fire missed while no daemon ran counts from the daemon's start)",
            schedule_lag.clone(),
        );
        let fire_failures = Family::<ScheduleLabels, Counter>::default();
        registry.register(
            "fire_failures",
            "Times a collection's fire could not be planned against the database or enqueued (the other collections fire regardless; /healthz names the last failure)",
            fire_failures.clone(),
        );
        let gap_periods = Family::<GapLabels, Gauge>::default();
        registry.register(
            "gap_periods",
            "Periods of a history or timeseries collection's range, summed over its targets, not stored for good, by standing: missing (never stored), empty (the newest answer lacked the item), unsettled (stored, asked again until it settles); as of the last refresh (`linkledger gaps` lists them)",
            gap_periods.clone(),
        );
        let job_files_broken = Gauge::default();
        registry.register(
            "job_files_broken",
            "Job files the daemon could not load at start or at its last reload (the log and /healthz name each and why; the other files' jobs run); 0 when every file loads",
            job_files_broken.clone(),
        );
        let scheduler_last_tick = FloatGauge::default();
        registry.register(
            "scheduler_last_tick_timestamp_seconds",
            "Unix time of the scheduler's last tick",
            scheduler_last_tick.clone(),
        );
        let workers_busy = Gauge::default();
        registry.register(
            "workers_busy",
            "Workers currently executing a queue item",
            workers_busy.clone(),
        );
        let max_per_minute = Gauge::default();
        registry.register(
            "api_max_per_minute",
            "Requests this process lets start in a sliding minute: api.max_per_minute, or the account's own rates.limits.minute when stricter, as last sampled",
            max_per_minute.clone(),
        );
        let balance = FloatGauge::default();
        registry.register(
            "balance_usd",
            "The account's balance as appendix/user_data last reported it, USD",
            balance.clone(),
        );
        let runway_days = FloatGauge::default();
        registry.register(
            "balance_days_left",
            "Days the balance lasts at the spend the jobs project (their bill over the coming 30 days)",
            runway_days.clone(),
        );
        let reconcile_left = FloatGauge::default();
        registry.register(
            "reconcile_difference_usd",
            "The last reconciled UTC day: what the account spent on the Backlinks API beyond the ledger after its abandoned estimates were settled, USD (negative: the ledger books more)",
            reconcile_left.clone(),
        );
        let account_unexplained = FloatGauge::default();
        registry.register(
            "account_unexplained_usd",
            "Today so far: what the account spent on the Backlinks API beyond everything the ledger booked (another consumer of the account), USD",
            account_unexplained.clone(),
        );
        let account_unexplained_requests = Gauge::default();
        registry.register(
            "account_unexplained_requests",
            "Backlinks requests the account counted today beyond the ledger's, above reconcile.threshold_requests (another consumer); 0 otherwise",
            account_unexplained_requests.clone(),
        );
        let budget_left = Family::<BudgetLabels, FloatGauge>::default();
        registry.register(
            "budget_left_usd",
            "USD left in a budget's current period (budget.daily_usd, budget.monthly_usd, <job>.budget_monthly_usd)",
            budget_left.clone(),
        );
        let budget_held = Family::<BudgetLabels, Gauge>::default();
        registry.register(
            "budget_held_calls",
            "Queued calls a budget holds back until its next period",
            budget_held.clone(),
        );
        Metrics {
            balance,
            runway_days,
            reconcile_left,
            account_unexplained,
            account_unexplained_requests,
            budget_left,
            budget_held,
            registry,
            api_calls,
            api_cost,
            api_retries,
            rows_written,
            items_set_aside,
            queue_depth,
            queue_oldest_age,
            schedule_lag,
            fire_failures,
            gap_periods,
            job_files_broken,
            scheduler_last_tick,
            last_tick: Mutex::new(None),
            workers_busy,
            max_per_minute,
        }
    }

    /// One HTTP request made: counts it by endpoint and outcome and adds its cost, if
    /// any, to the endpoint's spend.
    pub fn record_call(&self, endpoint: &str, outcome: &str, cost: Option<Usd>) {
        self.api_calls
            .get_or_create(&CallLabels {
                endpoint: endpoint.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        if let Some(cost) = cost {
            // A counter never goes down; a negative cost (a refund?) is not a call's
            // spend, and is left out.
            self.api_cost
                .get_or_create(&EndpointLabels {
                    endpoint: endpoint.to_string(),
                })
                .inc_by(cost);
        }
    }

    pub fn record_retry(&self, endpoint: &str) {
        self.api_retries
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_string(),
            })
            .inc();
    }

    pub fn record_rows(&self, endpoint: &str, rows: u64) {
        self.rows_written
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_string(),
            })
            .inc_by(rows);
    }

    /// Items of an answer set aside as it loaded.
    pub fn record_set_aside(&self, endpoint: &str, items: usize) {
        if items > 0 {
            self.items_set_aside
                .get_or_create(&EndpointLabels {
                    endpoint: endpoint.to_string(),
                })
                .inc_by(items as u64);
        }
    }

    /// Replaces the queue gauges: states not given disappear, so a stale count never
    /// lingers.
    pub fn set_queue(&self, depth_by_state: &[(String, i64)], oldest_queued_age: Option<Duration>) {
        self.queue_depth.clear();
        for (state, depth) in depth_by_state {
            self.queue_depth
                .get_or_create(&StateLabels {
                    state: state.clone(),
                })
                .set(*depth);
        }
        self.queue_oldest_age
            .set(oldest_queued_age.map_or(0.0, |age| age.as_secs_f64()));
    }

    pub fn set_schedule_lag(&self, job: &str, collection: &str, lag: Duration) {
        self.schedule_lag
            .get_or_create(&ScheduleLabels {
                job: job.to_string(),
                collection: collection.to_string(),
            })
            .set(lag.as_secs_f64());
    }

    /// A fire of a collection failed.
    pub fn fire_failed(&self, job: &str, collection: &str) {
        self.fire_failures
            .get_or_create(&ScheduleLabels {
                job: job.to_string(),
                collection: collection.to_string(),
            })
            .inc();
    }

    /// The gap periods of one collection: how many periods stand each way
    /// (`missing`, `empty`, `unsettled`), summed over its targets.
    pub fn set_gaps(&self, job: &str, collection: &str, counts: &[(&str, usize)]) {
        for (standing, n) in counts {
            self.gap_periods
                .get_or_create(&GapLabels {
                    job: job.to_string(),
                    collection: collection.to_string(),
                    standing: (*standing).to_string(),
                })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    pub fn scheduler_ticked(&self, at: DateTime<Utc>) {
        self.scheduler_last_tick
            .set(at.timestamp_millis() as f64 / 1000.0);
        *self.last_tick.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
    }

    pub fn last_tick(&self) -> Option<DateTime<Utc>> {
        *self.last_tick.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn worker_busy(&self, delta: i64) {
        self.workers_busy.inc_by(delta);
    }

    /// The per-minute request limit calls follow now.
    pub fn set_max_per_minute(&self, per_minute: u32) {
        self.max_per_minute.set(i64::from(per_minute));
    }

    /// Backlinks requests the account counted today beyond the ledger's (another
    /// consumer), 0 within the threshold.
    pub fn set_account_unexplained_requests(&self, requests: i64) {
        self.account_unexplained_requests.set(requests);
    }

    /// The account's balance as `user_data` last reported it.
    pub fn set_balance(&self, balance: Usd) {
        self.balance.set(usd_f64(balance));
    }

    /// Days the balance lasts at the projected spend.
    /// How many job files do not load, as of the start or the last reload.
    pub fn set_job_files_broken(&self, files: usize) {
        self.job_files_broken.set(files as i64);
    }

    pub fn set_runway_days(&self, days: f64) {
        self.runway_days.set(days);
    }

    /// The last reconciled day's difference left after settlement.
    pub fn set_reconcile_difference(&self, left: Usd) {
        self.reconcile_left.set(usd_f64(left));
    }

    /// Today's account spend beyond the ledger (0 when none).
    pub fn set_account_unexplained(&self, usd: Usd) {
        self.account_unexplained.set(usd_f64(usd));
    }

    /// What is left of each budget and how many calls each holds back (budgets no
    /// longer in force disappear).
    pub fn set_budgets(&self, left: &[(String, Usd)], held: &[(String, i64)]) {
        self.budget_left.clear();
        for (budget, usd) in left {
            self.budget_left
                .get_or_create(&BudgetLabels {
                    budget: budget.clone(),
                })
                .set(usd_f64(*usd));
        }
        self.budget_held.clear();
        for (budget, n) in held {
            self.budget_held
                .get_or_create(&BudgetLabels {
                    budget: budget.clone(),
                })
                .set(*n);
        }
    }

    /// OpenMetrics text exposition of every family, ending in `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn usd(s: &str) -> Usd {
        Usd(rust_decimal::Decimal::from_str(s).unwrap())
    }

    #[test]
    fn recording_a_call_shows_up_in_the_rendered_text_with_its_labels_and_cost() {
        let m = Metrics::new();
        m.record_call("backlinks/summary/live", "ok", Some(usd("0.02003")));
        m.record_call("backlinks/summary/live", "ok", Some(usd("0.02")));
        m.record_call("backlinks/summary/live", "http_error", None);
        m.record_retry("backlinks/summary/live");
        m.record_rows("backlinks/backlinks/live", 1000);
        m.record_set_aside("bulk_ranks", 1);
        m.record_set_aside("bulk_ranks", 0);
        m.record_set_aside("history", 0);
        let text = m.render();
        assert!(
            text.contains(r#"linkledger_items_set_aside_total{endpoint="bulk_ranks"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"endpoint="history""#), "{text}");
        assert!(
            text.contains(
                r#"linkledger_api_calls_total{endpoint="backlinks/summary/live",outcome="ok"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"linkledger_api_calls_total{endpoint="backlinks/summary/live",outcome="http_error"} 1"#
            ),
            "{text}"
        );
        let cost_line = text
            .lines()
            .find(|l| {
                l.starts_with(r#"linkledger_api_cost_usd_total{endpoint="backlinks/summary/live"}"#)
            })
            .expect(&text);
        assert_eq!(cost_line.rsplit(' ').next(), Some("0.04003"), "{cost_line}");
        assert!(
            text.contains(r#"linkledger_api_retries_total{endpoint="backlinks/summary/live"} 1"#)
        );
        assert!(text.contains(
            r#"linkledger_rows_written_total{endpoint="backlinks/backlinks/live"} 1000"#
        ));
        assert!(text.contains("# HELP linkledger_api_calls "), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn money_is_exported_as_the_exact_decimal_it_adds_up_to() {
        let m = Metrics::new();
        // Seven calls at $0.02003: adding floats gives 0.14020999999999998.
        for _ in 0..7 {
            m.record_call("summary", "ok", Some(usd("0.02003")));
        }
        m.record_call("summary", "ok", Some(usd("-0.01")));
        m.set_balance(usd("99.85979"));
        m.set_budgets(&[("budget.daily_usd".into(), usd("4.85336"))], &[]);
        let text = m.render();
        let value = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix}: {text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            value(r#"linkledger_api_cost_usd_total{endpoint="summary"}"#),
            "0.14021"
        );
        assert_eq!(value("linkledger_balance_usd "), "99.85979");
        assert_eq!(
            value(r#"linkledger_budget_left_usd{budget="budget.daily_usd"}"#),
            "4.85336"
        );
        assert!(
            text.contains("# TYPE linkledger_api_cost_usd counter"),
            "{text}"
        );
    }

    #[test]
    fn queue_gauges_are_replaced_not_accumulated() {
        let m = Metrics::new();
        m.set_queue(
            &[("queued".into(), 5), ("running".into(), 2)],
            Some(Duration::from_secs(90)),
        );
        m.set_queue(&[("queued".into(), 3)], None);
        let text = m.render();
        assert!(
            text.contains(r#"linkledger_queue_depth{state="queued"} 3"#),
            "{text}"
        );
        assert!(!text.contains(r#"state="running""#), "{text}");
        assert!(
            text.contains("linkledger_queue_oldest_age_seconds 0"),
            "{text}"
        );
    }

    #[test]
    fn gauges_for_schedule_workers_and_ticks_are_exported() {
        let m = Metrics::new();
        m.set_schedule_lag("weekly", "competitors", Duration::from_millis(1500));
        m.worker_busy(2);
        m.worker_busy(-1);
        assert_eq!(m.last_tick(), None);
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        m.scheduler_ticked(at);
        assert_eq!(m.last_tick(), Some(at));
        let text = m.render();
        assert!(text.contains(
            r#"linkledger_schedule_lag_seconds{job="weekly",collection="competitors"} 1.5"#
        ));
        assert!(text.contains("linkledger_workers_busy 1"));
        assert!(text.contains("linkledger_scheduler_last_tick_timestamp_seconds 1700000000"));
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let name = line.split(' ').nth(2).unwrap();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no HELP for {name}"
            );
        }
    }
}
