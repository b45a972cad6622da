-- linkledger: views for the questions BI users ask most, each the SQL an analyst would
-- otherwise write by hand: which targets there are, the metrics per target and day,
-- new against lost per week, rank over time, the shares of the referring-link
-- breakdowns, and spend per day against the budgets. Every view and column carries a
-- COMMENT (docs/schema.md lists them).
-- Never edit a migration that has landed; add one.

-- Every target the warehouse holds data about, with the tables that hold it: the list
-- a BI filter (a dashboard variable) offers.
CREATE VIEW linkledger.targets AS
SELECT t.target,
       min(t.first_date) AS first_date,
       max(t.last_date) AS last_date,
       array_agg(t.source_table ORDER BY t.source_table) AS tables
FROM (
    SELECT target, 'summary' AS source_table, min(collected_on) AS first_date, max(collected_on) AS last_date
    FROM linkledger.summary GROUP BY target
    UNION ALL
    SELECT target, 'history', min(month), max(month) FROM linkledger.history GROUP BY target
    UNION ALL
    SELECT target, 'timeseries_summary', min(date), max(date)
    FROM linkledger.timeseries_summary GROUP BY target
    UNION ALL
    SELECT target, 'timeseries_new_lost_summary', min(date), max(date)
    FROM linkledger.timeseries_new_lost_summary GROUP BY target
    UNION ALL
    SELECT target, 'bulk_new_lost_backlinks', min(collected_on), max(collected_on)
    FROM linkledger.bulk_new_lost_backlinks GROUP BY target
    UNION ALL
    SELECT target, 'bulk_new_lost_referring_domains', min(collected_on), max(collected_on)
    FROM linkledger.bulk_new_lost_referring_domains GROUP BY target
    UNION ALL
    SELECT target, 'bulk_ranks', min(collected_on), max(collected_on)
    FROM linkledger.bulk_ranks GROUP BY target
    UNION ALL
    SELECT target, 'bulk_backlinks', min(collected_on), max(collected_on)
    FROM linkledger.bulk_backlinks GROUP BY target
    UNION ALL
    SELECT target, 'bulk_referring_domains', min(collected_on), max(collected_on)
    FROM linkledger.bulk_referring_domains GROUP BY target
    UNION ALL
    SELECT target, 'bulk_spam_score', min(collected_on), max(collected_on)
    FROM linkledger.bulk_spam_score GROUP BY target
    UNION ALL
    SELECT target, 'bulk_pages_summary', min(collected_on), max(collected_on)
    FROM linkledger.bulk_pages_summary GROUP BY target
) t
GROUP BY t.target;
COMMENT ON VIEW linkledger.targets IS 'Every target the warehouse holds data about, with the tables holding it and the dates they span: what a BI filter offers';
COMMENT ON COLUMN linkledger.targets.target IS 'Domain, subdomain or page URL, as sent to the API';
COMMENT ON COLUMN linkledger.targets.first_date IS 'Earliest date stored for it in any table (collected_on, month or period date)';
COMMENT ON COLUMN linkledger.targets.last_date IS 'Latest date stored for it in any table';
COMMENT ON COLUMN linkledger.targets.tables IS 'The warehouse tables holding rows about it';

-- The metrics of summary per target and day, in the default option set, with the
-- change against the previous day stored.
CREATE VIEW linkledger.summary_daily AS
SELECT s.target,
       s.collected_on AS day,
       s.rank,
       s.rank_scale,
       s.backlinks,
       s.backlinks_nofollow,
       s.referring_domains,
       s.referring_domains_nofollow,
       s.referring_main_domains,
       s.referring_pages,
       s.referring_ips,
       s.referring_subnets,
       s.crawled_pages,
       s.broken_backlinks,
       s.broken_pages,
       s.backlinks_spam_score,
       s.backlinks - lag(s.backlinks) OVER w AS backlinks_change,
       s.referring_domains - lag(s.referring_domains) OVER w AS referring_domains_change
FROM linkledger.summary s
WHERE s.options = linkledger.default_options('summary')
WINDOW w AS (PARTITION BY s.target ORDER BY s.collected_on);
COMMENT ON VIEW linkledger.summary_daily IS 'The backlink profile per target and UTC day it was collected (summary collected with the default options, linkledger.default_options(''summary''): rank on the 0-1000 scale), with the change against the previous day stored';
COMMENT ON COLUMN linkledger.summary_daily.day IS 'UTC day the summary was collected';
COMMENT ON COLUMN linkledger.summary_daily.backlinks_change IS 'Change of backlinks against the previous stored day';
COMMENT ON COLUMN linkledger.summary_daily.referring_domains_change IS 'Change of referring_domains against the previous stored day';

