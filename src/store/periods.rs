//! Coverage of date-ranged collections, in SQL: what an answer says of each period it
//! asked for (recorded with its rows by `warehouse::write_batch`: `linkledger.coverage`
//! for the periods stored for good, `linkledger.pending_periods` for those unsettled or
//! answered empty), what a request would still miss, and where what is stored ends.
//! The rules are `warehouse::coverage`'s.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::Value;

use super::{Store, StoreError};
use crate::api::Endpoint;
use crate::warehouse::coverage::{Answered, Days, PeriodState};

#[derive(sqlx::FromRow)]
struct MissingRow {
    target: String,
    from_day: NaiveDate,
    to_day: NaiveDate,
}

impl Store {
    /// For each of `targets`, the date ranges within `from..=to` a request of
    /// `endpoint` with `options` asks for on `today`: all but the periods stored for
    /// good, those answered today, and those an answer first lacked more than
    /// `reask_empty` before `today` (unsettled periods are asked again); targets with
    /// nothing to ask are left out.
    #[allow(clippy::too_many_arguments)]
    pub async fn missing_periods(
        &self,
        endpoint: Endpoint,
        options: &Value,
        targets: &[String],
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
        reask_empty: Duration,
    ) -> Result<HashMap<String, Vec<(NaiveDate, NaiveDate)>>, StoreError> {
        let reask_from = today - chrono::Days::new(reask_empty.as_secs() / 86_400);
        let rows: Vec<MissingRow> = sqlx::query_as(
            "SELECT u.target, lower(r) AS from_day, (upper(r) - 1) AS to_day
             FROM UNNEST($3::text[]) AS u(target)
             LEFT JOIN linkledger.coverage c
                    ON c.target = u.target AND c.endpoint = $1 AND c.options = $2
             CROSS JOIN LATERAL unnest(
                 datemultirange(daterange($4, $5, '[]'))
                 - coalesce(c.covered, '{}'::datemultirange)
                 - CASE WHEN c.fresh_on = $6 THEN c.fresh ELSE '{}'::datemultirange END
                 - coalesce((SELECT range_agg(daterange(p.period_from, p.period_to, '[]'))
                             FROM linkledger.pending_periods p
                             WHERE p.target = u.target AND p.endpoint = $1 AND p.options = $2
                               AND p.state = 'empty'
                               AND p.first_answered_at < $7::date::timestamp AT TIME ZONE 'UTC'),
                            '{}'::datemultirange)) AS r
             ORDER BY 1, 2",
        )
        .bind(endpoint.name())
        .bind(options)
        .bind(targets)
        .bind(from)
        .bind(to)
        .bind(today)
        .bind(reask_from)
        .fetch_all(self.pool())
        .await?;
        let mut out: HashMap<String, Vec<(NaiveDate, NaiveDate)>> = HashMap::new();
        for r in rows {
            out.entry(r.target)
                .or_default()
                .push((r.from_day, r.to_day));
        }
        Ok(out)
    }

