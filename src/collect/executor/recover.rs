//! Answers already paid for: an answer bought today reused instead of bought again,
//! and a re-claimed item settled from the answer its earlier claim paid for (data from
//! `raw_responses`, a refusal or an unreadable answer as it was), never bought twice;
//! an answer stored as it arrived and never read is read back from the database and
//! settled first, whoever finds it.

use std::time::Duration;

use anyhow::Context as _;
use tracing::{info, instrument, warn};

use super::record::patiently;
use super::{AttemptEnd, Executor, Halt};
use crate::api::client::Answer;
use crate::api::{Attempt, Outcome};
use crate::money::Usd;
use crate::plan::CallSpec;
use crate::store::group::PurchaseMember;
use crate::store::ledger::StoredBody;
use crate::store::{BoughtAnswer, CallRecord, Fence, Purchase};

/// Times a reuse asks again after reading an answer stored unread.
const UNREAD_TRIES: usize = 3;

impl Executor {
    /// Finishes the item from an answer bought today for the same endpoint and task
    /// (another collection's, or an earlier fire's, or a killed run's stored unread),
    /// recording the reuse in the ledger; or, while another attempt is buying it, waits
    /// for that answer: the same data is never bought twice in a UTC day. `None` when
    /// this attempt is to buy it.
    pub(super) async fn reuse(
        &self,
        call: &CallSpec,
        record: &CallRecord<'_>,
        fence: Fence,
    ) -> anyhow::Result<Option<AttemptEnd>> {
        let wait = || {
            AttemptEnd::Retry {
            throttled: true,
            error: "the same call is being bought by another collection or fire; waiting to reuse its answer".into(),
        }
        };
        for _ in 0..UNREAD_TRIES {
            let grouped = match &self.groups {
                Some(groups) => {
                    groups
                        .purchase(PurchaseMember {
                            endpoint: record.endpoint.to_string(),
                            task: record.request.clone(),
                            api_host: self.client.api_host().to_string(),
                            sandbox: self.client.is_sandbox(),
                            fence,
                        })
                        .await
                }
                None => None,
            };
            let purchase = match grouped {
                Some(Ok(purchase)) => purchase,
                // Alone: no group, or the group could not write it.
                _ => self
                    .store
                    .purchase(
                        record.endpoint,
                        record.request,
                        self.client.api_host(),
                        self.client.is_sandbox(),
                        fence,
                    )
                    .await
                    .context("looking for an answer bought today")?,
            };
            match purchase {
                Purchase::Buy => return Ok(None),
                Purchase::Wait => return Ok(Some(wait())),
                Purchase::Reuse(bought) => {
                    return self.reuse_bought(call, record, fence, &bought).await;
                }
                // Stored as it arrived, never read: read and settled here, under a
                // load permit; data is reused, anything else asked about again.
                Purchase::Unread { call_id } => {
                    let _load = self.load_permit().await;
                    let Some((attempt, raw)) = self.read_stored(call, call_id, false).await? else {
                        continue;
                    };
                    if let (Outcome::Ok, Some(body)) = (&attempt.outcome, attempt.body) {
                        let bought = BoughtAnswer {
                            call_id,
                            sandbox: attempt.sandbox,
                            raw_id: raw.raw_id,
                            sent_at: raw.sent_at,
                            received_at: raw.received_at,
                            body,
                        };
                        return self.reuse_bought(call, record, fence, &bought).await;
                    }
                }
            }
        }
        Ok(Some(wait()))
    }

    /// Finishes the item from `bought`, with a ledger row of its own (`reused`).
    async fn reuse_bought(
        &self,
        call: &CallSpec,
        record: &CallRecord<'_>,
        fence: Fence,
        bought: &BoughtAnswer,
    ) -> anyhow::Result<Option<AttemptEnd>> {
        let Some(call_id) = self
            .store
            .record_reused(record, fence, bought)
            .await
            .context("recording a reused answer")?
        else {
            return Ok(Some(AttemptEnd::Stale));
        };
        info!(
            reused_call_id = bought.call_id,
            "bought already today; answered from it, nothing sent"
        );
        if let Some(m) = &self.metrics {
            m.record_call(call.endpoint.name(), "reused", Some(Usd::ZERO));
        }
        Ok(Some(
            self.finish(call, call_id, bought.stored_body(), &bought.body, fence)
                .await?,
        ))
    }

