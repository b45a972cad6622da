//! `linkledger backfill`: a job's history and timeseries collections over a date range,
//! for its targets (or some of them), buying only what the warehouse does not hold
//! (unless `--refetch`). It runs through the same queue, shared limits and budgets as
//! the daemon, in runs of kind `backfill` that only the backfill's own process claims.
//! Running the same command again after an interruption finishes it: what was stored
//! is skipped, answers already paid for the same day are reused.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::NaiveDate;
use serde_json::Value;

use crate::api::prices::Prices;
use crate::api::{Endpoint, Target};
use crate::jobs::{Collection, Job};
use crate::money::Usd;
use crate::plan::{CallSpec, estimate_rows, plan_collection};
use crate::store::Store;
use crate::warehouse::coverage::{self, Standing};

/// What to backfill.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub job: &'a Job,
    pub from: NaiveDate,
    /// Default today.
    pub to: Option<NaiveDate>,
    /// Only these endpoints (all the job's date-ranged ones when empty).
    pub endpoints: Vec<Endpoint>,
    /// Only these targets (all the collections' when empty).
    pub targets: Vec<Target>,
    /// Buy the whole range even where it is stored.
    pub refetch: bool,
}

/// One collection's part of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub collection: String,
    pub endpoint: Endpoint,
    pub targets: usize,
    pub calls: usize,
    /// Periods (rows) asked for.
    pub periods: i64,
    pub estimate: Usd,
    /// Targets whose whole range is stored already: nothing to buy.
    pub stored: usize,
    /// Periods of the range, over the targets, never stored (bought unless refetching
    /// buys everything).
    pub missing: usize,
    /// Periods asked for whose newest answer lacked the item (bought again while they
    /// were first answered empty less than the collection's `reask_empty` ago).
    pub empty: usize,
    /// Periods stored but not settled (bought again).
    pub unsettled: usize,
    /// Where the range starts for this collection when `--from` is before the day
    /// its endpoint's data starts: that day.
    pub starts: Option<NaiveDate>,
}

/// What a backfill will buy.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub lines: Vec<Line>,
    pub calls: Vec<CallSpec>,
    pub estimate: Usd,
}

/// The collections a request covers, or why it cannot be done (a usage error).
pub fn collections<'a>(req: &Request<'a>) -> Result<Vec<&'a Collection>, String> {
    let job = req.job;
    for e in &req.endpoints {
        if !coverage::is_ranged(*e) {
            return Err(format!(
                "--endpoint {e}: only history, timeseries_summary and timeseries_new_lost_summary are date-ranged; {e} answers for a moment, not a range, and cannot be backfilled"
            ));
        }
        if !job.collections.iter().any(|c| c.endpoint == *e) {
            return Err(format!(
                "--endpoint {e}: job {} has no {e} collection",
                job.name
            ));
        }
    }
    let selected: Vec<&Collection> = job
        .collections
        .iter()
        .filter(|c| coverage::is_ranged(c.endpoint))
        .filter(|c| req.endpoints.is_empty() || req.endpoints.contains(&c.endpoint))
        .collect();
    if selected.is_empty() {
        let lists = job.collections.iter().any(|c| c.endpoint.is_list());
        return Err(format!(
            "job {} has no history or timeseries collection to backfill{}",
            job.name,
            if lists {
                format!(
                    " (a list collection lists what the API holds now, not a range: `linkledger run --once --job {}` buys it, `linkledger plan` shows what it costs)",
                    job.name
                )
            } else {
                String::new()
            }
        ));
    }
    for t in &req.targets {
        if t.is_page() {
            return Err(format!(
                "--target {t}: history and timeseries take a bare domain, not a page: use \"{}\"",
                t.as_domain()
            ));
        }
        if !selected.iter().any(|c| c.targets.contains(t)) {
            return Err(format!(
                "--target {t}: not a target of job {}'s collections being backfilled",
                job.name
            ));
        }
    }
    Ok(selected)
}

