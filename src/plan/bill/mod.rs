//! The bill: what the jobs' schedules will cost per fire, per day and per month, the
//! share of each budget that uses, and the cheaper way (waste a user would not see).
//! Pure: jobs, prices, caps and the instant "now" in, a [`Bill`] out; `linkledger plan`
//! prints it as text (`cli::plan`) or as JSON (serde). The waste it finds is `waste`'s.
//!
//! Definitions:
//! - A *month* is the coming 30 days. A collection's fires per month are its schedule's
//!   fires in `(now, now + 30 days]`, counted with croner in the job's time zone, so a
//!   daily 02:30 in Europe/Berlin fires 30 times across a daylight saving change, as
//!   with crontab.
//! - Cost per fire: the calls one fire makes, packed as `run` packs them
//!   ([`crate::plan::plan_collection`] on now's UTC day), at the given [`Prices`].
//! - Cost per month = cost per fire × fires per month; per day = per month / 30,
//!   rounded to $0.00001. Totals add the monthly figures, then divide.
//! - *Bought once*: when a fire would buy what a fire of another collection already
//!   bought the same UTC day (same endpoint, target and request parameters), linkledger
//!   reuses that answer, so the second one costs nothing for those targets. What a
//!   collection pays is its cost minus what it reuses; budgets are measured against
//!   what is paid.
//! - *Stored already*: a history or timeseries collection (`refetch = "missing"`, the
//!   default) asks only for the periods not held, plus the open one: the walk starts
//!   from what the database holds (when `plan` can read it) and holds what each fire
//!   buys, as the store does, so a daily fire after the first buys a day or two.
//! - *Finer than the data*: a collection that fires twice in one period of its data
//!   (history: a month; a timeseries: its `group_range`, `year` counted as `month`;
//!   summary and the bulk endpoints: a day, the grain they are stored at), on its
//!   schedule's calendar, buys the same thing again. At stake: cost per fire × (fires per month − the fires the data
//!   needs: 1 a month for monthly data, 30/7 for weekly, 30 for daily).
//! - *Bulk alternative*: a summary collection of at least [`SUMMARY_BULK_THRESHOLD`]
//!   targets, beside what `bulk_ranks` + `bulk_backlinks` + `bulk_referring_domains`
//!   over the same targets on the same schedule would cost: an option, not a verdict.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Serialize, Serializer};

use crate::api::Endpoint;
use crate::api::Target;
use crate::api::endpoint::GroupRange;
use crate::api::prices::Prices;
use crate::jobs::{Collection, Job, Params};
use crate::money::Usd;
use crate::money::budget::Scope;
use crate::plan::{CallSpec, plan_collection};
use crate::warehouse::coverage::{Stored, task_key};

mod listings;
mod waste;

use crate::plan::listing::{ListingSizes, SizeSource};
use waste::cheaper;

/// Days in a bill's month.
pub const WINDOW_DAYS: i64 = 30;
/// A summary collection with at least this many targets gets the bulk alternative
/// beside it.
pub const SUMMARY_BULK_THRESHOLD: usize = 100;
/// The bulk endpoints that give a summary's rank, backlinks and referring domains.
pub const BULK_ALTERNATIVE: [Endpoint; 3] = [
    Endpoint::BulkRanks,
    Endpoint::BulkBacklinks,
    Endpoint::BulkReferringDomains,
];
/// More than a 5-field cron expression can fire in 30 days (once a minute: 43,200).
const MAX_FIRES: usize = 50_000;

/// The account's budgets (`budget.daily_usd`, `budget.monthly_usd`); a job's own
/// monthly budget comes with the job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountCaps {
    pub daily_usd: Option<Usd>,
    pub monthly_usd: Option<Usd>,
    /// The account's own daily spending limit (`money.limits.day`), as last sampled.
    pub account_daily_usd: Option<Usd>,
}