    /// Reads an answer stored as it arrived (ledger row `call_id`) back from the
    /// database, as it would have been read on arrival (its status codes and cost read
    /// leniently), notes a refusal, and settles the row and its reservation with what
    /// it says: once, however many read it. Called under a load permit. The answer
    /// with its body's id and arrival; `None` when no body of it is stored.
    pub(super) async fn read_stored(
        &self,
        call: &CallSpec,
        call_id: i64,
        retry: bool,
    ) -> anyhow::Result<Option<(Attempt, StoredBody)>> {
        let Some(stored) = self
            .store
            .stored_answer(call_id)
            .await
            .context("reading an answer stored on arrival")?
        else {
            return Ok(None);
        };
        let duration = Duration::from_millis(stored.duration_ms.unwrap_or(0).max(0) as u64);
        let status = stored
            .http_status
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(200);
        let answer = self.client.stored_answer(
            call.endpoint,
            stored.started_at,
            duration,
            status,
            stored.sandbox,
            bytes::Bytes::from(stored.body),
        );
        let raw = StoredBody {
            raw_id: stored.raw_id,
            sent_at: stored.started_at,
            received_at: stored.received_at,
        };
        Ok(Some(
            self.read_received(call, call_id, answer, raw, retry)
                .await?,
        ))
    }

    /// Reads an answer stored as it arrived (ledger row `call_id`, its body `raw`),
    /// whether from the database or from memory, and settles its row and reservation
    /// with what it says: once, however many read it. A refusal is noted (it stops
    /// every further call); the call is counted by whoever settled it. Called under a
    /// load permit.
    pub(super) async fn read_received(
        &self,
        call: &CallSpec,
        call_id: i64,
        answer: Answer,
        raw: StoredBody,
        retry: bool,
    ) -> anyhow::Result<(Attempt, StoredBody)> {
        let attempt = self.client.read(answer).await;
        let settlement = self.settlement(call, &attempt);
        let settled = patiently(|| {
            self.store
                .settle_received(call_id, call.endpoint.name(), &attempt, &settlement)
        })
        .await
        .context("settling an answer stored on arrival")?;
        if settled {
            self.note(call, &attempt, retry);
        } else if let Some(halt) = Halt::from_outcome(&attempt.outcome) {
            self.set_halt(halt);
        }
        Ok((attempt, raw))
    }

    /// For a re-claimed work item: if an earlier attempt's answer was paid for (its
    /// worker died, or lost its claim, before the item reached its next state),
    /// settles the item from that answer without a request: data is normalized from
    /// `raw_responses`, a refusal or an unreadable answer ends the item as it would
    /// have. `None` when there is no such answer.
    #[instrument(skip_all, fields(endpoint = %call.endpoint))]
    pub async fn recover(
        &self,
        call: &CallSpec,
        fence: Fence,
    ) -> anyhow::Result<Option<AttemptEnd>> {
        let abandoned = self
            .store
            .abandon_unanswered(fence, call.estimated_cost(&self.prices()))
            .await
            .context("accounting for requests abandoned in flight")?;
        if abandoned > 0 {
            warn!(
                abandoned,
                "requests of an earlier claim never got their answer; their list price is booked as an estimate"
            );
        }
        let Some(paid) = self
            .store
            .paid_answer(fence.work_id)
            .await
            .context("looking for an answer already paid for")?
        else {
            return Ok(None);
        };
        let why = || paid.error.clone().unwrap_or_else(|| paid.outcome.clone());
        Ok(Some(
            match (paid.outcome.as_str(), paid.raw_id, paid.received_at) {
                // Stored as it arrived and never read (its worker died, or lost its
                // claim, waiting to load it): read now, settled, then as on arrival.
                ("received", ..) => {
                    let _load = self.load_permit().await;
                    let Some((attempt, raw)) = self.read_stored(call, paid.call_id, false).await?
                    else {
                        return Ok(None);
                    };
                    info!(
                        raw_response_id = raw.raw_id,
                        "finishing from an answer stored on arrival and never read; no request"
                    );
                    self.conclude(call, paid.call_id, Some(raw), attempt, fence)
                        .await?
                }
                ("ok", Some(raw_id), Some(received_at)) => {
                    let _load = self.load_permit().await;
                    let body = self
                        .store
                        .raw_body(raw_id, received_at)
                        .await
                        .context("reading an answer already paid for")?;
                    match body {
                        Some(body) => {
                            info!(
                                raw_response_id = raw_id,
                                "finishing from an answer already paid for; no request"
                            );
                            let raw = StoredBody {
                                raw_id,
                                sent_at: paid.sent_at,
                                received_at,
                            };
                            self.finish(call, paid.call_id, raw, &body, fence).await?
                        }
                        None => AttemptEnd::Invalid(why()),
                    }
                }
                // Asking again would pay again for the same refusal.
                ("rejected", ..) => AttemptEnd::Rejected(why()),
                _ => AttemptEnd::Invalid(why()),
            },
        ))
    }
}
