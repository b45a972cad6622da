//! What an answer means: the HTTP status, the envelope's status code and the task's
//! status code are all checked, and the first that is not "ok" decides. Codes follow
//! the API's documents (`reference/`): throttling and transient faults are retried,
//! request errors are not, account refusals and a wrong path stop every call.

use super::types::Envelope;
use crate::money::Usd;

/// How the executor must treat an attempt's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 20000 at both levels (or at the task level with no envelope code).
    Ok,
    /// 40202 (per minute) or 40209 (in flight): slow down, then retry.
    Throttled { code: i64, message: String },
    /// 5xx, network errors, 40103 and the transient 500xx codes: retry with a bound.
    Retryable { code: Option<i64>, message: String },
    /// Auth, payment and funds codes, or a path the API does not know (a wrong
    /// `api.base_url`): stop every further call.
    Halt { code: i64, message: String },
    /// 40203: the account's daily cost limit; nothing more until 00:00 UTC.
    DailyLimit { message: String },
    /// 40000, 40501–40506, 50100 and other request errors: fatal for this call only.
    Rejected { code: Option<i64>, message: String },
    /// An answer whose status cannot be read although the API charged for it: kept raw,
    /// never bought again, and the call fails visibly.
    Unreadable { message: String },
}

/// Codes the API uses for throttling.
pub const THROTTLE_CODES: [i64; 2] = [40202, 40209];
/// Codes that mean a transient problem: resubmit (40103) or a server fault.
pub const RETRYABLE_CODES: [i64; 7] = [40103, 50000, 50001, 50301, 50303, 50304, 50401];
/// Codes that stop all calls: authentication, payment, funds.
pub const HALT_CODES: [i64; 7] = [40100, 40104, 40200, 40201, 40204, 40207, 40210];
/// A path the API does not know: every call would get it, because `api.base_url` is
/// wrong. Stops all calls.
pub const WRONG_PATH_CODES: [i64; 2] = [40400, 40402];
pub const DAILY_LIMIT_CODE: i64 = 40203;
/// "Not implemented": a request this API cannot serve; retrying cannot help.
pub const NOT_IMPLEMENTED_CODE: i64 = 50100;

impl Outcome {
    /// Classifies one status code with its message.
    pub fn from_code(code: i64, message: &str) -> Outcome {
        let message = message.to_string();
        if code == 20000 {
            Outcome::Ok
        } else if THROTTLE_CODES.contains(&code) {
            Outcome::Throttled { code, message }
        } else if HALT_CODES.contains(&code) || WRONG_PATH_CODES.contains(&code) {
            Outcome::Halt { code, message }
        } else if code == DAILY_LIMIT_CODE {
            Outcome::DailyLimit { message }
        } else if code == NOT_IMPLEMENTED_CODE {
            Outcome::Rejected {
                code: Some(code),
                message,
            }
        } else if RETRYABLE_CODES.contains(&code) || (50000..60000).contains(&code) {
            Outcome::Retryable {
                code: Some(code),
                message,
            }
        } else {
            // 40000, 40501–40506 and anything unknown: a request the API will not take.
            // Retrying would pay again for the same answer.
            Outcome::Rejected {
                code: Some(code),
                message,
            }
        }
    }

    /// Classifies an HTTP answer from the lenient read of its envelope (`None` when
    /// the body was not a JSON object).
    pub fn classify(http_status: u16, envelope: Option<&Envelope>) -> Outcome {
        if let Some(env) = envelope
            && let Some(code) = env.top.status_code.filter(|c| *c != 20000)
        {
            return Outcome::from_code(code, env.top.status_message.as_deref().unwrap_or(""));
        }
        match http_status {
            200..=299 => {}
            401 | 403 => {
                return Outcome::Halt {
                    code: 40100,
                    message: format!("HTTP {http_status}: not authorized"),
                };
            }
            402 => {
                return Outcome::Halt {
                    code: 40200,
                    message: "HTTP 402: payment required".into(),
                };
            }
            404 => {
                return Outcome::Halt {
                    code: 40400,
                    message: "HTTP 404: not found".into(),
                };
            }
            429 => {
                return Outcome::Throttled {
                    code: 40202,
                    message: "HTTP 429: too many requests".into(),
                };
            }
            500..=599 => {
                return Outcome::Retryable {
                    code: None,
                    message: format!("HTTP {http_status}"),
                };
            }
            _ => {
                return Outcome::Rejected {
                    code: None,
                    message: format!("HTTP {http_status}"),
                };
            }
        }
        // A 2xx answer that is JSON but not an object: the API may have charged for
        // it, so it is kept and not bought again.
        let Some(env) = envelope else {
            return Outcome::Unreadable {
                message: format!(
                    "HTTP {http_status} with a JSON body that is not an envelope object; kept raw, not bought again"
                ),
            };
        };
        let task_code = env.first_task().and_then(|t| t.status_code);
        match (env.top.status_code, task_code) {
            (_, Some(code)) => Outcome::from_code(
                code,
                env.first_task()
                    .and_then(|t| t.status_message.as_deref())
                    .unwrap_or(""),
            ),
            // The envelope says ok; the task's shape is normalization's to judge.
            (Some(_), None) if !env.tasks.is_empty() => Outcome::Ok,
            _ => {
                let what = if env.tasks.is_empty() {
                    "an answer without a task"
                } else {
                    "an answer without a status_code at either level"
                };
                // Paid: retrying would buy it again. Free: worth another try.
                if env.cost().is_some_and(|c| c > Usd::ZERO) {
                    Outcome::Unreadable {
                        message: format!(
                            "{what}, charged {}; kept raw, not bought again",
                            env.cost().unwrap_or_default()
                        ),
                    }
                } else {
                    Outcome::Retryable {
                        code: None,
                        message: what.to_string(),
                    }
                }
            }
        }
    }

