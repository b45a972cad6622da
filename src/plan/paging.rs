//! A list collection's listing as pages, pure: the first page is planned; each answered
//! page says whether there is a next one and what its task is. Pages of `limit` rows
//! (1,000 unless the job says less) go by `offset` up to the API's maximum (20,000),
//! then by the answer's `search_after_token` (backlinks only: the others end there),
//! until `min(total_count, max_rows)` rows are bought, or a page comes back short.
//! The last page asks only for the rows still wanted, so a listing of N rows costs
//! `ceil(min(N, max_rows) / limit)` calls and `min(N, max_rows)` rows.
//!
//! The state travels with each page's work item (`work.paging`, [`Page`]): the bound,
//! the page's number, the rows bought before it and the first page's `total_count`.
//! A later page whose `total_count` differs (links appeared or went between two pages)
//! is marked `total_changed` and logged by its collector: its pages may then miss or
//! repeat a link at the boundaries, and the mark says so instead of mixing silently.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::Endpoint;
use crate::api::endpoint::{LIST_MAX_LIMIT, LIST_MAX_OFFSET};

/// One page of a listing: what `work.paging` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// The collection's `max_rows`: the most rows the listing buys.
    pub max_rows: u64,
    /// 1 for the first page.
    pub page: u64,
    /// Rows the listing's earlier pages returned.
    #[serde(default)]
    pub rows_before: u64,
    /// The first page's `total_count` (`None` on the first page until it is answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_total: Option<u64>,
    /// This page's answer, once it is answered: its `total_count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u64>,
    /// This page's answer: its `items_count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<u64>,
    /// This page's `total_count` is not the first page's: the listing changed while it
    /// was paged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub total_changed: bool,
}

impl Page {
    /// The first page of a listing of at most `max_rows` rows.
    pub fn first(max_rows: u64) -> Page {
        Page {
            max_rows,
            page: 1,
            ..Page::default()
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a page serializes")
    }

    /// The page `work.paging` holds; `None` when it holds none or something else.
    pub fn from_json(v: &Value) -> Option<Page> {
        serde_json::from_value(v.clone()).ok()
    }
}

/// The first page's `limit`: the job's own, else the API's maximum; never more than
/// `max_rows`.
pub fn first_limit(job_limit: Option<u64>, max_rows: u64) -> u64 {
    job_limit
        .unwrap_or(LIST_MAX_LIMIT as u64)
        .clamp(1, LIST_MAX_LIMIT as u64)
        .min(max_rows.max(1))
}

/// At most how many calls a listing of `max_rows` in pages of `limit` makes.
pub fn max_pages(max_rows: u64, limit: u64) -> u64 {
    max_rows.div_ceil(limit.max(1)).max(1)
}

/// What an answered page says of its listing: `tasks[0].result[0]`'s `total_count`,
/// `items_count` (else the length of `items`) and `search_after_token`. `None` when
/// the answer holds no result to read them from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answered {
    pub total_count: Option<u64>,
    pub items_count: u64,
    pub search_after_token: Option<String>,
}

