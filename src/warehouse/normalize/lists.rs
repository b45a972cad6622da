//! The list endpoints' pages (issue 26): one row per item, keyed by the result's
//! target, the options, the day and the item's own identity.

use serde_json::{Map, Value};

use super::read::{Unreadable, key_at, string_at};
use super::*;

impl Normalizer<'_> {
    /// One page of a list endpoint's answer: its result's `target` (the request's when
    /// null or missing; an intersection's first target) keys every item, with the
    /// options and the day it was collected; each item adds its own identity: a
    /// backlink's [`link_id`], a referring domain's `domain`, an anchor's `anchor`, a
    /// page's `page`, a competitor's `target`, an intersection's referring domain.
    pub(super) fn list(&mut self, path: &str, result: &Value) -> Result<(), NormalizeError> {
        let result = self.container(path, result)?;
        let options = self.options();
        let day = self.collected_on();
        let endpoint = self.ctx.endpoint;
        let (target, targets) = if endpoint == Endpoint::DomainIntersection {
            // The request's map: the result echoes it, but what was asked is what keys
            // the rows.
            let targets = match self.ctx.request.get("targets") {
                Some(Value::Object(m)) if !m.is_empty() => m,
                other => {
                    return Err(self.err(
                        "request.targets",
                        expected("object", other.unwrap_or(&Value::Null)),
                    ));
                }
            };
            let first = targets
                .iter()
                .min_by_key(|(k, _)| (k.parse::<u64>().unwrap_or(u64::MAX), k.as_str()))
                .and_then(|(_, v)| v.as_str())
                .ok_or_else(|| self.err("request.targets", "no target string".into()))?;
            (first.to_string(), Some(Value::Object(targets.clone())))
        } else {
            let target = self
                .envelope_str(result, path, "target")?
                .ok_or_else(|| self.err(format!("{path}.target"), "missing".into()))?;
            (target, None)
        };
        for (p, item) in self.items(result, path)? {
            self.item(&p, item, |n, obj| {
                let id = match endpoint {
                    Endpoint::Backlinks => link_id(obj)?,
                    Endpoint::ReferringDomains => key_at(obj, "domain")?.to_string(),
                    Endpoint::Anchors => key_at(obj, "anchor")?.to_string(),
                    Endpoint::DomainPages => key_at(obj, "page")?.to_string(),
                    Endpoint::Competitors => key_at(obj, "target")?.to_string(),
                    _ => intersection_domain(obj)?,
                };
                let mut cells = vec![Cell::Text(target.clone()), Cell::Json(options.clone())];
                if let Some(targets) = &targets {
                    cells.push(Cell::Json(targets.clone()));
                }
                cells.push(Cell::Date(day));
                cells.push(Cell::Text(id));
                n.row(obj, cells, None)
            });
        }
        Ok(())
    }
}

/// A backlink's identity across fires, as a hex digest (xxh3-128) of its `url_from`,
/// `url_to`, `item_type`, `anchor` and `image_url`.
///
/// Why these, from the documents (`api-fields-lists.md`): an item is a link from the
/// page `url_from` to `url_to`; one page may hold several links to the same URL, and
/// the API already folds the identical ones into one item (`links_count`: "number of
/// identical backlinks found on the referring page"), so what tells two items of one
/// page apart is what makes them not identical: the kind of link (`item_type`:
/// `anchor`, `image`, `redirect`, `canonical`, ...), its text (`anchor`) and, for an
/// image, which image (`image_url`; its `anchor` is empty). Left out: `attributes` and
/// `dofollow` (a link whose `rel` changes is the same link changed, not one lost and
/// another new; each fire's row keeps them), and everything the crawler measures
/// (ranks, status codes, `last_seen`), which changes between fires by design. A null
/// `anchor` or `image_url` is hashed apart from an empty one. `url_from` and `url_to`
/// are required: an item without them is set aside.
fn link_id(obj: &Map<String, Value>) -> Result<String, Unreadable> {
    let from = key_at(obj, "url_from")?;
    let to = key_at(obj, "url_to")?;
    let mut parts = vec![Value::from(from), Value::from(to)];
    for field in ["item_type", "anchor", "image_url"] {
        let v = string_at(obj, field).map_err(|why| Unreadable::new(field, why))?;
        parts.push(v.map_or(Value::Null, Value::from));
    }
    let digest = xxhash_rust::xxh3::xxh3_128(Value::Array(parts).to_string().as_bytes());
    Ok(format!("{digest:032x}"))
}

/// The referring domain of a `domain_intersection` item: the `target` its per-target
/// objects name (the same in each; an item whose objects disagree or name none is
/// set aside).
fn intersection_domain(obj: &Map<String, Value>) -> Result<String, Unreadable> {
    let map = match obj.get("domain_intersection") {
        Some(Value::Object(m)) => m,
        None => return Err(Unreadable::new("domain_intersection", "missing".into())),
        Some(other) => {
            return Err(Unreadable::new(
                "domain_intersection",
                expected("object", other),
            ));
        }
    };
    let mut domain: Option<&str> = None;
    for (key, inner) in map {
        let field = format!("domain_intersection[{key:?}].target");
        let name = match inner.get("target") {
            Some(Value::String(s)) => s.as_str(),
            None => return Err(Unreadable::new(field, "missing".into())),
            Some(other) => return Err(Unreadable::new(field, expected("string", other))),
        };
        match domain {
            Some(d) if d != name => {
                return Err(Unreadable::new(
                    field,
                    format!("names {name:?}, another object {d:?}"),
                ));
            }
            _ => domain = Some(name),
        }
    }
    domain
        .map(str::to_string)
        .ok_or_else(|| Unreadable::new("domain_intersection", "empty".into()))
}

#[cfg(test)]
#[path = "list_tests.rs"]
mod tests;
