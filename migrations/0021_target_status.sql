-- linkledger: which job collects which target, and how each target of each job stands.
-- "Which targets failed to refresh?" had no reliable answer: call_failures listed every
-- failed attempt (HTTP 500s that succeeded on retry among them) with no work item to
-- tell them apart, the targets view left out targets that never stored data, and no
-- view mapped targets to the jobs that collect them (issue 25, points 1 and 5).
-- Never edit a migration that has landed; add one.

-- The job files' targets, as the daemon (at start and on each reload) and run --once
-- last loaded them: one row per job, collection and target, kept when the files drop
-- it (removed_at), so the data of a removed job can still be told apart.
CREATE TABLE linkledger.loaded_targets (
    job           text        NOT NULL,
    collection    text        NOT NULL,
    target        text        NOT NULL,
    endpoint      text        NOT NULL,
    options       jsonb       NOT NULL,
    group_range   text,
    schedule      text        NOT NULL,
    timezone      text        NOT NULL,
    every         interval,
    file          text        NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    changed_at    timestamptz NOT NULL DEFAULT now(),
    removed_at    timestamptz,
    PRIMARY KEY (job, collection, target)
);
COMMENT ON TABLE linkledger.loaded_targets IS 'Every target of every collection the job files have named, as the daemon (at start and on each reload) and run --once last loaded them; a row the files no longer name is kept with removed_at set. The view job_targets is the current ones';
COMMENT ON COLUMN linkledger.loaded_targets.job IS 'Job name';
COMMENT ON COLUMN linkledger.loaded_targets.collection IS 'Collection name within the job';
COMMENT ON COLUMN linkledger.loaded_targets.target IS 'Domain, subdomain or page URL, as sent to the API';
COMMENT ON COLUMN linkledger.loaded_targets.endpoint IS 'API endpoint the collection calls';
COMMENT ON COLUMN linkledger.loaded_targets.options IS 'The request options that change the answer, the API''s defaults filled in: the options column of the warehouse rows its answers store';
COMMENT ON COLUMN linkledger.loaded_targets.group_range IS 'The timeseries'' period (day, week, month, year; the API''s default month filled in); NULL for other endpoints';
COMMENT ON COLUMN linkledger.loaded_targets.schedule IS 'The collection''s schedule as written (5-field crontab or a nickname)';
COMMENT ON COLUMN linkledger.loaded_targets.timezone IS 'The time zone the schedule is evaluated in (UTC unless the job file says otherwise)';
COMMENT ON COLUMN linkledger.loaded_targets.every IS 'The longest time between two consecutive fires of the schedule (a weekday schedule: 3 days), measured when the files were loaded; NULL when it fires less than twice in 800 days';
COMMENT ON COLUMN linkledger.loaded_targets.file IS 'The job file, as the process that loaded it named it';
COMMENT ON COLUMN linkledger.loaded_targets.first_seen_at IS 'When a load first found the target in the collection';
COMMENT ON COLUMN linkledger.loaded_targets.changed_at IS 'When a load last found its endpoint, options, schedule or file changed (or found it again after it was removed)';
COMMENT ON COLUMN linkledger.loaded_targets.removed_at IS 'When a load found the job files no longer name it (the job, the collection or the target gone); NULL while they do';

CREATE VIEW linkledger.job_targets AS
SELECT t.job, t.collection, t.endpoint, t.target, t.options, t.group_range, t.schedule,
       t.timezone, t.every, t.file, t.first_seen_at, t.options::text AS options_key
FROM linkledger.loaded_targets t
WHERE t.removed_at IS NULL;
COMMENT ON VIEW linkledger.job_targets IS 'Which job collects which target: one row per job, collection and target of the job files as last loaded (by the daemon, at start and on each reload, or by run --once). Grain: job, collection, target';
COMMENT ON COLUMN linkledger.job_targets.job IS 'Job name';
COMMENT ON COLUMN linkledger.job_targets.collection IS 'Collection name within the job';
COMMENT ON COLUMN linkledger.job_targets.endpoint IS 'API endpoint the collection calls';
COMMENT ON COLUMN linkledger.job_targets.target IS 'Domain, subdomain or page URL, as sent to the API';
COMMENT ON COLUMN linkledger.job_targets.options IS 'The request options that change the answer, the API''s defaults filled in: join the warehouse tables on target and options';
COMMENT ON COLUMN linkledger.job_targets.group_range IS 'The timeseries'' period (day, week, month, year); NULL for other endpoints';
COMMENT ON COLUMN linkledger.job_targets.schedule IS 'The collection''s schedule as written (5-field crontab or a nickname)';
COMMENT ON COLUMN linkledger.job_targets.timezone IS 'The time zone the schedule is evaluated in';
COMMENT ON COLUMN linkledger.job_targets.every IS 'The longest time between two consecutive fires of the schedule; NULL when it fires less than twice in 800 days';
COMMENT ON COLUMN linkledger.job_targets.file IS 'The job file';
COMMENT ON COLUMN linkledger.job_targets.first_seen_at IS 'When a load first found the target in the collection';

