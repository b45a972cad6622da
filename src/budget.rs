//! Budgets as caps: `budget.daily_usd` and `budget.monthly_usd` (the whole account as
//! this database sees it, per UTC day and month) and each job's `budget_monthly_usd`.
//!
//! Before a call is sent its estimate is reserved in Postgres (`spend_totals`), in the
//! statement that writes its ledger row and only if no cap would be crossed; when the
//! answer comes the reservation is replaced by what the call cost. So any number of
//! workers in any number of processes cannot overshoot a cap by more than the estimate
//! error of the calls in flight. A call a cap holds back waits, queued, until the
//! budget's next period (or a raised cap).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::BudgetConfig;
use crate::jobs::Job;
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
            Period::Month => crate::api::endpoint::first_of_month(day),
        }
    }

    /// When the period after the one holding `now` begins (00:00 UTC).
    pub fn next_start(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.date_naive();
        let next = match self {
            Period::Day => today + chrono::Days::new(1),
            Period::Month => crate::api::endpoint::first_of_month(today)
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(today),
        };
        next.and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
    }
}

/// One cap in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cap {
    /// `daily`, `monthly` or `job:<name>`: the key of `spend_totals`.
    pub scope: String,
    /// The setting that sets it, for people: `budget.daily_usd`, `budget.monthly_usd`,
    /// `<job>.budget_monthly_usd`.
    pub name: String,
    pub usd: Usd,
    pub period: Period,
}

/// The scope of a job's monthly budget.
pub fn job_scope(job: &str) -> String {
    format!("job:{job}")
}

/// The caps in force, shared by every worker of a process and replaced on reload.
#[derive(Clone, Debug, Default)]
pub struct Budgets {
    inner: Arc<RwLock<Caps>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Caps {
    daily: Option<Usd>,
    monthly: Option<Usd>,
    jobs: BTreeMap<String, Usd>,
}

impl Caps {
    fn new(cfg: &BudgetConfig, jobs: &[Job]) -> Caps {
        Caps {
            daily: cfg.daily_usd,
            monthly: cfg.monthly_usd,
            jobs: jobs
                .iter()
                .filter_map(|j| j.budget_monthly_usd.map(|b| (j.name.clone(), Usd(b))))
                .collect(),
        }
    }
}

impl Budgets {
    pub fn new(cfg: &BudgetConfig, jobs: &[Job]) -> Budgets {
        Budgets {
            inner: Arc::new(RwLock::new(Caps::new(cfg, jobs))),
        }
    }

    /// Takes new caps (a reload); `true` when they differ from the ones in force.
    pub fn replace(&self, cfg: &BudgetConfig, jobs: &[Job]) -> bool {
        let new = Caps::new(cfg, jobs);
        let mut caps = self.inner.write().expect("budgets lock");
        let changed = *caps != new;
        *caps = new;
        changed
    }

    /// Every cap in force.
    pub fn all(&self) -> Vec<Cap> {
        let caps = self.inner.read().expect("budgets lock");
        let mut out = Vec::new();
        if let Some(usd) = caps.daily {
            out.push(Cap {
                scope: "daily".into(),
                name: "budget.daily_usd".into(),
                usd,
                period: Period::Day,
            });
        }
        if let Some(usd) = caps.monthly {
            out.push(Cap {
                scope: "monthly".into(),
                name: "budget.monthly_usd".into(),
                usd,
                period: Period::Month,
            });
        }
        for (job, usd) in &caps.jobs {
            out.push(Cap {
                scope: job_scope(job),
                name: format!("{job}.budget_monthly_usd"),
                usd: *usd,
                period: Period::Month,
            });
        }
        out
    }

    /// The caps a call of `job` counts against.
    pub fn for_job(&self, job: Option<&str>) -> Vec<Cap> {
        let own = job.map(job_scope);
        self.all()
            .into_iter()
            .filter(|c| !c.scope.starts_with("job:") || Some(&c.scope) == own.as_ref())
            .collect()
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
            .map(|c| c.period.next_start(now))
            .max()
            .unwrap_or(now);
        Hold { caps, until }
    }

    /// The first budget's setting, for `work.held_by`.
    pub fn name(&self) -> &str {
        self.caps.first().map_or("budget", |c| c.name.as_str())
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let caps: Vec<String> = self
            .caps
            .iter()
            .map(|c| {
                format!(
                    "{} ({} per {})",
                    c.name,
                    c.usd,
                    match c.period {
                        Period::Day => "UTC day",
                        Period::Month => "UTC month",
                    }
                )
            })
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
        let cfg = BudgetConfig {
            daily_usd: Some(usd("1")),
            monthly_usd: None,
        };
        let budgets = Budgets::new(&cfg, &[]);
        budgets.inner.write().unwrap().jobs = [("a".to_string(), usd("5")), ("b".into(), usd("7"))]
            .into_iter()
            .collect();
        let scopes: Vec<String> = budgets
            .for_job(Some("a"))
            .into_iter()
            .map(|c| c.scope)
            .collect();
        assert_eq!(scopes, ["daily", "job:a"]);
        let names: Vec<String> = budgets.for_job(None).into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["budget.daily_usd"]);
        assert!(budgets.replace(&cfg, &[]), "the job caps went away");
        assert!(!budgets.replace(&cfg, &[]));
    }

    #[test]
    fn a_hold_says_which_budget_and_until_when() {
        let now: DateTime<Utc> = "2026-12-01T13:00:00Z".parse().unwrap();
        let hold = Hold::new(
            vec![Cap {
                scope: "daily".into(),
                name: "budget.daily_usd".into(),
                usd: usd("0.1"),
                period: Period::Day,
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
