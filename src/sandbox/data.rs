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
//! known for; see `Quirk` below. The modes that change the envelope rather than the result
//! (and `quirk-no-funds`) are the server's, described in [`crate::sandbox`].

use std::collections::BTreeSet;

use chrono::{Datelike, Days, Months, NaiveDate};
use serde_json::{Map, Value, json};
use xxhash_rust::xxh3::xxh3_64;

use crate::api::endpoint::{
    BULK_MAX_TARGETS, GroupRange, PAGES_SUMMARY_MAX_DOMAINS, first_of_month, history_earliest,
    periods, timeseries_earliest,
};
use crate::api::{Endpoint, ParamKind};

/// The API's format for instants: `2019-11-15 12:57:46 +00:00`.
const INSTANT_FORMAT: &str = "%Y-%m-%d %H:%M:%S +00:00";
/// New/lost counts of `history` exist only from May 2021; before that the API sends 0.
const NEW_LOST_SINCE: (i32, u32) = (2021, 5);
/// Default `internal_list_limit` of the API: at most this many keys per breakdown map.
const DEFAULT_LIST_LIMIT: usize = 10;

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
    let result = match endpoint {
        Endpoint::Summary => summary(&req, today),
        Endpoint::History => history(&req, today),
        Endpoint::TimeseriesSummary | Endpoint::TimeseriesNewLostSummary => timeseries(&req),
        _ => bulk(&req, today),
    };
    Ok(Value::Array(vec![result]))
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

/// A validated task with the API's defaults filled in.
#[derive(Debug)]
struct Request {
    endpoint: Endpoint,
    /// The one target, or the bulk targets deduplicated and sorted (the API answers
    /// bulk calls sorted by target, not in request order).
    targets: Vec<String>,
    date_from: Option<NaiveDate>,
    date_to: Option<NaiveDate>,
    group: GroupRange,
    list_limit: usize,
    /// `rank_scale = one_hundred`: ranks are shown on 0..=100.
    rank_hundred: bool,
    /// How the summary's options scale its counts (fewer links without subdomains, ...).
    scale: f64,
}

impl Request {
    fn parse(endpoint: Endpoint, task: &Value, today: NaiveDate) -> Result<Request, String> {
        let obj = task.as_object().ok_or_else(|| invalid_field("target"))?;
        let target_key = if endpoint.is_bulk() {
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
    if !endpoint.is_bulk() {
        let target = value
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid_field("target"))?;
        // history and timeseries take a bare domain, never a page.
        if endpoint.domain_only() && (target.contains("://") || target.contains('/')) {
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
    }
}

fn parse_date(s: &str) -> Option<NaiveDate> {
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

// ---------------------------------------------------------------------------------------
// Targets and quirks
// ---------------------------------------------------------------------------------------

/// The host of a target: a domain as given, or the host of a URL; without `www.`.
fn host(target: &str) -> String {
    let rest = target.split_once("://").map_or(target, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = authority
        .split(':')
        .next()
        .unwrap_or(authority)
        .to_ascii_lowercase();
    host.strip_prefix("www.")
        .map(str::to_string)
        .unwrap_or(host)
}

/// The registrable domain, roughly: the last two labels of the host.
fn main_domain(host: &str) -> String {
    if is_ip(host) {
        return host.to_string();
    }
    let labels: Vec<&str> = host.split('.').collect();
    labels[labels.len().saturating_sub(2)..].join(".")
}

fn is_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

/// The first DNS label of a target's host, lowercase and without `www.`: `quirk-nulls`
/// for `https://www.quirk-nulls.example.org/`. It selects the `quirk-…` modes, here and
/// in the server.
pub(super) fn first_label(target: &str) -> String {
    let host = host(target);
    host.split('.').next().unwrap_or("").to_string()
}

/// A page is a URL with a path below the root; its counts are a fraction of a domain's.
fn is_page(target: &str) -> bool {
    target
        .split_once("://")
        .and_then(|(_, r)| r.split_once('/'))
        .is_some_and(|(_, path)| !path.is_empty())
}

/// Schema drift on purpose, keyed on the first DNS label of the target's host, so that
/// tests can see how the collector copes with what the real API has been seen to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quirk {
    /// Fields nobody documented, at result level, item level and inside `info`.
    UnknownFields,
    /// `backlinks` served as a JSON string.
    WrongType,
    /// `new_reffering_domains` / `lost_reffering_domains`, as older API versions spelled them.
    Misspelled,
    /// `rank`, `backlinks`, `referring_domains`, `first_seen` null; `info` and
    /// `referring_links_countries` absent; `crawled_pages` missing; the empty key of
    /// `referring_links_types` with a null count.
    Nulls,
}

impl Quirk {
    fn of(target: &str) -> Option<Quirk> {
        match first_label(target).as_str() {
            "quirk-unknown-fields" => Some(Quirk::UnknownFields),
            "quirk-wrong-type" => Some(Quirk::WrongType),
            "quirk-misspelled" => Some(Quirk::Misspelled),
            "quirk-nulls" => Some(Quirk::Nulls),
            _ => None,
        }
    }

    /// Applies the quirk to one object (a result or an item) wherever its fields exist.
    fn apply(self, obj: &mut Map<String, Value>) {
        match self {
            Quirk::UnknownFields => {
                obj.insert("backlinks_velocity".into(), json!(12));
                if let Some(Value::Object(info)) = obj.get_mut("info") {
                    info.insert("hosting".into(), json!("x"));
                }
            }
            Quirk::WrongType => {
                if let Some(v) = obj.get_mut("backlinks")
                    && v.is_number()
                {
                    *v = Value::String(v.to_string());
                }
            }
            Quirk::Misspelled => {
                if obj.contains_key("new_referring_domains")
                    || obj.contains_key("lost_referring_domains")
                {
                    // Rebuilt so the misspelled keys keep their place in the object.
                    *obj = std::mem::take(obj)
                        .into_iter()
                        .map(|(k, v)| match k.as_str() {
                            "new_referring_domains" => ("new_reffering_domains".to_string(), v),
                            "lost_referring_domains" => ("lost_reffering_domains".to_string(), v),
                            _ => (k, v),
                        })
                        .collect();
                }
            }
            Quirk::Nulls => {
                for field in ["rank", "backlinks", "referring_domains", "first_seen"] {
                    if let Some(v) = obj.get_mut(field) {
                        *v = Value::Null;
                    }
                }
                for field in ["info", "referring_links_countries", "crawled_pages"] {
                    obj.shift_remove(field);
                }
                // A map key with a null count.
                if let Some(Value::Object(types)) = obj.get_mut("referring_links_types")
                    && let Some(count) = types.get_mut("")
                {
                    *count = Value::Null;
                }
            }
        }
    }
}

fn apply_quirk(target: &str, value: &mut Value) {
    if let (Some(q), Some(obj)) = (Quirk::of(target), value.as_object_mut()) {
        q.apply(obj);
    }
}

// ---------------------------------------------------------------------------------------
// Deterministic numbers
// ---------------------------------------------------------------------------------------

/// xxh3 of the parts, separated so that ("ab", "c") and ("a", "bc") differ.
fn hash(target: &str, metric: &str, date: &str) -> u64 {
    let mut buf = Vec::with_capacity(target.len() + metric.len() + date.len() + 2);
    buf.extend_from_slice(target.as_bytes());
    buf.push(0x1f);
    buf.extend_from_slice(metric.as_bytes());
    buf.push(0x1f);
    buf.extend_from_slice(date.as_bytes());
    xxh3_64(&buf)
}

/// A number in `[0, 1)` from the hash of (target, metric, date).
fn unit(target: &str, metric: &str, date: &str) -> f64 {
    (hash(target, metric, date) >> 11) as f64 / (1u64 << 53) as f64
}

fn between(target: &str, metric: &str, date: &str, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * unit(target, metric, date)
}

fn pick<'a>(target: &str, metric: &str, pool: &[&'a str]) -> &'a str {
    pool[(hash(target, metric, "") % pool.len() as u64) as usize]
}

