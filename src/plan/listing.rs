//! How big a listing is, from what is stored, so that a list collection's cost is known
//! before it runs: the last fire's `total_count` for the same request when there was
//! one (exact for that request), else a count the warehouse holds for the target from
//! `summary` (the newest row):
//!
//! | listing | count |
//! | --- | --- |
//! | `backlinks` (`mode` `as_is`, the default) | `backlinks` |
//! | `backlinks` with `mode = "one_per_domain"`, `referring_domains` | `referring_domains` |
//! | `domain_pages` | `crawled_pages` |
//!
//! A count is the target's whole listing: with `filters` the listing is at most that.
//! `anchors`, `competitors`, `domain_intersection` and `backlinks` with
//! `one_per_anchor` have no stored count until their first fire: they are planned at
//! their `max_rows`, the most a fire may buy. Whatever the size, a fire buys at most
//! `max_rows` rows per listing ([`CallSpec::planned_cost`]).
//! Pure: the store reads the figures (`Store::listing_sizes`).

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::api::Endpoint;
use crate::plan::CallSpec;
use crate::warehouse::coverage::task_key;

/// Where a listing's size comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeSource {
    /// The `total_count` the same request's first page answered last.
    LastFire,
    /// `summary.backlinks` of the target.
    SummaryBacklinks,
    /// `summary.referring_domains` of the target.
    SummaryReferringDomains,
    /// `summary.crawled_pages` of the target.
    SummaryCrawledPages,
}

impl SizeSource {
    /// For people: where the figure was read.
    pub fn describe(self) -> &'static str {
        match self {
            SizeSource::LastFire => "the last fire's total_count",
            SizeSource::SummaryBacklinks => "summary.backlinks",
            SizeSource::SummaryReferringDomains => "summary.referring_domains",
            SizeSource::SummaryCrawledPages => "summary.crawled_pages",
        }
    }
}

/// A listing's size as the API holds it (not bounded by `max_rows`), and where the
/// figure comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ListingSize {
    pub rows: u64,
    pub source: SizeSource,
}

/// The counts `summary` holds for a target (its newest row).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetCounts {
    pub backlinks: Option<i64>,
    pub backlinks_nofollow: Option<i64>,
    pub referring_domains: Option<i64>,
    pub crawled_pages: Option<i64>,
}

/// What the store knows of listing sizes.
#[derive(Clone, Debug, Default)]
pub struct ListingSizes {
    /// (endpoint, the first page's task as [`task_key`]) → its last `total_count`.
    last_totals: HashMap<(Endpoint, String), u64>,
    /// target → its summary counts.
    counts: HashMap<String, TargetCounts>,
}

/// A listing's `mode`, as the API reads it (`as_is` when absent).
pub fn mode(task: &Value) -> &str {
    task.get("mode").and_then(Value::as_str).unwrap_or("as_is")
}

fn count(v: Option<i64>) -> Option<u64> {
    v.and_then(|n| u64::try_from(n).ok())
}

impl ListingSizes {
    /// Records the `total_count` a first page of `endpoint` with `task` answered.
    pub fn record_total(&mut self, endpoint: Endpoint, task: &Value, total: u64) {
        self.last_totals.insert((endpoint, task_key(task)), total);
    }

    /// Records the summary counts of `target`.
    pub fn record_counts(&mut self, target: &str, counts: TargetCounts) {
        self.counts.insert(target.to_string(), counts);
    }

    /// Nothing known.
    pub fn is_empty(&self) -> bool {
        self.last_totals.is_empty() && self.counts.is_empty()
    }

    /// The size of the listing `call` (a listing's first page) asks for, when what is
    /// stored says it; `None` for a call that is not a listing, or one nothing stored
    /// measures.
    pub fn size(&self, call: &CallSpec) -> Option<ListingSize> {
        call.max_rows?;
        if let Some(&rows) = self.last_totals.get(&(call.endpoint, task_key(&call.task))) {
            return Some(ListingSize {
                rows,
                source: SizeSource::LastFire,
            });
        }
        let [target] = call.targets.as_slice() else {
            return None;
        };
        let counts = self.counts.get(target.as_str())?;
        let (rows, source) = match (call.endpoint, mode(&call.task)) {
            (Endpoint::Backlinks, "as_is") => (counts.backlinks, SizeSource::SummaryBacklinks),
            (Endpoint::Backlinks, "one_per_domain") | (Endpoint::ReferringDomains, _) => (
                counts.referring_domains,
                SizeSource::SummaryReferringDomains,
            ),
            (Endpoint::DomainPages, _) => (counts.crawled_pages, SizeSource::SummaryCrawledPages),
            _ => return None,
        };
        Some(ListingSize {
            rows: count(rows)?,
            source,
        })
    }

