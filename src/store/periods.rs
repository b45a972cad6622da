//! Coverage of date-ranged collections: what stored answers hold (written with their
//! rows by `warehouse::write_batch`), and what a request would still miss.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde_json::Value;

use super::{Store, StoreError};
use crate::api::Endpoint;

#[derive(sqlx::FromRow)]
struct MissingRow {
    target: String,
    from_day: NaiveDate,
    to_day: NaiveDate,
}

impl Store {
    /// For each of `targets`, the date ranges within `from..=to` that no stored answer
    /// of `endpoint` with `options` covers on `today` (periods answered while still open
    /// count on the day they were answered only); targets fully covered are left out.
    pub async fn missing_periods(
        &self,
        endpoint: Endpoint,
        options: &Value,
        targets: &[String],
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> Result<HashMap<String, Vec<(NaiveDate, NaiveDate)>>, StoreError> {
        let rows: Vec<MissingRow> = sqlx::query_as(
            "SELECT u.target, lower(r) AS from_day, (upper(r) - 1) AS to_day
             FROM UNNEST($3::text[]) AS u(target)
             LEFT JOIN linkledger.coverage c
                    ON c.target = u.target AND c.endpoint = $1 AND c.options = $2
             CROSS JOIN LATERAL unnest(
                 datemultirange(daterange($4, $5, '[]'))
                 - coalesce(c.covered, '{}'::datemultirange)
                 - CASE WHEN c.fresh_on = $6 THEN c.fresh ELSE '{}'::datemultirange END) AS r
             ORDER BY 1, 2",
        )
        .bind(endpoint.name())
        .bind(options)
        .bind(targets)
        .bind(from)
        .bind(to)
        .bind(today)
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

    /// Everything `linkledger.coverage` holds, in memory (for `plan`'s month ahead).
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
        Ok(held)
    }
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
