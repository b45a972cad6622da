//! Budgets as caps: `budget.daily_usd` and `budget.monthly_usd` (the whole account as
//! this database sees it, per UTC day and month) and each job's `budget_monthly_usd`.
//!
//! The trip of a cap, from its setting to a call it holds back:
//!
//! 1. `app::budget_caps` reads the settings (configuration and job files) into
//!    `(Scope, Usd)` pairs; [`Budgets`] keeps them for the process and tells a reload
//!    whether they changed.
//! 2. `Store::set_budgets` writes them to `linkledger.budgets`, which every process's
//!    bookings read (one set for all of them).
//! 3. Before a call is sent, `Store::book_with_slot` reserves its estimate in
//!    `spend_totals` against every [`Scope::of_call`] of its job, in the statement that
//!    writes its ledger row, and only if no cap in `linkledger.budgets` would be
//!    crossed; when the answer comes, `Store::record_answer` replaces the reservation
//!    with what the call cost. So any number of workers in any number of processes
//!    cannot overshoot a cap by more than the estimate error of the calls in flight.
//! 4. A call a cap holds back comes back as a [`Hold`]: its work item waits, queued,
//!    until the budget's next period (or a raised cap), `work.held_by` naming the cap.

use std::fmt;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::money::Usd;

/// How long a budget's period is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// The UTC day.
    Day,
    /// The UTC month.
    Month,
}

impl Period {
    /// The period `day` falls in, as stored in `spend_totals.period`: the day itself,
    /// or the first day of its month.
    pub fn start(self, day: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => day,
            Period::Month => day.with_day(1).unwrap_or(day),
        }
    }

    /// When the period after the one holding `now` begins (00:00 UTC).
    pub fn next_start(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.date_naive();
        let next = match self {
            Period::Day => today + chrono::Days::new(1),
            Period::Month => Period::Month
                .start(today)
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(today),
        };
        next.and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
    }

    /// How the ledger's SQL names it: `day` or `month`.
    pub fn sql(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Period::Day => "UTC day",
            Period::Month => "UTC month",
        }
    }
}

/// What a budget caps. The one place its names are spelled: its key in
/// `linkledger.budgets` and `spend_totals` (`daily`, `monthly`, `job:<name>`), the
/// setting that sets it, and its period.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `budget.daily_usd`: every call, per UTC day.
    Daily,
    /// `budget.monthly_usd`: every call, per UTC month.
    Monthly,
    /// A job's `budget_monthly_usd`: that job's calls, per UTC month.
    Job(String),
    /// The account's own daily spending limit (`money.limits.day`, set in the API's
    /// dashboard, as `user_data` last reported it): every call, per UTC day, beside
    /// `budget.daily_usd` (the stricter wins: both are reserved against).
    AccountDaily,
}

impl Scope {
    const JOB_PREFIX: &'static str = "job:";

    /// Every scope a call of `job` counts against (a call of no job, the free
    /// `appendix/user_data`, only the account's), in the order of their keys: the
    /// order the booking statement locks their rows in.
    pub fn of_call(job: Option<&str>) -> Vec<Scope> {
        let mut scopes = vec![Scope::AccountDaily, Scope::Daily, Scope::Monthly];
        scopes.extend(job.map(|j| Scope::Job(j.to_string())));
        scopes.sort_by_key(Scope::key);
        scopes
    }

    /// The key of `linkledger.budgets` and `spend_totals`.
    pub fn key(&self) -> String {
        match self {
            Scope::Daily => "daily".into(),
            Scope::Monthly => "monthly".into(),
            Scope::Job(job) => format!("{}{job}", Scope::JOB_PREFIX),
            Scope::AccountDaily => "account_daily".into(),
        }
    }

    /// The scope of a key; `None` for a key no version of linkledger writes.
    pub fn parse(key: &str) -> Option<Scope> {
        match key {
            "daily" => Some(Scope::Daily),
            "monthly" => Some(Scope::Monthly),
            "account_daily" => Some(Scope::AccountDaily),
            _ => key
                .strip_prefix(Scope::JOB_PREFIX)
                .map(|job| Scope::Job(job.to_string())),
        }
    }