/// The calls of `c` over `from..=to` for the selected targets, dates checked against
/// the API's rules on `today`.
fn calls_over(
    c: &Collection,
    targets: &[Target],
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
) -> Result<Vec<CallSpec>, String> {
    let mut calls = plan_collection(&c.only_targets(targets), today);
    for call in &mut calls {
        if let Some(task) = call.task.as_object_mut() {
            task.insert("date_from".into(), Value::from(from.to_string()));
            task.insert("date_to".into(), Value::from(to.to_string()));
            crate::plan::align_date_from(call.endpoint, task);
        }
        let params = call.task.as_object().cloned().unwrap_or_default();
        crate::jobs::check_request_dates(call.endpoint, &params, today)
            .map_err(|why| format!("{}: {why}", c.name))?;
        call.estimated_rows = estimate_rows(call.endpoint, &params, 1, today);
    }
    Ok(calls)
}

/// Plans a backfill: every call over the range, less what is stored (unless
/// `refetch`), with estimates under `prices`. An `Err` of the inner kind is a usage
/// error (what the request asks cannot be done).
pub async fn plan(
    store: &Store,
    req: &Request<'_>,
    prices: &Prices,
    today: NaiveDate,
) -> anyhow::Result<Result<Plan, String>> {
    let collections = match collections(req) {
        Ok(c) => c,
        Err(why) => return Ok(Err(why)),
    };
    let to = req.to.unwrap_or(today);
    let mut out = Plan {
        from: req.from,
        to,
        ..Plan::default()
    };
    for c in collections {
        // Before the day its data starts, a range starts that day: "since 2019" is
        // as far back as each endpoint goes.
        let starts = match c.endpoint.earliest_date_from() {
            Some(crate::api::endpoint::EarliestDate::Fixed(earliest)) if req.from < earliest => {
                Some(earliest)
            }
            _ => None,
        };
        let from = starts.unwrap_or(req.from);
        let calls = match calls_over(c, &req.targets, from, to, today) {
            Ok(calls) => calls,
            Err(why) => return Ok(Err(why)),
        };
        let asked = calls.len();
        let found = crate::collect::narrow::gaps_of(store, &calls, today).await?;
        let count = |s: Standing| found.iter().map(|t| t.count(s)).sum::<usize>();
        let (missing, empty, unsettled) = (
            count(Standing::Missing),
            count(Standing::Empty),
            count(Standing::Unsettled),
        );
        let (calls, stored) = if req.refetch {
            (calls, 0)
        } else {
            // The range asked for, less what is stored for good: no reaching back.
            let reach = crate::plan::Reach::of(c).without_reach_back();
            let narrowed = crate::collect::narrow::narrow_calls(store, calls, today, reach).await?;
            (narrowed.calls, narrowed.skipped.len())
        };
        let estimate: Usd = calls.iter().map(|c| c.estimated_cost(prices)).sum();
        out.lines.push(Line {
            collection: c.name.clone(),
            endpoint: c.endpoint,
            targets: asked,
            calls: calls.len(),
            periods: calls.iter().map(|c| c.estimated_rows).sum(),
            estimate,
            stored,
            missing,
            empty,
            unsettled,
            starts,
        });
        out.estimate += estimate;
        out.calls.extend(calls);
    }
    Ok(Ok(out))
}

