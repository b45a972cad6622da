//! A listing's pages in SQL: an answered page's work item completes with its rows,
//! fenced by its claim's attempt, and in the same transaction records what its answer said of the
//! listing (`work.paging`) and enqueues the listing's next page (`plan::paging::step`),
//! so a listing resumes at the page it stopped at, and no page is enqueued twice: the
//! next page exists only once its page has succeeded, by the one claim that held it.

use serde_json::Value;
use tracing::instrument;

use super::{Fence, Store, StoreError, warehouse};
use crate::api::Endpoint;
use crate::plan::paging::{self, Answered, Page, Step};
use crate::warehouse::normalize::Batch;

impl Store {
    /// Completes the page `fence` holds (its ledger row `call_id`) with its rows
    /// (`batch`, the list table of its item kind) and what its answer says, and enqueues the next page of its listing when there is one and
    /// its run still runs (a cancelled or interrupted run buys no more pages). The
    /// step taken, or `None` when the claim was lost (nothing written). A list item
    /// without a page state (enqueued by hand) completes as a listing of one page.
    #[instrument(skip_all, fields(work_id = fence.work_id, attempt = fence.attempt))]
    pub async fn complete_page(
        &self,
        fence: Fence,
        call_id: i64,
        endpoint: Endpoint,
        answer: &Answered,
        batch: &Batch,
    ) -> Result<Option<(Step, u64)>, StoreError> {
        self.partitions_for(batch).await?;
        let mut tx = self.pool().begin().await?;
        let held: Option<(Value, Option<Value>)> = sqlx::query_as(
            "SELECT task, paging FROM linkledger.work
             WHERE id = $1 AND attempt = $2 AND state = 'running' FOR UPDATE",
        )
        .bind(fence.work_id)
        .bind(fence.attempt)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((task, state)) = held else {
            tx.rollback().await?;
            return Ok(None);
        };
        let step = match state.as_ref().and_then(Page::from_json) {
            Some(page) => paging::step(endpoint, &task, &page, answer),
            None => Step {
                this: Page::default(),
                next: None,
            },
        };
        let this = state.is_some().then(|| step.this.to_json());
        let rows = warehouse::write_batch(&mut tx, batch).await?;
        sqlx::query(
            "WITH c AS (UPDATE linkledger.api_calls SET rows_written = $5 WHERE id = $4)
             UPDATE linkledger.work SET state = 'succeeded', rows_written = $5, finished_at = now(),
                    lease_expires_at = NULL, last_error = NULL, paging = coalesce($3, paging)
             WHERE id = $1 AND attempt = $2",
        )
        .bind(fence.work_id)
        .bind(fence.attempt)
        .bind(this)
        .bind(call_id)
        .bind(rows as i64)
        .execute(&mut *tx)
        .await?;
        if let Some(next) = &step.next {
            sqlx::query(
                "INSERT INTO linkledger.work
                    (run_id, run_kind, fire_id, job, collection, endpoint, targets, task,
                     estimated_rows, settle_seconds, max_attempts, paging)
                 SELECT w.run_id, w.run_kind, w.fire_id, w.job, w.collection, w.endpoint,
                        w.targets, $2, $3, w.settle_seconds, w.max_attempts, $4
                 FROM linkledger.work w JOIN linkledger.runs r ON r.id = w.run_id
                 WHERE w.id = $1 AND r.status = 'running' AND r.cancelled_at IS NULL",
            )
            .bind(fence.work_id)
            .bind(&next.task)
            .bind(next.estimated_rows)
            .bind(next.page.to_json())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some((step, rows)))
    }
}