    /// For each of `targets`, where a fire of `endpoint` with `options` reaching back
    /// meets the warehouse: the last day stored for good, or when nothing is, the day
    /// before the first pending period (unsettled and empty periods after it are still
    /// to be asked again); targets with nothing recorded are left out.
    pub async fn stored_until(
        &self,
        endpoint: Endpoint,
        options: &Value,
        targets: &[String],
    ) -> Result<HashMap<String, NaiveDate>, StoreError> {
        let rows: Vec<(String, Option<NaiveDate>)> = sqlx::query_as(
            "SELECT u.target,
                    coalesce(
                        (SELECT upper(c.covered) - 1 FROM linkledger.coverage c
                         WHERE c.target = u.target AND c.endpoint = $1 AND c.options = $2
                           AND NOT isempty(c.covered)),
                        (SELECT min(p.period_from) - 1 FROM linkledger.pending_periods p
                         WHERE p.target = u.target AND p.endpoint = $1 AND p.options = $2))
             FROM UNNEST($3::text[]) AS u(target)",
        )
        .bind(endpoint.name())
        .bind(options)
        .bind(targets)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(target, until)| Some((target, until?)))
            .collect())
    }

    /// Everything `linkledger.coverage` and `linkledger.pending_periods` hold, in
    /// memory (for `plan`'s month ahead).
    pub async fn stored(&self) -> Result<crate::warehouse::coverage::Stored, StoreError> {
        use crate::warehouse::coverage::{Days, Stored};
        let rows: Vec<StoredRow> = sqlx::query_as(
            "SELECT endpoint, target, options, fresh_on,
                    array(SELECT lower(r) FROM unnest(covered) r ORDER BY 1) AS covered_from,
                    array(SELECT upper(r) - 1 FROM unnest(covered) r ORDER BY 1) AS covered_to,
                    array(SELECT lower(r) FROM unnest(fresh) r ORDER BY 1) AS fresh_from,
                    array(SELECT upper(r) - 1 FROM unnest(fresh) r ORDER BY 1) AS fresh_to
             FROM linkledger.coverage",
        )
        .fetch_all(self.pool())
        .await?;
        let mut held = Stored::default();
        let days = |from: &[NaiveDate], to: &[NaiveDate]| {
            let mut d = Days::default();
            for (f, t) in from.iter().zip(to) {
                d.add(*f, *t);
            }
            d
        };
        for r in rows {
            // An endpoint this version does not know holds nothing it plans.
            let Ok(endpoint) = r.endpoint.parse::<Endpoint>() else {
                continue;
            };
            held.insert_stored(
                endpoint,
                &r.options,
                &r.target,
                days(&r.covered_from, &r.covered_to),
                days(&r.fresh_from, &r.fresh_to),
                r.fresh_on,
            );
        }
        let pending: Vec<PendingRow> = sqlx::query_as(
            "SELECT endpoint, target, options, period_from, period_to, state,
                    (first_answered_at AT TIME ZONE 'UTC')::date AS first_day
             FROM linkledger.pending_periods",
        )
        .fetch_all(self.pool())
        .await?;
        for p in pending {
            let (Ok(endpoint), Some(state)) = (
                p.endpoint.parse::<Endpoint>(),
                match p.state.as_str() {
                    "unsettled" => Some(PeriodState::Unsettled),
                    "empty" => Some(PeriodState::Empty),
                    _ => None,
                },
            ) else {
                continue;
            };
            held.insert_pending(
                endpoint,
                &p.options,
                &p.target,
                p.period_from,
                p.period_to,
                state,
                p.first_day,
            );
        }
        Ok(held)
    }
}

/// What is stored of one target, endpoint and options: the days stored for good and
/// the pending periods by first day.
#[derive(Clone, Debug, Default)]
pub struct TargetCoverage {
    pub covered: Days,
    pub pending: BTreeMap<NaiveDate, PeriodState>,
}

impl Store {
    /// For each of `targets`, what is stored of `endpoint` with `options` (targets with
    /// nothing recorded are left out).
    pub async fn coverage_of(
        &self,
        endpoint: Endpoint,
        options: &Value,
        targets: &[String],
    ) -> Result<HashMap<String, TargetCoverage>, StoreError> {
        let covered: Vec<(String, Vec<NaiveDate>, Vec<NaiveDate>)> = sqlx::query_as(
            "SELECT target,
                    array(SELECT lower(r) FROM unnest(covered) r ORDER BY 1),
                    array(SELECT upper(r) - 1 FROM unnest(covered) r ORDER BY 1)
             FROM linkledger.coverage
             WHERE endpoint = $1 AND options = $2 AND target = ANY($3)",
        )
        .bind(endpoint.name())
        .bind(options)
        .bind(targets)
        .fetch_all(self.pool())
        .await?;
        let pending: Vec<(String, NaiveDate, String)> = sqlx::query_as(
            "SELECT target, period_from, state FROM linkledger.pending_periods
             WHERE endpoint = $1 AND options = $2 AND target = ANY($3)",
        )
        .bind(endpoint.name())
        .bind(options)
        .bind(targets)
        .fetch_all(self.pool())
        .await?;
        let mut out: HashMap<String, TargetCoverage> = HashMap::new();
        for (target, from, to) in covered {
            let c = out.entry(target).or_default();
            for (f, t) in from.into_iter().zip(to) {
                c.covered.add(f, t);
            }
        }
        for (target, from, state) in pending {
            let state = match state.as_str() {
                "unsettled" => PeriodState::Unsettled,
                _ => PeriodState::Empty,
            };
            out.entry(target).or_default().pending.insert(from, state);
        }
        Ok(out)
    }
}

