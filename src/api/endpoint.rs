//! The Backlinks endpoints linkledger collects, and the request parameters each accepts.
//! This table is the one place that knows what the API takes; job validation, planning
//! and the sandbox all read it.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Most targets one bulk call takes.
pub const BULK_MAX_TARGETS: usize = 1000;
/// Most distinct domains one `bulk_pages_summary` call takes.
pub const PAGES_SUMMARY_MAX_DOMAINS: usize = 100;

/// Earliest `date_from` of `history`.
pub fn history_earliest() -> NaiveDate {
    NaiveDate::from_ymd_opt(2019, 1, 1).expect("valid date")
}

/// Earliest `date_from` of the timeseries endpoints.
pub fn timeseries_earliest() -> NaiveDate {
    NaiveDate::from_ymd_opt(2019, 1, 30).expect("valid date")
}

/// `group_range` of the timeseries endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupRange {
    Day,
    Week,
    Month,
    Year,
}

impl GroupRange {
    pub fn name(self) -> &'static str {
        match self {
            GroupRange::Day => "day",
            GroupRange::Week => "week",
            GroupRange::Month => "month",
            GroupRange::Year => "year",
        }
    }

    /// The API's name for it; `None` for anything else.
    pub fn parse(s: &str) -> Option<GroupRange> {
        [
            GroupRange::Day,
            GroupRange::Week,
            GroupRange::Month,
            GroupRange::Year,
        ]
        .into_iter()
        .find(|g| g.name() == s)
    }
}

/// The first day of `d`'s month.
pub fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists")
}

/// The last day of `d`'s month.
pub fn last_of_month(d: NaiveDate) -> NaiveDate {
    first_of_month(d)
        .checked_add_months(chrono::Months::new(1))
        .and_then(|n| n.pred_opt())
        .expect("date in range")
}

/// The periods a timeseries answer covers for `from..=to`, each as (first day, last
/// day): the API dates each item on the last day of its period. Weeks are ISO weeks
/// (Monday to Sunday).
pub fn periods(from: NaiveDate, to: NaiveDate, group: GroupRange) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut start = match group {
        GroupRange::Day => from,
        GroupRange::Week => {
            from - chrono::Days::new(u64::from(from.weekday().num_days_from_monday()))
        }
        GroupRange::Month => first_of_month(from),
        GroupRange::Year => NaiveDate::from_ymd_opt(from.year(), 1, 1).expect("valid date"),
    };
    while start <= to {
        let end = match group {
            GroupRange::Day => start,
            GroupRange::Week => start + chrono::Days::new(6),
            GroupRange::Month => last_of_month(start),
            GroupRange::Year => NaiveDate::from_ymd_opt(start.year(), 12, 31).expect("valid date"),
        };
        out.push((start, end));
        let Some(next) = end.succ_opt() else { break };
        start = next;
    }
    out
}

