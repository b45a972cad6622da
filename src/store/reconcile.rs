//! The account's books sampled (`account_samples`), each closed UTC day reconciled
//! against the ledger (`reconciliations`) and its abandoned estimates settled
//! (`settlements`, `api_calls.cost_usd` and `settled_at`), in one transaction per day.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::{Store, StoreError};
use crate::api::account::{Books, Tally};
use crate::money::Usd;

/// The ledger's endpoint of `user_data` calls: not a Backlinks function.
const USER_DATA: &str = crate::api::account::CREDENTIALS_CHECK;

/// The account's own limits as last sampled ([`Store::latest_limits`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampledLimits {
    /// `money.limits.day`.
    pub money_day: Option<Usd>,
    /// `money.limits.minute`.
    pub money_minute: Option<Usd>,
    /// `rates.limits.minute`.
    pub rate_minute: Option<u32>,
    /// `rates.limits.day`: requests a UTC day.
    pub rate_day: Option<u64>,
}

impl SampledLimits {
    /// Any limit sampled.
    pub fn any(&self) -> bool {
        self.money_day.is_some()
            || self.money_minute.is_some()
            || self.rate_minute.is_some()
            || self.rate_day.is_some()
    }
}

/// What [`Store::reserve_minute`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinuteGrant {
    /// Reserved in this minute (its first instant).
    Reserved(DateTime<Utc>),
    /// The minute is full: try again after this long (its end).
    Wait(std::time::Duration),
}

/// One stored sample: the day's figures the account reported at `taken_at`.
#[derive(Clone, Debug)]
pub struct Sample {
    pub taken_at: DateTime<Utc>,
    pub api_host: String,
    pub sandbox: bool,
    pub day: NaiveDate,
    pub spent: Option<Usd>,
    pub backlinks: Option<Usd>,
    pub by_function: BTreeMap<String, Usd>,
    pub requests: Option<i64>,
    pub backlinks_requests: Option<i64>,
}

/// The ledger's figures of one Backlinks function (endpoint) for one day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerDay {
    /// Booked for the calls sent up to the sample (abandoned estimates included).
    pub booked: Usd,
    /// Of it, abandoned estimates not settled yet (a request still `sent` once its
    /// day is over is one too: no answer comes for it any more).
    pub abandoned: Usd,
    /// The same calls at the cost the API reported (the estimate where it reported none).
    pub reported: Usd,
    /// Booked for calls sent after the sample.
    pub after: Usd,
    /// Requests sent up to the sample (reused answers aside).
    pub requests: i64,
}

/// An abandoned call whose estimate is not settled yet.
#[derive(Clone, Debug)]
pub struct Abandoned {
    pub call_id: i64,
    pub function: String,
    pub estimate: Usd,
}

/// One row of `reconciliations`, as written and read back.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Reconciled {
    pub day: NaiveDate,
    pub api_host: String,
    pub function: String,
    pub sandbox: bool,
    pub sampled_at: DateTime<Utc>,
    #[serde(serialize_with = "usd_str")]
    pub account_usd: Usd,
    #[serde(serialize_with = "usd_str")]
    pub ledger_usd: Usd,
    #[serde(serialize_with = "usd_str")]
    pub abandoned_usd: Usd,
    #[serde(serialize_with = "usd_str")]
    pub after_sample_usd: Usd,
    #[serde(serialize_with = "usd_str")]
    pub difference_usd: Usd,
    #[serde(serialize_with = "usd_str")]
    pub settlement_usd: Usd,
    pub kind: String,
    pub explanation: String,
}

/// A settlement of one abandoned call.
#[derive(Clone, Debug)]
pub struct Settlement {
    pub call_id: i64,
    pub function: String,
    pub estimate: Usd,
    pub settled: Usd,
    pub how: String,
}

/// An amount in JSON as its exact decimal string (`"0.02003"`).
fn usd_str<S: serde::Serializer>(usd: &Usd, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&usd.0.normalize().to_string())
}