-- New and lost per target and week (Monday to Sunday), from timeseries_new_lost_summary
-- collected by day or by week: a week's own row where there is one, else the sum of
-- its day rows (month and year rows cannot be split into weeks and are left out).
CREATE VIEW linkledger.new_lost_weekly AS
WITH periods AS (
    SELECT t.*,
           date_trunc('week', t.date)::date AS week,
           bool_or(t.group_range = 'week')
             OVER (PARTITION BY t.target, date_trunc('week', t.date)) AS week_row_exists
    FROM linkledger.timeseries_new_lost_summary t
    WHERE t.group_range IN ('day', 'week')
      AND t.options = linkledger.default_options('timeseries_new_lost_summary')
)
SELECT p.target,
       p.week,
       min(p.group_range) AS group_range,
       CASE WHEN min(p.group_range) = 'week' THEN 7 ELSE count(*) END::int AS days,
       sum(p.new_backlinks)::bigint AS new_backlinks,
       sum(p.lost_backlinks)::bigint AS lost_backlinks,
       (sum(p.new_backlinks) - sum(p.lost_backlinks))::bigint AS net_backlinks,
       sum(p.new_referring_domains)::bigint AS new_referring_domains,
       sum(p.lost_referring_domains)::bigint AS lost_referring_domains,
       (sum(p.new_referring_domains) - sum(p.lost_referring_domains))::bigint AS net_referring_domains,
       sum(p.new_referring_main_domains)::bigint AS new_referring_main_domains,
       sum(p.lost_referring_main_domains)::bigint AS lost_referring_main_domains
FROM periods p
WHERE p.group_range = CASE WHEN p.week_row_exists THEN 'week' ELSE 'day' END
GROUP BY p.target, p.week;
COMMENT ON VIEW linkledger.new_lost_weekly IS 'Backlinks and referring domains gained and lost per target and week (Monday to Sunday), from timeseries_new_lost_summary collected with the default options: the week''s own row (group_range week) where stored, else the sum of its day rows; month and year rows are left out (they cannot be split into weeks)';
COMMENT ON COLUMN linkledger.new_lost_weekly.target IS 'Domain the data is about';
COMMENT ON COLUMN linkledger.new_lost_weekly.week IS 'Monday the week starts on';
COMMENT ON COLUMN linkledger.new_lost_weekly.group_range IS 'week (the API''s figure for the week) or day (the sum of the week''s day rows)';
COMMENT ON COLUMN linkledger.new_lost_weekly.days IS 'Days the figures cover: 7 for a week row, else the day rows stored for the week (fewer than 7 for a week only partly collected)';
COMMENT ON COLUMN linkledger.new_lost_weekly.new_backlinks IS 'Backlinks gained in the week';
COMMENT ON COLUMN linkledger.new_lost_weekly.lost_backlinks IS 'Backlinks lost in the week';
COMMENT ON COLUMN linkledger.new_lost_weekly.net_backlinks IS 'new_backlinks - lost_backlinks';
COMMENT ON COLUMN linkledger.new_lost_weekly.new_referring_domains IS 'Referring domains gained in the week';
COMMENT ON COLUMN linkledger.new_lost_weekly.lost_referring_domains IS 'Referring domains lost in the week';
COMMENT ON COLUMN linkledger.new_lost_weekly.net_referring_domains IS 'new_referring_domains - lost_referring_domains';
COMMENT ON COLUMN linkledger.new_lost_weekly.new_referring_main_domains IS 'Referring main domains gained in the week';
COMMENT ON COLUMN linkledger.new_lost_weekly.lost_referring_main_domains IS 'Referring main domains lost in the week';

-- Rank per target over time from every table that stores one, on each rank scale
-- collected (a rank is only comparable with ranks of its own scale; the API's 0-100
-- scale is no linear function of the 0-1000 one), the other options the defaults, with
-- the change against the previous rank of the same table, scale and period length.
CREATE VIEW linkledger.rank_trend AS
SELECT r.target, r.date, r.source_table, r.group_range, r.rank_scale, r.rank,
       r.rank - lag(r.rank) OVER (PARTITION BY r.target, r.source_table, r.group_range, r.rank_scale
                                  ORDER BY r.date) AS rank_change
