-- linkledger: budgets that are caps, estimates beside costs, the account's balance and
-- price list, answers reused instead of bought twice, and sandbox spend kept apart.
-- Never edit a migration that has landed; add one.

-- What each request was expected to cost, what the API reported, who answered.
ALTER TABLE linkledger.api_calls
    ADD COLUMN estimated_usd     numeric,
    ADD COLUMN reported_cost_usd numeric,
    ADD COLUMN booked_on         date,
    ADD COLUMN budget_usd        numeric,
    ADD COLUMN api_host          text,
    ADD COLUMN sandbox           boolean NOT NULL DEFAULT false,
    ADD COLUMN reused_call_id    bigint REFERENCES linkledger.api_calls (id);
-- What earlier versions spent counts against the budgets of its day and month.
UPDATE linkledger.api_calls
SET reported_cost_usd = cost_usd,
    booked_on = CASE WHEN endpoint <> 'appendix/user_data'
                     THEN (started_at AT TIME ZONE 'UTC')::date END,
    budget_usd = CASE WHEN endpoint <> 'appendix/user_data' THEN coalesce(cost_usd, 0) END;
CREATE INDEX api_calls_booked_idx ON linkledger.api_calls (booked_on) WHERE booked_on IS NOT NULL;
COMMENT ON COLUMN linkledger.api_calls.cost_usd IS 'What the request cost the user, USD: the cost the API reported (or a gateway''s flat api.price_per_call); for outcome abandoned (no answer ever arrived) the estimate; 0 for reused';
COMMENT ON COLUMN linkledger.api_calls.estimated_usd IS 'The estimate reserved against the budgets before the request was sent (price list × estimated rows)';
COMMENT ON COLUMN linkledger.api_calls.reported_cost_usd IS 'The cost the API reported, USD, whatever the user pays (NULL when it reported none)';
COMMENT ON COLUMN linkledger.api_calls.booked_on IS 'UTC day whose budgets the request was booked against; NULL when it counts against none (sandbox, reused, free)';
COMMENT ON COLUMN linkledger.api_calls.budget_usd IS 'What the request counts against its budgets: its estimate while in flight (or when no answer came), then what it cost';
COMMENT ON COLUMN linkledger.api_calls.api_host IS 'Host of the API that answered (api.base_url)';
COMMENT ON COLUMN linkledger.api_calls.sandbox IS 'Answered by a sandbox (linkledger sandbox, or DataForSEO''s sandbox host): not real spend, never counted against a budget';
COMMENT ON COLUMN linkledger.api_calls.reused_call_id IS 'For outcome reused: the request of the same day, endpoint and task whose answer was reused instead of buying it again';

ALTER TABLE linkledger.api_calls DROP CONSTRAINT api_calls_outcome_check;
ALTER TABLE linkledger.api_calls ADD CONSTRAINT api_calls_outcome_check
    CHECK (outcome IN ('sent', 'ok', 'throttled', 'retryable', 'halt', 'daily_limit',
                       'rejected', 'invalid_response', 'abandoned', 'reused'));
COMMENT ON COLUMN linkledger.api_calls.outcome IS 'sent (no answer recorded yet), ok, throttled, retryable, halt (auth/payment/wrong path), daily_limit, rejected (request error, not retried), invalid_response (stored raw but could not be read or normalized), abandoned (no answer: the process died or was interrupted), reused (the same request''s answer of the same UTC day was reused; nothing sent)';
CREATE INDEX api_calls_reuse_idx ON linkledger.api_calls (endpoint, started_at) WHERE outcome = 'ok';

-- Work held back by a budget waits, queued, with the budget that holds it.
ALTER TABLE linkledger.work ADD COLUMN held_by text;
COMMENT ON COLUMN linkledger.work.held_by IS 'The budget holding a queued call back (budget.daily_usd, budget.monthly_usd or <job>.budget_monthly_usd) until its next period or a raised cap; NULL otherwise';

-- Spend booked per budget and period: reserved estimates of calls in flight plus what
-- answered calls cost. Every reservation checks and books it in one statement, so
-- concurrent callers cannot jointly cross a cap.
CREATE TABLE linkledger.spend_totals (
    scope      text    NOT NULL,
    period     date    NOT NULL,
    booked_usd numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, period)
);
COMMENT ON TABLE linkledger.spend_totals IS 'Spend booked against each budget scope and period: estimates of calls in flight plus the cost of answered ones (sandbox calls never count)';
COMMENT ON COLUMN linkledger.spend_totals.scope IS 'daily, monthly, or job:<name>';
COMMENT ON COLUMN linkledger.spend_totals.period IS 'The UTC day (daily) or the first day of the UTC month (monthly, job)';
COMMENT ON COLUMN linkledger.spend_totals.booked_usd IS 'USD booked in the period';

