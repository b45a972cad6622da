//! Listings in the bill: how big each list collection's listings are as stored
//! (`plan::listing`), what they would cost bought in full at the collection's cadence,
//! and, for one whose full listing costs more a month than its budget, cheaper shapes
//! sized from the same figures: `one_per_domain`, the dofollow filter, a lower cadence,
//! a `max_rows` that fits. The definitions are the bill's (`plan::bill`).

use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;

use super::*;
use crate::plan::listing::{ListingSizes, Shape, mode};

/// What `call`'s listing costs bought to `rows` rows (pages of its `limit`).
fn cost_at(call: &CallSpec, rows: u64, prices: &Prices) -> Usd {
    let mut whole = call.clone();
    whole.max_rows = Some(rows);
    whole.listing_size = None;
    whole.planned_cost(prices)
}

/// A list collection's listings in one fire; `None` for other collections.
pub(super) fn listing_bill(l: &Line, prices: &Prices) -> Option<ListingBill> {
    let c = l.collection;
    let max_rows = c.max_rows?;
    let mut sized: BTreeMap<SizeSource, usize> = BTreeMap::new();
    let mut unsized_listings = 0;
    let mut full_rows: i64 = 0;
    let mut full_cost = Usd::ZERO;
    for call in &l.calls {
        let rows = match call.listing_size {
            Some(size) => {
                *sized.entry(size.source).or_default() += 1;
                size.rows
            }
            None => {
                unsized_listings += 1;
                max_rows
            }
        };
        full_rows += i64::try_from(rows).unwrap_or(i64::MAX);
        full_cost += cost_at(call, rows, prices);
    }
    let rows_per_fire: i64 = l.calls.iter().map(CallSpec::planned_rows).sum();
    Some(ListingBill {
        max_rows,
        listings: l.calls.len(),
        sized: sized
            .into_iter()
            .map(|(source, n)| (source.describe().to_string(), n))
            .collect(),
        unsized_listings,
        full_rows_per_fire: full_rows,
        full_cost_per_fire: full_cost,
        full_cost_per_month: full_cost * l.fires_per_month(),
        cut_by_max_rows: full_rows > rows_per_fire,
    })
}

/// The strictest budget over a collection of `job`, as a month: (its name, its cap a
/// month). A daily cap counts 30 days.
fn strictest_budget(job: &Job, caps: AccountCaps) -> Option<(String, Usd)> {
    let month = |cap: Usd| cap * WINDOW_DAYS;
    [
        job.budget_monthly_usd
            .map(|cap| ("budget_monthly_usd".to_string(), Usd(cap))),
        caps.monthly_usd.map(|cap| (Scope::Monthly.setting(), cap)),
        caps.daily_usd
            .map(|cap| (format!("{} × 30", Scope::Daily.setting()), month(cap))),
        caps.account_daily_usd
            .map(|cap| ("the account's own daily limit × 30".to_string(), month(cap))),
    ]
    .into_iter()
    .flatten()
    .min_by(|a, b| a.1.cmp(&b.1))
}

/// A list collection whose listings in full, at its cadence, cost more a month than
/// its budget, with cheaper shapes; `None` for any other.
pub(super) fn large_listing(
    l: &Line,
    jobs: &[Job],
    prices: &Prices,
    caps: AccountCaps,
    sizes: &ListingSizes,
) -> Option<LargeListing> {
    let c = l.collection;
    let bill = listing_bill(l, prices)?;
    let (budget, cap) = strictest_budget(&jobs[l.job], caps)?;
    let fires = l.fires_per_month();
    if fires == 0 || bill.full_cost_per_month <= cap {
        return None;
    }
    let mut shapes = Vec::new();
    let shape = |change: String, rows: i64, per_fire: Usd| {
        let cost_per_month = per_fire * fires;
        ListingShape {
            change,
            rows_per_fire: rows,
            cost_per_month,
            fits: cost_per_month <= cap,
        }
    };
    // Backlinks as they are: one link per domain, or the dofollow ones, sized by the
    // summary's counts (every listing's, or the shape is not offered).
    let plain = c.endpoint == Endpoint::Backlinks
        && l.calls
            .iter()
            .all(|call| mode(&call.task) == "as_is" && call.task.get("filters").is_none());
    if plain {
        for s in [Shape::OnePerDomain, Shape::Dofollow] {
            let rows: Option<Vec<u64>> =
                l.calls.iter().map(|call| sizes.size_as(call, s)).collect();
            if let Some(rows) = rows {
                let per_fire = l
                    .calls
                    .iter()
                    .zip(&rows)
                    .map(|(call, &r)| cost_at(call, r, prices))
                    .sum();
                let total = rows.iter().map(|&r| r as i64).sum();
                shapes.push(shape(s.as_toml().to_string(), total, per_fire));
            }
        }
    }
    // A lower cadence: the whole listing once a week, or once a month.
    for (grain, needed, more_than) in [
        (
            waste::Grain::Week,
            Decimal::from(WINDOW_DAYS) / Decimal::from(7),
            5,
        ),
        (waste::Grain::Month, Decimal::ONE, 1),
    ] {
        if fires > more_than {
            let cost_per_month = round5(bill.full_cost_per_fire.decimal() * needed);
            shapes.push(ListingShape {
                change: format!(
                    "schedule = \"{}\" (once a {})",
                    waste::suggested_schedule(c, grain),
                    grain.name()
                ),
                rows_per_fire: bill.full_rows_per_fire,
                cost_per_month,
                fits: cost_per_month <= cap,
            });
        }
    }
    // The most rows a listing may buy at this cadence within the budget, in whole
    // pages.
    let listings = l.calls.len().max(1) as i64;
    let per_listing = cap.decimal() / Decimal::from(fires) / Decimal::from(listings);
    if let Some(first) = l.calls.first() {
        let limit = first.task.get("limit").and_then(Value::as_u64).unwrap_or(1);
        let page = cost_at(first, limit, prices).decimal();
        if !page.is_zero() {
            let pages = (per_listing / page).floor();
            let rows = pages.to_u64().map(|p| p.saturating_mul(limit));
            if let Some(rows) = rows.filter(|&r| r > 0 && r < c.max_rows.unwrap_or(0)) {
                let per_fire = l
                    .calls
                    .iter()
                    .map(|call| {
                        let size = call.listing_size.map_or(rows, |s| s.rows.min(rows));
                        cost_at(call, size, prices)
                    })
                    .sum();
                let total = l
                    .calls
                    .iter()
                    .map(|call| call.listing_size.map_or(rows, |s| s.rows.min(rows)) as i64)
                    .sum();
                shapes.push(shape(
                    format!("max_rows = {rows} (a cut listing)"),
                    total,
                    per_fire,
                ));
            }
        }
    }
    Some(LargeListing {
        job: jobs[l.job].name.clone(),
        collection: c.name.clone(),
        endpoint: c.endpoint,
        schedule: c.schedule.as_str().to_string(),
        fires_per_month: fires,
        budget,
        cap_per_month: cap,
        full_rows_per_fire: bill.full_rows_per_fire,
        full_cost_per_month: bill.full_cost_per_month,
        pays_per_month: l.cost_per_month() - l.saves - l.stored_saves,
        cut_by_max_rows: bill.cut_by_max_rows,
        shapes,
    })
}