-- The answer options of a planned call's task, as normalization computes them
-- (Endpoint::answer_options): every parameter but the target(s), tag, the dates and
-- group_range, over the API's defaults.
CREATE FUNCTION linkledger.task_options(endpoint text, task jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(linkledger.default_options(endpoint), '{}'::jsonb)
           || (CASE WHEN jsonb_typeof(task) = 'object' THEN task ELSE '{}'::jsonb END
               - ARRAY['target', 'targets', 'tag', 'date_from', 'date_to', 'group_range'])
$$;
COMMENT ON FUNCTION linkledger.task_options(text, jsonb) IS 'The options column the rows of an answer to this task get (the request options that change the answer, the API''s defaults filled in): linkledger.task_options(w.endpoint, w.task) for a work row';

-- The latest ends of a collection's planned calls with given options, newest first, read
-- by target_status (the expression's statistics also keep the planner from a sort of
-- every success of the collection: 100 ms for 335 targets with a year of daily calls).
CREATE INDEX work_succeeded_idx
    ON linkledger.work (job, collection, linkledger.task_options(endpoint, task), finished_at DESC)
    WHERE state = 'succeeded';
CREATE INDEX work_failed_idx
    ON linkledger.work (job, collection, linkledger.task_options(endpoint, task), finished_at DESC)
    WHERE state IN ('failed', 'exhausted');

-- A failure as the final outcome of a planned call: one row per work item that was
-- made and ended without its data, whatever its retries did before.
CREATE VIEW linkledger.final_failures AS
SELECT w.id AS work_id, w.run_id, w.job, w.collection, w.endpoint, w.targets,
       linkledger.task_options(w.endpoint, w.task) AS options,
       w.task->>'group_range' AS group_range,
       w.state, w.finished_at, w.attempt AS claims,
       coalesce(c.requests, 0)::bigint AS requests,
       c.outcome AS last_outcome, c.http_status, c.status_code,
       coalesce(w.last_error, c.reason, w.state) AS reason,
       coalesce(c.cost_usd, 0)::numeric AS cost_usd,
       linkledger.task_options(w.endpoint, w.task)::text AS options_key
FROM linkledger.work w
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE a.outcome NOT IN ('reused', 'sent')) AS requests,
           sum(a.cost_usd) AS cost_usd,
           (array_agg(a.outcome ORDER BY a.id DESC))[1] AS outcome,
           (array_agg(a.http_status ORDER BY a.id DESC))[1] AS http_status,
           (array_agg(coalesce(a.task_status_code, a.status_code) ORDER BY a.id DESC))[1] AS status_code,
           (array_agg(coalesce(a.error, a.task_status_message, a.status_message) ORDER BY a.id DESC))[1] AS reason
    FROM linkledger.api_calls a
    WHERE a.work_id = w.id
) c ON true
WHERE w.state IN ('failed', 'exhausted');
COMMENT ON VIEW linkledger.final_failures IS 'Planned calls that failed for good: one row per work item that ended without its data (refused or rejected by the API, an answer that could not be read, or its retries used up), with why; a failed attempt that a retry made good is not here (call_failures lists every attempt, final says which ended its call). Calls held by a budget or cancelled before sending are not failures. Grain: work_id';
COMMENT ON COLUMN linkledger.final_failures.options_key IS 'options as text (jsonb''s canonical form: equal option sets, equal keys): a column pandas, spreadsheets and BI tools can group and filter by';
COMMENT ON COLUMN linkledger.final_failures.work_id IS 'The planned call (work.id); call_failures.work_id lists its failed attempts';
COMMENT ON COLUMN linkledger.final_failures.run_id IS 'Run the call belonged to';
COMMENT ON COLUMN linkledger.final_failures.job IS 'Job name';
COMMENT ON COLUMN linkledger.final_failures.collection IS 'Collection name';
COMMENT ON COLUMN linkledger.final_failures.endpoint IS 'API endpoint';
COMMENT ON COLUMN linkledger.final_failures.targets IS 'Targets of the call (up to 1000 for a bulk endpoint)';
COMMENT ON COLUMN linkledger.final_failures.options IS 'The request options that change the answer, the API''s defaults filled in (as job_targets.options)';
COMMENT ON COLUMN linkledger.final_failures.group_range IS 'The timeseries'' period asked for; NULL for other endpoints';
COMMENT ON COLUMN linkledger.final_failures.state IS 'failed (refused, rejected, or an answer that could not be read; never retried) or exhausted (every attempt allowed failed)';
COMMENT ON COLUMN linkledger.final_failures.finished_at IS 'When the call failed for good';
COMMENT ON COLUMN linkledger.final_failures.claims IS 'Times a worker claimed the call';
COMMENT ON COLUMN linkledger.final_failures.requests IS 'HTTP requests made for it, failed attempts included';
COMMENT ON COLUMN linkledger.final_failures.last_outcome IS 'Outcome of its last request (see api_calls.outcome); NULL when none was made (a claim that lapsed)';
COMMENT ON COLUMN linkledger.final_failures.http_status IS 'HTTP status of its last request, NULL without an answer';
COMMENT ON COLUMN linkledger.final_failures.status_code IS 'Task status code of its last request, else its envelope status code';
COMMENT ON COLUMN linkledger.final_failures.reason IS 'Why it failed, in words (the work item''s last error, else the last request''s)';
COMMENT ON COLUMN linkledger.final_failures.cost_usd IS 'What its requests cost, USD (failed tasks can be charged)';