    /// The listing's size under another shape of its request, from the summary counts
    /// alone (what a cheaper shape would list): `one_per_domain` for backlinks as they
    /// are, or backlinks filtered to dofollow.
    pub fn size_as(&self, call: &CallSpec, shape: Shape) -> Option<u64> {
        let [target] = call.targets.as_slice() else {
            return None;
        };
        let counts = self.counts.get(target.as_str())?;
        match shape {
            Shape::OnePerDomain => count(counts.referring_domains),
            Shape::Dofollow => {
                let nofollow = counts.backlinks_nofollow?;
                count(counts.backlinks.map(|b| (b - nofollow).max(0)))
            }
        }
    }

    /// Sets each listing's size in `calls` (first pages) from what is stored, and its
    /// first page's estimate to what that page will list.
    pub fn apply(&self, calls: &mut [CallSpec]) {
        for call in calls.iter_mut() {
            if let Some(size) = self.size(call) {
                call.listing_size = Some(size);
                let limit = call.task.get("limit").and_then(Value::as_u64).unwrap_or(1);
                let first = size.rows.min(limit).min(call.max_rows.unwrap_or(u64::MAX));
                call.estimated_rows = i64::try_from(first).unwrap_or(i64::MAX);
            }
        }
    }
}

/// The first pages one fire of every list collection of `jobs` asks for on `today`:
/// what [`ListingSizes`] is read for.
pub fn listing_calls(jobs: &[crate::jobs::Job], today: chrono::NaiveDate) -> Vec<CallSpec> {
    jobs.iter()
        .flat_map(|j| &j.collections)
        .filter(|c| c.endpoint.is_list())
        .flat_map(|c| crate::plan::plan_collection(c, today))
        .collect()
}

/// A cheaper shape of a backlinks listing that the summary counts can size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `mode = "one_per_domain"`: the strongest link of each referring domain.
    OnePerDomain,
    /// `filters = [["dofollow", "=", true]]`: the links that pass authority.
    Dofollow,
}

