-- linkledger: who may claim which work, claims that end without an outcome, and one
-- token per acquisition of a shared API slot. Never edit a migration that has landed;
-- add one.

-- The kind of the run a work item belongs to decides which process may claim it: a
-- daemon claims scheduled work only; a once-run (run --once, demo, backfill) only the
-- work of its own runs. Kept on the item (it never changes) so a claim needs no join.
ALTER TABLE linkledger.work ADD COLUMN run_kind text;
UPDATE linkledger.work w SET run_kind = r.kind FROM linkledger.runs r WHERE r.id = w.run_id;
ALTER TABLE linkledger.work ALTER COLUMN run_kind SET NOT NULL;
ALTER TABLE linkledger.work ADD CONSTRAINT work_run_kind_check
    CHECK (run_kind IN ('scheduled', 'once', 'backfill', 'replay', 'demo'));
COMMENT ON COLUMN linkledger.work.run_kind IS 'Kind of the run the item belongs to: a daemon claims only scheduled work, a once-run or backfill only its own runs'' work';
DROP INDEX linkledger.work_claimable_idx;
CREATE INDEX work_claimable_idx ON linkledger.work (run_kind, run_after, id)
    WHERE state IN ('queued', 'running');

COMMENT ON COLUMN linkledger.work.failures IS 'Attempts that failed: a retryable error, a crash (panic) or a claim whose lease lapsed without an outcome (its process died); throttling is not counted';
COMMENT ON COLUMN linkledger.work.state IS 'queued, running (claimed), succeeded, failed (refused, rejected or an answer that could not be read), exhausted (max_attempts failed attempts) or cancelled (a refusal or an interrupted once-run)';

-- Each acquisition of a slot gets its own token; renewing and releasing name it, so a
-- task whose lease lapsed cannot free (or keep alive) a slot taken again since, even by
-- another task of the same process.
CREATE SEQUENCE linkledger.api_slot_tokens;
ALTER TABLE linkledger.api_slots ADD COLUMN token bigint;
COMMENT ON COLUMN linkledger.api_slots.token IS 'Token of the current acquisition (NULL when free); release and renewal must name it';
COMMENT ON COLUMN linkledger.api_slots.holder IS 'Process holding the slot (host:pid/role), NULL when free; for people, the token decides';
