//! `plan`, the bill before anything runs, and `jobs check`, which validates the job
//! files and warns of expensive fires; the bill's text for people.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{NaiveDate, Utc};

use super::{Context, UsageError, load_jobs, today};
use crate::config::Config;
use crate::jobs::{self, Job};
use crate::money::Usd;
use crate::money::budget::Scope;
use crate::plan::bill::{Bill, BudgetUse, Cheaper, JobBill, ListingBill};
use crate::store::reconcile::SampledLimits;
use crate::words::count;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Only this job.
    #[arg(long)]
    job: Option<String>,
    /// The bill as JSON, for scripts (money as exact decimal strings).
    #[arg(long)]
    json: bool,
    /// The bill as of this instant instead of now (RFC 3339, e.g. 2026-03-29T00:00:00Z,
    /// or a date, 2026-03-29, meaning its midnight UTC): fires are counted over the 30
    /// days after it.
    #[arg(long, value_name = "TIME", value_parser = instant)]
    at: Option<chrono::DateTime<Utc>>,
}

/// `--at`: an RFC 3339 instant, or a date (its midnight, UTC).
fn instant(s: &str) -> Result<chrono::DateTime<Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    match s.parse::<chrono::NaiveDate>() {
        Ok(day) => Ok(day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()),
        Err(_) => Err(format!(
            "expected an instant like 2026-03-29T00:00:00Z or a date like 2026-03-29, found {s:?}"
        )),
    }
}

pub(super) async fn plan(cx: &Context, args: PlanArgs) -> anyhow::Result<ExitCode> {
    let cfg = cx.config()?;
    let jobs = load_jobs(&cfg)?;
    jobs::select(&jobs, args.job.as_deref()).map_err(UsageError)?;
    print_plan(
        &cfg,
        &jobs,
        args.job.as_deref(),
        args.json,
        args.at.unwrap_or_else(Utc::now),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// `jobs check`: every job file valid, or each problem as `file: field: why`.
pub(super) fn jobs_check(cx: &Context) -> anyhow::Result<ExitCode> {
    let cfg = cx.config()?;
    let jobs = load_jobs(&cfg)?;
    for warning in fire_cost_warnings(&cfg, &jobs, today()) {
        eprintln!("warning: {warning}");
    }
    for note in listing_notes(&jobs, today()) {
        println!("note: {note}");
    }
    let collections: usize = jobs.iter().map(|j| j.collections.len()).sum();
    if jobs.is_empty() {
        eprintln!(
            "warning: no job files in {} (jobs.dir, or LINKLEDGER_JOBS__DIR): nothing will be collected (start from jobs/template.toml.example, or the examples in examples/jobs/)",
            cfg.jobs.dir.display()
        );
    }
    println!(
        "ok: {} in {}, {}, {}",
        count(jobs.len() as i64, "job file"),
        cfg.jobs.dir.display(),
        count(jobs.len() as i64, "job"),
        count(collections as i64, "collection")
    );
    Ok(ExitCode::SUCCESS)
}

/// `plan`: the bill of `jobs` (all loaded, so that answers bought once across jobs are
/// seen), showing `only` when given. Reads the stored price list when a database is
/// configured and reachable, never writes, never calls the API.
async fn print_plan(
    cfg: &Config,
    jobs: &[Job],
    only: Option<&str>,
    json: bool,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let (mut prices, note, held, account, listings) =
        plan_prices(cfg, jobs, now.date_naive()).await;
    // A gateway's flat price is what the user pays, whatever the price list says.
    prices.flat_per_call = cfg.api.price_per_call;
    let caps = crate::plan::bill::AccountCaps {
        daily_usd: cfg.budget.daily_usd,
        monthly_usd: cfg.budget.monthly_usd,
        account_daily_usd: account.money_day,
    };
    let mut bill =
        crate::plan::bill::compute_with_stored(jobs, only, &prices, caps, now, held, &listings);
    bill.prices_note = note;
    bill.account_limits = account
        .any()
        .then_some(crate::plan::bill::AccountLimitsBill {
            money_minute_usd: account.money_minute,
            rate_minute: account.rate_minute,
            rate_day: account.rate_day,
            configured_per_minute: cfg.api.max_per_minute,
        });
    if json {
        println!("{}", serde_json::to_string_pretty(&bill)?);
    } else {
        print!("{}", render_bill(&bill));
    }
    Ok(())
}

/// What `plan` reads from the database, when it is configured and answers.
type Held = (
    crate::api::prices::Prices,
    Option<String>,
    crate::warehouse::coverage::Stored,
    SampledLimits,
    crate::plan::listing::ListingSizes,
);

/// The prices `plan` estimates with: the newest price list `appendix/user_data` gave
/// (stored by the daemon) when the database is configured and answers, else the list
/// price; and why, for the output; with what is stored of the periods, the account's
/// daily limit and the sizes of the jobs' listings (planned on `today`). Connects
/// without migrating: `plan` writes nothing.
async fn plan_prices(cfg: &Config, jobs: &[Job], today: NaiveDate) -> Held {
    use crate::api::prices::Prices;
    let none = crate::warehouse::coverage::Stored::default;
    let Some(url) = cfg.database_url() else {
        return (
            Prices::default(),
            Some("no database configured".into()),
            none(),
            SampledLimits::default(),
            Default::default(),
        );
    };
    let connect = crate::store::Store::connect(url, 1);
    let store = match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(store)) => store,
        Ok(Err(e)) => {
            return (
                Prices::default(),
                Some(format!("the database did not answer: {e}")),
                none(),
                SampledLimits::default(),
                Default::default(),
            );
        }
        Err(_) => {
            return (
                Prices::default(),
                Some("the database did not answer within 3 s".into()),
                none(),
                SampledLimits::default(),
                Default::default(),
            );
        }
    };
    // The account behind the configured API first, else the newest of any real one.
    let host = cfg.api.base_url.host_str().map(str::to_string);
    let mut snapshot = store.latest_account(host.as_deref()).await;
    if matches!(snapshot, Ok(None)) {
        snapshot = store
            .latest_account(None)
            .await
            .map(|s| s.filter(|s| !s.sandbox));
    }
    // What history and timeseries periods are stored (none in a database that was
    // never migrated).
    // The account's own daily limit, as the daemon last sampled it.
    let host_port = cfg
        .api
        .base_url
        .host_str()
        .map(|h| match cfg.api.base_url.port() {
            Some(port) => format!("{h}:{port}"),
            None => h.to_string(),
        });
    let account = match &host_port {
        Some(h) => store.latest_limits(h).await.unwrap_or_default(),
        None => SampledLimits::default(),
    };
    let held = store.stored().await.unwrap_or_else(|e| {
        tracing::debug!(error = %e, "no coverage readable; planning as if nothing is stored");
        none()
    });
    // How big the listings are: the last fire's totals, the summary's counts.
    let listings = store
        .listing_sizes(&crate::plan::listing::listing_calls(jobs, today))
        .await
        .unwrap_or_else(|e| {
            tracing::debug!(error = %e, "no listing sizes readable; planning listings at max_rows");
            Default::default()
        });
    store.pool().close().await;
    let (prices, note) = match snapshot {
        Ok(Some(s)) if !s.account.prices.is_empty() => {
            (s.prices(), Some(format!("read from {}", s.api_host)))
        }
        Ok(_) => (
            Prices::default(),
            Some("no price list stored yet: the daemon reads it from appendix/user_data".into()),
        ),
        Err(e) => (
            Prices::default(),
            Some(format!("no price list readable in the database: {e}")),
        ),
    };
    (prices, note, held, account, listings)
}

