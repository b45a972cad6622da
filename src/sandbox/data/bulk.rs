//! The bulk endpoints: one item per distinct target, sorted by target (ranks,
//! backlinks, referring domains, new and lost counts, spam scores, pages summaries).

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::bad_day::shape_bulk_item;
use super::numbers::{Snapshot, first_seen, lost_date, new_lost, snapshot};
use super::request::Request;
use super::show_rank;
use super::summary::insert_record;
use super::targets::{Quirk, apply_quirk, host, main_domain};
use crate::api::Endpoint;

/// The bulk endpoints: one item per distinct target, sorted by target; a target's
/// bad-day mode (see `bad_day`) may leave its item out or null it or its key.
pub(super) fn bulk(req: &Request, today: NaiveDate) -> Value {
    let date = today.to_string();
    let key = if req.endpoint == Endpoint::BulkPagesSummary {
        "url"
    } else {
        "target"
    };
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
        items.extend(shape_bulk_item(t, key, item));
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
