//! The list endpoints' `filters` and `order_by`, read the way the documents write them
//! (`reference/api-fields-lists.md`): a condition is `[field, operator, value]`; several
//! are joined by `"and"` / `"or"` in an array and may nest
//! (`[['first_seen','>','2017-10-23 11:31:45 +00:00'],'and',[['anchor','like','%seo%'],'or',['text_pre','like','%seo%']]]`);
//! at most eight conditions; a sorting rule is `"field,asc"` or `"field,desc"`, at most
//! three. Job validation reads them with these rules, and the sandbox evaluates them.
//!
//! Operators: each endpoint's list of "the following operators are supported" (the
//! `referring_domains` list has no `ilike` / `not_ilike`), and the comparisons `<`,
//! `<=`, `>`, `>=` that every endpoint's own examples use (`['rank','>','80']`).

use serde_json::Value;

use super::Endpoint;
use super::endpoint::{LIST_MAX_FILTERS, LIST_MAX_ORDER_RULES};

/// The comparisons every list endpoint's examples use.
const COMPARISONS: &[&str] = &["<", "<=", ">", ">="];
/// "the following operators are supported" of most list endpoints.
const OPERATORS: &[&str] = &[
    "=",
    "<>",
    "in",
    "not_in",
    "like",
    "not_like",
    "ilike",
    "not_ilike",
    "regex",
    "not_regex",
    "match",
    "not_match",
];

/// Whether `endpoint`'s documents name `op` as a filter operator.
pub fn operator_supported(endpoint: Endpoint, op: &str) -> bool {
    if endpoint == Endpoint::ReferringDomains && matches!(op, "ilike" | "not_ilike") {
        return false;
    }
    COMPARISONS.contains(&op) || OPERATORS.contains(&op)
}

/// One condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// A field of the item, dotted for a nested one (`meta.title`, `1.backlinks`).
    pub field: String,
    pub op: String,
    pub value: Value,
}

/// `and` / `or`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logic {
    And,
    Or,
}

/// A filter expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Condition(Condition),
    /// The first expression, then each joined by its logic, evaluated left to right
    /// (`and` binds tighter than `or`).
    Group(Box<Filter>, Vec<(Logic, Filter)>),
}

/// Why a `filters` or `order_by` value is not what the documents allow: the path of
/// the part that is wrong (`[2][1]`) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{why}", if .at.is_empty() { String::new() } else { format!("at {}: ", .at) })]
pub struct FilterError {
    pub at: String,
    pub why: String,
}

fn err(at: &str, why: impl Into<String>) -> FilterError {
    FilterError {
        at: at.to_string(),
        why: why.into(),
    }
}

impl Filter {
    /// Reads a `filters` array for `endpoint`.
    pub fn parse(endpoint: Endpoint, value: &Value) -> Result<Filter, FilterError> {
        let filter = parse_expr(endpoint, value, "")?;
        let n = filter.conditions();
        if n > LIST_MAX_FILTERS {
            return Err(err(
                "",
                format!("{n} conditions; the API takes at most {LIST_MAX_FILTERS} filters"),
            ));
        }
        Ok(filter)
    }

    /// How many conditions it holds.
    pub fn conditions(&self) -> usize {
        match self {
            Filter::Condition(_) => 1,
            Filter::Group(first, rest) => {
                first.conditions() + rest.iter().map(|(_, f)| f.conditions()).sum::<usize>()
            }
        }
    }

    /// Evaluates it with `get` giving an item's field (`None`: no such field, or null).
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<Value>) -> bool {
        match self {
            Filter::Condition(c) => c.matches(get(&c.field).as_ref()),
            Filter::Group(first, rest) => {
                // `and` binds tighter: a sum (or) of products (and).
                let mut any = false;
                let mut all = first.matches(get);
                for (logic, f) in rest {
                    match logic {
                        Logic::And => all = all && f.matches(get),
                        Logic::Or => {
                            any = any || all;
                            all = f.matches(get);
                        }
                    }
                }
                any || all
            }
        }
    }
}

