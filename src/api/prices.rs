//! What calls cost: the API's list price ($0.02 per request plus $0.00003 per returned
//! row), the account's own price list (`appendix/user_data`, read by `api::account`)
//! and a gateway's flat price per call. Only estimates: the ledger records what the API
//! reports.

use std::collections::BTreeMap;

use crate::api::Endpoint;
use crate::money::Usd;

/// The API's list price per request, USD.
pub const PRICE_PER_REQUEST: Usd = Usd(rust_decimal::Decimal::from_parts(2, 0, 0, false, 2));
/// The API's list price per returned row, USD.
pub const PRICE_PER_ROW: Usd = Usd(rust_decimal::Decimal::from_parts(3, 0, 0, false, 5));

/// The most one Backlinks call is believed to cost: 20 times the dearest call at list
/// price (1,000 targets or items: $0.02 + 1,000 × $0.00003 = $0.05). A cost an answer
/// reports above it (or below zero) is not booked as reported: the call's estimate is.
pub const MAX_COST_PER_CALL: Usd = Usd(rust_decimal::Decimal::from_parts(1, 0, 0, false, 0));

/// What the ledger books for a processed answer that reported `reported`: the reported
/// cost when it is usable (from zero to [`MAX_COST_PER_CALL`]); else `estimate`, with
/// why the reported one was not used.
pub fn booked_cost(reported: Option<Usd>, estimate: Usd) -> (Usd, Option<String>) {
    match reported {
        Some(c) if c >= Usd::ZERO && c <= MAX_COST_PER_CALL => (c, None),
        Some(c) => (
            estimate,
            Some(format!(
                "the answer reported a cost of {c}, outside 0 to {MAX_COST_PER_CALL}; booked at the estimate"
            )),
        ),
        None => (
            estimate,
            Some("the answer reported no readable cost; booked at the estimate".into()),
        ),
    }
}

/// The API's list price: $0.02 per request plus $0.00003 per returned row. Only an
/// estimate; the ledger records what the API reports.
pub fn price(rows: i64) -> Usd {
    Rate::LIST.price(rows)
}

/// A price per request and per returned row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rate {
    pub per_request: Usd,
    pub per_row: Usd,
}

impl Rate {
    /// DataForSEO's list price for the live Backlinks endpoints.
    pub const LIST: Rate = Rate {
        per_request: PRICE_PER_REQUEST,
        per_row: PRICE_PER_ROW,
    };

    pub fn price(self, rows: i64) -> Usd {
        Usd(self.per_request.decimal() + self.per_row.decimal() * rust_decimal::Decimal::from(rows))
    }

    /// What `calls` requests returning `rows` rows together cost (a listing's pages).
    pub fn price_calls(self, calls: i64, rows: i64) -> Usd {
        Usd(
            self.per_request.decimal() * rust_decimal::Decimal::from(calls)
                + self.per_row.decimal() * rust_decimal::Decimal::from(rows),
        )
    }
}

/// What calls cost the user: the account's own price list when `appendix/user_data`
/// gave one, else the list price; or a gateway's flat price per call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prices {
    /// Per endpoint, from the account's price list; endpoints not in it pay the list
    /// price.
    pub per_endpoint: BTreeMap<Endpoint, Rate>,
    /// `api.price_per_call`: a gateway's flat price, whatever the rows.
    pub flat_per_call: Option<Usd>,
    /// When the price list was read (`None`: the built-in list price).
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
}

impl Prices {
    /// The rate of `endpoint`.
    pub fn rate(&self, endpoint: Endpoint) -> Rate {
        self.per_endpoint
            .get(&endpoint)
            .copied()
            .unwrap_or(Rate::LIST)
    }

    /// What a call of `endpoint` returning `rows` rows costs.
    pub fn estimate(&self, endpoint: Endpoint, rows: i64) -> Usd {
        match self.flat_per_call {
            Some(flat) => flat,
            None => self.rate(endpoint).price(rows),
        }
    }

    /// Where the prices come from, for people.
    pub fn source(&self) -> String {
        match (self.flat_per_call, self.as_of) {
            (Some(flat), _) => format!("api.price_per_call {flat} per call"),
            (None, Some(at)) => format!(
                "the account's price list of {}",
                at.format("%Y-%m-%d %H:%M UTC")
            ),
            (None, None) => "list price $0.02 per call + $0.00003 per row".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_price_is_two_cents_plus_three_thousandths_of_a_cent_per_row() {
        assert_eq!(price(0).to_string(), "$0.02");
        assert_eq!(price(100).to_string(), "$0.023");
    }

    #[test]
    fn a_cost_that_is_missing_negative_or_absurd_is_booked_at_the_estimate() {
        let estimate = price(1);
        let usd = |s: &str| s.parse::<Usd>().unwrap();
        assert_eq!(
            booked_cost(Some(usd("0.02003")), estimate),
            (usd("0.02003"), None)
        );
        assert_eq!(booked_cost(Some(Usd::ZERO), estimate), (Usd::ZERO, None));
        assert_eq!(booked_cost(Some(MAX_COST_PER_CALL), estimate).1, None);
        for reported in [
            None,
            Some(usd("-5")),
            Some(usd("1.00001")),
            Some(usd("1000000")),
        ] {
            let (cost, why) = booked_cost(reported, estimate);
            assert_eq!(cost, estimate, "{reported:?}");
            assert!(why.unwrap().ends_with("booked at the estimate"));
        }
    }
}
