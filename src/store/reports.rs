//! Reports over the ledger, for `spend` and `demo`.
//!
//! `spend` reads `api_calls` (what each request cost, what it was estimated to cost, which
//! answers were reused), `budget_status` (the caps in force and what is booked against
//! them) and `account_snapshots` (the balance). Sandbox calls are never mixed with real
//! spend: a report covers either the real calls or, when asked, only the sandbox's.

use std::ops::AddAssign;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

use super::{Store, StoreError};
use crate::api::account::CREDENTIALS_CHECK;
use crate::money::Usd;
use crate::money::budget::Scope;

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SpendRow {
    pub key: String,
    pub calls: i64,
    #[sqlx(try_from = "Decimal")]
    pub cost: Usd,
}

/// Calls and cost per endpoint of the runs of `kind` newer than run `after` (sandbox
/// calls included): what a demo's calls would have cost.
pub async fn spend_by_endpoint_of_runs_after(
    store: &Store,
    kind: &str,
    after: i64,
) -> Result<Vec<SpendRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT c.endpoint AS key, count(*)::bigint AS calls, coalesce(sum(c.cost_usd), 0) AS cost
         FROM linkledger.api_calls c JOIN linkledger.runs r ON r.id = c.run_id
         WHERE r.kind = $1 AND r.id > $2
         GROUP BY 1 ORDER BY 1",
    )
    .bind(kind)
    .bind(after)
    .fetch_all(store.pool())
    .await?)
}

/// The newest run's id (0 when there is none): runs started later have larger ids.
pub async fn newest_run_id(store: &Store) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT coalesce(max(id), 0)::bigint FROM linkledger.runs")
            .fetch_one(store.pool())
            .await?,
    )
}

/// How `spend` groups the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpendBy {
    /// UTC day the request was sent.
    Day,
    Job,
    Endpoint,
    /// The run that made the request, with its job, kind and status.
    Run,
}

impl SpendBy {
    pub fn as_str(self) -> &'static str {
        match self {
            SpendBy::Day => "day",
            SpendBy::Job => "job",
            SpendBy::Endpoint => "endpoint",
            SpendBy::Run => "run",
        }
    }
}

impl FromStr for SpendBy {
    type Err = String;
    fn from_str(s: &str) -> Result<SpendBy, String> {
        match s {
            "day" => Ok(SpendBy::Day),
            "job" => Ok(SpendBy::Job),
            "endpoint" => Ok(SpendBy::Endpoint),
            "run" => Ok(SpendBy::Run),
            other => Err(format!(
                "--by: `{other}` is not one of day, job, endpoint, run"
            )),
        }
    }
}

impl Serialize for SpendBy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Money in JSON: the exact decimal as a string, so no script reads it as a float.
fn usd_str<S: Serializer>(usd: &Usd, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&usd.0.normalize().to_string())
}

fn opt_usd_str<S: Serializer>(usd: &Option<Usd>, s: S) -> Result<S::Ok, S::Error> {
    match usd {
        Some(u) => usd_str(u, s),
        None => s.serialize_none(),
    }
}

/// What the ledger says about a set of requests.
///
/// - `calls`: requests that were answered or abandoned (retries included; not the ones
///   still in flight, not the reused answers, which sent nothing, not the free
///   credentials checks, counted apart in [`SpendReport::credentials_checks`]); `rows` the warehouse
///   rows the ledger says were written (reused answers included); `cost_usd` what the
///   requests cost (`api_calls.cost_usd`).
/// - `failed_charged_*`: the part of that which bought no data: any outcome but `ok`
///   with a cost above zero (rejected, invalid_response, abandoned, throttled, ...).
/// - `answered_*`: requests an answer came back for and that carried an estimate: the
///   sum of their estimates against the sum of what they cost.
/// - `reused_*`: requests answered from an answer of the same day instead of being
///   bought, and what the answers they reused cost (the money saved).
/// - `in_flight_*`: requests sent and not answered yet, with the estimates reserved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SpendFigures {
    pub calls: i64,
    pub rows: i64,
    #[serde(serialize_with = "usd_str")]
    #[sqlx(try_from = "Decimal")]
    pub cost_usd: Usd,
    pub failed_charged_calls: i64,
    #[serde(serialize_with = "usd_str")]
    #[sqlx(try_from = "Decimal")]
    pub failed_charged_usd: Usd,
    pub answered_calls: i64,
    #[serde(serialize_with = "usd_str")]
    #[sqlx(try_from = "Decimal")]
    pub answered_estimated_usd: Usd,
    #[serde(serialize_with = "usd_str")]
    #[sqlx(try_from = "Decimal")]
    pub answered_cost_usd: Usd,
    pub reused_calls: i64,
    #[serde(serialize_with = "usd_str")]
    #[sqlx(try_from = "Decimal")]
    pub reused_saved_usd: Usd,
    pub in_flight_calls: i64,
    #[serde(serialize_with = "usd_str")]
    #[sqlx(try_from = "Decimal")]
    pub in_flight_estimated_usd: Usd,
    /// Processed answers whose own cost was missing, unreadable, negative or over the
    /// bound for one call: booked at their estimate (in `cost_usd` too).
    pub cost_estimated_calls: i64,
    #[serde(serialize_with = "usd_str")]
    #[sqlx(try_from = "Decimal")]
    pub cost_estimated_usd: Usd,
}

