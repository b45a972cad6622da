//! Turns one stored API response into warehouse rows. Pure: no I/O, so the live path
//! and `replay` produce the same rows from the same body.
//!
//! The tables are described once, in [`TABLES`]: each lists its key columns and the
//! API fields it keeps, with their SQL types. Normalization reads each field by its
//! API name (the `info` object as `info_<field>`), checks its JSON type and turns
//! null or missing into SQL NULL — never 0. Unknown fields are ignored here; they stay
//! in `raw_responses`.
//!
//! # The envelope and its items
//!
//! One unreadable item costs that item, never its answer. An *item* is the object one
//! row (and its breakdowns) is read from: `tasks[i].result[j]` of `summary` (its result
//! is its one row), `tasks[i].result[j].items[k]` of every other endpoint. An item is
//! set aside ([`Batch::rejected`]: its path, why, the item as it came) when
//!
//! - it is not an object (`null`, a number, ...);
//! - a field of its row's natural key is missing, null, of another JSON type or not a
//!   date: `date` of a history or timeseries item, `target` of a bulk item, `url` of a
//!   pages summary item, `target` of a summary (which falls back to the request's when
//!   null or missing, as it always has); of a list endpoint's item (issue 26),
//!   `url_from` and `url_to` of a backlink (with `item_type`, `anchor` and `image_url`
//!   they make its `link_id`), `domain` of a referring domain, `anchor` of an anchor,
//!   `page` of a page, `target` of a competitor, the referring domain an intersection's
//!   per-target objects name (the same in each);
//! - a field it keeps has the wrong JSON type: any column's field, `info` and its
//!   fields, a `referring_links_*` map and its counts. The whole item is set aside, not
//!   the field: a row is stored whole or not at all, so a NULL always means the API
//!   sent none.
//!
//! The rest of the answer loads. A null (or missing) field outside the key is a NULL
//! column and its item loads.
//!
//! Everything around the items is the *envelope*: the body and its `tasks` array, each
//! task object (its status codes read leniently: a task that did not succeed is
//! skipped), `tasks[i].result`, and, for the endpoints whose results hold `items`, each
//! result object, its `items` array and the fields that key all its items (`target`,
//! and a timeseries' `group_range`, each the request's when null or missing; an
//! intersection's request `targets`, its first target the rows' `target`). An
//! envelope that cannot be read fails the whole answer with a [`NormalizeError`] that
//! names the path and what arrived (the call ends `invalid_response`).

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::api::{Endpoint, Status};

mod lists;
mod read;
mod tables;

use read::*;

pub use tables::*;

/// One value of a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
    Timestamp(DateTime<Utc>),
    Date(NaiveDate),
    TextArray(Vec<String>),
    Json(Value),
}

/// The rows of one table, in [`TableSpec::columns`] order.
#[derive(Debug)]
pub struct TableRows {
    pub spec: &'static TableSpec,
    pub rows: Vec<Vec<Cell>>,
}

/// Identifies the parent row of breakdowns: its table, target, date and options.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Parent {
    pub source_table: &'static str,
    pub target: String,
    pub date: NaiveDate,
    pub options: Value,
}

/// One `link_breakdowns` row.
#[derive(Clone, Debug, PartialEq)]
pub struct Breakdown {
    pub parent: usize,
    pub dimension: &'static str,
    pub key: String,
    /// `None` when the API sent the key with a null count: the key is kept.
    pub count: Option<i64>,
}

/// Everything one response normalizes to; written in one transaction.
#[derive(Debug)]
pub struct Batch {
    pub table: TableRows,
    /// Parents whose breakdowns are replaced (even by none).
    pub parents: Vec<Parent>,
    pub breakdowns: Vec<Breakdown>,
    pub collected_at: DateTime<Utc>,
    pub raw_response_id: i64,
    /// What the answer says of each period it asked for (date-ranged endpoints):
    /// stored for good, stored but unsettled, or answered empty, judged by the items
    /// it held; recorded with its rows.
    pub coverage: Option<crate::warehouse::coverage::Answered>,
    /// The items set aside, in the order of the answer: written with the rows.
    pub rejected: Vec<Rejected>,
}

/// An item that could not be read, set aside while the rest of its answer loaded
/// (`linkledger.rejected_items`).
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    /// Where it is in the answer: `tasks[0].result[0].items[3]`.
    pub path: String,
    /// Why: the field within the item and what arrived (`target: expected string,
    /// found null`), or what the item itself was (`expected object, found null`).
    pub why: String,
    /// The item as it came.
    pub item: Value,
}

