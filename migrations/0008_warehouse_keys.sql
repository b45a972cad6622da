-- linkledger: the request options that change an answer are part of every warehouse
-- key, every stored rank carries its rank_scale, and the tables hold exactly the fields
-- their endpoint documents (reference/api-fields.md): the invented ones go.
-- Never edit a migration that has landed; add one.
--
-- Before this, two collections of one target with different rank_scale or
-- include_subdomains overwrote each other in history, the timeseries tables, bulk_ranks
-- and bulk_pages_summary. Rows stored under the old keys are carried over: each row's
-- options are read from the request its raw response answered (api_calls.request),
-- with the API's defaults filled in, exactly as normalization now computes them.

DROP VIEW linkledger.latest_summary;
DROP VIEW linkledger.referring_domains_trend;

-- The option set a request that sets nothing gets: the API's defaults. The views show
-- this set unless asked for another. (normalize computes the same from the endpoint
-- table in src/api/endpoint.rs; a test holds the two together.)
CREATE FUNCTION linkledger.default_options(endpoint text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE endpoint
        WHEN 'summary' THEN '{"include_subdomains": true, "include_indirect_links": true,
                              "exclude_internal_backlinks": true, "internal_list_limit": 10,
                              "backlinks_status_type": "live", "rank_scale": "one_thousand"}'::jsonb
        WHEN 'history' THEN '{"rank_scale": "one_thousand"}'::jsonb
        WHEN 'timeseries_summary' THEN '{"include_subdomains": true, "rank_scale": "one_thousand"}'::jsonb
        WHEN 'timeseries_new_lost_summary' THEN '{"include_subdomains": true}'::jsonb
        WHEN 'bulk_ranks' THEN '{"rank_scale": "one_thousand"}'::jsonb
        WHEN 'bulk_pages_summary' THEN '{"include_subdomains": true, "rank_scale": "one_thousand"}'::jsonb
        WHEN 'bulk_backlinks' THEN '{}'::jsonb
        WHEN 'bulk_referring_domains' THEN '{}'::jsonb
        WHEN 'bulk_spam_score' THEN '{}'::jsonb
    END
$$;
COMMENT ON FUNCTION linkledger.default_options(text) IS 'The options column of a row collected with the API''s defaults (a request that sets no option), per table: WHERE options = linkledger.default_options(''history'') picks the default option set';

-- The options of every stored answer, as normalization computes them: the request's
-- parameters but the target(s), tag, the dates and group_range, over the defaults.
CREATE TEMPORARY TABLE answer_options (
    raw_response_id bigint PRIMARY KEY,
    options         jsonb  NOT NULL
) ON COMMIT DROP;
INSERT INTO answer_options
SELECT r.id,
       coalesce(linkledger.default_options(r.endpoint), '{}'::jsonb)
         || (CASE WHEN jsonb_typeof(c.request) = 'object' THEN c.request ELSE '{}'::jsonb END
             - ARRAY['target', 'targets', 'tag', 'date_from', 'date_to', 'group_range'])
FROM linkledger.raw_responses r
JOIN linkledger.api_calls c ON c.id = r.api_call_id
WHERE r.endpoint IN ('history', 'timeseries_summary', 'timeseries_new_lost_summary',
                     'bulk_ranks', 'bulk_backlinks', 'bulk_referring_domains',
                     'bulk_spam_score', 'bulk_pages_summary');

-- summary: its key had the options already (requests always carried the defaults);
-- the scale of its rank becomes a column of its own.
ALTER TABLE linkledger.summary ADD COLUMN rank_scale text;
UPDATE linkledger.summary SET rank_scale = coalesce(options->>'rank_scale', 'one_thousand');
ALTER TABLE linkledger.summary ALTER COLUMN rank_scale SET NOT NULL;

-- history: keyed by its options; the history item has no backlinks_nofollow.
ALTER TABLE linkledger.history
    DROP COLUMN backlinks_nofollow,
    ADD COLUMN options jsonb,
    ADD COLUMN rank_scale text;
