-- linkledger: what the warehouse holds of the date-ranged collections, so that fires,
-- once-runs and backfills ask only for what is missing. Never edit a migration that has
-- landed; add one.

CREATE TABLE linkledger.coverage (
    endpoint   text            NOT NULL,
    target     text            NOT NULL,
    options    jsonb           NOT NULL,
    covered    datemultirange  NOT NULL,
    fresh      datemultirange  NOT NULL DEFAULT '{}',
    fresh_on   date,
    updated_at timestamptz     NOT NULL DEFAULT now(),
    PRIMARY KEY (target, endpoint, options)
);
COMMENT ON TABLE linkledger.coverage IS 'Periods of history and timeseries data stored per endpoint, target and request options: closed periods (ended before their answer came) that stored answers covered, recorded with their rows for good, and the periods still open when answered held for that day only';
COMMENT ON COLUMN linkledger.coverage.endpoint IS 'history, timeseries_summary or timeseries_new_lost_summary';
COMMENT ON COLUMN linkledger.coverage.target IS 'Target (domain)';
COMMENT ON COLUMN linkledger.coverage.options IS 'The request''s parameters other than the target and the dates (group_range, rank_scale, ...)';
COMMENT ON COLUMN linkledger.coverage.covered IS 'Days of the periods covered for good (they had ended before their answer came), as a multirange';
COMMENT ON COLUMN linkledger.coverage.fresh IS 'Days of the periods that were still open when answered on fresh_on: held as stored on that day (UTC) only, asked again after';
COMMENT ON COLUMN linkledger.coverage.fresh_on IS 'The day (UTC) the open periods in fresh were answered';
COMMENT ON COLUMN linkledger.coverage.updated_at IS 'When it last grew';