fn tally_json(t: &BTreeMap<String, Usd>) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

fn whole(t: &Option<Tally>, f: impl Fn(&Tally) -> Option<Usd>) -> Option<i64> {
    use rust_decimal::prelude::ToPrimitive;
    t.as_ref().and_then(f).and_then(|u| u.0.trunc().to_i64())
}

impl Store {
    /// Stores one sample of the account's books, taken at `taken_at`; nothing when
    /// the answer held no day's figures.
    pub async fn record_sample(
        &self,
        api_host: &str,
        sandbox: bool,
        taken_at: DateTime<Utc>,
        books: &Books,
    ) -> Result<bool, StoreError> {
        let Some(day) = &books.spent_day else {
            return Ok(false);
        };
        // The day's requests counted against rates.limits.day are raised to the
        // account's own count: its other consumers' requests use the same limit.
        sqlx::query(
            "WITH sample AS (
               INSERT INTO linkledger.account_samples
                 (taken_at, api_host, sandbox, day, spent_usd, backlinks_usd, by_function,
                  requests, backlinks_requests, money_limit_day, money_limit_minute,
                  rate_limit_minute, rate_limit_day)
               VALUES ($1, $2, $3, ($1 AT TIME ZONE 'UTC')::date, $4, $5, $6, $7, $8, $9, $10,
                       $11, $12)
               RETURNING day, requests)
             INSERT INTO linkledger.request_days AS t (api_host, day, requests)
             SELECT $2, day, requests FROM sample WHERE requests IS NOT NULL
             ON CONFLICT (api_host, day) DO UPDATE
             SET requests = greatest(t.requests, EXCLUDED.requests)",
        )
        .bind(taken_at)
        .bind(api_host)
        .bind(sandbox)
        .bind(day.total.map(Usd::decimal))
        .bind(day.backlinks_or_sum().map(Usd::decimal))
        .bind(tally_json(&day.by_function))
        .bind(whole(&books.requests_day, |t| t.total))
        .bind(whole(&books.requests_day, |t| t.backlinks))
        .bind(books.money_limit_day.map(Usd::decimal))
        .bind(books.money_limit_minute.map(Usd::decimal))
        .bind(books.rate_limit_minute.map(|n| n as i32))
        .bind(books.rate_limit_day.and_then(|n| i64::try_from(n).ok()))
        .execute(self.pool())
        .await?;
        Ok(true)
    }

    /// The account's own limits as the newest sample of `api_host` reported them
    /// (each `None` when it has none, all `None` when none was sampled).
    pub async fn latest_limits(&self, api_host: &str) -> Result<SampledLimits, StoreError> {
        type Row = (Option<Decimal>, Option<Decimal>, Option<i32>, Option<i64>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT money_limit_day, money_limit_minute, rate_limit_minute, rate_limit_day
             FROM linkledger.account_samples
             WHERE api_host = $1 ORDER BY taken_at DESC, id DESC LIMIT 1",
        )
        .bind(api_host)
        .fetch_optional(self.pool())
        .await?;
        let (day, minute, rate, rate_day) = row.unwrap_or_default();
        Ok(SampledLimits {
            money_day: day.map(Usd),
            money_minute: minute.map(Usd),
            rate_minute: rate.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0),
            rate_day: rate_day
                .and_then(|n| u64::try_from(n).ok())
                .filter(|n| *n > 0),
        })
    }

    /// Takes one of this UTC day's requests of `api_host` against `cap` (the account's
    /// `rates.limits.day`), across processes: the day when taken, `None` when the day's
    /// are used up (by the calls sent, or by the account's own count as last sampled).
    pub async fn reserve_request(
        &self,
        api_host: &str,
        cap: u64,
    ) -> Result<Option<NaiveDate>, StoreError> {
        let day: Option<NaiveDate> = sqlx::query_scalar(
            "WITH gone AS (DELETE FROM linkledger.request_days
                           WHERE api_host = $1 AND day < (now() AT TIME ZONE 'UTC')::date - 7)
             INSERT INTO linkledger.request_days AS t (api_host, day, requests)
             SELECT $1, (now() AT TIME ZONE 'UTC')::date, 1 WHERE $2 >= 1
             ON CONFLICT (api_host, day) DO UPDATE
             SET requests = t.requests + 1
             WHERE t.requests + 1 <= $2
             RETURNING t.day",
        )
        .bind(api_host)
        .bind(i64::try_from(cap).unwrap_or(i64::MAX))
        .fetch_optional(self.pool())
        .await?;
        Ok(day)
    }

    /// Gives back the request [`Store::reserve_request`] took for a call that was not
    /// sent.
    pub async fn release_request(&self, api_host: &str, day: NaiveDate) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE linkledger.request_days SET requests = greatest(requests - 1, 0)
             WHERE api_host = $1 AND day = $2",
        )
        .bind(api_host)
        .bind(day)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Reserves `estimate` in this UTC minute's spend of `api_host` against `cap` (the
    /// account's `money.limits.minute`), across processes: `Reserved(minute)` when it
    /// fits, `Wait(d)` until the next minute when it does not; an estimate over the cap
    /// on its own is reserved alone in a minute of its own (`Reserved` when the minute
    /// holds nothing yet), since nothing smaller can be sent instead.
    pub async fn reserve_minute(
        &self,
        api_host: &str,
        estimate: Usd,
        cap: Usd,
    ) -> Result<MinuteGrant, StoreError> {
        let (granted, wait_ms): (Option<DateTime<Utc>>, i64) =
            sqlx::query_as(
                "WITH m AS (SELECT date_trunc('minute', now()) AS minute),
                 gone AS (DELETE FROM linkledger.spend_minutes
                          WHERE api_host = $1 AND minute < now() - interval '1 day'),
                 up AS (
                     INSERT INTO linkledger.spend_minutes AS t (api_host, minute, booked_usd)
                     SELECT $1, m.minute, $2 FROM m
                     ON CONFLICT (api_host, minute) DO UPDATE
                     SET booked_usd = t.booked_usd + EXCLUDED.booked_usd
                     WHERE t.booked_usd + EXCLUDED.booked_usd <= $3 OR t.booked_usd = 0
                     RETURNING t.minute)
                 SELECT (SELECT minute FROM up),
                        ceil(extract(epoch FROM (m.minute + interval '1 minute' - now())) * 1000)::bigint
                 FROM m",
            )
            .bind(api_host)
            .bind(estimate.decimal())
            .bind(cap.decimal())
            .fetch_one(self.pool())
            .await?;
        Ok(match granted {
            Some(minute) => MinuteGrant::Reserved(minute),
            None => MinuteGrant::Wait(std::time::Duration::from_millis(
                u64::try_from(wait_ms).unwrap_or(0).max(1),
            )),
        })
    }

    /// Gives back what [`Store::reserve_minute`] reserved for a call that was not
    /// sent.
    pub async fn release_minute(
        &self,
        api_host: &str,
        minute: DateTime<Utc>,
        estimate: Usd,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE linkledger.spend_minutes SET booked_usd = greatest(booked_usd - $3, 0)
             WHERE api_host = $1 AND minute = $2",
        )
        .bind(api_host)
        .bind(minute)
        .bind(estimate.decimal())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The last sample of `day` for `api_host`.
    pub async fn last_sample(
        &self,
        api_host: &str,
        day: NaiveDate,
    ) -> Result<Option<Sample>, StoreError> {
        type Row = (
            DateTime<Utc>,
            String,
            bool,
            NaiveDate,
            Option<Decimal>,
            Option<Decimal>,
            Value,
            Option<i64>,
            Option<i64>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT taken_at, api_host, sandbox, day, spent_usd, backlinks_usd, by_function,
                    requests, backlinks_requests
             FROM linkledger.account_samples
             WHERE api_host = $1 AND day = $2 AND backlinks_usd IS NOT NULL
             ORDER BY taken_at DESC, id DESC LIMIT 1",
        )
        .bind(api_host)
        .bind(day)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| Sample {
            taken_at: r.0,
            api_host: r.1,
            sandbox: r.2,
            day: r.3,
            spent: r.4.map(Usd),
            backlinks: r.5.map(Usd),
            by_function: r
                .6
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), Usd::from_json(v)?)))
                .collect(),
            requests: r.7,
            backlinks_requests: r.8,
        }))
    }

    /// The days before `before` with a sample of `api_host` and no reconciliation yet,
    /// oldest first.
    pub async fn days_to_reconcile(
        &self,
        api_host: &str,
        before: NaiveDate,
    ) -> Result<Vec<NaiveDate>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT s.day FROM linkledger.account_samples s
             WHERE s.api_host = $1 AND s.day < $2 AND s.backlinks_usd IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM linkledger.reconciliations r
                               WHERE r.day = s.day AND r.api_host = s.api_host
                                 AND r.function = '*')
             ORDER BY s.day",
        )
        .bind(api_host)
        .bind(before)
        .fetch_all(self.pool())
        .await?)
    }

    /// The ledger's figures of `day` for `api_host`, per endpoint: calls sent up to
    /// `upto` and after it.
    pub async fn ledger_day(
        &self,
        api_host: &str,
        day: NaiveDate,
        upto: DateTime<Utc>,
    ) -> Result<BTreeMap<String, LedgerDay>, StoreError> {
        type Row = (String, Decimal, Decimal, Decimal, Decimal, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT endpoint,
                    coalesce(sum(booked) FILTER (WHERE started_at <= $3), 0),
                    coalesce(sum(booked) FILTER (WHERE started_at <= $3
                        AND outcome IN ('abandoned', 'sent') AND settled_at IS NULL), 0),
                    coalesce(sum(coalesce(reported_cost_usd, booked))
                        FILTER (WHERE started_at <= $3), 0),
                    coalesce(sum(booked) FILTER (WHERE started_at > $3), 0),
                    count(*) FILTER (WHERE started_at <= $3)
             FROM (SELECT *, CASE WHEN outcome = 'sent' THEN coalesce(cost_usd, estimated_usd, 0)
                                  ELSE coalesce(cost_usd, 0) END AS booked
                   FROM linkledger.api_calls) c
             WHERE api_host = $1 AND endpoint <> $4 AND outcome NOT IN ('reused')
               AND started_at >= ($2::date)::timestamp AT TIME ZONE 'UTC'
               AND started_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'
             GROUP BY endpoint",
        )
        .bind(api_host)
        .bind(day)
        .bind(upto)
        .bind(USER_DATA)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(e, booked, abandoned, reported, after, requests)| {
                (
                    e,
                    LedgerDay {
                        booked: Usd(booked),
                        abandoned: Usd(abandoned),
                        reported: Usd(reported),
                        after: Usd(after),
                        requests,
                    },
                )
            })
            .collect())
    }

    /// The abandoned calls of `day` up to `upto` whose estimates are not settled,
    /// oldest first; requests still `sent` count (a killed once-run leaves its
    /// requests in flight so): the reconciliation books them `abandoned`, settled.
    pub async fn abandoned_unsettled(
        &self,
        api_host: &str,
        day: NaiveDate,
        upto: DateTime<Utc>,
    ) -> Result<Vec<Abandoned>, StoreError> {
        let rows: Vec<(i64, String, Decimal)> = sqlx::query_as(
            "SELECT id, endpoint, coalesce(cost_usd, estimated_usd, 0) FROM linkledger.api_calls
             WHERE api_host = $1 AND outcome IN ('abandoned', 'sent') AND settled_at IS NULL
               AND endpoint <> $4 AND started_at <= $3
               AND started_at >= ($2::date)::timestamp AT TIME ZONE 'UTC'
               AND started_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'
             ORDER BY id",
        )
        .bind(api_host)
        .bind(day)
        .bind(upto)
        .bind(USER_DATA)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(call_id, function, estimate)| Abandoned {
                call_id,
                function,
                estimate: Usd(estimate),
            })
            .collect())
    }

    /// Writes a day's reconciliation (its rows, `*` among them) and settles its
    /// abandoned calls, in one transaction; nothing when the day was reconciled
    /// already (another daemon did it first). True when this call wrote it.
    pub async fn write_reconciliation(
        &self,
        rows: &[Reconciled],
        settlements: &[Settlement],
    ) -> Result<bool, StoreError> {
        let Some(total) = rows.iter().find(|r| r.function == "*") else {
            return Ok(false);
        };
        let mut tx = self.pool().begin().await?;
        // One reconciliation of a day at a time: the first writer wins.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('linkledger.reconcile'), hashtext($1))")
            .bind(format!("{}/{}", total.day, total.api_host))
            .execute(&mut *tx)
            .await?;
        let done: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM linkledger.reconciliations
                            WHERE day = $1 AND api_host = $2 AND function = '*')",
        )
        .bind(total.day)
        .bind(&total.api_host)
        .fetch_one(&mut *tx)
        .await?;
        if done {
            return Ok(false);
        }
        let col = |f: fn(&Reconciled) -> Usd| rows.iter().map(|r| f(r).0).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO linkledger.reconciliations
               (day, api_host, function, sandbox, sampled_at, account_usd, ledger_usd,
                abandoned_usd, after_sample_usd, difference_usd, settlement_usd, kind,
                explanation)
             SELECT $1, $2, f, $3, $4, a, l, ab, af, d, st, k, x
             FROM UNNEST($5::text[], $6::numeric[], $7::numeric[], $8::numeric[],
                         $9::numeric[], $10::numeric[], $11::numeric[], $12::text[],
                         $13::text[]) AS u(f, a, l, ab, af, d, st, k, x)
             ON CONFLICT DO NOTHING",
        )
        .bind(total.day)
        .bind(&total.api_host)
        .bind(total.sandbox)
        .bind(total.sampled_at)
        .bind(rows.iter().map(|r| r.function.clone()).collect::<Vec<_>>())
        .bind(col(|r| r.account_usd))
        .bind(col(|r| r.ledger_usd))
        .bind(col(|r| r.abandoned_usd))
        .bind(col(|r| r.after_sample_usd))
        .bind(col(|r| r.difference_usd))
        .bind(col(|r| r.settlement_usd))
        .bind(rows.iter().map(|r| r.kind.clone()).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.explanation.clone())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
        if !settlements.is_empty() {
            // Only calls still abandoned and unsettled are settled; the estimate kept
            // in settlements is what the call was booked at.
            sqlx::query(
                "WITH s AS (
                   SELECT * FROM UNNEST($3::bigint[], $4::text[], $5::numeric[], $6::text[])
                            AS u(call_id, function, settled, how)
                 ), settled AS (
                   UPDATE linkledger.api_calls c
                   SET cost_usd = s.settled, settled_at = now(), outcome = 'abandoned',
                       error = coalesce(c.error, 'no answer by the day''s reconciliation: its process died with the request in flight')
                   FROM s
                   WHERE c.id = s.call_id AND c.outcome IN ('abandoned', 'sent')
                     AND c.settled_at IS NULL
                   RETURNING c.id, s.function, s.settled, s.how
                 )
                 -- The statement's snapshot: the cost as booked before the UPDATE above.
                 INSERT INTO linkledger.settlements
                   (call_id, day, api_host, function, estimate_usd, settled_usd, how)
                 SELECT s2.id, $1, $2, s2.function, coalesce(c.cost_usd, c.estimated_usd, 0),
                        s2.settled, s2.how
                 FROM settled s2 JOIN linkledger.api_calls c ON c.id = s2.id",
            )
            .bind(total.day)
            .bind(&total.api_host)
            .bind(settlements.iter().map(|s| s.call_id).collect::<Vec<_>>())
            .bind(
                settlements
                    .iter()
                    .map(|s| s.function.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(settlements.iter().map(|s| s.settled.0).collect::<Vec<_>>())
            .bind(
                settlements
                    .iter()
                    .map(|s| s.how.clone())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The reconciled days since `since` (the Backlinks totals, `*`), oldest first.
    pub async fn reconciliations(
        &self,
        since: NaiveDate,
        function: Option<&str>,
    ) -> Result<Vec<Reconciled>, StoreError> {
        type Row = (
            NaiveDate,
            String,
            String,
            bool,
            DateTime<Utc>,
            Decimal,
            Decimal,
            Decimal,
            Decimal,
            Decimal,
            Decimal,
            String,
            String,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT day, api_host, function, sandbox, sampled_at, account_usd, ledger_usd,
                    abandoned_usd, after_sample_usd, difference_usd, settlement_usd, kind,
                    explanation
             FROM linkledger.reconciliations
             WHERE day >= $1 AND ($2::text IS NULL OR function = $2)
             ORDER BY day, api_host, function = '*' DESC, function",
        )
        .bind(since)
        .bind(function)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Reconciled {
                day: r.0,
                api_host: r.1,
                function: r.2,
                sandbox: r.3,
                sampled_at: r.4,
                account_usd: Usd(r.5),
                ledger_usd: Usd(r.6),
                abandoned_usd: Usd(r.7),
                after_sample_usd: Usd(r.8),
                difference_usd: Usd(r.9),
                settlement_usd: Usd(r.10),
                kind: r.11,
                explanation: r.12,
            })
            .collect())
    }
}