impl Batch {
    /// The dates of the periods the rows hold, for history (`month`) and the
    /// timeseries (`date`): the last column of their key. Empty for other tables.
    pub fn item_dates(&self) -> std::collections::BTreeSet<NaiveDate> {
        let key = self.table.spec.key;
        if !matches!(key.last(), Some(("month" | "date", _))) {
            return Default::default();
        }
        self.table
            .rows
            .iter()
            .filter_map(|row| match row.get(key.len() - 1) {
                Some(Cell::Date(d)) => Some(*d),
                _ => None,
            })
            .collect()
    }

    /// Rows written: table rows plus breakdown rows.
    pub fn row_count(&self) -> usize {
        self.table.rows.len() + self.breakdowns.len()
    }

    /// Keeps the last row of each natural key (and the breakdowns of the last parent),
    /// so one statement never touches a row twice.
    pub fn dedupe(&mut self) {
        let key_len = self.table.spec.key.len();
        let mut last: HashMap<String, usize> = HashMap::new();
        for (i, row) in self.table.rows.iter().enumerate() {
            last.insert(format!("{:?}", &row[..key_len]), i);
        }
        if last.len() != self.table.rows.len() {
            let mut keep: Vec<usize> = last.into_values().collect();
            keep.sort_unstable();
            let mut rows = std::mem::take(&mut self.table.rows);
            self.table.rows = keep.iter().map(|&i| std::mem::take(&mut rows[i])).collect();
        }
        let mut last_parent: HashMap<&Parent, usize> = HashMap::new();
        for (i, p) in self.parents.iter().enumerate() {
            last_parent.insert(p, i);
        }
        if last_parent.len() != self.parents.len() {
            let keep: Vec<bool> = (0..self.parents.len())
                .map(|i| last_parent.get(&self.parents[i]) == Some(&i))
                .collect();
            self.breakdowns.retain(|b| keep[b.parent]);
        }
    }
}

/// Where a response came from.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub endpoint: Endpoint,
    pub raw_response_id: i64,
    pub collected_at: DateTime<Utc>,
    /// When the request was sent: a period settles against it, not against when the
    /// answer arrived.
    pub sent_at: DateTime<Utc>,
    /// For history and timeseries: how long after a period's figures are complete an
    /// answer stores it for good (the collection's `settle`).
    pub settle: std::time::Duration,
    /// The task object that was sent.
    pub request: &'a Value,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{endpoint} response: {path}: {why}")]
pub struct NormalizeError {
    pub endpoint: &'static str,
    pub path: String,
    pub why: String,
}

/// Normalizes one successful response body (the whole envelope).
pub fn normalize(ctx: &Context<'_>, body: &Value) -> Result<Batch, NormalizeError> {
    let spec = table_for(ctx.endpoint);
    let options = ctx.endpoint.answer_options(ctx.request);
    let mut n = Normalizer {
        ctx,
        spec,
        options,
        batch: Batch {
            table: TableRows {
                spec,
                rows: Vec::new(),
            },
            parents: Vec::new(),
            breakdowns: Vec::new(),
            collected_at: ctx.collected_at,
            raw_response_id: ctx.raw_response_id,
            coverage: None,
            rejected: Vec::new(),
        },
    };
    let tasks = match body.get("tasks") {
        None | Some(Value::Null) => return Ok(n.batch),
        Some(Value::Array(tasks)) => tasks,
        Some(other) => return Err(n.err("tasks", expected("array", other))),
    };
    // The same lenient reading of the status codes as the client's: a task is loaded
    // when it says 20000, or says nothing under an envelope that says 20000.
    let top_ok = body
        .as_object()
        .map(Status::read)
        .is_some_and(|s| s.status_code == Some(20000));
    let mut answered = false;
    for (ti, task) in tasks.iter().enumerate() {
        let Some(task_obj) = task.as_object() else {
            return Err(n.err(format!("tasks[{ti}]"), expected("object", task)));
        };
        match Status::read(task_obj).status_code {
            Some(20000) => {}
            None if top_ok => {}
            _ => continue,
        }
        answered = true;
        let results = match task.get("result") {
            None | Some(Value::Null) => continue,
            Some(Value::Array(r)) => r,
            Some(other) => {
                return Err(n.err(format!("tasks[{ti}].result"), expected("array", other)));
            }
        };
        for (ri, result) in results.iter().enumerate() {
            n.result(&format!("tasks[{ti}].result[{ri}]"), result)?;
        }
    }
    n.batch.dedupe();
    if answered {
        n.batch.coverage = crate::warehouse::coverage::answered(
            ctx.endpoint,
            ctx.request,
            &n.batch.item_dates(),
            ctx.sent_at,
            ctx.settle,
        );
    }
    Ok(n.batch)
}

struct Normalizer<'a> {
    ctx: &'a Context<'a>,
    spec: &'static TableSpec,
    /// The request's [`Endpoint::answer_options`]: part of every row's key.
    options: Value,
    batch: Batch,
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expected(what: &str, found: &Value) -> String {
    format!("expected {what}, found {}", json_type(found))
}

