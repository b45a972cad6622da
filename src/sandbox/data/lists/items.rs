//! The items of the list endpoints, exactly the documented fields of each
//! (`reference/api-fields-lists.md`): a backlink, field by field (filters and sorting
//! ask for single fields of thousands of links); the aggregate of a set of links that
//! referring domains, anchors, pages and intersections share; a target's pages.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value, json};

use super::super::numbers::{hash, instant, unit};
use super::super::show_rank;
use super::links::{Link, Universe, day_date, day_number};

const SECTIONS: &[&str] = &["blog", "docs", "products", "news", "guides"];
const TOPICS: &[&str] = &[
    "pricing",
    "review",
    "tutorial",
    "api",
    "features",
    "case-study",
    "comparison",
    "faq",
    "release",
    "webinar",
];
const COUNTRIES: &[&str] = &["US", "DE", "GB", "FR", "NL", "CA", "IN", "JP", "BR", "AU"];
const PLATFORMS: &[&str] = &[
    "cms",
    "blogs",
    "ecommerce",
    "message-boards",
    "wikis",
    "news",
    "organization",
];
const LOCATIONS: &[&str] = &["article", "section", "main", "footer", "aside", "nav", ""];
const LANGUAGES: &[&str] = &["en", "en", "en", "de", "fr", "es"];

/// What a list's items are built with: the target's links, the day, the options.
pub(super) struct Ctx<'a> {
    pub(super) universe: &'a Universe,
    pub(super) day: i64,
    pub(super) rank_hundred: bool,
    pub(super) list_limit: usize,
}

