//! The list endpoints (`backlinks`, `referring_domains`, `anchors`, `domain_pages`,
//! `competitors`, `domain_intersection`): a target's links on the sandbox's day
//! (`links`), their items (`items`), and here what every list does with them: the
//! documented `filters` (`api::filters`) applied, `order_by` sorted (else the
//! sandbox's own order, strongest first), `mode` grouping (backlinks), `total_count`
//! of all that match, one page of `limit` items from `offset`, and for backlinks a
//! `search_after_token` that continues where its page ended (past offset 20,000).
//!
//! One day's lists are the same whatever the page asked, so pages of one listing on
//! one day are consistent; the next day some links are new and some lost.

mod items;
mod links;

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::invalid_field;
use super::numbers::{hash, unit};
use crate::api::Endpoint;
use crate::api::filters::{Filter, SortRule, parse_order_by};
use items::{Ctx, keyed};
use links::{LARGE, Link, Status, Universe, day_number, pool_domain, pool_rank};

/// The paging and shaping options of a list request, read from its task.
struct Listing {
    filters: Option<Filter>,
    order: Vec<SortRule>,
    limit: usize,
    offset: usize,
    /// Where a `search_after_token` says to continue.
    after: Option<usize>,
    status: Status,
    backlinks_filters: Option<Filter>,
    rank_hundred: bool,
    list_limit: usize,
}

impl Listing {
    fn read(endpoint: Endpoint, task: &Map<String, Value>) -> Result<Listing, String> {
        let filters = match task.get("filters") {
            None | Some(Value::Null) => None,
            Some(v) => Some(Filter::parse(endpoint, v).map_err(|_| invalid_field("filters"))?),
        };
        let backlinks_filters = match task.get("backlinks_filters") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                Filter::parse(Endpoint::Backlinks, v)
                    .map_err(|_| invalid_field("backlinks_filters"))?,
            ),
        };
        let order = match task.get("order_by") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => parse_order_by(v).map_err(|_| invalid_field("order_by"))?,
        };
        let after = match task.get("search_after_token").and_then(Value::as_str) {
            None => None,
            Some(token) => Some(read_token(token, request_hash(task))?),
        };
        let int =
            |name: &str, default: u64| task.get(name).and_then(Value::as_u64).unwrap_or(default);
        Ok(Listing {
            filters,
            order,
            limit: int("limit", 100) as usize,
            offset: int("offset", 0) as usize,
            after,
            status: match task.get("backlinks_status_type").and_then(Value::as_str) {
                Some("all") => Status::All,
                Some("lost") => Status::Lost,
                _ => Status::Live,
            },
            backlinks_filters,
            rank_hundred: task.get("rank_scale").and_then(Value::as_str) == Some("one_hundred"),
            list_limit: int("internal_list_limit", 10) as usize,
        })
    }

    /// One page of `items` (already filtered and sorted): (total, the page, where the
    /// next page starts when there is one).
    fn page<T>(&self, items: Vec<T>) -> (usize, Vec<T>, Option<usize>) {
        let total = items.len();
        let start = self.after.unwrap_or(self.offset).min(total);
        let end = start.saturating_add(self.limit).min(total);
        let page: Vec<T> = items.into_iter().skip(start).take(end - start).collect();
        (total, page, (end < total).then_some(end))
    }
}

/// The parts of a task a `search_after_token` must find unchanged ("all other
/// parameters should be identical to the previous request").
fn request_hash(task: &Map<String, Value>) -> u64 {
    let kept: Map<String, Value> = task
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "offset" | "limit" | "search_after_token" | "tag"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    hash("token", "", &Value::Object(kept).to_string())
}

fn token(request: u64, position: usize) -> String {
    format!("sat-{request:016x}-{position}")
}

fn read_token(token: &str, request: u64) -> Result<usize, String> {
    let bad = || invalid_field("search_after_token");
    let rest = token.strip_prefix("sat-").ok_or_else(bad)?;
    let (h, pos) = rest.split_once('-').ok_or_else(bad)?;
    if u64::from_str_radix(h, 16).map_err(|_| bad())? != request {
        return Err(bad());
    }
    pos.parse().map_err(|_| bad())
}