/// What the selected jobs will cost over the coming 30 days.
#[derive(Clone, Debug, Serialize)]
pub struct Bill {
    /// The instant the bill starts from.
    pub now: DateTime<Utc>,
    /// `now` + 30 days: fires are counted in `(now, until]`.
    pub until: DateTime<Utc>,
    pub window_days: i64,
    /// Which prices the estimates use ([`Prices::source`]).
    pub prices: String,
    /// Why those prices, when the caller knows (e.g. "no database configured").
    pub prices_note: Option<String>,
    /// The one job shown, when the bill was asked for one job.
    pub only_job: Option<String>,
    pub jobs: Vec<JobBill>,
    /// Over the jobs shown.
    pub total: Totals,
    /// The account's caps against `total`.
    pub budgets: Vec<BudgetUse>,
    /// The account's own limits beyond its daily spending cap as last sampled
    /// (`None`: none sampled).
    pub account_limits: Option<AccountLimitsBill>,
    pub cheaper: Cheaper,
}

/// The account's own limits beyond its daily spending cap (`money.limits.minute`,
/// `rates.limits.minute`, `rates.limits.day`) as the daemon last sampled them, beside
/// what is configured.
#[derive(Clone, Debug, Serialize)]
pub struct AccountLimitsBill {
    #[serde(serialize_with = "money_opt")]
    pub money_minute_usd: Option<Usd>,
    pub rate_minute: Option<u32>,
    /// `rates.limits.day`: requests a UTC day.
    pub rate_day: Option<u64>,
    /// `api.max_per_minute`.
    pub configured_per_minute: u32,
}

fn money_opt<S: Serializer>(v: &Option<Usd>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => money(v, s),
        None => s.serialize_none(),
    }
}

/// One job's collections and totals.
#[derive(Clone, Debug, Serialize)]
pub struct JobBill {
    pub name: String,
    /// IANA name of the zone its schedules run in (`UTC` when the job sets none).
    pub timezone: String,
    pub collections: Vec<CollectionBill>,
    pub total: Totals,
    /// The job's `budget_monthly_usd` against what it pays per month.
    pub budget: Option<BudgetUse>,
    /// What it pays per month is more than its `budget_monthly_usd`.
    pub over_budget: bool,
}

/// One collection: one fire, and the month of fires its schedule makes.
#[derive(Clone, Debug, Serialize)]
pub struct CollectionBill {
    pub name: String,
    pub endpoint: Endpoint,
    pub schedule: String,
    pub targets: usize,
    pub calls_per_fire: usize,
    pub rows_per_fire: i64,
    #[serde(serialize_with = "money")]
    pub cost_per_fire: Usd,
    /// RFC 3339 with the offset of the job's time zone.
    pub next_fire: Option<String>,
    /// The same instant for people: `2026-03-29 03:00 CEST`.
    pub next_fire_local: Option<String>,
    pub fires_per_month: i64,
    #[serde(serialize_with = "money")]
    pub cost_per_day: Usd,
    /// cost_per_fire × fires_per_month.
    #[serde(serialize_with = "money")]
    pub cost_per_month: Usd,
    /// What fires of other collections already bought the same UTC day, reused.
    #[serde(serialize_with = "money")]
    pub bought_once_per_month: Usd,
    /// History and timeseries periods held already and so not asked again (the
    /// collection's `refetch = "missing"`): what the database holds now, and what the
    /// window's earlier fires will have stored.
    #[serde(serialize_with = "money")]
    pub stored_per_month: Usd,
    /// cost_per_month − bought_once_per_month − stored_per_month.
    #[serde(serialize_with = "money")]
    pub pays_per_month: Usd,
    /// Of pays_per_month, what asking again for periods stored before they settled
    /// costs (the collection's `settle`): the same fires with every ended period final
    /// on its first answer would pay this much less. Part of the bill, not on top.
    #[serde(serialize_with = "money")]
    pub settle_per_month: Usd,
    /// A list collection: its listings' sizes as stored, and their cost in full.
    pub listing: Option<ListingBill>,
}

