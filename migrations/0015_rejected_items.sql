-- linkledger: one unreadable item costs that item. An item of a paid answer that
-- cannot be read (null, its key null or of the wrong type, a field of the wrong JSON
-- type) is set aside here with where it was and why, in the transaction that writes
-- the rest of the answer's rows; the answer loads and its work item succeeds.
-- Never edit a migration that has landed; add one.
--
-- Keyed by the answer and the item's path in it, so loading the same answer again
-- (a reused answer, a re-claimed item, replay) changes nothing. replay deletes the
-- rows of the items it can now read. Not partitioned: it holds only what is still
-- unread (a few items, not a row per call), and raw retention keeps the body of every
-- answer that still has a row here, so replay can read it again (store::partitions).
-- No foreign key to raw_responses (its key holds received_at; the warehouse tables'
-- raw_response_id has none either, 0011). On Citus it stays on the coordinator.
-- The reader role of `grant-reader` reads it through the default privileges that
-- command set for the tables the migrating role creates.

CREATE TABLE linkledger.rejected_items (
    raw_response_id bigint      NOT NULL,
    path            text        NOT NULL,
    endpoint        text        NOT NULL,
    reason          text        NOT NULL,
    item            jsonb       NOT NULL,
    collected_at    timestamptz NOT NULL,
    set_aside_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (raw_response_id, path)
);

COMMENT ON TABLE linkledger.rejected_items IS 'Items of stored answers that could not be read (null, a key field null or of the wrong type, a field of the wrong JSON type), set aside while the rest of their answer loaded; replay deletes the rows of the items it can now read';
COMMENT ON COLUMN linkledger.rejected_items.raw_response_id IS 'The stored raw response the item is in (raw_responses.id; its body is kept past raw retention while it has rows here)';
COMMENT ON COLUMN linkledger.rejected_items.path IS 'Where the item is in the answer, e.g. tasks[0].result[0].items[3] (a summary''s item is its result, tasks[0].result[0])';
COMMENT ON COLUMN linkledger.rejected_items.endpoint IS 'API endpoint of the answer';
COMMENT ON COLUMN linkledger.rejected_items.reason IS 'Why it could not be read: the field and what arrived, e.g. target: expected string, found null';
COMMENT ON COLUMN linkledger.rejected_items.item IS 'The item as it came (JSON null for a null item)';
COMMENT ON COLUMN linkledger.rejected_items.collected_at IS 'When the answer arrived (the collected_at its rows carry)';
COMMENT ON COLUMN linkledger.rejected_items.set_aside_at IS 'When the item was first set aside (loading the answer again keeps it)';
