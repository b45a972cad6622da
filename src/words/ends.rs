//! How a planned call ended, or where it stands: one word for each end, and the counts
//! of a run's (or several runs') calls by their end, in the words every output uses:
//! the line a run ends with (`run --once`, the daemon's log, `runs show`), `runs`,
//! `runs show`'s calls, the progress bar and the report of an interrupted once-run.
//!
//! The counts add up: calls made = succeeded + failed + rejected + abandoned + in
//! flight; planned = made + held + cancelled + queued. A call held by a budget or
//! cancelled before it was sent is neither failed nor made; a call abandoned after it
//! was sent (booked at its list price: the API may have charged it) is made, never
//! "not sent".

use super::count;

/// How one planned call ended, or where it stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallEnd {
    /// It got its data: bought, or an answer of the same day reused.
    Succeeded,
    /// Sent, no data: its retries were used up, or its answer could not be read.
    Failed,
    /// Sent, and the API refused it (a request error, the account refused): never
    /// retried.
    Rejected,
    /// Sent, and its answer was not waited for (a second signal, a process that died,
    /// a claim dropped by `linkledger cancel`): booked at its list price, as the API may
    /// have charged it.
    Abandoned,
    /// Claimed by a worker: being sent, or its answer not in yet.
    InFlight,
    /// Not sent: a budget holds it back (waiting for the budget's next period in the
    /// daemon; not done by a once-run).
    Held,
    /// Not sent: cancelled before it was sent (a refusal, an interrupt, an error, or
    /// `linkledger cancel`).
    Cancelled,
    /// Not sent yet: waiting in the queue.
    Queued,
}

impl CallEnd {
    pub const ALL: [CallEnd; 8] = [
        CallEnd::Succeeded,
        CallEnd::Failed,
        CallEnd::Rejected,
        CallEnd::Abandoned,
        CallEnd::InFlight,
        CallEnd::Held,
        CallEnd::Cancelled,
        CallEnd::Queued,
    ];

    /// Its key, as the store names it (`store::CALL_END`) and logs carry it.
    pub fn key(self) -> &'static str {
        match self {
            CallEnd::Succeeded => "succeeded",
            CallEnd::Failed => "failed",
            CallEnd::Rejected => "rejected",
            CallEnd::Abandoned => "abandoned",
            CallEnd::InFlight => "in_flight",
            CallEnd::Held => "held",
            CallEnd::Cancelled => "cancelled",
            CallEnd::Queued => "queued",
        }
    }

    pub fn parse(key: &str) -> Option<CallEnd> {
        CallEnd::ALL.into_iter().find(|e| e.key() == key)
    }

    /// How people read it: "abandoned after sending", "cancelled before sending".
    pub fn word(self) -> &'static str {
        match self {
            CallEnd::Succeeded => "succeeded",
            CallEnd::Failed => "failed",
            CallEnd::Rejected => "rejected",
            CallEnd::Abandoned => "abandoned after sending",
            CallEnd::InFlight => "in flight",
            CallEnd::Held => "held by a budget",
            CallEnd::Cancelled => "cancelled before sending",
            CallEnd::Queued => "queued",
        }
    }

    /// Whether the call was made: sent (or answered from a reused answer).
    pub fn made(self) -> bool {
        matches!(
            self,
            CallEnd::Succeeded
                | CallEnd::Failed
                | CallEnd::Rejected
                | CallEnd::Abandoned
                | CallEnd::InFlight
        )
    }
}

/// Planned calls counted by their end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallEnds {
    pub succeeded: i64,
    pub failed: i64,
    pub rejected: i64,
    pub abandoned: i64,
    pub in_flight: i64,
    pub held: i64,
    pub cancelled: i64,
    pub queued: i64,
}

impl CallEnds {
    /// The count of `end`.
    pub fn get(&self, end: CallEnd) -> i64 {
        match end {
            CallEnd::Succeeded => self.succeeded,
            CallEnd::Failed => self.failed,
            CallEnd::Rejected => self.rejected,
            CallEnd::Abandoned => self.abandoned,
            CallEnd::InFlight => self.in_flight,
            CallEnd::Held => self.held,
            CallEnd::Cancelled => self.cancelled,
            CallEnd::Queued => self.queued,
        }
    }

    fn slot(&mut self, end: CallEnd) -> &mut i64 {
        match end {
            CallEnd::Succeeded => &mut self.succeeded,
            CallEnd::Failed => &mut self.failed,
            CallEnd::Rejected => &mut self.rejected,
            CallEnd::Abandoned => &mut self.abandoned,
            CallEnd::InFlight => &mut self.in_flight,
            CallEnd::Held => &mut self.held,
            CallEnd::Cancelled => &mut self.cancelled,
            CallEnd::Queued => &mut self.queued,
        }
    }

