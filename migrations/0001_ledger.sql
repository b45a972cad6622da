-- linkledger: the run log, the spend ledger and the raw responses.
-- Normalized tables come in 0002. Never edit a migration that has landed; add one.

CREATE SCHEMA IF NOT EXISTS linkledger;
COMMENT ON SCHEMA linkledger IS 'linkledger: DataForSEO Backlinks API data, the runs that collected it and the ledger of what it cost';

CREATE TABLE linkledger.runs (
    id            bigserial PRIMARY KEY,
    job           text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('scheduled', 'once', 'backfill', 'replay', 'demo')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    status        text        NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'succeeded', 'failed', 'halted', 'interrupted')),
    calls         bigint      NOT NULL DEFAULT 0,
    failed_calls  bigint      NOT NULL DEFAULT 0,
    rows_written  bigint      NOT NULL DEFAULT 0,
    cost_usd      numeric     NOT NULL DEFAULT 0,
    message       text
);
CREATE INDEX runs_job_started_idx ON linkledger.runs (job, started_at DESC);
COMMENT ON TABLE linkledger.runs IS 'One row per run of a job: scheduled (daemon), once (run --once), backfill, replay or demo';
COMMENT ON COLUMN linkledger.runs.id IS 'Run id';
COMMENT ON COLUMN linkledger.runs.job IS 'Job name (the name key of its job file)';
COMMENT ON COLUMN linkledger.runs.kind IS 'scheduled, once, backfill, replay or demo';
COMMENT ON COLUMN linkledger.runs.started_at IS 'When the run started';
COMMENT ON COLUMN linkledger.runs.finished_at IS 'When the run finished; NULL while running or if the process died';
COMMENT ON COLUMN linkledger.runs.status IS 'running, succeeded (every call succeeded), failed (some call failed), halted (auth/payment/limit stopped it), interrupted';
COMMENT ON COLUMN linkledger.runs.calls IS 'HTTP requests made by the run, failed attempts and retries included';
COMMENT ON COLUMN linkledger.runs.failed_calls IS 'Logical calls that ended without data (after retries)';
COMMENT ON COLUMN linkledger.runs.rows_written IS 'Warehouse rows written by the run (breakdown rows included)';
COMMENT ON COLUMN linkledger.runs.cost_usd IS 'Sum of the cost the API reported for the run''s requests, USD';
COMMENT ON COLUMN linkledger.runs.message IS 'Why the run failed or halted, if it did';

CREATE TABLE linkledger.api_calls (
    id                  bigserial PRIMARY KEY,
    run_id              bigint      REFERENCES linkledger.runs (id),
    job                 text,
    collection          text,
    endpoint            text        NOT NULL,
    targets             text[]      NOT NULL DEFAULT '{}',
    request             jsonb       NOT NULL,
    attempt             integer     NOT NULL,
    started_at          timestamptz NOT NULL,
    duration_ms         bigint,
    http_status         integer,
    status_code         integer,
    status_message      text,
    task_status_code    integer,
    task_status_message text,
    outcome             text        NOT NULL
                        CHECK (outcome IN ('sent', 'ok', 'throttled', 'retryable', 'halt',
                                           'daily_limit', 'rejected', 'invalid_response')),
    cost_usd            numeric,
    error               text,
    rows_written        bigint
);
CREATE INDEX api_calls_started_idx ON linkledger.api_calls (started_at);
CREATE INDEX api_calls_run_idx ON linkledger.api_calls (run_id);
CREATE INDEX api_calls_endpoint_started_idx ON linkledger.api_calls (endpoint, started_at);
COMMENT ON TABLE linkledger.api_calls IS 'The spend ledger: one row per HTTP request made to the API (every attempt, failed ones included), written before the request is sent and completed with its answer';
COMMENT ON COLUMN linkledger.api_calls.id IS 'Request id';
COMMENT ON COLUMN linkledger.api_calls.run_id IS 'The run that made the request (NULL for preflight checks outside a run)';
COMMENT ON COLUMN linkledger.api_calls.job IS 'Job name';
COMMENT ON COLUMN linkledger.api_calls.collection IS 'Collection name within the job';
COMMENT ON COLUMN linkledger.api_calls.endpoint IS 'API endpoint, e.g. summary, bulk_ranks, or appendix/user_data';
COMMENT ON COLUMN linkledger.api_calls.targets IS 'Targets the request asked about';
COMMENT ON COLUMN linkledger.api_calls.request IS 'The task object sent (credentials are never part of it)';
COMMENT ON COLUMN linkledger.api_calls.attempt IS 'Attempt number of this logical call, from 1';
COMMENT ON COLUMN linkledger.api_calls.started_at IS 'When the request was sent';
COMMENT ON COLUMN linkledger.api_calls.duration_ms IS 'Time until the whole answer arrived, milliseconds';
COMMENT ON COLUMN linkledger.api_calls.http_status IS 'HTTP status; NULL when no answer arrived (network error, or the process stopped while waiting)';
COMMENT ON COLUMN linkledger.api_calls.status_code IS 'Envelope status_code (20000 = ok)';
COMMENT ON COLUMN linkledger.api_calls.status_message IS 'Envelope status_message';
COMMENT ON COLUMN linkledger.api_calls.task_status_code IS 'Task status_code (20000 = ok)';
COMMENT ON COLUMN linkledger.api_calls.task_status_message IS 'Task status_message, the API''s own words about a rejected request';
COMMENT ON COLUMN linkledger.api_calls.outcome IS 'sent (no answer recorded yet), ok, throttled, retryable, halt (auth/payment), daily_limit, rejected (request error, not retried), invalid_response (answer could not be normalized)';
COMMENT ON COLUMN linkledger.api_calls.cost_usd IS 'Cost the API reported for this request, USD; NULL when it reported none';
COMMENT ON COLUMN linkledger.api_calls.error IS 'Why the request failed, in words';
COMMENT ON COLUMN linkledger.api_calls.rows_written IS 'Warehouse rows written from this answer';