/// The months a history answer covers for `from..=to` (as first days).
pub fn months_between(from: NaiveDate, to: NaiveDate) -> i64 {
    if to < from {
        return 0;
    }
    i64::from((to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32 + 1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Summary,
    History,
    TimeseriesSummary,
    TimeseriesNewLostSummary,
    BulkNewLostBacklinks,
    BulkNewLostReferringDomains,
    BulkRanks,
    BulkBacklinks,
    BulkReferringDomains,
    BulkSpamScore,
    BulkPagesSummary,
    // The list endpoints (`reference/api-fields-lists.md`): paged with `limit` and
    // `offset` (backlinks: `search_after_token` past offset 20,000).
    Backlinks,
    ReferringDomains,
    Anchors,
    DomainPages,
    Competitors,
    DomainIntersection,
}

/// The JSON type and range of one request parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    Choice(&'static [&'static str]),
    /// `yyyy-mm-dd` in the request; job files may also write `today` or `-30d`.
    Date,
    /// An array in the API's filter syntax, passed through as written.
    Filters,
    /// A string of at most `max_chars` characters.
    Text {
        max_chars: usize,
    },
    /// Sorting rules, `["field,asc|desc", ...]` (`api::filters::OrderBy`).
    OrderBy,
    /// An array of at most `max_items` strings (`exclude_targets`).
    TextList {
        max_items: usize,
    },
    /// An object passed through as written (`custom_mode`).
    Object,
}

/// The value the API uses when a parameter is left out. linkledger always sends it, so
/// that the request (and the `options` part of a natural key) says what was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamDefault {
    Bool(bool),
    Int(i64),
    Str(&'static str),
    /// A date expression as a job file would write it (`today`, `-1m`, `2019-01-01`).
    Date(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub default: Option<ParamDefault>,
}

impl ParamDefault {
    /// The default as sent; `None` for a date (it depends on the day).
    pub fn json(self) -> Option<serde_json::Value> {
        match self {
            ParamDefault::Bool(b) => Some(b.into()),
            ParamDefault::Int(i) => Some(i.into()),
            ParamDefault::Str(s) => Some(s.into()),
            ParamDefault::Date(_) => None,
        }
    }
}

/// Request fields that are not part of [`Endpoint::answer_options`].
fn is_not_an_option(name: &str) -> bool {
    matches!(
        name,
        "target"
            | "targets"
            | "tag"
            | "date_from"
            | "date_to"
            | "group_range"
            | "limit"
            | "offset"
            | "search_after_token"
    )
}

/// The earliest `date_from` the API accepts for an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EarliestDate {
    Fixed(NaiveDate),
    /// "minimum value equals today's date minus one year"
    OneYearAgo,
}

const RANK_SCALE: ParamSpec = ParamSpec {
    name: "rank_scale",
    kind: ParamKind::Choice(&["one_hundred", "one_thousand"]),
    default: Some(ParamDefault::Str("one_thousand")),
};
const INCLUDE_SUBDOMAINS: ParamSpec = ParamSpec {
    name: "include_subdomains",
    kind: ParamKind::Bool,
    default: Some(ParamDefault::Bool(true)),
};
const GROUP_RANGE: ParamSpec = ParamSpec {
    name: "group_range",
    kind: ParamKind::Choice(&["day", "week", "month", "year"]),
    default: Some(ParamDefault::Str("month")),
};
const DATE_TO: ParamSpec = ParamSpec {
    name: "date_to",
    kind: ParamKind::Date,
    default: Some(ParamDefault::Date("today")),
};
const DATE_FROM_MONTH_AGO: ParamSpec = ParamSpec {
    name: "date_from",
    kind: ParamKind::Date,
    default: Some(ParamDefault::Date("-1m")),
};

/// `tag`: the user's own task identifier, echoed in the answer's `data`; every endpoint
/// takes it, and it changes nothing in the answer.
const TAG: ParamSpec = ParamSpec {
    name: "tag",
    kind: ParamKind::Text { max_chars: 255 },
    default: None,
};

const SUMMARY_PARAMS: &[ParamSpec] = &[
    INCLUDE_SUBDOMAINS,
    ParamSpec {
        name: "include_indirect_links",
        kind: ParamKind::Bool,
        default: Some(ParamDefault::Bool(true)),
    },
    ParamSpec {
        name: "exclude_internal_backlinks",
        kind: ParamKind::Bool,
        default: Some(ParamDefault::Bool(true)),
    },
    ParamSpec {
        name: "internal_list_limit",
        kind: ParamKind::Int { min: 1, max: 1000 },
        default: Some(ParamDefault::Int(10)),
    },
    ParamSpec {
        name: "backlinks_status_type",
        kind: ParamKind::Choice(&["all", "live", "lost"]),
        default: Some(ParamDefault::Str("live")),
    },
    ParamSpec {
        name: "backlinks_filters",
        kind: ParamKind::Filters,
        default: None,
    },
    RANK_SCALE,
    TAG,
];

const HISTORY_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "date_from",
        kind: ParamKind::Date,
        default: Some(ParamDefault::Date("2019-01-01")),
    },
    DATE_TO,
    RANK_SCALE,
    TAG,
];

const TIMESERIES_SUMMARY_PARAMS: &[ParamSpec] = &[
    DATE_FROM_MONTH_AGO,
    DATE_TO,
    GROUP_RANGE,
    INCLUDE_SUBDOMAINS,
    RANK_SCALE,
    TAG,
];

const TIMESERIES_NEW_LOST_PARAMS: &[ParamSpec] = &[
    DATE_FROM_MONTH_AGO,
    DATE_TO,
    GROUP_RANGE,
    INCLUDE_SUBDOMAINS,
    TAG,
];