    /// The setting that sets it, for people: `budget.daily_usd`,
    /// `budget.monthly_usd`, `<job>.budget_monthly_usd`.
    pub fn setting(&self) -> String {
        match self {
            Scope::Daily => "budget.daily_usd".into(),
            Scope::Monthly => "budget.monthly_usd".into(),
            Scope::Job(job) => format!("{job}.budget_monthly_usd"),
            Scope::AccountDaily => "money.limits.day".into(),
        }
    }

    pub fn period(&self) -> Period {
        match self {
            Scope::Daily | Scope::AccountDaily => Period::Day,
            Scope::Monthly | Scope::Job(_) => Period::Month,
        }
    }

    /// The job whose calls alone it counts; `None` for the account's.
    pub fn job(&self) -> Option<&str> {
        match self {
            Scope::Job(job) => Some(job),
            Scope::Daily | Scope::Monthly | Scope::AccountDaily => None,
        }
    }
}

/// The account's own limits beyond its daily spending cap, as last sampled, shared by
/// the executors of a process: its spending limit per minute (`money.limits.minute`;
/// each call reserves its estimate in its minute, `Store::reserve_minute`) and its
/// requests per UTC day (`rates.limits.day`; each paid call takes one of the day's,
/// `Store::reserve_request`). `None`: no such limit.
#[derive(Clone, Debug, Default)]
pub struct AccountCaps(Arc<RwLock<CapsInForce>>);

/// What [`AccountCaps`] holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapsInForce {
    pub money_minute: Option<Usd>,
    pub requests_day: Option<u64>,
}

impl AccountCaps {
    pub fn new(limits: CapsInForce) -> AccountCaps {
        AccountCaps(Arc::new(RwLock::new(limits)))
    }

    pub fn get(&self) -> CapsInForce {
        *self.0.read().expect("account caps")
    }

    /// Takes another spending limit per minute; `true` when it differs from the one in
    /// force.
    pub fn set_money_minute(&self, cap: Option<Usd>) -> bool {
        let mut held = self.0.write().expect("account caps");
        let changed = held.money_minute != cap;
        held.money_minute = cap;
        changed
    }

    /// Takes another request limit per day; `true` when it differs from the one in force.
    pub fn set_requests_day(&self, cap: Option<u64>) -> bool {
        let mut held = self.0.write().expect("account caps");
        let changed = held.requests_day != cap;
        held.requests_day = cap;
        changed
    }
}

/// One cap in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cap {
    pub scope: Scope,
    pub usd: Usd,
}

impl Cap {
    /// The setting that sets it (`budget.daily_usd`, ...).
    pub fn name(&self) -> String {
        self.scope.setting()
    }
}

/// The caps in force, shared by every worker of a process and replaced on reload.
#[derive(Clone, Debug, Default)]
pub struct Budgets {
    inner: Arc<RwLock<Vec<Cap>>>,
}

/// Caps from `(scope, cap)` pairs, in a stable order (the account's, then the jobs'
/// by name), one per scope.
fn caps(pairs: impl IntoIterator<Item = (Scope, Usd)>) -> Vec<Cap> {
    let mut caps: Vec<Cap> = pairs
        .into_iter()
        .map(|(scope, usd)| Cap { scope, usd })
        .collect();
    caps.sort_by(|a, b| a.scope.cmp(&b.scope));
    caps.dedup_by(|a, b| a.scope == b.scope);
    caps
}

impl Budgets {
    pub fn new(pairs: impl IntoIterator<Item = (Scope, Usd)>) -> Budgets {
        Budgets {
            inner: Arc::new(RwLock::new(caps(pairs))),
        }
    }

    /// Takes new caps (a reload); `true` when they differ from the ones in force.
    pub fn replace(&self, pairs: impl IntoIterator<Item = (Scope, Usd)>) -> bool {
        let new = caps(pairs);
        let mut caps = self.inner.write().expect("budgets lock");
        let changed = *caps != new;
        *caps = new;
        changed
    }

    /// Every cap in force.
    pub fn all(&self) -> Vec<Cap> {
        self.inner.read().expect("budgets lock").clone()
    }
}

