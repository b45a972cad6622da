//! Purchases, in SQL: the same call (endpoint and task, its `tag` aside) is bought at
//! most once per UTC day and API. The first live attempt to ask buys it; later and
//! concurrent attempts reuse its answer, each with a ledger row of its own (`reused`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::budgets::CallRecord;
use super::{Fence, Store, StoreError};

/// Who buys a call today.
#[derive(Clone, Debug)]
pub enum Purchase {
    /// Bought already today: reuse this answer.
    Reuse(BoughtAnswer),
    /// Bought already today and stored as it arrived, never read (its attempt died,
    /// or is waiting to load it): read it from ledger row `call_id`, then reuse it.
    Unread { call_id: i64 },
    /// This attempt buys it.
    Buy,
    /// Another live attempt is buying it: wait for its answer.
    Wait,
}

#[derive(sqlx::FromRow)]
struct PurchaseRow {
    call_id: Option<i64>,
    outcome: Option<String>,
    sandbox: Option<bool>,
    raw_id: Option<i64>,
    sent_at: Option<DateTime<Utc>>,
    received_at: Option<DateTime<Utc>>,
    body: Option<Value>,
    buyer: Option<i64>,
}

/// An answer already bought, stored raw.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct BoughtAnswer {
    pub call_id: i64,
    pub sandbox: bool,
    pub raw_id: i64,
    /// When the request that bought it was sent.
    pub sent_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub body: Value,
}

impl BoughtAnswer {
    /// Its body, as normalizing it needs to know it.
    pub fn stored_body(&self) -> super::ledger::StoredBody {
        super::ledger::StoredBody {
            raw_id: self.raw_id,
            sent_at: self.sent_at,
            received_at: self.received_at,
        }
    }
}

impl Store {
    /// Who buys this call (endpoint and task, its `tag` aside) today, from this API: an answer already
    /// bought today is reused ([`Purchase::Reuse`]; one stored as it arrived and not
    /// read yet is to be read first, [`Purchase::Unread`]); else the first live attempt to ask
    /// is the buyer ([`Purchase::Buy`]) and the others wait for its answer
    /// ([`Purchase::Wait`]). A buyer whose claim is gone (its answer failed, its process
    /// died) is replaced by the next attempt that asks.
    pub async fn purchase(
        &self,
        endpoint: &str,
        task: &Value,
        api_host: &str,
        sandbox: bool,
        fence: Fence,
    ) -> Result<Purchase, StoreError> {
        purchase_on(self.pool(), endpoint, task, api_host, sandbox, fence).await
    }

    /// Forgets the buyers of past days.
    pub async fn prune_purchases(&self) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM linkledger.purchases WHERE day < (now() AT TIME ZONE 'UTC')::date - 1",
        )
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// Writes the ledger row of a call answered from `reused` instead of being bought
    /// (nothing sent, nothing booked), only while the claim `fence` holds. `None` when
    /// the claim was lost.
    pub async fn record_reused(
        &self,
        call: &CallRecord<'_>,
        fence: Fence,
        reused: &BoughtAnswer,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO linkledger.api_calls
                (run_id, job, collection, endpoint, targets, request, attempt, started_at,
                 outcome, work_id, cost_usd, api_host, sandbox, reused_call_id, duration_ms)
             SELECT $1, $2, $3, $4, $5, $6, $7, now(), 'reused', $8, 0, $9, $10, $11, 0
             WHERE EXISTS (SELECT 1 FROM linkledger.work
                           WHERE id = $8 AND attempt = $7 AND state = 'running')
             RETURNING id",
        )
        .bind(call.run_id)
        .bind(call.job)
        .bind(call.collection)
        .bind(call.endpoint)
        .bind(call.targets)
        .bind(call.request)
        .bind(call.attempt)
        .bind(fence.work_id)
        .bind(call.api_host)
        .bind(reused.sandbox)
        .bind(reused.call_id)
        .fetch_optional(self.pool())
        .await?)
    }
}