/// `jobs check`'s warnings about collections one fire of which would cost more than
/// `jobs.fire_cost_warning_usd` (at the list price, or the gateway's flat price), as
/// `file: collect[N]: why` with the figure.
fn fire_cost_warnings(cfg: &Config, jobs: &[Job], today: NaiveDate) -> Vec<String> {
    let prices = crate::api::prices::Prices {
        flat_per_call: cfg.api.price_per_call,
        ..crate::api::prices::Prices::default()
    };
    let over = cfg.jobs.fire_cost_warning_usd;
    let mut out = Vec::new();
    for job in jobs {
        for (i, c) in job.collections.iter().enumerate() {
            let calls = crate::plan::plan_collection(c, today);
            let cost: Usd = calls.iter().map(|call| call.planned_cost(&prices)).sum();
            if cost > over {
                out.push(format!(
                    "{}: collect[{}]: one fire of {} makes {} estimated at {cost} ({}), more than \
                     jobs.fire_cost_warning_usd = {over}; `linkledger plan` shows the month's bill",
                    job.file.display(),
                    i + 1,
                    c.name,
                    count(calls.len() as i64, "call"),
                    prices.source()
                ));
            }
        }
    }
    out
}

/// `jobs check`'s notes on list collections: what one fire buys at most (`max_rows`
/// rows per listing, at the list price), as `file: collect[N]: why`.
fn listing_notes(jobs: &[Job], today: NaiveDate) -> Vec<String> {
    let prices = crate::api::prices::Prices::default();
    let mut out = Vec::new();
    for job in jobs {
        for (i, c) in job.collections.iter().enumerate() {
            if !c.endpoint.is_list() {
                continue;
            }
            let Some(call) = crate::plan::plan_collection(c, today).into_iter().next() else {
                continue;
            };
            // An intersection's targets go in one call; the others page per target.
            let per = if c.endpoint == crate::api::Endpoint::DomainIntersection {
                "fire"
            } else {
                "target"
            };
            out.push(format!(
                "{}: collect[{}]: {} ({}) is a list collection: one fire buys at most {} in {} per {per}, {} at list price; `linkledger plan` sizes it from what is stored",
                job.file.display(),
                i + 1,
                c.name,
                c.endpoint,
                count(call.planned_rows(), "row"),
                count(call.planned_calls(), "call"),
                call.planned_cost(&prices),
            ));
        }
    }
    out
}

