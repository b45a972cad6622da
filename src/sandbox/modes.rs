//! The target modes that shape the envelope (see the module doc of [`crate::sandbox`],
//! "Target modes"): which mode a task asks for, and how each envelope quirk reshapes a
//! built envelope. The modes that change the result are [`data`]'s.

use serde_json::{Map, Value, json};

use super::data;

/// What a task's targets ask of the server (see the module doc, "Target modes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TargetMode {
    /// `quirk-no-funds`: the account has run out of money (40210), to show what a
    /// payment refusal does to a run.
    NoFunds,
    /// A normal, charged answer whose envelope is shaped by the quirk.
    Envelope(EnvelopeQuirk),
    /// A normal, charged answer whose text is garbled by the quirk.
    Body(BodyQuirk),
}

/// Bodies that are not JSON, or JSON that PostgreSQL cannot store as `jsonb`: the
/// answer is built and charged as usual, then its text is changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BodyQuirk {
    /// `quirk-body-truncated`: the first half of the text only.
    Truncated,
    /// `quirk-body-nan`: a field whose value is `NaN`.
    NaN,
    /// `quirk-body-deep`: a field nested 200 arrays deep.
    Deep,
    /// `quirk-body-surrogate`: a string holding a lone surrogate (`"\ud800"`).
    Surrogate,
    /// `quirk-body-nul`: a string holding a NUL character (`"\u0000"`): valid JSON
    /// that `jsonb` refuses.
    Nul,
    /// `quirk-body-gzip-bomb`: the answer followed by 1 GiB of spaces (still valid
    /// JSON), sent gzip-compressed (about 1 MB on the wire).
    GzipBomb,
    /// `quirk-body-huge`: the answer followed by 256 MiB of spaces (valid JSON, a
    /// huge answer), sent gzip-compressed (about 256 KB on the wire).
    Huge,
}

/// How much a gzip bomb unpacks to beyond its answer.
pub(super) const GZIP_BOMB_PADDING: usize = 1 << 30;
/// How much a huge answer holds beyond its answer.
pub(super) const HUGE_PADDING: usize = 256 << 20;

impl BodyQuirk {
    fn of(label: &str) -> Option<BodyQuirk> {
        Some(match label {
            "quirk-body-truncated" => BodyQuirk::Truncated,
            "quirk-body-nan" => BodyQuirk::NaN,
            "quirk-body-deep" => BodyQuirk::Deep,
            "quirk-body-surrogate" => BodyQuirk::Surrogate,
            "quirk-body-nul" => BodyQuirk::Nul,
            "quirk-body-gzip-bomb" => BodyQuirk::GzipBomb,
            "quirk-body-huge" => BodyQuirk::Huge,
            _ => return None,
        })
    }

    /// `text` followed by `padding` spaces, gzip-compressed.
    pub(super) fn padded(text: &str, padding: usize) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let spaces = vec![b' '; 1 << 20];
        let written = gz
            .write_all(text.as_bytes())
            .and_then(|()| (0..padding / spaces.len()).try_for_each(|_| gz.write_all(&spaces)));
        // Writing to memory does not fail.
        written.and_then(|()| gz.finish()).unwrap_or_default()
    }

    /// The text sent instead of `text` (a JSON object's).
    pub(super) fn garble(self, text: &str) -> String {
        let rest = text.strip_prefix('{').unwrap_or(text);
        match self {
            BodyQuirk::Truncated => {
                let mut end = text.len() / 2;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text[..end].to_string()
            }
            BodyQuirk::NaN => format!("{{\"quirk\":NaN,{rest}"),
            BodyQuirk::Deep => format!("{{\"quirk\":{}{},{rest}", "[".repeat(200), "]".repeat(200)),
            BodyQuirk::Surrogate => format!("{{\"quirk\":\"\\ud800\",{rest}"),
            BodyQuirk::Nul => format!("{{\"quirk\":\"a\\u0000b\",{rest}"),
            // Padded and compressed when served ([`BodyQuirk::padded`]).
            BodyQuirk::GzipBomb | BodyQuirk::Huge => text.to_string(),
        }
    }
}

/// Surprising envelopes that still carry a classifiable answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EnvelopeQuirk {
    /// `quirk-envelope-types`: `time`, counts, `id`, `result_count` and `path` retyped.
    Types,
    /// `quirk-string-codes`: `status_code` and `cost` as strings at both levels.
    StringCodes,
    /// `quirk-result-object`: `result` is the result object, not an array of one.
    ResultObject,
    /// `quirk-no-status`: no `status_code` / `status_message` at either level.
    NoStatus,
    /// `quirk-cost-negative`: `cost` is -5 at both levels (the charge is as usual).
    CostNegative,
    /// `quirk-cost-huge`: `cost` is 1e300 at both levels.
    CostHuge,
    /// `quirk-cost-missing`: no `cost` at either level.
    CostMissing,
}

