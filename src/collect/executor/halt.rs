//! When calls stop: the refusals, wrong paths and daily cost limit that halt every
//! further call ([`Halt`]), and the free `appendix/user_data` check of the credentials
//! and the account (balance, price list) that runs before the paid calls.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{info, instrument, warn};

use super::Executor;
use crate::api::Outcome;
use crate::api::account::Account;
use crate::api::status::WRONG_PATH_CODES;
use crate::store::{CallRecord, Settlement};

/// Why every further call was stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Halt {
    pub code: Option<i64>,
    pub message: String,
    /// When calls may resume on their own (the daily cost limit lifts at 00:00 UTC);
    /// `None`: only a restart with fixed configuration, credentials or funds resumes
    /// them.
    pub until: Option<DateTime<Utc>>,
    /// Who stopped them.
    pub by: HaltBy,
}

/// Who stopped the calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaltBy {
    /// The API, with a refusal (`code`).
    Api,
    /// This program, before the API would: the account's own requests per UTC day
    /// (`rates.limits.day`, this many) are used up.
    RequestsPerDay(u64),
}

impl Halt {
    pub(super) fn from_outcome(outcome: &Outcome) -> Option<Halt> {
        match outcome {
            Outcome::Halt { code, message } => Some(Halt {
                code: Some(*code),
                message: message.clone(),
                until: None,
                by: HaltBy::Api,
            }),
            Outcome::DailyLimit { message } => Some(Halt {
                code: Some(crate::api::status::DAILY_LIMIT_CODE),
                message: message.clone(),
                until: Some(next_utc_midnight(Utc::now())),
                by: HaltBy::Api,
            }),
            _ => None,
        }
    }

    /// The account's own requests for the UTC day (`rates.limits.day`, `limit` of them)
    /// are used up: calls stop until 00:00 UTC.
    pub fn requests_per_day(limit: u64, now: DateTime<Utc>) -> Halt {
        Halt {
            code: None,
            message: format!(
                "the account's own request limit per day (rates.limits.day, {}) is used up",
                crate::words::count(limit, "request")
            ),
            until: Some(next_utc_midnight(now)),
            by: HaltBy::RequestsPerDay(limit),
        }
    }

    /// A path the API does not know: the base URL is wrong.
    pub fn is_wrong_path(&self) -> bool {
        self.code.is_some_and(|c| WRONG_PATH_CODES.contains(&c))
    }

    /// What the operator should do about it.
    pub fn hint(&self) -> &'static str {
        if let HaltBy::RequestsPerDay(_) = self.by {
            return "calls resume after 00:00 UTC, or sooner when the account's limit is raised (the daemon samples it)";
        }
        match self.code {
            Some(40100) | Some(40104) => {
                "check the API credentials (api.login and api.password, or DATAFORSEO_LOGIN and DATAFORSEO_PASSWORD, or api.token)"
            }
            Some(40203) => {
                "the account's daily cost limit is reached; calls can resume after 00:00 UTC"
            }
            Some(40200) | Some(40201) | Some(40204) | Some(40207) | Some(40210) => {
                "check the account's balance and payment settings"
            }
            Some(c) if WRONG_PATH_CODES.contains(&c) => {
                "check api.base_url (LINKLEDGER_API__BASE_URL): the API does not know this path, so every call would fail the same way"
            }
            _ => "check the account",
        }
    }
}

impl std::fmt::Display for Halt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let HaltBy::RequestsPerDay(_) = self.by {
            return write!(f, "{}; {}", self.message, self.hint());
        }
        let what = if self.is_wrong_path() {
            "the API does not know the path"
        } else {
            "the API refused the request"
        };
        match self.code {
            Some(code) => write!(f, "{what} ({code} {})", self.message)?,
            None => write!(f, "{what} ({})", self.message)?,
        }
        write!(f, "; {}", self.hint())
    }
}

/// 00:00 UTC after `now`.
pub fn next_utc_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    (now.date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
}

/// What the free `appendix/user_data` said about the credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialsCheck {
    Accepted,
    /// The account was refused: no paid call will be made.
    Refused(Halt),
    /// No verdict (a network fault, or a gateway that does not serve user_data); the
    /// paid calls find out on their own.
    Unknown(String),
}

impl Executor {
    /// Why calls are stopped, if they are.
    pub fn halted(&self) -> Option<Halt> {
        let mut h = self.halt.lock().expect("halt lock");
        if h.as_ref()
            .and_then(|h| h.until)
            .is_some_and(|t| t <= Utc::now())
        {
            info!("the pause is over; calls resume");
            *h = None;
        }
        // The day's requests used up under a limit the account no longer has (the
        // daemon's sample says another): calls try again against the new one.
        if let Some(Halt {
            by: HaltBy::RequestsPerDay(limit),
            ..
        }) = *h
        {
            let requests_day = self.account_caps.get().requests_day;
            if requests_day != Some(limit) {
                info!(
                    was = limit,
                    now = requests_day,
                    "the account's request limit per day (rates.limits.day) changed; calls resume"
                );
                *h = None;
            }
        }
        h.clone()
    }

    pub(super) fn set_halt(&self, halt: Halt) {
        let mut h = self.halt.lock().expect("halt lock");
        if h.is_none() {
            warn!(code = halt.code, reason = %halt.message, "stopping every further call");
            *h = Some(halt);
        }
    }