/// `10000` as `10,000`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// How often a schedule fires, in words, from its fires in 30 days.
fn cadence(fires: i64) -> String {
    match fires {
        1 => "monthly".into(),
        4 | 5 => "weekly".into(),
        30 => "daily".into(),
        720 => "hourly".into(),
        n => format!("{n} times in 30 days"),
    }
}

fn percent(b: &BudgetUse) -> String {
    match b.share_percent {
        Some(p) => format!("{p}%"),
        None => "a zero cap".into(),
    }
}

/// Writes `rows` as columns two spaces in, each as wide as its widest cell, numbers
/// (`right[i]`) aligned right.
fn table(out: &mut String, rows: &[Vec<String>], right: &[bool]) {
    let widths: Vec<usize> = (0..right.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .zip(right)
            .map(|((cell, &w), &right)| {
                if right {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str("  ");
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
}

/// The bill for people.
pub(crate) fn render_bill(bill: &Bill) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "the bill of the next {} days, {} to {}; nothing is spent",
        bill.window_days,
        bill.now.format("%Y-%m-%d %H:%M UTC"),
        bill.until.format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(
        out,
        "prices: {}{}",
        bill.prices,
        bill.prices_note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    for job in &bill.jobs {
        job_section(&mut out, job);
    }
    totals_section(&mut out, bill);
    if let Some(a) = &bill.account_limits {
        account_limits_section(&mut out, a, bill.total.busiest_calls_day);
    }
    cheaper_section(&mut out, &bill.cheaper);
    out
}

/// A job's collections as a table, with what it pays and its budget.
fn job_section(out: &mut String, job: &JobBill) {
    let budget = job
        .budget
        .as_ref()
        .map(|b| format!(", budget_monthly_usd {}", b.cap))
        .unwrap_or_default();
    let _ = writeln!(out, "\njob {} ({}){budget}", job.name, job.timezone);
    let mut rows: Vec<Vec<String>> = vec![
        [
            "collection",
            "endpoint (calls per fire)",
            "targets",
            "rows/fire",
            "cost/fire",
            "next fire",
            "fires/30d",
            "per day",
            "per month",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for c in &job.collections {
        rows.push(vec![
            c.name.clone(),
            format!(
                "{} ({} call{})",
                c.endpoint,
                c.calls_per_fire,
                if c.calls_per_fire == 1 { "" } else { "s" }
            ),
            c.targets.to_string(),
            c.rows_per_fire.to_string(),
            c.cost_per_fire.to_string(),
            c.next_fire_local.clone().unwrap_or_else(|| "never".into()),
            c.fires_per_month.to_string(),
            c.cost_per_day.to_string(),
            c.cost_per_month.to_string(),
        ]);
    }
    let t = &job.total;
    rows.push(vec![
        "job total".into(),
        count(t.calls_per_fire, "call"),
        String::new(),
        String::new(),
        t.cost_per_fire.to_string(),
        String::new(),
        t.fires_per_month.to_string(),
        t.cost_per_day.to_string(),
        t.cost_per_month.to_string(),
    ]);
    table(
        out,
        &rows,
        &[false, false, true, true, true, false, true, true, true],
    );
    for c in &job.collections {
        if let Some(l) = &c.listing {
            listing_line(out, &c.name, c.rows_per_fire, l);
        }
    }
    if !t.stored_per_month.is_zero() {
        let _ = writeln!(
            out,
            "  stored already (history and timeseries fires ask only for periods not held): -{}/month",
            t.stored_per_month
        );
    }
    if !t.bought_once_per_month.is_zero() {
        let _ = writeln!(
            out,
            "  bought once (reused the same UTC day): -{}/month",
            t.bought_once_per_month
        );
    }
    if !t.settle_per_month.is_zero() {
        let _ = writeln!(
            out,
            "  of which asking again for periods not yet settled (settle): {}/month",
            t.settle_per_month
        );
    }
    if !(t.stored_per_month.is_zero() && t.bought_once_per_month.is_zero()) {
        let _ = writeln!(
            out,
            "  so it pays {}/day, {}/month",
            t.pays_per_day, t.pays_per_month
        );
    }
    if let Some(b) = &job.budget {
        let _ = writeln!(
            out,
            "  budget_monthly_usd {}: {} of it used by {}/month{}",
            b.cap,
            percent(b),
            b.projected,
            if b.over { "  OVER BUDGET" } else { "" }
        );
    }
}

/// How a list collection's listings were sized, and what `max_rows` cuts.
fn listing_line(out: &mut String, name: &str, rows_per_fire: i64, l: &ListingBill) {
    let mut sized: Vec<String> = l
        .sized
        .iter()
        .map(|(source, n)| format!("{n} by {source}"))
        .collect();
    if l.unsized_listings > 0 {
        sized.push(format!(
            "{} not sized yet (planned at max_rows = {})",
            l.unsized_listings,
            thousands(l.max_rows as usize)
        ));
    }
    let _ = write!(
        out,
        "  {name}: {}: {}; in full {} rows a fire, {}",
        count(l.listings as i64, "listing"),
        sized.join(", "),
        thousands(l.full_rows_per_fire.max(0) as usize),
        l.full_cost_per_fire
    );
    if l.cut_by_max_rows {
        let _ = write!(
            out,
            "; max_rows = {} cuts it to {} rows",
            thousands(l.max_rows as usize),
            thousands(rows_per_fire.max(0) as usize)
        );
    }
    out.push('\n');
}

/// What every collection of the bill costs together, and against the account's
/// budgets.
fn totals_section(out: &mut String, bill: &Bill) {
    let t = &bill.total;
    let scope = match &bill.only_job {
        Some(name) => format!("job {name}"),
        None => "all jobs".into(),
    };
    let _ = writeln!(
        out,
        "\n{scope}: one fire of every collection: {}, estimated cost {}",
        count(t.calls_per_fire, "call"),
        t.cost_per_fire
    );
    let _ = writeln!(
        out,
        "{scope}: {} in 30 days; projected {}/day, {}/month{}",
        count(t.calls_per_month, "call"),
        t.pays_per_day,
        t.pays_per_month,
        match (
            t.stored_per_month.is_zero(),
            t.bought_once_per_month.is_zero()
        ) {
            (true, true) => String::new(),
            (false, true) => format!(
                " (schedules cost {}/month at full range; {} of it stored already)",
                t.cost_per_month, t.stored_per_month
            ),
            (true, false) => format!(
                " (schedules cost {}/month; {} of it bought once)",
                t.cost_per_month, t.bought_once_per_month
            ),
            (false, false) => format!(
                " (schedules cost {}/month at full range; {} of it stored already, {} bought once)",
                t.cost_per_month, t.stored_per_month, t.bought_once_per_month
            ),
        }
    );
    if let Some(d) = t.busiest_day {
        let _ = writeln!(out, "busiest UTC day: {} with {}", d.day, d.cost);
    }
    for b in &bill.budgets {
        let per = if b.budget == Scope::Daily.setting() {
            "day"
        } else {
            "month"
        };
        let _ = writeln!(
            out,
            "{} {}: {} of it used by {}/{per}{}",
            b.budget,
            b.cap,
            percent(b),
            b.projected,
            if b.over { "  OVER BUDGET" } else { "" }
        );
        if per == "day"
            && !b.over
            && let Some(d) = t.busiest_day.filter(|d| d.cost > b.cap)
        {
            let _ = writeln!(
                out,
                "  but {} needs {}: what is over the cap that day waits for the next",
                d.day, d.cost
            );
        }
    }
}

/// The account's own limits beyond its daily spending cap, as last sampled, and what
/// calls follow; the busiest day's calls against its requests per day.
fn account_limits_section(
    out: &mut String,
    a: &crate::plan::bill::AccountLimitsBill,
    busiest: Option<crate::plan::bill::DayCalls>,
) {
    if let Some(cap) = a.money_minute_usd {
        let _ = writeln!(
            out,
            "money.limits.minute (the account's own) {cap}: each call reserves its estimate in its minute; one that would cross it waits for the next minute"
        );
    }
    if let Some(rate) = a.rate_minute {
        let follow = if rate < a.configured_per_minute {
            format!(
                "calls follow it, stricter than api.max_per_minute ({})",
                a.configured_per_minute
            )
        } else {
            format!(
                "calls follow api.max_per_minute ({}), no looser",
                a.configured_per_minute
            )
        };
        let _ = writeln!(
            out,
            "rates.limits.minute (the account's own) {rate} requests a minute: {follow}"
        );
    }
    if let Some(day) = a.rate_day {
        let busiest = match busiest {
            Some(b) if b.calls as u64 > day => format!(
                "the busiest day ({}) plans {}, over it: the calls past it stop until 00:00 UTC",
                b.day,
                count(b.calls, "call")
            ),
            Some(b) => format!(
                "the busiest day ({}) plans {}, within it",
                b.day,
                count(b.calls, "call")
            ),
            None => "no call planned".to_string(),
        };
        let _ = writeln!(
            out,
            "rates.limits.day (the account's own) {day} requests a day: each paid call takes one of the day's; {busiest}"
        );
    }
}

/// The waste the bill can see: schedules finer than the data, calls bought once
/// across collections, bulk alternatives.
fn cheaper_section(out: &mut String, ch: &Cheaper) {
    let _ = writeln!(out, "\nthe cheaper way (money at stake per month):");
    if ch.large_listings.is_empty()
        && ch.finer_than_data.is_empty()
        && ch.bought_once.is_empty()
        && ch.bulk_alternatives.is_empty()
    {
        let _ = writeln!(out, "  nothing found");
    }
    for l in &ch.large_listings {
        let _ = writeln!(
            out,
            "  - {}/{} ({}, `{}`): the whole listing is {} rows a fire, {}/month at {} fires, over {} {}/month{}",
            l.job,
            l.collection,
            l.endpoint,
            l.schedule,
            thousands(l.full_rows_per_fire.max(0) as usize),
            l.full_cost_per_month,
            l.fires_per_month,
            l.budget,
            l.cap_per_month,
            if l.cut_by_max_rows {
                format!(
                    " (max_rows keeps it to {}/month, a cut listing)",
                    l.pays_per_month
                )
            } else {
                String::new()
            }
        );
        for shape in &l.shapes {
            let _ = writeln!(
                out,
                "      {}: {} rows a fire, {}/month{}",
                shape.change,
                thousands(shape.rows_per_fire.max(0) as usize),
                shape.cost_per_month,
                if shape.fits { " (fits)" } else { "" }
            );
        }
    }
    for f in &ch.finer_than_data {
        let _ = writeln!(
            out,
            "  - {}/{}: `{}` fires {} times in 30 days, but {}: once a {} is enough (e.g. `{}`): {}/month at stake",
            f.job,
            f.collection,
            f.schedule,
            f.fires_per_month,
            f.why,
            f.data_period,
            f.suggested_schedule,
            f.stake_per_month
        );
    }
    for b in &ch.bought_once {
        let _ = writeln!(
            out,
            "  - bought once: {}/{} ({}) reuses {} target{} {} bought the same UTC day: saves {}/month (already out of the projection)",
            b.job,
            b.collection,
            b.endpoint,
            thousands(b.targets),
            if b.targets == 1 { "" } else { "s" },
            b.bought_by.join(", "),
            b.saves_per_month
        );
    }
    for a in &ch.bulk_alternatives {
        let _ = writeln!(
            out,
            "  - option: {}/{}: summary for {} targets {}: {}/day; {} give rank, backlinks and referring domains for {}/day ({}/month less); only you know which summary fields you read",
            a.job,
            a.collection,
            thousands(a.targets),
            cadence(a.fires_per_month),
            a.summary_per_day,
            a.endpoints
                .iter()
                .map(|e| e.name())
                .collect::<Vec<_>>()
                .join(" + "),
            a.bulk_per_day,
            a.difference_per_month
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated_and_cadences_named() {
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(cadence(30), "daily");
        assert_eq!(cadence(21), "21 times in 30 days");
    }

    #[test]
    fn plan_at_takes_an_instant_or_a_plain_date_as_its_midnight_utc() {
        let midnight: chrono::DateTime<Utc> = "2026-03-29T00:00:00Z".parse().unwrap();
        assert_eq!(instant("2026-03-29"), Ok(midnight));
        assert_eq!(instant("2026-03-29T00:00:00Z"), Ok(midnight));
        assert_eq!(instant("2026-03-29T02:00:00+02:00"), Ok(midnight));
        assert!(
            instant("tomorrow")
                .unwrap_err()
                .contains("a date like 2026-03-29")
        );
    }
}
