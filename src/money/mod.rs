//! Money. The API reports costs as JSON numbers (`0.02003`); summing them as `f64`
//! drifts, so every amount is parsed once into an exact decimal and stays one.
//!
//! Beside [`Usd`]: the caps on spending (`budget`), and the ledger reconciled with the
//! account's own books (`reconcile`).

pub mod budget;
pub mod reconcile;

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, Sub};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount in US dollars, exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(pub Decimal);

impl Usd {
    pub const ZERO: Usd = Usd(Decimal::ZERO);

    /// Parses a JSON number exactly: `0.02003` becomes 0.02003, not 0.0200299999….
    pub fn from_json(value: &serde_json::Value) -> Option<Usd> {
        match value {
            serde_json::Value::Number(n) => Decimal::from_str(&n.to_string())
                .or_else(|_| Decimal::from_scientific(&n.to_string()))
                .ok()
                .map(|d| Usd(d.normalize())),
            serde_json::Value::String(s) => Decimal::from_str(s).ok().map(Usd),
            _ => None,
        }
    }

    pub fn from_f64(value: f64) -> Option<Usd> {
        // `{}` prints the shortest string that round-trips, which is what the
        // API meant when it wrote the number.
        Decimal::from_str(&format!("{value}"))
            .ok()
            .map(|d| Usd(d.normalize()))
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// The nearest `f64`, for where a number must be a float (a JSON log field): it
    /// prints back as the decimal it came from (`0.14021`, never `0.14020999999999998`).
    pub fn to_f64(self) -> f64 {
        self.0.normalize().to_string().parse().unwrap_or(0.0)
    }
}

impl From<Decimal> for Usd {
    fn from(d: Decimal) -> Usd {
        Usd(d)
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rounded = self.0.round_dp(5).normalize();
        if rounded.scale() < 2 {
            write!(f, "${:.2}", rounded)
        } else {
            write!(f, "${rounded}")
        }
    }
}

impl FromStr for Usd {
    type Err = rust_decimal::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::from_str(s.trim().trim_start_matches('$')).map(Usd)
    }
}

impl Add for Usd {
    type Output = Usd;
    fn add(self, rhs: Usd) -> Usd {
        Usd(self.0 + rhs.0)
    }
}

impl Sub for Usd {
    type Output = Usd;
    fn sub(self, rhs: Usd) -> Usd {
        Usd(self.0 - rhs.0)
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, rhs: Usd) {
        self.0 += rhs.0;
    }
}

impl Mul<i64> for Usd {
    type Output = Usd;
    fn mul(self, rhs: i64) -> Usd {
        Usd(self.0 * Decimal::from(rhs))
    }
}

impl Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, |a, b| a + b)
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Written as a JSON number, the way the API writes costs.
        let n: serde_json::Number = self
            .0
            .normalize()
            .to_string()
            .parse()
            .map_err(serde::ser::Error::custom)?;
        n.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Usd::from_json(&v).ok_or_else(|| {
            serde::de::Error::custom(match &v {
                serde_json::Value::String(s) => {
                    format!("\"{s}\" is not an amount in USD; write a number like 5.0")
                }
                serde_json::Value::Object(_) => {
                    "expected an amount in USD like 5.0, found a table (or a date)".to_string()
                }
                other => format!("expected an amount in USD like 5.0, found {other}"),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_costs_are_parsed_exactly_and_sum_without_drift() {
        let v: serde_json::Value = serde_json::from_str("[0.02003, 0.1, 0.2]").unwrap();
        let total: Usd = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| Usd::from_json(x).unwrap())
            .sum();
        assert_eq!(total, "0.32003".parse().unwrap());
    }

    #[test]
    fn display_shows_cents_and_keeps_fractions_of_a_cent() {
        assert_eq!(Usd::from_f64(2.0).unwrap().to_string(), "$2.00");
        assert_eq!(Usd::from_f64(0.02003).unwrap().to_string(), "$0.02003");
    }

    #[test]
    fn as_a_float_it_prints_back_as_the_decimal_it_was() {
        for s in ["0.14021", "0.1", "0.2", "0.30000", "4.85336", "0.00003"] {
            let usd: Usd = s.parse().unwrap();
            let text = usd.to_f64().to_string();
            assert_eq!(
                text.parse::<Decimal>().unwrap(),
                usd.0,
                "{s} printed as {text}"
            );
        }
    }

    #[test]
    fn serializes_as_a_json_number() {
        let s = serde_json::to_string(&Usd::from_f64(0.02003).unwrap()).unwrap();
        assert_eq!(s, "0.02003");
    }
}