UPDATE linkledger.history t
SET options = o.options, rank_scale = coalesce(o.options->>'rank_scale', 'one_thousand')
FROM (SELECT h.raw_response_id,
             coalesce(a.options, linkledger.default_options('history')) AS options
      FROM (SELECT DISTINCT raw_response_id FROM linkledger.history) h
      LEFT JOIN answer_options a USING (raw_response_id)) o
WHERE o.raw_response_id = t.raw_response_id;
ALTER TABLE linkledger.history
    ALTER COLUMN options SET NOT NULL,
    ALTER COLUMN rank_scale SET NOT NULL,
    DROP CONSTRAINT history_pkey,
    ADD PRIMARY KEY (target, options, month);

ALTER TABLE linkledger.timeseries_summary
    ADD COLUMN options jsonb,
    ADD COLUMN rank_scale text;
UPDATE linkledger.timeseries_summary t
SET options = o.options, rank_scale = coalesce(o.options->>'rank_scale', 'one_thousand')
FROM (SELECT h.raw_response_id,
             coalesce(a.options, linkledger.default_options('timeseries_summary')) AS options
      FROM (SELECT DISTINCT raw_response_id FROM linkledger.timeseries_summary) h
      LEFT JOIN answer_options a USING (raw_response_id)) o
WHERE o.raw_response_id = t.raw_response_id;
ALTER TABLE linkledger.timeseries_summary
    ALTER COLUMN options SET NOT NULL,
    ALTER COLUMN rank_scale SET NOT NULL,
    DROP CONSTRAINT timeseries_summary_pkey,
    ADD PRIMARY KEY (target, options, group_range, date);

ALTER TABLE linkledger.timeseries_new_lost_summary ADD COLUMN options jsonb;
UPDATE linkledger.timeseries_new_lost_summary t
SET options = o.options
FROM (SELECT h.raw_response_id,
             coalesce(a.options, linkledger.default_options('timeseries_new_lost_summary')) AS options
      FROM (SELECT DISTINCT raw_response_id FROM linkledger.timeseries_new_lost_summary) h
      LEFT JOIN answer_options a USING (raw_response_id)) o
WHERE o.raw_response_id = t.raw_response_id;
ALTER TABLE linkledger.timeseries_new_lost_summary
    ALTER COLUMN options SET NOT NULL,
    DROP CONSTRAINT timeseries_new_lost_summary_pkey,
    ADD PRIMARY KEY (target, options, group_range, date);

ALTER TABLE linkledger.bulk_ranks
    ADD COLUMN options jsonb,
    ADD COLUMN rank_scale text;
UPDATE linkledger.bulk_ranks t
SET options = o.options, rank_scale = coalesce(o.options->>'rank_scale', 'one_thousand')
FROM (SELECT h.raw_response_id,
             coalesce(a.options, linkledger.default_options('bulk_ranks')) AS options
      FROM (SELECT DISTINCT raw_response_id FROM linkledger.bulk_ranks) h
      LEFT JOIN answer_options a USING (raw_response_id)) o
WHERE o.raw_response_id = t.raw_response_id;
ALTER TABLE linkledger.bulk_ranks
    ALTER COLUMN options SET NOT NULL,
    ALTER COLUMN rank_scale SET NOT NULL,
    DROP CONSTRAINT bulk_ranks_pkey,
    ADD PRIMARY KEY (target, options, collected_on);

-- The three bulk endpoints without options: {} now, so that a parameter the API adds
-- later needs no new key.
ALTER TABLE linkledger.bulk_backlinks ADD COLUMN options jsonb NOT NULL DEFAULT '{}';
ALTER TABLE linkledger.bulk_backlinks
    ALTER COLUMN options DROP DEFAULT,
    DROP CONSTRAINT bulk_backlinks_pkey,
    ADD PRIMARY KEY (target, options, collected_on);
