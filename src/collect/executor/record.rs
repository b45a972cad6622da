//! The attempt's durable writes: the booking (ledger row, reservation, shared slot)
//! before the request leaves, what the answer settles, the slot given back, and the
//! answer recorded as it arrived, retried while the database is away.

use super::*;
use crate::store::reconcile::MinuteGrant;

impl Executor {
    /// Writes the call's ledger row with its estimate reserved against the budgets
    /// (nothing for a sandbox) and, with shared limits, takes one of the account's
    /// slots in the same statement, waiting while none is free; prepares the budgets'
    /// rows when a new period starts, and tries again after a deadlock (another
    /// statement locking the same rows). A shutdown or a halt that comes while it
    /// waits for a slot ends it unsent.
    pub(super) async fn book(
        &self,
        record: &CallRecord<'_>,
        fence: Fence,
        estimate: Usd,
    ) -> Booked {
        // One of the day's requests (the account's rates.limits.day), held by this
        // call from when it is taken until the call is sent or given up, across the
        // booking's retries.
        let mut day = None;
        let booked = self.book_holding(record, fence, estimate, &mut day).await;
        if !matches!(booked, Booked::Decided(SendDecision::Sent(_), _)) {
            self.give_back_request(day).await;
        }
        booked
    }

    async fn book_holding(
        &self,
        record: &CallRecord<'_>,
        fence: Fence,
        estimate: Usd,
        day: &mut Option<chrono::NaiveDate>,
    ) -> Booked {
        let booking = Booking {
            estimate,
            sandbox: self.client.is_sandbox(),
            free: false,
        };
        let mut tries = 0;
        loop {
            if self.stop.is_cancelled() {
                return Booked::NotSent(AttemptEnd::Stopped);
            }
            // The day's requests used up stop every call but those holding one.
            if let Some(h) = self.halted()
                && !(day.is_some() && matches!(h.by, HaltBy::RequestsPerDay(_)))
            {
                return Booked::NotSent(AttemptEnd::NotSent(h));
            }
            let caps = self.account_caps.get();
            // The account's own requests per day: one of today's taken first, or every
            // call stops until midnight (as at its daily spending limit) rather than be
            // refused by the API.
            let today = Utc::now().date_naive();
            if let Some(cap) = caps.requests_day
                && *day != Some(today)
            {
                self.give_back_request(day.take()).await;
                match self
                    .store
                    .reserve_request(self.client.api_host(), cap)
                    .await
                {
                    Ok(Some(taken)) => *day = Some(taken),
                    Ok(None) => {
                        self.set_halt(Halt::requests_per_day(cap, Utc::now()));
                        continue;
                    }
                    Err(e) => return Booked::Failed(e),
                }
            }
            // The account's own spending limit per minute: the estimate reserved in this
            // minute first, or the call waits for the next one.
            let minute = match caps.money_minute {
                Some(cap) => match self
                    .store
                    .reserve_minute(self.client.api_host(), estimate, cap)
                    .await
                {
                    Ok(MinuteGrant::Reserved(minute)) => Some(minute),
                    Ok(MinuteGrant::Wait(wait)) => {
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = self.stop.cancelled() => {}
                        }
                        continue;
                    }
                    Err(e) => return Booked::Failed(e),
                },
                None => None,
            };
            let ask = self.shared.as_ref().map(SharedSlots::ask);
            let grouped = match &self.groups {
                Some(groups) => {
                    groups
                        .book(BookMember::new(record, Some(fence), booking, ask.as_ref()))
                        .await
                }
                None => None,
            };
            let booked = match grouped {
                Some(booked) => booked,
                None => {
                    self.store
                        .book_with_slot(record, Some(fence), &booking, ask.as_ref())
                        .await
                }
            };
            // Not sent (yet): what it reserved in the minute goes back.
            let sent = matches!(
                &booked,
                Ok(SlotBooking::Booked {
                    decision: SendDecision::Sent(_),
                    ..
                })
            );
            if let (Some(minute), false) = (minute, sent)
                && let Err(e) = self
                    .store
                    .release_minute(self.client.api_host(), minute, estimate)
                    .await
            {
                warn!(error = %e, "giving back a minute's reservation failed; it lapses with the minute");
            }
            let (decision, lease) = match booked {
                Ok(SlotBooking::Wait(wait)) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.stop.cancelled() => {}
                    }
                    continue;
                }
                Ok(SlotBooking::Booked { decision, lease }) => (decision, lease),
                Err(e) if e.is_deadlock() && tries < 2 => {
                    tries += 1;
                    warn!("booking met a deadlock; trying again");
                    continue;
                }
                Err(e) => return Booked::Failed(e),
            };
            let slot = match (&self.shared, lease) {
                (Some(shared), Some(lease)) => Some(shared.adopt(lease)),
                _ => None,
            };
            if decision == SendDecision::Unprepared && tries < 2 {
                tries += 1;
                self.release(slot).await;
                if let Err(e) = self.store.prepare_budgets(record.job).await {
                    return Booked::Failed(e);
                }
                continue;
            }
            return Booked::Decided(decision, slot);
        }
    }

    /// Gives back the day's request taken for a call that was not sent.
    async fn give_back_request(&self, day: Option<chrono::NaiveDate>) {
        if let Some(day) = day
            && let Err(e) = self
                .store
                .release_request(self.client.api_host(), day)
                .await
        {
            warn!(error = %e, "giving back a day's request failed; the day counts one request more");
        }
    }

    /// What an answered call costs the user and counts against the budgets.
    pub(super) fn settlement(&self, call: &CallSpec, attempt: &Attempt) -> Settlement {
        let processed = matches!(
            attempt.outcome,
            Outcome::Ok | Outcome::Rejected { .. } | Outcome::Unreadable { .. }
        );
        let mut cost_estimated = false;
        let cost = match self.flat_price() {
            // A gateway's flat price is what the user pays for a call it processed.
            Some(flat) if processed => Some(flat),
            Some(_) if attempt.http_status.is_some() => Some(Usd::ZERO),
            Some(_) => None,
            // A processed answer was paid for: a cost it does not give usably is
            // booked at the estimate, never as free or as a credit.
            None if processed => {
                let (cost, why) = crate::api::prices::booked_cost(
                    attempt.cost,
                    call.estimated_cost(&self.prices()),
                );
                if let Some(why) = why {
                    warn!(endpoint = call.endpoint.name(), reported = ?attempt.cost, booked = %cost, "{why}");
                    cost_estimated = true;
                }
                Some(cost)
            }
            // Not processed: charged only what it says, never less than nothing.
            None => attempt
                .cost
                .filter(|c| *c >= Usd::ZERO && *c <= crate::api::prices::MAX_COST_PER_CALL),
        };
        let budget = if attempt.http_status.is_some() {
            Some(cost.unwrap_or(Usd::ZERO))
        } else if attempt.reached {
            // No answer to say what it cost: the reservation stays.
            None
        } else {
            // The connection was never made: nothing was spent.
            Some(Usd::ZERO)
        };
        Settlement {
            cost,
            cost_estimated,
            budget,
            sandbox: attempt.sandbox,
        }
    }

    pub(super) async fn release(&self, slot: Option<Slot>) {
        let (Some(shared), Some(slot)) = (&self.shared, slot) else {
            return;
        };
        let Some(groups) = &self.groups else {
            return shared.release(slot).await;
        };
        let lease = slot.lease();
        // No longer renewed from here.
        drop(slot);
        match groups.release(lease).await {
            Some(Ok(true)) => {}
            Some(Ok(false)) => warn!(
                slot = lease.slot,
                "a shared API slot had lapsed and was taken again; left to its new holder"
            ),
            _ => shared.release_lease(lease).await,
        }
    }

    /// Records a paid answer, retrying while the database is away (a restart): the
    /// body exists only in memory until it is stored, and losing it means buying it
    /// again.
    ///
    /// A body PostgreSQL refuses as JSON (a NUL character in a string) is kept as its
    /// bytes instead and the answer read as unreadable: it cannot be normalized, and
    /// buying it again would not change it. Returns the attempt as recorded.
    pub(super) async fn record_answer_patiently(
        &self,
        call: &CallSpec,
        call_id: i64,
        attempt: Attempt,
    ) -> anyhow::Result<(Attempt, Option<i64>)> {
        let endpoint = call.endpoint.name();
        let settlement = self.settlement(call, &attempt);
        // In a group with other calls' answers; alone (below) when it is not small
        // enough to be held, or when the group could not write it (its own error, a
        // NUL the database refuses, is met again alone and handled there).
        let attempt = match &self.groups {
            Some(groups) if attempt.spilled.is_none() => {
                let member = AnswerMember {
                    call_id,
                    endpoint,
                    keep_raw: attempt.keeps_raw(),
                    attempt,
                    settlement,
                };
                match groups.answer(member).await {
                    Some((m, Ok(raw_id))) => return Ok((m.attempt, raw_id)),
                    Some((m, Err(e))) => {
                        if !matches!(e, StoreError::Group(_)) && !e.is_data_exception() {
                            warn!(error = %e, "recording an answer in its group failed; recording it alone");
                        }
                        m.attempt
                    }
                    // The group's writer is gone: the answer was moved into it.
                    None => anyhow::bail!("the answers' group writer stopped"),
                }
            }
            _ => attempt,
        };
        match patiently(|| {
            self.store.record_answer(
                call_id,
                endpoint,
                &attempt,
                attempt.keeps_raw(),
                &settlement,
            )
        })
        .await
        {
            Ok(raw_id) => Ok((attempt, raw_id)),
            Err(e) if e.is_data_exception() && attempt.body.is_some() => {
                warn!(error = %e, "the database refused the answer as JSON; kept as bytes, not bought again");
                let kept = attempt.kept_as_bytes(format!(
                    "the answer holds what PostgreSQL cannot store as JSON ({e}); kept raw as bytes, not bought again"
                ));
                let raw_id = patiently(|| {
                    self.store
                        .record_answer(call_id, endpoint, &kept, true, &settlement)
                })
                .await
                .context("recording the answer in the ledger, as bytes")?;
                Ok((kept, raw_id))
            }
            Err(e) => Err(e).context("recording the answer in the ledger"),
        }
    }

    /// Commits a large answer as it arrived, unread, retrying while the database is
    /// away: the body's id, or `None` when it is not stored so (not the JSON body of
    /// an HTTP 2xx answer, as the database reads JSON): then it is read from memory.
    pub(super) async fn record_receipt_patiently(
        &self,
        call_id: i64,
        endpoint: &str,
        answer: &Answer,
    ) -> anyhow::Result<Option<i64>> {
        let Ok(body) = std::str::from_utf8(answer.bytes()) else {
            return Ok(None);
        };
        if !(200..300).contains(&answer.http_status()) {
            return Ok(None);
        }
        let receipt = Receipt {
            started_at: answer.started_at(),
            duration: answer.duration(),
            http_status: answer.http_status(),
            sandbox: answer.marked_sandbox(),
            body,
        };
        match patiently(|| self.store.record_receipt(call_id, endpoint, &receipt)).await {
            Ok(raw_id) => Ok(raw_id),
            Err(e) if e.is_data_exception() => {
                warn!(error = %e, "the answer is not JSON the database takes; read from memory");
                Ok(None)
            }
            Err(e) => Err(e).context("storing the answer as it arrived"),
        }
    }
}

/// Runs `write` until it succeeds, retrying while the database is away (a restart)
/// for up to two minutes: a paid answer exists only in memory until it is stored, and
/// losing it means buying it again. A data exception (a value Postgres refuses) is
/// returned at once: trying again would not change it.
pub(super) async fn patiently<T, Fut>(mut write: impl FnMut() -> Fut) -> Result<T, StoreError>
where
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut delay = Duration::from_millis(100);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        match write().await {
            Ok(done) => return Ok(done),
            Err(e) if !e.is_data_exception() && tokio::time::Instant::now() + delay < deadline => {
                warn!(error = %e, "recording a paid answer failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}