/// Parses the API's instants: `2019-11-15 12:57:46 +00:00`, also RFC 3339.
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S %:z")
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f %:z"))
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .map(|t| t.with_timezone(&Utc))
        .ok()
}

/// Parses a date `yyyy-mm-dd`, or the date part of an instant.
fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .or_else(|| parse_instant(s).map(|t| t.date_naive()))
}

impl Normalizer<'_> {
    fn err(&self, path: impl Into<String>, why: String) -> NormalizeError {
        NormalizeError {
            endpoint: self.ctx.endpoint.name(),
            path: path.into(),
            why,
        }
    }

    fn collected_on(&self) -> NaiveDate {
        self.ctx.collected_at.date_naive()
    }

    fn options(&self) -> Value {
        self.options.clone()
    }

    /// The scale of the ranks of this answer: what the request asked for (the
    /// options carry the API's default when it asked nothing).
    fn rank_scale(&self) -> Cell {
        match self.options.get("rank_scale") {
            Some(Value::String(s)) => Cell::Text(s.clone()),
            _ => Cell::Null,
        }
    }

    fn request_str(&self, field: &str) -> Option<&str> {
        self.ctx.request.get(field).and_then(Value::as_str)
    }

    /// A string of the envelope (a result's `target` or `group_range`), else the
    /// request's.
    fn envelope_str(
        &self,
        result: &Map<String, Value>,
        path: &str,
        field: &str,
    ) -> Result<Option<String>, NormalizeError> {
        Ok(string_at(result, field)
            .map_err(|why| self.err(format!("{path}.{field}"), why))?
            .or_else(|| self.request_str(field))
            .map(str::to_string))
    }

    /// A result that holds `items`: part of the envelope, so it must be an object.
    fn container<'v>(
        &self,
        path: &str,
        result: &'v Value,
    ) -> Result<&'v Map<String, Value>, NormalizeError> {
        result
            .as_object()
            .ok_or_else(|| self.err(path, expected("object", result)))
    }

    /// The items of a result, each with its path; the array is the envelope's.
    fn items<'v>(
        &self,
        result: &'v Map<String, Value>,
        path: &str,
    ) -> Result<Vec<(String, &'v Value)>, NormalizeError> {
        match result.get("items") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, item)| (format!("{path}.items[{i}]"), item))
                .collect()),
            Some(other) => Err(self.err(format!("{path}.items"), expected("array", other))),
        }
    }

    /// Reads `item` with `read` and adds its row to the batch, or sets it aside with
    /// why it could not be read: it costs itself, never the answer.
    fn item(
        &mut self,
        path: &str,
        item: &Value,
        read: impl FnOnce(&Self, &Map<String, Value>) -> Result<ItemRow, Unreadable>,
    ) {
        let row = match item.as_object() {
            Some(obj) => read(self, obj),
            None => Err(Unreadable::new("", expected("object", item))),
        };
        match row {
            Ok(row) => {
                self.batch.table.rows.push(row.cells);
                if let Some((parent, counts)) = row.breakdowns {
                    let at = self.batch.parents.len();
                    self.batch.parents.push(parent);
                    self.batch.breakdowns.extend(counts.into_iter().map(
                        |(dimension, key, count)| Breakdown {
                            parent: at,
                            dimension,
                            key,
                            count,
                        },
                    ));
                }
            }
            Err(why) => self.batch.rejected.push(Rejected {
                path: path.to_string(),
                why: why.to_string(),
                item: item.clone(),
            }),
        }
    }

    /// One result, `tasks[i].result[j]`: a summary's is its one item; the others hold
    /// their items.
    fn result(&mut self, path: &str, result: &Value) -> Result<(), NormalizeError> {
        use Endpoint::*;
        match self.ctx.endpoint {
            Summary => self.item(path, result, Self::summary_row),
            History | TimeseriesSummary | TimeseriesNewLostSummary => self.dated(path, result)?,
            BulkNewLostBacklinks
            | BulkNewLostReferringDomains
            | BulkRanks
            | BulkBacklinks
            | BulkReferringDomains
            | BulkSpamScore
            | BulkPagesSummary => self.bulk(path, result)?,
            Backlinks | ReferringDomains | Anchors | DomainPages | Competitors
            | DomainIntersection => self.list(path, result)?,
        }
        Ok(())
    }

    /// A summary result's row: its own `target`, else the request's.
    fn summary_row(&self, obj: &Map<String, Value>) -> Result<ItemRow, Unreadable> {
        let target = string_at(obj, "target")
            .map_err(|why| Unreadable::new("target", why))?
            .or_else(|| self.request_str("target"))
            .ok_or_else(|| Unreadable::new("target", "missing".into()))?
            .to_string();
        let options = self.options();
        let day = self.collected_on();
        self.row(
            obj,
            vec![
                Cell::Text(target.clone()),
                Cell::Json(options.clone()),
                Cell::Date(day),
            ],
            Some((target, day, options)),
        )
    }

    /// A history or timeseries result: the target (and a timeseries' `group_range`)
    /// key every item; each item is keyed by its `date` (history by its month).
    fn dated(&mut self, path: &str, result: &Value) -> Result<(), NormalizeError> {
        let result = self.container(path, result)?;
        let target = self
            .envelope_str(result, path, "target")?
            .ok_or_else(|| self.err(format!("{path}.target"), "missing".into()))?;
        let group_range = match self.ctx.endpoint {
            Endpoint::History => None,
            _ => Some(
                self.envelope_str(result, path, "group_range")?
                    .unwrap_or_else(|| "month".into()),
            ),
        };
        let options = self.options();
        for (p, item) in self.items(result, path)? {
            self.item(&p, item, |n, obj| {
                let date = item_date(obj)?;
                match &group_range {
                    None => {
                        let month = date.with_day(1).expect("day 1 exists");
                        n.row(
                            obj,
                            vec![
                                Cell::Text(target.clone()),
                                Cell::Json(options.clone()),
                                Cell::Date(month),
                            ],
                            Some((target.clone(), month, options.clone())),
                        )
                    }
                    Some(group_range) => n.row(
                        obj,
                        vec![
                            Cell::Text(target.clone()),
                            Cell::Json(options.clone()),
                            Cell::Text(group_range.clone()),
                            Cell::Date(date),
                        ],
                        None,
                    ),
                }
            });
        }
        Ok(())
    }

    /// A bulk result: each item is keyed by its own `target` (`url` for pages), never
    /// by its position.
    fn bulk(&mut self, path: &str, result: &Value) -> Result<(), NormalizeError> {
        let result = self.container(path, result)?;
        let day = self.collected_on();
        let options = self.options();
        let (second, field) = match self.ctx.endpoint {
            // The result does not echo date_from; the request we sent has it, resolved.
            Endpoint::BulkNewLostBacklinks | Endpoint::BulkNewLostReferringDomains => {
                let date_from = match self.request_str("date_from") {
                    Some(s) => parse_day(s).ok_or_else(|| {
                        self.err("request.date_from", format!("not a date: {s:?}"))
                    })?,
                    None => day
                        .checked_sub_months(chrono::Months::new(1))
                        .expect("a month before a real date"),
                };
                (Cell::Date(date_from), "target")
            }
            Endpoint::BulkPagesSummary => (Cell::Json(options.clone()), "url"),
            _ => (Cell::Json(options.clone()), "target"),
        };
        for (p, item) in self.items(result, path)? {
            self.item(&p, item, |n, obj| {
                let target = key_at(obj, field)?.to_string();
                let parent = n
                    .spec
                    .breakdowns
                    .then(|| (target.clone(), day, options.clone()));
                n.row(
                    obj,
                    vec![Cell::Text(target), second.clone(), Cell::Date(day)],
                    parent,
                )
            });
        }
        Ok(())
    }

    /// Reads the fields of `obj` after the given key cells, and its breakdowns (for a
    /// table that keeps them, under `parent`).
    fn row(
        &self,
        obj: &Map<String, Value>,
        mut cells: Vec<Cell>,
        parent: Option<(String, NaiveDate, Value)>,
    ) -> Result<ItemRow, Unreadable> {
        if self.spec.rank_scale {
            cells.push(self.rank_scale());
        }
        for (field, ty) in self.spec.fields {
            let value = match field.rsplit_once('.') {
                None => field_value(obj, field),
                Some((outer, name)) => match nested(obj, outer)? {
                    Some(inner) => field_value(inner, name),
                    None => None,
                },
            };
            cells.push(cell(value, *ty).map_err(|why| Unreadable::new(*field, why))?);
        }
        if self.spec.info {
            let info = match obj.get("info") {
                None | Some(Value::Null) => None,
                Some(Value::Object(o)) => Some(o),
                Some(other) => return Err(Unreadable::new("info", expected("object", other))),
            };
            for (field, ty) in INFO_FIELDS {
                let value = info.and_then(|o| o.get(*field));
                cells.push(
                    cell(value, *ty)
                        .map_err(|why| Unreadable::new(format!("info.{field}"), why))?,
                );
            }
        }
        cells.push(Cell::Timestamp(self.ctx.collected_at));
        cells.push(Cell::Int(self.ctx.raw_response_id));
        let breakdowns = match (self.spec.breakdowns, parent) {
            (true, Some((target, date, options))) => {
                let parent = Parent {
                    source_table: self.spec.name,
                    target,
                    date,
                    options,
                };
                Some((parent, breakdowns(obj)?))
            }
            _ => None,
        };
        Ok(ItemRow { cells, breakdowns })
    }
}

#[cfg(test)]
mod tests;
