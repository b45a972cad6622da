-- linkledger: a paid answer is durable on arrival. A large answer is committed to
-- raw_responses as it arrives, before it waits for a load permit, with its ledger row
-- `received` (answered, not yet read); reading it back from the database settles the
-- row (status codes, outcome, cost, the reservation). A kill -9 then loses only the
-- requests in flight: a stored answer is settled and loaded from its body by the next
-- claim of its item, or by the next attempt of the same call that day, never bought
-- again (issue: a killed backfill bought 45% of its job twice). Never edit a migration
-- that has landed; add one.

ALTER TABLE linkledger.api_calls DROP CONSTRAINT api_calls_outcome_check;
ALTER TABLE linkledger.api_calls ADD CONSTRAINT api_calls_outcome_check
    CHECK (outcome IN ('sent', 'received', 'ok', 'throttled', 'retryable', 'halt', 'daily_limit',
                       'rejected', 'invalid_response', 'abandoned', 'reused'));
COMMENT ON COLUMN linkledger.api_calls.outcome IS 'sent (no answer recorded yet), received (the answer is stored in raw_responses but not read yet: its cost and status codes are not known), ok, throttled, retryable, halt (auth/payment/wrong path), daily_limit, rejected (request error, not retried), invalid_response (stored raw but could not be read or normalized), abandoned (no answer: the process died or was interrupted), reused (the same request''s answer of the same UTC day was reused; nothing sent)';
COMMENT ON COLUMN linkledger.api_calls.cost_usd IS 'What the request cost the user, USD: the cost the API reported (or a gateway''s flat api.price_per_call); for outcome abandoned (no answer ever arrived) and received (the answer not read yet) the estimate; 0 for reused';

-- An answer bought today is found by its request's hash, whether it was read (ok) or
-- stored as it arrived and not read yet (received).
CREATE INDEX api_calls_request_md5_bought_idx
    ON linkledger.api_calls (endpoint, md5((request - 'tag')::text))
    WHERE outcome IN ('ok', 'received');
DROP INDEX linkledger.api_calls_request_md5_idx;

-- An answer stored and not read yet is no failure: it is counted as a request
-- answered, not as one that brought no data, until it is read.
CREATE OR REPLACE VIEW linkledger.spend_daily AS
SELECT (c.started_at AT TIME ZONE 'UTC')::date AS day,
       c.endpoint,
       c.job,
       count(*) FILTER (WHERE c.outcome NOT IN ('reused', 'sent'))::bigint AS calls,
       count(*) FILTER (WHERE c.outcome NOT IN ('ok', 'received', 'reused', 'sent'))::bigint AS failed_calls,
       coalesce(sum(c.cost_usd), 0)::numeric         AS cost_usd,
       c.sandbox
FROM linkledger.api_calls c
GROUP BY 1, 2, 3, c.sandbox;
COMMENT ON COLUMN linkledger.spend_daily.failed_calls IS 'Requests that brought no data (an answer not read yet is not counted)';

CREATE OR REPLACE VIEW linkledger.call_failures AS
SELECT c.id, c.run_id, c.job, c.collection, c.endpoint, c.targets, c.attempt, c.started_at,
       c.outcome, c.http_status, coalesce(c.task_status_code, c.status_code) AS status_code,
       coalesce(c.error, c.task_status_message, c.status_message) AS reason, c.cost_usd
FROM linkledger.api_calls c
WHERE c.outcome NOT IN ('ok', 'received', 'sent', 'reused');

CREATE OR REPLACE VIEW linkledger.spend_by_job_month AS
SELECT date_trunc('month', c.started_at AT TIME ZONE 'UTC')::date AS month,
       coalesce(c.job, '(none)') AS job,
       count(*) FILTER (WHERE c.outcome NOT IN ('reused', 'sent'))::bigint AS calls,
       coalesce(sum(c.rows_written), 0)::bigint AS rows,
       coalesce(sum(c.cost_usd), 0)::numeric AS cost_usd,
       coalesce(sum(c.estimated_usd) FILTER (WHERE c.outcome <> 'reused'), 0)::numeric AS estimated_usd,
       coalesce(sum(c.cost_usd) FILTER (WHERE c.outcome NOT IN ('ok', 'received', 'reused')), 0)::numeric AS failed_charged_usd,
       count(*) FILTER (WHERE c.outcome = 'reused')::bigint AS reused_calls
FROM linkledger.api_calls c
WHERE NOT c.sandbox
GROUP BY 1, 2;
