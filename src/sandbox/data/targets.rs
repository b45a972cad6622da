//! Targets: the host, the registrable domain and the first label of a target, whether
//! it is a page; and the `quirk-…` schema drift a target's first label asks for.

use serde_json::{Map, Value, json};

/// The host of a target: a domain as given, or the host of a URL; without `www.`.
pub(super) fn host(target: &str) -> String {
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
pub(super) fn main_domain(host: &str) -> String {
    if is_ip(host) {
        return host.to_string();
    }
    let labels: Vec<&str> = host.split('.').collect();
    labels[labels.len().saturating_sub(2)..].join(".")
}

pub(super) fn is_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

/// The first DNS label of a target's host, lowercase and without `www.`: `quirk-nulls`
/// for `https://www.quirk-nulls.example.org/`. It selects the `quirk-…` modes, here and
/// in the server.
pub(in crate::sandbox) fn first_label(target: &str) -> String {
    let host = host(target);
    host.split('.').next().unwrap_or("").to_string()
}

/// A page is a URL with a path below the root; its counts are a fraction of a domain's.
pub(super) fn is_page(target: &str) -> bool {
    target
        .split_once("://")
        .and_then(|(_, r)| r.split_once('/'))
        .is_some_and(|(_, path)| !path.is_empty())
}

/// Schema drift on purpose, keyed on the first DNS label of the target's host, so that
/// tests can see how the collector copes with what the real API has been seen to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Quirk {
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
    pub(super) fn of(target: &str) -> Option<Quirk> {
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

pub(super) fn apply_quirk(target: &str, value: &mut Value) {
    if let (Some(q), Some(obj)) = (Quirk::of(target), value.as_object_mut()) {
        q.apply(obj);
    }
}