fn is_condition(items: &[Value]) -> bool {
    items.len() == 3
        && items[0].is_string()
        && items[1]
            .as_str()
            .is_some_and(|s| !matches!(s, "and" | "or"))
}

fn parse_expr(endpoint: Endpoint, value: &Value, at: &str) -> Result<Filter, FilterError> {
    let Some(items) = value.as_array() else {
        return Err(err(
            at,
            "expected an array: a condition [field, operator, value] or conditions joined by \"and\" / \"or\"",
        ));
    };
    if items.is_empty() {
        return Err(err(at, "an empty array"));
    }
    if is_condition(items) {
        let field = items[0].as_str().unwrap_or_default().trim();
        let op = items[1].as_str().unwrap_or_default();
        if field.is_empty() {
            return Err(err(&format!("{at}[0]"), "an empty field name"));
        }
        if !operator_supported(endpoint, op) {
            return Err(err(
                &format!("{at}[1]"),
                format!(
                    "`{}` is not an operator {endpoint} supports",
                    crate::words::shown(op)
                ),
            ));
        }
        let value = &items[2];
        if matches!(op, "in" | "not_in") {
            if !value.is_array() {
                return Err(err(&format!("{at}[2]"), format!("`{op}` takes an array")));
            }
        } else if !(value.is_string() || value.is_number() || value.is_boolean()) {
            return Err(err(
                &format!("{at}[2]"),
                format!("`{op}` takes a string, a number or a boolean"),
            ));
        }
        if matches!(op, "regex" | "not_regex")
            && let Some(p) = value.as_str()
            && compile(p).is_none()
        {
            return Err(err(&format!("{at}[2]"), "not a regular expression"));
        }
        return Ok(Filter::Condition(Condition {
            field: field.to_string(),
            op: op.to_string(),
            value: value.clone(),
        }));
    }
    // A group: expressions at even places, "and" / "or" between them.
    if items.len() % 2 == 0 {
        return Err(err(
            at,
            "conditions must be joined by \"and\" or \"or\": [condition, \"and\", condition, ...]",
        ));
    }
    let first = parse_expr(endpoint, &items[0], &format!("{at}[0]"))?;
    let mut rest = Vec::new();
    for (i, pair) in items[1..].chunks(2).enumerate() {
        let logic = match pair[0].as_str() {
            Some("and") => Logic::And,
            Some("or") => Logic::Or,
            _ => {
                return Err(err(
                    &format!("{at}[{}]", 2 * i + 1),
                    "expected \"and\" or \"or\"",
                ));
            }
        };
        rest.push((
            logic,
            parse_expr(endpoint, &pair[1], &format!("{at}[{}]", 2 * i + 2))?,
        ));
    }
    Ok(Filter::Group(Box::new(first), rest))
}

/// A regular expression (a DFA: linear in the text matched).
fn compile(pattern: &str) -> Option<regex_automata::dfa::regex::Regex> {
    regex_automata::dfa::regex::Regex::new(pattern).ok()
}

/// A number from a JSON number or a numeric string (the documents quote numbers:
/// `['rank','>','80']`).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Two scalars equal as the API compares them: numbers by value, booleans also
/// against `"true"` / `"false"` (`['1.original','=','true']`), strings as written.
fn equal(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (number(a), number(b))
        && (a.is_number() || b.is_number())
    {
        return x == y;
    }
    match (a, b) {
        (Value::Bool(x), other) | (other, Value::Bool(x)) => {
            other.as_bool() == Some(*x) || other.as_str() == Some(if *x { "true" } else { "false" })
        }
        _ => text(a).is_some_and(|x| text(b).is_some_and(|y| x == y)),
    }
}

/// SQL `LIKE`: `%` any run of characters, `_` one character.
fn like(value: &str, pattern: &str) -> bool {
    fn go(v: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some(('%', rest)) => (0..=v.len()).any(|i| go(&v[i..], rest)),
            Some(('_', rest)) => !v.is_empty() && go(&v[1..], rest),
            Some((c, rest)) => v.first() == Some(c) && go(&v[1..], rest),
        }
    }
    let v: Vec<char> = value.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    go(&v, &p)
}