FROM (
    SELECT s.target, s.collected_on AS date, 'summary' AS source_table, NULL::text AS group_range,
           s.rank_scale, s.rank
    FROM linkledger.summary s
    WHERE s.options - 'rank_scale' = linkledger.default_options('summary') - 'rank_scale'
    UNION ALL
    SELECT h.target, h.month, 'history', NULL, h.rank_scale, h.rank
    FROM linkledger.history h
    WHERE h.options - 'rank_scale' = linkledger.default_options('history') - 'rank_scale'
    UNION ALL
    SELECT t.target, t.date, 'timeseries_summary', t.group_range, t.rank_scale, t.rank
    FROM linkledger.timeseries_summary t
    WHERE t.options - 'rank_scale' = linkledger.default_options('timeseries_summary') - 'rank_scale'
    UNION ALL
    SELECT b.target, b.collected_on, 'bulk_ranks', NULL, b.rank_scale, b.rank
    FROM linkledger.bulk_ranks b
    WHERE b.options - 'rank_scale' = linkledger.default_options('bulk_ranks') - 'rank_scale'
) r;
COMMENT ON VIEW linkledger.rank_trend IS 'Rank per target over time from summary and bulk_ranks (by day collected), history (by month) and timeseries_summary (by period), one series per rank scale collected (the other request options the defaults), with the change against the previous rank of the same table, scale and period length';
COMMENT ON COLUMN linkledger.rank_trend.target IS 'Domain, subdomain or page URL';
COMMENT ON COLUMN linkledger.rank_trend.date IS 'collected_on (summary, bulk_ranks), month (history) or the last day of the period (timeseries_summary)';
COMMENT ON COLUMN linkledger.rank_trend.source_table IS 'The table the rank comes from: summary, history, timeseries_summary or bulk_ranks';
COMMENT ON COLUMN linkledger.rank_trend.group_range IS 'Period length of timeseries_summary rows (day, week, month, year); NULL for the other tables';
COMMENT ON COLUMN linkledger.rank_trend.rank_scale IS 'Scale of the rank: one_thousand (0-1000) or one_hundred (0-100); compare ranks of one scale only';
COMMENT ON COLUMN linkledger.rank_trend.rank IS 'Rank of the target on that scale, PageRank-like';
COMMENT ON COLUMN linkledger.rank_trend.rank_change IS 'Change against the previous rank of the same target, table, period length and scale';

-- The referring-link breakdowns of each target at its latest date, with each key's
-- share of its map and its place in it: top TLDs, countries, link types, ...
CREATE VIEW linkledger.link_breakdown_shares AS
WITH latest AS (
    -- The parent rows are few next to their breakdowns: the latest is found among them,
    -- and its breakdown rows are then read by their key.
    SELECT DISTINCT ON (p.target) p.target, p.source_table, p.date, p.options
    FROM (
        SELECT s.target, 'summary' AS source_table, s.collected_on AS date, s.options, 0 AS preference
        FROM linkledger.summary s WHERE s.options = linkledger.default_options('summary')
        UNION ALL
        SELECT b.target, 'bulk_pages_summary', b.collected_on, b.options, 1
        FROM linkledger.bulk_pages_summary b WHERE b.options = linkledger.default_options('bulk_pages_summary')
        UNION ALL
        SELECT h.target, 'history', h.month, h.options, 2
        FROM linkledger.history h WHERE h.options = linkledger.default_options('history')
    ) p
    ORDER BY p.target, p.date DESC, p.preference
)
SELECT b.target,
       b.source_table,
       b.date,
       b.dimension,
       b.key,
       b.count,
       round(b.count::numeric / nullif(sum(b.count) OVER (PARTITION BY b.target, b.dimension), 0), 6) AS share,
       row_number() OVER (PARTITION BY b.target, b.dimension ORDER BY b.count DESC NULLS LAST, b.key)::int AS position
FROM linkledger.link_breakdowns b
JOIN latest l ON l.target = b.target AND l.source_table = b.source_table
             AND l.date = b.date AND l.options = b.options;