impl Store {
    /// Counts `others` (what other consumers of the account behind `api_host` spent on
    /// `day`, as now estimated) in that day's daily budgets (`daily`, `account_daily`
    /// in `spend_totals`) and its month's `monthly`, replacing the estimate counted
    /// before; returns the change. The totals are prepared (`prepare_budgets`) first: a
    /// row prepared later starts with the others counted in its period.
    pub async fn count_others(
        &self,
        api_host: &str,
        day: NaiveDate,
        others: Usd,
    ) -> Result<Usd, StoreError> {
        let mut tx = self.pool().begin().await?;
        // The totals' rows first, in scope order, as a booking locks them.
        sqlx::query(
            "SELECT 1 FROM linkledger.spend_totals
             WHERE (scope IN ('account_daily', 'daily') AND period = $1)
                OR (scope = 'monthly' AND period = date_trunc('month', $1)::date)
             ORDER BY scope FOR UPDATE",
        )
        .bind(day)
        .execute(&mut *tx)
        .await?;
        let before: Option<Decimal> = sqlx::query_scalar(
            "SELECT others_usd FROM linkledger.account_others
             WHERE day = $1 AND api_host = $2 FOR UPDATE",
        )
        .bind(day)
        .bind(api_host)
        .fetch_optional(&mut *tx)
        .await?;
        let change = others.0 - before.unwrap_or_default();
        if !change.is_zero() {
            sqlx::query(
                "UPDATE linkledger.spend_totals SET booked_usd = booked_usd + $2
                 WHERE (scope IN ('account_daily', 'daily') AND period = $1)
                    OR (scope = 'monthly' AND period = date_trunc('month', $1)::date)",
            )
            .bind(day)
            .bind(change)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO linkledger.account_others (day, api_host, others_usd)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (day, api_host) DO UPDATE
                 SET others_usd = EXCLUDED.others_usd, updated_at = now()",
            )
            .bind(day)
            .bind(api_host)
            .bind(others.0)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Usd(change))
    }
}
