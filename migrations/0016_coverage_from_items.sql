-- linkledger: coverage from the answers' items. A period of history or a timeseries
-- counts as stored only when an answer held its item, and for good only when that
-- answer's request was sent after the period settled; a period asked for and absent
-- is answered-empty, not stored. Never edit a migration that has landed; add one.
--
-- linkledger.coverage keeps its columns with stricter meanings (below); the periods
-- that are not stored for good, and when they were answered, are rows of
-- linkledger.pending_periods. Coverage recorded before this migration stands as it
-- was recorded: `linkledger backfill --refetch` buys a range again.

CREATE TABLE linkledger.pending_periods (
    target            text        NOT NULL,
    endpoint          text        NOT NULL,
    options           jsonb       NOT NULL,
    period_from       date        NOT NULL,
    period_to         date        NOT NULL,
    state             text        NOT NULL CHECK (state IN ('unsettled', 'empty')),
    first_answered_at timestamptz NOT NULL,
    last_answered_at  timestamptz NOT NULL,
    answers           integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (target, endpoint, options, period_from)
);
COMMENT ON TABLE linkledger.pending_periods IS 'Periods of history and timeseries data asked for but not stored for good, per target, endpoint and request options: stored but not yet settled (later fires ask again until an answer sent after the period settled stores it), or answered empty (an answer lacked its item: nothing is stored; later fires ask again until the collection''s reask_empty has passed since an answer first lacked it)';
COMMENT ON COLUMN linkledger.pending_periods.target IS 'Target (domain)';
COMMENT ON COLUMN linkledger.pending_periods.endpoint IS 'history, timeseries_summary or timeseries_new_lost_summary';
COMMENT ON COLUMN linkledger.pending_periods.options IS 'The request''s parameters other than the target and the dates (group_range, rank_scale, ...), as in linkledger.coverage';
COMMENT ON COLUMN linkledger.pending_periods.period_from IS 'First day of the period (a month for history; the group_range''s day, week, month or year for a timeseries)';
COMMENT ON COLUMN linkledger.pending_periods.period_to IS 'Last day of the period';
COMMENT ON COLUMN linkledger.pending_periods.state IS 'unsettled: its item is stored, but the request was sent before the period settled; empty: the newest answer that asked for it lacked its item and none stored it';
COMMENT ON COLUMN linkledger.pending_periods.first_answered_at IS 'When the request of the first answer that asked for it was sent';
COMMENT ON COLUMN linkledger.pending_periods.last_answered_at IS 'When the request of the newest answer that asked for it was sent';
COMMENT ON COLUMN linkledger.pending_periods.answers IS 'How many answers asked for it and left it pending';

COMMENT ON TABLE linkledger.coverage IS 'Periods of history and timeseries data stored for good per endpoint, target and request options: an answer held their items and its request was sent after they settled. Periods stored but not settled, and periods answered empty, are in linkledger.pending_periods; the periods answered on fresh_on are not asked again that day';
COMMENT ON COLUMN linkledger.coverage.covered IS 'Days of the periods stored for good (an answer held their items, sent after they settled), as a multirange';
COMMENT ON COLUMN linkledger.coverage.fresh IS 'Days of the periods answered on fresh_on and not stored for good (unsettled or answered empty): not asked again on that day (UTC), asked again after';
COMMENT ON COLUMN linkledger.coverage.fresh_on IS 'The day (UTC) the periods in fresh were answered';

ALTER TABLE linkledger.work ADD COLUMN settle_seconds bigint;
COMMENT ON COLUMN linkledger.work.settle_seconds IS 'For history and timeseries calls: how long after a period''s figures are complete an answer stores it for good (the collection''s settle); NULL: the endpoint''s default';

-- Where the holes are, for SQL and BI tools: the pending periods, and the days between
-- the first and the last stored for good that nothing stored (`linkledger gaps` says
-- the same per collection, over the range its fires ask for).
CREATE VIEW linkledger.period_gaps AS
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
WHERE NOT isempty(c.covered);
COMMENT ON VIEW linkledger.period_gaps IS 'Periods of history and timeseries data not stored for good, per target, endpoint and request options: unsettled (stored, asked again until the period settles), empty (the newest answer that asked lacked the item) and missing (days between the first and last stored for good that nothing stored)';
COMMENT ON COLUMN linkledger.period_gaps.target IS 'Target (domain)';
COMMENT ON COLUMN linkledger.period_gaps.endpoint IS 'history, timeseries_summary or timeseries_new_lost_summary';
COMMENT ON COLUMN linkledger.period_gaps.options IS 'The request''s parameters other than the target and the dates (group_range, rank_scale, ...)';
COMMENT ON COLUMN linkledger.period_gaps.period_from IS 'First day of the period (for missing: of the days nothing stored)';
COMMENT ON COLUMN linkledger.period_gaps.period_to IS 'Last day of the period (for missing: of the days nothing stored)';
COMMENT ON COLUMN linkledger.period_gaps.standing IS 'unsettled, empty or missing';
COMMENT ON COLUMN linkledger.period_gaps.last_answered_at IS 'When the request of the newest answer that asked for it was sent (NULL for missing days)';
