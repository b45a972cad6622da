//! A target's links: the referring domains that could link to it and their links, and
//! which of them are live on a date. Everything is derived from hashes, so the same
//! target and day always give the same links, and the next day a few differ.
//!
//! - Referring domains come from one shared pool of names (`pool_domain`), popular
//!   ones more often, so that different targets share referring domains (the
//!   intersections of `domain_intersection` and `competitors`). A name's index in the
//!   pool sets its rank: the popular ones are the strong ones.
//! - Each referring domain has 1 to 15 links to the target, each from its own page
//!   (`url_from`) to one of the target's pages (`url_to`), with an anchor from a
//!   pool (the target's brand, its URL, "click here", ...).
//! - A link lives from its birth for a lifetime (most for years, a quarter for days
//!   or weeks); a tenth "flicker", present on about seven days of ten. So from one day
//!   to the next links appear (new) and disappear (lost).

use chrono::{Days, NaiveDate};

use super::super::numbers::{hash, snapshot, unit};
use super::super::targets::{host, is_page};

/// How many names the shared pool of referring domains holds.
const POOL: u64 = 50_000;
/// Most referring domains of one target: bounds the work of one request.
pub(super) const MAX_DOMAINS: usize = 10_000;
/// Most pages of one target (`url_to`, `domain_pages`).
const MAX_PAGES: u64 = 400;
/// Day 0 of the links' lives.
fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 1).expect("valid date")
}

const WORDS: &[&str] = &[
    "news", "blog", "daily", "review", "hub", "wiki", "forum", "tech", "market", "guide", "times",
    "journal", "post", "digest", "media", "world", "zone", "lab", "press", "insider",
];
const TLDS: &[&str] = &[
    "com", "org", "net", "io", "de", "co.uk", "fr", "info", "nl", "es",
];
/// The biggest sites of the pool, left out by `exclude_large_domains`.
pub(super) const LARGE: u64 = 25;

/// Name of pool entry `g` (the first ones are the biggest sites).
pub(super) fn pool_domain(g: u64) -> String {
    let word = WORDS[(g % WORDS.len() as u64) as usize];
    let tld = TLDS[((g / 7) % TLDS.len() as u64) as usize];
    format!("{word}{g}.{tld}")
}

/// Rank 0..=1000 of pool entry `g`: the popular entries are the strong ones.
pub(super) fn pool_rank(g: u64) -> i64 {
    let share = 1.0 - (g as f64 / POOL as f64);
    (share.powi(6) * 900.0 + unit("pool", "rank", &g.to_string()) * 100.0).round() as i64
}

/// One referring domain of a target.
#[derive(Clone, Debug)]
pub(super) struct Domain {
    /// Its index in the shared pool.
    pub(super) g: u64,
    pub(super) name: String,
    pub(super) rank: i64,
    pub(super) links: u32,
}

/// One link to a target.
#[derive(Clone, Copy, Debug)]
pub(super) struct Link {
    /// Its referring domain (an index into `Universe::domains`).
    pub(super) domain: u32,
    /// Its number among that domain's links.
    pub(super) k: u32,
    /// Its identity as hashed (`g:k`).
    pub(super) seed: u64,
    /// Born on this day after the epoch (may be negative).
    pub(super) born: i64,
    /// Lives this many days (`i64::MAX`: still).
    pub(super) life: i64,
    pub(super) flickers: bool,
}

/// What a list asks for: live links, lost ones, or both (`backlinks_status_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Status {
    Live,
    Lost,
    All,
}

impl Link {
    /// Whether it is there on `day` (days after the epoch).
    pub(super) fn live(&self, day: i64) -> bool {
        if day < self.born || day - self.born >= self.life {
            return false;
        }
        !self.flickers || (self.seed ^ hash_day(day)) % 10 < 7
    }

    /// Whether it was ever there before `day` and is not on `day`.
    pub(super) fn lost(&self, day: i64) -> bool {
        day > self.born && !self.live(day)
    }

    pub(super) fn wanted(&self, day: i64, status: Status) -> bool {
        match status {
            Status::Live => self.live(day),
            Status::Lost => self.lost(day),
            Status::All => self.live(day) || self.lost(day),
        }
    }

    /// The day it was lost: the end of its life, or (a flickering link) the day.
    pub(super) fn lost_on(&self, day: i64) -> i64 {
        if day - self.born >= self.life {
            self.born.saturating_add(self.life)
        } else {
            day
        }
    }
}

fn hash_day(day: i64) -> u64 {
    hash("day", "", &day.to_string()).rotate_left(17)
}

/// The links of one target, on every day.
#[derive(Debug)]
pub(super) struct Universe {
    pub(super) host: String,
    pub(super) domains: Vec<Domain>,
    pub(super) links: Vec<Link>,
    /// How many pages the target has (`url_to`).
    pub(super) pages: u64,
}

impl Universe {
    pub(super) fn of(target: &str) -> Universe {
        let host = host(target);
        // As many referring domains as the summary says, within bounds.
        let s = snapshot(target, epoch(), 1.0);
        let n = (s.referring_domains as usize).clamp(3, MAX_DOMAINS);
        let mut seen = std::collections::HashSet::with_capacity(n);
        let mut domains = Vec::with_capacity(n);
        for j in 0..n {
            let u = unit(target, "rd", &j.to_string());
            let g = ((POOL as f64) * u.powf(2.5)) as u64;
            if g == 0 || !seen.insert(g) {
                continue;
            }
            let links = 1 + (hash(target, "links", &g.to_string()) % 15) as u32;
            domains.push(Domain {
                g,
                name: pool_domain(g),
                rank: pool_rank(g),
                links,
            });
        }
        // Strongest first: the sandbox's own order of every list.
        domains.sort_by_key(|d| d.g);
        let mut links = Vec::new();
        for (i, d) in domains.iter().enumerate() {
            for k in 0..d.links {
                let seed = hash(target, "link", &format!("{}:{k}", d.g));
                let born = -3650 + (seed % 4800) as i64;
                let span = (seed >> 20) % 100;
                let life = match span {
                    0..25 => 3 + ((seed >> 30) % 60) as i64,
                    25..40 => i64::MAX,
                    _ => 400 + ((seed >> 30) % 4000) as i64,
                };
                links.push(Link {
                    domain: i as u32,
                    k,
                    seed,
                    born,
                    life,
                    flickers: (seed >> 40).is_multiple_of(10),
                });
            }
        }
        let pages = if is_page(target) {
            1
        } else {
            (domains.len() as u64 / 4).clamp(5, MAX_PAGES)
        };
        Universe {
            host,
            domains,
            links,
            pages,
        }
    }
}

/// Days after the epoch.
pub(super) fn day_number(date: NaiveDate) -> i64 {
    (date - epoch()).num_days()
}

/// The date of a day number.
pub(super) fn day_date(day: i64) -> NaiveDate {
    if day >= 0 {
        epoch() + Days::new(day as u64)
    } else {
        epoch() - Days::new(day.unsigned_abs())
    }
}
