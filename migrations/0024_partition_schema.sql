-- linkledger: the month partitions and the default partitions live in a schema of
-- their own, linkledger_partitions, so a BI tool's table list in schema linkledger
-- shows only the tables and views users query (their parents), not a hundred
-- partitions beside them. Queries name the parent, as before; a reader needs no
-- privilege on the partitions (PostgreSQL checks the parent's). Never edit a
-- migration that has landed; add one.

CREATE SCHEMA IF NOT EXISTS linkledger_partitions;
COMMENT ON SCHEMA linkledger_partitions IS 'The month partitions (<table>_pYYYY_MM) and default partitions (<table>_default) of the partitioned linkledger tables: query the parent in schema linkledger';

-- The partitions made so far move over, with their indexes and constraints.
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT c.relname
             FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_class parent ON parent.oid = i.inhparent
             WHERE parent.relnamespace = 'linkledger'::regnamespace
               AND c.relnamespace = 'linkledger'::regnamespace
               AND c.relispartition
               AND c.relkind IN ('r', 'p')  -- tables; their indexes move with them
    LOOP
        EXECUTE format('ALTER TABLE linkledger.%I SET SCHEMA linkledger_partitions', p.relname);
    END LOOP;
END
$$;

-- As in 0013, the partitions made in linkledger_partitions.
CREATE OR REPLACE FUNCTION linkledger.create_month_partition(parent text, month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    first  date := date_trunc('month', month)::date;
    part   text := parent || '_p' || to_char(date_trunc('month', month), 'YYYY_MM');
    dflt   text := parent || '_default';
    col    text;
    typ    regtype;
    lo     text;
    hi     text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('linkledger'), hashtext('partitions'));
    IF to_regclass(format('linkledger_partitions.%I', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    SELECT a.attname, a.atttypid::regtype INTO col, typ
    FROM pg_partitioned_table pt
    JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
    WHERE pt.partrelid = format('linkledger.%I', parent)::regclass;
    IF col IS NULL THEN
        RAISE EXCEPTION 'linkledger.% is not a partitioned table', parent;
    END IF;
    IF typ = 'timestamp with time zone'::regtype THEN
        -- A UTC month, whatever the session's time zone.
        lo := to_char(first, 'YYYY-MM-DD') || ' 00:00:00+00';
        hi := to_char((first + interval '1 month')::date, 'YYYY-MM-DD') || ' 00:00:00+00';
    ELSE
        lo := first::text;
        hi := (first + interval '1 month')::date::text;
    END IF;
    EXECUTE format(
        'CREATE TABLE linkledger_partitions.%I (LIKE linkledger.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS
                                     INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)', part, parent);
    EXECUTE format('COMMENT ON TABLE linkledger_partitions.%I IS %L', part,
                   format('The rows of linkledger.%s of %s (a month partition: query linkledger.%s)',
                          parent, to_char(first, 'YYYY-MM'), parent));
    IF to_regclass(format('linkledger_partitions.%I', dflt)) IS NOT NULL THEN
        -- Writers wait to put rows into the default partition until the month is
        -- attached (then their rows of that month go to it): none can slip in between
        -- the move and the attach, whose check of the default partition would fail.
        EXECUTE format('LOCK TABLE linkledger_partitions.%I IN SHARE ROW EXCLUSIVE MODE', dflt);
        EXECUTE format(
            'WITH moved AS (DELETE FROM linkledger_partitions.%I WHERE %I >= %L AND %I < %L RETURNING *)
             INSERT INTO linkledger_partitions.%I SELECT * FROM moved',
            dflt, col, lo, col, hi, part);
    END IF;
    EXECUTE format('ALTER TABLE linkledger.%I ATTACH PARTITION linkledger_partitions.%I FOR VALUES FROM (%L) TO (%L)',
                   parent, part, lo, hi);
    RETURN true;
END
$$;
COMMENT ON FUNCTION linkledger.create_month_partition(text, date) IS 'Creates the month partition of a partitioned linkledger table holding the given date (linkledger_partitions.<table>_pYYYY_MM) unless it exists, moving that month''s rows out of the default partition; returns whether it created it';

CREATE OR REPLACE FUNCTION linkledger.ensure_partitions(today date, ahead integer DEFAULT 2)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t       record;
    m       date;
    created integer := 0;
BEGIN
    FOR t IN
        SELECT c.relname,
               CASE WHEN a.atttypid = 'timestamp with time zone'::regtype
                    THEN format('%I AT TIME ZONE ''UTC''', a.attname)
                    ELSE format('%I::timestamp', a.attname) END AS day
        FROM pg_partitioned_table pt
        JOIN pg_class c ON c.oid = pt.partrelid
        JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
        WHERE c.relnamespace = 'linkledger'::regnamespace
        ORDER BY c.relname
    LOOP
        FOR m IN SELECT generate_series(date_trunc('month', today),
                                        date_trunc('month', today) + make_interval(months => ahead),
                                        interval '1 month')::date
        LOOP
            IF linkledger.create_month_partition(t.relname, m) THEN
                created := created + 1;
            END IF;
        END LOOP;
        IF to_regclass(format('linkledger_partitions.%I', t.relname || '_default')) IS NOT NULL THEN
            FOR m IN EXECUTE format(
                'SELECT DISTINCT date_trunc(''month'', %s)::date FROM linkledger_partitions.%I',
                t.day, t.relname || '_default')
            LOOP
                CONTINUE WHEN t.relname = 'raw_responses' AND m < date_trunc('month', today);
                IF linkledger.create_month_partition(t.relname, m) THEN
                    created := created + 1;
                END IF;
            END LOOP;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
COMMENT ON FUNCTION linkledger.ensure_partitions(date, integer) IS 'Creates the month partitions (in linkledger_partitions) of every partitioned linkledger table for the month of today and the next ones (ahead), and for the months of rows waiting in a default partition; returns how many it created';