ALTER TABLE linkledger.bulk_referring_domains ADD COLUMN options jsonb NOT NULL DEFAULT '{}';
ALTER TABLE linkledger.bulk_referring_domains
    ALTER COLUMN options DROP DEFAULT,
    DROP CONSTRAINT bulk_referring_domains_pkey,
    ADD PRIMARY KEY (target, options, collected_on);
ALTER TABLE linkledger.bulk_spam_score ADD COLUMN options jsonb NOT NULL DEFAULT '{}';
ALTER TABLE linkledger.bulk_spam_score
    ALTER COLUMN options DROP DEFAULT,
    DROP CONSTRAINT bulk_spam_score_pkey,
    ADD PRIMARY KEY (target, options, collected_on);

-- bulk_pages_summary: keyed by its options; its item has no info object.
ALTER TABLE linkledger.bulk_pages_summary
    DROP COLUMN info_server,
    DROP COLUMN info_cms,
    DROP COLUMN info_platform_type,
    DROP COLUMN info_ip_address,
    DROP COLUMN info_country,
    DROP COLUMN info_is_ip,
    DROP COLUMN info_target_spam_score,
    ADD COLUMN options jsonb,
    ADD COLUMN rank_scale text;
UPDATE linkledger.bulk_pages_summary t
SET options = o.options, rank_scale = coalesce(o.options->>'rank_scale', 'one_thousand')
FROM (SELECT h.raw_response_id,
             coalesce(a.options, linkledger.default_options('bulk_pages_summary')) AS options
      FROM (SELECT DISTINCT raw_response_id FROM linkledger.bulk_pages_summary) h
      LEFT JOIN answer_options a USING (raw_response_id)) o
WHERE o.raw_response_id = t.raw_response_id;
ALTER TABLE linkledger.bulk_pages_summary
    ALTER COLUMN options SET NOT NULL,
    ALTER COLUMN rank_scale SET NOT NULL,
    DROP CONSTRAINT bulk_pages_summary_pkey,
    ADD PRIMARY KEY (target, options, collected_on);

-- link_breakdowns: a breakdown belongs to its parent row, options included (history
-- and bulk_pages_summary parents had none); a key the API sent with a null count is
-- kept with a NULL count.
UPDATE linkledger.link_breakdowns b
SET options = p.options
FROM linkledger.history p
WHERE b.source_table = 'history' AND b.target = p.target AND b.date = p.month;
UPDATE linkledger.link_breakdowns b
SET options = p.options
FROM linkledger.bulk_pages_summary p
WHERE b.source_table = 'bulk_pages_summary' AND b.target = p.target AND b.date = p.collected_on;
ALTER TABLE linkledger.link_breakdowns
    ALTER COLUMN count DROP NOT NULL,
    ALTER COLUMN options DROP DEFAULT;

-- Views: the default option set unless asked.
CREATE VIEW linkledger.latest_summary AS
SELECT DISTINCT ON (s.target) s.*
FROM linkledger.summary s
WHERE s.options = linkledger.default_options('summary')
ORDER BY s.target, s.collected_on DESC, s.collected_at DESC;
COMMENT ON VIEW linkledger.latest_summary IS 'The newest summary row per target collected with the API''s default options (linkledger.default_options(''summary'')); latest_summary_by_options has every option set';

CREATE VIEW linkledger.latest_summary_by_options AS
SELECT DISTINCT ON (s.target, s.options) s.*
FROM linkledger.summary s
ORDER BY s.target, s.options, s.collected_on DESC, s.collected_at DESC;
COMMENT ON VIEW linkledger.latest_summary_by_options IS 'The newest summary row per target and request options (every option set a collection asked for)';

CREATE VIEW linkledger.referring_domains_trend AS
SELECT h.target, h.month, h.referring_domains, h.backlinks, h.rank, h.rank_scale,
       h.referring_domains - lag(h.referring_domains) OVER w AS referring_domains_change,
       h.backlinks - lag(h.backlinks) OVER w AS backlinks_change
FROM linkledger.history h
WHERE h.options = linkledger.default_options('history')
WINDOW w AS (PARTITION BY h.target ORDER BY h.month);
COMMENT ON VIEW linkledger.referring_domains_trend IS 'Month-over-month change of referring domains and backlinks per domain, from history collected with the API''s default options (rank on the 0-1000 scale)';