/// Why a call was not sent: the budgets it would have crossed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub caps: Vec<Cap>,
    /// When the first of them can take the call again: the start of the latest next
    /// period among them.
    pub until: DateTime<Utc>,
}

impl Hold {
    pub fn new(caps: Vec<Cap>, now: DateTime<Utc>) -> Hold {
        let until = caps
            .iter()
            .map(|c| c.scope.period().next_start(now))
            .max()
            .unwrap_or(now);
        Hold { caps, until }
    }

    /// The first budget's setting, for `work.held_by`.
    pub fn name(&self) -> String {
        self.caps.first().map_or("budget".into(), Cap::name)
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let caps: Vec<String> = self
            .caps
            .iter()
            .map(|c| format!("{} ({} per {})", c.name(), c.usd, c.scope.period().words()))
            .collect();
        write!(
            f,
            "held by {}: the call's estimate would cross it; it waits until {} (or a raised cap)",
            caps.join(" and "),
            self.until.format("%Y-%m-%d %H:%M UTC")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(s: &str) -> Usd {
        s.parse().unwrap()
    }

    #[test]
    fn periods_start_at_utc_midnight_and_months_on_the_first() {
        let now: DateTime<Utc> = "2026-12-31T23:59:00Z".parse().unwrap();
        assert_eq!(
            Period::Day.next_start(now),
            "2027-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            Period::Month.next_start("2026-02-14T08:00:00Z".parse().unwrap()),
            "2026-03-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let d = NaiveDate::from_ymd_opt(2026, 2, 14).unwrap();
        assert_eq!(
            Period::Month.start(d),
            NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()
        );
        assert_eq!(Period::Day.start(d), d);
    }

    #[test]
    fn a_job_counts_against_the_account_caps_and_its_own_only() {
        let keys = |job| -> Vec<String> { Scope::of_call(job).iter().map(Scope::key).collect() };
        assert_eq!(
            keys(Some("a")),
            ["account_daily", "daily", "job:a", "monthly"]
        );
        assert_eq!(keys(None), ["account_daily", "daily", "monthly"]);
        assert_eq!(Scope::parse("account_daily"), Some(Scope::AccountDaily));
        assert_eq!(Scope::AccountDaily.period(), Period::Day);
        let budgets = Budgets::new([
            (Scope::Job("b".into()), usd("7")),
            (Scope::Daily, usd("1")),
            (Scope::Job("a".into()), usd("5")),
        ]);
        let names: Vec<String> = budgets.all().iter().map(Cap::name).collect();
        assert_eq!(
            names,
            [
                "budget.daily_usd",
                "a.budget_monthly_usd",
                "b.budget_monthly_usd"
            ]
        );
        assert!(
            budgets.replace([(Scope::Daily, usd("1"))]),
            "the job caps went away"
        );
        assert!(!budgets.replace([(Scope::Daily, usd("1"))]));
    }

    #[test]
    fn a_scope_is_read_back_from_its_key_with_its_setting_and_period() {
        for scope in [Scope::Daily, Scope::Monthly, Scope::Job("job:x".into())] {
            assert_eq!(Scope::parse(&scope.key()), Some(scope.clone()));
        }
        assert_eq!(Scope::parse("weekly"), None);
        assert_eq!(Scope::Job("a".into()).setting(), "a.budget_monthly_usd");
        assert_eq!(Scope::Job("a".into()).period(), Period::Month);
        assert_eq!(Scope::Daily.period().sql(), "day");
        assert_eq!(Scope::Monthly.job(), None);
    }

    #[test]
    fn a_hold_says_which_budget_and_until_when() {
        let now: DateTime<Utc> = "2026-12-01T13:00:00Z".parse().unwrap();
        let hold = Hold::new(
            vec![Cap {
                scope: Scope::Daily,
                usd: usd("0.1"),
            }],
            now,
        );
        assert_eq!(hold.name(), "budget.daily_usd");
        let text = hold.to_string();
        assert!(
            text.contains("budget.daily_usd ($0.10 per UTC day)")
                && text.contains("2026-12-02 00:00 UTC"),
            "{text}"
        );
    }
}
