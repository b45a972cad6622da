//! The warehouse's tables, described once: each lists its key columns and the API
//! fields it keeps with their SQL types ([`TABLES`]), the `info` object's fields and the
//! dimensions of the `referring_links_*` breakdowns. Normalization, the writes, the
//! Citus statements and the tests against the API's documents all read these.
//!
//! A field of a nested object is named by its path (`meta.title`) and stored flattened
//! (`meta_title`); a map whose keys are data (`referring_links_tld` of a list item, a
//! page's `meta.technologies`) and an array of objects (`indirect_link_path`) are
//! `jsonb` columns of their own name.

use crate::api::Endpoint;

/// SQL type of a warehouse column, and the JSON type it is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    /// JSON integer → `bigint`.
    Int,
    /// JSON string → `text`.
    Text,
    /// JSON boolean → `boolean`.
    Bool,
    /// `"yyyy-mm-dd hh:mm:ss +00:00"` → `timestamptz`.
    Timestamp,
    /// `date`; only key columns.
    Date,
    /// JSON array of strings → `text[]`.
    TextArray,
    /// JSON object → `jsonb`: the options of a key; as a field, a map or an array of
    /// objects (a field's value must be an object or an array).
    Json,
}

impl ColType {
    pub fn sql(self) -> &'static str {
        match self {
            ColType::Int => "bigint",
            ColType::Text => "text",
            ColType::Bool => "boolean",
            ColType::Timestamp => "timestamptz",
            ColType::Date => "date",
            ColType::TextArray => "text[]",
            ColType::Json => "jsonb",
        }
    }
}

/// One normalized table.
#[derive(Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub endpoint: Endpoint,
    /// The natural key, in column order. `options` in it is the request's
    /// [`Endpoint::answer_options`].
    pub key: &'static [(&'static str, ColType)],
    /// Whether the rows carry `rank_scale` (the scale of the `rank` they store), after
    /// the key.
    pub rank_scale: bool,
    /// API fields kept, by their API names; a nested object's fields by their path
    /// (`page_summary.rank`), stored as `page_summary_rank`.
    pub fields: &'static [(&'static str, ColType)],
    /// Whether the `info` object is flattened into `info_*` columns.
    pub info: bool,
    /// Whether the six `referring_links_*` maps go to `link_breakdowns`.
    pub breakdowns: bool,
}

impl TableSpec {
    /// Every column in insert order: key, `rank_scale`, fields, info, then bookkeeping.
    pub fn columns(&self) -> Vec<(String, ColType)> {
        let mut cols: Vec<(String, ColType)> =
            self.key.iter().map(|(n, t)| (n.to_string(), *t)).collect();
        if self.rank_scale {
            cols.push(("rank_scale".into(), ColType::Text));
        }
        cols.extend(self.fields.iter().map(|(n, t)| (column_name(n), *t)));
        if self.info {
            cols.extend(INFO_FIELDS.iter().map(|(n, t)| (format!("info_{n}"), *t)));
        }
        cols.push(("collected_at".into(), ColType::Timestamp));
        cols.push(("raw_response_id".into(), ColType::Int));
        cols
    }
}

/// The column of a field: its path with `.` as `_` (`meta.h_1` is `meta_h_1`).
pub fn column_name(field: &str) -> String {
    field.replace('.', "_")
}

/// Fields of the nested `info` object.
pub const INFO_FIELDS: &[(&str, ColType)] = &[
    ("server", ColType::Text),
    ("cms", ColType::Text),
    ("platform_type", ColType::TextArray),
    ("ip_address", ColType::Text),
    ("country", ColType::Text),
    ("is_ip", ColType::Bool),
    ("target_spam_score", ColType::Int),
];

/// The six `referring_links_<dimension>` maps.
pub const BREAKDOWN_DIMENSIONS: &[&str] = &[
    "tld",
    "types",
    "attributes",
    "platform_types",
    "semantic_locations",
    "countries",
];

use ColType::{
    Bool as B, Date as D, Int as I, Json as J, Text as T, TextArray as TA, Timestamp as Ts,
};

macro_rules! fields {
    ($($name:literal : $ty:ident),* $(,)?) => { &[$(($name, $ty)),*] };
}

pub const SUMMARY: TableSpec = TableSpec {
    name: "summary",
    endpoint: Endpoint::Summary,
    key: fields!("target": T, "options": J, "collected_on": D),
    rank_scale: true,
    fields: fields!(
        "first_seen": Ts, "lost_date": Ts, "rank": I, "backlinks": I, "backlinks_nofollow": I,
        "backlinks_spam_score": I, "crawled_pages": I, "internal_links_count": I,
        "external_links_count": I, "broken_backlinks": I, "broken_pages": I,
        "referring_domains": I, "referring_domains_nofollow": I, "referring_main_domains": I,
        "referring_main_domains_nofollow": I, "referring_ips": I, "referring_subnets": I,
        "referring_pages": I, "referring_pages_nofollow": I,
    ),
    info: true,
    breakdowns: true,
};