/// A list collection's listings in one fire. `rows_per_fire` and `cost_per_fire` are
/// what the fire buys: each listing's stored size within `max_rows`, `max_rows` where
/// nothing stored sizes it.
#[derive(Clone, Debug, Serialize)]
pub struct ListingBill {
    pub max_rows: u64,
    /// Listings one fire makes: one a target (an intersection's targets together).
    pub listings: usize,
    /// Listings whose size is stored, by where it was read (`plan::listing`).
    pub sized: BTreeMap<String, usize>,
    /// Listings nothing stored sizes yet (no summary count, no earlier fire): planned
    /// at `max_rows`.
    pub unsized_listings: usize,
    /// The rows the listings hold as stored, not cut by `max_rows`.
    pub full_rows_per_fire: i64,
    /// What buying `full_rows_per_fire` costs.
    #[serde(serialize_with = "money")]
    pub full_cost_per_fire: Usd,
    /// full_cost_per_fire × fires_per_month.
    #[serde(serialize_with = "money")]
    pub full_cost_per_month: Usd,
    /// `max_rows` cuts at least one listing short of what it holds.
    pub cut_by_max_rows: bool,
}

/// Sums over collections.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// One fire of every collection.
    pub calls_per_fire: usize,
    /// One fire of every collection.
    #[serde(serialize_with = "money")]
    pub cost_per_fire: Usd,
    pub fires_per_month: i64,
    pub calls_per_month: i64,
    #[serde(serialize_with = "money")]
    pub cost_per_day: Usd,
    #[serde(serialize_with = "money")]
    pub cost_per_month: Usd,
    #[serde(serialize_with = "money")]
    pub bought_once_per_month: Usd,
    #[serde(serialize_with = "money")]
    pub stored_per_month: Usd,
    /// What is paid: cost − bought once − stored, per day (/ 30) and per month.
    #[serde(serialize_with = "money")]
    pub pays_per_day: Usd,
    #[serde(serialize_with = "money")]
    pub pays_per_month: Usd,
    /// Of pays_per_month, what asking again for unsettled periods costs.
    #[serde(serialize_with = "money")]
    pub settle_per_month: Usd,
    /// The UTC day of the window that pays the most.
    pub busiest_day: Option<DayCost>,
    /// The UTC day of the window that makes the most calls (against the account's
    /// requests per day; calls reused within a day count too).
    pub busiest_calls_day: Option<DayCalls>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DayCalls {
    pub day: NaiveDate,
    pub calls: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DayCost {
    pub day: NaiveDate,
    #[serde(serialize_with = "money")]
    pub cost: Usd,
}

/// A budget against the projection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BudgetUse {
    /// `budget.daily_usd`, `budget.monthly_usd` or `budget_monthly_usd` (a job's).
    pub budget: String,
    #[serde(serialize_with = "money")]
    pub cap: Usd,
    /// What is paid per day (daily cap) or per month (monthly caps).
    #[serde(serialize_with = "money")]
    pub projected: Usd,
    /// projected / cap in percent, to 0.1; `None` for a zero cap.
    pub share_percent: Option<Decimal>,
    pub over: bool,
}

/// The cheaper way.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cheaper {
    /// List collections whose listings in full cost more a month than their budget.
    pub large_listings: Vec<LargeListing>,
    pub finer_than_data: Vec<FinerThanData>,
    pub bought_once: Vec<BoughtOnce>,
    pub bulk_alternatives: Vec<BulkAlternative>,
    /// The sum of the finer-than-data stakes.
    #[serde(serialize_with = "money")]
    pub finer_than_data_per_month: Usd,
    /// The sum of the bought-once savings (already out of what is paid).
    #[serde(serialize_with = "money")]
    pub bought_once_per_month: Usd,
}

/// A list collection whose listings in full, at its cadence, cost more a month than
/// the strictest budget over it, with cheaper shapes.
#[derive(Clone, Debug, Serialize)]
pub struct LargeListing {
    pub job: String,
    pub collection: String,
    pub endpoint: Endpoint,
    pub schedule: String,
    pub fires_per_month: i64,
    /// The budget: `budget_monthly_usd` (the job's), `budget.monthly_usd`, or a daily
    /// cap × 30.
    pub budget: String,
    #[serde(serialize_with = "money")]
    pub cap_per_month: Usd,
    pub full_rows_per_fire: i64,
    #[serde(serialize_with = "money")]
    pub full_cost_per_month: Usd,
    /// What the collection pays a month as its `max_rows` bounds it.
    #[serde(serialize_with = "money")]
    pub pays_per_month: Usd,
    /// `max_rows` keeps a fire short of the whole listing.
    pub cut_by_max_rows: bool,
    pub shapes: Vec<ListingShape>,
}