    /// Checks the credentials with the free `appendix/user_data` before anything is
    /// spent; a refusal stops every call of this executor.
    #[instrument(skip_all)]
    pub async fn check_credentials(&self, run_id: Option<i64>) -> anyhow::Result<CredentialsCheck> {
        let request = Value::Object(Default::default());
        let permit = self.client.acquire().await;
        let call_id = self
            .store
            .record_sent(&CallRecord {
                run_id,
                job: None,
                collection: None,
                endpoint: "appendix/user_data",
                targets: &[],
                request: &request,
                attempt: 1,
                api_host: Some(self.client.api_host()),
            })
            .await
            .context("recording the credentials check")?;
        let attempt = self.client.user_data(&permit).await;
        drop(permit);
        let free = Settlement {
            cost: attempt.cost,
            cost_estimated: false,
            budget: None,
            sandbox: attempt.sandbox,
        };
        self.store
            .record_answer(call_id, "appendix/user_data", &attempt, false, &free)
            .await
            .context("recording the credentials check")?;
        if attempt.outcome == Outcome::Ok
            && let Some(body) = &attempt.body
        {
            self.take_account(body, attempt.sandbox)
                .await
                .context("storing the account's balance and price list")?;
        }
        Ok(match Halt::from_outcome(&attempt.outcome) {
            // Gateways may not serve user_data at all: that says nothing about the
            // paths of the paid endpoints.
            Some(halt) if halt.is_wrong_path() => {
                warn!(reason = %halt.message, "the API does not serve appendix/user_data (a gateway?); the credentials are checked by the first call");
                CredentialsCheck::Unknown(halt.message)
            }
            Some(halt) => {
                self.set_halt(halt.clone());
                CredentialsCheck::Refused(halt)
            }
            None if attempt.outcome == Outcome::Ok => CredentialsCheck::Accepted,
            None => {
                // A network fault here is not a refusal; the paid calls retry on their own.
                let why = attempt.outcome.message().unwrap_or("no answer").to_string();
                warn!(outcome = attempt.outcome.label(), reason = %why, "credentials check inconclusive");
                CredentialsCheck::Unknown(why)
            }
        })
    }

    /// Stores what `user_data` said about the account and estimates calls with its
    /// price list from now on (unless a gateway's flat price is what the user pays).
    async fn take_account(&self, body: &Value, sandbox: bool) -> anyhow::Result<Account> {
        let account = Account::read(body);
        self.store
            .record_account(self.client.api_host(), sandbox, &account, body)
            .await?;
        if !account.prices.is_empty() {
            let mut prices = self.prices.write().expect("prices lock");
            prices.per_endpoint = account.prices.clone();
            prices.as_of = Some(Utc::now());
        }
        if let Some(m) = &self.metrics
            && let Some(balance) = account.balance
        {
            m.set_balance(balance);
        }
        Ok(account)
    }

    /// Samples the account's own books (free, `user_data`): what it spent and requested
    /// today and its own limits, stored in `account_samples` as of when the request
    /// was sent. `None` when the API did not answer with them.
    pub async fn sample_account(&self) -> anyhow::Result<Option<Account>> {
        let permit = self.client.acquire().await;
        let taken_at = Utc::now();
        let attempt = self.client.user_data(&permit).await;
        drop(permit);
        let (Outcome::Ok, Some(body)) = (&attempt.outcome, &attempt.body) else {
            return Ok(None);
        };
        let account = Account::read(body);
        self.store
            .record_sample(
                self.client.api_host(),
                attempt.sandbox,
                taken_at,
                &account.books,
            )
            .await
            .context("storing a sample of the account's books")?;
        if let Some(m) = &self.metrics
            && let Some(balance) = account.balance
        {
            m.set_balance(balance);
        }
        Ok(Some(account))
    }

    /// Reads the account's balance and price list again (free): the daemon does it
    /// hourly. `None` when the API did not answer with them.
    pub async fn refresh_account(&self) -> anyhow::Result<Option<Account>> {
        let permit = self.client.acquire().await;
        let attempt = self.client.user_data(&permit).await;
        drop(permit);
        match (&attempt.outcome, &attempt.body) {
            (Outcome::Ok, Some(body)) => Ok(Some(self.take_account(body, attempt.sandbox).await?)),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daily_cost_limit_pause_ends_at_the_next_utc_midnight() {
        let now: DateTime<Utc> = "2026-11-25T13:30:00Z".parse().unwrap();
        assert_eq!(
            next_utc_midnight(now),
            "2026-11-26T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let just_before: DateTime<Utc> = "2026-11-25T23:59:59Z".parse().unwrap();
        assert_eq!(
            next_utc_midnight(just_before),
            "2026-11-26T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn a_refusal_says_what_to_check() {
        let h = Halt {
            code: Some(40100),
            message: "You are not authorized.".into(),
            until: None,
            by: HaltBy::Api,
        };
        let text = h.to_string();
        assert!(
            text.contains("40100") && text.contains("credentials"),
            "{text}"
        );
        let h = Halt {
            code: Some(40210),
            message: "Insufficient funds.".into(),
            until: None,
            by: HaltBy::Api,
        };
        assert!(h.to_string().contains("balance"));
        let h = Halt {
            code: Some(40400),
            message: "Not Found. (POST http://localhost:8089/v2/backlinks/summary/live)".into(),
            until: None,
            by: HaltBy::Api,
        };
        let text = h.to_string();
        assert!(
            text.contains("api.base_url") && text.contains("/v2/"),
            "{text}"
        );
    }

    #[test]
    fn the_accounts_requests_per_day_used_up_stop_calls_until_midnight_and_say_the_limit() {
        let now: DateTime<Utc> = "2026-11-25T17:30:00Z".parse().unwrap();
        let h = Halt::requests_per_day(5000, now);
        assert_eq!(
            h.until,
            Some("2026-11-26T00:00:00Z".parse::<DateTime<Utc>>().unwrap())
        );
        assert_eq!(
            h.to_string(),
            "the account's own request limit per day (rates.limits.day, 5000 requests) is used up; calls resume after 00:00 UTC, or sooner when the account's limit is raised (the daemon samples it)"
        );
    }
}
