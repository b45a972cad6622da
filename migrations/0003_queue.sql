-- linkledger: the work queue, schedule fires and the account's shared API limits.
-- Never edit a migration that has landed; add one.

-- One row per fire of a collection's schedule. The unique key makes enqueueing a
-- fire idempotent, so any number of daemons can tick without a leader.
CREATE TABLE linkledger.fires (
    id            bigserial   PRIMARY KEY,
    job           text        NOT NULL,
    collection    text        NOT NULL,
    scheduled_for timestamptz NOT NULL,
    run_id        bigint      NOT NULL REFERENCES linkledger.runs (id),
    enqueued_at   timestamptz NOT NULL DEFAULT now(),
    enqueued_by   text        NOT NULL,
    UNIQUE (job, collection, scheduled_for)
);
COMMENT ON TABLE linkledger.fires IS 'One row per schedule fire of a collection that became work; unique per (job, collection, scheduled_for)';
COMMENT ON COLUMN linkledger.fires.id IS 'Fire id';
COMMENT ON COLUMN linkledger.fires.job IS 'Job name';
COMMENT ON COLUMN linkledger.fires.collection IS 'Collection name within the job';
COMMENT ON COLUMN linkledger.fires.scheduled_for IS 'The instant the schedule fired for (not when it was enqueued)';
COMMENT ON COLUMN linkledger.fires.run_id IS 'The run that executes the fire';
COMMENT ON COLUMN linkledger.fires.enqueued_at IS 'When the fire was enqueued';
COMMENT ON COLUMN linkledger.fires.enqueued_by IS 'Daemon instance that enqueued it (host:pid)';

-- One row per planned API call. Workers claim rows with FOR UPDATE SKIP LOCKED inside
-- an UPDATE ... RETURNING; each claim increments `attempt`, the fencing token every
-- later write of that claim must match. A claim expires with its lease; claiming
-- accepts expired leases, which is the whole of crash recovery.
CREATE TABLE linkledger.work (
    id               bigserial   PRIMARY KEY,
    run_id           bigint      NOT NULL REFERENCES linkledger.runs (id),
    fire_id          bigint      REFERENCES linkledger.fires (id),
    job              text        NOT NULL,
    collection       text        NOT NULL,
    endpoint         text        NOT NULL,
    targets          text[]      NOT NULL,
    task             jsonb       NOT NULL,
    estimated_rows   bigint      NOT NULL,
    state            text        NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'exhausted', 'cancelled')),
    attempt          integer     NOT NULL DEFAULT 0,
    failures         integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL,
    run_after        timestamptz NOT NULL DEFAULT now(),
    leased_by        text,
    lease_expires_at timestamptz,
    last_error       text,
    rows_written     bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE INDEX work_claimable_idx ON linkledger.work (run_after, id) WHERE state IN ('queued', 'running');
CREATE INDEX work_run_idx ON linkledger.work (run_id, state);
COMMENT ON TABLE linkledger.work IS 'The work queue: one row per planned API call, with its state, claim (attempt, lease) and last error';
COMMENT ON COLUMN linkledger.work.id IS 'Work id';
COMMENT ON COLUMN linkledger.work.run_id IS 'Run the call belongs to';
COMMENT ON COLUMN linkledger.work.fire_id IS 'Schedule fire that produced it; NULL for run --once';
COMMENT ON COLUMN linkledger.work.job IS 'Job name';
COMMENT ON COLUMN linkledger.work.collection IS 'Collection name';
COMMENT ON COLUMN linkledger.work.endpoint IS 'API endpoint';
COMMENT ON COLUMN linkledger.work.targets IS 'Targets of the call';
COMMENT ON COLUMN linkledger.work.task IS 'The task object POSTed';
COMMENT ON COLUMN linkledger.work.estimated_rows IS 'Rows the answer is expected to hold, for the cost estimate';
COMMENT ON COLUMN linkledger.work.state IS 'queued, running (claimed), succeeded, failed (refused or rejected), exhausted (retries used up) or cancelled';
COMMENT ON COLUMN linkledger.work.attempt IS 'Claims so far; the fencing token of the current claim';
COMMENT ON COLUMN linkledger.work.failures IS 'Attempts that failed with a retryable error (throttling not counted)';
COMMENT ON COLUMN linkledger.work.max_attempts IS 'Failed attempts allowed before the call is exhausted';
COMMENT ON COLUMN linkledger.work.run_after IS 'Not claimable before this instant (retry backoff)';
COMMENT ON COLUMN linkledger.work.leased_by IS 'Worker holding the current claim (host:pid/worker)';
COMMENT ON COLUMN linkledger.work.lease_expires_at IS 'When the current claim lapses unless its heartbeat renews it';
COMMENT ON COLUMN linkledger.work.last_error IS 'Why the last attempt failed';
COMMENT ON COLUMN linkledger.work.rows_written IS 'Warehouse rows written by the successful attempt';
COMMENT ON COLUMN linkledger.work.created_at IS 'When the call was enqueued';
COMMENT ON COLUMN linkledger.work.finished_at IS 'When it reached a terminal state';