impl Shape {
    /// The job file's lines for it.
    pub fn as_toml(self) -> &'static str {
        match self {
            Shape::OnePerDomain => r#"mode = "one_per_domain""#,
            Shape::Dofollow => r#"filters = [["dofollow", "=", true]]"#,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Target;
    use serde_json::json;

    fn listing(endpoint: Endpoint, task: Value, max_rows: u64) -> CallSpec {
        CallSpec {
            job: "j".into(),
            collection: "c".into(),
            endpoint,
            targets: vec![Target::parse("example.com").unwrap()],
            task,
            estimated_rows: 1000,
            settle: None,
            max_rows: Some(max_rows),
            listing_size: None,
        }
    }

    fn counts() -> TargetCounts {
        TargetCounts {
            backlinks: Some(52_000),
            backlinks_nofollow: Some(12_000),
            referring_domains: Some(3_100),
            crawled_pages: Some(800),
        }
    }

    #[test]
    fn the_last_fires_total_for_the_same_request_wins_over_the_summary_counts() {
        let task = json!({"target": "example.com", "limit": 1000});
        let call = listing(Endpoint::Backlinks, task.clone(), 100_000);
        let mut sizes = ListingSizes::default();
        sizes.record_counts("example.com", counts());
        assert_eq!(
            sizes.size(&call),
            Some(ListingSize {
                rows: 52_000,
                source: SizeSource::SummaryBacklinks
            })
        );
        sizes.record_total(Endpoint::Backlinks, &task, 48_750);
        assert_eq!(
            sizes.size(&call),
            Some(ListingSize {
                rows: 48_750,
                source: SizeSource::LastFire
            })
        );
        // Another request (another limit, filter or mode) is not that listing.
        let other = listing(
            Endpoint::Backlinks,
            json!({"target": "example.com", "limit": 500}),
            100_000,
        );
        assert_eq!(
            sizes.size(&other).map(|s| s.source),
            Some(SizeSource::SummaryBacklinks)
        );
    }

    #[test]
    fn each_listing_is_sized_by_the_summary_count_of_what_it_lists() {
        let mut sizes = ListingSizes::default();
        sizes.record_counts("example.com", counts());
        let size = |endpoint, task| sizes.size(&listing(endpoint, task, 100_000));
        let t = |extra: Value| {
            let mut task = json!({"target": "example.com", "limit": 1000});
            task.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            task
        };
        assert_eq!(
            size(Endpoint::Backlinks, t(json!({}))).map(|s| s.rows),
            Some(52_000)
        );
        assert_eq!(
            size(Endpoint::Backlinks, t(json!({"mode": "one_per_domain"}))).map(|s| s.rows),
            Some(3_100)
        );
        assert_eq!(
            size(Endpoint::ReferringDomains, t(json!({}))).map(|s| s.rows),
            Some(3_100)
        );
        assert_eq!(
            size(Endpoint::DomainPages, t(json!({}))).map(|s| s.rows),
            Some(800)
        );
        // Nothing stored counts anchors, competitors or one link per anchor.
        assert_eq!(size(Endpoint::Anchors, t(json!({}))), None);
        assert_eq!(size(Endpoint::Competitors, t(json!({}))), None);
        assert_eq!(
            size(Endpoint::Backlinks, t(json!({"mode": "one_per_anchor"}))),
            None
        );
        // A target without a summary row has no size.
        let mut other = listing(Endpoint::Backlinks, t(json!({})), 1000);
        other.targets = vec![Target::parse("elsewhere.org").unwrap()];
        assert_eq!(sizes.size(&other), None);
    }

    #[test]
    fn a_sized_listing_is_planned_at_its_size_within_max_rows() {
        let prices = crate::api::prices::Prices::default();
        let mut sizes = ListingSizes::default();
        sizes.record_counts("example.com", counts());
        let task = json!({"target": "example.com", "limit": 1000});
        // Smaller than max_rows: 52 pages of 1,000.
        let mut calls = vec![listing(Endpoint::Backlinks, task.clone(), 100_000)];
        sizes.apply(&mut calls);
        assert_eq!(calls[0].planned_calls(), 52);
        assert_eq!(calls[0].planned_rows(), 52_000);
        assert_eq!(calls[0].planned_cost(&prices).to_string(), "$2.60");
        // max_rows smaller than the listing: max_rows bounds it.
        let mut calls = vec![listing(Endpoint::Backlinks, task.clone(), 5_000)];
        sizes.apply(&mut calls);
        assert_eq!(calls[0].planned_calls(), 5);
        assert_eq!(calls[0].planned_rows(), 5_000);
        // A listing of 300 rows: one page of 300.
        sizes.record_total(Endpoint::Backlinks, &task, 300);
        let mut calls = vec![listing(Endpoint::Backlinks, task.clone(), 100_000)];
        sizes.apply(&mut calls);
        assert_eq!(calls[0].planned_calls(), 1);
        assert_eq!(calls[0].planned_rows(), 300);
        assert_eq!(calls[0].estimated_rows, 300);
        // An empty listing still costs its first call.
        sizes.record_total(Endpoint::Backlinks, &task, 0);
        let mut calls = vec![listing(Endpoint::Backlinks, task, 100_000)];
        sizes.apply(&mut calls);
        assert_eq!(calls[0].planned_calls(), 1);
        assert_eq!(calls[0].planned_cost(&prices).to_string(), "$0.02");
    }

    #[test]
    fn cheaper_shapes_are_sized_from_the_summary_counts() {
        let mut sizes = ListingSizes::default();
        sizes.record_counts("example.com", counts());
        let call = listing(
            Endpoint::Backlinks,
            json!({"target": "example.com"}),
            100_000,
        );
        assert_eq!(sizes.size_as(&call, Shape::OnePerDomain), Some(3_100));
        assert_eq!(sizes.size_as(&call, Shape::Dofollow), Some(40_000));
    }
}
