//! The history endpoint: one item per month, each the record of its first day, with
//! new and lost counts from May 2021 on.

use chrono::{Datelike, Months, NaiveDate};
use serde_json::{Map, Value, json};

use super::bad_day::{BadDay, indexed, revised_scale, shape_series};
use super::numbers::{NewLost, midnight, new_lost, snapshot};
use super::request::Request;
use super::show_rank;
use super::summary::insert_record;
use super::targets::apply_quirk;
use crate::api::endpoint::first_of_month;

/// New/lost counts of `history` exist only from May 2021; before that the API sends 0.
const NEW_LOST_SINCE: (i32, u32) = (2021, 5);

/// One item per month from `date_from`'s month to `min(date_to, today)`'s, each dated
/// the first of its month: the API aggregates what the domain had on that day. A
/// target's bad-day mode (see `bad_day`) may leave months out or revise recent ones.
pub(super) fn history(req: &Request, today: NaiveDate) -> Value {
    let target = req.targets[0].as_str();
    let from = req.date_from.expect("history has date_from");
    let to = req.date_to.expect("history has date_to");
    let last = to.min(today);
    let mode = BadDay::of(target);
    let mut items = Vec::new();
    let mut month = first_of_month(from);
    while month <= last {
        let next = month
            .checked_add_months(Months::new(1))
            .expect("date in range");
        if !indexed(mode, month, today) {
            month = next;
            continue;
        }
        let s = snapshot(
            target,
            month,
            revised_scale(mode, target, month, today, 1.0),
        );
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
        month = next;
    }
    shape_series(mode, &mut items);
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
