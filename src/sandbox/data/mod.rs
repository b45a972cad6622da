//! The sandbox's fake data: request validation the way the API does it (task-level
//! `40501 Invalid Field: '…'.`) and deterministic results for every endpoint.
//!
//! Every number is derived from `xxh3_64(target, metric, date)` and scaled into a
//! plausible range, so the same target, date and request always get the same answer,
//! across runs and machines. The derived metrics keep the API's invariants
//! (`referring_domains <= backlinks`, nofollow counts below their totals, spam scores
//! 0..=100, rank 0..=1000) so that loaders can be tested against realistic numbers.
//!
//! Targets whose host starts with `quirk-…` reproduce the schema drift the real API is
//! known for, see `Quirk` in `targets`, or its bad days (a period missing, no items, a
//! lagging index, revised figures, a null item or key), see `BadDay` in `bad_day`. The
//! modes that change the envelope rather than the result (and `quirk-no-funds`) are
//! the server's; all are described in [`crate::sandbox`], "Target modes".
//!
//! The files: `request` reads and validates a task, `targets` the hosts and the
//! `quirk-…` schema drift, `bad_day` the `quirk-…` bad days, `numbers` the
//! deterministic counts and dates, `summary` the summary record and the fields the
//! other full records share, and `history`, `timeseries` and `bulk` the results of
//! those endpoints; `lists` the list endpoints (links that appear and disappear from
//! day to day, filters, sorting, paging).

mod bad_day;
mod bulk;
mod history;
mod lists;
mod numbers;
mod request;
mod summary;
mod targets;
mod timeseries;

use chrono::NaiveDate;
use serde_json::Value;

use crate::api::Endpoint;
use request::Request;

pub(in crate::sandbox) use targets::first_label;

/// The message of a task-level 40501 for `field`. Its text is what the API sends.
pub fn invalid_field(field: &str) -> String {
    format!("Invalid Field: '{field}'.")
}

/// Rows the API bills for a result: the items returned (a summary is one row).
pub fn row_count(endpoint: Endpoint, result: &Value) -> usize {
    let Some(results) = result.as_array() else {
        return 0;
    };
    match endpoint {
        Endpoint::Summary => results.len(),
        _ => results
            .iter()
            .map(|r| r["items"].as_array().map_or(0, Vec::len))
            .sum(),
    }
}

/// Builds the `result` array of one task, or the message of the 40501 the API would
/// answer with. Deterministic: the same task and `today` give the same value.
pub fn build_result(endpoint: Endpoint, task: &Value, today: NaiveDate) -> Result<Value, String> {
    let req = Request::parse(endpoint, task, today)?;
    if endpoint.is_list() {
        return Ok(Value::Array(vec![lists::list(endpoint, task, today)?]));
    }
    let result = match endpoint {
        Endpoint::Summary => summary::summary(&req, today),
        Endpoint::History => history::history(&req, today),
        Endpoint::TimeseriesSummary | Endpoint::TimeseriesNewLostSummary => {
            timeseries::timeseries(&req, today)
        }
        _ => bulk::bulk(&req, today),
    };
    Ok(Value::Array(vec![result]))
}

/// A 0-1000 rank as the request's `rank_scale` shows it: `one_hundred` is the API's own
/// conversion, `round(sin(rank / 636.62) * 100)` (DataForSEO, "New rank scale in
/// Backlinks API"; 636.62 is 2000/pi, so 1000 maps to 100), not rank / 10.
pub fn show_rank(rank: i64, hundred: bool) -> i64 {
    if hundred {
        ((rank as f64 / 636.62).sin() * 100.0).round() as i64
    } else {
        rank
    }
}

#[cfg(test)]
mod tests;
