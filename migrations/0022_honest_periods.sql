-- linkledger: honest periods and one value per question (issue 25, points 2 and 3).
-- Never edit a migration that has landed; add one.
--
-- Periods. The API dates a timeseries period by its last day, the running one included:
-- a weekly series collected on a Monday holds a row dated the coming Sunday, with the
-- figures of one day. The views now say how many days of its period a row covers and
-- whether the period had ended when it was collected (`days_covered`, `complete`), and
-- date a running period by the day it was collected, never by a day still ahead
-- (`targets.last_date`, `rank_trend.date`). `new_lost_weekly` builds weeks from week or
-- day rows and, for weeks only month or year rows cover (the API's default group_range
-- is month), says why it has no figures; `new_lost_periods` has every stored period of
-- any grain. A history row is a snapshot on its month's first day, so the row of July
-- says what changed in June: `month_over_month` is keyed by the month the change
-- happened in, so that "last month" is the month before this one.
--
-- One value per question. `rank_trend` has one row per target, day and rank scale,
-- the rank taken from the first source in a documented order; `spam_score_daily` gives
-- the spam score of a target (and, apart, that of the links pointing to it); the column
-- comments say which column answers which question.

-- The first day of the period a timeseries row covers: the API dates a day, week
-- (Monday to Sunday), month or year by its last day. Plain date arithmetic, so that it
-- is immutable (date_trunc on a date goes through the session's time zone).
CREATE FUNCTION linkledger.period_start(group_range text, period_end date) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE group_range
        WHEN 'day' THEN period_end
        WHEN 'week' THEN period_end - (extract(isodow FROM period_end)::int - 1)
        WHEN 'month' THEN period_end - (extract(day FROM period_end)::int - 1)
        WHEN 'year' THEN make_date(extract(year FROM period_end)::int, 1, 1)
    END
$$;
COMMENT ON FUNCTION linkledger.period_start(text, date) IS 'The first day of the period a timeseries row covers, from its group_range and its date (the period''s last day, as the API dates it): the day itself, the Monday of the week, the first of the month or of the year';

-- How many days of its period a row's figures cover: up to the UTC day it was
-- collected (that day counted), at most the whole period.
CREATE FUNCTION linkledger.days_covered(group_range text, period_end date, collected_at timestamptz)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT greatest(0, least(period_end, (collected_at AT TIME ZONE 'UTC')::date)
                       - linkledger.period_start(group_range, period_end) + 1)
$$;
COMMENT ON FUNCTION linkledger.days_covered(text, date, timestamptz) IS 'Days of a timeseries row''s period its figures cover: from the period''s first day to the UTC day it was collected (that day counted) or the period''s last day, whichever comes first. The period is complete when it had ended before the day it was collected: (collected_at AT TIME ZONE ''UTC'')::date > period_end';

-- ---------------------------------------------------------------------------------
-- targets: the days the stored data covers, never a day ahead. A timeseries row of a
-- running period covers its first day up to the day it was collected.
CREATE OR REPLACE VIEW linkledger.targets AS
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
    SELECT target, 'timeseries_summary', min(linkledger.period_start(group_range, date)),
           max(least(date, (collected_at AT TIME ZONE 'UTC')::date))
    FROM linkledger.timeseries_summary GROUP BY target
    UNION ALL
    SELECT target, 'timeseries_new_lost_summary', min(linkledger.period_start(group_range, date)),
           max(least(date, (collected_at AT TIME ZONE 'UTC')::date))
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
COMMENT ON VIEW linkledger.targets IS 'Every target the warehouse holds data about, with the tables holding it and the days their data covers (never a day ahead: a running timeseries period counts up to the day it was collected): what a BI filter offers';
COMMENT ON COLUMN linkledger.targets.first_date IS 'Earliest day stored data covers in any table: collected_on, the month''s first day (history: its snapshot day), or the first day of a timeseries period';
COMMENT ON COLUMN linkledger.targets.last_date IS 'Latest day stored data covers in any table: collected_on, the month''s first day (history), or the last day of a timeseries period, a running one up to the UTC day it was collected; never after the day the newest data was collected';

-- ---------------------------------------------------------------------------------
-- new_lost_periods: every stored period of timeseries_new_lost_summary, of any grain,
-- with its bounds and how much of it the figures cover.
CREATE VIEW linkledger.new_lost_periods AS
SELECT t.target,
       t.group_range,
       linkledger.period_start(t.group_range, t.date) AS period_start,
       t.date AS period_end,
       (t.date - linkledger.period_start(t.group_range, t.date) + 1)::int AS days_in_period,
       linkledger.days_covered(t.group_range, t.date, t.collected_at) AS days_covered,
       least(t.date, (t.collected_at AT TIME ZONE 'UTC')::date) AS covered_to,
       (t.collected_at AT TIME ZONE 'UTC')::date > t.date AS complete,
       t.new_backlinks,
       t.lost_backlinks,
       t.new_backlinks - t.lost_backlinks AS net_backlinks,
       t.new_referring_domains,
       t.lost_referring_domains,
       t.new_referring_domains - t.lost_referring_domains AS net_referring_domains,
       t.new_referring_main_domains,
       t.lost_referring_main_domains,
       t.collected_at
FROM linkledger.timeseries_new_lost_summary t
WHERE t.options = linkledger.default_options('timeseries_new_lost_summary');
COMMENT ON VIEW linkledger.new_lost_periods IS 'Backlinks and referring domains gained and lost per target and period as the API grouped them (group_range day, week, month or year), from timeseries_new_lost_summary collected with the default options, each period with its first and last day and how much of it the figures cover: a running period (its last day not over when it was collected) is complete = false. The calendar month''s gainers when collected by month: WHERE group_range = ''month'' AND complete';
COMMENT ON COLUMN linkledger.new_lost_periods.target IS 'Domain the data is about';
COMMENT ON COLUMN linkledger.new_lost_periods.group_range IS 'Period length: day, week (Monday to Sunday), month or year';
COMMENT ON COLUMN linkledger.new_lost_periods.period_start IS 'First day of the period';
COMMENT ON COLUMN linkledger.new_lost_periods.period_end IS 'Last day of the period (the API''s date of the row); for a running period a day that may still be ahead: covered_to says how far the figures reach';
COMMENT ON COLUMN linkledger.new_lost_periods.days_in_period IS 'Days of the period (1, 7, 28-31, 365 or 366)';
COMMENT ON COLUMN linkledger.new_lost_periods.days_covered IS 'Days of the period the figures cover: up to the UTC day they were collected (that day counted); days_in_period when the period had ended (linkledger.days_covered)';
COMMENT ON COLUMN linkledger.new_lost_periods.covered_to IS 'Last day the figures cover: period_end, or the UTC day they were collected for a running period; never a day ahead';
COMMENT ON COLUMN linkledger.new_lost_periods.complete IS 'true: the period had ended before the UTC day its figures were collected; false: a running period, its figures partial (leave it out of comparisons, or shade it)';
COMMENT ON COLUMN linkledger.new_lost_periods.new_backlinks IS 'Backlinks gained in the period (up to covered_to)';
COMMENT ON COLUMN linkledger.new_lost_periods.lost_backlinks IS 'Backlinks lost in the period (up to covered_to)';
COMMENT ON COLUMN linkledger.new_lost_periods.net_backlinks IS 'new_backlinks - lost_backlinks';
COMMENT ON COLUMN linkledger.new_lost_periods.new_referring_domains IS 'Referring domains gained in the period (up to covered_to)';
COMMENT ON COLUMN linkledger.new_lost_periods.lost_referring_domains IS 'Referring domains lost in the period (up to covered_to)';
COMMENT ON COLUMN linkledger.new_lost_periods.net_referring_domains IS 'new_referring_domains - lost_referring_domains';
COMMENT ON COLUMN linkledger.new_lost_periods.new_referring_main_domains IS 'Referring main domains gained in the period (up to covered_to)';
COMMENT ON COLUMN linkledger.new_lost_periods.lost_referring_main_domains IS 'Referring main domains lost in the period (up to covered_to)';
COMMENT ON COLUMN linkledger.new_lost_periods.collected_at IS 'When the answer holding the figures was received';

-- ---------------------------------------------------------------------------------
-- new_lost_weekly: a week from the API's week row, else from the sum of its day rows,
-- with the days they cover; a week only month or year rows cover has a row without
-- figures that says why.
DROP VIEW linkledger.new_lost_weekly;
CREATE VIEW linkledger.new_lost_weekly AS
WITH p AS NOT MATERIALIZED (
    SELECT t.target, t.group_range, t.date AS period_end,
           linkledger.period_start(t.group_range, t.date) AS period_start,
           (t.collected_at AT TIME ZONE 'UTC')::date AS collected_on,
           t.new_backlinks, t.lost_backlinks, t.new_referring_domains, t.lost_referring_domains,
           t.new_referring_main_domains, t.lost_referring_main_domains
    FROM linkledger.timeseries_new_lost_summary t
    WHERE t.options = linkledger.default_options('timeseries_new_lost_summary')
),
weeks AS (
    -- The API's own figure for the week.
    SELECT p.target, p.period_start AS week, 'week' AS group_range, 1 AS preference,
           (least(p.period_end, p.collected_on) - p.period_start + 1)::int AS days_covered,
           p.collected_on > p.period_end AS complete,
           p.new_backlinks, p.lost_backlinks, p.new_referring_domains, p.lost_referring_domains,
           p.new_referring_main_domains, p.lost_referring_main_domains,
           NULL::text AS why_no_figures
    FROM p
    WHERE p.group_range = 'week'
    UNION ALL
    -- The sum of the week's day rows.
    SELECT p.target, linkledger.period_start('week', p.period_end), 'day', 2,
           count(*)::int,
           count(*) = 7 AND bool_and(p.collected_on > p.period_end),
           sum(p.new_backlinks)::bigint, sum(p.lost_backlinks)::bigint,
           sum(p.new_referring_domains)::bigint, sum(p.lost_referring_domains)::bigint,
           sum(p.new_referring_main_domains)::bigint, sum(p.lost_referring_main_domains)::bigint,
           NULL
    FROM p
    WHERE p.group_range = 'day'
    GROUP BY p.target, linkledger.period_start('week', p.period_end)
    UNION ALL
    -- Weeks a month or year row covers (up to the day it was collected): no figures. A
    -- month touches at most 6 weeks, a year 54; constant bounds keep the planner's
    -- estimates true.
    SELECT p.target, linkledger.period_start('week', p.period_start) + 7 * w.i, p.group_range,
           CASE p.group_range WHEN 'month' THEN 3 ELSE 4 END,
           0, false,
           NULL, NULL, NULL, NULL, NULL, NULL,
           format('collected by %s only (group_range %s%s): a %s cannot be split into weeks; collect with group_range day or week for weekly figures, or read new_lost_periods',
                  p.group_range, p.group_range,
                  CASE p.group_range WHEN 'month' THEN ', the API''s default' ELSE '' END, p.group_range)
    FROM p
    JOIN (SELECT 'month' AS group_range, i FROM generate_series(0, 5) AS m(i)
          UNION ALL
          SELECT 'year', i FROM generate_series(0, 53) AS y(i)) AS w
      ON w.group_range = p.group_range
     AND w.i <= (least(p.period_end, p.collected_on) - linkledger.period_start('week', p.period_start)) / 7
)
SELECT DISTINCT ON (w.target, w.week)
       w.target,
       w.week,
       w.group_range,
       w.days_covered,
       w.complete,
       w.new_backlinks,
       w.lost_backlinks,
       w.new_backlinks - w.lost_backlinks AS net_backlinks,
       w.new_referring_domains,
       w.lost_referring_domains,
       w.new_referring_domains - w.lost_referring_domains AS net_referring_domains,
       w.new_referring_main_domains,
       w.lost_referring_main_domains,
       w.why_no_figures
FROM weeks w
ORDER BY w.target, w.week, w.days_covered DESC, w.preference;
COMMENT ON VIEW linkledger.new_lost_weekly IS 'Backlinks and referring domains gained and lost per target and week (Monday to Sunday), from timeseries_new_lost_summary collected with the default options: the week''s own row (group_range week) or the sum of its day rows, whichever covers more days (the week row on a tie), with the days covered and whether the week is complete; a week that only month or year rows cover (the API''s default group_range is month) has a row without figures whose why_no_figures says why. Partial weeks (the first of a collection that starts mid-week, the running one) have complete = false: leave them out of comparisons or shade them';
COMMENT ON COLUMN linkledger.new_lost_weekly.target IS 'Domain the data is about';
COMMENT ON COLUMN linkledger.new_lost_weekly.week IS 'Monday the week starts on';
COMMENT ON COLUMN linkledger.new_lost_weekly.group_range IS 'Where the figures come from: week (the API''s figure for the week) or day (the sum of the week''s day rows); month or year: only such rows cover the week, no figures';
COMMENT ON COLUMN linkledger.new_lost_weekly.days_covered IS 'Days of the week the figures cover: a week row up to the UTC day it was collected (that day counted), else the day rows stored for the week; 0 without figures';
COMMENT ON COLUMN linkledger.new_lost_weekly.complete IS 'true: all 7 days covered and the week had ended before its figures were collected; false: partial (a collection starting mid-week, the running week, days missing) or no figures';
COMMENT ON COLUMN linkledger.new_lost_weekly.new_backlinks IS 'Backlinks gained in the week (in the days covered)';
COMMENT ON COLUMN linkledger.new_lost_weekly.lost_backlinks IS 'Backlinks lost in the week (in the days covered)';
COMMENT ON COLUMN linkledger.new_lost_weekly.net_backlinks IS 'new_backlinks - lost_backlinks';
COMMENT ON COLUMN linkledger.new_lost_weekly.new_referring_domains IS 'Referring domains gained in the week (in the days covered)';
COMMENT ON COLUMN linkledger.new_lost_weekly.lost_referring_domains IS 'Referring domains lost in the week (in the days covered)';
COMMENT ON COLUMN linkledger.new_lost_weekly.net_referring_domains IS 'new_referring_domains - lost_referring_domains';
COMMENT ON COLUMN linkledger.new_lost_weekly.new_referring_main_domains IS 'Referring main domains gained in the week (in the days covered)';
COMMENT ON COLUMN linkledger.new_lost_weekly.lost_referring_main_domains IS 'Referring main domains lost in the week (in the days covered)';
COMMENT ON COLUMN linkledger.new_lost_weekly.why_no_figures IS 'Why the week has no figures (only month or year rows cover it); NULL when it has figures';

-- ---------------------------------------------------------------------------------
-- month_over_month: what changed during each calendar month, from the history
-- snapshots on its first day and on the next month's first day.
CREATE VIEW linkledger.month_over_month AS
WITH h AS NOT MATERIALIZED (
    SELECT * FROM linkledger.history
    WHERE options = linkledger.default_options('history')
),
months AS (
    SELECT target, month FROM h
    UNION
    SELECT target, (month - interval '1 month')::date FROM h
)
SELECT m.target,
       m.month,
       s.referring_domains AS referring_domains_start,
       e.referring_domains AS referring_domains_end,
       e.referring_domains - s.referring_domains AS referring_domains_change,
       s.referring_main_domains AS referring_main_domains_start,
       e.referring_main_domains AS referring_main_domains_end,
       e.referring_main_domains - s.referring_main_domains AS referring_main_domains_change,
       s.backlinks AS backlinks_start,
       e.backlinks AS backlinks_end,
       e.backlinks - s.backlinks AS backlinks_change,
       e.new_referring_domains,
       e.lost_referring_domains,
       e.new_backlinks,
       e.lost_backlinks,
       s.rank AS rank_start,
       e.rank AS rank_end,
       e.rank - s.rank AS rank_change,
       coalesce(e.rank_scale, s.rank_scale) AS rank_scale,
       s.month IS NOT NULL AND e.month IS NOT NULL AS complete
FROM months m
LEFT JOIN h s ON s.target = m.target AND s.month = m.month
LEFT JOIN h e ON e.target = m.target AND e.month = (m.month + interval '1 month')::date;
COMMENT ON VIEW linkledger.month_over_month IS 'What changed during each calendar month per target, from history collected with the default options (rank on the 0-1000 scale): a history row is a snapshot on its month''s first day, so a month runs from its own snapshot to the next month''s, and the new/lost counts of the next month''s row are this month''s. Last month''s gainers: WHERE month = date_trunc(''month'', current_date - interval ''1 month'') AND complete ORDER BY referring_domains_change DESC (net) or new_referring_domains DESC (gained). A month whose closing snapshot is not stored yet (the current one, or last month before the next history fire) has complete = false';
COMMENT ON COLUMN linkledger.month_over_month.target IS 'Domain the data is about';
COMMENT ON COLUMN linkledger.month_over_month.month IS 'First day of the calendar month the change happened in (from the snapshot on this day to the one on the next month''s first day)';
COMMENT ON COLUMN linkledger.month_over_month.referring_domains_start IS 'Referring domains on the month''s first day (history row of month)';
COMMENT ON COLUMN linkledger.month_over_month.referring_domains_end IS 'Referring domains on the next month''s first day (history row of the next month); NULL while not stored';
COMMENT ON COLUMN linkledger.month_over_month.referring_domains_change IS 'referring_domains_end - referring_domains_start: the net change of referring domains during the month';
COMMENT ON COLUMN linkledger.month_over_month.referring_main_domains_start IS 'Referring main domains on the month''s first day';
COMMENT ON COLUMN linkledger.month_over_month.referring_main_domains_end IS 'Referring main domains on the next month''s first day';
COMMENT ON COLUMN linkledger.month_over_month.referring_main_domains_change IS 'referring_main_domains_end - referring_main_domains_start';
COMMENT ON COLUMN linkledger.month_over_month.backlinks_start IS 'Backlinks on the month''s first day';
COMMENT ON COLUMN linkledger.month_over_month.backlinks_end IS 'Backlinks on the next month''s first day';
COMMENT ON COLUMN linkledger.month_over_month.backlinks_change IS 'backlinks_end - backlinks_start: the net change of backlinks during the month';
COMMENT ON COLUMN linkledger.month_over_month.new_referring_domains IS 'Referring domains gained during the month (the API''s new_referring_domains of the next month''s history row, compared with this month''s; 0 before May 2021)';
COMMENT ON COLUMN linkledger.month_over_month.lost_referring_domains IS 'Referring domains lost during the month (lost_referring_domains of the next month''s history row; 0 before May 2021)';
COMMENT ON COLUMN linkledger.month_over_month.new_backlinks IS 'Backlinks gained during the month (new_backlinks of the next month''s history row; 0 before May 2021)';
COMMENT ON COLUMN linkledger.month_over_month.lost_backlinks IS 'Backlinks lost during the month (lost_backlinks of the next month''s history row; 0 before May 2021)';
COMMENT ON COLUMN linkledger.month_over_month.rank_start IS 'Rank on the month''s first day (0-1000 scale)';
COMMENT ON COLUMN linkledger.month_over_month.rank_end IS 'Rank on the next month''s first day (0-1000 scale)';
COMMENT ON COLUMN linkledger.month_over_month.rank_change IS 'rank_end - rank_start';
COMMENT ON COLUMN linkledger.month_over_month.rank_scale IS 'Scale of the ranks: one_thousand (0-1000), the default option set''s';
COMMENT ON COLUMN linkledger.month_over_month.complete IS 'true: both snapshots (this month''s first day and the next month''s) are stored, so the changes cover the whole month; false: one is missing and the changes are NULL (the new/lost counts are there when the closing snapshot is)';

-- ---------------------------------------------------------------------------------
-- rank_trend: one rank per target, day and scale, from the first source in a fixed
-- order that has one that day.
DROP VIEW linkledger.rank_trend;
CREATE VIEW linkledger.rank_trend AS
WITH ranks AS (
    SELECT s.target, s.collected_on AS date, s.rank_scale, s.rank,
           'summary' AS source_table, NULL::text AS group_range, 1 AS precedence
    FROM linkledger.summary s
    WHERE s.options - 'rank_scale' = linkledger.default_options('summary') - 'rank_scale'
      AND s.rank IS NOT NULL
    UNION ALL
    SELECT b.target, b.collected_on, b.rank_scale, b.rank, 'bulk_ranks', NULL, 2
    FROM linkledger.bulk_ranks b
    WHERE b.options - 'rank_scale' = linkledger.default_options('bulk_ranks') - 'rank_scale'
      AND b.rank IS NOT NULL
    UNION ALL
    SELECT t.target, least(t.date, (t.collected_at AT TIME ZONE 'UTC')::date), t.rank_scale, t.rank,
           'timeseries_summary', t.group_range,
           CASE t.group_range WHEN 'day' THEN 3 WHEN 'week' THEN 5 WHEN 'month' THEN 6 ELSE 7 END
    FROM linkledger.timeseries_summary t
    WHERE t.options - 'rank_scale' = linkledger.default_options('timeseries_summary') - 'rank_scale'
      AND t.rank IS NOT NULL
    UNION ALL
    SELECT h.target, h.month, h.rank_scale, h.rank, 'history', NULL, 4
    FROM linkledger.history h
    WHERE h.options - 'rank_scale' = linkledger.default_options('history') - 'rank_scale'
      AND h.rank IS NOT NULL
),
daily AS (
    SELECT r.target, r.date, r.rank_scale,
           (array_agg(r.rank ORDER BY r.precedence))[1] AS rank,
           (array_agg(r.source_table ORDER BY r.precedence))[1] AS source_table,
           (array_agg(r.group_range ORDER BY r.precedence))[1] AS group_range,
           array_agg(r.source_table || coalesce(' by ' || r.group_range, '') ORDER BY r.precedence) AS sources
    FROM ranks r
    GROUP BY r.target, r.date, r.rank_scale
)
SELECT d.target, d.date, d.rank_scale, d.rank,
       d.rank - lag(d.rank) OVER (PARTITION BY d.target, d.rank_scale ORDER BY d.date) AS rank_change,
       d.source_table, d.group_range, d.sources
FROM daily d;
COMMENT ON VIEW linkledger.rank_trend IS 'One rank per target, day and rank scale (the other request options the defaults): of the ranks stored for that day, the first in this order: summary, bulk_ranks (the live rank on the UTC day collected), timeseries_summary by day, history (the rank on the month''s first day), timeseries_summary by week, month, year (the rank at the period''s last day, a running period dated the day it was collected). One series per target and scale: ranks of the two scales are not comparable (the 0-100 one is no linear function of the 0-1000 one); a target collected on one scale only has its series on that scale';
COMMENT ON COLUMN linkledger.rank_trend.target IS 'Domain, subdomain or page URL';
COMMENT ON COLUMN linkledger.rank_trend.date IS 'The day the rank is for: collected_on (summary, bulk_ranks), the month''s first day (history), the period''s last day (timeseries_summary), or for a running period the UTC day it was collected; never a day ahead';
COMMENT ON COLUMN linkledger.rank_trend.rank_scale IS 'Scale of the rank: one_thousand (0-1000) or one_hundred (0-100); compare ranks of one scale only';
COMMENT ON COLUMN linkledger.rank_trend.rank IS 'Rank of the target on that scale that day, PageRank-like: from source_table, the first source in the view''s order with a rank that day';
COMMENT ON COLUMN linkledger.rank_trend.rank_change IS 'Change against the previous day of the same target and scale in this view (whatever its source)';
COMMENT ON COLUMN linkledger.rank_trend.source_table IS 'The table the rank comes from: summary, bulk_ranks, timeseries_summary or history';
COMMENT ON COLUMN linkledger.rank_trend.group_range IS 'Period length of the timeseries_summary row the rank comes from (day, week, month, year); NULL for the other tables';
COMMENT ON COLUMN linkledger.rank_trend.sources IS 'Every source with a rank of this target, day and scale, in the order of precedence (the first gave rank): table, and for timeseries_summary ''by'' its group_range';

-- ---------------------------------------------------------------------------------
-- spam_score_daily: the spam score of a target, and apart that of its backlinks.
CREATE VIEW linkledger.spam_score_daily AS
WITH scores AS (
    SELECT b.target, b.collected_on AS day, 'target' AS kind, b.spam_score AS score,
           'bulk_spam_score.spam_score' AS source, 1 AS precedence
    FROM linkledger.bulk_spam_score b
    WHERE b.options = linkledger.default_options('bulk_spam_score')
    UNION ALL
    SELECT s.target, s.collected_on, 'target', s.info_target_spam_score,
           'summary.info_target_spam_score', 2
    FROM linkledger.summary s
    WHERE s.options = linkledger.default_options('summary')
    UNION ALL
    SELECT s.target, s.collected_on, 'backlinks', s.backlinks_spam_score,
           'summary.backlinks_spam_score', 1
    FROM linkledger.summary s
    WHERE s.options = linkledger.default_options('summary')
    UNION ALL
    SELECT p.target, p.collected_on, 'backlinks', p.backlinks_spam_score,
           'bulk_pages_summary.backlinks_spam_score', 2
    FROM linkledger.bulk_pages_summary p
    WHERE p.options = linkledger.default_options('bulk_pages_summary')
)
SELECT c.target,
       c.day,
       (array_agg(c.score ORDER BY c.precedence)
          FILTER (WHERE c.kind = 'target' AND c.score IS NOT NULL))[1] AS target_spam_score,
       (array_agg(c.source ORDER BY c.precedence)
          FILTER (WHERE c.kind = 'target' AND c.score IS NOT NULL))[1] AS target_spam_score_source,
       (array_agg(c.score ORDER BY c.precedence)
          FILTER (WHERE c.kind = 'backlinks' AND c.score IS NOT NULL))[1] AS backlinks_spam_score,
       (array_agg(c.source ORDER BY c.precedence)
          FILTER (WHERE c.kind = 'backlinks' AND c.score IS NOT NULL))[1] AS backlinks_spam_score_source
FROM scores c
GROUP BY c.target, c.day;
COMMENT ON VIEW linkledger.spam_score_daily IS 'The spam score per target and UTC day collected, one value per question (the default option sets). "How spammy is this target?": target_spam_score, the average spam score of the target''s own pages (bulk_spam_score.spam_score, else summary.info_target_spam_score: one metric from two endpoints). "How spammy are the links pointing to it?": backlinks_spam_score (summary.backlinks_spam_score, else bulk_pages_summary.backlinks_spam_score for a page), a different metric: never compare the two. history.info_target_spam_score is left out: the API does not document it as the score on the month''s first day';
COMMENT ON COLUMN linkledger.spam_score_daily.target IS 'Domain, subdomain or page URL';
COMMENT ON COLUMN linkledger.spam_score_daily.day IS 'UTC day the scores were collected';
COMMENT ON COLUMN linkledger.spam_score_daily.target_spam_score IS 'THE spam score of the target (0-100): the average spam score of its pages; from bulk_spam_score.spam_score, else summary.info_target_spam_score; NULL when neither was collected that day';
COMMENT ON COLUMN linkledger.spam_score_daily.target_spam_score_source IS 'table.column target_spam_score comes from';
COMMENT ON COLUMN linkledger.spam_score_daily.backlinks_spam_score IS 'Spam score of the backlinks pointing to the target (0-100), not of the target itself; from summary.backlinks_spam_score, else bulk_pages_summary.backlinks_spam_score; NULL when neither was collected that day';
COMMENT ON COLUMN linkledger.spam_score_daily.backlinks_spam_score_source IS 'table.column backlinks_spam_score comes from';

-- ---------------------------------------------------------------------------------
-- Which column answers which question: the table columns say what they measure and
-- point to the view that gives one answer.
COMMENT ON COLUMN linkledger.history.month IS 'Snapshot day: the first day of the month. The counts are as they stood that day (so the row of July holds the profile at the end of June), and new_*/lost_* count the changes since the previous month''s first day (during June). What changed during a month: month_over_month';
COMMENT ON COLUMN linkledger.history.new_backlinks IS 'Backlinks gained between the previous month''s first day and month: during the month before month (0 before May 2021); per calendar month: month_over_month.new_backlinks';
COMMENT ON COLUMN linkledger.history.lost_backlinks IS 'Backlinks lost between the previous month''s first day and month: during the month before month (0 before May 2021); per calendar month: month_over_month.lost_backlinks';
COMMENT ON COLUMN linkledger.history.new_referring_domains IS 'Referring domains gained between the previous month''s first day and month: during the month before month (0 before May 2021; also read from the misspelled new_reffering_domains); last month''s gainers: month_over_month.new_referring_domains';
COMMENT ON COLUMN linkledger.history.lost_referring_domains IS 'Referring domains lost between the previous month''s first day and month: during the month before month (0 before May 2021; also read from the misspelled lost_reffering_domains); per calendar month: month_over_month.lost_referring_domains';
COMMENT ON COLUMN linkledger.history.rank IS 'Rank of the domain on its month''s first day, on the scale rank_scale names (0-1000, or 0-100), PageRank-like; one rank per target, day and scale: rank_trend';
COMMENT ON COLUMN linkledger.history.info_target_spam_score IS 'info.target_spam_score: spam score of the target as the history answer reports it (not documented as the score on the month''s first day); the spam score of a target: spam_score_daily.target_spam_score';

COMMENT ON COLUMN linkledger.timeseries_summary.date IS 'Last day of the period the row covers, as the API dates it: the running week, month or year is dated a day still ahead, its figures as of the UTC day collected (linkledger.days_covered; rank_trend dates it by that day)';
COMMENT ON COLUMN linkledger.timeseries_summary.rank IS 'Rank of the target at the period''s last day (a running period: the day collected), on the scale rank_scale names (0-1000, or 0-100), PageRank-like; one rank per target, day and scale: rank_trend';
COMMENT ON COLUMN linkledger.timeseries_new_lost_summary.date IS 'Last day of the period the row covers, as the API dates it: the running week, month or year is dated a day still ahead, its figures partial (new_lost_periods: days_covered, complete)';
COMMENT ON COLUMN linkledger.timeseries_new_lost_summary.new_backlinks IS 'Backlinks gained during the period (its first day to date, or to the day collected for a running period); per calendar period with its coverage: new_lost_periods, per week: new_lost_weekly';
COMMENT ON COLUMN linkledger.timeseries_new_lost_summary.lost_backlinks IS 'Backlinks lost during the period (its first day to date, or to the day collected for a running period); per calendar period with its coverage: new_lost_periods, per week: new_lost_weekly';
COMMENT ON COLUMN linkledger.timeseries_new_lost_summary.new_referring_domains IS 'Referring domains gained during the period (also read from the misspelled new_reffering_domains); a calendar month''s gainers when collected by month: new_lost_periods WHERE group_range = ''month'' AND complete';
COMMENT ON COLUMN linkledger.timeseries_new_lost_summary.lost_referring_domains IS 'Referring domains lost during the period (also read from the misspelled lost_reffering_domains); per calendar period with its coverage: new_lost_periods';
COMMENT ON COLUMN linkledger.timeseries_new_lost_summary.new_referring_main_domains IS 'Referring main domains gained during the period';
COMMENT ON COLUMN linkledger.timeseries_new_lost_summary.lost_referring_main_domains IS 'Referring main domains lost during the period';
COMMENT ON COLUMN linkledger.bulk_new_lost_backlinks.new_backlinks IS 'Backlinks gained from date_from to collected_on: a window ending the day collected, not a calendar month (last month''s gainers: month_over_month or new_lost_periods)';
COMMENT ON COLUMN linkledger.bulk_new_lost_backlinks.lost_backlinks IS 'Backlinks lost from date_from to collected_on: a window ending the day collected, not a calendar month';
COMMENT ON COLUMN linkledger.bulk_new_lost_referring_domains.new_referring_domains IS 'Referring domains gained from date_from to collected_on (also read from the misspelled new_reffering_domains): a window ending the day collected, not a calendar month (last month''s gainers: month_over_month or new_lost_periods)';
COMMENT ON COLUMN linkledger.bulk_new_lost_referring_domains.lost_referring_domains IS 'Referring domains lost from date_from to collected_on (also read from the misspelled lost_reffering_domains): a window ending the day collected, not a calendar month';
COMMENT ON COLUMN linkledger.bulk_new_lost_referring_domains.new_referring_main_domains IS 'Referring main domains gained from date_from to collected_on';
COMMENT ON COLUMN linkledger.bulk_new_lost_referring_domains.lost_referring_main_domains IS 'Referring main domains lost from date_from to collected_on';

COMMENT ON COLUMN linkledger.summary.rank IS 'Rank of the target on the UTC day collected, on the scale rank_scale names (0-1000, or 0-100), PageRank-like; one rank per target, day and scale: rank_trend';
COMMENT ON COLUMN linkledger.bulk_ranks.rank IS 'Rank of the target on the UTC day collected, on the scale rank_scale names (0-1000, or 0-100), PageRank-like; one rank per target, day and scale: rank_trend';
COMMENT ON COLUMN linkledger.summary.backlinks_spam_score IS 'Spam score of the backlinks pointing to the target (0-100), not of the target itself: spam_score_daily.backlinks_spam_score; the target''s own: spam_score_daily.target_spam_score';
COMMENT ON COLUMN linkledger.summary.info_target_spam_score IS 'info.target_spam_score: spam score of the target (0-100, the average of its pages), the same metric as bulk_spam_score.spam_score; the spam score of a target: spam_score_daily.target_spam_score';
COMMENT ON COLUMN linkledger.bulk_spam_score.spam_score IS 'Spam score of the target (0-100, the average of its pages), the same metric as summary.info_target_spam_score; the spam score of a target: spam_score_daily.target_spam_score';
COMMENT ON COLUMN linkledger.bulk_pages_summary.backlinks_spam_score IS 'Spam score of the backlinks pointing to the page (0-100), not of the page itself: spam_score_daily.backlinks_spam_score';

-- referring_domains_trend keeps its shape (the dashboard's monthly panels read it as
-- levels); its comments now say what its month and its changes are.
COMMENT ON VIEW linkledger.referring_domains_trend IS 'Referring domains and backlinks per domain on each month''s first day (history''s snapshots, default options, rank on the 0-1000 scale), with the change since the snapshot before: the change of the month before month. What changed during a calendar month ("last month"): month_over_month';
COMMENT ON COLUMN linkledger.referring_domains_trend.month IS 'Snapshot day: the first day of the month; the counts as they stood that day';
COMMENT ON COLUMN linkledger.referring_domains_trend.referring_domains_change IS 'referring_domains minus that of the previous stored snapshot: the change during the month before month (during a calendar month: month_over_month.referring_domains_change)';
COMMENT ON COLUMN linkledger.referring_domains_trend.backlinks_change IS 'backlinks minus that of the previous stored snapshot: the change during the month before month (during a calendar month: month_over_month.backlinks_change)';

-- The views that show these table columns unchanged say what the tables now say.
DO $$
DECLARE c record;
BEGIN
  FOR c IN
    SELECT v.view, a.attname AS col, col_description(b.oid, ba.attnum) AS doc
    FROM (VALUES ('summary_daily', 'summary'), ('latest_summary', 'summary'),
                 ('latest_summary_by_options', 'summary'), ('referring_domains_trend', 'history'))
           AS v(view, base)
    JOIN pg_class vc ON vc.relname = v.view AND vc.relnamespace = 'linkledger'::regnamespace
    JOIN pg_attribute a ON a.attrelid = vc.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_class b ON b.relname = v.base AND b.relnamespace = 'linkledger'::regnamespace
    JOIN pg_attribute ba ON ba.attrelid = b.oid AND ba.attname = a.attname AND NOT ba.attisdropped
    WHERE a.attname IN ('rank', 'backlinks_spam_score', 'info_target_spam_score')
  LOOP
    EXECUTE format('COMMENT ON COLUMN linkledger.%I.%I IS %L', c.view, c.col, c.doc);
  END LOOP;
END $$;