/// A cheaper shape of a listing, and what it costs a month.
#[derive(Clone, Debug, Serialize)]
pub struct ListingShape {
    /// The job file's change, e.g. `mode = "one_per_domain"`.
    pub change: String,
    pub rows_per_fire: i64,
    #[serde(serialize_with = "money")]
    pub cost_per_month: Usd,
    /// Within the budget.
    pub fits: bool,
}

/// A schedule that fires more often than the data it buys changes.
#[derive(Clone, Debug, Serialize)]
pub struct FinerThanData {
    pub job: String,
    pub collection: String,
    pub endpoint: Endpoint,
    pub schedule: String,
    /// `day`, `week` or `month`: one answer per this period is all the data holds.
    pub data_period: &'static str,
    pub why: String,
    pub fires_per_month: i64,
    /// Fires per month the data needs (1, 30/7 or 30), to 0.01.
    pub needed_per_month: Decimal,
    #[serde(serialize_with = "money")]
    pub cost_per_fire: Usd,
    /// cost_per_fire × (fires_per_month − needed_per_month).
    #[serde(serialize_with = "money")]
    pub stake_per_month: Usd,
    /// A schedule that buys each period once.
    pub suggested_schedule: String,
}

/// A collection whose fires reuse what another collection bought the same UTC day.
#[derive(Clone, Debug, Serialize)]
pub struct BoughtOnce {
    pub job: String,
    pub collection: String,
    pub endpoint: Endpoint,
    /// Distinct targets reused at least once.
    pub targets: usize,
    /// The collections that bought them first, as `job/collection`.
    pub bought_by: Vec<String>,
    /// Fires over the month that reuse something.
    pub fires: i64,
    #[serde(serialize_with = "money")]
    pub saves_per_month: Usd,
}

/// A large summary collection beside its bulk alternative.
#[derive(Clone, Debug, Serialize)]
pub struct BulkAlternative {
    pub job: String,
    pub collection: String,
    pub targets: usize,
    pub fires_per_month: i64,
    #[serde(serialize_with = "money")]
    pub summary_per_day: Usd,
    #[serde(serialize_with = "money")]
    pub summary_per_month: Usd,
    pub endpoints: Vec<Endpoint>,
    #[serde(serialize_with = "money")]
    pub bulk_per_day: Usd,
    #[serde(serialize_with = "money")]
    pub bulk_per_month: Usd,
    /// summary_per_month − bulk_per_month.
    #[serde(serialize_with = "money")]
    pub difference_per_month: Usd,
}

/// Money in JSON: an exact decimal string, never a float.
fn money<S: Serializer>(v: &Usd, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.decimal().normalize().to_string())
}

/// per month / 30, to $0.00001.
pub fn per_day(per_month: Usd) -> Usd {
    Usd((per_month.decimal() / Decimal::from(WINDOW_DAYS))
        .round_dp_with_strategy(5, RoundingStrategy::MidpointAwayFromZero))
}

fn round5(d: Decimal) -> Usd {
    Usd(d.round_dp_with_strategy(5, RoundingStrategy::MidpointAwayFromZero))
}

fn share(projected: Usd, cap: Usd) -> Option<Decimal> {
    (!cap.is_zero()).then(|| {
        (projected.decimal() * Decimal::from(100) / cap.decimal())
            .round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero)
    })
}

fn budget_use(name: &str, cap: Usd, projected: Usd) -> BudgetUse {
    BudgetUse {
        budget: name.to_string(),
        cap,
        projected,
        share_percent: share(projected, cap),
        over: projected > cap,
    }
}

fn cost_of(calls: &[CallSpec], prices: &Prices) -> Usd {
    calls.iter().map(|c| c.planned_cost(prices)).sum()
}

/// One collection with its fires, and what reuse saves it.
struct Line<'a> {
    job: usize,
    collection: &'a Collection,
    calls: Vec<CallSpec>,
    cost_per_fire: Usd,
    fires: Vec<DateTime<Utc>>,
    saves: Usd,
    saves_by_day: BTreeMap<NaiveDate, Usd>,
    /// What periods held already take off the line's fires.
    stored_saves: Usd,
    stored_by_day: BTreeMap<NaiveDate, Usd>,
    /// What asking again for periods stored before they settled costs the line.
    settle_costs: Usd,
    reused_targets: BTreeSet<Target>,
    bought_by: BTreeSet<usize>,
    reuse_fires: i64,
}

