//! The state the handlers share: the options, the counters ([`Stats`]), the open
//! requests, the per-minute window, the fault generator, the sandbox's "today", the log
//! of recent requests and the task ids; and how an answer is charged and recorded.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use rand::rngs::StdRng;
use rust_decimal::Decimal;
use serde_json::Value;
use tokio::time::Instant;

use super::account::{AccountLimits, Book};
use super::envelope::json_text;
use super::{RequestRecord, SandboxOptions, Stats, list_price};
use crate::api::Endpoint;
use crate::money::Usd;

pub(super) struct Shared {
    pub(super) opts: SandboxOptions,
    /// What the live endpoints hang under: `/v3`, or the gateway's prefix.
    pub(super) live_prefix: String,
    pub(super) state: Mutex<Inner>,
    /// Mixed into task ids.
    pub(super) nonce: u64,
}

pub(super) struct Inner {
    pub(super) stats: Stats,
    /// Requests open right now (authorized POSTs).
    pub(super) open: usize,
    /// Start times of the POSTs accepted in the last minute.
    pub(super) window: VecDeque<Instant>,
    pub(super) rng: StdRng,
    pub(super) fault_rate: f64,
    /// The sandbox's "today" (`SandboxOptions::today`, or moved by `set_today`).
    pub(super) today: Option<NaiveDate>,
    /// The most recent records with their size in bytes, oldest first, at most
    /// `opts.record_limit` of them and `opts.record_bytes` together.
    pub(super) records: VecDeque<(RequestRecord, usize)>,
    /// The bytes `records` hold.
    pub(super) record_bytes: usize,
    /// Tasks answered so far, for task ids.
    pub(super) tasks: u64,
    /// The account's own books: what `user_data` reports as spent and requested.
    pub(super) book: Book,
    /// The account's own spending limits (`SandboxOptions::limits`, or moved by
    /// `Sandbox::set_limits`).
    pub(super) limits: AccountLimits,
}

impl Inner {
    /// The sandbox's "today".
    pub(super) fn today(&self) -> NaiveDate {
        self.today
            .unwrap_or_else(|| chrono::Utc::now().date_naive())
    }
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not take the sandbox down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The price list charged: (per request, per returned row).
    pub(super) fn rate(&self) -> (Usd, Usd) {
        self.opts.prices.unwrap_or_else(list_price)
    }

    /// What a live call returning `rows` rows is charged.
    pub(super) fn price(&self, rows: usize) -> Usd {
        let (per_request, per_row) = self.rate();
        Usd((per_request.decimal() + per_row.decimal() * Decimal::from(rows as u64)).normalize())
    }

    pub(super) fn balance(&self) -> Usd {
        let st = self.lock();
        self.opts.balance - st.stats.charged_usd - st.book.others_usd
    }

    pub(super) fn today(&self) -> NaiveDate {
        self.lock().today()
    }

    /// Another consumer spent from the account (see `Sandbox::other_consumer`).
    pub(super) fn other_consumer(&self, other: &super::OtherConsumer) {
        let mut st = self.lock();
        let today = st.today();
        st.book.others_usd += other.usd;
        st.book.count(
            today,
            &other.api,
            &other.function,
            other.usd,
            other.requests,
        );
    }

    pub(super) fn next_task_id(&self) -> String {
        let mut st = self.lock();
        st.tasks += 1;
        format!(
            "11251229-1535-0357-0000-{:012x}",
            (self.nonce << 24) | (st.tasks & 0xff_ffff)
        )
    }

    /// Counts the charge and logs the exchange; `response_len` is the size of the
    /// response body as sent.
    pub(super) fn record(
        &self,
        endpoint: Endpoint,
        request: &Option<Value>,
        status: StatusCode,
        response: Option<&Value>,
        cost: Usd,
        response_len: usize,
    ) {
        let limit = self.opts.record_limit;
        // Built before taking the lock: the bodies can be large.
        let record = (limit > 0).then(|| {
            let request_len = request
                .as_ref()
                .map_or(0, |r| serde_json::to_vec(r).map_or(0, |v| v.len()));
            (
                RequestRecord {
                    endpoint: endpoint.name().to_string(),
                    request: request.clone().unwrap_or(Value::Null),
                    http_status: status.as_u16(),
                    response: response.cloned(),
                    cost,
                },
                request_len + response_len,
            )
        });
        let mut st = self.lock();
        st.stats.charged_usd += cost;
        if !cost.is_zero() {
            let today = st.today();
            st.book.count(today, "backlinks", endpoint.name(), cost, 0);
        }
        if let Some((record, size)) = record {
            while !st.records.is_empty()
                && (st.records.len() >= limit || st.record_bytes + size > self.opts.record_bytes)
            {
                if let Some((_, dropped)) = st.records.pop_front() {
                    st.record_bytes -= dropped;
                }
            }
            st.record_bytes += size;
            st.records.push_back((record, size));
        }
    }

    /// Records a JSON answer and sends it.
    pub(super) fn answer(
        &self,
        endpoint: Endpoint,
        request: &Option<Value>,
        status: StatusCode,
        body: Value,
        cost: Usd,
    ) -> Response {
        let text = body.to_string();
        self.record(endpoint, request, status, Some(&body), cost, text.len());
        json_text(status, text)
    }
}
