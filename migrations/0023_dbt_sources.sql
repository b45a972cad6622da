-- The warehouse as a dbt project (and any BI tool) meets it: cheap freshness checks,
-- one value for "no job", options as a stable text key, and every view's grain (the
-- key of one of its rows) in its comment, where `linkledger schema-docs --format dbt`
-- reads it.

-- Freshness: `max(collected_at)` (what dbt's `source freshness` asks of each table)
-- reads the end of an index instead of the whole table. On a partitioned table the
-- index is made on the parent, so every partition, present and future, has it.
CREATE INDEX summary_collected_at_idx ON linkledger.summary (collected_at);
CREATE INDEX history_collected_at_idx ON linkledger.history (collected_at);
CREATE INDEX timeseries_summary_collected_at_idx ON linkledger.timeseries_summary (collected_at);
CREATE INDEX timeseries_new_lost_summary_collected_at_idx ON linkledger.timeseries_new_lost_summary (collected_at);
CREATE INDEX bulk_new_lost_backlinks_collected_at_idx ON linkledger.bulk_new_lost_backlinks (collected_at);
CREATE INDEX bulk_new_lost_referring_domains_collected_at_idx ON linkledger.bulk_new_lost_referring_domains (collected_at);
CREATE INDEX bulk_ranks_collected_at_idx ON linkledger.bulk_ranks (collected_at);
CREATE INDEX bulk_backlinks_collected_at_idx ON linkledger.bulk_backlinks (collected_at);
CREATE INDEX bulk_referring_domains_collected_at_idx ON linkledger.bulk_referring_domains (collected_at);
CREATE INDEX bulk_spam_score_collected_at_idx ON linkledger.bulk_spam_score (collected_at);
CREATE INDEX bulk_pages_summary_collected_at_idx ON linkledger.bulk_pages_summary (collected_at);
CREATE INDEX link_breakdowns_collected_at_idx ON linkledger.link_breakdowns (collected_at);
CREATE INDEX rejected_items_collected_at_idx ON linkledger.rejected_items (collected_at);

-- One value for "no job" (the credentials checks): spend_by_job_month says '(none)',
-- and so do the other spend views now, so a job is never NULL in a grain.
CREATE OR REPLACE VIEW linkledger.spend_monthly AS
SELECT date_trunc('month', c.started_at AT TIME ZONE 'UTC')::date AS month,
       coalesce(c.job, '(none)') AS job,
       count(*) FILTER (WHERE c.outcome NOT IN ('reused', 'sent'))::bigint AS calls,
       coalesce(sum(c.cost_usd), 0)::numeric AS cost_usd
FROM linkledger.api_calls c
WHERE NOT c.sandbox
GROUP BY 1, 2;
COMMENT ON COLUMN linkledger.spend_monthly.job IS 'Job name ((none) for the credentials checks, as in spend_by_job_month)';

CREATE OR REPLACE VIEW linkledger.spend_daily AS
SELECT (c.started_at AT TIME ZONE 'UTC')::date AS day,
       c.endpoint,
       coalesce(c.job, '(none)') AS job,
       count(*) FILTER (WHERE c.outcome NOT IN ('reused', 'sent'))::bigint AS calls,
       count(*) FILTER (WHERE c.outcome NOT IN ('ok', 'received', 'reused', 'sent'))::bigint AS failed_calls,
       coalesce(sum(c.cost_usd), 0)::numeric         AS cost_usd,
       c.sandbox
FROM linkledger.api_calls c
GROUP BY 1, 2, 3, c.sandbox;
COMMENT ON COLUMN linkledger.spend_daily.job IS 'Job name ((none) for the credentials checks, as in spend_by_job_month)';

-- `options` as text beside the jsonb: jsonb's text form is canonical (keys sorted, one
-- spelling of each value), so equal option sets have equal keys, and pandas, spreadsheets
-- and BI tools that cannot group by a JSON object group by this.
CREATE OR REPLACE VIEW linkledger.latest_summary AS
SELECT DISTINCT ON (s.target) s.*, s.options::text AS options_key
FROM linkledger.summary s
WHERE s.options = linkledger.default_options('summary')
ORDER BY s.target, s.collected_on DESC, s.collected_at DESC;