    /// Short label used in the ledger's `outcome` column and in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Throttled { .. } => "throttled",
            Outcome::Retryable { .. } => "retryable",
            Outcome::Halt { .. } => "halt",
            Outcome::DailyLimit { .. } => "daily_limit",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Unreadable { .. } => "invalid_response",
        }
    }

    pub fn message(&self) -> Option<&str> {
        match self {
            Outcome::Ok => None,
            Outcome::Throttled { message, .. }
            | Outcome::Retryable { message, .. }
            | Outcome::Halt { message, .. }
            | Outcome::DailyLimit { message }
            | Outcome::Rejected { message, .. }
            | Outcome::Unreadable { message } => Some(message),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Outcome::Throttled { .. } | Outcome::Retryable { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(top: i64, task: Option<i64>) -> Envelope {
        let body = serde_json::json!({
            "status_code": top, "status_message": "top",
            "tasks": task.map(|c| vec![serde_json::json!({"status_code": c, "status_message": "task says"})]),
        });
        Envelope::read(&body).unwrap()
    }

    #[test]
    fn both_levels_are_checked() {
        assert_eq!(
            Outcome::classify(200, Some(&env(20000, Some(20000)))),
            Outcome::Ok
        );
        assert_eq!(
            Outcome::classify(200, Some(&env(20000, Some(40501)))),
            Outcome::Rejected {
                code: Some(40501),
                message: "task says".into()
            }
        );
        assert_eq!(
            Outcome::classify(200, Some(&env(40209, None))).label(),
            "throttled"
        );
    }

    #[test]
    fn each_code_family_maps_to_its_treatment() {
        for c in THROTTLE_CODES {
            assert_eq!(Outcome::from_code(c, "").label(), "throttled");
        }
        for c in RETRYABLE_CODES {
            assert!(Outcome::from_code(c, "").is_retryable());
        }
        for c in HALT_CODES {
            assert_eq!(Outcome::from_code(c, "").label(), "halt");
        }
        assert_eq!(Outcome::from_code(40203, "").label(), "daily_limit");
        for c in [40000, 40501, 40502, 40503, 40504, 40505, 40506] {
            assert_eq!(Outcome::from_code(c, "").label(), "rejected");
        }
    }

    #[test]
    fn status_codes_follow_the_documents() {
        // 40103 asks for a resubmission; 50100 is a request the API cannot serve.
        assert!(Outcome::from_code(40103, "").is_retryable());
        assert_eq!(Outcome::from_code(50100, "").label(), "rejected");
        // A wrong path is every call's problem: it stops them all.
        assert_eq!(Outcome::from_code(40400, "").label(), "halt");
        assert_eq!(Outcome::from_code(40402, "").label(), "halt");
        assert_eq!(Outcome::classify(404, None).label(), "halt");
    }

    #[test]
    fn an_answer_without_status_codes_is_kept_when_charged_and_retried_when_free() {
        let charged =
            Envelope::read(&serde_json::json!({"cost": 0.02, "tasks": [{"result": []}]})).unwrap();
        assert_eq!(
            Outcome::classify(200, Some(&charged)).label(),
            "invalid_response"
        );
        let free =
            Envelope::read(&serde_json::json!({"cost": 0, "tasks": [{"result": []}]})).unwrap();
        assert!(Outcome::classify(200, Some(&free)).is_retryable());
        // The envelope says ok and the task has no code: normalization judges the task.
        let top_only =
            Envelope::read(&serde_json::json!({"status_code": 20000, "tasks": [{"result": []}]}))
                .unwrap();
        assert_eq!(Outcome::classify(200, Some(&top_only)), Outcome::Ok);
    }

    #[test]
    fn answers_without_an_envelope_are_classified_by_status_and_a_2xx_one_is_kept() {
        assert!(Outcome::classify(502, None).is_retryable());
        assert_eq!(Outcome::classify(401, None).label(), "halt");
        // A 2xx answer that is not an envelope may have been charged for: kept, not
        // bought again.
        assert_eq!(Outcome::classify(200, None).label(), "invalid_response");
    }
}
