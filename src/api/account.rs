//! What the free `GET /v3/appendix/user_data` says about the account: the balance and
//! the account's own price list for the live Backlinks endpoints. Read leniently: any
//! part that is missing or of another shape is simply not known.
//!
//! The price list is `result[0].price.backlinks.<endpoint>.live.priority_normal`, a list
//! of `{"cost_type": "per_request" | "per_result", "cost": USD}`; the balance is
//! `result[0].money.balance`.
//!
//! The account's own books ([`Books`]): `money.statistics.day` / `minute` (USD spent
//! this UTC day and minute: `total`, `total_backlinks`, `backlinks.<function>`),
//! `rates.statistics.day` / `minute` (requests, the same shape), `money.limits.day` /
//! `minute` (the account's own spending caps, USD; 0 or absent is none) and
//! `rates.limits.day` / `minute` (`total` requests; 0 or absent is none).

use std::collections::BTreeMap;

use serde_json::Value;

use super::Endpoint;
use crate::api::prices::Rate;
use crate::money::Usd;

/// The ledger's endpoint of the free credentials check (`GET /v3/appendix/user_data`):
/// no job's call, so reports count it apart from the jobs' calls.
pub const CREDENTIALS_CHECK: &str = "appendix/user_data";

/// The account as one `user_data` answer describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// Money left, USD.
    pub balance: Option<Usd>,
    /// The rate of each endpoint the price list names (both parts present).
    pub prices: BTreeMap<Endpoint, Rate>,
    /// What the account says it spent and may spend.
    pub books: Books,
}

/// One period's figures (`money.statistics.day`, `rates.statistics.minute`, ...):
/// the account's total, the Backlinks API's, and per Backlinks function. `None` where
/// the answer did not say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub total: Option<Usd>,
    pub backlinks: Option<Usd>,
    pub by_function: BTreeMap<String, Usd>,
}

impl Tally {
    fn read(v: Option<&Value>) -> Option<Tally> {
        let v = v.filter(|v| v.is_object())?;
        let by_function = v
            .get("backlinks")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, n)| Some((k.clone(), Usd::from_json(n)?)))
            .collect();
        Some(Tally {
            total: v.get("total").and_then(Usd::from_json),
            backlinks: v.get("total_backlinks").and_then(Usd::from_json),
            by_function,
        })
    }

    /// As stored: `{"total": .., "total_backlinks": .., "backlinks": {..}}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "total": self.total,
            "total_backlinks": self.backlinks,
            "backlinks": self.by_function,
        })
    }

    /// The Backlinks figure: `total_backlinks`, else the sum of its functions.
    pub fn backlinks_or_sum(&self) -> Option<Usd> {
        self.backlinks.or_else(|| {
            (!self.by_function.is_empty()).then(|| self.by_function.values().copied().sum())
        })
    }
}

/// The account's own books as one `user_data` answer gives them. Request counts are
/// kept as exact decimals too (they are whole numbers).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Books {
    /// `money.statistics.day`: USD spent this UTC day.
    pub spent_day: Option<Tally>,
    /// `money.statistics.minute`.
    pub spent_minute: Option<Tally>,
    /// `rates.statistics.day`: requests made this UTC day.
    pub requests_day: Option<Tally>,
    /// `rates.statistics.minute`.
    pub requests_minute: Option<Tally>,
    /// `money.limits.day.total`: the account's daily spending cap (None: no cap).
    pub money_limit_day: Option<Usd>,
    /// `money.limits.minute.total`.
    pub money_limit_minute: Option<Usd>,
    /// `rates.limits.minute.total`: requests per minute (None: not said).
    pub rate_limit_minute: Option<u32>,
    /// `rates.limits.day.total`.
    pub rate_limit_day: Option<u64>,
}

impl Books {
    fn read(result: &Value) -> Books {
        let cap = |path: &str| {
            result
                .pointer(path)
                .and_then(Usd::from_json)
                .filter(|u| *u > Usd::ZERO)
        };
        let count = |path: &str| {
            result
                .pointer(path)
                .and_then(Value::as_f64)
                .filter(|n| *n >= 1.0 && n.fract() == 0.0)
        };
        Books {
            spent_day: Tally::read(result.pointer("/money/statistics/day")),
            spent_minute: Tally::read(result.pointer("/money/statistics/minute")),
            requests_day: Tally::read(result.pointer("/rates/statistics/day")),
            requests_minute: Tally::read(result.pointer("/rates/statistics/minute")),
            money_limit_day: cap("/money/limits/day/total"),
            money_limit_minute: cap("/money/limits/minute/total"),
            rate_limit_minute: count("/rates/limits/minute/total")
                .filter(|n| *n <= u32::MAX as f64)
                .map(|n| n as u32),
            rate_limit_day: count("/rates/limits/day/total").map(|n| n as u64),
        }
    }
}

