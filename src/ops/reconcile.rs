//! The ledger reconciled with the account's own books: a day's last sample of
//! `money.statistics.day` against the ledger's calls of that day up to the sample, for
//! the Backlinks API in total and per function, each difference explained
//! (`money::reconcile`), and, once the day is over, written with the settlement of
//! its abandoned estimates (`store::reconcile`).

use anyhow::Context;
use chrono::NaiveDate;

use crate::money::Usd;
use crate::money::reconcile::{Figures, Kind, Verdict, reconcile, split};
use crate::store::Store;
use crate::store::reconcile::{LedgerDay, Reconciled, Sample, Settlement};

/// A day assessed: its rows (`*` first), the settlements it makes, and the verdict of
/// its total.
#[derive(Clone, Debug)]
pub struct Assessed {
    pub rows: Vec<Reconciled>,
    pub settlements: Vec<Settlement>,
    pub total: Verdict,
    pub sample: Sample,
    /// The ledger's Backlinks requests of the day up to the sample.
    pub ledger_requests: i64,
}

impl Assessed {
    /// Backlinks requests the account counted on the day beyond the ledger's, when
    /// more than `threshold`: another consumer's.
    pub fn other_requests(&self, threshold: u32) -> Option<i64> {
        let account = self.sample.backlinks_requests?;
        let extra = account - self.ledger_requests;
        (extra > i64::from(threshold)).then_some(extra)
    }
}

impl Assessed {
    /// The `*` row.
    pub fn total_row(&self) -> &Reconciled {
        &self.rows[0]
    }

    /// What the settlement changes in the ledger in all (never positive).
    pub fn settlement(&self) -> Usd {
        self.settlements
            .iter()
            .map(|s| s.settled - s.estimate)
            .sum()
    }
}

fn figures(account: Usd, l: &LedgerDay) -> Figures {
    Figures {
        account,
        ledger: l.booked,
        abandoned: l.abandoned,
        reported: l.reported,
    }
}

fn sum(days: impl Iterator<Item = LedgerDay>) -> LedgerDay {
    days.fold(LedgerDay::default(), |a, b| LedgerDay {
        booked: a.booked + b.booked,
        abandoned: a.abandoned + b.abandoned,
        reported: a.reported + b.reported,
        after: a.after + b.after,
        requests: a.requests + b.requests,
    })
}

/// Assesses `day` for the account behind `api_host` from its last sample (`None`
/// without one), differences within `threshold` counting as none.
pub async fn assess(
    store: &Store,
    api_host: &str,
    day: NaiveDate,
    threshold: Usd,
) -> anyhow::Result<Option<Assessed>> {
    let Some(sample) = store
        .last_sample(api_host, day)
        .await
        .context("reading the day's last sample of the account")?
    else {
        return Ok(None);
    };
    let Some(account) = sample.backlinks else {
        return Ok(None);
    };
    let ledger = store
        .ledger_day(api_host, day, sample.taken_at)
        .await
        .context("reading the ledger's day")?;
    let abandoned = store
        .abandoned_unsettled(api_host, day, sample.taken_at)
        .await
        .context("reading the day's abandoned calls")?;

    let total_ledger = sum(ledger.values().copied());
    let total = reconcile(figures(account, &total_ledger), threshold);
    let by_function = !sample.by_function.is_empty();
    let mut functions: Vec<String> = sample.by_function.keys().cloned().collect();
    if by_function {
        for f in ledger.keys() {
            if !functions.contains(f) {
                functions.push(f.clone());
            }
        }
        functions.sort();
    }

    let mut settlements = Vec::new();
    let mut settle = |function: &str,
                      verdict: &Verdict,
                      calls: Vec<&crate::store::reconcile::Abandoned>| {
        let Some(to) = verdict.settle_abandoned_to else {
            return;
        };
        let estimates: Vec<Usd> = calls.iter().map(|c| c.estimate).collect();
        let estimated: Usd = estimates.iter().copied().sum();
        let how = format!(
            "day {day} reconciled ({function}): the account charged {to} for {} booked at {estimated}; settled in proportion to the estimates",
            crate::words::count(calls.len(), "abandoned call")
        );
        for (call, settled) in calls.iter().zip(split(to, &estimates)) {
            settlements.push(Settlement {
                call_id: call.call_id,
                function: function.to_string(),
                estimate: call.estimate,
                settled: settled.min(call.estimate),
                how: how.clone(),
            });
        }
    };

    // Per function only when the account names every function with abandoned calls
    // (an account that names its functions otherwise is settled on its total).
    let per_function = by_function
        && abandoned
            .iter()
            .all(|c| sample.by_function.contains_key(&c.function));
    let mut function_rows = Vec::new();
    for f in &functions {
        let l = ledger.get(f).copied().unwrap_or_default();
        let a = sample.by_function.get(f).copied().unwrap_or(Usd::ZERO);
        let v = reconcile(figures(a, &l), threshold);
        if per_function {
            settle(
                f,
                &v,
                abandoned.iter().filter(|c| &c.function == f).collect(),
            );
        }
        function_rows.push((f.clone(), a, l, v));
    }
    if !per_function {
        settle("*", &total, abandoned.iter().collect());
    }

    let settled_of = |f: Option<&str>| -> Usd {
        settlements
            .iter()
            .filter(|s| {
                f.is_none_or(|f| {
                    // A total-only settlement names `*`; per function, its own name.
                    s.function == f
                })
            })
            .map(|s| s.settled - s.estimate)
            .sum()
    };
    let row = |function: &str, account: Usd, l: &LedgerDay, v: &Verdict, settlement: Usd| {
        let mut explanation = v.explanation.clone();
        if !l.after.is_zero() {
            explanation.push_str(&format!(
                "; {} booked after the day's last sample ({} UTC) is not in the account's figure",
                l.after,
                sample.taken_at.format("%H:%M")
            ));
        }
        if sample.sandbox {
            explanation.push_str("; a sandbox's account: not real money");
        }
        Reconciled {
            day,
            api_host: api_host.to_string(),
            function: function.to_string(),
            sandbox: sample.sandbox,
            sampled_at: sample.taken_at,
            account_usd: account,
            ledger_usd: l.booked,
            abandoned_usd: l.abandoned,
            after_sample_usd: l.after,
            difference_usd: v.difference,
            settlement_usd: settlement,
            kind: v.kind.as_str().to_string(),
            explanation,
        }
    };
    let mut rows = vec![row("*", account, &total_ledger, &total, settled_of(None))];
    for (f, a, l, v) in &function_rows {
        rows.push(row(f, *a, l, v, settled_of(Some(f))));
    }
    Ok(Some(Assessed {
        rows,
        settlements,
        total,
        sample,
        ledger_requests: total_ledger.requests,
    }))
}