pub const HISTORY: TableSpec = TableSpec {
    name: "history",
    endpoint: Endpoint::History,
    key: fields!("target": T, "options": J, "month": D),
    rank_scale: true,
    fields: fields!(
        "rank": I, "backlinks": I, "new_backlinks": I,
        "lost_backlinks": I, "new_referring_domains": I, "lost_referring_domains": I,
        "crawled_pages": I, "internal_links_count": I, "external_links_count": I,
        "broken_backlinks": I, "broken_pages": I, "referring_domains": I,
        "referring_domains_nofollow": I, "referring_main_domains": I,
        "referring_main_domains_nofollow": I, "referring_ips": I, "referring_subnets": I,
        "referring_pages": I, "referring_pages_nofollow": I,
    ),
    info: true,
    breakdowns: true,
};

pub const TIMESERIES_SUMMARY: TableSpec = TableSpec {
    name: "timeseries_summary",
    endpoint: Endpoint::TimeseriesSummary,
    key: fields!("target": T, "options": J, "group_range": T, "date": D),
    rank_scale: true,
    fields: fields!(
        "rank": I, "backlinks": I, "backlinks_nofollow": I, "referring_pages": I,
        "referring_pages_nofollow": I, "referring_domains": I, "referring_domains_nofollow": I,
        "referring_main_domains": I, "referring_main_domains_nofollow": I, "referring_ips": I,
        "referring_subnets": I,
    ),
    info: false,
    breakdowns: false,
};

pub const TIMESERIES_NEW_LOST: TableSpec = TableSpec {
    name: "timeseries_new_lost_summary",
    endpoint: Endpoint::TimeseriesNewLostSummary,
    key: fields!("target": T, "options": J, "group_range": T, "date": D),
    rank_scale: false,
    fields: fields!(
        "new_backlinks": I, "lost_backlinks": I, "new_referring_domains": I,
        "lost_referring_domains": I, "new_referring_main_domains": I,
        "lost_referring_main_domains": I,
    ),
    info: false,
    breakdowns: false,
};

pub const BULK_NEW_LOST_BACKLINKS: TableSpec = TableSpec {
    name: "bulk_new_lost_backlinks",
    endpoint: Endpoint::BulkNewLostBacklinks,
    key: fields!("target": T, "date_from": D, "collected_on": D),
    rank_scale: false,
    fields: fields!("new_backlinks": I, "lost_backlinks": I),
    info: false,
    breakdowns: false,
};

pub const BULK_NEW_LOST_REFERRING_DOMAINS: TableSpec = TableSpec {
    name: "bulk_new_lost_referring_domains",
    endpoint: Endpoint::BulkNewLostReferringDomains,
    key: fields!("target": T, "date_from": D, "collected_on": D),
    rank_scale: false,
    fields: fields!(
        "new_referring_domains": I, "lost_referring_domains": I,
        "new_referring_main_domains": I, "lost_referring_main_domains": I,
    ),
    info: false,
    breakdowns: false,
};

pub const BULK_RANKS: TableSpec = TableSpec {
    name: "bulk_ranks",
    endpoint: Endpoint::BulkRanks,
    key: fields!("target": T, "options": J, "collected_on": D),
    rank_scale: true,
    fields: fields!("rank": I),
    info: false,
    breakdowns: false,
};

pub const BULK_BACKLINKS: TableSpec = TableSpec {
    name: "bulk_backlinks",
    endpoint: Endpoint::BulkBacklinks,
    key: fields!("target": T, "options": J, "collected_on": D),
    rank_scale: false,
    fields: fields!("backlinks": I),
    info: false,
    breakdowns: false,
};

pub const BULK_REFERRING_DOMAINS: TableSpec = TableSpec {
    name: "bulk_referring_domains",
    endpoint: Endpoint::BulkReferringDomains,
    key: fields!("target": T, "options": J, "collected_on": D),
    rank_scale: false,
    fields: fields!(
        "referring_domains": I, "referring_domains_nofollow": I, "referring_main_domains": I,
        "referring_main_domains_nofollow": I,
    ),
    info: false,
    breakdowns: false,
};