-- Comments of the new and changed columns.
COMMENT ON COLUMN linkledger.summary.options IS 'Request options that change the answer (JSON: every parameter but the target and tag, the API''s defaults filled in), part of the natural key; linkledger.default_options(''summary'') is the default set';
COMMENT ON COLUMN linkledger.summary.rank IS 'Rank of the target on the scale rank_scale names (0-1000, or 0-100), PageRank-like';
COMMENT ON COLUMN linkledger.history.rank IS 'Rank of the domain on the scale rank_scale names (0-1000, or 0-100), PageRank-like';
COMMENT ON COLUMN linkledger.timeseries_summary.rank IS 'Rank of the target on the scale rank_scale names (0-1000, or 0-100), PageRank-like';
COMMENT ON COLUMN linkledger.bulk_ranks.rank IS 'Rank of the target on the scale rank_scale names (0-1000, or 0-100), PageRank-like';
COMMENT ON COLUMN linkledger.bulk_pages_summary.rank IS 'Rank of the page on the scale rank_scale names (0-1000, or 0-100), PageRank-like';
COMMENT ON COLUMN linkledger.bulk_pages_summary.main_domain_rank IS 'Rank of the page''s main domain on the scale rank_scale names (0-1000, or 0-100)';

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['history', 'timeseries_summary', 'timeseries_new_lost_summary',
                           'bulk_ranks', 'bulk_backlinks', 'bulk_referring_domains',
                           'bulk_spam_score', 'bulk_pages_summary']
  LOOP
    EXECUTE format('COMMENT ON COLUMN linkledger.%I.options IS %L', t,
      'Request options that change the answer (JSON: every parameter but the target(s), tag, the dates and group_range, the API''s defaults filled in), part of the natural key; linkledger.default_options(' || quote_literal(t) || ') is the default set');
  END LOOP;
  FOREACH t IN ARRAY ARRAY['summary', 'history', 'timeseries_summary', 'bulk_ranks',
                           'bulk_pages_summary']
  LOOP
    EXECUTE format('COMMENT ON COLUMN linkledger.%I.rank_scale IS %L', t,
      'Scale of the ranks in the row, as the request asked: one_thousand (0-1000, the API''s default) or one_hundred (0-100: the API computes round(sin(rank / 636.62) * 100) from the 0-1000 rank)');
  END LOOP;
END $$;

COMMENT ON COLUMN linkledger.link_breakdowns.options IS 'Request options of the parent row (its options column)';
COMMENT ON COLUMN linkledger.link_breakdowns.count IS 'Referring links counted under the key; NULL when the API sent the key with a null count';

-- The views' columns say what their table's columns say.
DO $$
DECLARE c record;
BEGIN
  FOR c IN
    SELECT v.view, a.attname AS col, col_description(b.oid, ba.attnum) AS doc
    FROM (VALUES ('latest_summary', 'summary'), ('latest_summary_by_options', 'summary'),
                 ('referring_domains_trend', 'history')) AS v(view, base)
    JOIN pg_class vc ON vc.relname = v.view
     AND vc.relnamespace = 'linkledger'::regnamespace
    JOIN pg_attribute a ON a.attrelid = vc.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_class b ON b.relname = v.base AND b.relnamespace = 'linkledger'::regnamespace
    JOIN pg_attribute ba ON ba.attrelid = b.oid AND ba.attname = a.attname AND NOT ba.attisdropped
  LOOP
    EXECUTE format('COMMENT ON COLUMN linkledger.%I.%I IS %L', c.view, c.col, c.doc);
  END LOOP;
END $$;
COMMENT ON COLUMN linkledger.referring_domains_trend.referring_domains_change IS 'Change of referring_domains against the previous stored month';
COMMENT ON COLUMN linkledger.referring_domains_trend.backlinks_change IS 'Change of backlinks against the previous stored month';
