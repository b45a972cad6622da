//! The summary record: the summary endpoint's result, and the fields the full records
//! share (`info`, the `referring_links_*` breakdowns, the referring counts), which
//! the history and pages summary items reuse.

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::numbers::{Snapshot, between, first_seen, hash, lost_date, pick, snapshot, unit};
use super::request::Request;
use super::show_rank;
use super::targets::{apply_quirk, host, is_ip};

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

/// Inserts the fields of a full record (summary, history item, pages summary item) from
/// `crawled_pages` on, in the API's order. `with_crawl` adds the fields only the
/// domain-level records have (`crawled_pages`, `info`, the link counts); the pages
/// summary item has none of them.
pub(super) fn insert_record(
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

pub(super) fn summary(req: &Request, today: NaiveDate) -> Value {
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