-- Every failed attempt stays; which one ended its planned call is said.
CREATE OR REPLACE VIEW linkledger.call_failures AS
SELECT c.id, c.run_id, c.job, c.collection, c.endpoint, c.targets, c.attempt, c.started_at,
       c.outcome, c.http_status, coalesce(c.task_status_code, c.status_code) AS status_code,
       coalesce(c.error, c.task_status_message, c.status_message) AS reason, c.cost_usd,
       c.work_id,
       coalesce(w.state IN ('failed', 'exhausted')
                AND NOT EXISTS (SELECT 1 FROM linkledger.api_calls later
                                WHERE later.work_id = c.work_id AND later.id > c.id),
                false) AS final
FROM linkledger.api_calls c
LEFT JOIN linkledger.work w ON w.id = c.work_id
WHERE c.outcome NOT IN ('ok', 'received', 'sent', 'reused');
COMMENT ON VIEW linkledger.call_failures IS 'Every request that did not succeed, with the reason: retried attempts included (final = false when a later attempt of the same planned call followed); final_failures has one row per planned call that failed for good';
COMMENT ON COLUMN linkledger.call_failures.work_id IS 'The planned call (work.id) the request was an attempt of; NULL outside the queue (the credentials check)';
COMMENT ON COLUMN linkledger.call_failures.final IS 'true: the last request of a planned call that failed for good (its row in final_failures); false: a later attempt followed (a retry that may have succeeded), or the call is not over';

-- How each target of each job stands: its last success, its last final failure, and
-- whether it is stale against its schedule.
CREATE VIEW linkledger.target_status AS
SELECT jt.job, jt.collection, jt.endpoint, jt.target, jt.options, jt.group_range,
       jt.schedule, jt.every,
       s.finished_at AS last_success_at,
       s.run_id AS last_success_run_id,
       f.finished_at AS last_failure_at,
       f.work_id AS last_failure_work_id,
       f.reason AS last_failure_reason,
       (f.finished_at IS NOT NULL
        AND (s.finished_at IS NULL OR f.finished_at > s.finished_at)) AS failing,
       coalesce(coalesce(s.finished_at, jt.first_seen_at) < now() - jt.every - interval '1 hour',
                false) AS stale,
       CASE WHEN f.finished_at IS NOT NULL
                 AND (s.finished_at IS NULL OR f.finished_at > s.finished_at) THEN 'failing'
            WHEN coalesce(s.finished_at, jt.first_seen_at) < now() - jt.every - interval '1 hour'
                 THEN 'stale'
            WHEN s.finished_at IS NULL THEN 'pending'
            ELSE 'ok' END AS status,
       jt.options_key