pub const BULK_SPAM_SCORE: TableSpec = TableSpec {
    name: "bulk_spam_score",
    endpoint: Endpoint::BulkSpamScore,
    key: fields!("target": T, "options": J, "collected_on": D),
    rank_scale: false,
    fields: fields!("spam_score": I),
    info: false,
    breakdowns: false,
};

pub const BULK_PAGES_SUMMARY: TableSpec = TableSpec {
    name: "bulk_pages_summary",
    endpoint: Endpoint::BulkPagesSummary,
    key: fields!("target": T, "options": J, "collected_on": D),
    rank_scale: true,
    fields: fields!(
        "rank": I, "main_domain_rank": I, "backlinks": I, "first_seen": Ts, "lost_date": Ts,
        "backlinks_spam_score": I, "broken_backlinks": I, "broken_pages": I,
        "referring_domains": I, "referring_domains_nofollow": I, "referring_main_domains": I,
        "referring_main_domains_nofollow": I, "referring_ips": I, "referring_subnets": I,
        "referring_pages": I, "referring_pages_nofollow": I,
    ),
    // The pages summary item has no `info` object (api-fields.md).
    info: false,
    breakdowns: true,
};

// The list endpoints' tables (issue 26): one row per item and fire, keyed by the
// target, the options, the day it was collected (`collected_on`, the partition) and
// the item's own identity. Each is a snapshot of the listing as one fire saw it, so
// what appeared and disappeared between fires is a comparison of two days' rows (the
// views of migration 0026). Every field of the documented item is a column; `type`
// (one constant per endpoint, which the table is) aside.

/// `backlinks`: one row per link. Its identity, `link_id`, is computed from the fields
/// that make two items two links (see `normalize::link_id`).
pub const BACKLINKS: TableSpec = TableSpec {
    name: "backlinks",
    endpoint: Endpoint::Backlinks,
    key: fields!("target": T, "options": J, "collected_on": D, "link_id": T),
    rank_scale: true,
    fields: fields!(
        "domain_from": T, "url_from": T, "url_from_https": B, "domain_to": T, "url_to": T,
        "url_to_https": B, "tld_from": T, "is_new": B, "is_lost": B,
        "backlink_spam_score": I, "rank": I, "page_from_rank": I, "domain_from_rank": I,
        "domain_from_platform_type": TA, "domain_from_is_ip": B, "domain_from_ip": T,
        "domain_from_country": T, "page_from_external_links": I,
        "page_from_internal_links": I, "page_from_size": I, "page_from_encoding": T,
        "page_from_language": T, "page_from_title": T, "page_from_status_code": I,
        "first_seen": Ts, "prev_seen": Ts, "last_seen": Ts, "item_type": T,
        "attributes": TA, "dofollow": B, "original": B, "alt": T, "image_url": T,
        "anchor": T, "text_pre": T, "text_post": T, "semantic_location": T,
        "links_count": I, "group_count": I, "is_broken": B, "url_to_status_code": I,
        "url_to_spam_score": I, "url_to_redirect_target": T,
        "ranked_keywords_info.page_from_keywords_count_top_3": I,
        "ranked_keywords_info.page_from_keywords_count_top_10": I,
        "ranked_keywords_info.page_from_keywords_count_top_100": I,
        "is_indirect_link": B, "indirect_link_path": J,
    ),
    info: false,
    breakdowns: false,
};

/// The fields referring domains, anchors and a page's summary share: an aggregate of
/// links, its `referring_links_*` maps as `jsonb` (their keys are data, and
/// `link_breakdowns`' key has no column for the item they belong to).
macro_rules! aggregate_fields {
    ($prefix:literal $(, $extra:expr)* $(,)?) => {
        &[
            $($extra,)*
            (concat!($prefix, "rank"), I),
            (concat!($prefix, "backlinks"), I),
            (concat!($prefix, "first_seen"), Ts),
            (concat!($prefix, "lost_date"), Ts),
            (concat!($prefix, "backlinks_spam_score"), I),
            (concat!($prefix, "broken_backlinks"), I),
            (concat!($prefix, "broken_pages"), I),
            (concat!($prefix, "referring_domains"), I),
            (concat!($prefix, "referring_domains_nofollow"), I),
            (concat!($prefix, "referring_main_domains"), I),
            (concat!($prefix, "referring_main_domains_nofollow"), I),
            (concat!($prefix, "referring_ips"), I),
            (concat!($prefix, "referring_subnets"), I),
            (concat!($prefix, "referring_pages"), I),
            (concat!($prefix, "referring_pages_nofollow"), I),
            (concat!($prefix, "referring_links_tld"), J),
            (concat!($prefix, "referring_links_types"), J),
            (concat!($prefix, "referring_links_attributes"), J),
            (concat!($prefix, "referring_links_platform_types"), J),
            (concat!($prefix, "referring_links_semantic_locations"), J),
            (concat!($prefix, "referring_links_countries"), J),
        ]
    };
}

