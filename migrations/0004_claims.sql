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

-- Work of once-runs, demos and backfills that earlier versions left queued (a once-run
-- interrupted or killed) was claimable by any daemon, which paid for it, maybe days
-- later. Only its own run may claim it now, so it would wait forever: cancel it, book
-- its unanswered requests at the list price, and close those runs as interrupted.
UPDATE linkledger.api_calls c SET outcome = 'abandoned',
       cost_usd = 0.02 + 0.00003 * w.estimated_rows,
       error = 'no answer: the request was left in flight by an earlier version; cost is the list-price estimate'
FROM linkledger.work w
WHERE c.work_id = w.id AND w.run_kind <> 'scheduled' AND w.state IN ('queued', 'running')
  AND c.outcome = 'sent';
UPDATE linkledger.work SET state = 'cancelled', finished_at = now(), lease_expires_at = NULL,
       last_error = 'not sent: left queued by an earlier version of a once-run; cancelled on upgrade'
WHERE run_kind <> 'scheduled' AND state IN ('queued', 'running');
UPDATE linkledger.runs r SET status = 'interrupted', finished_at = now(),
       message = 'not sent: left queued by an earlier version of a once-run; cancelled on upgrade',
       calls = (SELECT count(*) FROM linkledger.api_calls c WHERE c.run_id = r.id),
       cost_usd = (SELECT coalesce(sum(c.cost_usd), 0) FROM linkledger.api_calls c WHERE c.run_id = r.id),
       rows_written = (SELECT coalesce(sum(w.rows_written), 0) FROM linkledger.work w WHERE w.run_id = r.id),
       failed_calls = (SELECT count(*) FROM linkledger.work w
                       WHERE w.run_id = r.id AND w.state IN ('failed', 'exhausted', 'cancelled'))
WHERE r.kind <> 'scheduled' AND r.status = 'running'
  AND EXISTS (SELECT 1 FROM linkledger.work w WHERE w.run_id = r.id)
  AND NOT EXISTS (SELECT 1 FROM linkledger.work w
                  WHERE w.run_id = r.id AND w.state IN ('queued', 'running'));

-- When a daemon first saw each collection: a collection that never fired starts at its
-- next instant after this, even if the daemon that saw it stopped before that instant.
CREATE TABLE linkledger.collections (
    job           text        NOT NULL,
    collection    text        NOT NULL,
    first_seen_at timestamptz NOT NULL,
    PRIMARY KEY (job, collection)
);
COMMENT ON TABLE linkledger.collections IS 'One row per collection a daemon has scheduled: when it was first seen (its schedule starts after that)';
COMMENT ON COLUMN linkledger.collections.job IS 'Job name';
COMMENT ON COLUMN linkledger.collections.collection IS 'Collection name within the job';
COMMENT ON COLUMN linkledger.collections.first_seen_at IS 'When a daemon first scheduled it; fires before this are never caught up';