CREATE OR REPLACE VIEW linkledger.latest_summary_by_options AS
SELECT DISTINCT ON (s.target, s.options) s.*, s.options::text AS options_key
FROM linkledger.summary s
ORDER BY s.target, s.options, s.collected_on DESC, s.collected_at DESC;

CREATE OR REPLACE VIEW linkledger.period_gaps AS
SELECT g.*, g.options::text AS options_key
FROM (
    SELECT p.target, p.endpoint, p.options, p.period_from, p.period_to,
           p.state AS standing, p.last_answered_at
    FROM linkledger.pending_periods p
    UNION ALL
    SELECT c.target, c.endpoint, c.options, lower(h) AS period_from, upper(h) - 1 AS period_to,
           'missing' AS standing, NULL::timestamptz AS last_answered_at
    FROM linkledger.coverage c
    CROSS JOIN LATERAL unnest(
        datemultirange(range_merge(c.covered)) - c.covered
        - coalesce((SELECT range_agg(daterange(p.period_from, p.period_to, '[]'))
                    FROM linkledger.pending_periods p
                    WHERE p.target = c.target AND p.endpoint = c.endpoint AND p.options = c.options),
                   '{}'::datemultirange)) AS h
    WHERE NOT isempty(c.covered)
) g;

COMMENT ON COLUMN linkledger.latest_summary.options_key IS 'options as text (jsonb''s canonical form: equal option sets, equal keys): a column pandas, spreadsheets and BI tools can group and filter by';
COMMENT ON COLUMN linkledger.latest_summary_by_options.options_key IS 'options as text (jsonb''s canonical form: equal option sets, equal keys): a column pandas, spreadsheets and BI tools can group and filter by';
COMMENT ON COLUMN linkledger.period_gaps.options_key IS 'options as text (jsonb''s canonical form: equal option sets, equal keys): a column pandas, spreadsheets and BI tools can group and filter by';

-- Every view's grain, the columns that name one of its rows, as the last line of its
-- comment: `grain: a, b` (a column marked `?` may be NULL, NULL then being one value of
-- the key). `schema-docs` shows it and turns it into dbt's unique and not_null tests.
-- An existing grain line is replaced, the rest of the comment kept.
DO $$
DECLARE
    g record;
    c text;
BEGIN
    FOR g IN SELECT * FROM (VALUES
        ('budget_status', 'budget'),
        ('call_failures', 'id'),
        ('latest_summary', 'target'),
        ('latest_summary_by_options', 'target, options'),
        ('link_breakdown_shares', 'target, dimension, key'),
        ('new_lost_weekly', 'target, week'),
        ('period_gaps', 'target, endpoint, options, period_from'),
        ('queue', 'state'),
        ('rank_trend', 'target, date, rank_scale'),
        ('month_over_month', 'target, month'),
        ('job_targets', 'job, collection, target'),
        ('final_failures', 'work_id'),
        ('target_status', 'job, collection, target'),
        ('new_lost_periods', 'target, group_range, period_end'),
        ('spam_score_daily', 'target, day'),
        ('referring_domains_trend', 'target, month'),
        ('spend_by_job_month', 'month, job'),
        ('spend_daily', 'day, endpoint, job, sandbox'),
        ('spend_monthly', 'month, job'),
        ('spend_vs_budget_daily', 'day'),
        ('summary_daily', 'target, day'),
        ('targets', 'target')
    ) AS v(view_name, grain) LOOP
        c := obj_description(format('linkledger.%I', g.view_name)::regclass, 'pg_class');
        c := regexp_replace(coalesce(c, ''), '\s*\ngrain:[^\n]*$', '');
        EXECUTE format('COMMENT ON VIEW linkledger.%I IS %L', g.view_name,
                       c || E'\ngrain: ' || g.grain);
    END LOOP;
END
$$;