impl Line<'_> {
    fn fires_per_month(&self) -> i64 {
        self.fires.len() as i64
    }

    fn cost_per_month(&self) -> Usd {
        self.cost_per_fire * self.fires_per_month()
    }

    fn label(&self, jobs: &[Job]) -> String {
        format!("{}/{}", jobs[self.job].name, self.collection.name)
    }
}

/// The bill of `jobs` (all of them, so that reuse across jobs is seen) over the 30
/// days after `now`, showing only the job named `only_job` when given, for a database
/// that holds no history or timeseries periods yet.
pub fn compute(
    jobs: &[Job],
    only_job: Option<&str>,
    prices: &Prices,
    caps: AccountCaps,
    now: DateTime<Utc>,
) -> Bill {
    compute_with_stored(
        jobs,
        only_job,
        prices,
        caps,
        now,
        Stored::default(),
        &ListingSizes::default(),
    )
}

/// [`compute`] from what the database holds now: the periods `stored`, and what
/// sizes the listings (`listings`).
pub fn compute_with_stored(
    jobs: &[Job],
    only_job: Option<&str>,
    prices: &Prices,
    caps: AccountCaps,
    now: DateTime<Utc>,
    stored: Stored,
    listings: &ListingSizes,
) -> Bill {
    let today = now.date_naive();
    let until = now + chrono::Duration::days(WINDOW_DAYS);
    let mut lines: Vec<Line> = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        for c in &job.collections {
            let mut calls = plan_collection(c, today);
            listings.apply(&mut calls);
            let cost_per_fire = cost_of(&calls, prices);
            lines.push(Line {
                job: j,
                collection: c,
                calls,
                cost_per_fire,
                fires: c.schedule.fires_between(now, until, MAX_FIRES),
                saves: Usd::ZERO,
                saves_by_day: BTreeMap::new(),
                stored_saves: Usd::ZERO,
                stored_by_day: BTreeMap::new(),
                settle_costs: Usd::ZERO,
                reused_targets: BTreeSet::new(),
                bought_by: BTreeSet::new(),
                reuse_fires: 0,
            });
        }
    }
    simulate_reuse(&mut lines, prices, stored, listings);

    let shown = |l: &Line| only_job.is_none_or(|name| jobs[l.job].name == name);
    let mut job_bills = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        if only_job.is_some_and(|name| job.name != name) {
            continue;
        }
        let mine: Vec<&Line> = lines.iter().filter(|l| l.job == j).collect();
        let total = totals(&mine);
        let budget = job
            .budget_monthly_usd
            .map(|cap| budget_use("budget_monthly_usd", Usd(cap), total.pays_per_month));
        job_bills.push(JobBill {
            name: job.name.clone(),
            timezone: job
                .timezone
                .map_or_else(|| "UTC".to_string(), |tz| tz.name().to_string()),
            collections: mine
                .iter()
                .map(|l| collection_bill(l, now, prices))
                .collect(),
            over_budget: budget.as_ref().is_some_and(|b| b.over),
            budget,
            total,
        });
    }
    let shown_lines: Vec<&Line> = lines.iter().filter(|l| shown(l)).collect();
    let total = totals(&shown_lines);
    let mut budgets = Vec::new();
    if let Some(cap) = caps.daily_usd {
        budgets.push(budget_use(&Scope::Daily.setting(), cap, total.pays_per_day));
    }
    if let Some(cap) = caps.monthly_usd {
        budgets.push(budget_use(
            &Scope::Monthly.setting(),
            cap,
            total.pays_per_month,
        ));
    }
    if let Some(cap) = caps.account_daily_usd {
        budgets.push(budget_use(
            &format!("{} (the account's own)", Scope::AccountDaily.setting()),
            cap,
            total.pays_per_day,
        ));
    }
    let mut cheaper = cheaper(jobs, &lines, &shown_lines, prices, today);
    cheaper.large_listings = shown_lines
        .iter()
        .filter_map(|l| listings::large_listing(l, jobs, prices, caps, listings))
        .collect();
    Bill {
        now,
        until,
        window_days: WINDOW_DAYS,
        prices: prices.source(),
        prices_note: None,
        only_job: only_job.map(str::to_string),
        jobs: job_bills,
        total,
        budgets,
        account_limits: None,
        cheaper,
    }
}