/// A day reconciled and written by this process.
#[derive(Clone, Debug)]
pub struct Closed {
    pub assessed: Assessed,
}

/// Reconciles every day before `today` sampled for `api_host` and not reconciled yet,
/// oldest first (the caller passes a `today` late enough that no request of those days
/// can still be answered: one still `sent` is settled as abandoned): each written with its settlements in one transaction (a day another
/// process wrote first is left as it wrote it).
pub async fn reconcile_closed_days(
    store: &Store,
    api_host: &str,
    today: NaiveDate,
    threshold: Usd,
) -> anyhow::Result<Vec<Closed>> {
    let days = store
        .days_to_reconcile(api_host, today)
        .await
        .context("listing the days to reconcile")?;
    let mut out = Vec::new();
    for day in days {
        let Some(assessed) = assess(store, api_host, day, threshold).await? else {
            continue;
        };
        if store
            .write_reconciliation(&assessed.rows, &assessed.settlements)
            .await
            .with_context(|| format!("writing the reconciliation of {day}"))?
        {
            out.push(Closed { assessed });
        }
    }
    Ok(out)
}

/// Whether the account spent more than the ledger explains: another consumer.
pub fn another_consumer(v: &Verdict, threshold: Usd) -> Option<Usd> {
    (v.kind == Kind::AnotherConsumer && v.over(threshold)).then_some(v.left)
}

/// What other consumers of the account spent on `day` as its last sample says: the
/// account's spend (all APIs: it is the account's money) beyond the ledger's answered
/// calls up to the sample (calls in flight then count as others', the safe side);
/// `None` without a sample.
pub async fn others_spent(
    store: &Store,
    api_host: &str,
    day: NaiveDate,
) -> anyhow::Result<Option<Usd>> {
    let Some(sample) = store
        .last_sample(api_host, day)
        .await
        .context("reading the day's last sample of the account")?
    else {
        return Ok(None);
    };
    let Some(account) = sample.spent.or(sample.backlinks) else {
        return Ok(None);
    };
    let ledger = sum(store
        .ledger_day(api_host, day, sample.taken_at)
        .await
        .context("reading the ledger's day")?
        .into_values());
    let answered = ledger.booked - ledger.abandoned;
    Ok(Some((account - answered).max(Usd::ZERO)))
}

/// With `budget.scope = "account"`: counts what others spent today in today's daily
/// budgets; returns (others, the change counted now).
pub async fn count_others_today(
    store: &Store,
    api_host: &str,
    today: NaiveDate,
) -> anyhow::Result<Option<(Usd, Usd)>> {
    let Some(others) = others_spent(store, api_host, today).await? else {
        return Ok(None);
    };
    store
        .prepare_budgets(None)
        .await
        .context("preparing today's budgets")?;
    let change = store
        .count_others(api_host, today, others)
        .await
        .context("counting others' spend in today's budgets")?;
    Ok(Some((others, change)))
}
