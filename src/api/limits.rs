//! Client-side enforcement of the account's limits: at most `max_in_flight` requests
//! open and at most `max_per_minute` started in any sliding minute. A throttling answer
//! (40202/40209) pauses every caller for a while on top of that.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The API counts a minute by when requests arrive; a start is counted here when its
/// permit is granted, a ledger write before the request leaves. A second's margin
/// keeps a delayed send from landing in the API's minute of the next ones (the shared
/// limit in `store::api_slots` keeps the same margin).
const WINDOW: Duration = Duration::from_secs(61);

/// Retry delays: exponential with jitter, capped, bounded in count.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The delays to sleep between attempts: `max_attempts - 1` of them.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .build()
    }

    /// The delay before retrying after the `failures`-th failed attempt (1-based):
    /// the `failures`-th of [`RetryPolicy::delays`], the cap once those run out.
    pub fn delay(&self, failures: u32) -> Duration {
        self.delays()
            .nth(failures.max(1) as usize - 1)
            .unwrap_or(self.max_delay)
    }
}

/// The shared limiter. Cheap to clone.
#[derive(Clone)]
pub struct Limits {
    inner: Arc<Inner>,
}

struct Inner {
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    /// Changed while running when the account's own rate limit changes.
    max_per_minute: std::sync::atomic::AtomicUsize,
    state: Mutex<State>,
}

struct State {
    /// Start instants of the requests of the last minute, oldest first.
    started: VecDeque<Instant>,
    /// No request starts before this instant (set by throttling answers).
    paused_until: Option<Instant>,
    /// Consecutive throttling answers, for growing the pause.
    throttle_streak: u32,
}

/// Held while a request is open; dropping it frees the in-flight slot.
pub struct Permit {
    _slot: OwnedSemaphorePermit,
}

impl Limits {
    pub fn new(max_in_flight: usize, max_per_minute: u32) -> Limits {
        let max_in_flight = max_in_flight.max(1);
        Limits {
            inner: Arc::new(Inner {
                in_flight: Arc::new(Semaphore::new(max_in_flight)),
                max_in_flight,
                max_per_minute: std::sync::atomic::AtomicUsize::new(
                    (max_per_minute as usize).max(1),
                ),
                state: Mutex::new(State {
                    started: VecDeque::new(),
                    paused_until: None,
                    throttle_streak: 0,
                }),
            }),
        }
    }

    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight
    }

    /// Requests started at most in a sliding minute.
    pub fn max_per_minute(&self) -> u32 {
        let n = self
            .inner
            .max_per_minute
            .load(std::sync::atomic::Ordering::Relaxed);
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Takes another per-minute limit (the account's own changed): starts from now on
    /// wait for it, counting those of the last minute.
    pub fn set_max_per_minute(&self, max_per_minute: u32) {
        self.inner.max_per_minute.store(
            (max_per_minute as usize).max(1),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Waits for an in-flight slot and a start slot in the sliding minute.
    pub async fn acquire(&self) -> Permit {
        let slot = self
            .inner
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            let wait_until = {
                let mut st = self.inner.state.lock().await;
                let now = Instant::now();
                while st.started.front().is_some_and(|t| now - *t >= WINDOW) {
                    st.started.pop_front();
                }
                let paused = st.paused_until.filter(|t| *t > now);
                let max = self
                    .inner
                    .max_per_minute
                    .load(std::sync::atomic::Ordering::Relaxed);
                let full = (st.started.len() >= max)
                    .then(|| *st.started.front().expect("non-empty") + WINDOW);
                match paused.max(full) {
                    None => {
                        st.started.push_back(now);
                        break;
                    }
                    Some(t) => t,
                }
            };
            tokio::time::sleep_until(wait_until).await;
        }
        Permit { _slot: slot }
    }

    /// A throttling answer: hold back every caller, longer with each consecutive one.
    pub async fn throttled(&self, base: Duration) {
        let mut st = self.inner.state.lock().await;
        st.throttle_streak = st.throttle_streak.saturating_add(1);
        let factor = 1u32 << st.throttle_streak.min(6);
        let pause = (base * factor).min(WINDOW);
        let until = Instant::now() + pause;
        st.paused_until = Some(st.paused_until.map_or(until, |t| t.max(until)));
        tracing::warn!(
            pause_ms = pause.as_millis() as u64,
            "API throttled us; pausing"
        );
    }

    /// A successful answer resets the throttle streak.
    pub async fn succeeded(&self) {
        let mut st = self.inner.state.lock().await;
        st.throttle_streak = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_more_than_max_in_flight_permits_are_held_at_once() {
        let limits = Limits::new(2, 1000);
        let a = limits.acquire().await;
        let _b = limits.acquire().await;
        let third = tokio::time::timeout(Duration::from_secs(5), limits.acquire()).await;
        assert!(
            third.is_err(),
            "a third permit was granted while two were held"
        );
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), limits.acquire())
            .await
            .expect("a freed slot is granted");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lowered_per_minute_limit_holds_the_next_start_counting_the_minutes_starts() {
        let limits = Limits::new(10, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(limits.acquire().await);
        }
        assert_eq!(Instant::now(), t0, "three of 100 start at once");
        limits.set_max_per_minute(3);
        assert_eq!(limits.max_per_minute(), 3);
        // The minute holds three starts already: the fourth waits for the first to age.
        drop(limits.acquire().await);
        assert_eq!(Instant::now() - t0, WINDOW);
        // Raised again, the next start goes at once.
        limits.set_max_per_minute(100);
        let t1 = Instant::now();
        drop(limits.acquire().await);
        assert_eq!(Instant::now(), t1);
    }

    #[tokio::test(start_paused = true)]
    async fn starts_beyond_the_per_minute_limit_wait_for_the_window_to_slide() {
        let limits = Limits::new(10, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(limits.acquire().await);
        }
        assert!(Instant::now() - t0 < Duration::from_secs(1));
        drop(limits.acquire().await);
        assert!(Instant::now() - t0 >= WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttling_answer_pauses_the_next_start() {
        let limits = Limits::new(10, 1000);
        limits.throttled(Duration::from_millis(500)).await;
        let t0 = Instant::now();
        drop(limits.acquire().await);
        assert!(Instant::now() - t0 >= Duration::from_millis(1000));
    }

    #[test]
    fn retry_delays_grow_are_capped_and_bounded_in_number() {
        let p = RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        let d: Vec<_> = p.delays().collect();
        assert_eq!(d.len(), 5);
        assert!(d.iter().all(|x| *x <= Duration::from_millis(2000)));
        assert!(d[4] >= Duration::from_millis(1000));
    }
}