-- The account's limits are shared by every process using it: requests in flight are
-- leased slots (a crashed holder's slot lapses), requests started per minute are a
-- sliding log of start instants.
CREATE TABLE linkledger.api_slots (
    slot             integer     PRIMARY KEY,
    holder           text,
    lease_expires_at timestamptz
);
COMMENT ON TABLE linkledger.api_slots IS 'Leased request slots: at most one API request in flight per row, across every process';
COMMENT ON COLUMN linkledger.api_slots.slot IS 'Slot number';
COMMENT ON COLUMN linkledger.api_slots.holder IS 'Process holding the slot, NULL when free';
COMMENT ON COLUMN linkledger.api_slots.lease_expires_at IS 'When the hold lapses if not released (a crashed holder)';

CREATE TABLE linkledger.api_starts (
    started_at timestamptz NOT NULL
);
CREATE INDEX api_starts_idx ON linkledger.api_starts (started_at);
COMMENT ON TABLE linkledger.api_starts IS 'Start instants of API requests in the last minute, across every process (per-minute limit)';
COMMENT ON COLUMN linkledger.api_starts.started_at IS 'When a request was allowed to start';

CREATE VIEW linkledger.queue AS
SELECT w.state, count(*)::bigint AS items,
       min(w.created_at) AS oldest, max(w.finished_at) AS last_finished
FROM linkledger.work w
GROUP BY w.state;
COMMENT ON VIEW linkledger.queue IS 'Work items per state';
COMMENT ON COLUMN linkledger.queue.state IS 'Work state';
COMMENT ON COLUMN linkledger.queue.items IS 'Work items in the state';
COMMENT ON COLUMN linkledger.queue.oldest IS 'When the oldest item in the state was enqueued';
COMMENT ON COLUMN linkledger.queue.last_finished IS 'When the last item reached the state, for terminal states';

-- A request whose process died before its answer arrived is 'abandoned' once its
-- work is claimed again: the API most likely charged it, so the ledger carries the
-- list-price estimate for it (an answer arriving later still overwrites it).
ALTER TABLE linkledger.api_calls DROP CONSTRAINT api_calls_outcome_check;
ALTER TABLE linkledger.api_calls ADD CONSTRAINT api_calls_outcome_check
    CHECK (outcome IN ('sent', 'ok', 'throttled', 'retryable', 'halt', 'daily_limit',
                       'rejected', 'invalid_response', 'abandoned'));
COMMENT ON COLUMN linkledger.api_calls.cost_usd IS 'Cost the API reported for the request, USD; for outcome abandoned (no answer ever arrived) the list-price estimate';
COMMENT ON COLUMN linkledger.api_calls.outcome IS 'sent (no answer recorded yet), ok, throttled, retryable, halt (auth/payment), daily_limit, rejected (request error, not retried), invalid_response (stored raw but could not be normalized), abandoned (the process died before the answer)';

-- Which claim of which work item made a request: recovery after a crash finds the
-- answers and the unanswered requests of earlier claims of the same item by it.
ALTER TABLE linkledger.api_calls ADD COLUMN work_id bigint REFERENCES linkledger.work (id);
CREATE INDEX api_calls_work_idx ON linkledger.api_calls (work_id) WHERE work_id IS NOT NULL;
COMMENT ON COLUMN linkledger.api_calls.work_id IS 'Work item the request was made for (NULL outside the queue); attempt is then the claim that made it';