impl AddAssign<&SpendFigures> for SpendFigures {
    fn add_assign(&mut self, o: &SpendFigures) {
        self.calls += o.calls;
        self.rows += o.rows;
        self.cost_usd += o.cost_usd;
        self.failed_charged_calls += o.failed_charged_calls;
        self.failed_charged_usd += o.failed_charged_usd;
        self.answered_calls += o.answered_calls;
        self.answered_estimated_usd += o.answered_estimated_usd;
        self.answered_cost_usd += o.answered_cost_usd;
        self.reused_calls += o.reused_calls;
        self.reused_saved_usd += o.reused_saved_usd;
        self.in_flight_calls += o.in_flight_calls;
        self.in_flight_estimated_usd += o.in_flight_estimated_usd;
        self.cost_estimated_calls += o.cost_estimated_calls;
        self.cost_estimated_usd += o.cost_estimated_usd;
    }
}

/// A run, for `--by run`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunInfo {
    pub id: i64,
    pub job: String,
    pub kind: String,
    pub status: String,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpendGroup {
    /// The UTC day (yyyy-mm-dd), the job (`(none)` for requests outside a job), the
    /// endpoint, or the run (`#<id> <job> (<kind>, <status>)`, `(no run)`).
    pub key: String,
    /// Present with `--by run`: the run, null for requests outside any run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Option<RunInfo>>,
    #[serde(flatten)]
    pub figures: SpendFigures,
}

/// Failed-but-charged requests of one outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OutcomeCost {
    pub outcome: String,
    pub calls: i64,
    #[serde(serialize_with = "usd_str")]
    #[sqlx(try_from = "Decimal")]
    pub cost_usd: Usd,
}

/// The calls of the other kind that a report leaves out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    pub calls: i64,
    /// What they cost, or for sandbox calls what they would have cost.
    #[serde(serialize_with = "usd_str")]
    pub cost_usd: Usd,
}

/// A budget in force (a row of `budget_status`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct BudgetLine {
    /// The setting: budget.daily_usd, budget.monthly_usd or `<job>.budget_monthly_usd`.
    pub budget: String,
    pub scope: String,
    /// `day` or `month`.
    pub period_kind: String,
    /// The current UTC day, or the first day of the current UTC month.
    pub period: NaiveDate,
    #[serde(serialize_with = "usd_str")]
    #[sqlx(try_from = "Decimal")]
    pub cap_usd: Usd,
    /// Answered calls plus estimates of calls in flight.
    #[serde(serialize_with = "usd_str")]
    #[sqlx(try_from = "Decimal")]
    pub booked_usd: Usd,
    #[serde(serialize_with = "usd_str")]
    #[sqlx(try_from = "Decimal")]
    pub left_usd: Usd,
    /// Queued calls this budget holds back.
    pub held_calls: i64,
}

/// The newest account snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// Null when the API reported no balance.
    #[serde(serialize_with = "opt_usd_str")]
    pub balance_usd: Option<Usd>,
    pub taken_at: DateTime<Utc>,
    pub api_host: String,
}