impl Condition {
    /// Whether a field's value (`None`: absent or null) meets the condition. An array
    /// field (`attributes`) meets `=`, `like`, `match` ... when one of its elements does.
    pub fn matches(&self, field: Option<&Value>) -> bool {
        let negated = matches!(
            self.op.as_str(),
            "<>" | "not_in" | "not_like" | "not_ilike" | "not_regex" | "not_match"
        );
        let Some(field) = field.filter(|v| !v.is_null()) else {
            return negated;
        };
        if let Value::Array(elements) = field
            && !matches!(self.op.as_str(), "<" | "<=" | ">" | ">=")
        {
            let positive = elements.iter().any(|e| self.positive(e));
            return positive != negated;
        }
        match self.op.as_str() {
            "<" | "<=" | ">" | ">=" => {
                let ord = match (number(field), number(&self.value)) {
                    (Some(a), Some(b)) => a.partial_cmp(&b),
                    _ => text(field).zip(text(&self.value)).map(|(a, b)| a.cmp(&b)),
                };
                let Some(ord) = ord else { return false };
                match self.op.as_str() {
                    "<" => ord.is_lt(),
                    "<=" => ord.is_le(),
                    ">" => ord.is_gt(),
                    _ => ord.is_ge(),
                }
            }
            _ => self.positive(field) != negated,
        }
    }

    /// The operator without its `not_` (or `<>` as `=`), on one scalar.
    fn positive(&self, v: &Value) -> bool {
        let pattern = || text(&self.value).unwrap_or_default();
        match self.op.as_str() {
            "=" | "<>" => equal(v, &self.value),
            "in" | "not_in" => self
                .value
                .as_array()
                .is_some_and(|l| l.iter().any(|x| equal(v, x))),
            "like" | "not_like" => text(v).is_some_and(|s| like(&s, &pattern())),
            "ilike" | "not_ilike" => {
                text(v).is_some_and(|s| like(&s.to_lowercase(), &pattern().to_lowercase()))
            }
            "regex" | "not_regex" => compile(&pattern())
                .is_some_and(|re| text(v).is_some_and(|s| re.is_match(s.as_bytes()))),
            // Full-text match: every word of the value appears in the field.
            "match" | "not_match" => text(v).is_some_and(|s| {
                let s = s.to_lowercase();
                pattern()
                    .to_lowercase()
                    .split_whitespace()
                    .all(|w| s.contains(w))
            }),
            _ => false,
        }
    }
}

/// One sorting rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortRule {
    pub field: String,
    pub descending: bool,
}