/// The aggregate counts of one target on one date. Every other field is derived from it.
#[derive(Clone, Copy, Debug)]
struct Snapshot {
    rank: i64,
    backlinks: i64,
    backlinks_nofollow: i64,
    backlinks_spam_score: i64,
    crawled_pages: i64,
    internal_links_count: i64,
    external_links_count: i64,
    broken_backlinks: i64,
    broken_pages: i64,
    referring_domains: i64,
    referring_domains_nofollow: i64,
    referring_main_domains: i64,
    referring_main_domains_nofollow: i64,
    referring_ips: i64,
    referring_subnets: i64,
    referring_pages: i64,
    referring_pages_nofollow: i64,
}

/// The counts of `target` on `date`, times `scale`. The size of a target is fixed by its
/// name (log-uniform, up to about 10^7 backlinks); it drifts over the years at a rate of
/// its own, with a few percent of noise per date.
fn snapshot(target: &str, date: NaiveDate, scale: f64) -> Snapshot {
    let d = date.to_string();
    let d = d.as_str();
    let t = target;
    let page = if is_page(t) { 0.03 } else { 1.0 };
    let size = 10f64.powf(between(t, "size", "", 1.5, 7.0)) * page;
    let growth: f64 = between(t, "growth", "", -0.08, 0.35);
    let years = (date - NaiveDate::from_ymd_opt(2025, 1, 1).expect("valid date")).num_days() as f64
        / 365.25;
    let level = size * (1.0 + growth).powf(years) * scale;
    let noisy = |metric: &str, base: f64| base * between(t, metric, d, 0.96, 1.04);
    let part = |metric: &str, of: i64, lo: f64, hi: f64| -> i64 {
        ((of as f64) * between(t, metric, d, lo, hi)).round() as i64
    };

    let backlinks = noisy("backlinks", level).round().max(1.0) as i64;
    let referring_domains = part("referring_domains", backlinks, 0.02, 0.25).max(1);
    let referring_main_domains =
        part("referring_main_domains", referring_domains, 0.6, 0.95).max(1);
    let referring_ips = part("referring_ips", referring_domains, 0.5, 0.9).max(1);
    let referring_pages = part("referring_pages", backlinks, 0.3, 0.9).max(1);
    // Rank follows the number of referring domains on a log scale, like PageRank does.
    let rank_f =
        ((referring_domains as f64 + 1.0).log10() / 6.0 * 1000.0) * between(t, "rank", d, 0.9, 1.0);
    Snapshot {
        rank: rank_f.round().clamp(0.0, 1000.0) as i64,
        backlinks,
        backlinks_nofollow: part("backlinks_nofollow", backlinks, 0.05, 0.4),
        backlinks_spam_score: (between(t, "backlinks_spam_score", "", 0.0, 60.0)
            + between(t, "backlinks_spam_score", d, 0.0, 5.0))
        .round() as i64,
        crawled_pages: noisy("crawled_pages", size.sqrt() * 40.0 * page).round() as i64,
        internal_links_count: noisy("internal_links_count", size.sqrt() * 900.0 * page).round()
            as i64,
        external_links_count: noisy("external_links_count", size.sqrt() * 120.0 * page).round()
            as i64,
        broken_backlinks: part("broken_backlinks", backlinks, 0.0, 0.08),
        broken_pages: part("broken_pages", referring_pages, 0.0, 0.02),
        referring_domains,
        referring_domains_nofollow: part(
            "referring_domains_nofollow",
            referring_domains,
            0.05,
            0.35,
        ),
        referring_main_domains,
        referring_main_domains_nofollow: part(
            "referring_main_domains_nofollow",
            referring_main_domains,
            0.05,
            0.35,
        ),
        referring_ips,
        referring_subnets: part("referring_subnets", referring_ips, 0.5, 0.95).max(1),
        referring_pages,
        referring_pages_nofollow: part("referring_pages_nofollow", referring_pages, 0.05, 0.4),
    }
}