/// What `linkledger spend` reports; `--json` prints it as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpendReport {
    /// First UTC day counted (from 00:00 UTC).
    pub since: NaiveDate,
    pub by: SpendBy,
    /// True: only sandbox calls (not real spend). False: only real calls.
    pub sandbox: bool,
    pub groups: Vec<SpendGroup>,
    pub total: SpendFigures,
    /// The failed-but-charged calls of `total`, per outcome.
    pub failed_charged_by_outcome: Vec<OutcomeCost>,
    /// Free credentials checks (`appendix/user_data`) of the report's kind: no job's
    /// call, left out of the groups and the total (as `runs` leaves them out).
    pub credentials_checks: i64,
    /// Without `--sandbox`: the sandbox calls left out and what they would have cost.
    /// Null with `--sandbox`.
    pub sandbox_left_out: Option<LeftOut>,
    /// Every budget in force, with the current day's or month's figures.
    pub budgets: Vec<BudgetLine>,
    /// The newest account snapshot of the same kind (real or sandbox); null: unknown.
    pub balance: Option<Balance>,
}

/// A request counted in `calls`: it was answered or abandoned.
const CALL: &str = "c.outcome NOT IN ('sent', 'reused')";
/// A request that cost money and brought no data.
const FAILED_CHARGED: &str = "c.outcome NOT IN ('ok', 'reused', 'sent') AND c.cost_usd > 0";
/// A request an answer came back for, with the estimate reserved before it was sent.
const ANSWERED: &str =
    "c.outcome NOT IN ('sent', 'abandoned', 'reused') AND c.estimated_usd IS NOT NULL";
/// Requests of the report's kind sent on or after the day `$1` (00:00 UTC, whatever the
/// session's time zone), the credentials check aside.
const SELECTED: &str = "c.sandbox = $2 AND c.endpoint <> $3
    AND ($1::date IS NULL OR c.started_at >= $1::date::timestamp AT TIME ZONE 'UTC')";

#[derive(sqlx::FromRow)]
struct GroupRow {
    key: String,
    run_id: Option<i64>,
    run_job: Option<String>,
    run_kind: Option<String>,
    run_status: Option<String>,
    #[sqlx(flatten)]
    figures: SpendFigures,
}

/// The ledger's figures per group (`None`: one group of everything).
async fn figures(
    store: &Store,
    since: Option<NaiveDate>,
    by: Option<SpendBy>,
    sandbox: bool,
) -> Result<Vec<GroupRow>, StoreError> {
    let (key, run, group) = match by {
        None => ("'total'", "", ""),
        Some(SpendBy::Day) => (
            "to_char((c.started_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')",
            "",
            "GROUP BY 1 ORDER BY 1",
        ),
        Some(SpendBy::Job) => ("coalesce(c.job, '(none)')", "", "GROUP BY 1 ORDER BY 1"),
        Some(SpendBy::Endpoint) => ("c.endpoint", "", "GROUP BY 1 ORDER BY 1"),
        Some(SpendBy::Run) => (
            "''",
            "LEFT JOIN linkledger.runs r ON r.id = c.run_id",
            "GROUP BY c.run_id, r.job, r.kind, r.status ORDER BY c.run_id NULLS FIRST",
        ),
    };
    let run_cols = if by == Some(SpendBy::Run) {
        "c.run_id, r.job AS run_job, r.kind AS run_kind, r.status AS run_status"
    } else {
        "NULL::bigint AS run_id, NULL::text AS run_job, NULL::text AS run_kind,
         NULL::text AS run_status"
    };
    let sql = format!(
        "SELECT {key} AS key, {run_cols},
                count(*) FILTER (WHERE {CALL})::bigint AS calls,
                coalesce(sum(c.rows_written), 0)::bigint AS rows,
                coalesce(sum(c.cost_usd), 0) AS cost_usd,
                count(*) FILTER (WHERE {FAILED_CHARGED})::bigint AS failed_charged_calls,
                coalesce(sum(c.cost_usd) FILTER (WHERE {FAILED_CHARGED}), 0)
                    AS failed_charged_usd,
                count(*) FILTER (WHERE {ANSWERED})::bigint AS answered_calls,
                coalesce(sum(c.estimated_usd) FILTER (WHERE {ANSWERED}), 0)
                    AS answered_estimated_usd,
                coalesce(sum(c.cost_usd) FILTER (WHERE {ANSWERED}), 0) AS answered_cost_usd,
                count(*) FILTER (WHERE c.outcome = 'reused')::bigint AS reused_calls,
                coalesce(sum(o.cost_usd) FILTER (WHERE c.outcome = 'reused'), 0)
                    AS reused_saved_usd,
                count(*) FILTER (WHERE c.outcome = 'sent')::bigint AS in_flight_calls,
                coalesce(sum(c.estimated_usd) FILTER (WHERE c.outcome = 'sent'), 0)
                    AS in_flight_estimated_usd,
                count(*) FILTER (WHERE c.cost_estimated)::bigint AS cost_estimated_calls,
                coalesce(sum(c.cost_usd) FILTER (WHERE c.cost_estimated), 0)
                    AS cost_estimated_usd
         FROM linkledger.api_calls c
         LEFT JOIN linkledger.api_calls o ON o.id = c.reused_call_id
         {run}
         WHERE {SELECTED}
         {group}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(since)
        .bind(sandbox)
        .bind(CREDENTIALS_CHECK)
        .fetch_all(store.pool())
        .await?)
}

