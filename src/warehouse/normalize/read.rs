//! Reading one item: its fields by API name, checked against their column types, into
//! cells and breakdowns; what cannot be read says which field and why.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::*;

/// The object at `path` (`meta`, `ranked_keywords_info`) of an item: `None` when null
/// or missing, unreadable when of another type.
pub(super) fn nested<'v>(
    obj: &'v Map<String, Value>,
    path: &str,
) -> Result<Option<&'v Map<String, Value>>, Unreadable> {
    let mut at = obj;
    for part in path.split('.') {
        match at.get(part) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(o)) => at = o,
            Some(other) => return Err(Unreadable::new(path, expected("object", other))),
        }
    }
    Ok(Some(at))
}

/// One `referring_links_*` entry: dimension, key, count.
pub(super) type Counted = (&'static str, String, Option<i64>);

/// What one item was read into: its row's cells and, for a table that keeps
/// breakdowns, their parent and entries. Nothing reaches the batch until the whole
/// item is read.
pub(super) struct ItemRow {
    pub(super) cells: Vec<Cell>,
    pub(super) breakdowns: Option<(Parent, Vec<Counted>)>,
}

/// Why an item cannot be read: the field within it (empty for the item itself) and
/// what arrived.
#[derive(Debug)]
pub(super) struct Unreadable {
    field: String,
    why: String,
}

impl Unreadable {
    pub(super) fn new(field: impl Into<String>, why: String) -> Unreadable {
        Unreadable {
            field: field.into(),
            why,
        }
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.why)
        } else {
            write!(f, "{}: {}", self.field, self.why)
        }
    }
}

/// A string field: `None` when null or missing, why when of another type.
pub(super) fn string_at<'v>(
    obj: &'v Map<String, Value>,
    field: &str,
) -> Result<Option<&'v str>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(expected("string", other)),
    }
}

/// A key field of an item: a string, or why not.
pub(super) fn key_at<'v>(obj: &'v Map<String, Value>, field: &str) -> Result<&'v str, Unreadable> {
    match obj.get(field) {
        None => Err(Unreadable::new(field, "missing".into())),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(Unreadable::new(field, expected("string", other))),
    }
}

/// An item's `date`: `yyyy-mm-dd` or an instant.
pub(super) fn item_date(item: &Map<String, Value>) -> Result<NaiveDate, Unreadable> {
    let s = key_at(item, "date")?;
    parse_day(s).ok_or_else(|| Unreadable::new("date", format!("not a date: {s:?}")))
}

/// The six `referring_links_*` maps of an item; a key sent with a null count is kept,
/// its count NULL.
pub(super) fn breakdowns(obj: &Map<String, Value>) -> Result<Vec<Counted>, Unreadable> {
    let mut out = Vec::new();
    for dim in BREAKDOWN_DIMENSIONS {
        let field = format!("referring_links_{dim}");
        let map = match obj.get(&field) {
            None | Some(Value::Null) => continue,
            Some(Value::Object(m)) => m,
            Some(other) => return Err(Unreadable::new(field, expected("object", other))),
        };
        for (key, count) in map {
            let count = match count {
                Value::Null => None,
                v => Some(v.as_i64().ok_or_else(|| {
                    Unreadable::new(format!("{field}[{key:?}]"), expected("integer", v))
                })?),
            };
            out.push((*dim, key.clone(), count));
        }
    }
    Ok(out)
}

/// One field's cell: null or missing is NULL; a value of another JSON type is why not.
pub(super) fn cell(value: Option<&Value>, ty: ColType) -> Result<Cell, String> {
    let Some(value) = value else {
        return Ok(Cell::Null);
    };
    if value.is_null() {
        return Ok(Cell::Null);
    }
    let wrong = |what: &str| Err(expected(what, value));
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
            Some(s) => parse_instant(s)
                .map(Cell::Timestamp)
                .ok_or_else(|| format!("expected a date and time, found {s:?}")),
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
        ColType::Json => match value {
            Value::Object(_) | Value::Array(_) => Ok(Cell::Json(value.clone())),
            _ => wrong("object or array"),
        },
    }
}

/// A field by its API name; the misspelling `reffering` seen in the wild is read as
/// `referring` when the right name is absent.
pub(super) fn field_value<'v>(obj: &'v Map<String, Value>, field: &str) -> Option<&'v Value> {
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