/// New and lost counts over `days` ending on `date`, as fractions of the totals.
#[derive(Clone, Copy, Debug)]
struct NewLost {
    new_backlinks: i64,
    lost_backlinks: i64,
    new_referring_domains: i64,
    lost_referring_domains: i64,
    new_referring_main_domains: i64,
    lost_referring_main_domains: i64,
}

fn new_lost(target: &str, s: &Snapshot, key: &str, days: i64) -> NewLost {
    let period = (days.max(1) as f64 / 30.0).min(12.0);
    let part = |metric: &str, of: i64, lo: f64, hi: f64| -> i64 {
        ((of as f64) * between(target, metric, key, lo, hi) * period).round() as i64
    };
    NewLost {
        new_backlinks: part("new_backlinks", s.backlinks, 0.01, 0.08),
        lost_backlinks: part("lost_backlinks", s.backlinks, 0.01, 0.07),
        new_referring_domains: part("new_referring_domains", s.referring_domains, 0.005, 0.05),
        lost_referring_domains: part("lost_referring_domains", s.referring_domains, 0.005, 0.045),
        new_referring_main_domains: part(
            "new_referring_main_domains",
            s.referring_main_domains,
            0.004,
            0.04,
        ),
        lost_referring_main_domains: part(
            "lost_referring_main_domains",
            s.referring_main_domains,
            0.004,
            0.035,
        ),
    }
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

fn instant(date: NaiveDate, seconds: u64) -> String {
    date.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .checked_add_signed(chrono::Duration::seconds((seconds % 86_400) as i64))
        .expect("in range")
        .format(INSTANT_FORMAT)
        .to_string()
}

fn midnight(date: NaiveDate) -> String {
    instant(date, 0)
}

/// When the crawler first saw a link to the target: a fixed instant between 2012 and 2022.
fn first_seen(target: &str) -> String {
    let base = NaiveDate::from_ymd_opt(2012, 1, 1).expect("valid date");
    let days = hash(target, "first_seen", "") % (11 * 365);
    instant(base + Days::new(days), hash(target, "first_seen_time", ""))
}

/// When the target's last backlink was lost: null for most targets, else a date before
/// `today`.
fn lost_date(target: &str, today: NaiveDate) -> Value {
    if unit(target, "lost", "") < 0.75 {
        return Value::Null;
    }
    let days = 1 + hash(target, "lost_date", "") % 700;
    json!(instant(
        today - Days::new(days),
        hash(target, "lost_date_time", "")
    ))
}

fn info(target: &str, date: &str) -> Value {
    const SERVERS: &[&str] = &[
        "nginx",
        "Apache",
        "cloudflare",
        "LiteSpeed",
        "Microsoft-IIS/10.0",
        "openresty",
        "Varnish",
    ];
    const CMS: &[&str] = &[
        "WordPress",
        "Drupal",
        "Joomla",
        "Shopify",
        "Wix",
        "Ghost",
        "Bitrix",
    ];
    const PLATFORMS: &[&str] = &[
        "cms",
        "blogs",
        "ecommerce",
        "message-boards",
        "wikis",
        "news",
        "organization",
    ];
    const COUNTRIES: &[&str] = &[
        "US", "DE", "GB", "FR", "NL", "CA", "IN", "JP", "BR", "AU", "ES", "IT",
    ];
    let h = host(target);
    let ip = is_ip(&h);
    let ip_address = if ip {
        h.clone()
    } else {
        let n = hash(&h, "ip_address", "");
        format!(
            "{}.{}.{}.{}",
            1 + (n >> 24) % 222,
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            1 + (n & 0xff) % 254
        )
    };
    let mut platform_type = vec![pick(&h, "platform_type", PLATFORMS)];
    let second = pick(&h, "platform_type_2", PLATFORMS);
    if unit(&h, "platform_type_n", "") < 0.4 && second != platform_type[0] {
        platform_type.push(second);
    }
    json!({
        "server": pick(&h, "server", SERVERS),
        "cms": pick(&h, "cms", CMS),
        "platform_type": platform_type,
        "ip_address": ip_address,
        "country": pick(&h, "country", COUNTRIES),
        "is_ip": ip,
        "target_spam_score": (between(target, "target_spam_score", "", 0.0, 70.0)
            + between(target, "target_spam_score", date, 0.0, 5.0)).round() as i64,
    })
}

/// The six `referring_links_*` breakdowns: key → link count, at most `limit` keys each,
/// always including the empty key the API uses for "unknown".
fn breakdowns(target: &str, date: &str, total: i64, limit: usize) -> [(&'static str, Value); 6] {
    const TLD: &[&str] = &[
        "com", "org", "net", "de", "uk", "io", "ru", "fr", "nl", "info", "co", "jp", "br", "it",
        "pl", "es", "ca", "au", "in", "edu",
    ];
    const TYPES: &[&str] = &[
        "anchor",
        "image",
        "link",
        "meta",
        "canonical",
        "alternate",
        "redirect",
    ];
    const ATTRIBUTES: &[&str] = &[
        "nofollow",
        "noopener",
        "noreferrer",
        "external",
        "ugc",
        "sponsored",
    ];
    const PLATFORMS: &[&str] = &[
        "cms",
        "blogs",
        "ecommerce",
        "message-boards",
        "wikis",
        "news",
        "organization",
        "unknown",
    ];
    const LOCATIONS: &[&str] = &[
        "article", "section", "main", "header", "footer", "nav", "aside", "summary", "figure",
        "details",
    ];
    const COUNTRIES: &[&str] = &[
        "US", "DE", "GB", "FR", "NL", "CA", "RU", "IN", "JP", "BR", "AU", "ES", "IT", "PL", "SE",
        "UA",
    ];
    let map = |dim: &str, pool: &[&str]| -> Value {
        let limit = limit.max(1);
        // Each key gets a share of the total; the largest `limit - 1` are kept, plus "".
        // Squared weights give a few large keys and a long tail, like real link data.
        let weights: Vec<f64> = pool
            .iter()
            .map(|k| unit(target, &format!("{dim}:{k}"), date).powi(2) + 0.001)
            .collect();
        let sum: f64 = weights.iter().sum();
        let mut entries: Vec<(String, i64)> = pool
            .iter()
            .zip(&weights)
            .map(|(k, w)| {
                let n = (total as f64) * 0.9 * w / sum;
                (k.to_string(), n.round().max(1.0) as i64)
            })
            .collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        entries.truncate(limit - 1);
        let empty = ((total as f64) * between(target, &format!("{dim}:"), date, 0.01, 0.1))
            .round()
            .max(1.0) as i64;
        entries.push((String::new(), empty));
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Value::Object(entries.into_iter().map(|(k, v)| (k, json!(v))).collect())
    };
    [
        ("referring_links_tld", map("tld", TLD)),
        ("referring_links_types", map("types", TYPES)),
        ("referring_links_attributes", map("attributes", ATTRIBUTES)),
        (
            "referring_links_platform_types",
            map("platform_types", PLATFORMS),
        ),
        (
            "referring_links_semantic_locations",
            map("semantic_locations", LOCATIONS),
        ),
        ("referring_links_countries", map("countries", COUNTRIES)),
    ]
}

// ---------------------------------------------------------------------------------------
// Results per endpoint
// ---------------------------------------------------------------------------------------

/// Inserts the fields of a full record (summary, history item, pages summary item) from
/// `crawled_pages` on, in the API's order. `with_crawl` adds the fields only the
/// domain-level records have (`crawled_pages`, `info`, the link counts); the pages
/// summary item has none of them.
fn insert_record(
    obj: &mut Map<String, Value>,
    target: &str,
    date: &str,
    s: &Snapshot,
    limit: usize,
    with_crawl: bool,
) {
    if with_crawl {
        obj.insert("crawled_pages".into(), json!(s.crawled_pages));
        obj.insert("info".into(), info(target, date));
        obj.insert("internal_links_count".into(), json!(s.internal_links_count));
        obj.insert("external_links_count".into(), json!(s.external_links_count));
    }
    obj.insert("broken_backlinks".into(), json!(s.broken_backlinks));
    obj.insert("broken_pages".into(), json!(s.broken_pages));
    obj.insert("referring_domains".into(), json!(s.referring_domains));
    obj.insert(
        "referring_domains_nofollow".into(),
        json!(s.referring_domains_nofollow),
    );
    obj.insert(
        "referring_main_domains".into(),
        json!(s.referring_main_domains),
    );
    obj.insert(
        "referring_main_domains_nofollow".into(),
        json!(s.referring_main_domains_nofollow),
    );
    obj.insert("referring_ips".into(), json!(s.referring_ips));
    obj.insert("referring_subnets".into(), json!(s.referring_subnets));
    obj.insert("referring_pages".into(), json!(s.referring_pages));
    obj.insert(
        "referring_pages_nofollow".into(),
        json!(s.referring_pages_nofollow),
    );
    for (name, map) in breakdowns(target, date, s.backlinks, limit) {
        obj.insert(name.into(), map);
    }
}

fn summary(req: &Request, today: NaiveDate) -> Value {
    let target = req.targets[0].as_str();
    let s = snapshot(target, today, req.scale);
    let date = today.to_string();
    let mut obj = Map::new();
    obj.insert("target".into(), json!(target));
    obj.insert("first_seen".into(), json!(first_seen(target)));
    obj.insert("lost_date".into(), lost_date(target, today));
    obj.insert("rank".into(), json!(show_rank(s.rank, req.rank_hundred)));
    obj.insert("backlinks".into(), json!(s.backlinks));
    obj.insert("backlinks_spam_score".into(), json!(s.backlinks_spam_score));
    insert_record(&mut obj, target, &date, &s, req.list_limit, true);
    // Last, where the API's documented example has it (the history item has none).
    obj.insert("backlinks_nofollow".into(), json!(s.backlinks_nofollow));
    let mut v = Value::Object(obj);
    apply_quirk(target, &mut v);
    v
}

/// One item per month from `date_from`'s month to `min(date_to, today)`'s, each dated
/// the first of its month: the API aggregates what the domain had on that day.
fn history(req: &Request, today: NaiveDate) -> Value {
    let target = req.targets[0].as_str();
    let from = req.date_from.expect("history has date_from");
    let to = req.date_to.expect("history has date_to");
    let last = to.min(today);
    let mut items = Vec::new();
    let mut month = first_of_month(from);
    while month <= last {
        let s = snapshot(target, month, 1.0);
        let key = month.to_string();
        let nl = if (month.year(), month.month()) >= NEW_LOST_SINCE {
            new_lost(target, &s, &key, 30)
        } else {
            NewLost {
                new_backlinks: 0,
                lost_backlinks: 0,
                new_referring_domains: 0,
                lost_referring_domains: 0,
                new_referring_main_domains: 0,
                lost_referring_main_domains: 0,
            }
        };
        let mut obj = Map::new();
        obj.insert("type".into(), json!("backlinks_history"));
        obj.insert("date".into(), json!(midnight(month)));
        obj.insert("rank".into(), json!(show_rank(s.rank, req.rank_hundred)));
        obj.insert("backlinks".into(), json!(s.backlinks));
        obj.insert("new_backlinks".into(), json!(nl.new_backlinks));
        obj.insert("lost_backlinks".into(), json!(nl.lost_backlinks));
        obj.insert(
            "new_referring_domains".into(),
            json!(nl.new_referring_domains),
        );
        obj.insert(
            "lost_referring_domains".into(),
            json!(nl.lost_referring_domains),
        );
        insert_record(&mut obj, target, &key, &s, req.list_limit, true);
        let mut item = Value::Object(obj);
        apply_quirk(target, &mut item);
        items.push(item);
        month = month
            .checked_add_months(Months::new(1))
            .expect("date in range");
    }
    let mut result = json!({
        "target": target,
        "date_from": from.to_string(),
        "date_to": to.to_string(),
        "items_count": items.len(),
        "items": items,
    });
    apply_quirk(target, &mut result);
    result
}

fn timeseries(req: &Request) -> Value {
    let target = req.targets[0].as_str();
    let from = req.date_from.expect("timeseries has date_from");
    let to = req.date_to.expect("timeseries has date_to");
    let mut items = Vec::new();
    for (start, end) in periods(from, to, req.group) {
        let s = snapshot(target, end, req.scale);
        let key = end.to_string();
        let mut item = if req.endpoint == Endpoint::TimeseriesSummary {
            json!({
                "type": "backlinks_timeseries_summary",
                "date": midnight(end),
                "rank": show_rank(s.rank, req.rank_hundred),
                "backlinks": s.backlinks,
                "backlinks_nofollow": s.backlinks_nofollow,
                "referring_pages": s.referring_pages,
                "referring_pages_nofollow": s.referring_pages_nofollow,
                "referring_domains": s.referring_domains,
                "referring_domains_nofollow": s.referring_domains_nofollow,
                "referring_main_domains": s.referring_main_domains,
                "referring_main_domains_nofollow": s.referring_main_domains_nofollow,
                "referring_ips": s.referring_ips,
                "referring_subnets": s.referring_subnets,
            })
        } else {
            let nl = new_lost(target, &s, &key, (end - start).num_days() + 1);
            json!({
                "type": "backlinks_timeseries_new_lost_summary",
                "date": midnight(end),
                "new_backlinks": nl.new_backlinks,
                "lost_backlinks": nl.lost_backlinks,
                "new_referring_domains": nl.new_referring_domains,
                "lost_referring_domains": nl.lost_referring_domains,
                "new_referring_main_domains": nl.new_referring_main_domains,
                "lost_referring_main_domains": nl.lost_referring_main_domains,
            })
        };
        apply_quirk(target, &mut item);
        items.push(item);
    }
    let mut result = json!({
        "target": target,
        "date_from": from.to_string(),
        "date_to": to.to_string(),
        "group_range": req.group.name(),
        "items_count": items.len(),
        "items": items,
    });
    apply_quirk(target, &mut result);
    result
}

/// The bulk endpoints: one item per distinct target, sorted by target.
fn bulk(req: &Request, today: NaiveDate) -> Value {
    let date = today.to_string();
    let mut items = Vec::with_capacity(req.targets.len());
    for target in &req.targets {
        let t = target.as_str();
        let s = snapshot(t, today, req.scale);
        let mut item = match req.endpoint {
            Endpoint::BulkNewLostBacklinks | Endpoint::BulkNewLostReferringDomains => {
                let from = req.date_from.expect("new/lost has date_from");
                let key = format!("{from}..{today}");
                let nl = new_lost(t, &s, &key, (today - from).num_days());
                if req.endpoint == Endpoint::BulkNewLostBacklinks {
                    json!({
                        "target": t,
                        "new_backlinks": nl.new_backlinks,
                        "lost_backlinks": nl.lost_backlinks,
                    })
                } else {
                    json!({
                        "target": t,
                        "new_referring_domains": nl.new_referring_domains,
                        "lost_referring_domains": nl.lost_referring_domains,
                        "new_referring_main_domains": nl.new_referring_main_domains,
                        "lost_referring_main_domains": nl.lost_referring_main_domains,
                    })
                }
            }
            Endpoint::BulkRanks => {
                json!({"target": t, "rank": show_rank(s.rank, req.rank_hundred)})
            }
            Endpoint::BulkBacklinks => json!({"target": t, "backlinks": s.backlinks}),
            Endpoint::BulkReferringDomains => json!({
                "target": t,
                "referring_domains": s.referring_domains,
                "referring_domains_nofollow": s.referring_domains_nofollow,
                "referring_main_domains": s.referring_main_domains,
                "referring_main_domains_nofollow": s.referring_main_domains_nofollow,
            }),
            Endpoint::BulkSpamScore => json!({
                "type": "backlinks_bulk_spam_score",
                "target": t,
                "spam_score": s.backlinks_spam_score,
            }),
            _ => pages_summary_item(req, t, &s, today, &date),
        };
        apply_quirk(t, &mut item);
        items.push(item);
    }
    let mut result = Map::new();
    if req.endpoint == Endpoint::BulkPagesSummary {
        result.insert("total_count".into(), json!(items.len()));
    }
    result.insert("items_count".into(), json!(items.len()));
    result.insert("items".into(), Value::Array(items));
    let mut result = Value::Object(result);
    if let Some(quirky) = req
        .targets
        .iter()
        .find(|t| Quirk::of(t) == Some(Quirk::UnknownFields))
    {
        apply_quirk(quirky, &mut result);
    }
    result
}

fn pages_summary_item(
    req: &Request,
    url: &str,
    s: &Snapshot,
    today: NaiveDate,
    date: &str,
) -> Value {
    let domain = main_domain(&host(url));
    let domain_rank = snapshot(&domain, today, 1.0).rank;
    let mut obj = Map::new();
    obj.insert("type".into(), json!("backlinks_bulk_pages_summary"));
    obj.insert("url".into(), json!(url));
    obj.insert("rank".into(), json!(show_rank(s.rank, req.rank_hundred)));
    obj.insert(
        "main_domain_rank".into(),
        json!(show_rank(domain_rank, req.rank_hundred)),
    );
    obj.insert("backlinks".into(), json!(s.backlinks));
    obj.insert("first_seen".into(), json!(first_seen(url)));
    obj.insert("lost_date".into(), lost_date(url, today));
    obj.insert("backlinks_spam_score".into(), json!(s.backlinks_spam_score));
    insert_record(&mut obj, url, date, s, req.list_limit, false);
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    const TODAY: &str = "2025-06-15";

    fn result(endpoint: Endpoint, task: Value) -> Value {
        build_result(endpoint, &task, day(TODAY)).unwrap()
    }

    #[test]
    fn data_is_deterministic() {
        for endpoint in Endpoint::ALL {
            let task = if endpoint.is_bulk() {
                json!({"targets": ["b.com", "https://a.com/page", "c.org"]})
            } else {
                json!({"target": "example.com"})
            };
            let a = result(endpoint, task.clone());
            let b = result(endpoint, task);
            assert_eq!(a, b, "{endpoint}");
        }
        let other = result(Endpoint::Summary, json!({"target": "other.com"}));
        assert_ne!(
            other[0]["backlinks"],
            result(Endpoint::Summary, json!({"target": "example.com"}))[0]["backlinks"]
        );
    }

    #[test]
    fn counts_keep_the_apis_invariants() {
        for i in 0..200 {
            let t = format!("site{i}.example.com");
            let r = &result(Endpoint::Summary, json!({"target": t}))[0];
            let n = |f: &str| r[f].as_i64().unwrap();
            assert!(n("referring_domains") <= n("backlinks"), "{r}");
            assert!(n("referring_domains_nofollow") <= n("referring_domains"));
            assert!(n("referring_main_domains") <= n("referring_domains"));
            assert!(n("referring_pages_nofollow") <= n("referring_pages"));
            assert!((0..=1000).contains(&n("rank")));
            assert!((0..=100).contains(&n("backlinks_spam_score")));
            assert!(n("backlinks") <= 20_000_000);
        }
    }

    #[test]
    fn history_for_2024_has_12_items_dated_the_first_of_each_month() {
        let r = &result(
            Endpoint::History,
            json!({"target": "example.com", "date_from": "2024-01-01", "date_to": "2024-12-31"}),
        )[0];
        assert_eq!(r["items_count"], 12);
        assert_eq!(r["date_from"], "2024-01-01");
        assert_eq!(r["date_to"], "2024-12-31");
        let items = r["items"].as_array().unwrap();
        for (i, item) in items.iter().enumerate() {
            assert_eq!(
                item["date"],
                format!("2024-{:02}-01 00:00:00 +00:00", i + 1)
            );
            assert_eq!(item["type"], "backlinks_history");
        }
    }

    #[test]
    fn history_new_and_lost_counts_are_zero_before_may_2021() {
        let r = &result(
            Endpoint::History,
            json!({"target": "example.com", "date_from": "2021-03-01", "date_to": "2021-06-30"}),
        )[0];
        let items = r["items"].as_array().unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0]["new_backlinks"], 0);
        assert_eq!(items[1]["lost_referring_domains"], 0);
        assert!(items[2]["new_backlinks"].as_i64().unwrap() > 0);
    }

    #[test]
    fn history_stops_at_the_month_of_today() {
        let r = &result(
            Endpoint::History,
            json!({"target": "example.com", "date_from": "2025-01-01"}),
        )[0];
        assert_eq!(r["items_count"], 6);
        assert_eq!(r["date_to"], TODAY);
    }

    #[test]
    fn a_weekly_timeseries_item_is_dated_on_a_sunday_and_monthly_on_the_last_day_of_the_month() {
        let weekly = &result(
            Endpoint::TimeseriesSummary,
            json!({"target": "example.com", "date_from": "2025-05-01", "date_to": "2025-05-31", "group_range": "week"}),
        )[0];
        let items = weekly["items"].as_array().unwrap();
        assert_eq!(items.len(), 5);
        for item in items {
            let d = day(&item["date"].as_str().unwrap()[..10]);
            assert_eq!(d.weekday(), chrono::Weekday::Sun, "{d}");
        }
        let monthly = &result(
            Endpoint::TimeseriesNewLostSummary,
            json!({"target": "example.com", "date_from": "2024-01-15", "date_to": "2024-04-02"}),
        )[0];
        assert_eq!(monthly["group_range"], "month");
        let dates: Vec<&str> = monthly["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["date"].as_str().unwrap())
            .collect();
        assert_eq!(
            dates,
            [
                "2024-01-31 00:00:00 +00:00",
                "2024-02-29 00:00:00 +00:00",
                "2024-03-31 00:00:00 +00:00",
                "2024-04-30 00:00:00 +00:00"
            ]
        );
        let daily = &result(
            Endpoint::TimeseriesSummary,
            json!({"target": "example.com", "date_from": "2025-06-01", "group_range": "day"}),
        )[0];
        assert_eq!(daily["items_count"], 15);
        let yearly = &result(
            Endpoint::TimeseriesSummary,
            json!({"target": "example.com", "date_from": "2023-06-01", "group_range": "year"}),
        )[0];
        assert_eq!(yearly["items"][0]["date"], "2023-12-31 00:00:00 +00:00");
        assert_eq!(yearly["items_count"], 3);
    }

    #[test]
    fn every_breakdown_map_has_the_empty_key() {
        let s = &result(
            Endpoint::Summary,
            json!({"target": "example.com", "internal_list_limit": 3}),
        )[0];
        let h = &result(
            Endpoint::History,
            json!({"target": "example.com", "date_from": "2025-01-01"}),
        )[0]["items"][0];
        let p = &result(
            Endpoint::BulkPagesSummary,
            json!({"targets": ["https://example.com/a"]}),
        )[0]["items"][0];
        for record in [s, h, p] {
            for dim in [
                "tld",
                "types",
                "attributes",
                "platform_types",
                "semantic_locations",
                "countries",
            ] {
                let map = record[format!("referring_links_{dim}")]
                    .as_object()
                    .unwrap();
                assert!(map.contains_key(""), "{dim}: {map:?}");
                assert!(map.values().all(|v| v.as_i64().unwrap() > 0));
                if std::ptr::eq(record, s) {
                    assert!(map.len() <= 3, "{dim}: {map:?}");
                }
            }
        }
    }

    #[test]
    fn bulk_items_are_sorted_by_target() {
        let targets = json!([
            "zeta.com",
            "alpha.com",
            "https://mid.com/x",
            "beta.org",
            "alpha.com"
        ]);
        for endpoint in Endpoint::ALL.into_iter().filter(|e| e.is_bulk()) {
            let r = &result(endpoint, json!({"targets": targets}))[0];
            let key = if endpoint == Endpoint::BulkPagesSummary {
                "url"
            } else {
                "target"
            };
            let got: Vec<&str> = r["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i[key].as_str().unwrap())
                .collect();
            assert_eq!(
                got,
                ["alpha.com", "beta.org", "https://mid.com/x", "zeta.com"],
                "{endpoint}"
            );
            assert_eq!(r["items_count"], 4);
        }
    }

    #[test]
    fn an_unknown_field_gives_invalid_field_with_its_name() {
        let err = build_result(
            Endpoint::Summary,
            &json!({"target": "a.com", "x": 1}),
            day(TODAY),
        )
        .unwrap_err();
        assert_eq!(err, "Invalid Field: 'x'.");
        let err =
            build_result(Endpoint::BulkRanks, &json!({"target": "a.com"}), day(TODAY)).unwrap_err();
        assert_eq!(err, "Invalid Field: 'target'.");
    }

    #[test]
    fn bad_targets_dates_and_types_are_rejected_with_the_field_named() {
        let cases = [
            (Endpoint::Summary, json!({}), "target"),
            (Endpoint::BulkRanks, json!({}), "targets"),
            (
                Endpoint::History,
                json!({"target": "a.com", "date_from": "2018-12-31"}),
                "date_from",
            ),
            (
                Endpoint::History,
                json!({"target": "a.com", "date_from": "2024-13-01"}),
                "date_from",
            ),
            (
                Endpoint::History,
                json!({"target": "https://a.com/p"}),
                "target",
            ),
            (
                Endpoint::TimeseriesSummary,
                json!({"target": "a.com", "date_from": "2019-01-29"}),
                "date_from",
            ),
            (
                Endpoint::TimeseriesSummary,
                json!({"target": "a.com", "group_range": "hour"}),
                "group_range",
            ),
            (
                Endpoint::BulkNewLostBacklinks,
                json!({"targets": ["a.com"], "date_from": "2024-01-01"}),
                "date_from",
            ),
            (
                Endpoint::Summary,
                json!({"target": "a.com", "include_subdomains": "yes"}),
                "include_subdomains",
            ),
            (
                Endpoint::Summary,
                json!({"target": "a.com", "internal_list_limit": 0}),
                "internal_list_limit",
            ),
        ];
        for (endpoint, task, field) in cases {
            let err = build_result(endpoint, &task, day(TODAY)).unwrap_err();
            assert_eq!(err, invalid_field(field), "{endpoint} {task}");
        }
        let many: Vec<String> = (0..1001).map(|i| format!("t{i}.com")).collect();
        let err =
            build_result(Endpoint::BulkRanks, &json!({"targets": many}), day(TODAY)).unwrap_err();
        assert_eq!(err, invalid_field("targets"));
        let domains: Vec<String> = (0..101).map(|i| format!("https://d{i}.com/p")).collect();
        let err = build_result(
            Endpoint::BulkPagesSummary,
            &json!({"targets": domains}),
            day(TODAY),
        )
        .unwrap_err();
        assert_eq!(err, invalid_field("targets"));
    }

    #[test]
    fn quirk_targets_drift_the_schema_as_documented() {
        let s = |t: &str| result(Endpoint::Summary, json!({"target": t}))[0].clone();
        let unknown = s("quirk-unknown-fields.example.com");
        assert_eq!(unknown["backlinks_velocity"], 12);
        assert_eq!(unknown["info"]["hosting"], "x");
        assert!(unknown["backlinks"].is_i64());
        assert!(s("quirk-wrong-type.example.com")["backlinks"].is_string());
        let nulls = s("https://www.quirk-nulls.example.org/");
        assert!(
            nulls["rank"].is_null()
                && nulls["backlinks"].is_null()
                && nulls["first_seen"].is_null()
        );
        assert!(nulls.get("info").is_none() && nulls.get("crawled_pages").is_none());
        assert!(nulls.get("referring_links_countries").is_none());
        let h = &result(
            Endpoint::History,
            json!({"target": "quirk-misspelled.example.com", "date_from": "2024-01-01", "date_to": "2024-12-31"}),
        )[0];
        let item = h["items"][0].as_object().unwrap();
        assert!(
            item.contains_key("new_reffering_domains")
                && item.contains_key("lost_reffering_domains")
        );
        assert!(!item.contains_key("new_referring_domains"));
        let b = &result(
            Endpoint::BulkNewLostReferringDomains,
            json!({"targets": ["quirk-misspelled.a.com", "plain.com"]}),
        )[0];
        assert_eq!(b["items"][0]["target"], "plain.com");
        assert!(b["items"][0].get("new_referring_domains").is_some());
        assert!(b["items"][1].get("new_reffering_domains").is_some());
    }

    #[test]
    fn rank_scale_one_hundred_is_the_apis_sine_conversion_of_the_0_to_1000_rank() {
        for (rank, hundred) in [
            (0, 0),
            (100, 16),
            (371, 55),
            (500, 71),
            (900, 99),
            (1000, 100),
        ] {
            assert_eq!(show_rank(rank, true), hundred, "{rank}");
            assert_eq!(show_rank(rank, false), rank);
        }
        // The same answer on both scales: every rank converted, nothing else changed.
        let thousand = result(
            Endpoint::BulkPagesSummary,
            json!({"targets": ["https://example.com/a"], "rank_scale": "one_thousand"}),
        );
        let hundred = result(
            Endpoint::BulkPagesSummary,
            json!({"targets": ["https://example.com/a"], "rank_scale": "one_hundred"}),
        );
        let (t, h) = (&thousand[0]["items"][0], &hundred[0]["items"][0]);
        for field in ["rank", "main_domain_rank"] {
            assert_eq!(
                h[field].as_i64().unwrap(),
                show_rank(t[field].as_i64().unwrap(), true),
                "{field}"
            );
        }
        assert_eq!(h["backlinks"], t["backlinks"]);
    }

    #[test]
    fn billed_rows_are_the_items_returned() {
        let r = result(
            Endpoint::BulkRanks,
            json!({"targets": ["a.com", "b.com", "c.com"]}),
        );
        assert_eq!(row_count(Endpoint::BulkRanks, &r), 3);
        let r = result(Endpoint::Summary, json!({"target": "a.com"}));
        assert_eq!(row_count(Endpoint::Summary, &r), 1);
    }
}
