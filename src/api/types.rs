//! Response types mirroring the API's envelope. Every field is optional, because every
//! field may be null or missing, and unknown fields are kept rather than rejected.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The top-level envelope every endpoint answers with.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Envelope {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub status_code: Option<i64>,
    #[serde(default)]
    pub status_message: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
    /// Kept as the JSON value so that the amount can be parsed exactly.
    #[serde(default)]
    pub cost: Option<Value>,
    #[serde(default)]
    pub tasks_count: Option<i64>,
    #[serde(default)]
    pub tasks_error: Option<i64>,
    #[serde(default)]
    pub tasks: Option<Vec<Task>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One task of an envelope; linkledger sends exactly one per POST.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Task {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub status_code: Option<i64>,
    #[serde(default)]
    pub status_message: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub cost: Option<Value>,
    #[serde(default)]
    pub result_count: Option<i64>,
    #[serde(default)]
    pub path: Option<Vec<String>>,
    /// The request, echoed.
    #[serde(default)]
    pub data: Option<Value>,
    /// Null when the task failed.
    #[serde(default)]
    pub result: Option<Vec<Value>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Envelope {
    pub fn first_task(&self) -> Option<&Task> {
        self.tasks.as_ref().and_then(|t| t.first())
    }

    /// The cost the API reported for the call: the envelope's, else the task's.
    pub fn cost(&self) -> Option<crate::money::Usd> {
        self.cost
            .as_ref()
            .and_then(crate::money::Usd::from_json)
            .or_else(|| {
                self.first_task()
                    .and_then(|t| t.cost.as_ref())
                    .and_then(crate::money::Usd::from_json)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_missing_fields_and_unknown_fields_all_parse() {
        let body = r#"{"status_code":20000,"cost":null,"brand_new":1,
            "tasks":[{"status_code":null,"result":null,"surprise":{"a":1}}]}"#;
        let env: Envelope = serde_json::from_str(body).unwrap();
        assert_eq!(env.status_code, Some(20000));
        assert!(env.cost().is_none());
        assert_eq!(env.other["brand_new"], 1);
        assert!(env.first_task().unwrap().other.contains_key("surprise"));
    }
}
