//! A listing's pages in SQL: an answered page's work item completes with its rows,
//! fenced by its claim's attempt, and in the same transaction records what its answer said of the
//! listing (`work.paging`) and enqueues the listing's next page (`plan::paging::step`),
//! so a listing resumes at the page it stopped at, and no page is enqueued twice: the
//! next page exists only once its page has succeeded, by the one claim that held it.

use serde_json::Value;
use tracing::instrument;

use super::{Fence, Store, StoreError, warehouse};
use crate::api::Endpoint;
use crate::plan::CallSpec;
use crate::plan::listing::{ListingSizes, TargetCounts};
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

    /// What is stored of the size of the listings `calls` (first pages) ask for
    /// (`plan::listing`): the `total_count` the last answered first page of the same
    /// request gave, and the newest `summary` counts of their targets.
    #[instrument(skip_all, fields(calls = calls.len()))]
    pub async fn listing_sizes(&self, calls: &[CallSpec]) -> Result<ListingSizes, StoreError> {
        let mut sizes = ListingSizes::default();
        let listings: Vec<&CallSpec> = calls.iter().filter(|c| c.max_rows.is_some()).collect();
        if listings.is_empty() {
            return Ok(sizes);
        }
        let endpoints: Vec<&str> = listings.iter().map(|c| c.endpoint.name()).collect();
        let tasks: Vec<Value> = listings.iter().map(|c| c.task.clone()).collect();
        let totals: Vec<(String, Value, i64)> = sqlx::query_as(
            "SELECT DISTINCT ON (w.endpoint, w.task) w.endpoint, w.task,
                    (w.paging->>'total_count')::bigint
             FROM linkledger.work w
             JOIN UNNEST($1::text[], $2::jsonb[]) AS p(endpoint, task)
               ON w.endpoint = p.endpoint AND w.task = p.task
             WHERE w.state = 'succeeded' AND w.paging->>'page' = '1'
               AND w.paging ? 'total_count'
             ORDER BY w.endpoint, w.task, w.finished_at DESC",
        )
        .bind(&endpoints)
        .bind(&tasks)
        .fetch_all(self.pool())
        .await?;
        for (endpoint, task, total) in totals {
            if let (Ok(endpoint), Ok(total)) = (endpoint.parse::<Endpoint>(), u64::try_from(total))
            {
                sizes.record_total(endpoint, &task, total);
            }
        }
        let mut targets: Vec<String> = listings
            .iter()
            .flat_map(|c| c.targets.iter().map(|t| t.as_str().to_string()))
            .collect();
        targets.sort();
        targets.dedup();
        type Counts = (String, Option<i64>, Option<i64>, Option<i64>, Option<i64>);
        let counts: Vec<Counts> = sqlx::query_as(
            "SELECT DISTINCT ON (target) target, backlinks, backlinks_nofollow,
                    referring_domains, crawled_pages
             FROM linkledger.summary WHERE target = ANY($1)
             ORDER BY target, collected_on DESC, collected_at DESC",
        )
        .bind(&targets)
        .fetch_all(self.pool())
        .await?;
        for (target, backlinks, backlinks_nofollow, referring_domains, crawled_pages) in counts {
            sizes.record_counts(
                &target,
                TargetCounts {
                    backlinks,
                    backlinks_nofollow,
                    referring_domains,
                    crawled_pages,
                },
            );
        }
        Ok(sizes)
    }
}