/// A field of an item by its (dotted) name: `meta.title`, and for an intersection
/// `1.backlinks`, the first target's `backlinks`.
fn field(item: &Value, name: &str) -> Option<Value> {
    let mut at = item;
    let mut parts = name.split('.').peekable();
    if parts.peek().is_some_and(|p| p.parse::<u32>().is_ok())
        && let Some(inner) = item.get("domain_intersection")
    {
        at = inner;
    }
    for part in parts {
        at = at.get(part)?;
    }
    (!at.is_null()).then(|| at.clone())
}

/// Orders two field values: numbers by value, then text; a missing value last.
fn compare(a: &Option<Value>, b: &Option<Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Greater,
        (_, None) => Ordering::Less,
        (Some(x), Some(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => x.to_string().cmp(&y.to_string()),
        },
    }
}

/// Sorts `items` by `order` (stable: ties keep the sandbox's own order), with `get`
/// reading a field of one.
fn sort_by<T>(items: &mut Vec<T>, order: &[SortRule], get: impl Fn(&T, &str) -> Option<Value>) {
    if order.is_empty() {
        return;
    }
    let mut keyed: Vec<(Vec<Option<Value>>, T)> = std::mem::take(items)
        .into_iter()
        .map(|t| (order.iter().map(|r| get(&t, &r.field)).collect(), t))
        .collect();
    keyed.sort_by(|a, b| {
        for (i, rule) in order.iter().enumerate() {
            let o = compare(&a.0[i], &b.0[i]);
            let o = if rule.descending { o.reverse() } else { o };
            // A missing value stays last either way.
            let o = match (&a.0[i], &b.0[i]) {
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => o,
            };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    *items = keyed.into_iter().map(|(_, t)| t).collect();
}

/// The `result` of a list endpoint's task (`task` validated by `Request::parse`).
pub(super) fn list(endpoint: Endpoint, task: &Value, today: NaiveDate) -> Result<Value, String> {
    let obj = task.as_object().ok_or_else(|| invalid_field("target"))?;
    let listing = Listing::read(endpoint, obj)?;
    let day = day_number(today);
    match endpoint {
        Endpoint::Backlinks => backlinks(obj, &listing, day),
        Endpoint::ReferringDomains | Endpoint::Anchors | Endpoint::DomainPages => {
            aggregates(endpoint, obj, &listing, day)
        }
        Endpoint::Competitors => Ok(competitors(obj, &listing, day)),
        Endpoint::DomainIntersection => intersection(obj, &listing, day),
        _ => Err(invalid_field("target")),
    }
}

fn target_of(obj: &Map<String, Value>) -> Result<String, String> {
    obj.get("target")
        .and_then(Value::as_str)
        .map(|t| t.trim().to_string())
        .ok_or_else(|| invalid_field("target"))
}

/// The links of a universe a list counts: those of the status asked for that meet
/// `backlinks_filters`.
fn wanted<'u>(ctx: &Ctx<'u>, listing: &Listing) -> Vec<&'u Link> {
    ctx.universe
        .links
        .iter()
        .filter(|l| l.wanted(ctx.day, listing.status))
        .filter(|l| {
            listing
                .backlinks_filters
                .as_ref()
                .is_none_or(|f| f.matches(&|name| backlink_path(ctx, l, name)))
        })
        .collect()
}

/// A backlink's field by a dotted name, built alone.
fn backlink_path(ctx: &Ctx, l: &Link, name: &str) -> Option<Value> {
    let (top, rest) = name
        .split_once('.')
        .map_or((name, None), |(a, b)| (a, Some(b)));
    let v = ctx.backlink_field(l, top)?;
    match rest {
        None => (!v.is_null()).then_some(v),
        Some(rest) => field(&v, rest),
    }
}

fn backlinks(obj: &Map<String, Value>, listing: &Listing, day: i64) -> Result<Value, String> {
    let target = target_of(obj)?;
    let universe = Universe::of(&target);
    let ctx = Ctx {
        universe: &universe,
        day,
        rank_hundred: listing.rank_hundred,
        list_limit: listing.list_limit,
    };
    let mut links: Vec<&Link> = universe
        .links
        .iter()
        .filter(|l| l.wanted(day, listing.status))
        .filter(|l| {
            listing
                .filters
                .as_ref()
                .is_none_or(|f| f.matches(&|name| backlink_path(&ctx, l, name)))
        })
        .collect();
    // group_count: the links of the same referring domain.
    let mut per_domain: HashMap<u32, usize> = HashMap::new();
    for l in &links {
        *per_domain.entry(l.domain).or_default() += 1;
    }
    // `mode`, or `custom_mode` (which then wins): how many links per domain or anchor.
    let mode = obj.get("mode").and_then(Value::as_str).unwrap_or("as_is");
    let (group, per_group) = match obj.get("custom_mode") {
        Some(Value::Object(c)) => {
            let field = match c.get("field").and_then(Value::as_str) {
                Some("domain" | "domain_from") => "domain",
                Some("anchor") => "anchor",
                _ => return Err(invalid_field("custom_mode")),
            };
            let n = c
                .get("value")
                .and_then(Value::as_u64)
                .filter(|n| *n >= 1)
                .ok_or_else(|| invalid_field("custom_mode"))?;
            (Some(field), n as usize)
        }
        Some(Value::Null) | None => match mode {
            "one_per_domain" => (Some("domain"), 1),
            "one_per_anchor" => (Some("anchor"), 1),
            _ => (None, 0),
        },
        Some(_) => return Err(invalid_field("custom_mode")),
    };
    if let Some(group) = group {
        let mut seen: HashMap<String, usize> = HashMap::new();
        links.retain(|l| {
            let key = if group == "domain" {
                l.domain.to_string()
            } else {
                ctx.backlink_field(l, "anchor")
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            };
            let n = seen.entry(key).or_default();
            *n += 1;
            *n <= per_group
        });
    }
    sort_by(&mut links, &listing.order, |l, f| backlink_path(&ctx, l, f));
    let (total, page, next) = listing.page(links);
    let items: Vec<Value> = page
        .iter()
        .map(|l| ctx.backlink(l, per_domain.get(&l.domain).copied().unwrap_or(1)))
        .collect();
    let request = request_hash(obj);
    Ok(json!({
        "target": target,
        "mode": mode,
        "custom_mode": obj.get("custom_mode").cloned().unwrap_or(Value::Null),
        "total_count": total,
        "items_count": items.len(),
        "items": items,
        "search_after_token": next.map(|n| token(request, n)),
    }))
}

/// Filters, sorts and pages whole items.
fn shape(listing: &Listing, mut items: Vec<Value>) -> (usize, Vec<Value>) {
    if let Some(f) = &listing.filters {
        items.retain(|item| f.matches(&|name| field(item, name)));
    }
    sort_by(&mut items, &listing.order, field);
    let (total, page, _) = listing.page(items);
    (total, page)
}

fn aggregates(
    endpoint: Endpoint,
    obj: &Map<String, Value>,
    listing: &Listing,
    day: i64,
) -> Result<Value, String> {
    let target = target_of(obj)?;
    let universe = Universe::of(&target);
    let ctx = Ctx {
        universe: &universe,
        day,
        rank_hundred: listing.rank_hundred,
        list_limit: listing.list_limit,
    };
    let links = wanted(&ctx, listing);
    let items: Vec<Value> = match endpoint {
        Endpoint::ReferringDomains => {
            let mut by_domain: Vec<Vec<&Link>> = vec![Vec::new(); universe.domains.len()];
            for l in links {
                by_domain[l.domain as usize].push(l);
            }
            by_domain
                .iter()
                .enumerate()
                .filter(|(_, ls)| !ls.is_empty())
                .map(|(i, ls)| {
                    keyed(
                        "backlinks_referring_domain",
                        "domain",
                        json!(universe.domains[i].name),
                        ctx.aggregate(ls),
                    )
                })
                .collect()
        }
        Endpoint::Anchors => {
            let mut order: Vec<String> = Vec::new();
            let mut by_anchor: HashMap<String, Vec<&Link>> = HashMap::new();
            for l in links {
                let a = ctx
                    .backlink_field(l, "anchor")
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let entry = by_anchor.entry(a.clone()).or_default();
                if entry.is_empty() {
                    order.push(a);
                }
                entry.push(l);
            }
            // Most backlinks first.
            order.sort_by_key(|a| std::cmp::Reverse(by_anchor[a].len()));
            order
                .iter()
                .map(|a| {
                    keyed(
                        "backlinks_anchor",
                        "anchor",
                        json!(a),
                        ctx.aggregate(&by_anchor[a]),
                    )
                })
                .collect()
        }
        _ => {
            let mut by_page: Vec<Vec<&Link>> = vec![Vec::new(); universe.pages as usize];
            for l in links {
                by_page[ctx.link_page(l) as usize].push(l);
            }
            by_page
                .iter()
                .enumerate()
                .map(|(p, ls)| ctx.page(p as u64, ls))
                .collect()
        }
    };
    let (total, items) = shape(listing, items);
    Ok(json!({
        "target": target,
        "total_count": total,
        "items_count": items.len(),
        "items": items,
    }))
}

/// Domains that share referring domains with the target: from the shared pool, the
/// number of intersections moving a little from day to day.
fn competitors(obj: &Map<String, Value>, listing: &Listing, day: i64) -> Value {
    let target = obj
        .get("target")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    let exclude_large = obj
        .get("exclude_large_domains")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let universe = Universe::of(target);
    let n = (universe.domains.len() / 3).clamp(5, 3000);
    let mut seen = HashSet::new();
    let mut found: Vec<(u64, i64)> = Vec::new();
    for i in 0..n {
        let u = unit(target, "competitor", &i.to_string());
        let g = (50_000.0 * u.powi(2)) as u64;
        if !seen.insert(g) || pool_domain(g) == universe.host || (exclude_large && g < LARGE) {
            continue;
        }
        let share = (1.0 - i as f64 / n as f64).powi(2);
        let noise = 0.9 + 0.2 * unit(target, &format!("competitor:{g}"), &day.to_string());
        let intersections =
            ((universe.domains.len() as f64 * 0.5 * share * noise).round() as i64).max(1);
        found.push((g, intersections));
    }
    found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let items: Vec<Value> = found
        .into_iter()
        .map(|(g, intersections)| {
            json!({
                "type": "backlinks_competitor",
                "target": pool_domain(g),
                "rank": super::show_rank(pool_rank(g), listing.rank_hundred),
                "intersections": intersections,
            })
        })
        .collect();
    let (total, items) = shape(listing, items);
    json!({
        "total_count": total,
        "items_count": items.len(),
        "items": items,
    })
}

/// Referring domains that link to every target and to none of `exclude_targets`.
fn intersection(obj: &Map<String, Value>, listing: &Listing, day: i64) -> Result<Value, String> {
    let targets = obj
        .get("targets")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid_field("targets"))?;
    let mut keys: Vec<(&String, String)> = targets
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("").trim().to_string()))
        .collect();
    keys.sort_by_key(|(k, _)| k.parse::<u32>().unwrap_or(u32::MAX));
    let universes: Vec<Universe> = keys.iter().map(|(_, t)| Universe::of(t)).collect();
    // Per target: referring domain name -> its wanted links.
    let sets: Vec<HashMap<String, Vec<&Link>>> = universes
        .iter()
        .map(|u| {
            let ctx = Ctx {
                universe: u,
                day,
                rank_hundred: listing.rank_hundred,
                list_limit: listing.list_limit,
            };
            let mut m: HashMap<String, Vec<&Link>> = HashMap::new();
            for l in wanted(&ctx, listing) {
                m.entry(u.domains[l.domain as usize].name.clone())
                    .or_default()
                    .push(l);
            }
            m
        })
        .collect();
    let excluded: HashSet<String> = obj
        .get("exclude_targets")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .flat_map(|t| {
                    let u = Universe::of(t);
                    let ctx = Ctx {
                        universe: &u,
                        day,
                        rank_hundred: false,
                        list_limit: 1,
                    };
                    wanted(&ctx, listing)
                        .into_iter()
                        .map(|l| u.domains[l.domain as usize].name.clone())
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .unwrap_or_default();
    let Some(first) = universes.first() else {
        return Err(invalid_field("targets"));
    };
    let mut items = Vec::new();
    // In the first target's order: strongest referring domain first.
    for d in &first.domains {
        if excluded.contains(&d.name) || !sets.iter().all(|s| s.contains_key(&d.name)) {
            continue;
        }
        let mut per_target = Map::new();
        for (i, (key, _)) in keys.iter().enumerate() {
            let ctx = Ctx {
                universe: &universes[i],
                day,
                rank_hundred: listing.rank_hundred,
                list_limit: listing.list_limit,
            };
            per_target.insert(
                (*key).clone(),
                keyed(
                    "backlinks_domain_intersection",
                    "target",
                    json!(d.name),
                    ctx.aggregate(&sets[i][&d.name]),
                ),
            );
        }
        items.push(json!({
            "domain_intersection": per_target,
            "summary": {"intersections_count": keys.len()},
        }));
    }
    let (total, items) = shape(listing, items);
    Ok(json!({
        "targets": targets,
        "total_count": total,
        "items_count": items.len(),
        "items": items,
    }))
}

#[cfg(test)]
mod tests;
