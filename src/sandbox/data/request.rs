//! A task read the way the API reads it: unknown fields, types, targets and dates
//! checked (the first problem is the task's 40501), the API's defaults filled in.

use std::collections::BTreeSet;

use chrono::{Months, NaiveDate};
use serde_json::{Map, Value};

use super::invalid_field;
use super::targets::{host, main_domain};
use crate::api::endpoint::{
    BULK_MAX_TARGETS, GroupRange, INTERSECTION_MAX_TARGETS, PAGES_SUMMARY_MAX_DOMAINS,
    history_earliest, timeseries_earliest,
};
use crate::api::{Endpoint, ParamKind};

/// Default `internal_list_limit` of the API: at most this many keys per breakdown map.
const DEFAULT_LIST_LIMIT: usize = 10;

/// A validated task with the API's defaults filled in.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) endpoint: Endpoint,
    /// The one target, or the bulk targets deduplicated and sorted (the API answers
    /// bulk calls sorted by target, not in request order).
    pub(super) targets: Vec<String>,
    pub(super) date_from: Option<NaiveDate>,
    pub(super) date_to: Option<NaiveDate>,
    pub(super) group: GroupRange,
    pub(super) list_limit: usize,
    /// `rank_scale = one_hundred`: ranks are shown on 0..=100.
    pub(super) rank_hundred: bool,
    /// How the summary's options scale its counts (fewer links without subdomains, ...).
    pub(super) scale: f64,
}

impl Request {
    pub(super) fn parse(
        endpoint: Endpoint,
        task: &Value,
        today: NaiveDate,
    ) -> Result<Request, String> {
        let obj = task.as_object().ok_or_else(|| invalid_field("target"))?;
        let target_key = if endpoint.is_bulk() || endpoint == Endpoint::DomainIntersection {
            "targets"
        } else {
            "target"
        };
        // Unknown keys first, in the order they were sent: the API names the first one.
        for key in obj.keys() {
            if key != target_key && endpoint.param(key).is_none() {
                return Err(invalid_field(key));
            }
        }
        let targets = parse_targets(endpoint, obj.get(target_key))?;
        for spec in endpoint.params() {
            if let Some(v) = obj.get(spec.name)
                && !type_ok(spec.kind, v)
            {
                return Err(invalid_field(spec.name));
            }
        }
        let date = |name: &str| obj.get(name).and_then(Value::as_str).and_then(parse_date);
        let str_param = |name: &str| obj.get(name).and_then(Value::as_str);
        let month_ago = today.checked_sub_months(Months::new(1)).unwrap_or(today);

        let mut req = Request {
            endpoint,
            targets,
            date_from: None,
            date_to: None,
            group: GroupRange::Month,
            list_limit: obj
                .get("internal_list_limit")
                .and_then(Value::as_u64)
                .map_or(DEFAULT_LIST_LIMIT, |n| n as usize),
            rank_hundred: str_param("rank_scale") == Some("one_hundred"),
            scale: 1.0,
        };
        // The options narrow or widen the dataset the counts come from (only summary
        // takes most of them; include_subdomains also the timeseries and pages summary).
        req.scale = summary_scale(obj);
        match endpoint {
            Endpoint::Summary => {}
            Endpoint::History => {
                let from = date("date_from").unwrap_or_else(history_earliest);
                let to = date("date_to").unwrap_or(today);
                if from < history_earliest() {
                    return Err(invalid_field("date_from"));
                }
                if to < from {
                    return Err(invalid_field("date_to"));
                }
                req.date_from = Some(from);
                req.date_to = Some(to);
            }
            Endpoint::TimeseriesSummary | Endpoint::TimeseriesNewLostSummary => {
                let from = date("date_from").unwrap_or(month_ago);
                // "maximum value: today's date": later dates are read as today.
                let to = date("date_to").unwrap_or(today).min(today);
                if from < timeseries_earliest() || from > today {
                    return Err(invalid_field("date_from"));
                }
                if to < from {
                    return Err(invalid_field("date_to"));
                }
                req.date_from = Some(from);
                req.date_to = Some(to);
                req.group = match str_param("group_range").unwrap_or("month") {
                    "day" => GroupRange::Day,
                    "week" => GroupRange::Week,
                    "year" => GroupRange::Year,
                    _ => GroupRange::Month,
                };
            }
            Endpoint::BulkNewLostBacklinks | Endpoint::BulkNewLostReferringDomains => {
                let from = date("date_from").unwrap_or(month_ago);
                // "minimum value equals today's date minus one year".
                let year_ago = today.checked_sub_months(Months::new(12)).unwrap_or(today);
                if from < year_ago || from > today {
                    return Err(invalid_field("date_from"));
                }
                req.date_from = Some(from);
            }
            _ => {}
        }
        Ok(req)
    }
}

