//! What an answer means: the HTTP status, the envelope's status code and the task's
//! status code are all checked, and the first that is not "ok" decides.

use super::types::Envelope;

/// How the executor must treat an attempt's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 20000 at both levels.
    Ok,
    /// 40202 (per minute) or 40209 (in flight): slow down, then retry.
    Throttled { code: i64, message: String },
    /// 5xx, network errors and 500xx codes: retry with a bound.
    Retryable { code: Option<i64>, message: String },
    /// Auth, payment and funds codes: stop every further call of the run.
    Halt { code: i64, message: String },
    /// 40203: the account's daily cost limit; nothing more until 00:00 UTC.
    DailyLimit { message: String },
    /// 40000, 40501–40506 and other request errors: fatal for this call only.
    Rejected { code: Option<i64>, message: String },
}

/// Codes the API uses for throttling.
pub const THROTTLE_CODES: [i64; 2] = [40202, 40209];
/// Codes that mean a transient server problem.
pub const RETRYABLE_CODES: [i64; 6] = [50000, 50001, 50301, 50303, 50304, 50401];
/// Codes that stop all calls: authentication, payment, funds.
pub const HALT_CODES: [i64; 7] = [40100, 40104, 40200, 40201, 40204, 40207, 40210];
pub const DAILY_LIMIT_CODE: i64 = 40203;

impl Outcome {
    /// Classifies one status code with its message.
    pub fn from_code(code: i64, message: &str) -> Outcome {
        let message = message.to_string();
        if code == 20000 {
            Outcome::Ok
        } else if THROTTLE_CODES.contains(&code) {
            Outcome::Throttled { code, message }
        } else if HALT_CODES.contains(&code) {
            Outcome::Halt { code, message }
        } else if code == DAILY_LIMIT_CODE {
            Outcome::DailyLimit { message }
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

    /// Classifies an HTTP answer. `envelope` is `None` when the body was not JSON.
    pub fn classify(http_status: u16, envelope: Option<&Envelope>) -> Outcome {
        if let Some(env) = envelope
            && let Some(code) = env.status_code.filter(|c| *c != 20000)
        {
            return Outcome::from_code(code, env.status_message.as_deref().unwrap_or(""));
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
        let Some(env) = envelope else {
            return Outcome::Retryable {
                code: None,
                message: format!("HTTP {http_status} with a body that is not a JSON envelope"),
            };
        };
        if env.status_code.is_none() {
            return Outcome::Retryable {
                code: None,
                message: "envelope without status_code".into(),
            };
        }
        let Some(task) = env.first_task() else {
            return Outcome::Retryable {
                code: None,
                message: "envelope without a task".into(),
            };
        };
        match task.status_code {
            Some(code) => Outcome::from_code(code, task.status_message.as_deref().unwrap_or("")),
            None => Outcome::Retryable {
                code: None,
                message: "task without status_code".into(),
            },
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
        }
    }

    pub fn message(&self) -> Option<&str> {
        match self {
            Outcome::Ok => None,
            Outcome::Throttled { message, .. }
            | Outcome::Retryable { message, .. }
            | Outcome::Halt { message, .. }
            | Outcome::DailyLimit { message }
            | Outcome::Rejected { message, .. } => Some(message),
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
        serde_json::from_value(body).unwrap()
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
    fn http_errors_without_an_envelope_are_classified_by_status() {
        assert!(Outcome::classify(502, None).is_retryable());
        assert_eq!(Outcome::classify(401, None).label(), "halt");
        assert!(Outcome::classify(200, None).is_retryable());
    }
}
