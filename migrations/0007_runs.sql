-- linkledger: runs a person can cancel (`linkledger cancel`).
-- Never edit a migration that has landed; add one.

-- A cancelled run: its queued work was dropped by `linkledger cancel` (never a call in
-- flight); it closes `cancelled` once the calls in flight at that moment have ended.
ALTER TABLE linkledger.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE linkledger.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'halted', 'interrupted', 'cancelled'));
ALTER TABLE linkledger.runs ADD COLUMN cancelled_at timestamptz;
COMMENT ON COLUMN linkledger.runs.status IS 'running, succeeded (every call succeeded), failed (some call failed), halted (auth/payment/limit stopped it), interrupted (a signal stopped it), cancelled (linkledger cancel dropped its queued work)';
COMMENT ON COLUMN linkledger.runs.cancelled_at IS 'When linkledger cancel dropped the run''s queued work; NULL if it never did';
COMMENT ON COLUMN linkledger.work.state IS 'queued, running (claimed), succeeded, failed (refused, rejected or an answer that could not be read), exhausted (max_attempts failed attempts) or cancelled (a refusal, an interrupted once-run, or linkledger cancel)';

-- `linkledger runs` shows each scheduled run's collection, found through its fire.
CREATE INDEX fires_run_idx ON linkledger.fires (run_id);