/// `referring_domains`: one row per referring domain, its identity the `domain`.
pub const REFERRING_DOMAINS: TableSpec = TableSpec {
    name: "referring_domains",
    endpoint: Endpoint::ReferringDomains,
    key: fields!("target": T, "options": J, "collected_on": D, "domain": T),
    rank_scale: true,
    fields: aggregate_fields!(""),
    info: false,
    breakdowns: false,
};

/// `anchors`: one row per anchor text.
pub const ANCHORS: TableSpec = TableSpec {
    name: "anchors",
    endpoint: Endpoint::Anchors,
    key: fields!("target": T, "options": J, "collected_on": D, "anchor": T),
    rank_scale: true,
    fields: aggregate_fields!(""),
    info: false,
    breakdowns: false,
};

/// `domain_pages`: one row per page of the target, `meta` and `page_summary`
/// flattened (the summary's maps as `jsonb`).
pub const DOMAIN_PAGES: TableSpec = TableSpec {
    name: "domain_pages",
    endpoint: Endpoint::DomainPages,
    key: fields!("target": T, "options": J, "collected_on": D, "page": T),
    rank_scale: true,
    fields: aggregate_fields!(
        "page_summary.",
        ("main_domain", T),
        ("domain", T),
        ("tld", T),
        ("ip", T),
        ("first_visited", Ts),
        ("prev_visited", Ts),
        ("fetch_time", Ts),
        ("status_code", I),
        ("location", T),
        ("size", I),
        ("encoded_size", I),
        ("content_encoding", T),
        ("media_type", T),
        ("server", T),
        ("meta.title", T),
        ("meta.canonical", T),
        ("meta.internal_links_count", I),
        ("meta.external_links_count", I),
        ("meta.images_count", I),
        ("meta.words_count", I),
        ("meta.page_spam_score", I),
        ("meta.social_media_tags", J),
        ("meta.h_1", TA),
        ("meta.h_2", TA),
        ("meta.h_3", TA),
        ("meta.images_alt", TA),
        ("meta.powered_by", TA),
        ("meta.language", T),
        ("meta.charset", T),
        ("meta.platform_type", TA),
        ("meta.technologies", J),
    ),
    info: false,
    breakdowns: false,
};

/// `competitors`: one row per competing domain, the item's `target` stored as
/// `competitor` (the row's `target` is the one asked about).
pub const COMPETITORS: TableSpec = TableSpec {
    name: "competitors",
    endpoint: Endpoint::Competitors,
    key: fields!("target": T, "options": J, "collected_on": D, "competitor": T),
    rank_scale: true,
    fields: fields!("rank": I, "intersections": I),
    info: false,
    breakdowns: false,
};

/// `domain_intersection`: one row per referring domain shared by the request's
/// `targets`. The row's `target` is the request's first target (`targets["1"]`), the
/// whole map is in the key (`targets`: the answer depends on every one of them), and
/// `domain` is the referring domain the item's per-target objects name.
pub const DOMAIN_INTERSECTION: TableSpec = TableSpec {
    name: "domain_intersection",
    endpoint: Endpoint::DomainIntersection,
    key: fields!("target": T, "options": J, "targets": J, "collected_on": D, "domain": T),
    rank_scale: true,
    fields: fields!("domain_intersection": J, "summary.intersections_count": I),
    info: false,
    breakdowns: false,
};

/// Every endpoint table, in endpoint order.
pub const TABLES: &[&TableSpec] = &[
    &SUMMARY,
    &HISTORY,
    &TIMESERIES_SUMMARY,
    &TIMESERIES_NEW_LOST,
    &BULK_NEW_LOST_BACKLINKS,
    &BULK_NEW_LOST_REFERRING_DOMAINS,
    &BULK_RANKS,
    &BULK_BACKLINKS,
    &BULK_REFERRING_DOMAINS,
    &BULK_SPAM_SCORE,
    &BULK_PAGES_SUMMARY,
    &BACKLINKS,
    &REFERRING_DOMAINS,
    &ANCHORS,
    &DOMAIN_PAGES,
    &COMPETITORS,
    &DOMAIN_INTERSECTION,
];

/// The table an endpoint's rows go to.
pub fn table_for(endpoint: Endpoint) -> &'static TableSpec {
    TABLES
        .iter()
        .find(|t| t.endpoint == endpoint)
        .expect("every endpoint has a table")
}
