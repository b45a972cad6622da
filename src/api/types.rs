//! What linkledger reads of an answer before it is stored: the two status levels and
//! the two `cost` fields, read leniently.
//!
//! A paid answer must never be lost because some field had a surprising type (`time`
//! as a number, `tasks_count` as a string, `result` as an object). So the envelope is
//! not deserialized into strict types: [`Envelope::read`] picks out only the fields
//! that decide what to do with the answer (retry, halt, keep) and what it cost,
//! accepting numbers written as strings, and ignores everything else. The whole body is
//! stored raw (`raw_responses`) and normalization judges its shape; unknown and
//! ill-typed fields stay in the raw body.

use serde_json::{Map, Value};

use crate::money::Usd;

/// The status and cost of one level of an answer (the envelope, or a task).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub status_code: Option<i64>,
    pub status_message: Option<String>,
    pub cost: Option<Usd>,
}

impl Status {
    /// Reads the status and cost of one level (the envelope, or one task object).
    pub fn read(obj: &Map<String, Value>) -> Status {
        Status {
            status_code: obj.get("status_code").and_then(int),
            status_message: obj.get("status_message").and_then(text),
            cost: obj.get("cost").and_then(Usd::from_json),
        }
    }
}

/// The lenient view of an envelope: its own status and cost, and each task's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    pub top: Status,
    /// One per task object; linkledger sends exactly one task per POST.
    pub tasks: Vec<Status>,
}

impl Envelope {
    /// Reads a JSON body; `None` when it is not a JSON object (an HTML error page
    /// would not even be JSON). `tasks` that is not an array of objects reads as no
    /// tasks (a single task object is accepted as one task).
    pub fn read(body: &Value) -> Option<Envelope> {
        let obj = body.as_object()?;
        let tasks = match obj.get("tasks") {
            Some(Value::Array(tasks)) => tasks
                .iter()
                .filter_map(Value::as_object)
                .map(Status::read)
                .collect(),
            Some(Value::Object(task)) => vec![Status::read(task)],
            _ => Vec::new(),
        };
        Some(Envelope {
            top: Status::read(obj),
            tasks,
        })
    }

    pub fn first_task(&self) -> Option<&Status> {
        self.tasks.first()
    }

    /// The cost the API reported for the call: the envelope's, else the task's.
    pub fn cost(&self) -> Option<Usd> {
        self.top
            .cost
            .or_else(|| self.first_task().and_then(|t| t.cost))
    }
}

/// An integer written as a JSON integer, an integral number (`20000.0`) or a string
/// of digits (`"20000"`).
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A message written as a string, or as any other scalar.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nulls_missing_fields_and_unknown_fields_all_read() {
        let body = json!({"status_code": 20000, "cost": null, "brand_new": 1,
            "tasks": [{"status_code": null, "result": null, "surprise": {"a": 1}}]});
        let env = Envelope::read(&body).unwrap();
        assert_eq!(env.top.status_code, Some(20000));
        assert!(env.cost().is_none());
        assert_eq!(env.tasks.len(), 1);
        assert_eq!(env.tasks[0].status_code, None);
    }

    #[test]
    fn fields_of_surprising_types_do_not_make_the_answer_unreadable() {
        let body = json!({
            "version": 1, "status_code": "20000", "status_message": "Ok.",
            "time": 0.0123, "cost": "0.02003", "tasks_count": "1", "tasks_error": "0",
            "tasks": [{"id": 7, "status_code": 20000.0, "status_message": "Ok.", "time": 0.01,
                       "cost": 0.02003, "result_count": "1", "path": "v3/backlinks/summary/live",
                       "data": "not an object", "result": {"target": "a.com"}}]
        });
        let env = Envelope::read(&body).unwrap();
        assert_eq!(env.top.status_code, Some(20000));
        assert_eq!(env.tasks[0].status_code, Some(20000));
        assert_eq!(env.cost(), Some("0.02003".parse().unwrap()));
        assert_eq!(env.tasks[0].cost, Some("0.02003".parse().unwrap()));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_not_an_envelope() {
        assert!(Envelope::read(&json!([1, 2])).is_none());
        assert!(Envelope::read(&json!("<html>")).is_none());
        let env = Envelope::read(&json!({"tasks": "nope"})).unwrap();
        assert!(env.tasks.is_empty());
    }

    #[test]
    fn the_envelope_cost_comes_first_then_the_tasks() {
        let env = Envelope::read(&json!({"cost": 0.5, "tasks": [{"cost": 0.2}]})).unwrap();
        assert_eq!(env.cost(), Some("0.5".parse().unwrap()));
        let env = Envelope::read(&json!({"tasks": [{"cost": 0.2}]})).unwrap();
        assert_eq!(env.cost(), Some("0.2".parse().unwrap()));
    }
}
