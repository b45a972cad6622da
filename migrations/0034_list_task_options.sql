-- linkledger: a listing's paging is not one of its options. task_options (0021) kept
-- a list page's limit and offset (and search_after_token) in the options it gives a
-- work row, while the rows of its answer and job_targets leave them out
-- (api::endpoint's answer options): target_status matched no page of a listing and
-- showed every list collection as pending however often it was collected.
-- Never edit a migration that has landed; add one.

CREATE OR REPLACE FUNCTION linkledger.task_options(endpoint text, task jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(linkledger.default_options(endpoint), '{}'::jsonb)
           || (CASE WHEN jsonb_typeof(task) = 'object' THEN task ELSE '{}'::jsonb END
               - ARRAY['target', 'targets', 'tag', 'date_from', 'date_to', 'group_range',
                       'limit', 'offset', 'search_after_token'])
$$;
COMMENT ON FUNCTION linkledger.task_options(text, jsonb) IS 'The options column the rows of an answer to this task get (the request options that change the answer, the API''s defaults filled in; a listing''s paging, limit, offset and search_after_token, is not one): linkledger.task_options(w.endpoint, w.task) for a work row';

-- The indexes on the function hold what the old one gave.
REINDEX INDEX linkledger.work_succeeded_idx;
REINDEX INDEX linkledger.work_failed_idx;
