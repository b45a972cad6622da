-- linkledger: what the warehouse holds of the date-ranged collections, so that fires,
-- once-runs and backfills ask only for what is missing. Never edit a migration that has
-- landed; add one.

CREATE TABLE linkledger.coverage (
    endpoint   text            NOT NULL,
    target     text            NOT NULL,
    options    jsonb           NOT NULL,
    covered    datemultirange  NOT NULL,
    updated_at timestamptz     NOT NULL DEFAULT now(),
    PRIMARY KEY (target, endpoint, options)
);
COMMENT ON TABLE linkledger.coverage IS 'Periods of history and timeseries data stored per endpoint, target and request options: closed periods (ended before their answer came) that stored answers covered, recorded with their rows; the still open period is never covered';
COMMENT ON COLUMN linkledger.coverage.endpoint IS 'history, timeseries_summary or timeseries_new_lost_summary';
COMMENT ON COLUMN linkledger.coverage.target IS 'Target (domain)';
COMMENT ON COLUMN linkledger.coverage.options IS 'The request''s parameters other than the target and the dates (group_range, rank_scale, ...)';
COMMENT ON COLUMN linkledger.coverage.covered IS 'Days of the periods covered, as a multirange';
COMMENT ON COLUMN linkledger.coverage.updated_at IS 'When it last grew';
