//! Group commit, in SQL: the writes of one kind that concurrent calls make (bookings,
//! answers with their raw bodies, completions with their rows, purchases, slots given
//! back, runs closed) written in one transaction and one commit, each member's
//! statement the one it would send alone. `collect::group` gathers the members; each
//! call waits for its group's commit, so what it waits for is as durable as its own
//! commit would have made it.
//!
//! One member's failure is its own: its statement failing rolls the transaction back
//! (nothing of the group is written) and the group is written again without it, so the
//! others neither fail nor are written twice. A deadlock writes the whole group again,
//! twice at most. A commit that fails leaves every member not knowing whether it was
//! written ([`StoreError::Group`]); each statement here is fenced or idempotent, so
//! each caller may write its member again alone (a booking is not: its caller retries
//! the call with a new claim, as after any booking that failed).

use std::future::Future;

use serde_json::Value;
use sqlx::PgConnection;

use super::api_slots::SlotLease;
use super::budgets::{Booking, CallRecord, SlotAsk, SlotBooking, book_on};
use super::ledger::{Settlement, answer_on};
use super::purchases::{Purchase, purchase_on};
use super::queue::{close_run, complete_in};
use super::{Fence, Store, StoreError, warehouse};
use crate::api::Attempt;
use crate::warehouse::normalize::Batch;

/// One call's write in a group: the statement it would send alone, on the group's
/// transaction.
pub trait Member: Send + Sync {
    type Out: Send;
    /// Its write is one statement: a group of one sends it alone, with no
    /// transaction around it (one round trip, as without groups).
    const ONE_STATEMENT: bool = true;
    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
    ) -> impl Future<Output = Result<Self::Out, StoreError>> + Send + 'a;
}

/// How many times a group that met a deadlock is written again.
const DEADLOCK_TRIES: usize = 2;

impl Store {
    /// Writes `members` in one transaction and one commit; each member's result in
    /// its order. A member whose statement fails gets its error and the rest are
    /// written again without it.
    pub async fn write_group<M: Member>(&self, members: &[M]) -> Vec<Result<M::Out, StoreError>> {
        if let [member] = members
            && M::ONE_STATEMENT
        {
            let alone = async {
                let mut conn = self.pool().acquire().await?;
                member.write(&mut conn).await
            };
            return vec![alone.await];
        }
        let mut done: Vec<Option<Result<M::Out, StoreError>>> =
            members.iter().map(|_| None).collect();
        let mut deadlocks = 0;
        'group: loop {
            let live: Vec<usize> = (0..members.len()).filter(|i| done[*i].is_none()).collect();
            if live.is_empty() {
                break;
            }
            let mut tx = match self.pool().begin().await {
                Ok(tx) => tx,
                Err(e) => {
                    let why = e.to_string();
                    for i in live {
                        done[i] = Some(Err(StoreError::Group(why.clone())));
                    }
                    break;
                }
            };
            let mut outs = Vec::with_capacity(live.len());
            for &i in &live {
                match members[i].write(&mut tx).await {
                    Ok(out) => outs.push((i, out)),
                    Err(e) => {
                        if e.is_deadlock() && deadlocks < DEADLOCK_TRIES {
                            deadlocks += 1;
                        } else {
                            done[i] = Some(Err(e));
                        }
                        // Nothing of the group is written; the others go again.
                        let _ = tx.rollback().await;
                        continue 'group;
                    }
                }
            }
            match tx.commit().await {
                Ok(()) => {
                    for (i, out) in outs {
                        done[i] = Some(Ok(out));
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    for (i, _) in outs {
                        done[i] = Some(Err(StoreError::Group(why.clone())));
                    }
                }
            }
            break;
        }
        done.into_iter()
            .map(|d| d.expect("each member is written or has failed"))
            .collect()
    }

    /// Completes the members' work items with their rows, one transaction for all
    /// ([`Store::complete_with_rows`] for each): the claims checked and locked, the
    /// rows of all written and the items completed in one statement of each kind
    /// when no two members write the same row; else, or when that fails, each
    /// member's own statements in one transaction ([`Store::write_group`]), which
    /// finds the member that failed.
    pub async fn complete_group(
        &self,
        members: &[CompleteMember],
    ) -> Vec<Result<Option<u64>, StoreError>> {
        for m in members {
            if let Err(e) = self.partitions_for(&m.batch).await {
                let why = e.to_string();
                return members
                    .iter()
                    .map(|_| Err(StoreError::Group(why.clone())))
                    .collect();
            }
        }
        if members.len() > 1 {
            let batches: Vec<&Batch> = members.iter().map(|m| &m.batch).collect();
            if warehouse::distinct_keys(&batches)
                && let Ok(done) = self.complete_merged(members).await
            {
                return done.into_iter().map(Ok).collect();
            }
        }
        self.write_group(members).await
    }

