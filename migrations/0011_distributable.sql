-- The warehouse tables no longer hold a foreign key to raw_responses.
--
-- raw_responses is the ledger's: it stays on one server (a Citus coordinator) and is
-- where old bodies will be dropped by a retention window, while the warehouse tables
-- are distributed by target. Citus refuses a foreign key from a distributed table to
-- a local one, and a retention window could not drop a body some row still points to.
-- raw_response_id stays: it says which answer a row came from, and replay writes it.

DO $$
DECLARE
    fk record;
BEGIN
    FOR fk IN
        SELECT c.conrelid::regclass AS tbl, c.conname
        FROM pg_constraint c
        WHERE c.contype = 'f'
          AND c.confrelid = 'linkledger.raw_responses'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.conname);
    END LOOP;
END
$$;

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT a.attrelid::regclass AS tbl
        FROM pg_attribute a
        JOIN pg_class r ON r.oid = a.attrelid
        WHERE r.relnamespace = 'linkledger'::regnamespace
          AND r.relkind IN ('r', 'p')
          AND a.attname = 'raw_response_id'
          AND NOT a.attisdropped
    LOOP
        EXECUTE format(
            'COMMENT ON COLUMN %s.raw_response_id IS %L', t.tbl,
            'The stored raw response this row was normalized from (raw_responses.id; '
            || 'not a foreign key, so the warehouse can be distributed by target and '
            || 'old raw bodies dropped by a retention window)');
    END LOOP;
END
$$;
