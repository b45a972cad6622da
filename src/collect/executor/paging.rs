//! A list answer's page concluded: what it says of its listing (`total_count`,
//! `items_count`, `search_after_token`) completes its work item and enqueues the next
//! page in one transaction (`Store::complete_page`), whichever path reached it: the
//! answer on arrival, an answer bought today reused, or one a dead claim paid for.

use anyhow::Context as _;
use serde_json::Value;
use tracing::{info, warn};

use super::{AttemptEnd, Executor};
use crate::plan::CallSpec;
use crate::plan::paging::Answered;
use crate::store::Fence;
use crate::warehouse::normalize::Batch;

impl Executor {
    /// Completes the page `fence` holds from its stored answer `body` (ledger row
    /// `call_id`) with its rows (`batch`, normalized from it), and enqueues the next
    /// one; an answer with no result is an empty page.
    pub(super) async fn finish_page(
        &self,
        call: &CallSpec,
        call_id: i64,
        body: &Value,
        fence: Fence,
        batch: &Batch,
    ) -> anyhow::Result<AttemptEnd> {
        let answer = Answered::read(body).unwrap_or_else(Answered::empty);
        let done = self
            .store
            .complete_page(fence, call_id, call.endpoint, &answer, batch)
            .await
            .context("completing a page of a listing")?;
        let Some((step, rows)) = done else {
            return Ok(AttemptEnd::Stale);
        };
        if let Some(m) = &self.metrics {
            m.record_rows(call.endpoint.name(), rows);
            m.record_set_aside(call.endpoint.name(), batch.rejected.len());
        }
        let page = &step.this;
        if page.total_changed {
            warn!(
                page = page.page,
                first_total = page.first_total,
                total_count = page.total_count,
                "the listing's total_count changed while it was paged: its pages may miss or repeat a link at their boundaries (work.paging.total_changed)"
            );
        }
        if let Some(next) = &step.next {
            info!(
                page = page.page,
                next = next.page.page,
                rows_so_far = next.page.rows_before,
                "page stored; the next page is queued"
            );
        }
        Ok(AttemptEnd::Stored { rows })
    }
}