/// Reads an `order_by` array: at most three `"field,asc|desc"` rules.
pub fn parse_order_by(value: &Value) -> Result<Vec<SortRule>, FilterError> {
    let Some(items) = value.as_array() else {
        return Err(err(
            "",
            "expected an array of sorting rules like [\"rank,desc\"]",
        ));
    };
    if items.len() > LIST_MAX_ORDER_RULES {
        return Err(err(
            "",
            format!(
                "{} sorting rules; the API takes at most {LIST_MAX_ORDER_RULES}",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("[{i}]");
            let s = item
                .as_str()
                .ok_or_else(|| err(&at, "expected a string like \"rank,desc\""))?;
            let (field, dir) = s
                .split_once(',')
                .ok_or_else(|| err(&at, "expected \"field,asc\" or \"field,desc\""))?;
            let field = field.trim();
            if field.is_empty() {
                return Err(err(&at, "an empty field name"));
            }
            let descending = match dir.trim() {
                "asc" => false,
                "desc" => true,
                _ => return Err(err(&at, "the direction is `asc` or `desc`")),
            };
            Ok(SortRule {
                field: field.to_string(),
                descending,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get(item: &Value) -> impl Fn(&str) -> Option<Value> + '_ {
        |f: &str| item.get(f).cloned()
    }

    #[test]
    fn the_documented_examples_are_read_and_evaluated() {
        // api-fields-lists.md, backlinks' `filters`.
        let f = Filter::parse(Endpoint::Backlinks, &json!(["rank", ">", "80"])).unwrap();
        assert!(f.matches(&get(&json!({"rank": 81}))));
        assert!(!f.matches(&get(&json!({"rank": 80}))));
        let f = Filter::parse(
            Endpoint::Backlinks,
            &json!([
                ["page_from_rank", ">", "55"],
                "and",
                ["dofollow", "=", true]
            ]),
        )
        .unwrap();
        assert!(f.matches(&get(&json!({"page_from_rank": 60, "dofollow": true}))));
        assert!(!f.matches(&get(&json!({"page_from_rank": 60, "dofollow": false}))));
        let f = Filter::parse(
            Endpoint::Backlinks,
            &json!([
                ["first_seen", ">", "2017-10-23 11:31:45 +00:00"],
                "and",
                [
                    ["anchor", "like", "%seo%"],
                    "or",
                    ["text_pre", "like", "%seo%"]
                ]
            ]),
        )
        .unwrap();
        assert_eq!(f.conditions(), 3);
        let item = json!({"first_seen": "2019-01-01 00:00:00 +00:00", "anchor": "best seo tools", "text_pre": "x"});
        assert!(f.matches(&get(&item)));
        let old = json!({"first_seen": "2016-01-01 00:00:00 +00:00", "anchor": "seo"});
        assert!(!f.matches(&get(&old)));
        assert_eq!(
            parse_order_by(&json!(["domain_from_rank,desc", "page_from_rank,asc"])).unwrap(),
            vec![
                SortRule {
                    field: "domain_from_rank".into(),
                    descending: true
                },
                SortRule {
                    field: "page_from_rank".into(),
                    descending: false
                }
            ]
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // a or b and c: true when a alone holds.
        let f = Filter::parse(
            Endpoint::Anchors,
            &json!([["a", "=", 1], "or", ["b", "=", 1], "and", ["c", "=", 1]]),
        )
        .unwrap();
        assert!(f.matches(&get(&json!({"a": 1, "b": 0, "c": 0}))));
        assert!(!f.matches(&get(&json!({"a": 0, "b": 1, "c": 0}))));
    }

    #[test]
    fn what_the_documents_do_not_allow_is_refused_with_where_and_why() {
        let nine: Vec<Value> = (0..9)
            .flat_map(|i| [json!(["rank", ">", i]), json!("and")])
            .take(17)
            .collect();
        let e = Filter::parse(Endpoint::Backlinks, &Value::Array(nine)).unwrap_err();
        assert!(e.why.contains("at most 8"), "{e}");
        let e = Filter::parse(
            Endpoint::ReferringDomains,
            &json!(["domain", "ilike", "%a%"]),
        )
        .unwrap_err();
        assert_eq!(e.at, "[1]");
        let e = Filter::parse(
            Endpoint::Backlinks,
            &json!([["rank", ">", 1], "xor", ["rank", "<", 9]]),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "at [1]: expected \"and\" or \"or\"");
        assert!(Filter::parse(Endpoint::Backlinks, &json!(["anchor", "in", "x"])).is_err());
        assert!(parse_order_by(&json!(["a,desc", "b,asc", "c,asc", "d,asc"])).is_err());
        assert!(parse_order_by(&json!(["rank,down"])).is_err());
    }

    #[test]
    fn negated_operators_hold_for_a_missing_field_and_arrays_match_by_element() {
        let f = Filter::parse(Endpoint::Backlinks, &json!(["anchor", "not_like", "%x%"])).unwrap();
        assert!(f.matches(&get(&json!({}))));
        let f =
            Filter::parse(Endpoint::Backlinks, &json!(["attributes", "=", "nofollow"])).unwrap();
        assert!(f.matches(&get(&json!({"attributes": ["ugc", "nofollow"]}))));
        assert!(!f.matches(&get(&json!({"attributes": []}))));
        let f = Filter::parse(
            Endpoint::Backlinks,
            &json!(["domain_from", "in", ["a.com", "b.com"]]),
        )
        .unwrap();
        assert!(f.matches(&get(&json!({"domain_from": "b.com"}))));
    }
}