/// The plan as a table.
pub fn render(plan: &Plan, job: &str, prices: &Prices) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "backfill of job {job} from {} to {} ({}):",
        plan.from,
        plan.to,
        prices.source()
    );
    let c = plan
        .lines
        .iter()
        .map(|l| l.collection.len())
        .chain(["collection".len()])
        .max()
        .unwrap_or(0);
    let e = plan
        .lines
        .iter()
        .map(|l| l.endpoint.name().len())
        .chain(["endpoint".len()])
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "  {:<c$}  {:<e$} {:>8} {:>7} {:>9} {:>12} {:>15} {:>8} {:>6} {:>10}",
        "collection",
        "endpoint",
        "targets",
        "calls",
        "periods",
        "est. cost",
        "already stored",
        "missing",
        "empty",
        "unsettled"
    );
    for l in &plan.lines {
        let _ = writeln!(
            out,
            "  {:<c$}  {:<e$} {:>8} {:>7} {:>9} {:>12} {:>15} {:>8} {:>6} {:>10}",
            l.collection,
            l.endpoint.name(),
            l.targets,
            l.calls,
            l.periods,
            l.estimate.to_string(),
            format!(
                "{} target{}",
                l.stored,
                if l.stored == 1 { "" } else { "s" }
            ),
            l.missing,
            l.empty,
            l.unsettled,
        );
    }
    for l in &plan.lines {
        if let Some(day) = l.starts {
            let _ = writeln!(
                out,
                "  {} from {day}, where {} data starts",
                l.collection,
                l.endpoint.name()
            );
        }
    }
    let endpoints: BTreeSet<Endpoint> = plan.lines.iter().map(|l| l.endpoint).collect();
    let stored: usize = plan.lines.iter().map(|l| l.stored).sum();
    let (empty, unsettled) = plan
        .lines
        .iter()
        .fold((0, 0), |(e, u), l| (e + l.empty, u + l.unsettled));
    if empty + unsettled > 0 {
        let _ = writeln!(
            out,
            "  of the periods in range, {empty} were answered empty (the API held no item for them; asked again until reask_empty has passed since, or with --refetch) and {unsettled} are stored but not settled (asked again)"
        );
    }
    let _ = writeln!(
        out,
        "  {} call{} over {} endpoint{}, estimated {}; {} target range{} already stored and skipped",
        plan.calls.len(),
        if plan.calls.len() == 1 { "" } else { "s" },
        endpoints.len(),
        if endpoints.len() == 1 { "" } else { "s" },
        plan.estimate,
        stored,
        if stored == 1 { "" } else { "s" },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(toml: &str) -> Job {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.toml");
        std::fs::write(&path, toml).unwrap();
        crate::jobs::load_file(&path, "2026-12-01".parse().unwrap()).unwrap()
    }

    const JOB: &str = "name = \"j\"\ntargets = [\"a.com\", \"b.com\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@monthly\"\n[[collect]]\nendpoint = \"bulk_new_lost_backlinks\"\nschedule = \"@daily\"\n";

    #[test]
    fn only_date_ranged_collections_and_their_targets_can_be_backfilled() {
        let j = job(JOB);
        let req = |endpoints: Vec<Endpoint>, targets: Vec<&str>| Request {
            job: &j,
            from: "2024-01-01".parse().unwrap(),
            to: None,
            endpoints,
            targets: targets.iter().map(|t| Target::parse(t).unwrap()).collect(),
            refetch: false,
        };
        let ok = collections(&req(vec![], vec![])).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].endpoint, Endpoint::History);
        let why = collections(&req(vec![Endpoint::BulkNewLostBacklinks], vec![])).unwrap_err();
        assert!(why.contains("cannot be backfilled"), "{why}");
        let why = collections(&req(vec![Endpoint::TimeseriesSummary], vec![])).unwrap_err();
        assert!(why.contains("no timeseries_summary collection"), "{why}");
        let why = collections(&req(vec![], vec!["c.com"])).unwrap_err();
        assert!(why.contains("--target c.com"), "{why}");
        let why = collections(&req(vec![], vec!["https://www.a.com/p"])).unwrap_err();
        assert_eq!(
            why,
            "--target https://www.a.com/p: history and timeseries take a bare domain, not a page: use \"a.com\""
        );
    }

    #[test]
    fn each_call_asks_for_the_range_and_counts_its_periods() {
        let j = job(JOB);
        let today: NaiveDate = "2026-12-01".parse().unwrap();
        let calls = calls_over(
            &j.collections[0],
            &[Target::parse("b.com").unwrap()],
            "2024-01-15".parse().unwrap(),
            "2024-12-31".parse().unwrap(),
            today,
        )
        .unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].task["target"], "b.com");
        // A month is asked whole: from its first day.
        assert_eq!(calls[0].task["date_from"], "2024-01-01");
        assert_eq!(calls[0].task["date_to"], "2024-12-31");
        assert_eq!(calls[0].estimated_rows, 12);
        let why = calls_over(
            &j.collections[0],
            &[],
            "2018-06-01".parse().unwrap(),
            today,
            today,
        )
        .unwrap_err();
        assert!(why.contains("2019-01-01"), "{why}");
    }
}