COMMENT ON VIEW linkledger.link_breakdown_shares IS 'The referring_links_* breakdowns (tld, countries, types, attributes, platform_types, semantic_locations) of each target at its latest date (rows collected with the default options), each key with its share of the map and its place in it (position 1 = the most links): WHERE dimension = ''tld'' AND position <= 10 gives the top ten TLDs';
COMMENT ON COLUMN linkledger.link_breakdown_shares.source_table IS 'Where the breakdown comes from: the row of the target with the latest date among summary, bulk_pages_summary and history (on the same date in that order)';
COMMENT ON COLUMN linkledger.link_breakdown_shares.date IS 'Date of that row (collected_on, or the month for history)';
COMMENT ON COLUMN linkledger.link_breakdown_shares.share IS 'count / the sum of the counts of the target''s map (0-1); NULL when the API sent no count';
COMMENT ON COLUMN linkledger.link_breakdown_shares.position IS 'Place of the key in its map by count, from 1 (ties by key)';

-- Spend per UTC day against the budgets in force: real and sandbox spend apart, the
-- month's running total, and the caps.
CREATE VIEW linkledger.spend_vs_budget_daily AS
WITH days AS (
    SELECT (c.started_at AT TIME ZONE 'UTC')::date AS day,
           coalesce(sum(c.cost_usd) FILTER (WHERE NOT c.sandbox), 0)::numeric AS cost_usd,
           coalesce(sum(c.cost_usd) FILTER (WHERE c.sandbox), 0)::numeric AS sandbox_cost_usd
    FROM linkledger.api_calls c
    GROUP BY 1
)
SELECT d.day,
       d.cost_usd,
       d.sandbox_cost_usd,
       sum(d.cost_usd) OVER (PARTITION BY date_trunc('month', d.day) ORDER BY d.day) AS month_to_date_usd,
       (SELECT b.cap_usd FROM linkledger.budgets b WHERE b.scope = 'daily') AS daily_cap_usd,
       (SELECT b.cap_usd FROM linkledger.budgets b WHERE b.scope = 'monthly') AS monthly_cap_usd,
       (SELECT sum(b.cap_usd) FROM linkledger.budgets b WHERE b.scope LIKE 'job:%') AS job_caps_usd
FROM days d;
COMMENT ON VIEW linkledger.spend_vs_budget_daily IS 'Spend per UTC day against the budgets in force now: real spend, sandbox spend (never counted against a budget), the month''s running total of real spend, and the caps';
COMMENT ON COLUMN linkledger.spend_vs_budget_daily.day IS 'UTC day the requests were sent';
COMMENT ON COLUMN linkledger.spend_vs_budget_daily.cost_usd IS 'Real spend of the day, USD';
COMMENT ON COLUMN linkledger.spend_vs_budget_daily.sandbox_cost_usd IS 'What sandbox answers of the day would have cost, USD (not real spend)';
COMMENT ON COLUMN linkledger.spend_vs_budget_daily.month_to_date_usd IS 'Real spend from the first of the UTC month to the day, USD';
COMMENT ON COLUMN linkledger.spend_vs_budget_daily.daily_cap_usd IS 'budget.daily_usd in force now, NULL when none';
COMMENT ON COLUMN linkledger.spend_vs_budget_daily.monthly_cap_usd IS 'budget.monthly_usd in force now, NULL when none';
COMMENT ON COLUMN linkledger.spend_vs_budget_daily.job_caps_usd IS 'Sum of the jobs'' budget_monthly_usd in force now, NULL when none';

-- The columns these views take from a table unchanged say what the table's say.
DO $$
DECLARE c record;
BEGIN
  FOR c IN
    SELECT v.view, a.attname AS col, col_description(b.oid, ba.attnum) AS doc
    FROM (VALUES ('summary_daily', 'summary'), ('link_breakdown_shares', 'link_breakdowns'))
           AS v(view, base)
    JOIN pg_class vc ON vc.relname = v.view AND vc.relnamespace = 'linkledger'::regnamespace
    JOIN pg_attribute a ON a.attrelid = vc.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_class b ON b.relname = v.base AND b.relnamespace = 'linkledger'::regnamespace
    JOIN pg_attribute ba ON ba.attrelid = b.oid AND ba.attname = a.attname AND NOT ba.attisdropped
    WHERE col_description(vc.oid, a.attnum) IS NULL
  LOOP
    EXECUTE format('COMMENT ON COLUMN linkledger.%I.%I IS %L', c.view, c.col, c.doc);
  END LOOP;
END $$;