const BULK_NEW_LOST_PARAMS: &[ParamSpec] = &[DATE_FROM_MONTH_AGO, TAG];
const BULK_RANKS_PARAMS: &[ParamSpec] = &[RANK_SCALE, TAG];
const BULK_PAGES_SUMMARY_PARAMS: &[ParamSpec] = &[INCLUDE_SUBDOMAINS, RANK_SCALE, TAG];
const TAG_ONLY_PARAMS: &[ParamSpec] = &[TAG];

/// The most `offset` the list endpoints take; past it, `backlinks` pages by
/// `search_after_token` ("the maximum value is 20,000").
pub const LIST_MAX_OFFSET: i64 = 20_000;
/// The most items one page of a list endpoint returns (`limit`'s "maximum value: 1000").
pub const LIST_MAX_LIMIT: i64 = 1000;
/// Most conditions in one `filters` array ("8 filters maximum").
pub const LIST_MAX_FILTERS: usize = 8;
/// Most rules in one `order_by` ("no more than three sorting rules").
pub const LIST_MAX_ORDER_RULES: usize = 3;
/// Most targets of one `domain_intersection` call ("up to 20").
pub const INTERSECTION_MAX_TARGETS: usize = 20;
/// Most `exclude_targets` of one intersection call ("up to 10").
pub const INTERSECTION_MAX_EXCLUDED: usize = 10;

const LIMIT: ParamSpec = ParamSpec {
    name: "limit",
    kind: ParamKind::Int {
        min: 1,
        max: LIST_MAX_LIMIT,
    },
    default: Some(ParamDefault::Int(100)),
};
/// `offset`: the endpoint reference gives every list endpoint the 20,000 maximum the
/// backlinks field list states.
const OFFSET: ParamSpec = ParamSpec {
    name: "offset",
    kind: ParamKind::Int {
        min: 0,
        max: LIST_MAX_OFFSET,
    },
    default: Some(ParamDefault::Int(0)),
};
const FILTERS: ParamSpec = ParamSpec {
    name: "filters",
    kind: ParamKind::Filters,
    default: None,
};
const ORDER_BY: ParamSpec = ParamSpec {
    name: "order_by",
    kind: ParamKind::OrderBy,
    default: None,
};
const INTERNAL_LIST_LIMIT: ParamSpec = ParamSpec {
    name: "internal_list_limit",
    kind: ParamKind::Int { min: 1, max: 1000 },
    default: Some(ParamDefault::Int(10)),
};
const STATUS_TYPE: ParamSpec = ParamSpec {
    name: "backlinks_status_type",
    kind: ParamKind::Choice(&["all", "live", "lost"]),
    default: Some(ParamDefault::Str("live")),
};
const BACKLINKS_FILTERS: ParamSpec = ParamSpec {
    name: "backlinks_filters",
    kind: ParamKind::Filters,
    default: None,
};
const INCLUDE_INDIRECT: ParamSpec = ParamSpec {
    name: "include_indirect_links",
    kind: ParamKind::Bool,
    default: Some(ParamDefault::Bool(true)),
};
const EXCLUDE_INTERNAL: ParamSpec = ParamSpec {
    name: "exclude_internal_backlinks",
    kind: ParamKind::Bool,
    default: Some(ParamDefault::Bool(true)),
};

const BACKLINKS_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "mode",
        kind: ParamKind::Choice(&["as_is", "one_per_domain", "one_per_anchor"]),
        default: Some(ParamDefault::Str("as_is")),
    },
    ParamSpec {
        name: "custom_mode",
        kind: ParamKind::Object,
        default: None,
    },
    FILTERS,
    ORDER_BY,
    OFFSET,
    ParamSpec {
        name: "search_after_token",
        kind: ParamKind::Text { max_chars: 1000 },
        default: None,
    },
    LIMIT,
    STATUS_TYPE,
    INCLUDE_SUBDOMAINS,
    EXCLUDE_INTERNAL,
    RANK_SCALE,
    TAG,
];

/// referring_domains and anchors take the same parameters.
const AGGREGATE_LIST_PARAMS: &[ParamSpec] = &[
    LIMIT,
    OFFSET,
    INTERNAL_LIST_LIMIT,
    STATUS_TYPE,
    FILTERS,
    ORDER_BY,
    BACKLINKS_FILTERS,
    INCLUDE_SUBDOMAINS,
    INCLUDE_INDIRECT,
    EXCLUDE_INTERNAL,
    RANK_SCALE,
    TAG,
];

