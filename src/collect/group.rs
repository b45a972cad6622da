//! Group commit for the workers of one process: the writes of one kind that
//! concurrent calls make (who buys a call, bookings, answers with their raw bodies,
//! completions with their rows, slots given back, runs closed) gathered into groups,
//! each written by `store::group` in one transaction and one commit. Each call waits
//! for its own group's commit, so a booking is durable before its request leaves and
//! a raw body before anything else waits, as when each call wrote alone.
//!
//! One writer per kind: a group is the members that came while the previous group of
//! its kind was being written (the usual group commit: at low load a group is one call
//! and waits for nothing), plus those that come within `window` of its first (at most
//! 2 ms; none by default), at most `max` members. `None` from a group (its writer is
//! gone) or a member's error lets the caller write alone, as it would without groups.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::api_slots::SlotLease;
use crate::store::group::{AnswerMember, BookMember, CompleteMember, PurchaseMember};
use crate::store::{Purchase, SlotBooking, Store, StoreError};

/// The longest a group waits for more members once its first came.
pub const MAX_WINDOW: Duration = Duration::from_millis(2);

type Job<Req, Resp> = (Req, oneshot::Sender<Resp>);

/// Gathers requests into groups and writes each group with one call of its writer.
struct Batcher<Req, Resp> {
    tx: mpsc::UnboundedSender<Job<Req, Resp>>,
}

impl<Req: Send + 'static, Resp: Send + 'static> Batcher<Req, Resp> {
    /// A writer task that lives as long as the batcher: `write` takes a group's
    /// requests and gives each its answer, in order.
    fn start<F, Fut>(window: Duration, max: usize, write: F) -> Batcher<Req, Resp>
    where
        F: Fn(Vec<Req>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Vec<Resp>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job<Req, Resp>>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                let deadline = tokio::time::Instant::now() + window;
                while jobs.len() < max {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(mpsc::error::TryRecvError::Empty) if !window.is_zero() => {
                            match tokio::time::timeout_at(deadline, rx.recv()).await {
                                Ok(Some(job)) => jobs.push(job),
                                _ => break,
                            }
                        }
                        Err(_) => break,
                    }
                }
                let (reqs, answers): (Vec<Req>, Vec<oneshot::Sender<Resp>>) =
                    jobs.into_iter().unzip();
                for (answer, resp) in answers.into_iter().zip(write(reqs).await) {
                    // A caller that went away (a shutdown) needs no answer.
                    let _ = answer.send(resp);
                }
            }
        });
        Batcher { tx }
    }

    /// This request's answer once its group is written; `None` when the writer is
    /// gone.
    async fn call(&self, req: Req) -> Option<Resp> {
        let (answer, wait) = oneshot::channel();
        self.tx.send((req, answer)).ok()?;
        wait.await.ok()
    }
}

/// The groups of one process's workers. Cheap to clone.
#[derive(Clone)]
pub struct Groups(Arc<Inner>);

/// A member given back with what writing it came to.
pub type Answered<M, T> = (M, Result<T, StoreError>);

struct Inner {
    purchase: Batcher<PurchaseMember, Result<Purchase, StoreError>>,
    book: Batcher<BookMember, Result<SlotBooking, StoreError>>,
    answer: Batcher<AnswerMember, Answered<AnswerMember, Option<i64>>>,
    complete: Batcher<CompleteMember, Answered<CompleteMember, Option<u64>>>,
    release: Batcher<SlotLease, Result<bool, StoreError>>,
    close: Batcher<i64, Result<bool, StoreError>>,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups").finish_non_exhaustive()
    }
}

/// A completion's rows above this are written alone: a large answer's load is long,
/// and loads run side by side (`DEFAULT_LOADS`), not one after another in a group.
pub const GROUP_ROWS: usize = 2_000;

impl Groups {
    /// Writers for every kind, on `store`; `window` at most [`MAX_WINDOW`], `max` at
    /// least 1.
    pub fn start(store: Store, window: Duration, max: usize) -> Groups {
        let window = window.min(MAX_WINDOW);
        let max = max.max(1);
        let purchase = {
            let store = store.clone();
            Batcher::start(window, max, move |m: Vec<PurchaseMember>| {
                let store = store.clone();
                async move { store.write_group(&m).await }
            })
        };
        let book = {
            let store = store.clone();
            Batcher::start(window, max, move |m: Vec<BookMember>| {
                let store = store.clone();
                async move { store.write_group(&m).await }
            })
        };
        let answer = {
            let store = store.clone();
            Batcher::start(window, max, move |m: Vec<AnswerMember>| {
                let store = store.clone();
                async move {
                    let results = store.write_group(&m).await;
                    m.into_iter().zip(results).collect()
                }
            })
        };
        let complete = {
            let store = store.clone();
            Batcher::start(window, max, move |m: Vec<CompleteMember>| {
                let store = store.clone();
                async move {
                    let results = store.complete_group(&m).await;
                    m.into_iter().zip(results).collect()
                }
            })
        };
        let release = {
            let store = store.clone();
            Batcher::start(window, max, move |leases: Vec<SlotLease>| {
                let store = store.clone();
                async move {
                    match store.release_api_slots(&leases).await {
                        Ok(freed) if freed.len() == leases.len() => {
                            freed.into_iter().map(Ok).collect()
                        }
                        Ok(_) => leases
                            .iter()
                            .map(|_| {
                                Err(StoreError::Group(
                                    "slots released: a count that does not match".into(),
                                ))
                            })
                            .collect(),
                        Err(e) => {
                            let why = e.to_string();
                            leases
                                .iter()
                                .map(|_| Err(StoreError::Group(why.clone())))
                                .collect()
                        }
                    }
                }
            })
        };
        let close = Batcher::start(window, max, move |runs: Vec<i64>| {
            let store = store.clone();
            async move { store.close_runs_if_done(&runs).await }
        });
        Groups(Arc::new(Inner {
            purchase,
            book,
            answer,
            complete,
            release,
            close,
        }))
    }

    pub async fn purchase(&self, m: PurchaseMember) -> Option<Result<Purchase, StoreError>> {
        self.0.purchase.call(m).await
    }

    pub async fn book(&self, m: BookMember) -> Option<Result<SlotBooking, StoreError>> {
        self.0.book.call(m).await
    }

    /// The member back, with its raw body's id.
    pub async fn answer(&self, m: AnswerMember) -> Option<Answered<AnswerMember, Option<i64>>> {
        self.0.answer.call(m).await
    }

    /// The member back, with the rows written (`None`: the claim was lost).
    pub async fn complete(
        &self,
        m: CompleteMember,
    ) -> Option<Answered<CompleteMember, Option<u64>>> {
        self.0.complete.call(m).await
    }

    pub async fn release(&self, lease: SlotLease) -> Option<Result<bool, StoreError>> {
        self.0.release.call(lease).await
    }

    /// Whether this call closed the run.
    pub async fn close(&self, run_id: i64) -> Option<Result<bool, StoreError>> {
        self.0.close.call(run_id).await
    }
}
