//! `replay`: rebuilds the normalized tables from stored raw responses, oldest first,
//! without a single API call. Each response is its own transaction; one that fails to
//! normalize is reported and skipped. Answers that could not be read when they arrived
//! (`invalid_response`) are replayed too, so they load once the code can read them
//! (a body kept only as bytes, `raw_responses.unparsed`, is passed over);
//! so are items set aside (`rejected_items`): a response's rows there are replaced by
//! the items it still cannot read, and the others load.

use anyhow::Context as _;
use chrono::NaiveDate;
use tracing::instrument;

use crate::api::Endpoint;
use crate::store::Store;
use crate::warehouse::normalize::{self, Context};

/// What `replay` did.
#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    pub responses: u64,
    pub rows: u64,
    /// Items still set aside: they cannot be read yet.
    pub set_aside: u64,
    pub failures: Vec<String>,
}

/// Replays the raw responses of `endpoints` received on or after `since` (UTC day).
#[instrument(skip_all)]
pub async fn replay(
    store: &Store,
    endpoints: &[Endpoint],
    since: Option<NaiveDate>,
) -> anyhow::Result<ReplayReport> {
    let mut report = ReplayReport::default();
    let mut after = 0;
    loop {
        let page = store
            .raw_responses_after(after, endpoints, since, 500)
            .await
            .context("reading raw responses")?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for raw in &page {
            report.responses += 1;
            let ctx = Context {
                endpoint: raw.endpoint,
                raw_response_id: raw.id,
                collected_at: raw.received_at,
                sent_at: raw.sent_at,
                settle: crate::store::queue::settle_from_seconds(raw.settle_seconds)
                    .unwrap_or_else(|| raw.endpoint.default_settle()),
                request: &raw.request,
            };
            match normalize::normalize(&ctx, &raw.body) {
                Ok(batch) => {
                    report.set_aside += batch.rejected.len() as u64;
                    report.rows += store
                        .store_normalized(&batch)
                        .await
                        .with_context(|| format!("writing the rows of raw response {}", raw.id))?;
                }
                Err(e) => report
                    .failures
                    .push(format!("raw response {}: {e}", raw.id)),
            }
        }
    }
    Ok(report)
}
