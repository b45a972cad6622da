//! Turns one stored API response into warehouse rows. Pure: no I/O, so the live path
//! and `replay` produce the same rows from the same body.
//!
//! The tables are described once, in [`TABLES`]: each lists its key columns and the
//! API fields it keeps, with their SQL types. Normalization reads each field by its
//! API name (the `info` object as `info_<field>`), checks its JSON type and turns
//! null or missing into SQL NULL — never 0. Unknown fields are ignored here; they stay
//! in `raw_responses`. A known field with the wrong JSON type fails the whole response
//! with an error that names the field and what arrived.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::api::{Endpoint, Status};

mod tables;

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
    /// The closed periods the answer covers (date-ranged endpoints), recorded with
    /// its rows.
    pub coverage: Option<crate::warehouse::coverage::Covered>,
}

impl Batch {
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
            let path = format!("tasks[{ti}].result[{ri}]");
            let Some(result) = result.as_object() else {
                return Err(n.err(path, expected("object", result)));
            };
            n.result(&path, result)?;
        }
    }
    n.batch.dedupe();
    if answered {
        n.batch.coverage = crate::warehouse::coverage::covered_by(
            ctx.endpoint,
            ctx.request,
            ctx.collected_at.date_naive(),
        );
    }
    Ok(n.batch)
}

