//! A day's Backlinks spend as the account reported it against the ledger's, and what
//! explains the difference: pure, the figures passed in.
//!
//! The account's figure (`money.statistics.day` of the day's last sample) covers the
//! calls up to that sample; the ledger's figures are of the calls sent up to then.
//! Abandoned calls (sent or maybe sent, never answered) are booked at their estimate:
//! the account's figure says what they really cost, within what the rest of the ledger
//! (costs the API reported) leaves. What is settled never exceeds the estimates, so a
//! settlement lowers the ledger, never raises it: money the account spent beyond the
//! ledger's estimates is another consumer's, not ours.

use std::fmt;

use rust_decimal::Decimal;

use super::Usd;

/// One day's (or one function's) figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// What the account says it spent (its last sample of the day).
    pub account: Usd,
    /// What the ledger booked for the calls sent up to that sample.
    pub ledger: Usd,
    /// Of `ledger`, the estimates of abandoned calls not settled yet.
    pub abandoned: Usd,
    /// The ledger's calls as the API reported their costs (a gateway's flat price
    /// aside); equals `ledger` when the user pays what the API reports.
    pub reported: Usd,
}

/// What explains a difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Within the threshold.
    Matches,
    /// The abandoned calls' estimates explain it: the account says what they cost.
    AbandonedEstimates,
    /// The account spent more than the ledger can explain: another consumer.
    AnotherConsumer,
    /// The ledger books a gateway's flat price; the account matches the API's costs.
    GatewayPrice,
    /// The account spent less than the ledger's answered calls cost.
    Unexplained,
}

impl Kind {
    /// As stored (`reconciliations.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Matches => "matches",
            Kind::AbandonedEstimates => "abandoned_estimates",
            Kind::AnotherConsumer => "another_consumer",
            Kind::GatewayPrice => "gateway_price",
            Kind::Unexplained => "unexplained",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reconciliation of one day's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub kind: Kind,
    /// account − ledger.
    pub difference: Usd,
    /// What the abandoned estimates are settled to in all (at most `abandoned`);
    /// `None` when there are none.
    pub settle_abandoned_to: Option<Usd>,
    /// account − (ledger after settlement): what nothing in the ledger explains.
    pub left: Usd,
    pub explanation: String,
}

impl Verdict {
    /// Worth a warning: what is left unexplained exceeds `threshold` either way.
    pub fn over(&self, threshold: Usd) -> bool {
        self.left.0.abs() > threshold.0
    }
}

fn clamp(v: Usd, lo: Usd, hi: Usd) -> Usd {
    v.max(lo).min(hi)
}

/// Reconciles `f`, differences within `threshold` counting as none.
pub fn reconcile(f: Figures, threshold: Usd) -> Verdict {
    let within = |a: Usd, b: Usd| (a.0 - b.0).abs() <= threshold.0;
    let difference = f.account - f.ledger;
    // The answered calls' costs, as the API reported them.
    let known = f.ledger - f.abandoned;
    let settle =
        (f.abandoned > Usd::ZERO).then(|| clamp(f.account - known, Usd::ZERO, f.abandoned));
    let settled_ledger = known + settle.unwrap_or(Usd::ZERO);
    let left = f.account - settled_ledger;
    let (kind, explanation) = if f.reported != f.ledger
        && within(f.account, f.reported)
        && !within(f.account, f.ledger)
    {
        (
            Kind::GatewayPrice,
            format!(
                "the ledger books the gateway's flat price ({}); the API's reported costs come to {}, which the account matches",
                f.ledger, f.reported
            ),
        )
    } else if within(f.account, f.ledger) && settle.is_none_or(|s| s == f.abandoned) {
        (
            Kind::Matches,
            if difference.is_zero() {
                "the account and the ledger agree".to_string()
            } else {
                format!(
                    "within the threshold ({threshold}): {} apart",
                    Usd(difference.0.abs())
                )
            },
        )
    } else if let Some(s) = settle
        && f.account <= f.ledger + threshold
        && f.account + threshold >= known
    {
        (
            Kind::AbandonedEstimates,
            format!(
                "abandoned calls were booked at their estimate ({}); the account says they cost {s}{}",
                f.abandoned,
                if s.is_zero() {
                    " (none reached the API, or none was charged)"
                } else {
                    ""
                }
            ),
        )
    } else if f.account > f.ledger {
        (
            Kind::AnotherConsumer,
            format!(
                "the account spent {} more than the ledger booked: another consumer of the account (a colleague's script, another tool) or calls the ledger never saw",
                difference
            ),
        )
    } else {
        (
            Kind::Unexplained,
            format!(
                "the account spent {} less than the ledger's answered calls cost ({known})",
                Usd(known.0 - f.account.0)
            ),
        )
    };
    Verdict {
        kind,
        difference,
        settle_abandoned_to: settle,
        left,
        explanation,
    }
}

