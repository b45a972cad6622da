//! The warehouse's tables, described once: each lists its key columns and the API
//! fields it keeps with their SQL types ([`TABLES`]), the `info` object's fields and the
//! dimensions of the `referring_links_*` breakdowns. Normalization, the writes, the
//! Citus statements and the tests against the API's documents all read these.

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
    /// JSON object → `jsonb`; only key columns.
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
    /// API fields kept, by their API names.
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
        cols.extend(self.fields.iter().map(|(n, t)| (n.to_string(), *t)));
        if self.info {
            cols.extend(INFO_FIELDS.iter().map(|(n, t)| (format!("info_{n}"), *t)));
        }
        cols.push(("collected_at".into(), ColType::Timestamp));
        cols.push(("raw_response_id".into(), ColType::Int));
        cols
    }
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

use ColType::{Date as D, Int as I, Json as J, Text as T, Timestamp as Ts};

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
];

/// The table an endpoint's rows go to.
pub fn table_for(endpoint: Endpoint) -> &'static TableSpec {
    TABLES
        .iter()
        .find(|t| t.endpoint == endpoint)
        .expect("every endpoint has a table")
}
