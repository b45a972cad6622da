//! What the free `GET /v3/appendix/user_data` says about the account: the balance and
//! the account's own price list for the live Backlinks endpoints. Read leniently: any
//! part that is missing or of another shape is simply not known.
//!
//! The price list is `result[0].price.backlinks.<endpoint>.live.priority_normal`, a list
//! of `{"cost_type": "per_request" | "per_result", "cost": USD}`; the balance is
//! `result[0].money.balance`.

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
        Account { balance, prices }
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
    fn an_answer_of_another_shape_says_nothing() {
        assert_eq!(Account::read(&json!({"tasks": null})), Account::default());
        assert_eq!(
            Account::read(&json!({"tasks": [{"result": [{"money": "lots"}]}]})),
            Account::default()
        );
    }
}