fn collection_bill(l: &Line, now: DateTime<Utc>, prices: &Prices) -> CollectionBill {
    let c = l.collection;
    let next = c.schedule.next_after(now);
    let tz = c.schedule.timezone();
    let cost_per_month = l.cost_per_month();
    CollectionBill {
        name: c.name.clone(),
        endpoint: c.endpoint,
        schedule: c.schedule.as_str().to_string(),
        targets: c.targets.len(),
        calls_per_fire: l.calls.iter().map(CallSpec::planned_calls).sum::<i64>() as usize,
        rows_per_fire: l.calls.iter().map(CallSpec::planned_rows).sum(),
        cost_per_fire: l.cost_per_fire,
        next_fire: next.map(|t| rfc3339_in(t, tz)),
        next_fire_local: next.map(|t| local(t, tz)),
        fires_per_month: l.fires_per_month(),
        cost_per_day: per_day(cost_per_month),
        cost_per_month,
        bought_once_per_month: l.saves,
        stored_per_month: l.stored_saves,
        pays_per_month: cost_per_month - l.saves - l.stored_saves,
        settle_per_month: l.settle_costs,
        listing: listings::listing_bill(l, prices),
    }
}

fn rfc3339_in(t: DateTime<Utc>, tz: Option<Tz>) -> String {
    match tz {
        Some(tz) => t
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        None => t.to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

fn local(t: DateTime<Utc>, tz: Option<Tz>) -> String {
    match tz {
        Some(tz) => t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
        None => t.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

fn totals(lines: &[&Line]) -> Totals {
    let mut t = Totals::default();
    let mut by_day: BTreeMap<NaiveDate, Usd> = BTreeMap::new();
    let mut calls_by_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for l in lines {
        let calls_per_fire = l.calls.iter().map(CallSpec::planned_calls).sum::<i64>();
        t.calls_per_fire += calls_per_fire as usize;
        t.cost_per_fire += l.cost_per_fire;
        t.fires_per_month += l.fires_per_month();
        t.calls_per_month += calls_per_fire * l.fires_per_month();
        t.cost_per_month += l.cost_per_month();
        t.bought_once_per_month += l.saves;
        t.stored_per_month += l.stored_saves;
        t.settle_per_month += l.settle_costs;
        for f in &l.fires {
            *by_day.entry(f.date_naive()).or_default() += l.cost_per_fire;
            *calls_by_day.entry(f.date_naive()).or_default() += calls_per_fire;
        }
        for (day, saved) in l.saves_by_day.iter().chain(&l.stored_by_day) {
            let cost = by_day.entry(*day).or_default();
            *cost = *cost - *saved;
        }
    }
    t.cost_per_day = per_day(t.cost_per_month);
    t.pays_per_month = t.cost_per_month - t.bought_once_per_month - t.stored_per_month;
    t.pays_per_day = per_day(t.pays_per_month);
    t.busiest_day =
        busiest(by_day, |cost| !cost.is_zero()).map(|(day, cost)| DayCost { day, cost });
    t.busiest_calls_day =
        busiest(calls_by_day, |calls| *calls > 0).map(|(day, calls)| DayCalls { day, calls });
    t
}

/// The day with the most of `by_day` among those `counts` keeps; the earliest of
/// equally busy days.
fn busiest<T: Ord>(
    by_day: BTreeMap<NaiveDate, T>,
    counts: impl Fn(&T) -> bool,
) -> Option<(NaiveDate, T)> {
    by_day
        .into_iter()
        .filter(|(_, v)| counts(v))
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
}

/// Walks every fire of the window in time order the way the scheduler plans and the
/// executor buys. A history or timeseries collection asks only for what is not held
/// (`periods`: the database's periods, then what each fire stores). A call (endpoint and
/// task) bought on a UTC day is reused by every later call of the same endpoint and
/// task that day, whether another collection's or this collection's own later fire. A
/// bulk call is reused only whole (the same targets in one task).
///
/// Alongside, the same fires are walked over `periods` with every ended period final on
/// its first answer (no settle time): what they would buy less is the settle's cost.
fn simulate_reuse(
    lines: &mut [Line],
    prices: &Prices,
    mut periods: Stored,
    listings: &ListingSizes,
) {
    let mut unsettling = periods.clone();
    let mut events: Vec<(DateTime<Utc>, usize)> = lines
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.fires.iter().map(move |f| (*f, i)))
        .collect();
    events.sort();
    let mut day: Option<NaiveDate> = None;
    // (endpoint, task) -> the line that bought it today.
    let mut bought: HashMap<(Endpoint, String), usize> = HashMap::new();
    // The calls of a line planned on a day: (key, cost, targets).
    type Planned = Vec<((Endpoint, String), Usd, Vec<Target>)>;
    let mut planned: HashMap<(usize, NaiveDate), Planned> = HashMap::new();
    let key_of = |call: &CallSpec| (call.endpoint, task_key(&call.task));
    for (at, i) in events {
        let fire_day = at.date_naive();
        if day != Some(fire_day) {
            bought.clear();
            planned.clear();
            day = Some(fire_day);
        }
        let c = lines[i].collection;
        let incremental = crate::warehouse::coverage::is_ranged(c.endpoint)
            && c.refetch == crate::jobs::Refetch::Missing;
        let narrowed;
        let calls: &Planned = if incremental {
            // What is held changes from fire to fire: planned anew each time.
            let all = plan_collection(c, fire_day);
            let full = cost_of(&all, prices);
            let reach = crate::plan::Reach::of(c);
            let without_settle = unsettling.narrow_calls(all.clone(), fire_day, reach).calls;
            let to_buy = periods.narrow_calls(all, fire_day, reach).calls;
            let settle_cost =
                (cost_of(&to_buy, prices) - cost_of(&without_settle, prices)).max(Usd::ZERO);
            lines[i].settle_costs += settle_cost;
            for call in &without_settle {
                if let Some(answered) = crate::warehouse::coverage::answered_in_full(
                    call.endpoint,
                    &call.task,
                    at,
                    std::time::Duration::ZERO,
                ) {
                    unsettling.record(&answered);
                }
            }
            // Reaching back can cost more than the window: nothing is saved then.
            let stored = (full - cost_of(&to_buy, prices)).max(Usd::ZERO);
            if !stored.is_zero() {
                let line = &mut lines[i];
                line.stored_saves += stored;
                *line.stored_by_day.entry(fire_day).or_default() += stored;
            }
            // Answers bought or reused alike store their periods (each answer assumed
            // to hold every period it asks for; those not settled are asked again).
            for call in &to_buy {
                if let Some(answered) = crate::warehouse::coverage::answered_in_full(
                    call.endpoint,
                    &call.task,
                    at,
                    c.settle,
                ) {
                    periods.record(&answered);
                }
            }
            narrowed = to_buy
                .into_iter()
                .map(|call| (key_of(&call), call.planned_cost(prices), call.targets))
                .collect::<Planned>();
            &narrowed
        } else {
            planned.entry((i, fire_day)).or_insert_with(|| {
                let mut calls = plan_collection(c, fire_day);
                listings.apply(&mut calls);
                calls
                    .into_iter()
                    .map(|call| (key_of(&call), call.planned_cost(prices), call.targets))
                    .collect()
            })
        };
        let mut saved = Usd::ZERO;
        let mut reused = Vec::new();
        for (key, cost, targets) in calls.iter() {
            match bought.get(key) {
                Some(&buyer) => {
                    saved += *cost;
                    reused.push((targets.clone(), buyer));
                }
                None => {
                    bought.insert(key.clone(), i);
                }
            }
        }
        if reused.is_empty() {
            continue;
        }
        let line = &mut lines[i];
        line.saves += saved;
        *line.saves_by_day.entry(fire_day).or_default() += saved;
        line.reuse_fires += 1;
        for (targets, buyer) in reused {
            line.reused_targets.extend(targets);
            line.bought_by.insert(buyer);
        }
    }
}

#[cfg(test)]
mod tests;