/// An item of a result's `items` array, with its path for messages.
type Item<'v> = (String, &'v Map<String, Value>);

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

    fn string_field<'v>(
        &self,
        obj: &'v Map<String, Value>,
        path: &str,
        field: &str,
    ) -> Result<Option<&'v str>, NormalizeError> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.err(format!("{path}.{field}"), expected("string", other))),
        }
    }

    fn items<'v>(
        &self,
        result: &'v Map<String, Value>,
        path: &str,
    ) -> Result<Vec<Item<'v>>, NormalizeError> {
        match result.get("items") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let p = format!("{path}.items[{i}]");
                    match item.as_object() {
                        Some(o) => Ok((p, o)),
                        None => Err(self.err(p, expected("object", item))),
                    }
                })
                .collect(),
            Some(other) => Err(self.err(format!("{path}.items"), expected("array", other))),
        }
    }

    fn result(&mut self, path: &str, result: &Map<String, Value>) -> Result<(), NormalizeError> {
        use Endpoint::*;
        match self.ctx.endpoint {
            Summary => {
                let target = self
                    .string_field(result, path, "target")?
                    .or_else(|| self.request_str("target"))
                    .ok_or_else(|| self.err(format!("{path}.target"), "missing".into()))?
                    .to_string();
                let options = self.options();
                let day = self.collected_on();
                self.row(
                    path,
                    result,
                    vec![
                        Cell::Text(target.clone()),
                        Cell::Json(options.clone()),
                        Cell::Date(day),
                    ],
                    Some((target, day, options)),
                )?;
            }
            History => {
                let target = self
                    .string_field(result, path, "target")?
                    .or_else(|| self.request_str("target"))
                    .ok_or_else(|| self.err(format!("{path}.target"), "missing".into()))?
                    .to_string();
                let options = self.options();
                for (p, item) in self.items(result, path)? {
                    let date = self.item_date(&p, item)?;
                    let month = date.with_day(1).expect("day 1 exists");
                    self.row(
                        &p,
                        item,
                        vec![
                            Cell::Text(target.clone()),
                            Cell::Json(options.clone()),
                            Cell::Date(month),
                        ],
                        Some((target.clone(), month, options.clone())),
                    )?;
                }
            }
            TimeseriesSummary | TimeseriesNewLostSummary => {
                let target = self
                    .string_field(result, path, "target")?
                    .or_else(|| self.request_str("target"))
                    .ok_or_else(|| self.err(format!("{path}.target"), "missing".into()))?
                    .to_string();
                let group_range = self
                    .string_field(result, path, "group_range")?
                    .or_else(|| self.request_str("group_range"))
                    .unwrap_or("month")
                    .to_string();
                let options = self.options();
                for (p, item) in self.items(result, path)? {
                    let date = self.item_date(&p, item)?;
                    self.row(
                        &p,
                        item,
                        vec![
                            Cell::Text(target.clone()),
                            Cell::Json(options.clone()),
                            Cell::Text(group_range.clone()),
                            Cell::Date(date),
                        ],
                        None,
                    )?;
                }
            }
            BulkNewLostBacklinks | BulkNewLostReferringDomains => {
                // The result does not echo date_from; the request we sent has it, resolved.
                let date_from = match self.request_str("date_from") {
                    Some(s) => parse_day(s).ok_or_else(|| {
                        self.err("request.date_from", format!("not a date: {s:?}"))
                    })?,
                    None => self
                        .collected_on()
                        .checked_sub_months(chrono::Months::new(1))
                        .expect("a month before a real date"),
                };
                let day = self.collected_on();
                for (p, item) in self.items(result, path)? {
                    let target = self.item_target(&p, item, "target")?;
                    self.row(
                        &p,
                        item,
                        vec![Cell::Text(target), Cell::Date(date_from), Cell::Date(day)],
                        None,
                    )?;
                }
            }
            BulkRanks | BulkBacklinks | BulkReferringDomains | BulkSpamScore => {
                let day = self.collected_on();
                let options = self.options();
                for (p, item) in self.items(result, path)? {
                    let target = self.item_target(&p, item, "target")?;
                    self.row(
                        &p,
                        item,
                        vec![
                            Cell::Text(target),
                            Cell::Json(options.clone()),
                            Cell::Date(day),
                        ],
                        None,
                    )?;
                }
            }
            BulkPagesSummary => {
                let day = self.collected_on();
                let options = self.options();
                for (p, item) in self.items(result, path)? {
                    let target = self.item_target(&p, item, "url")?;
                    self.row(
                        &p,
                        item,
                        vec![
                            Cell::Text(target.clone()),
                            Cell::Json(options.clone()),
                            Cell::Date(day),
                        ],
                        Some((target, day, options.clone())),
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Bulk items are matched to targets by their own `target`/`url`, never by position.
    fn item_target(
        &self,
        path: &str,
        item: &Map<String, Value>,
        field: &str,
    ) -> Result<String, NormalizeError> {
        self.string_field(item, path, field)?
            .map(str::to_string)
            .ok_or_else(|| self.err(format!("{path}.{field}"), "missing".into()))
    }

    fn item_date(
        &self,
        path: &str,
        item: &Map<String, Value>,
    ) -> Result<NaiveDate, NormalizeError> {
        let s = self
            .string_field(item, path, "date")?
            .ok_or_else(|| self.err(format!("{path}.date"), "missing".into()))?;
        parse_day(s).ok_or_else(|| self.err(format!("{path}.date"), format!("not a date: {s:?}")))
    }

    /// Reads the fields of `obj` after the given key cells, and its breakdowns.
    fn row(
        &mut self,
        path: &str,
        obj: &Map<String, Value>,
        mut cells: Vec<Cell>,
        parent: Option<(String, NaiveDate, Value)>,
    ) -> Result<(), NormalizeError> {
        if self.spec.rank_scale {
            cells.push(self.rank_scale());
        }
        for (field, ty) in self.spec.fields {
            let value = field_value(obj, field);
            cells.push(self.cell(&format!("{path}.{field}"), value, *ty)?);
        }
        if self.spec.info {
            let info = match obj.get("info") {
                None | Some(Value::Null) => None,
                Some(Value::Object(o)) => Some(o),
                Some(other) => {
                    return Err(self.err(format!("{path}.info"), expected("object", other)));
                }
            };
            for (field, ty) in INFO_FIELDS {
                let value = info.and_then(|o| o.get(*field));
                cells.push(self.cell(&format!("{path}.info.{field}"), value, *ty)?);
            }
        }
        cells.push(Cell::Timestamp(self.ctx.collected_at));
        cells.push(Cell::Int(self.ctx.raw_response_id));
        self.batch.table.rows.push(cells);

        if let (true, Some((target, date, options))) = (self.spec.breakdowns, parent) {
            let parent = self.batch.parents.len();
            self.batch.parents.push(Parent {
                source_table: self.spec.name,
                target,
                date,
                options,
            });
            for dim in BREAKDOWN_DIMENSIONS {
                let field = format!("referring_links_{dim}");
                let map = match obj.get(&field) {
                    None | Some(Value::Null) => continue,
                    Some(Value::Object(m)) => m,
                    Some(other) => {
                        return Err(self.err(format!("{path}.{field}"), expected("object", other)));
                    }
                };
                for (key, count) in map {
                    // A key sent with a null count is kept, its count NULL.
                    let count = match count {
                        Value::Null => None,
                        v => Some(v.as_i64().ok_or_else(|| {
                            self.err(format!("{path}.{field}[{key:?}]"), expected("integer", v))
                        })?),
                    };
                    self.batch.breakdowns.push(Breakdown {
                        parent,
                        dimension: dim,
                        key: key.clone(),
                        count,
                    });
                }
            }
        }
        Ok(())
    }

    fn cell(&self, path: &str, value: Option<&Value>, ty: ColType) -> Result<Cell, NormalizeError> {
        let Some(value) = value else {
            return Ok(Cell::Null);
        };
        if value.is_null() {
            return Ok(Cell::Null);
        }
        let wrong = |what: &str| Err(self.err(path, expected(what, value)));
        match ty {
            ColType::Int => match value.as_i64() {
                Some(i) => Ok(Cell::Int(i)),
                // 12.0 is an integer the API wrote as a float.
                None => match value.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Cell::Int(f as i64)),
                    _ => wrong("integer"),
                },
            },
            ColType::Text => match value {
                Value::String(s) => Ok(Cell::Text(s.clone())),
                _ => wrong("string"),
            },
            ColType::Bool => match value {
                Value::Bool(b) => Ok(Cell::Bool(*b)),
                _ => wrong("boolean"),
            },
            ColType::Timestamp => match value.as_str() {
                Some(s) => parse_instant(s).map(Cell::Timestamp).ok_or_else(|| {
                    self.err(path, format!("expected a date and time, found {s:?}"))
                }),
                None => wrong("string (date and time)"),
            },
            ColType::TextArray => match value {
                Value::Array(a) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .map(Cell::TextArray)
                    .map_or_else(|| wrong("array of strings"), Ok),
                _ => wrong("array of strings"),
            },
            ColType::Date => match value.as_str().and_then(parse_day) {
                Some(d) => Ok(Cell::Date(d)),
                None => wrong("date"),
            },
            ColType::Json => Ok(Cell::Json(value.clone())),
        }
    }
}

/// A field by its API name; the misspelling `reffering` seen in the wild is read as
/// `referring` when the right name is absent.
fn field_value<'v>(obj: &'v Map<String, Value>, field: &str) -> Option<&'v Value> {
    match obj.get(field) {
        Some(v) if !v.is_null() => Some(v),
        found => {
            if field.contains("referring")
                && let Some(v) = obj.get(&field.replace("referring", "reffering"))
            {
                return Some(v);
            }
            found
        }
    }
}

#[cfg(test)]
mod tests;
