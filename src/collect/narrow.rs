//! What to buy: a collection's calls narrowed to what the warehouse does not hold yet,
//! asked of the database (`Store::missing_periods`). The scheduler, `run --once` and
//! `backfill` plan through [`plan_to_buy`]; the rules of what an answer covers are
//! `warehouse::coverage`'s.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::api::Endpoint;
use crate::jobs::{Collection, Refetch};
use crate::plan::{CallSpec, plan_collection};
use crate::plan::{Narrowed, narrow, requested_range};
use crate::store::{Store, StoreError};
use crate::warehouse::coverage::{is_ranged, options};

/// Narrows the date-ranged calls of `calls` to what the warehouse does not hold yet
/// (one query per endpoint, options and range); other calls are kept as they are.
pub async fn narrow_calls(
    store: &Store,
    calls: Vec<CallSpec>,
    today: NaiveDate,
) -> Result<Narrowed, StoreError> {
    let mut out = Narrowed::default();
    // (endpoint, options, from, to) -> calls
    let mut groups: BTreeMap<(Endpoint, String, NaiveDate, NaiveDate), Vec<CallSpec>> =
        BTreeMap::new();
    for call in calls {
        match (is_ranged(call.endpoint), requested_range(&call, today)) {
            (true, Some((from, to))) if call.targets.len() == 1 => {
                let key = (call.endpoint, options(&call.task).to_string(), from, to);
                groups.entry(key).or_default().push(call);
            }
            _ => out.calls.push(call),
        }
    }
    for ((endpoint, _, from, to), calls) in groups {
        let targets: Vec<String> = calls
            .iter()
            .map(|c| c.targets[0].as_str().to_string())
            .collect();
        let missing = store
            .missing_periods(
                endpoint,
                &options(&calls[0].task),
                &targets,
                from,
                to,
                today,
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

/// What one fire of `collection`, planned on `planned_on`, buys: its calls, the
/// date-ranged ones narrowed to what the warehouse does not hold (unless the collection
/// says `refetch = "always"`).
pub async fn plan_to_buy(
    store: &Store,
    collection: &Collection,
    planned_on: NaiveDate,
) -> Result<Narrowed, StoreError> {
    let calls = plan_collection(collection, planned_on);
    match collection.refetch {
        Refetch::Always => Ok(Narrowed {
            calls,
            skipped: Vec::new(),
        }),
        Refetch::Missing => narrow_calls(store, calls, planned_on).await,
    }
}