CREATE TABLE linkledger.raw_responses (
    id           bigserial PRIMARY KEY,
    api_call_id  bigint      NOT NULL UNIQUE REFERENCES linkledger.api_calls (id),
    endpoint     text        NOT NULL,
    received_at  timestamptz NOT NULL,
    body         jsonb       NOT NULL
);
CREATE INDEX raw_responses_endpoint_received_idx ON linkledger.raw_responses (endpoint, received_at);
COMMENT ON TABLE linkledger.raw_responses IS 'Every successful response body, committed before it is normalized; linkledger replay rebuilds the normalized tables from here without calling the API';
COMMENT ON COLUMN linkledger.raw_responses.id IS 'Raw response id; normalized rows point here through raw_response_id';
COMMENT ON COLUMN linkledger.raw_responses.api_call_id IS 'The ledger row of the request that got this answer';
COMMENT ON COLUMN linkledger.raw_responses.endpoint IS 'API endpoint';
COMMENT ON COLUMN linkledger.raw_responses.received_at IS 'When the answer arrived; its UTC date is the collected_on of the rows it produced';
COMMENT ON COLUMN linkledger.raw_responses.body IS 'The whole response envelope as received, unknown fields included';

CREATE VIEW linkledger.spend_daily AS
SELECT (c.started_at AT TIME ZONE 'UTC')::date AS day,
       c.endpoint,
       c.job,
       count(*)::bigint                              AS calls,
       count(*) FILTER (WHERE c.outcome <> 'ok')::bigint AS failed_calls,
       coalesce(sum(c.cost_usd), 0)::numeric         AS cost_usd
FROM linkledger.api_calls c
GROUP BY 1, 2, 3;
COMMENT ON VIEW linkledger.spend_daily IS 'Spend per UTC day, endpoint and job: requests made and the cost the API reported';
COMMENT ON COLUMN linkledger.spend_daily.day IS 'UTC day the requests were sent';
COMMENT ON COLUMN linkledger.spend_daily.endpoint IS 'API endpoint';
COMMENT ON COLUMN linkledger.spend_daily.job IS 'Job name';
COMMENT ON COLUMN linkledger.spend_daily.calls IS 'HTTP requests, failed attempts included';
COMMENT ON COLUMN linkledger.spend_daily.failed_calls IS 'Requests whose outcome was not ok';
COMMENT ON COLUMN linkledger.spend_daily.cost_usd IS 'Cost reported by the API, USD';

CREATE VIEW linkledger.spend_monthly AS
SELECT date_trunc('month', c.started_at AT TIME ZONE 'UTC')::date AS month,
       c.job,
       count(*)::bigint                      AS calls,
       coalesce(sum(c.cost_usd), 0)::numeric AS cost_usd
FROM linkledger.api_calls c
GROUP BY 1, 2;
COMMENT ON VIEW linkledger.spend_monthly IS 'Spend per UTC month and job';
COMMENT ON COLUMN linkledger.spend_monthly.month IS 'First day of the UTC month';
COMMENT ON COLUMN linkledger.spend_monthly.job IS 'Job name';
COMMENT ON COLUMN linkledger.spend_monthly.calls IS 'HTTP requests, failed attempts included';
COMMENT ON COLUMN linkledger.spend_monthly.cost_usd IS 'Cost reported by the API, USD';

CREATE VIEW linkledger.call_failures AS
SELECT c.id, c.run_id, c.job, c.collection, c.endpoint, c.targets, c.attempt, c.started_at,
       c.outcome, c.http_status, coalesce(c.task_status_code, c.status_code) AS status_code,
       coalesce(c.error, c.task_status_message, c.status_message) AS reason, c.cost_usd
FROM linkledger.api_calls c
WHERE c.outcome NOT IN ('ok', 'sent');
COMMENT ON VIEW linkledger.call_failures IS 'Every request that did not succeed, with the reason';
COMMENT ON COLUMN linkledger.call_failures.id IS 'Request id (api_calls.id)';
COMMENT ON COLUMN linkledger.call_failures.run_id IS 'Run id';
COMMENT ON COLUMN linkledger.call_failures.job IS 'Job name';
COMMENT ON COLUMN linkledger.call_failures.collection IS 'Collection name';
COMMENT ON COLUMN linkledger.call_failures.endpoint IS 'API endpoint';
COMMENT ON COLUMN linkledger.call_failures.targets IS 'Targets asked about';
COMMENT ON COLUMN linkledger.call_failures.attempt IS 'Attempt number';
COMMENT ON COLUMN linkledger.call_failures.started_at IS 'When the request was sent';
COMMENT ON COLUMN linkledger.call_failures.outcome IS 'How it failed (see api_calls.outcome)';
COMMENT ON COLUMN linkledger.call_failures.http_status IS 'HTTP status, NULL without an answer';
COMMENT ON COLUMN linkledger.call_failures.status_code IS 'Task status code, else envelope status code';
COMMENT ON COLUMN linkledger.call_failures.reason IS 'Error in words, else the API''s message';
COMMENT ON COLUMN linkledger.call_failures.cost_usd IS 'Cost reported (failed tasks can be charged)';