/// Records what an answer says of the periods it asked for, in the transaction that
/// writes its rows: the periods stored for good join `coverage.covered` and leave
/// `pending_periods`; the unsettled and empty ones are rows of `pending_periods` (an
/// unsettled period stays unsettled when a later answer lacks it: its rows are stored;
/// a period stored for good gets no row); every period not stored for good is held on
/// the day the request was sent (`fresh`). An older answer (a replay) never takes the
/// newer day's place.
pub(super) async fn record_answered(
    conn: &mut sqlx::PgConnection,
    a: &Answered,
) -> Result<(), sqlx::Error> {
    let from: Vec<NaiveDate> = a.periods.iter().map(|p| p.from).collect();
    let to: Vec<NaiveDate> = a.periods.iter().map(|p| p.to).collect();
    let state: Vec<&str> = a.periods.iter().map(|p| p.state.name()).collect();
    sqlx::query(
        "WITH p AS (SELECT * FROM UNNEST($4::date[], $5::date[], $6::text[]) AS p(f, t, s)),
              final AS (SELECT coalesce(range_agg(daterange(f, t, '[]')), '{}'::datemultirange) AS d
                        FROM p WHERE s = 'final'),
              held AS (SELECT coalesce(range_agg(daterange(f, t, '[]')), '{}'::datemultirange) AS d
                       FROM p WHERE s <> 'final')
         INSERT INTO linkledger.coverage (endpoint, target, options, covered, fresh, fresh_on)
         SELECT $1, $2, $3, final.d, held.d, CASE WHEN NOT isempty(held.d) THEN $7::date END
         FROM final, held
         ON CONFLICT (target, endpoint, options) DO UPDATE
            SET covered = linkledger.coverage.covered + EXCLUDED.covered,
                fresh = CASE
                    WHEN EXCLUDED.fresh_on IS NULL
                      OR EXCLUDED.fresh_on < linkledger.coverage.fresh_on
                        THEN linkledger.coverage.fresh
                    WHEN EXCLUDED.fresh_on = linkledger.coverage.fresh_on
                        THEN linkledger.coverage.fresh + EXCLUDED.fresh
                    ELSE EXCLUDED.fresh END,
                fresh_on = greatest(linkledger.coverage.fresh_on, EXCLUDED.fresh_on),
                updated_at = now()",
    )
    .bind(a.endpoint.name())
    .bind(&a.target)
    .bind(&a.options)
    .bind(&from)
    .bind(&to)
    .bind(&state)
    .bind(a.day())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "WITH p AS (SELECT * FROM UNNEST($4::date[], $5::date[], $6::text[]) AS p(f, t, s)),
              gone AS (
                 DELETE FROM linkledger.pending_periods pp USING p
                 WHERE p.s = 'final' AND pp.target = $2 AND pp.endpoint = $1
                   AND pp.options = $3 AND pp.period_from = p.f)
         INSERT INTO linkledger.pending_periods AS pp
             (target, endpoint, options, period_from, period_to, state,
              first_answered_at, last_answered_at)
         SELECT $2, $1, $3, p.f, p.t, p.s, $7, $7
         FROM p
         WHERE p.s <> 'final'
           AND NOT EXISTS (SELECT 1 FROM linkledger.coverage c
                           WHERE c.target = $2 AND c.endpoint = $1 AND c.options = $3
                             AND c.covered @> daterange(p.f, p.t, '[]'))
         ON CONFLICT (target, endpoint, options, period_from) DO UPDATE
            SET period_to = EXCLUDED.period_to,
                state = CASE WHEN pp.state = 'unsettled' THEN 'unsettled'
                             ELSE EXCLUDED.state END,
                first_answered_at = least(pp.first_answered_at, EXCLUDED.first_answered_at),
                last_answered_at = greatest(pp.last_answered_at, EXCLUDED.last_answered_at),
                answers = pp.answers + 1",
    )
    .bind(a.endpoint.name())
    .bind(&a.target)
    .bind(&a.options)
    .bind(&from)
    .bind(&to)
    .bind(&state)
    .bind(a.sent_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    endpoint: String,
    target: String,
    options: Value,
    period_from: NaiveDate,
    period_to: NaiveDate,
    state: String,
    first_day: NaiveDate,
}

#[derive(sqlx::FromRow)]
struct StoredRow {
    endpoint: String,
    target: String,
    options: Value,
    fresh_on: Option<NaiveDate>,
    covered_from: Vec<NaiveDate>,
    covered_to: Vec<NaiveDate>,
    fresh_from: Vec<NaiveDate>,
    fresh_to: Vec<NaiveDate>,
}