    /// [`Store::complete_group`] in one statement of each kind for all the members.
    async fn complete_merged(
        &self,
        members: &[CompleteMember],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        let ids: Vec<i64> = members.iter().map(|m| m.fence.work_id).collect();
        let attempts: Vec<i32> = members.iter().map(|m| m.fence.attempt).collect();
        let mut tx = self.pool().begin().await?;
        // The claims that still hold, locked in one order (as one claim's completion
        // locks its own row).
        let held: Vec<i64> = sqlx::query_scalar(
            "SELECT w.id FROM linkledger.work w
             JOIN UNNEST($1::bigint[], $2::int[]) AS m(id, attempt)
               ON w.id = m.id AND w.attempt = m.attempt
             WHERE w.state = 'running'
             ORDER BY w.id FOR UPDATE OF w",
        )
        .bind(&ids)
        .bind(&attempts)
        .fetch_all(&mut *tx)
        .await?;
        let written: Vec<Option<u64>> = members
            .iter()
            .map(|m| {
                held.contains(&m.fence.work_id)
                    .then(|| m.batch.row_count() as u64)
            })
            .collect();
        let live: Vec<(&CompleteMember, u64)> = members
            .iter()
            .zip(&written)
            .filter_map(|(m, w)| w.map(|rows| (m, rows)))
            .collect();
        if !live.is_empty() {
            let batches: Vec<&Batch> = live.iter().map(|(m, _)| &m.batch).collect();
            warehouse::write_batches(&mut tx, &batches).await?;
            let ids: Vec<i64> = live.iter().map(|(m, _)| m.fence.work_id).collect();
            let attempts: Vec<i32> = live.iter().map(|(m, _)| m.fence.attempt).collect();
            let rows: Vec<i64> = live.iter().map(|(_, rows)| *rows as i64).collect();
            let calls: Vec<i64> = live.iter().map(|(m, _)| m.call_id).collect();
            sqlx::query(
                "WITH m AS (SELECT * FROM UNNEST($1::bigint[], $2::int[], $3::bigint[], $4::bigint[])
                            AS m(id, attempt, rows, call_id)),
                      c AS (UPDATE linkledger.api_calls a SET rows_written = m.rows
                            FROM m WHERE a.id = m.call_id)
                 UPDATE linkledger.work w SET state = 'succeeded', rows_written = m.rows,
                        finished_at = now(), lease_expires_at = NULL, last_error = NULL
                 FROM m WHERE w.id = m.id AND w.attempt = m.attempt",
            )
            .bind(&ids)
            .bind(&attempts)
            .bind(&rows)
            .bind(&calls)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Closes the runs that are done ([`Store::close_run_if_done`]), each run once
    /// however many members name it: `true` for the member that closed it.
    pub async fn close_runs_if_done(&self, runs: &[i64]) -> Vec<Result<bool, StoreError>> {
        let mut distinct: Vec<CloseMember> = Vec::new();
        for run in runs {
            if !distinct.iter().any(|m| m.0 == *run) {
                distinct.push(CloseMember(*run));
            }
        }
        let mut closed: Vec<(i64, Result<bool, StoreError>)> = distinct
            .iter()
            .map(|m| m.0)
            .zip(self.write_group(&distinct).await)
            .collect();
        runs.iter()
            .map(|run| match closed.iter_mut().find(|(r, _)| r == run) {
                // The first member of a run takes its result; the others closed nothing.
                Some((_, result)) => std::mem::replace(result, Ok(false)),
                None => Ok(false),
            })
            .collect()
    }

    /// Gives these slots back, in one statement ([`Store::release_api_slot`] for
    /// each, in order): whether each acquisition still held its slot.
    pub async fn release_api_slots(&self, leases: &[SlotLease]) -> Result<Vec<bool>, StoreError> {
        let slots: Vec<i32> = leases.iter().map(|l| l.slot).collect();
        let tokens: Vec<i64> = leases.iter().map(|l| l.token).collect();
        Ok(sqlx::query_scalar(
            "SELECT linkledger.release_api_slot(l.slot, l.token)
             FROM UNNEST($1::int[], $2::bigint[]) WITH ORDINALITY AS l(slot, token, n)
             ORDER BY l.n",
        )
        .bind(&slots)
        .bind(&tokens)
        .fetch_all(self.pool())
        .await?)
    }
}

/// A shared API slot asked for with a booking, owned ([`SlotAsk`]).
#[derive(Clone, Debug)]
pub struct OwnedSlotAsk {
    pub holder: String,
    pub max_in_flight: i32,
    pub max_per_minute: i64,
    pub lease: std::time::Duration,
}

/// A booking in a group ([`Store::book_with_slot`]): its ledger row, its reservation
/// and its slot, only while its claim holds.
#[derive(Clone, Debug)]
pub struct BookMember {
    pub run_id: Option<i64>,
    pub job: Option<String>,
    pub collection: Option<String>,
    pub endpoint: String,
    pub targets: Vec<String>,
    pub request: Value,
    pub attempt: i32,
    pub api_host: Option<String>,
    pub fence: Option<Fence>,
    pub booking: Booking,
    pub slot: Option<OwnedSlotAsk>,
}

impl BookMember {
    pub fn new(
        call: &CallRecord<'_>,
        fence: Option<Fence>,
        booking: Booking,
        slot: Option<&SlotAsk<'_>>,
    ) -> BookMember {
        BookMember {
            run_id: call.run_id,
            job: call.job.map(str::to_string),
            collection: call.collection.map(str::to_string),
            endpoint: call.endpoint.to_string(),
            targets: call.targets.to_vec(),
            request: call.request.clone(),
            attempt: call.attempt,
            api_host: call.api_host.map(str::to_string),
            fence,
            booking,
            slot: slot.map(|s| OwnedSlotAsk {
                holder: s.holder.to_string(),
                max_in_flight: s.max_in_flight,
                max_per_minute: s.max_per_minute,
                lease: s.lease,
            }),
        }
    }
}

impl Member for BookMember {
    type Out = SlotBooking;
    async fn write(&self, conn: &mut PgConnection) -> Result<SlotBooking, StoreError> {
        let record = CallRecord {
            run_id: self.run_id,
            job: self.job.as_deref(),
            collection: self.collection.as_deref(),
            endpoint: &self.endpoint,
            targets: &self.targets,
            request: &self.request,
            attempt: self.attempt,
            api_host: self.api_host.as_deref(),
        };
        let ask = self.slot.as_ref().map(|s| SlotAsk {
            holder: &s.holder,
            max_in_flight: s.max_in_flight,
            max_per_minute: s.max_per_minute,
            lease: s.lease,
        });
        book_on(conn, &record, self.fence, &self.booking, ask.as_ref()).await
    }
}

/// An answer in a group ([`Store::record_answer`]): the ledger row completed, its
/// reservation settled, its raw body stored. Never a body spilled to a file (that one
/// is copied in its own transaction).
#[derive(Debug)]
pub struct AnswerMember {
    pub call_id: i64,
    pub endpoint: &'static str,
    pub attempt: Attempt,
    pub keep_raw: bool,
    pub settlement: Settlement,
}

impl Member for AnswerMember {
    /// The raw body's id.
    type Out = Option<i64>;
    async fn write(&self, conn: &mut PgConnection) -> Result<Option<i64>, StoreError> {
        debug_assert!(self.attempt.spilled.is_none() || !self.keep_raw);
        let (raw_id, _) = answer_on(
            conn,
            self.call_id,
            self.endpoint,
            &self.attempt,
            self.keep_raw,
            &self.settlement,
            false,
        )
        .await?;
        Ok(raw_id)
    }
}

/// A completion in a group ([`Store::complete_with_rows`]): the rows written and the
/// work item completed, only while its claim holds (`None` when it was lost).
#[derive(Debug)]
pub struct CompleteMember {
    pub fence: Fence,
    pub call_id: i64,
    pub batch: Batch,
}

impl Member for CompleteMember {
    type Out = Option<u64>;
    const ONE_STATEMENT: bool = false;
    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send + 'a {
        complete_in(conn, self.fence, self.call_id, &self.batch)
    }
}

/// Who buys a call today, in a group ([`Store::purchase`]).
#[derive(Clone, Debug)]
pub struct PurchaseMember {
    pub endpoint: String,
    pub task: Value,
    pub api_host: String,
    pub sandbox: bool,
    pub fence: Fence,
}

impl Member for PurchaseMember {
    type Out = Purchase;
    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
    ) -> impl Future<Output = Result<Purchase, StoreError>> + Send + 'a {
        purchase_on(
            conn,
            &self.endpoint,
            &self.task,
            &self.api_host,
            self.sandbox,
            self.fence,
        )
    }
}

/// A run closed once its work is done, in a group.
#[derive(Clone, Copy, Debug)]
struct CloseMember(i64);

impl Member for CloseMember {
    type Out = bool;
    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'a {
        close_run(conn, self.0, None)
    }
}
