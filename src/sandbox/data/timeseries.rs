//! The two timeseries endpoints: one item per day, week, month or year of the asked
//! range, the counts at its end or the new and lost counts over it.

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::bad_day::{BadDay, indexed, revised_scale, shape_series};
use super::numbers::{midnight, new_lost, snapshot};
use super::request::Request;
use super::show_rank;
use super::targets::apply_quirk;
use crate::api::Endpoint;
use crate::api::endpoint::periods;

/// One item per period of `group_range`, dated its last day. A target's bad-day mode
/// (see `bad_day`) may leave periods out or revise recent ones, by `today`.
pub(super) fn timeseries(req: &Request, today: NaiveDate) -> Value {
    let target = req.targets[0].as_str();
    let from = req.date_from.expect("timeseries has date_from");
    let to = req.date_to.expect("timeseries has date_to");
    let mode = BadDay::of(target);
    let mut items = Vec::new();
    for (start, end) in periods(from, to, req.group) {
        if !indexed(mode, end, today) {
            continue;
        }
        let s = snapshot(
            target,
            end,
            revised_scale(mode, target, end, today, req.scale),
        );
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
    shape_series(mode, &mut items);
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