impl Answered {
    pub fn read(body: &Value) -> Option<Answered> {
        let result = body
            .get("tasks")?
            .get(0)?
            .get("result")?
            .as_array()?
            .first()?;
        let items_count = match result.get("items_count").and_then(Value::as_u64) {
            Some(n) => n,
            None => result
                .get("items")
                .and_then(Value::as_array)
                .map_or(0, |a| a.len() as u64),
        };
        Some(Answered {
            total_count: result.get("total_count").and_then(Value::as_u64),
            items_count,
            search_after_token: result
                .get("search_after_token")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// An answer with no result (an empty listing of a target the API does not know).
    pub fn empty() -> Answered {
        Answered {
            total_count: Some(0),
            items_count: 0,
            search_after_token: None,
        }
    }
}

/// The next page to enqueue: its task, its state and the rows it asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct NextPage {
    pub task: Value,
    pub page: Page,
    pub estimated_rows: i64,
}

/// What an answered page comes to: itself with its answer, and the next page if the
/// listing goes on.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub this: Page,
    pub next: Option<NextPage>,
}

/// The step after page `page` (sent as `task`) of `endpoint` answered `answer`.
pub fn step(endpoint: Endpoint, task: &Value, page: &Page, answer: &Answered) -> Step {
    let first_total = page.first_total.or(answer.total_count);
    let this = Page {
        first_total,
        total_count: answer.total_count,
        items: Some(answer.items_count),
        total_changed: page.page > 1
            && answer.total_count.is_some()
            && answer.total_count != page.first_total,
        ..page.clone()
    };
    let limit = task
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(LIST_MAX_LIMIT as u64)
        .max(1);
    let rows = page.rows_before + answer.items_count;
    // The listing as its first page counted it, within the bound.
    let bound = first_total.unwrap_or(0).min(page.max_rows);
    let short = answer.items_count < limit;
    if answer.items_count == 0 || short || rows >= bound {
        return Step { this, next: None };
    }
    let offset = task.get("offset").and_then(Value::as_u64).unwrap_or(0);
    let by_token = task.get("search_after_token").is_some();
    let mut next_task = task.clone();
    let Some(obj) = next_task.as_object_mut() else {
        return Step { this, next: None };
    };
    let next_offset = offset + limit;
    if by_token || next_offset > LIST_MAX_OFFSET as u64 {
        // Past the offset's maximum, only the token goes on (every other parameter as
        // the page before: "all other parameters should be identical").
        match (&answer.search_after_token, endpoint == Endpoint::Backlinks) {
            (Some(token), true) => {
                obj.insert("search_after_token".into(), Value::from(token.clone()));
            }
            _ => return Step { this, next: None },
        }
    } else {
        obj.insert("offset".into(), Value::from(next_offset));
    }
    let wanted = (bound - rows).min(limit);
    obj.insert("limit".into(), Value::from(wanted));
    Step {
        this,
        next: Some(NextPage {
            task: next_task,
            page: Page {
                max_rows: page.max_rows,
                page: page.page + 1,
                rows_before: rows,
                first_total,
                ..Page::default()
            },
            estimated_rows: wanted as i64,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answered(total: u64, items: u64, token: Option<&str>) -> Answered {
        Answered {
            total_count: Some(total),
            items_count: items,
            search_after_token: token.map(str::to_string),
        }
    }

    /// Pages a listing of `total` rows to its end: each page's task.
    fn pages(endpoint: Endpoint, total: u64, max_rows: u64) -> Vec<Value> {
        let limit = first_limit(None, max_rows);
        let mut task = json!({"target": "a.com", "limit": limit});
        let mut page = Page::first(max_rows);
        let mut out = Vec::new();
        loop {
            out.push(task.clone());
            let asked = task["limit"].as_u64().unwrap();
            let at = page.rows_before;
            let items = asked.min(total.saturating_sub(at));
            let token = (at + items < total).then(|| format!("t{}", at + items));
            let s = step(
                endpoint,
                &task,
                &page,
                &answered(total, items, token.as_deref()),
            );
            match s.next {
                Some(next) => {
                    task = next.task;
                    page = next.page;
                }
                None => return out,
            }
        }
    }

    #[test]
    fn a_listing_is_bought_in_ceil_of_its_rows_over_a_thousand_calls_within_max_rows() {
        assert_eq!(pages(Endpoint::Backlinks, 2_500, 10_000).len(), 3);
        assert_eq!(pages(Endpoint::Backlinks, 3_000, 10_000).len(), 3);
        assert_eq!(pages(Endpoint::Backlinks, 50_000, 50_000).len(), 50);
        assert_eq!(pages(Endpoint::Anchors, 800, 5_000).len(), 1);
        // max_rows bounds it, and the last page asks only for what is still wanted.
        let bounded = pages(Endpoint::Backlinks, 9_000, 2_500);
        assert_eq!(bounded.len(), 3);
        assert_eq!(bounded[2]["limit"], 500);
        assert_eq!(bounded[2]["offset"], 2_000);
    }

    #[test]
    fn past_offset_twenty_thousand_backlinks_page_by_token_and_the_others_end() {
        let all = pages(Endpoint::Backlinks, 23_500, 30_000);
        assert_eq!(all.len(), 24);
        assert_eq!(all[20]["offset"], 20_000);
        assert!(all[20].get("search_after_token").is_none());
        assert_eq!(all[21]["search_after_token"], "t21000");
        assert_eq!(all[21]["offset"], 20_000, "every other parameter unchanged");
        assert_eq!(all[23]["search_after_token"], "t23000");
        assert_eq!(all[23]["limit"], 500);
        assert_eq!(pages(Endpoint::ReferringDomains, 23_500, 30_000).len(), 21);
    }

    #[test]
    fn a_page_whose_total_differs_from_the_first_pages_is_marked_changed() {
        let page = Page {
            max_rows: 10_000,
            page: 2,
            rows_before: 1_000,
            first_total: Some(5_000),
            ..Page::default()
        };
        let task = json!({"target": "a.com", "limit": 1000, "offset": 1000});
        let s = step(
            Endpoint::Backlinks,
            &task,
            &page,
            &answered(5_040, 1000, None),
        );
        assert!(s.this.total_changed);
        // The listing goes on as its first page counted it.
        let next = s.next.unwrap();
        assert_eq!(next.page.first_total, Some(5_000));
        assert_eq!(next.page.rows_before, 2_000);
        let same = step(
            Endpoint::Backlinks,
            &task,
            &page,
            &answered(5_000, 1000, None),
        );
        assert!(!same.this.total_changed);
    }

    #[test]
    fn a_short_or_empty_page_ends_the_listing() {
        let task = json!({"target": "a.com", "limit": 1000});
        let first = Page::first(10_000);
        assert_eq!(
            step(
                Endpoint::Backlinks,
                &task,
                &first,
                &answered(5_000, 0, None)
            )
            .next,
            None
        );
        assert_eq!(
            step(
                Endpoint::Backlinks,
                &task,
                &first,
                &answered(5_000, 400, None)
            )
            .next,
            None
        );
        assert_eq!(
            step(Endpoint::Backlinks, &task, &first, &Answered::empty()).next,
            None
        );
    }

    #[test]
    fn the_page_state_reads_back_from_its_json() {
        let p = Page {
            total_changed: true,
            total_count: Some(3),
            ..Page::first(20)
        };
        assert_eq!(Page::from_json(&p.to_json()), Some(p));
        assert_eq!(
            Page::from_json(&json!({"max_rows": 5, "page": 1})),
            Some(Page::first(5))
        );
    }
}