/// The `spend` report: the ledger since `since` (UTC day) grouped `by`, of real calls,
/// or of sandbox calls only when `sandbox`; the budgets in force and the balance.
pub async fn spend_report(
    store: &Store,
    since: NaiveDate,
    by: SpendBy,
    sandbox: bool,
) -> Result<SpendReport, StoreError> {
    let groups: Vec<SpendGroup> = figures(store, Some(since), Some(by), sandbox)
        .await?
        .into_iter()
        .map(|g| {
            let run = g.run_id.map(|id| RunInfo {
                id,
                job: g.run_job.unwrap_or_default(),
                kind: g.run_kind.unwrap_or_default(),
                status: g.run_status.unwrap_or_default(),
            });
            match by {
                SpendBy::Run => SpendGroup {
                    key: run.as_ref().map_or_else(
                        || "(no run)".to_string(),
                        |r| format!("#{} {} ({}, {})", r.id, r.job, r.kind, r.status),
                    ),
                    run: Some(run),
                    figures: g.figures,
                },
                _ => SpendGroup {
                    key: g.key,
                    run: None,
                    figures: g.figures,
                },
            }
        })
        .collect();
    let mut total = SpendFigures::default();
    for g in &groups {
        total += &g.figures;
    }
    let failed_charged_by_outcome = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT c.outcome, count(*)::bigint AS calls, sum(c.cost_usd) AS cost_usd
         FROM linkledger.api_calls c
         WHERE {SELECTED} AND {FAILED_CHARGED}
         GROUP BY 1 ORDER BY 3 DESC, 1"
    )))
    .bind(since)
    .bind(sandbox)
    .bind(CREDENTIALS_CHECK)
    .fetch_all(store.pool())
    .await?;
    // The free credentials checks of the report's kind: no job's call, counted apart.
    let credentials_checks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM linkledger.api_calls c
         WHERE c.sandbox = $2 AND c.endpoint = $3 AND c.outcome <> 'sent'
           AND ($1::date IS NULL OR c.started_at >= $1::date::timestamp AT TIME ZONE 'UTC')",
    )
    .bind(since)
    .bind(sandbox)
    .bind(CREDENTIALS_CHECK)
    .fetch_one(store.pool())
    .await?;
    let sandbox_left_out = if sandbox {
        None
    } else {
        let other = figures(store, Some(since), None, true)
            .await?
            .pop()
            .map(|g| g.figures)
            .unwrap_or_default();
        Some(LeftOut {
            calls: other.calls,
            cost_usd: other.cost_usd,
        })
    };
    let mut budgets: Vec<BudgetLine> = sqlx::query_as(
        "SELECT budget, scope, period_kind, period, cap_usd, booked_usd, left_usd, held_calls
         FROM linkledger.budget_status ORDER BY budget",
    )
    .fetch_all(store.pool())
    .await?;
    // The account's day, then its month, then the jobs' by name.
    budgets.sort_by_key(|b| match Scope::parse(&b.scope) {
        Some(Scope::Daily) => 0,
        Some(Scope::Monthly) => 1,
        _ => 2,
    });
    let balance = sqlx::query_as::<_, (Option<Decimal>, DateTime<Utc>, String)>(
        "SELECT balance_usd, taken_at, api_host FROM linkledger.account_snapshots
         WHERE sandbox = $1 ORDER BY taken_at DESC, id DESC LIMIT 1",
    )
    .bind(sandbox)
    .fetch_optional(store.pool())
    .await?
    .map(|(balance, taken_at, api_host)| Balance {
        balance_usd: balance.map(Usd),
        taken_at,
        api_host,
    });
    Ok(SpendReport {
        since,
        by,
        sandbox,
        groups,
        total,
        failed_charged_by_outcome,
        credentials_checks,
        sandbox_left_out,
        budgets,
        balance,
    })
}
