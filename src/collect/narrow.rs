//! What to buy: a collection's calls narrowed to what the warehouse does not hold yet,
//! asked of the database (`Store::missing_periods`). The scheduler, `run --once` and
//! `backfill` plan through [`plan_to_buy`]; the rules of what an answer covers are
//! `warehouse::coverage`'s.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::api::Endpoint;
use crate::jobs::{Collection, Refetch};
use crate::plan::{CallSpec, plan_collection};
use crate::plan::{Narrowed, Reach, narrow, reach_back, requested_range};
use crate::store::periods::TargetCoverage;
use crate::store::{Store, StoreError};
use crate::warehouse::coverage::{Standing, is_ranged, options, standings};

/// Narrows the date-ranged calls of `calls` to what the warehouse does not hold for
/// good yet, each first reaching back to the end of what is stored (`reach`; one query
/// per endpoint, options and range for each); other calls are kept as they are.
pub async fn narrow_calls(
    store: &Store,
    calls: Vec<CallSpec>,
    today: NaiveDate,
    reach: Reach,
) -> Result<Narrowed, StoreError> {
    let mut out = Narrowed::default();
    // Where what is stored ends, per (endpoint, options): then each call reaches back.
    let mut by_options: BTreeMap<(Endpoint, String), Vec<CallSpec>> = BTreeMap::new();
    for call in calls {
        if is_ranged(call.endpoint) && call.targets.len() == 1 {
            let key = (call.endpoint, options(&call.task).to_string());
            by_options.entry(key).or_default().push(call);
        } else {
            out.calls.push(call);
        }
    }
    // (endpoint, options, from, to) -> calls
    let mut groups: BTreeMap<(Endpoint, String, NaiveDate, NaiveDate), Vec<CallSpec>> =
        BTreeMap::new();
    for ((endpoint, key), calls) in by_options {
        let until = if reach.reach_back.is_zero() {
            Default::default()
        } else {
            store
                .stored_until(endpoint, &options(&calls[0].task), &target_strings(&calls))
                .await?
        };
        for call in calls {
            let call = reach_back(
                &call,
                until.get(call.targets[0].as_str()).copied(),
                today,
                reach.reach_back,
            );
            match requested_range(&call, today) {
                Some((from, to)) => groups
                    .entry((endpoint, key.clone(), from, to))
                    .or_default()
                    .push(call),
                None => out.calls.push(call),
            }
        }
    }
    for ((endpoint, _, from, to), calls) in groups {
        let missing = store
            .missing_periods(
                endpoint,
                &options(&calls[0].task),
                &target_strings(&calls),
                from,
                to,
                today,
                reach.reask_empty,
            )
            .await?;
        for call in calls {
            let target = call.targets[0].as_str();
            match missing.get(target).and_then(|m| narrow(&call, m, today)) {
                Some(narrowed) => out.calls.push(narrowed),
                None => out.skipped.push(call),
            }
        }
    }
    Ok(out)
}

/// The one target of each call.
fn target_strings(calls: &[CallSpec]) -> Vec<String> {
    calls
        .iter()
        .map(|c| c.targets[0].as_str().to_string())
        .collect()
}

/// What one fire of `collection`, planned on `planned_on`, buys: its calls, the
/// date-ranged ones reaching back to what is stored and narrowed to what the warehouse
/// does not hold for good (unless the collection says `refetch = "always"`), a listing
/// sized from what is stored (`plan::listing`).
pub async fn plan_to_buy(
    store: &Store,
    collection: &Collection,
    planned_on: NaiveDate,
) -> Result<Narrowed, StoreError> {
    let mut calls = plan_collection(collection, planned_on);
    if collection.endpoint.is_list() {
        store.listing_sizes(&calls).await?.apply(&mut calls);
    }
    match collection.refetch {
        Refetch::Always => Ok(Narrowed {
            calls,
            skipped: Vec::new(),
        }),
        Refetch::Missing => narrow_calls(store, calls, planned_on, Reach::of(collection)).await,
    }
}

/// How the periods of one target's range stand (`linkledger gaps`).
#[derive(Clone, Debug, PartialEq)]
pub struct TargetGaps {
    pub target: String,
    /// Each period of the range, in order, with how it stands.
    pub periods: Vec<(NaiveDate, NaiveDate, Standing)>,
}

impl TargetGaps {
    /// How many periods stand `standing`.
    pub fn count(&self, standing: Standing) -> usize {
        self.periods.iter().filter(|p| p.2 == standing).count()
    }
}

/// For a history or timeseries collection, how each period of the range one of its
/// fires on `today` would ask for stands in the warehouse, per target: stored for
/// good, unsettled, answered empty or missing. Empty for other collections.
pub async fn gaps(
    store: &Store,
    collection: &Collection,
    today: NaiveDate,
) -> Result<Vec<TargetGaps>, StoreError> {
    if !is_ranged(collection.endpoint) {
        return Ok(Vec::new());
    }
    gaps_of(store, &plan_collection(collection, today), today).await
}

/// How each period of the ranges `calls` (of one history or timeseries collection)
/// ask for stands in the warehouse, per target.
pub async fn gaps_of(
    store: &Store,
    calls: &[CallSpec],
    today: NaiveDate,
) -> Result<Vec<TargetGaps>, StoreError> {
    let Some(first) = calls.first() else {
        return Ok(Vec::new());
    };
    let known = store
        .coverage_of(
            first.endpoint,
            &options(&first.task),
            &target_strings(calls),
        )
        .await?;
    let none = TargetCoverage::default();
    Ok(calls
        .iter()
        .filter_map(|call| {
            let (from, to) = requested_range(call, today)?;
            let target = call.targets[0].as_str();
            let c = known.get(target).unwrap_or(&none);
            Some(TargetGaps {
                target: target.to_string(),
                periods: standings(call.endpoint, &call.task, from, to, &c.covered, &c.pending),
            })
        })
        .collect())
}