/// Splits `total` over `estimates` in proportion, to the 1/100,000 of a dollar, the
/// rounding left on the last one: the settlement of each abandoned call.
pub fn split(total: Usd, estimates: &[Usd]) -> Vec<Usd> {
    let sum: Usd = estimates.iter().copied().sum();
    let mut out = Vec::with_capacity(estimates.len());
    if estimates.is_empty() {
        return out;
    }
    let mut given = Usd::ZERO;
    for (i, e) in estimates.iter().enumerate() {
        let share = if i + 1 == estimates.len() {
            total - given
        } else if sum.is_zero() {
            Usd::ZERO
        } else {
            Usd((total.0 * e.0 / sum.0).round_dp(5))
        };
        given += share;
        out.push(Usd(share.0.max(Decimal::ZERO).normalize()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(s: &str) -> Usd {
        s.parse().unwrap()
    }

    fn figures(account: &str, ledger: &str, abandoned: &str) -> Figures {
        Figures {
            account: usd(account),
            ledger: usd(ledger),
            abandoned: usd(abandoned),
            reported: usd(ledger),
        }
    }

    #[test]
    fn abandoned_estimates_are_settled_to_what_the_account_charged_for_them() {
        // 5.1477 booked, 0.2 of it abandoned estimates; the account charged 5.0676.
        let v = reconcile(figures("5.0676", "5.1477", "0.2"), usd("0.01"));
        assert_eq!(v.kind, Kind::AbandonedEstimates);
        assert_eq!(v.settle_abandoned_to, Some(usd("0.1199")));
        assert_eq!(v.left, Usd::ZERO);
        assert!(!v.over(usd("0.01")));
        assert_eq!(v.difference, usd("-0.0801"));
    }

    #[test]
    fn spend_beyond_the_ledger_is_another_consumers_and_settles_nothing() {
        let v = reconcile(figures("7", "5", "0.2"), usd("0.05"));
        assert_eq!(v.kind, Kind::AnotherConsumer);
        assert_eq!(v.settle_abandoned_to, Some(usd("0.2")), "estimates kept");
        assert_eq!(v.left, usd("2"));
        assert!(v.over(usd("0.05")));
        assert!(
            v.explanation.contains("another consumer"),
            "{}",
            v.explanation
        );
    }

    #[test]
    fn equal_books_match_and_a_gateways_flat_price_is_recognised() {
        let v = reconcile(figures("1.5", "1.5", "0"), usd("0.01"));
        assert_eq!((v.kind, v.settle_abandoned_to), (Kind::Matches, None));
        let v = reconcile(
            Figures {
                account: usd("0.4"),
                ledger: usd("1"),
                abandoned: Usd::ZERO,
                reported: usd("0.4"),
            },
            usd("0.01"),
        );
        assert_eq!(v.kind, Kind::GatewayPrice);
    }

    #[test]
    fn an_account_below_the_answered_calls_is_unexplained_and_settles_abandoned_to_nothing() {
        let v = reconcile(figures("1", "2", "0.1"), usd("0.01"));
        assert_eq!(v.kind, Kind::Unexplained);
        assert_eq!(v.settle_abandoned_to, Some(Usd::ZERO));
        assert_eq!(v.left, usd("-0.9"));
    }

    #[test]
    fn a_split_adds_up_to_its_total_exactly() {
        let parts = split(usd("0.1"), &[usd("0.02"), usd("0.02"), usd("0.02")]);
        assert_eq!(parts.iter().copied().sum::<Usd>(), usd("0.1"));
        assert_eq!(parts[0], usd("0.03333"));
        assert!(split(usd("1"), &[]).is_empty());
    }
}
