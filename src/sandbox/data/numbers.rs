//! The deterministic numbers: hashes of (target, metric, date) scaled into ranges, a
//! target's counts on a date ([`Snapshot`]), its new and lost counts over a period, and
//! its dates (first seen, lost) in the API's format.

use chrono::{Days, NaiveDate};
use serde_json::{Value, json};
use xxhash_rust::xxh3::xxh3_64;

use super::targets::is_page;

/// The API's format for instants: `2019-11-15 12:57:46 +00:00`.
const INSTANT_FORMAT: &str = "%Y-%m-%d %H:%M:%S +00:00";

/// xxh3 of the parts, separated so that ("ab", "c") and ("a", "bc") differ.
pub(super) fn hash(target: &str, metric: &str, date: &str) -> u64 {
    let mut buf = Vec::with_capacity(target.len() + metric.len() + date.len() + 2);
    buf.extend_from_slice(target.as_bytes());
    buf.push(0x1f);
    buf.extend_from_slice(metric.as_bytes());
    buf.push(0x1f);
    buf.extend_from_slice(date.as_bytes());
    xxh3_64(&buf)
}

/// A number in `[0, 1)` from the hash of (target, metric, date).
pub(super) fn unit(target: &str, metric: &str, date: &str) -> f64 {
    (hash(target, metric, date) >> 11) as f64 / (1u64 << 53) as f64
}

pub(super) fn between(target: &str, metric: &str, date: &str, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * unit(target, metric, date)
}

pub(super) fn pick<'a>(target: &str, metric: &str, pool: &[&'a str]) -> &'a str {
    pool[(hash(target, metric, "") % pool.len() as u64) as usize]
}

/// The aggregate counts of one target on one date. Every other field is derived from it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Snapshot {
    pub(super) rank: i64,
    pub(super) backlinks: i64,
    pub(super) backlinks_nofollow: i64,
    pub(super) backlinks_spam_score: i64,
    pub(super) crawled_pages: i64,
    pub(super) internal_links_count: i64,
    pub(super) external_links_count: i64,
    pub(super) broken_backlinks: i64,
    pub(super) broken_pages: i64,
    pub(super) referring_domains: i64,
    pub(super) referring_domains_nofollow: i64,
    pub(super) referring_main_domains: i64,
    pub(super) referring_main_domains_nofollow: i64,
    pub(super) referring_ips: i64,
    pub(super) referring_subnets: i64,
    pub(super) referring_pages: i64,
    pub(super) referring_pages_nofollow: i64,
}

/// The counts of `target` on `date`, times `scale`. The size of a target is fixed by its
/// name (log-uniform, up to about 10^7 backlinks); it drifts over the years at a rate of
/// its own, with a few percent of noise per date.
pub(super) fn snapshot(target: &str, date: NaiveDate, scale: f64) -> Snapshot {
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
pub(super) struct NewLost {
    pub(super) new_backlinks: i64,
    pub(super) lost_backlinks: i64,
    pub(super) new_referring_domains: i64,
    pub(super) lost_referring_domains: i64,
    pub(super) new_referring_main_domains: i64,
    pub(super) lost_referring_main_domains: i64,
}

pub(super) fn new_lost(target: &str, s: &Snapshot, key: &str, days: i64) -> NewLost {
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

pub(super) fn instant(date: NaiveDate, seconds: u64) -> String {
    date.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .checked_add_signed(chrono::Duration::seconds((seconds % 86_400) as i64))
        .expect("in range")
        .format(INSTANT_FORMAT)
        .to_string()
}

pub(super) fn midnight(date: NaiveDate) -> String {
    instant(date, 0)
}

/// When the crawler first saw a link to the target: a fixed instant between 2012 and 2022.
pub(super) fn first_seen(target: &str) -> String {
    let base = NaiveDate::from_ymd_opt(2012, 1, 1).expect("valid date");
    let days = hash(target, "first_seen", "") % (11 * 365);
    instant(base + Days::new(days), hash(target, "first_seen_time", ""))
}

/// When the target's last backlink was lost: null for most targets, else a date before
/// `today`.
pub(super) fn lost_date(target: &str, today: NaiveDate) -> Value {
    if unit(target, "lost", "") < 0.75 {
        return Value::Null;
    }
    let days = 1 + hash(target, "lost_date", "") % 700;
    json!(instant(
        today - Days::new(days),
        hash(target, "lost_date_time", "")
    ))
}