impl Account {
    /// Reads a `user_data` envelope.
    pub fn read(body: &Value) -> Account {
        let Some(result) = body.pointer("/tasks/0/result/0").filter(|r| r.is_object()) else {
            return Account::default();
        };
        let balance = result.pointer("/money/balance").and_then(Usd::from_json);
        let mut prices = BTreeMap::new();
        if let Some(backlinks) = result
            .pointer("/price/backlinks")
            .and_then(Value::as_object)
        {
            for (name, entry) in backlinks {
                let Ok(endpoint) = name.parse::<Endpoint>() else {
                    continue;
                };
                if let Some(rate) = rate(entry) {
                    prices.insert(endpoint, rate);
                }
            }
        }
        Account {
            balance,
            prices,
            books: Books::read(result),
        }
    }

    /// The price list as stored (`{endpoint: {"per_request": .., "per_row": ..}}`).
    pub fn prices_json(&self) -> Value {
        Value::Object(
            self.prices
                .iter()
                .map(|(e, r)| {
                    (
                        e.name().to_string(),
                        serde_json::json!({"per_request": r.per_request, "per_row": r.per_row}),
                    )
                })
                .collect(),
        )
    }

    /// The price list back from its stored form.
    pub fn prices_from_json(v: &Value) -> BTreeMap<Endpoint, Rate> {
        v.as_object()
            .into_iter()
            .flatten()
            .filter_map(|(name, r)| {
                let endpoint = name.parse::<Endpoint>().ok()?;
                let per_request = r.get("per_request").and_then(Usd::from_json)?;
                let per_row = r.get("per_row").and_then(Usd::from_json)?;
                Some((
                    endpoint,
                    Rate {
                        per_request,
                        per_row,
                    },
                ))
            })
            .collect()
    }
}

/// `{"live": {"priority_normal": [{"cost_type": "per_request", "cost": ..}, ..]}}`.
fn rate(entry: &Value) -> Option<Rate> {
    let costs = entry.pointer("/live/priority_normal")?.as_array()?;
    let cost_of = |kind: &str| {
        costs
            .iter()
            .find(|c| c.get("cost_type").and_then(Value::as_str) == Some(kind))
            .and_then(|c| c.get("cost"))
            .and_then(Usd::from_json)
    };
    Some(Rate {
        per_request: cost_of("per_request")?,
        per_row: cost_of("per_result")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_balance_and_the_price_list_are_read_from_user_data() {
        let body = json!({"tasks": [{"result": [{
            "money": {"balance": 42.5},
            "price": {"backlinks": {
                "summary": {"live": {"priority_normal": [
                    {"cost_type": "per_request", "cost": 0.02},
                    {"cost_type": "per_result", "cost": 0.00003}]}},
                "history": {"live": {"priority_normal": [{"cost_type": "per_request", "cost": 0.1}]}},
                "not_an_endpoint": {"live": {"priority_normal": []}}
            }}
        }]}]});
        let account = Account::read(&body);
        assert_eq!(account.balance, Some("42.5".parse().unwrap()));
        assert_eq!(
            account.prices.get(&Endpoint::Summary),
            Some(&Rate {
                per_request: "0.02".parse().unwrap(),
                per_row: "0.00003".parse().unwrap()
            })
        );
        // A rate missing its per-row part is not known.
        assert!(!account.prices.contains_key(&Endpoint::History));
        assert_eq!(
            Account::prices_from_json(&account.prices_json()),
            account.prices
        );
    }

    #[test]
    fn the_accounts_own_books_and_limits_are_read_from_user_data() {
        let body = json!({"tasks": [{"result": [{
            "money": {
                "balance": 10,
                "limits": {"day": {"total": 5}, "minute": {"total": 0}},
                "statistics": {
                    "day": {"total": 1.5, "total_backlinks": 0.3,
                            "backlinks": {"summary": 0.1, "history": 0.2}},
                    "minute": {"total": 0.02}
                }
            },
            "rates": {
                "limits": {"minute": {"total": 2000}, "day": {"total": 0}},
                "statistics": {"day": {"total": 12, "total_backlinks": 4}}
            }
        }]}]});
        let books = Account::read(&body).books;
        let day = books.spent_day.unwrap();
        assert_eq!(day.total, Some("1.5".parse().unwrap()));
        assert_eq!(day.backlinks, Some("0.3".parse().unwrap()));
        assert_eq!(day.by_function["history"], "0.2".parse().unwrap());
        assert_eq!(books.money_limit_day, Some("5".parse().unwrap()));
        assert_eq!(books.money_limit_minute, None, "0 is no limit");
        assert_eq!(books.rate_limit_minute, Some(2000));
        assert_eq!(books.rate_limit_day, None);
        assert_eq!(
            books.requests_day.unwrap().backlinks,
            Some("4".parse().unwrap())
        );
        assert_eq!(books.requests_minute, None);
    }

    #[test]
    fn an_answer_of_another_shape_says_nothing() {
        assert_eq!(Account::read(&json!({"tasks": null})), Account::default());
        assert_eq!(
            Account::read(&json!({"tasks": [{"result": [{"money": "lots"}]}]})),
            Account::default()
        );
    }
}
