//! Who is let in and how many: HTTP Basic or a Bearer token (the API's 401 otherwise),
//! and the account's limits, requests per minute (40202) and requests in flight
//! (40209), the latter counted by the [`Slot`] each open request holds, and the
//! account's own spending limits (40203, `money.limits.day` and `minute`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use tokio::time::Instant;

use super::envelope::{
    MSG_DAILY_LIMIT, MSG_IN_FLIGHT, MSG_PER_DAY, MSG_PER_MINUTE, MSG_UNAUTHORIZED, json_response,
    top_level,
};
use super::state::Shared;
use crate::api::Endpoint;
use crate::money::Usd;

impl Shared {
    /// HTTP Basic with the login and password (not at a gateway), or a Bearer token.
    pub(super) fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some((scheme, value)) = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
        else {
            return false;
        };
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("basic") && self.opts.gateway.is_none() {
            base64::engine::general_purpose::STANDARD
                .decode(value)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|pair| {
                    pair.split_once(':')
                        .map(|(l, p)| l == self.opts.login && p == self.opts.password)
                })
                .unwrap_or(false)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            value == self.opts.token
        } else {
            false
        }
    }

    /// The API's 401: counted as `unauthorized`, nothing else.
    pub(super) fn unauthorized(&self) -> Response {
        self.lock().stats.unauthorized += 1;
        tracing::debug!("refused: not authorized");
        json_response(
            StatusCode::UNAUTHORIZED,
            &top_level(40100, MSG_UNAUTHORIZED, Duration::ZERO),
        )
    }

    /// Counts an authorized POST and applies the account limits: `Some` is the refusal.
    pub(super) fn admit(&self, endpoint: Endpoint, open: usize) -> Option<(i64, &'static str)> {
        let mut st = self.lock();
        st.stats.requests += 1;
        *st.stats
            .by_endpoint
            .entry(endpoint.name().to_string())
            .or_default() += 1;
        if open > self.opts.max_in_flight {
            st.stats.throttled += 1;
            return Some((40209, MSG_IN_FLIGHT));
        }
        let now = Instant::now();
        while st
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            st.window.pop_front();
        }
        let per_minute = st.limits.rate_minute.unwrap_or(self.opts.max_per_minute);
        if st.window.len() >= per_minute as usize {
            st.stats.throttled += 1;
            return Some((40202, MSG_PER_MINUTE));
        }
        let today = st.today();
        st.book.roll(today);
        let limits = st.limits;
        // The account's requests per day: the day's used up, every request is refused.
        if limits
            .rate_day
            .is_some_and(|l| st.book.day.requests_total >= l)
        {
            st.stats.throttled += 1;
            return Some((40202, MSG_PER_DAY));
        }
        // The account's own spending limits: the day's (and the minute's) spend
        // reached, every call is refused with 40203 (not charged).
        let over = |spent: Usd, limit: Option<Usd>| limit.is_some_and(|l| spent >= l);
        if over(st.book.day.money_total, limits.money_day)
            || over(st.book.minute.money_total, limits.money_minute)
        {
            return Some((40203, MSG_DAILY_LIMIT));
        }
        st.window.push_back(now);
        // An admitted request counts against the account's rates.
        st.book
            .count(today, "backlinks", endpoint.name(), Usd::ZERO, 1);
        None
    }
}

/// Holds one in-flight slot; gives it back when the request ends, however it ends.
pub(super) struct Slot(Arc<Shared>);

impl Slot {
    pub(super) fn enter(shared: &Arc<Shared>) -> (Slot, usize) {
        let mut st = shared.lock();
        st.open += 1;
        let open = st.open;
        st.stats.max_in_flight = st.stats.max_in_flight.max(open);
        (Slot(shared.clone()), open)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.open = st.open.saturating_sub(1);
    }
}