/// The mode the first host label of the task's `target`, or of any of its `targets`,
/// asks for: `quirk-no-funds` first, else the first envelope quirk in request order.
pub(super) fn target_mode(task: &Value) -> Option<TargetMode> {
    let mut labels: Vec<String> = Vec::new();
    if let Some(t) = task.get("target").and_then(Value::as_str) {
        labels.push(data::first_label(t));
    }
    if let Some(list) = task.get("targets").and_then(Value::as_array) {
        labels.extend(list.iter().filter_map(Value::as_str).map(data::first_label));
    }
    if labels.iter().any(|l| l == "quirk-no-funds") {
        return Some(TargetMode::NoFunds);
    }
    if let Some(body) = labels.iter().find_map(|l| BodyQuirk::of(l)) {
        return Some(TargetMode::Body(body));
    }
    labels.iter().find_map(|l| {
        let quirk = match l.as_str() {
            "quirk-envelope-types" => EnvelopeQuirk::Types,
            "quirk-string-codes" => EnvelopeQuirk::StringCodes,
            "quirk-result-object" => EnvelopeQuirk::ResultObject,
            "quirk-no-status" => EnvelopeQuirk::NoStatus,
            "quirk-cost-negative" => EnvelopeQuirk::CostNegative,
            "quirk-cost-huge" => EnvelopeQuirk::CostHuge,
            "quirk-cost-missing" => EnvelopeQuirk::CostMissing,
            _ => return None,
        };
        Some(TargetMode::Envelope(quirk))
    })
}

impl EnvelopeQuirk {
    /// Reshapes a built envelope (top level and its tasks) in place.
    pub(super) fn apply(self, envelope: &mut Value) {
        let Some(top) = envelope.as_object_mut() else {
            return;
        };
        match self {
            EnvelopeQuirk::Types => {
                retype(top, "time", seconds_as_number);
                retype(top, "tasks_count", number_as_string);
                retype(top, "tasks_error", number_as_string);
                for task in tasks_mut(top) {
                    retype(task, "id", id_as_number);
                    retype(task, "time", seconds_as_number);
                    retype(task, "result_count", number_as_string);
                    retype(task, "path", path_as_string);
                }
            }
            EnvelopeQuirk::StringCodes => {
                for field in ["status_code", "cost"] {
                    retype(top, field, number_as_string);
                }
                for task in tasks_mut(top) {
                    for field in ["status_code", "cost"] {
                        retype(task, field, number_as_string);
                    }
                }
            }
            EnvelopeQuirk::ResultObject => {
                for task in tasks_mut(top) {
                    if let Some(Value::Array(results)) = task.get_mut("result")
                        && results.len() == 1
                    {
                        let only = results.remove(0);
                        task.insert("result".into(), only);
                    }
                }
            }
            EnvelopeQuirk::CostNegative | EnvelopeQuirk::CostHuge | EnvelopeQuirk::CostMissing => {
                let cost = match self {
                    EnvelopeQuirk::CostNegative => Some(json!(-5)),
                    EnvelopeQuirk::CostHuge => Some(json!(1e300)),
                    _ => None,
                };
                set_cost(top, &cost);
                for task in tasks_mut(top) {
                    set_cost(task, &cost);
                }
            }
            EnvelopeQuirk::NoStatus => {
                for field in ["status_code", "status_message"] {
                    top.shift_remove(field);
                }
                for task in tasks_mut(top) {
                    for field in ["status_code", "status_message"] {
                        task.shift_remove(field);
                    }
                }
            }
        }
    }
}

/// Sets one level's `cost` to `cost`, or takes it out.
fn set_cost(level: &mut Map<String, Value>, cost: &Option<Value>) {
    match cost {
        Some(c) => {
            level.insert("cost".into(), c.clone());
        }
        None => {
            level.shift_remove("cost");
        }
    }
}

/// The task objects of an envelope.
fn tasks_mut(top: &mut Map<String, Value>) -> impl Iterator<Item = &mut Map<String, Value>> {
    top.get_mut("tasks")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Replaces `obj[field]`, where it exists, by `f` of it; `None` leaves it as it was.
fn retype(obj: &mut Map<String, Value>, field: &str, f: fn(&Value) -> Option<Value>) {
    if let Some(v) = obj.get_mut(field)
        && let Some(new) = f(v)
    {
        *v = new;
    }
}

/// `1` → `"1"`, `0.02003` → `"0.02003"`.
fn number_as_string(v: &Value) -> Option<Value> {
    v.as_number().map(|n| Value::String(n.to_string()))
}

/// `"0.0123 sec."` → `0.0123`.
fn seconds_as_number(v: &Value) -> Option<Value> {
    let secs: f64 = v.as_str()?.strip_suffix(" sec.")?.trim().parse().ok()?;
    Some(json!(secs))
}

/// A task id's last group, read as hex: a number below 2^48, exact in any JSON reader.
fn id_as_number(v: &Value) -> Option<Value> {
    let last = v.as_str()?.rsplit('-').next()?;
    u64::from_str_radix(last, 16).ok().map(|n| json!(n))
}

/// `["v3", "backlinks", "summary", "live"]` → `"v3/backlinks/summary/live"`.
fn path_as_string(v: &Value) -> Option<Value> {
    let parts: Option<Vec<&str>> = v.as_array()?.iter().map(Value::as_str).collect();
    Some(Value::String(parts?.join("/")))
}