-- The caps in force, as the last process that started or reloaded configured them.
CREATE TABLE linkledger.budgets (
    scope      text        PRIMARY KEY,
    name       text        NOT NULL,
    cap_usd    numeric     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE linkledger.budgets IS 'Budget caps in force (from budget.daily_usd, budget.monthly_usd and each job''s budget_monthly_usd), as the last process that started or reloaded set them';
COMMENT ON COLUMN linkledger.budgets.scope IS 'daily, monthly, or job:<name> (as in spend_totals)';
COMMENT ON COLUMN linkledger.budgets.name IS 'The setting that sets it: budget.daily_usd, budget.monthly_usd or <job>.budget_monthly_usd';
COMMENT ON COLUMN linkledger.budgets.cap_usd IS 'The cap, USD per period';
COMMENT ON COLUMN linkledger.budgets.updated_at IS 'When it was last set';

-- The account as the free appendix/user_data reported it: balance and price list.
CREATE TABLE linkledger.account_snapshots (
    id          bigserial   PRIMARY KEY,
    taken_at    timestamptz NOT NULL DEFAULT now(),
    api_host    text        NOT NULL,
    sandbox     boolean     NOT NULL DEFAULT false,
    balance_usd numeric,
    prices      jsonb       NOT NULL DEFAULT '{}',
    body        jsonb       NOT NULL
);
CREATE INDEX account_snapshots_taken_idx ON linkledger.account_snapshots (taken_at DESC);
COMMENT ON TABLE linkledger.account_snapshots IS 'The account''s balance and price list as appendix/user_data reported them (at start and hourly)';
COMMENT ON COLUMN linkledger.account_snapshots.id IS 'Snapshot id';
COMMENT ON COLUMN linkledger.account_snapshots.taken_at IS 'When it was read';
COMMENT ON COLUMN linkledger.account_snapshots.api_host IS 'Host of the API that answered';
COMMENT ON COLUMN linkledger.account_snapshots.sandbox IS 'Answered by a sandbox';
COMMENT ON COLUMN linkledger.account_snapshots.balance_usd IS 'Money left on the account, USD (NULL when not reported)';
COMMENT ON COLUMN linkledger.account_snapshots.prices IS 'The Backlinks live price list read from it: {endpoint: {"per_request": USD, "per_row": USD}}';
COMMENT ON COLUMN linkledger.account_snapshots.body IS 'The whole answer as received';

-- Spend views: sandbox calls are kept apart (the column), so BI can filter them out.
CREATE OR REPLACE VIEW linkledger.spend_daily AS
SELECT (c.started_at AT TIME ZONE 'UTC')::date AS day,
       c.endpoint,
       c.job,
       count(*) FILTER (WHERE c.outcome NOT IN ('reused', 'sent'))::bigint AS calls,
       count(*) FILTER (WHERE c.outcome NOT IN ('ok', 'reused', 'sent'))::bigint AS failed_calls,
       coalesce(sum(c.cost_usd), 0)::numeric         AS cost_usd,
       c.sandbox
FROM linkledger.api_calls c
GROUP BY 1, 2, 3, c.sandbox;
COMMENT ON COLUMN linkledger.spend_daily.calls IS 'HTTP requests answered (or abandoned), failed attempts included; reused answers and requests in flight not counted';
COMMENT ON COLUMN linkledger.spend_daily.failed_calls IS 'Requests that brought no data';
COMMENT ON COLUMN linkledger.spend_daily.cost_usd IS 'What they cost the user, USD';
COMMENT ON COLUMN linkledger.spend_daily.sandbox IS 'Sandbox calls (not real spend)';

CREATE OR REPLACE VIEW linkledger.spend_monthly AS
SELECT date_trunc('month', c.started_at AT TIME ZONE 'UTC')::date AS month,
       c.job,
       count(*) FILTER (WHERE c.outcome NOT IN ('reused', 'sent'))::bigint AS calls,
       coalesce(sum(c.cost_usd), 0)::numeric AS cost_usd
FROM linkledger.api_calls c
WHERE NOT c.sandbox
GROUP BY 1, 2;
COMMENT ON VIEW linkledger.spend_monthly IS 'Real (non-sandbox) spend per UTC month and job';
COMMENT ON COLUMN linkledger.spend_monthly.calls IS 'HTTP requests answered (or abandoned); reused answers not counted';
COMMENT ON COLUMN linkledger.spend_monthly.cost_usd IS 'What they cost the user, USD';

CREATE OR REPLACE VIEW linkledger.call_failures AS
SELECT c.id, c.run_id, c.job, c.collection, c.endpoint, c.targets, c.attempt, c.started_at,
       c.outcome, c.http_status, coalesce(c.task_status_code, c.status_code) AS status_code,
       coalesce(c.error, c.task_status_message, c.status_message) AS reason, c.cost_usd
FROM linkledger.api_calls c
WHERE c.outcome NOT IN ('ok', 'sent', 'reused');

CREATE VIEW linkledger.spend_by_job_month AS
SELECT date_trunc('month', c.started_at AT TIME ZONE 'UTC')::date AS month,
       coalesce(c.job, '(none)') AS job,
       count(*) FILTER (WHERE c.outcome NOT IN ('reused', 'sent'))::bigint AS calls,
       coalesce(sum(c.rows_written), 0)::bigint AS rows,
       coalesce(sum(c.cost_usd), 0)::numeric AS cost_usd,
       coalesce(sum(c.estimated_usd) FILTER (WHERE c.outcome <> 'reused'), 0)::numeric AS estimated_usd,
       coalesce(sum(c.cost_usd) FILTER (WHERE c.outcome NOT IN ('ok', 'reused')), 0)::numeric AS failed_charged_usd,
       count(*) FILTER (WHERE c.outcome = 'reused')::bigint AS reused_calls
FROM linkledger.api_calls c
WHERE NOT c.sandbox
GROUP BY 1, 2;
COMMENT ON VIEW linkledger.spend_by_job_month IS 'Real (non-sandbox) spend per UTC month and job: requests, rows, cost, the estimates beside it, what failed calls cost, and answers reused instead of bought';
COMMENT ON COLUMN linkledger.spend_by_job_month.month IS 'First day of the UTC month';
COMMENT ON COLUMN linkledger.spend_by_job_month.job IS 'Job name ((none) for the credentials checks)';
COMMENT ON COLUMN linkledger.spend_by_job_month.calls IS 'Requests answered (or abandoned), retries included';
COMMENT ON COLUMN linkledger.spend_by_job_month.rows IS 'Warehouse rows written from them';
COMMENT ON COLUMN linkledger.spend_by_job_month.cost_usd IS 'What they cost, USD';
COMMENT ON COLUMN linkledger.spend_by_job_month.estimated_usd IS 'What they were estimated to cost, USD';
COMMENT ON COLUMN linkledger.spend_by_job_month.failed_charged_usd IS 'What requests that brought no data cost, USD';
COMMENT ON COLUMN linkledger.spend_by_job_month.reused_calls IS 'Calls answered from an answer of the same day instead of being bought';

CREATE VIEW linkledger.budget_status AS
SELECT b.name AS budget,
       b.scope,
       CASE WHEN b.scope = 'daily' THEN 'day' ELSE 'month' END AS period_kind,
       CASE WHEN b.scope = 'daily' THEN (now() AT TIME ZONE 'UTC')::date
            ELSE date_trunc('month', now() AT TIME ZONE 'UTC')::date END AS period,
       b.cap_usd,
       coalesce(t.booked_usd, 0) AS booked_usd,
       b.cap_usd - coalesce(t.booked_usd, 0) AS left_usd,
       (SELECT count(*) FROM linkledger.work w
        WHERE w.state = 'queued' AND w.held_by = b.name)::bigint AS held_calls
FROM linkledger.budgets b
LEFT JOIN linkledger.spend_totals t
       ON t.scope = b.scope
      AND t.period = CASE WHEN b.scope = 'daily' THEN (now() AT TIME ZONE 'UTC')::date
                          ELSE date_trunc('month', now() AT TIME ZONE 'UTC')::date END;
COMMENT ON VIEW linkledger.budget_status IS 'Each budget in force now: its cap, what is booked against it in the current UTC day or month, what is left, and the calls it holds back';
COMMENT ON COLUMN linkledger.budget_status.budget IS 'The setting: budget.daily_usd, budget.monthly_usd or <job>.budget_monthly_usd';
COMMENT ON COLUMN linkledger.budget_status.scope IS 'daily, monthly or job:<name>';
COMMENT ON COLUMN linkledger.budget_status.period_kind IS 'day or month';
COMMENT ON COLUMN linkledger.budget_status.period IS 'The current UTC day, or the first day of the current UTC month';
COMMENT ON COLUMN linkledger.budget_status.cap_usd IS 'The cap, USD';
COMMENT ON COLUMN linkledger.budget_status.booked_usd IS 'Booked in the period: calls answered plus estimates of calls in flight, USD';
COMMENT ON COLUMN linkledger.budget_status.left_usd IS 'Cap minus booked, USD';
COMMENT ON COLUMN linkledger.budget_status.held_calls IS 'Queued calls this budget holds back';

-- Who buys each distinct call today: the first attempt registers here; an attempt of the
-- same endpoint and task (another collection's, another fire's) waits for that answer
-- and reuses it instead of buying it too. Rows of past days are pruned.
CREATE TABLE linkledger.purchases (
    day         date    NOT NULL,
    api_host    text    NOT NULL,
    endpoint    text    NOT NULL,
    request_md5 text    NOT NULL,
    work_id     bigint  NOT NULL,
    attempt     integer NOT NULL,
    PRIMARY KEY (day, api_host, endpoint, request_md5)
);
COMMENT ON TABLE linkledger.purchases IS 'The attempt buying each distinct call (endpoint and task) on a UTC day; other attempts of the same call wait for its answer and reuse it';
COMMENT ON COLUMN linkledger.purchases.day IS 'UTC day';
COMMENT ON COLUMN linkledger.purchases.api_host IS 'Host of the API';
COMMENT ON COLUMN linkledger.purchases.endpoint IS 'API endpoint';
COMMENT ON COLUMN linkledger.purchases.request_md5 IS 'md5 of the task as jsonb text';
COMMENT ON COLUMN linkledger.purchases.work_id IS 'The work item buying it';
COMMENT ON COLUMN linkledger.purchases.attempt IS 'The claim of that item buying it (a later claim, or another item, takes over once it is gone)';