/// [`Store::purchase`]'s statement on `conn` (the pool, or a group's transaction).
pub(super) async fn purchase_on<'e>(
    conn: impl sqlx::PgExecutor<'e>,
    endpoint: &str,
    task: &Value,
    api_host: &str,
    sandbox: bool,
    fence: Fence,
) -> Result<Purchase, StoreError> {
    let row: PurchaseRow = sqlx::query_as(
        "WITH today AS (SELECT (now() AT TIME ZONE 'UTC')::date AS day),
         bought AS (
             SELECT c.id AS call_id, c.outcome, c.sandbox, r.id AS raw_id,
                    c.started_at AS sent_at, r.received_at,
                    -- An answer never read is read under a load permit.
                    CASE WHEN c.outcome = 'ok' THEN r.body END AS body
             FROM linkledger.api_calls c
             JOIN linkledger.raw_responses r ON r.api_call_id = c.id
             -- The tag changes nothing in the answer: tagged or not, one purchase.
             -- By its hash first (api_calls_request_md5_bought_idx), then exactly. An
             -- answer stored as it arrived (`received`) is bought too.
             WHERE c.endpoint = $1 AND c.outcome IN ('ok', 'received')
               AND md5((c.request - 'tag')::text) = md5(($2::jsonb - 'tag')::text)
               AND c.request - 'tag' = $2::jsonb - 'tag'
               AND c.api_host IS NOT DISTINCT FROM $3
               -- A sandbox answer never stands in for a real one.
               AND (NOT c.sandbox OR $6)
               AND c.started_at >= (SELECT day FROM today)::timestamp AT TIME ZONE 'UTC'
               -- (answered after it started: this bound lets the planner read
               -- only this month's partition of raw_responses)
               AND r.received_at >= (SELECT day FROM today)::timestamp AT TIME ZONE 'UTC'
             ORDER BY c.outcome = 'ok' DESC, c.id DESC LIMIT 1),
         buyer AS (
             INSERT INTO linkledger.purchases AS p
                 (day, api_host, endpoint, request_md5, work_id, attempt)
             SELECT t.day, $3, $1, md5(($2::jsonb - 'tag')::text), $4, $5
             FROM today t WHERE NOT EXISTS (SELECT 1 FROM bought)
             ON CONFLICT (day, api_host, endpoint, request_md5) DO UPDATE
                 SET work_id = EXCLUDED.work_id, attempt = EXCLUDED.attempt
             WHERE (p.work_id = EXCLUDED.work_id AND p.attempt = EXCLUDED.attempt)
                OR NOT EXISTS (SELECT 1 FROM linkledger.work w
                               WHERE w.id = p.work_id AND w.attempt = p.attempt
                                 AND w.state = 'running' AND w.lease_expires_at > now())
             RETURNING p.work_id)
         SELECT b.call_id, b.outcome, b.sandbox, b.raw_id, b.sent_at, b.received_at, b.body,
                (SELECT work_id FROM buyer) AS buyer
         FROM (SELECT 1) AS one LEFT JOIN bought b ON true",
    )
    .bind(endpoint)
    .bind(task)
    .bind(api_host)
    .bind(fence.work_id)
    .bind(fence.attempt)
    .bind(sandbox)
    .fetch_one(conn)
    .await?;
    Ok(match row {
        PurchaseRow {
            call_id: Some(call_id),
            outcome: Some(outcome),
            ..
        } if outcome == "received" => Purchase::Unread { call_id },
        PurchaseRow {
            call_id: Some(call_id),
            sandbox: Some(sandbox),
            raw_id: Some(raw_id),
            sent_at: Some(sent_at),
            received_at: Some(received_at),
            body: Some(body),
            ..
        } => Purchase::Reuse(BoughtAnswer {
            call_id,
            sandbox,
            raw_id,
            sent_at,
            received_at,
            body,
        }),
        PurchaseRow { buyer: Some(b), .. } if b == fence.work_id => Purchase::Buy,
        _ => Purchase::Wait,
    })
}