FROM linkledger.job_targets jt
LEFT JOIN LATERAL (
    SELECT w.run_id, w.finished_at
    FROM linkledger.work w
    WHERE w.job = jt.job AND w.collection = jt.collection AND w.state = 'succeeded'
      AND w.endpoint = jt.endpoint AND jt.target = ANY (w.targets)
      AND linkledger.task_options(w.endpoint, w.task) = jt.options
      AND (w.task->>'group_range') IS NOT DISTINCT FROM jt.group_range
    ORDER BY w.finished_at DESC
    LIMIT 1
) s ON true
LEFT JOIN LATERAL (
    SELECT w.id AS work_id, w.finished_at,
           (SELECT ff.reason FROM linkledger.final_failures ff WHERE ff.work_id = w.id) AS reason
    FROM linkledger.work w
    WHERE w.job = jt.job AND w.collection = jt.collection AND w.state IN ('failed', 'exhausted')
      AND w.endpoint = jt.endpoint AND jt.target = ANY (w.targets)
      AND linkledger.task_options(w.endpoint, w.task) = jt.options
      AND (w.task->>'group_range') IS NOT DISTINCT FROM jt.group_range
    ORDER BY w.finished_at DESC
    LIMIT 1
) f ON true;
COMMENT ON VIEW linkledger.target_status IS 'How each target of each job stands (every target of job_targets, stored or not): per collection (endpoint and options), the last planned call that brought its data, the last that failed for good and why, and whether it is stale against its schedule. WHERE status <> ''ok'' answers "which targets failed to refresh?". Grain: job, collection, target';
COMMENT ON COLUMN linkledger.target_status.job IS 'Job name';
COMMENT ON COLUMN linkledger.target_status.options_key IS 'options as text (jsonb''s canonical form: equal option sets, equal keys): a column pandas, spreadsheets and BI tools can group and filter by';
COMMENT ON COLUMN linkledger.job_targets.options_key IS 'options as text (jsonb''s canonical form: equal option sets, equal keys): a column pandas, spreadsheets and BI tools can group and filter by';
COMMENT ON COLUMN linkledger.target_status.collection IS 'Collection name within the job';
COMMENT ON COLUMN linkledger.target_status.endpoint IS 'API endpoint the collection calls';
COMMENT ON COLUMN linkledger.target_status.target IS 'Domain, subdomain or page URL, as sent to the API';
COMMENT ON COLUMN linkledger.target_status.options IS 'The request options that change the answer, the API''s defaults filled in; only calls with these options count';
COMMENT ON COLUMN linkledger.target_status.group_range IS 'The timeseries'' period; NULL for other endpoints';
COMMENT ON COLUMN linkledger.target_status.schedule IS 'The collection''s schedule as written';
COMMENT ON COLUMN linkledger.target_status.every IS 'The longest time between two fires of the schedule (job_targets.every)';
COMMENT ON COLUMN linkledger.target_status.last_success_at IS 'When the last planned call of the collection for this target brought its data (bought, or an answer of the same day reused); NULL if none ever did. The freshness of the target''s data';
COMMENT ON COLUMN linkledger.target_status.last_success_run_id IS 'The run of that call';
COMMENT ON COLUMN linkledger.target_status.last_failure_at IS 'When the last planned call for this target failed for good (final_failures); failed attempts a retry made good do not count';
COMMENT ON COLUMN linkledger.target_status.last_failure_work_id IS 'That call (final_failures.work_id)';
COMMENT ON COLUMN linkledger.target_status.last_failure_reason IS 'Why that call failed, in words';
COMMENT ON COLUMN linkledger.target_status.failing IS 'true when its last planned call that ended failed for good (a failure after the last success, or failures and no success)';
COMMENT ON COLUMN linkledger.target_status.stale IS 'true when its last success (or, without one, when the job files first named it) is older than its schedule''s longest gap between fires (every) plus an hour for the run: at least one fire brought nothing. false when every is NULL';
COMMENT ON COLUMN linkledger.target_status.status IS 'failing (see failing), else stale (see stale), else pending (no success yet, and not stale: its first fire has not come or is running), else ok';