const DOMAIN_PAGES_PARAMS: &[ParamSpec] = &[
    LIMIT,
    OFFSET,
    INTERNAL_LIST_LIMIT,
    STATUS_TYPE,
    FILTERS,
    ORDER_BY,
    BACKLINKS_FILTERS,
    INCLUDE_SUBDOMAINS,
    EXCLUDE_INTERNAL,
    RANK_SCALE,
    TAG,
];

const COMPETITORS_PARAMS: &[ParamSpec] = &[
    LIMIT,
    OFFSET,
    FILTERS,
    ORDER_BY,
    ParamSpec {
        name: "main_domain",
        kind: ParamKind::Bool,
        default: Some(ParamDefault::Bool(true)),
    },
    ParamSpec {
        name: "exclude_large_domains",
        kind: ParamKind::Bool,
        default: Some(ParamDefault::Bool(true)),
    },
    EXCLUDE_INTERNAL,
    RANK_SCALE,
    TAG,
];

const DOMAIN_INTERSECTION_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "exclude_targets",
        kind: ParamKind::TextList {
            max_items: INTERSECTION_MAX_EXCLUDED,
        },
        default: None,
    },
    FILTERS,
    ORDER_BY,
    OFFSET,
    LIMIT,
    INTERNAL_LIST_LIMIT,
    STATUS_TYPE,
    BACKLINKS_FILTERS,
    INCLUDE_SUBDOMAINS,
    INCLUDE_INDIRECT,
    EXCLUDE_INTERNAL,
    ParamSpec {
        name: "intersection_mode",
        kind: ParamKind::Choice(&["all", "partial"]),
        default: Some(ParamDefault::Str("all")),
    },
    RANK_SCALE,
    TAG,
];

impl Endpoint {
    pub const ALL: [Endpoint; 11] = [
        Endpoint::Summary,
        Endpoint::History,
        Endpoint::TimeseriesSummary,
        Endpoint::TimeseriesNewLostSummary,
        Endpoint::BulkNewLostBacklinks,
        Endpoint::BulkNewLostReferringDomains,
        Endpoint::BulkRanks,
        Endpoint::BulkBacklinks,
        Endpoint::BulkReferringDomains,
        Endpoint::BulkSpamScore,
        Endpoint::BulkPagesSummary,
    ];

    /// The list endpoints: served by the sandbox and named by the API's price list;
    /// collected page by page (`plan::paging`).
    pub const LISTS: [Endpoint; 6] = [
        Endpoint::Backlinks,
        Endpoint::ReferringDomains,
        Endpoint::Anchors,
        Endpoint::DomainPages,
        Endpoint::Competitors,
        Endpoint::DomainIntersection,
    ];

    /// Every endpoint the API client and the sandbox know: [`Endpoint::ALL`], then
    /// [`Endpoint::LISTS`].
    pub fn every() -> impl Iterator<Item = Endpoint> {
        Endpoint::ALL.into_iter().chain(Endpoint::LISTS)
    }

    /// A list endpoint: paged by `limit` and `offset`, its answer `total_count`,
    /// `items_count` and `items`.
    pub fn is_list(self) -> bool {
        Endpoint::LISTS.contains(&self)
    }