fn parse_targets(endpoint: Endpoint, value: Option<&Value>) -> Result<Vec<String>, String> {
    if endpoint == Endpoint::DomainIntersection {
        // A numbered map, `{"1": "a.com", "2": "b.com"}`, of up to 20 targets.
        let map = value
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty() && m.len() <= INTERSECTION_MAX_TARGETS)
            .ok_or_else(|| invalid_field("targets"))?;
        return map
            .iter()
            .map(|(k, v)| {
                let t = v.as_str().map(str::trim).filter(|t| !t.is_empty());
                match (k.parse::<u32>(), t) {
                    (Ok(_), Some(t)) => Ok(t.to_string()),
                    _ => Err(invalid_field("targets")),
                }
            })
            .collect();
    }
    if !endpoint.is_bulk() {
        let target = value
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid_field("target"))?;
        // history and timeseries take a bare domain, never a page.
        if !endpoint.takes_a_page() && (target.contains("://") || target.contains('/')) {
            return Err(invalid_field("target"));
        }
        return Ok(vec![target.to_string()]);
    }
    let list = value
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty() && l.len() <= BULK_MAX_TARGETS)
        .ok_or_else(|| invalid_field("targets"))?;
    let mut targets = BTreeSet::new();
    for t in list {
        let t = t
            .as_str()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid_field("targets"))?;
        targets.insert(t.to_string());
    }
    if endpoint == Endpoint::BulkPagesSummary {
        let domains: BTreeSet<String> = targets.iter().map(|t| main_domain(&host(t))).collect();
        if domains.len() > PAGES_SUMMARY_MAX_DOMAINS {
            return Err(invalid_field("targets"));
        }
    }
    Ok(targets.into_iter().collect())
}

/// A loose JSON type check of one parameter, as the API does it.
fn type_ok(kind: ParamKind, v: &Value) -> bool {
    match kind {
        ParamKind::Bool => v.is_boolean(),
        ParamKind::Int { min, max } => v.as_i64().is_some_and(|n| (min..=max).contains(&n)),
        ParamKind::Choice(choices) => v.as_str().is_some_and(|s| choices.contains(&s)),
        ParamKind::Date => v.as_str().and_then(parse_date).is_some(),
        ParamKind::Filters => v.is_array(),
        ParamKind::Text { max_chars } => v.as_str().is_some_and(|s| s.chars().count() <= max_chars),
        ParamKind::OrderBy => v.is_array(),
        ParamKind::TextList { max_items } => v
            .as_array()
            .is_some_and(|l| l.len() <= max_items && l.iter().all(Value::is_string)),
        ParamKind::Object => v.is_object(),
    }
}

pub(super) fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// How the summary's options change its counts: a narrower dataset has fewer links.
fn summary_scale(obj: &Map<String, Value>) -> f64 {
    let flag =
        |name: &str, default: bool| obj.get(name).and_then(Value::as_bool).unwrap_or(default);
    let mut scale = 1.0;
    if !flag("include_subdomains", true) {
        scale *= 0.8;
    }
    if !flag("include_indirect_links", true) {
        scale *= 0.95;
    }
    if !flag("exclude_internal_backlinks", true) {
        scale *= 1.15;
    }
    match obj.get("backlinks_status_type").and_then(Value::as_str) {
        Some("all") => scale *= 1.3,
        Some("lost") => scale *= 0.3,
        _ => {}
    }
    if obj
        .get("backlinks_filters")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
    {
        scale *= 0.5;
    }
    scale
}
