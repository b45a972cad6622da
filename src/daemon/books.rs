//! The account's own books: sampled every `reconcile.sample_every` and in the last
//! minute of each UTC day, each closed day reconciled against the ledger (its
//! abandoned estimates settled), today's spend watched for another consumer; what is
//! above `reconcile.threshold_usd` warned about in the log and on `/healthz`.

use chrono::{DateTime, NaiveDate};

use super::*;
use crate::collect::executor::next_utc_midnight;
use crate::config::ReconcileConfig;
use crate::money::Usd;
use crate::ops::reconcile::{another_consumer, assess, count_others_today, reconcile_closed_days};

/// How long before 00:00 UTC the day's last sample is taken: late enough to hold
/// nearly all of the day, early enough that its answer is the day's, not the next's.
pub const LAST_SAMPLE_BEFORE_MIDNIGHT: Duration = Duration::from_secs(45);

/// How long after 00:00 UTC a day is reconciled at the earliest: a request of it still
/// without an answer then will never have one (a live call is answered within 120 s,
/// `api.timeout` gives up at 180 s), and is settled as abandoned.
pub const RECONCILE_AFTER_MIDNIGHT: Duration = Duration::from_secs(15 * 60);

/// What `/healthz` says of the account's books (the check `account`).
#[derive(Clone, Debug, Default)]
pub struct BooksStatus {
    /// The last sample's time.
    pub sampled_at: Option<DateTime<Utc>>,
    /// The last reconciled day, its kind and what is left.
    pub last_day: Option<(NaiveDate, String, Usd)>,
    /// The last reconciled day's warning (above the threshold); cleared by a later
    /// day reconciled within it.
    pub day_warning: Option<String>,
    /// Another consumer today, as of the last sample.
    pub consumer_warning: Option<String>,
}

impl BooksStatus {
    /// The warnings in force.
    pub fn warnings(&self) -> Vec<String> {
        self.day_warning
            .iter()
            .chain(self.consumer_warning.iter())
            .cloned()
            .collect()
    }
}

pub type SharedBooks = Arc<std::sync::RwLock<BooksStatus>>;

/// When to sample next after `now`: `every` later, or the day's last sample when that
/// comes first.
pub fn next_sample(now: DateTime<Utc>, every: Duration) -> DateTime<Utc> {
    let later = now + chrono::Duration::from_std(every).unwrap_or(chrono::Duration::hours(1));
    let last = next_utc_midnight(now)
        - chrono::Duration::from_std(LAST_SAMPLE_BEFORE_MIDNIGHT).expect("45 s");
    if now < last && last < later {
        last
    } else {
        later
    }
}

/// What watching the account's books works with.
pub(super) struct BooksWatch {
    pub(super) store: Store,
    pub(super) exec: Executor,
    pub(super) metrics: Arc<Metrics>,
    pub(super) config: ReconcileConfig,
    pub(super) status: SharedBooks,
    pub(super) budgets: crate::app::BudgetHandle,
    /// The per-minute limit, following the account's own.
    pub(super) rates: crate::app::RateHandle,
    /// `budget.scope = "account"`: others' spend counts in today's daily caps and the
    /// month's.
    pub(super) account_scope: bool,
}