    /// The name in the API path, in job files and in the ledger.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Summary => "summary",
            Endpoint::History => "history",
            Endpoint::TimeseriesSummary => "timeseries_summary",
            Endpoint::TimeseriesNewLostSummary => "timeseries_new_lost_summary",
            Endpoint::BulkNewLostBacklinks => "bulk_new_lost_backlinks",
            Endpoint::BulkNewLostReferringDomains => "bulk_new_lost_referring_domains",
            Endpoint::BulkRanks => "bulk_ranks",
            Endpoint::BulkBacklinks => "bulk_backlinks",
            Endpoint::BulkReferringDomains => "bulk_referring_domains",
            Endpoint::BulkSpamScore => "bulk_spam_score",
            Endpoint::BulkPagesSummary => "bulk_pages_summary",
            Endpoint::Backlinks => "backlinks",
            Endpoint::ReferringDomains => "referring_domains",
            Endpoint::Anchors => "anchors",
            Endpoint::DomainPages => "domain_pages",
            Endpoint::Competitors => "competitors",
            Endpoint::DomainIntersection => "domain_intersection",
        }
    }

    /// Path below the base URL (`https://api.dataforseo.com/v3`).
    pub fn path(self) -> String {
        format!("backlinks/{}/live", self.name())
    }

    /// Bulk endpoints take `targets` (up to 1000); the others one `target`.
    pub fn is_bulk(self) -> bool {
        self.name().starts_with("bulk_")
    }

    /// history and timeseries take a bare domain only, never a page.
    pub fn domain_only(self) -> bool {
        matches!(
            self,
            Endpoint::History | Endpoint::TimeseriesSummary | Endpoint::TimeseriesNewLostSummary
        )
    }

    pub fn params(self) -> &'static [ParamSpec] {
        match self {
            Endpoint::Summary => SUMMARY_PARAMS,
            Endpoint::History => HISTORY_PARAMS,
            Endpoint::TimeseriesSummary => TIMESERIES_SUMMARY_PARAMS,
            Endpoint::TimeseriesNewLostSummary => TIMESERIES_NEW_LOST_PARAMS,
            Endpoint::BulkNewLostBacklinks | Endpoint::BulkNewLostReferringDomains => {
                BULK_NEW_LOST_PARAMS
            }
            Endpoint::BulkRanks => BULK_RANKS_PARAMS,
            Endpoint::BulkPagesSummary => BULK_PAGES_SUMMARY_PARAMS,
            Endpoint::BulkBacklinks | Endpoint::BulkReferringDomains | Endpoint::BulkSpamScore => {
                TAG_ONLY_PARAMS
            }
            Endpoint::Backlinks => BACKLINKS_PARAMS,
            Endpoint::ReferringDomains | Endpoint::Anchors => AGGREGATE_LIST_PARAMS,
            Endpoint::DomainPages => DOMAIN_PAGES_PARAMS,
            Endpoint::Competitors => COMPETITORS_PARAMS,
            Endpoint::DomainIntersection => DOMAIN_INTERSECTION_PARAMS,
        }
    }

    /// The request options an answer of this endpoint depends on, with the API's
    /// defaults filled in: every parameter of `task` but the target(s), `tag` (it
    /// changes nothing), the dates (they choose which periods, or are a key column of
    /// their own: `date_from` of the bulk new/lost endpoints) and `group_range` (a key
    /// column of its own). Part of the natural key of the endpoint's table, so that
    /// two collections asking differently never overwrite each other.
    pub fn answer_options(self, task: &serde_json::Value) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for spec in self.params() {
            if let (false, Some(d)) = (
                is_not_an_option(spec.name),
                spec.default.and_then(|d| d.json()),
            ) {
                out.insert(spec.name.to_string(), d);
            }
        }
        if let Some(task) = task.as_object() {
            for (k, v) in task {
                if !is_not_an_option(k) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        serde_json::Value::Object(out)
    }

    /// [`Endpoint::answer_options`] of a request that sets nothing: the API's defaults,
    /// the option set the views show unless asked for another.
    pub fn default_options(self) -> serde_json::Value {
        self.answer_options(&serde_json::Value::Null)
    }

    pub fn param(self, name: &str) -> Option<&'static ParamSpec> {
        self.params().iter().find(|p| p.name == name)
    }

    /// Whether its answers are periods of a date range (history, the timeseries).
    pub fn has_periods(self) -> bool {
        matches!(
            self,
            Endpoint::History | Endpoint::TimeseriesSummary | Endpoint::TimeseriesNewLostSummary
        )
    }

    /// How long after its figures are complete a period of this endpoint settles when
    /// the collection says nothing: none for history (the documents say what a month's
    /// item is: the snapshot of its first day), seven days for a timeseries (the
    /// documents are silent; asking a week of recent periods again costs rows, $0.00003
    /// each, on calls a fire makes anyway). Endpoints without periods: none.
    pub fn default_settle(self) -> std::time::Duration {
        match self {
            Endpoint::TimeseriesSummary | Endpoint::TimeseriesNewLostSummary => {
                std::time::Duration::from_secs(7 * 86_400)
            }
            _ => std::time::Duration::ZERO,
        }
    }

    /// The earliest `date_from` the API accepts, if it has a floor.
    pub fn earliest_date_from(self) -> Option<EarliestDate> {
        match self {
            Endpoint::History => Some(EarliestDate::Fixed(history_earliest())),
            Endpoint::TimeseriesSummary | Endpoint::TimeseriesNewLostSummary => {
                Some(EarliestDate::Fixed(timeseries_earliest()))
            }
            Endpoint::BulkNewLostBacklinks | Endpoint::BulkNewLostReferringDomains => {
                Some(EarliestDate::OneYearAgo)
            }
            _ => None,
        }
    }

    /// Most targets one call takes.
    pub fn max_targets(self) -> usize {
        if self.is_bulk() {
            BULK_MAX_TARGETS
        } else if self == Endpoint::DomainIntersection {
            INTERSECTION_MAX_TARGETS
        } else {
            1
        }
    }

    /// `domain_pages` takes a domain or subdomain only ("domain or subdomain").
    pub fn takes_a_page(self) -> bool {
        !self.domain_only() && self != Endpoint::DomainPages
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown endpoint `{}`{}; endpoints are: {}", crate::words::shown(.given), .suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), Endpoint::every().map(|e| e.name()).collect::<Vec<_>>().join(", "))]
pub struct UnknownEndpoint {
    pub given: String,
    pub suggestion: Option<&'static str>,
}

impl TryFrom<String> for Endpoint {
    type Error = UnknownEndpoint;
    fn try_from(s: String) -> Result<Endpoint, UnknownEndpoint> {
        s.parse()
    }
}

impl FromStr for Endpoint {
    type Err = UnknownEndpoint;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::every()
            .find(|e| e.name() == s)
            .ok_or_else(|| UnknownEndpoint {
                given: s.to_string(),
                suggestion: crate::words::suggest(s, Endpoint::every().map(|e| e.name())),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn timeseries_periods_are_dated_as_the_api_documents() {
        // api-fields.md: month from 2022-03-23 to 2022-05-13 gives three items, dated
        // 2022-03-31, 2022-04-30 and 2022-05-31.
        let months = periods(d("2022-03-23"), d("2022-05-13"), GroupRange::Month);
        let ends: Vec<NaiveDate> = months.iter().map(|p| p.1).collect();
        assert_eq!(ends, [d("2022-03-31"), d("2022-04-30"), d("2022-05-31")]);
        assert_eq!(months[0].0, d("2022-03-01"));
        // Days: every date between and including both ends.
        assert_eq!(
            periods(d("2024-02-27"), d("2024-03-02"), GroupRange::Day).len(),
            5
        );
        // ISO weeks, Monday to Sunday: 2024-01-03 (a Wednesday) is in the week
        // 2024-01-01..07; 2024-02-14 in 2024-02-12..18: seven weeks.
        let weeks = periods(d("2024-01-03"), d("2024-02-14"), GroupRange::Week);
        assert_eq!(weeks.len(), 7);
        assert_eq!(weeks[0], (d("2024-01-01"), d("2024-01-07")));
        assert_eq!(weeks[6], (d("2024-02-12"), d("2024-02-18")));
        // Years, each dated its last day.
        let years = periods(d("2019-02-01"), d("2021-06-30"), GroupRange::Year);
        let ends: Vec<NaiveDate> = years.iter().map(|p| p.1).collect();
        assert_eq!(ends, [d("2019-12-31"), d("2020-12-31"), d("2021-12-31")]);
        // History: one item per month, both ends' months included.
        assert_eq!(months_between(d("2019-01-15"), d("2019-12-01")), 12);
        assert_eq!(months_between(d("2024-03-10"), d("2024-03-31")), 1);
        assert_eq!(months_between(d("2024-04-01"), d("2024-03-31")), 0);
    }

    #[test]
    fn every_endpoint_name_round_trips() {
        for e in Endpoint::every() {
            assert_eq!(e.name().parse::<Endpoint>().unwrap(), e);
        }
    }

    #[test]
    fn a_misspelled_endpoint_gets_a_suggestion() {
        let err = "sumary".parse::<Endpoint>().unwrap_err();
        assert_eq!(err.suggestion, Some("summary"));
        assert!(err.to_string().contains("did you mean `summary`"));
    }

    #[test]
    fn only_bulk_endpoints_take_many_targets() {
        assert_eq!(Endpoint::BulkRanks.max_targets(), 1000);
        assert_eq!(Endpoint::Summary.max_targets(), 1);
        assert!(Endpoint::History.domain_only());
        assert!(!Endpoint::BulkPagesSummary.domain_only());
    }
}
