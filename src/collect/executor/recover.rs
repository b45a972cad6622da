//! Answers already paid for: an answer bought today reused instead of bought again,
//! and a re-claimed item settled from the answer its earlier claim paid for (data from
//! `raw_responses`, a refusal or an unreadable answer as it was), never bought twice.

use anyhow::Context as _;
use tracing::{info, instrument, warn};

use super::{AttemptEnd, Executor};
use crate::money::Usd;
use crate::plan::CallSpec;
use crate::store::{CallRecord, Fence, Purchase};

impl Executor {
    /// Finishes the item from an answer bought today for the same endpoint and task
    /// (another collection's, or an earlier fire's), recording the reuse in the ledger;
    /// or, while another attempt is buying it, waits for that answer: the same data is
    /// never bought twice in a UTC day. `None` when this attempt is to buy it.
    pub(super) async fn reuse(
        &self,
        call: &CallSpec,
        record: &CallRecord<'_>,
        fence: Fence,
    ) -> anyhow::Result<Option<AttemptEnd>> {
        let bought = match self
            .store
            .purchase(
                record.endpoint,
                record.request,
                self.client.api_host(),
                self.client.is_sandbox(),
                fence,
            )
            .await
            .context("looking for an answer bought today")?
        {
            Purchase::Buy => return Ok(None),
            Purchase::Wait => {
                return Ok(Some(AttemptEnd::Retry {
                    throttled: true,
                    error: "the same call is being bought by another collection or fire; waiting to reuse its answer".into(),
                }));
            }
            Purchase::Reuse(bought) => bought,
        };
        let Some(call_id) = self
            .store
            .record_reused(record, fence, &bought)
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
            self.finish(
                call,
                call_id,
                bought.raw_id,
                bought.received_at,
                &bought.body,
                fence,
            )
            .await?,
        ))
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
            match (
                paid.outcome.as_str(),
                paid.raw_id,
                paid.received_at,
                &paid.body,
            ) {
                ("ok", Some(raw_id), Some(received_at), Some(body)) => {
                    info!(
                        raw_response_id = raw_id,
                        "finishing from an answer already paid for; no request"
                    );
                    self.finish(call, paid.call_id, raw_id, received_at, body, fence)
                        .await?
                }
                // Asking again would pay again for the same refusal.
                ("rejected", ..) => AttemptEnd::Rejected(why()),
                _ => AttemptEnd::Invalid(why()),
            },
        ))
    }
}