impl Ctx<'_> {
    fn rank(&self, rank: i64) -> Value {
        json!(show_rank(rank, self.rank_hundred))
    }

    fn brand(&self) -> &str {
        self.universe.host.split('.').next().unwrap_or("")
    }

    /// URL of the target's page `p` (0: its home page; a page target: itself).
    pub(super) fn page_url(&self, p: u64) -> String {
        let host = &self.universe.host;
        if self.universe.pages == 1 || p == 0 {
            return format!("https://{host}/");
        }
        let section = SECTIONS[(p % SECTIONS.len() as u64) as usize];
        let topic = TOPICS[((p / 5) % TOPICS.len() as u64) as usize];
        format!("https://{host}/{section}/{topic}-{p}")
    }

    /// HTTP status of page `p`: most 200, some 404 and 301 (the wasted links of the
    /// fourth workflow).
    pub(super) fn page_status(&self, p: u64) -> i64 {
        if p == 0 {
            return 200;
        }
        match hash(&self.universe.host, "page_status", &p.to_string()) % 100 {
            0..6 => 404,
            6..12 => 301,
            _ => 200,
        }
    }

    fn page_location(&self, p: u64) -> Value {
        if self.page_status(p) == 301 {
            json!(format!("https://{}/{}/", self.universe.host, SECTIONS[0]))
        } else {
            Value::Null
        }
    }

    pub(super) fn link_page(&self, l: &Link) -> u64 {
        (l.seed >> 8) % self.universe.pages
    }

    fn anchor(&self, l: &Link) -> String {
        if self.item_type(l) == "image" {
            return String::new();
        }
        let u = ((l.seed >> 24) % 10_000) as f64 / 10_000.0;
        let brand = self.brand();
        let topic = TOPICS[((l.seed >> 36) % TOPICS.len() as u64) as usize];
        match (u * u * 12.0) as u32 {
            0 => brand.to_string(),
            1 => self.universe.host.clone(),
            2 => format!("https://{}/", self.universe.host),
            3 => "click here".into(),
            4 => format!("{brand} {topic}"),
            5 => "here".into(),
            6 => format!("best {topic} tools"),
            7 => "read more".into(),
            8 => format!("{topic} guide"),
            9 => "source".into(),
            10 => format!("{brand} blog"),
            _ => format!("{topic} by {brand}"),
        }
    }

    fn item_type(&self, l: &Link) -> &'static str {
        match (l.seed >> 48) % 100 {
            0..10 => "image",
            10..13 => "redirect",
            13..15 => "canonical",
            _ => "anchor",
        }
    }

    fn dofollow(&self, l: &Link) -> bool {
        (l.seed >> 12) % 10 < 8
    }

    fn attributes(&self, l: &Link) -> Vec<&'static str> {
        if !self.dofollow(l) {
            vec!["nofollow"]
        } else if (l.seed >> 14).is_multiple_of(4) {
            vec!["noopener"]
        } else {
            vec![]
        }
    }

    fn domain_name(&self, l: &Link) -> &str {
        &self.universe.domains[l.domain as usize].name
    }

    fn domain_g(&self, l: &Link) -> u64 {
        self.universe.domains[l.domain as usize].g
    }

    fn tld(&self, l: &Link) -> String {
        let name = self.domain_name(l);
        name.split_once('.').map_or("", |(_, t)| t).to_string()
    }

    fn country(&self, l: &Link) -> &'static str {
        COUNTRIES[(self.domain_g(l) % COUNTRIES.len() as u64) as usize]
    }

    fn platform(&self, l: &Link) -> &'static str {
        PLATFORMS[((self.domain_g(l) / 3) % PLATFORMS.len() as u64) as usize]
    }

    fn location(&self, l: &Link) -> &'static str {
        LOCATIONS[((l.seed >> 52) % LOCATIONS.len() as u64) as usize]
    }

    fn link_rank(&self, l: &Link) -> i64 {
        let d = self.universe.domains[l.domain as usize].rank as f64;
        (d * (0.2 + 0.6 * ((l.seed >> 16) % 100) as f64 / 100.0)).round() as i64
    }

    fn spam(&self, l: &Link) -> i64 {
        ((l.seed >> 44) % 40) as i64
    }

    fn url_from(&self, l: &Link) -> String {
        let topic = TOPICS[((l.seed >> 4) % TOPICS.len() as u64) as usize];
        format!(
            "https://{}/{topic}/{}-{}",
            self.domain_name(l),
            l.k,
            l.seed % 9973
        )
    }

    fn broken(&self, l: &Link) -> bool {
        self.page_status(self.link_page(l)) >= 400
    }

    fn first_seen_instant(&self, l: &Link) -> String {
        instant(day_date(l.born), l.seed >> 3)
    }

    /// The day the crawler last saw it: within the last few days while it lives.
    fn last_seen_day(&self, l: &Link) -> i64 {
        if l.live(self.day) {
            (self.day - (l.seed % 4) as i64).max(l.born)
        } else {
            (l.lost_on(self.day) - 1).max(l.born)
        }
    }

    /// One field of a backlink item (`None` for a name the documents do not give it).
    pub(super) fn backlink_field(&self, l: &Link, name: &str) -> Option<Value> {
        let g = self.domain_g(l);
        let page = self.link_page(l);
        let v = match name {
            "type" => json!("backlink"),
            "domain_from" => json!(self.domain_name(l)),
            "url_from" => json!(self.url_from(l)),
            "url_from_https" => json!(!g.is_multiple_of(5)),
            "domain_to" => json!(self.universe.host),
            "url_to" => json!(self.page_url(page)),
            "url_to_https" => json!(true),
            "tld_from" => json!(self.tld(l)),
            "is_new" => json!(l.live(self.day) && self.day - l.born < 30),
            "is_lost" => json!(!l.live(self.day)),
            "backlink_spam_score" => json!(self.spam(l)),
            "rank" => self.rank(self.link_rank(l)),
            "page_from_rank" => self.rank(
                (self.universe.domains[l.domain as usize].rank as f64
                    * (0.3 + 0.7 * unit("p", "r", &l.seed.to_string())))
                .round() as i64,
            ),
            "domain_from_rank" => self.rank(self.universe.domains[l.domain as usize].rank),
            "domain_from_platform_type" => json!([self.platform(l)]),
            "domain_from_is_ip" => json!(false),
            "domain_from_ip" => json!(format!(
                "{}.{}.{}.{}",
                11 + g % 200,
                (g / 200) % 256,
                (g / 7) % 256,
                1 + g % 250
            )),
            "domain_from_country" => json!(self.country(l)),
            "page_from_external_links" => json!(1 + (l.seed >> 5) % 120),
            "page_from_internal_links" => json!(5 + (l.seed >> 7) % 300),
            "page_from_size" => json!(8_000 + (l.seed >> 9) % 200_000),
            "page_from_encoding" => json!("utf-8"),
            "page_from_language" => json!(LANGUAGES[(g % LANGUAGES.len() as u64) as usize]),
            "page_from_title" => json!(format!(
                "{} {} | {}",
                TOPICS[((l.seed >> 4) % TOPICS.len() as u64) as usize],
                l.k,
                self.domain_name(l)
            )),
            "page_from_status_code" => json!(if l.live(self.day) { 200 } else { 404 }),
            "first_seen" => json!(self.first_seen_instant(l)),
            "prev_seen" => {
                let last = self.last_seen_day(l);
                let prev = (last - 7 - (l.seed % 50) as i64).max(l.born);
                json!(instant(day_date(prev), l.seed >> 11))
            }
            "last_seen" => json!(instant(day_date(self.last_seen_day(l)), l.seed >> 13)),
            "item_type" => json!(self.item_type(l)),
            "attributes" => json!(self.attributes(l)),
            "dofollow" => json!(self.dofollow(l)),
            "original" => json!(!(l.seed >> 18).is_multiple_of(10)),
            "alt" => {
                if self.item_type(l) == "image" {
                    json!(format!("{} logo", self.brand()))
                } else {
                    Value::Null
                }
            }
            "image_url" => {
                if self.item_type(l) == "image" {
                    json!(format!("https://{}/img/{}.png", self.domain_name(l), l.k))
                } else {
                    Value::Null
                }
            }
            "anchor" => json!(self.anchor(l)),
            "text_pre" => json!("as explained in"),
            "text_post" => json!("for more details"),
            "semantic_location" => json!(self.location(l)),
            "links_count" => json!(1 + (l.seed >> 22) % 3),
            // Set by the list from the mode; one link alone counts itself.
            "group_count" => json!(1),
            "is_broken" => json!(self.broken(l)),
            "url_to_status_code" => json!(self.page_status(page)),
            "url_to_spam_score" => json!((g % 7) as i64),
            "url_to_redirect_target" => self.page_location(page),
            "ranked_keywords_info" => json!({
                "page_from_keywords_count_top_3": (l.seed >> 26) % 5,
                "page_from_keywords_count_top_10": (l.seed >> 26) % 20,
                "page_from_keywords_count_top_100": (l.seed >> 26) % 200,
            }),
            "is_indirect_link" => json!((l.seed >> 34).is_multiple_of(30)),
            "indirect_link_path" => {
                if (l.seed >> 34).is_multiple_of(30) {
                    json!([{
                        "type": "redirect",
                        "status_code": 301,
                        "url": format!("http://{}/", self.universe.host),
                    }])
                } else {
                    Value::Null
                }
            }
            _ => return None,
        };
        Some(v)
    }

    /// A whole backlink item, its fields in the documented order.
    pub(super) fn backlink(&self, l: &Link, group_count: usize) -> Value {
        let mut m = Map::with_capacity(BACKLINK_FIELDS.len());
        for f in BACKLINK_FIELDS {
            let v = if *f == "group_count" {
                json!(group_count)
            } else {
                self.backlink_field(l, f).unwrap_or(Value::Null)
            };
            m.insert((*f).to_string(), v);
        }
        Value::Object(m)
    }

    /// The fields referring domains, anchors, a page's summary and an intersection
    /// share, aggregated over `links`.
    pub(super) fn aggregate(&self, links: &[&Link]) -> Map<String, Value> {
        let n = links.len() as i64;
        let mut domains = HashSet::new();
        let mut nofollow_domains = HashSet::new();
        let mut subnets = HashSet::new();
        let mut broken_pages = HashSet::new();
        let (mut broken, mut nofollow, mut spam, mut rank_sum) = (0i64, 0i64, 0i64, 0f64);
        let mut first: Option<&Link> = None;
        let mut any_live = false;
        let mut lost_day = i64::MIN;
        let mut maps: [BTreeMap<String, i64>; 6] = Default::default();
        for l in links {
            domains.insert(l.domain);
            subnets.insert(self.domain_g(l) / 4);
            if !self.dofollow(l) {
                nofollow += 1;
                nofollow_domains.insert(l.domain);
            }
            if self.broken(l) {
                broken += 1;
                broken_pages.insert(self.link_page(l));
            }
            spam += self.spam(l);
            rank_sum += self.link_rank(l) as f64;
            if first.is_none_or(|f| l.born < f.born) {
                first = Some(l);
            }
            if l.live(self.day) {
                any_live = true;
            } else {
                lost_day = lost_day.max(l.lost_on(self.day));
            }
            *maps[0].entry(self.tld(l)).or_default() += 1;
            *maps[1].entry(self.item_type(l).to_string()).or_default() += 1;
            for a in self.attributes(l) {
                *maps[2].entry(a.to_string()).or_default() += 1;
            }
            *maps[3].entry(self.platform(l).to_string()).or_default() += 1;
            *maps[4].entry(self.location(l).to_string()).or_default() += 1;
            *maps[5].entry(self.country(l).to_string()).or_default() += 1;
        }
        let rank = ((1.0 + rank_sum).ln() * 70.0).round().min(1000.0) as i64;
        let mut m = Map::new();
        m.insert("rank".into(), self.rank(rank));
        m.insert("backlinks".into(), json!(n));
        m.insert(
            "first_seen".into(),
            first.map_or(Value::Null, |l| json!(self.first_seen_instant(l))),
        );
        m.insert(
            "lost_date".into(),
            if any_live || lost_day == i64::MIN {
                Value::Null
            } else {
                json!(instant(day_date(lost_day), 3600))
            },
        );
        m.insert(
            "backlinks_spam_score".into(),
            json!(if n > 0 { spam / n } else { 0 }),
        );
        m.insert("broken_backlinks".into(), json!(broken));
        m.insert("broken_pages".into(), json!(broken_pages.len()));
        m.insert("referring_domains".into(), json!(domains.len()));
        m.insert(
            "referring_domains_nofollow".into(),
            json!(nofollow_domains.len()),
        );
        m.insert("referring_main_domains".into(), json!(domains.len()));
        m.insert(
            "referring_main_domains_nofollow".into(),
            json!(nofollow_domains.len()),
        );
        m.insert("referring_ips".into(), json!(domains.len()));
        m.insert("referring_subnets".into(), json!(subnets.len()));
        m.insert("referring_pages".into(), json!(n));
        m.insert("referring_pages_nofollow".into(), json!(nofollow));
        for (i, name) in MAP_FIELDS.iter().enumerate() {
            let mut entries: Vec<(String, i64)> =
                std::mem::take(&mut maps[i]).into_iter().collect();
            // "internal_list_limit": the five lists it names; countries are whole.
            if i < 5 {
                entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                entries.truncate(self.list_limit.max(1));
            }
            let map: Map<String, Value> = entries.into_iter().map(|(k, v)| (k, json!(v))).collect();
            m.insert((*name).to_string(), Value::Object(map));
        }
        m
    }

    /// A `domain_pages` item for page `p` of the target, its summary over `links`.
    pub(super) fn page(&self, p: u64, links: &[&Link]) -> Value {
        let host = &self.universe.host;
        let status = self.page_status(p);
        let key = p.to_string();
        let visited = day_date(self.day - (hash(host, "fetch", &key) % 20) as i64);
        let first = day_number(visited) - 200 - (hash(host, "first", &key) % 2000) as i64;
        let topic = TOPICS[((p / 5) % TOPICS.len() as u64) as usize];
        let summary = self.aggregate(links);
        json!({
            "type": "backlinks_domain_pages",
            "main_domain": super::super::targets::main_domain(host),
            "domain": host,
            "tld": host.rsplit('.').next().unwrap_or(""),
            "page": self.page_url(p),
            "ip": format!("93.184.{}.{}", p % 256, 10 + p % 200),
            "first_visited": instant(day_date(first), hash(host, "fv", &key)),
            "prev_visited": instant(visited - chrono::Days::new(14), hash(host, "pv", &key)),
            "fetch_time": instant(visited, hash(host, "ft", &key)),
            "status_code": status,
            "location": self.page_location(p),
            "size": 20_000 + hash(host, "size", &key) % 300_000,
            "encoded_size": 5_000 + hash(host, "esize", &key) % 80_000,
            "content_encoding": "gzip",
            "media_type": "text/html",
            "server": "nginx",
            "meta": {
                "title": format!("{topic} {p} | {}", self.brand()),
                "canonical": self.page_url(p),
                "internal_links_count": 20 + hash(host, "il", &key) % 200,
                "external_links_count": hash(host, "el", &key) % 40,
                "images_count": hash(host, "img", &key) % 30,
                "words_count": 200 + hash(host, "words", &key) % 3000,
                "page_spam_score": hash(host, "spam", &key) % 20,
                "social_media_tags": {"og:title": format!("{topic} {p}")},
                "h_1": [format!("{topic} {p}")],
                "h_2": ["Overview", "Details"],
                "h_3": [],
                "images_alt": [format!("{} logo", self.brand())],
                "powered_by": ["WordPress"],
                "language": "en",
                "charset": "utf-8",
                "platform_type": ["cms"],
                "technologies": {"cms": ["WordPress"]},
            },
            "page_summary": Value::Object(summary),
        })
    }
}