/// Samples the account, reconciles the closed days and watches today, until `stop`.
pub(super) async fn watch_books(w: BooksWatch, stop: CancellationToken) {
    let BooksWatch {
        store,
        exec,
        metrics,
        config,
        status,
        budgets,
        rates,
        account_scope,
    } = w;
    loop {
        // Refused credentials stop everything; a daily cost limit does not stop reading
        // the free books.
        if exec.halted().is_none_or(|h| h.until.is_some()) {
            let limits = Limits {
                budgets: &budgets,
                rates: &rates,
            };
            sample_and_reconcile(&store, &exec, &metrics, &config, &status, limits).await;
            if account_scope {
                count_others(&store, &exec).await;
            }
        }
        let now = Utc::now();
        let wait = (next_sample(now, config.sample_every) - now)
            .to_std()
            .unwrap_or(config.sample_every);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The account's own limits a sample updates.
#[derive(Clone, Copy)]
struct Limits<'a> {
    budgets: &'a crate::app::BudgetHandle,
    rates: &'a crate::app::RateHandle,
}

async fn sample_and_reconcile(
    store: &Store,
    exec: &Executor,
    metrics: &Metrics,
    config: &ReconcileConfig,
    status: &SharedBooks,
    limits: Limits<'_>,
) {
    let host = exec.client().api_host().to_string();
    match exec.sample_account().await {
        Ok(Some(account)) => {
            status.write().expect("books status").sampled_at = Some(Utc::now());
            // The account's own rate limit, when stricter, paces the calls from now on.
            limits.rates.follow(account.books.rate_limit_minute);
            limits
                .rates
                .follow_money_minute(account.books.money_limit_minute);
            limits
                .rates
                .follow_requests_day(account.books.rate_limit_day);
            // The account's own daily limit caps the calls beside budget.daily_usd.
            if let Err(e) = limits
                .budgets
                .set_account_daily(account.books.money_limit_day)
                .await
            {
                warn!(
                    error = format!("{e:#}"),
                    "taking the account's own daily limit failed"
                );
            }
        }
        Ok(None) => {
            tracing::debug!("the API did not answer with the account's books");
            return;
        }
        Err(e) => {
            warn!(
                error = format!("{e:#}"),
                "sampling the account's books failed"
            );
            return;
        }
    }
    let threshold = config.threshold_usd;
    let now = Utc::now();
    let today = now.date_naive();
    let closed_before = (now
        - chrono::Duration::from_std(RECONCILE_AFTER_MIDNIGHT).expect("15 minutes"))
    .date_naive();
    match reconcile_closed_days(store, &host, closed_before, threshold).await {
        Ok(days) => {
            for closed in days {
                let a = &closed.assessed;
                let row = a.total_row();
                let left = a.total.left;
                metrics.set_reconcile_difference(left);
                let mut st = status.write().expect("books status");
                st.last_day = Some((row.day, row.kind.clone(), left));
                st.day_warning = None;
                if a.total.over(threshold) {
                    let text = format!(
                        "{}: the account says {} spent on Backlinks, the ledger {} ({}); {} left unexplained, above reconcile.threshold_usd ({threshold})",
                        row.day, row.account_usd, row.ledger_usd, row.kind, left
                    );
                    warn!(
                        day = %row.day,
                        account_usd = row.account_usd.to_f64(),
                        ledger_usd = row.ledger_usd.to_f64(),
                        left_usd = left.to_f64(),
                        kind = %row.kind,
                        explanation = %row.explanation,
                        "the ledger and the account differ: {text}"
                    );
                    st.day_warning = Some(text);
                } else {
                    info!(
                        day = %row.day,
                        account_usd = row.account_usd.to_f64(),
                        ledger_usd = row.ledger_usd.to_f64(),
                        settled_calls = a.settlements.len(),
                        settlement_usd = a.settlement().to_f64(),
                        kind = %row.kind,
                        "day reconciled with the account: {}",
                        row.explanation
                    );
                }
            }
        }
        Err(e) => warn!(
            error = format!("{e:#}"),
            "reconciling the closed days failed"
        ),
    }
    // Today so far: the account's spend beyond everything the ledger booked.
    match assess(store, &host, today, threshold).await {
        Ok(Some(a)) => {
            let extra = another_consumer(&a.total, threshold);
            metrics.set_account_unexplained(extra.unwrap_or(Usd::ZERO));
            let requests = a.other_requests(config.threshold_requests);
            metrics.set_account_unexplained_requests(requests.unwrap_or(0));
            let mut warnings = Vec::new();
            if let Some(extra) = extra {
                let text = format!(
                    "another consumer: today the account spent {extra} on Backlinks beyond the ledger ({} against {}), above reconcile.threshold_usd ({threshold})",
                    a.total_row().account_usd,
                    a.total_row().ledger_usd
                );
                warn!(
                    extra_usd = extra.to_f64(),
                    account_usd = a.total_row().account_usd.to_f64(),
                    ledger_usd = a.total_row().ledger_usd.to_f64(),
                    "{text}"
                );
                warnings.push(text);
            }
            if let Some(extra) = requests {
                let account = a.sample.backlinks_requests.unwrap_or_default();
                let text = format!(
                    "another consumer: today the account made {extra} Backlinks requests beyond the ledger's ({account} against {}), above reconcile.threshold_requests ({})",
                    a.ledger_requests, config.threshold_requests
                );
                warn!(
                    extra_requests = extra,
                    account_requests = account,
                    ledger_requests = a.ledger_requests,
                    "{text}"
                );
                warnings.push(text);
            }
            status.write().expect("books status").consumer_warning =
                (!warnings.is_empty()).then(|| warnings.join("; "));
        }
        Ok(None) => {}
        Err(e) => warn!(error = format!("{e:#}"), "assessing today's books failed"),
    }
}

/// `budget.scope = "account"`: what others spent today counted in today's daily
/// budgets and the month's, from the sample just taken.
async fn count_others(store: &Store, exec: &Executor) {
    let host = exec.client().api_host().to_string();
    match count_others_today(store, &host, Utc::now().date_naive()).await {
        Ok(Some((others, change))) if !change.is_zero() => info!(
            others_usd = others.to_f64(),
            change_usd = change.to_f64(),
            "budget.scope = \"account\": other consumers' spend today ({others}) counts in the daily and monthly budgets"
        ),
        Ok(_) => {}
        Err(e) => warn!(
            error = format!("{e:#}"),
            "counting other consumers' spend in the budgets failed"
        ),
    }
}

/// The `account` health check: ok, with the warnings in force (a reconciled day
/// above the threshold, another consumer today) in its detail and `warnings`.
pub fn books_health(status: &BooksStatus) -> HealthCheck {
    let warnings = status.warnings();
    let detail = if !warnings.is_empty() {
        format!("warning: {}", warnings.join("; "))
    } else {
        match (&status.sampled_at, &status.last_day) {
            (_, Some((day, kind, left))) => {
                format!("books sampled; {day} reconciled: {kind} ({left} left)")
            }
            (Some(t), None) => format!("books sampled at {t}; no closed day reconciled yet"),
            (None, None) => "the account's books not sampled yet".into(),
        }
    };
    let mut check = HealthCheck::new("account", true, detail);
    check.extra.insert(
        "warnings".into(),
        warnings
            .into_iter()
            .map(serde_json::Value::String)
            .collect::<Vec<_>>()
            .into(),
    );
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_days_last_sample_is_taken_in_its_last_minute() {
        let every = Duration::from_secs(600);
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            next_sample(t("2026-12-07T12:00:00Z"), every),
            t("2026-12-07T12:10:00Z")
        );
        assert_eq!(
            next_sample(t("2026-12-07T23:55:00Z"), every),
            t("2026-12-07T23:59:15Z")
        );
        // The last sample taken, the next is after midnight.
        assert_eq!(
            next_sample(t("2026-12-07T23:59:15Z"), every),
            t("2026-12-08T00:09:15Z")
        );
    }
}