    /// Adds `n` calls that ended `end`.
    pub fn add(&mut self, end: CallEnd, n: i64) {
        *self.slot(end) += n;
    }

    /// Counts from `(key, calls)` pairs as the store gives them; an unknown key is
    /// left out.
    pub fn from_keys<'a>(pairs: impl IntoIterator<Item = (&'a str, i64)>) -> CallEnds {
        let mut ends = CallEnds::default();
        for (key, n) in pairs {
            if let Some(end) = CallEnd::parse(key) {
                ends.add(end, n);
            }
        }
        ends
    }

    /// Calls made: succeeded + failed + rejected + abandoned + in flight.
    pub fn made(&self) -> i64 {
        CallEnd::ALL
            .into_iter()
            .filter(|e| e.made())
            .map(|e| self.get(e))
            .sum()
    }

    /// Calls made that reached their end (made, not in flight).
    pub fn ended_made(&self) -> i64 {
        self.made() - self.in_flight
    }

    /// Every planned call: made + held + cancelled + queued.
    pub fn planned(&self) -> i64 {
        CallEnd::ALL.into_iter().map(|e| self.get(e)).sum()
    }

    /// Calls that will never be made: held (by a once-run) or cancelled.
    pub fn not_made(&self) -> i64 {
        self.held + self.cancelled
    }

    /// Calls made that brought no data: failed, rejected, abandoned.
    pub fn without_data(&self) -> i64 {
        self.failed + self.rejected + self.abandoned
    }

    /// `3 calls, 0 failed`, then the other ends of calls made when there are any
    /// (`, 1 rejected, 2 abandoned after sending, 1 in flight`).
    pub fn made_words(&self) -> String {
        let mut s = format!("{}, {} failed", count(self.made(), "call"), self.failed);
        for end in [CallEnd::Rejected, CallEnd::Abandoned, CallEnd::InFlight] {
            let n = self.get(end);
            if n > 0 {
                s.push_str(&format!(", {n} {}", end.word()));
            }
        }
        s
    }

    /// The calls not made, when there are any: `2 cancelled before sending, 1 held by a
    /// budget, 4 queued`; empty when there are none.
    pub fn not_made_words(&self) -> String {
        [CallEnd::Cancelled, CallEnd::Held, CallEnd::Queued]
            .into_iter()
            .filter(|e| self.get(*e) > 0)
            .map(|e| format!("{} {}", self.get(e), e.word()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::ops::AddAssign for CallEnds {
    fn add_assign(&mut self, o: CallEnds) {
        for end in CallEnd::ALL {
            self.add(end, o.get(end));
        }
    }
}

impl std::iter::Sum for CallEnds {
    fn sum<I: Iterator<Item = CallEnds>>(iter: I) -> CallEnds {
        let mut total = CallEnds::default();
        for e in iter {
            total += e;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_end_has_a_key_that_reads_back() {
        for end in CallEnd::ALL {
            assert_eq!(CallEnd::parse(end.key()), Some(end));
        }
        assert_eq!(CallEnd::parse("not_made"), None);
    }

    #[test]
    fn calls_held_or_cancelled_are_neither_made_nor_failed_and_the_counts_add_up() {
        let ends = CallEnds {
            succeeded: 3,
            failed: 1,
            rejected: 1,
            abandoned: 2,
            in_flight: 1,
            held: 2,
            cancelled: 5,
            queued: 4,
        };
        assert_eq!(ends.made(), 3 + 1 + 1 + 2 + 1);
        assert_eq!(ends.planned(), ends.made() + 2 + 5 + 4);
        assert_eq!(ends.not_made(), 7);
        assert_eq!(
            ends.made_words(),
            "8 calls, 1 failed, 1 rejected, 2 abandoned after sending, 1 in flight"
        );
        assert_eq!(
            ends.not_made_words(),
            "5 cancelled before sending, 2 held by a budget, 4 queued"
        );
        let only = CallEnds {
            cancelled: 5,
            ..CallEnds::default()
        };
        assert_eq!(only.made_words(), "0 calls, 0 failed");
        assert_eq!(CallEnds::default().not_made_words(), "");
    }

    #[test]
    fn an_abandoned_call_is_never_worded_as_not_sent() {
        assert!(CallEnd::Abandoned.made());
        assert!(!CallEnd::Abandoned.word().contains("not"));
        assert!(!CallEnd::Cancelled.made() && !CallEnd::Held.made());
    }
}