/// A backlink item's fields, in the documents' order.
pub(super) const BACKLINK_FIELDS: &[&str] = &[
    "type",
    "domain_from",
    "url_from",
    "url_from_https",
    "domain_to",
    "url_to",
    "url_to_https",
    "tld_from",
    "is_new",
    "is_lost",
    "backlink_spam_score",
    "rank",
    "page_from_rank",
    "domain_from_rank",
    "domain_from_platform_type",
    "domain_from_is_ip",
    "domain_from_ip",
    "domain_from_country",
    "page_from_external_links",
    "page_from_internal_links",
    "page_from_size",
    "page_from_encoding",
    "page_from_language",
    "page_from_title",
    "page_from_status_code",
    "first_seen",
    "prev_seen",
    "last_seen",
    "item_type",
    "attributes",
    "dofollow",
    "original",
    "alt",
    "image_url",
    "anchor",
    "text_pre",
    "text_post",
    "semantic_location",
    "links_count",
    "group_count",
    "is_broken",
    "url_to_status_code",
    "url_to_spam_score",
    "url_to_redirect_target",
    "ranked_keywords_info",
    "is_indirect_link",
    "indirect_link_path",
];

const MAP_FIELDS: &[&str] = &[
    "referring_links_tld",
    "referring_links_types",
    "referring_links_attributes",
    "referring_links_platform_types",
    "referring_links_semantic_locations",
    "referring_links_countries",
];

/// An aggregate item: `type`, its key field, then the shared fields.
pub(super) fn keyed(kind: &str, key: &str, value: Value, agg: Map<String, Value>) -> Value {
    let mut m = Map::with_capacity(agg.len() + 2);
    m.insert("type".into(), json!(kind));
    m.insert(key.into(), value);
    m.extend(agg);
    Value::Object(m)
}
