-- linkledger: the tables that grow by the day are range-partitioned by month on their
-- date, so that a date-bounded query reads only its months and old raw bodies go by
-- dropping a whole partition (warehouse.raw_retention) instead of a DELETE.
-- Never edit a migration that has landed; add one.
--
-- Partitioned: summary and the bulk_* tables on collected_on, the timeseries_* tables
-- and link_breakdowns on date, raw_responses on received_at (a UTC month). Not
-- partitioned: history (one row per target and month: twelve a year) and the ledger
-- and queue tables.
--
-- Each table gets a DEFAULT partition, so that no row is ever refused; creating a
-- month's partition moves that month's rows out of the default one. Partitions are
-- named <table>_pYYYY_MM. linkledger.ensure_partitions creates the current month and
-- the next two (migrate and every daemon call it), and the store creates a month's
-- partition before it writes the first row dated in it.

-- One month's partition of `parent` (a partitioned table of this schema), unless it
-- exists. The rows of that month waiting in the default partition move into it first.
-- Serialized by an advisory lock: two daemons creating the same month at once
-- neither fail nor create it twice. Returns whether it created the partition.
CREATE FUNCTION linkledger.create_month_partition(parent text, month date) RETURNS boolean
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
    IF to_regclass(format('linkledger.%I', part)) IS NOT NULL THEN
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
        'CREATE TABLE linkledger.%I (LIKE linkledger.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS
                                     INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)', part, parent);
    EXECUTE format('COMMENT ON TABLE linkledger.%I IS %L', part,
                   format('The rows of linkledger.%s of %s (a month partition: query linkledger.%s)',
                          parent, to_char(first, 'YYYY-MM'), parent));
    IF to_regclass(format('linkledger.%I', dflt)) IS NOT NULL THEN
        -- Writers wait to put rows into the default partition until the month is
        -- attached (then their rows of that month go to it): none can slip in between
        -- the move and the attach, whose check of the default partition would fail.
        EXECUTE format('LOCK TABLE linkledger.%I IN SHARE ROW EXCLUSIVE MODE', dflt);
        EXECUTE format(
            'WITH moved AS (DELETE FROM linkledger.%I WHERE %I >= %L AND %I < %L RETURNING *)
             INSERT INTO linkledger.%I SELECT * FROM moved',
            dflt, col, lo, col, hi, part);
    END IF;
    EXECUTE format('ALTER TABLE linkledger.%I ATTACH PARTITION linkledger.%I FOR VALUES FROM (%L) TO (%L)',
                   parent, part, lo, hi);
    RETURN true;
END
$$;
COMMENT ON FUNCTION linkledger.create_month_partition(text, date) IS 'Creates the month partition of a partitioned linkledger table holding the given date (named <table>_pYYYY_MM) unless it exists, moving that month''s rows out of the default partition; returns whether it created it';

-- The partitions every partitioned table needs: the month of `today` and the
-- `ahead` months after it, and the month of every row waiting in a default partition
-- (but raw_responses rows of past months: raw retention keeps there the bodies whose
-- rows are not loaded when it drops their month). Returns the number created.
CREATE FUNCTION linkledger.ensure_partitions(today date, ahead integer DEFAULT 2)
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
        IF to_regclass(format('linkledger.%I', t.relname || '_default')) IS NOT NULL THEN
            FOR m IN EXECUTE format(
                'SELECT DISTINCT date_trunc(''month'', %s)::date FROM linkledger.%I',
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
COMMENT ON FUNCTION linkledger.ensure_partitions(date, integer) IS 'Creates the month partitions of every partitioned linkledger table for the month of today and the next ones (ahead), and for the months of rows waiting in a default partition; returns how many it created';

-- The conversion: each table is renamed, an empty partitioned table takes its name,
-- columns, defaults, constraints, comments and indexes, the months its rows span get
-- partitions, the rows move over, and the old table goes. The views over these
-- tables are dropped first and recreated as they were.
CREATE TEMPORARY TABLE saved_views ON COMMIT DROP AS
SELECT c.oid, c.relname, pg_get_viewdef(c.oid) AS def, c.relacl,
       obj_description(c.oid, 'pg_class') AS comment,
       (SELECT array_agg(ARRAY[a.attname::text, d.description] ORDER BY a.attnum)
        FROM pg_attribute a
        JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass
                             AND d.objsubid = a.attnum
        WHERE a.attrelid = c.oid) AS column_comments
FROM pg_class c
WHERE c.relnamespace = 'linkledger'::regnamespace AND c.relkind = 'v';

DO $$
DECLARE
    v record;
BEGIN
    FOR v IN SELECT relname FROM saved_views ORDER BY oid DESC LOOP
        EXECUTE format('DROP VIEW IF EXISTS linkledger.%I CASCADE', v.relname);
    END LOOP;
END
$$;

CREATE FUNCTION pg_temp.partition_table(tbl text, col text, extra_ddl text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    old     text := tbl || '_unpartitioned';
    idx     record;
    g       record;
    m       date;
    cmt     text := obj_description(format('linkledger.%I', tbl)::regclass, 'pg_class');
BEGIN
    EXECUTE format('ALTER TABLE linkledger.%I RENAME TO %I', tbl, old);
    -- The old indexes give up their names to the new table's.
    FOR idx IN SELECT i.indexrelid::regclass::text AS name, c.relname
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = format('linkledger.%I', old)::regclass
    LOOP
        EXECUTE format('ALTER INDEX %s RENAME TO %I', idx.name, left(idx.relname, 50) || '_unpartitioned');
    END LOOP;
    IF extra_ddl IS NULL THEN
        EXECUTE format('CREATE TABLE linkledger.%I (LIKE linkledger.%I INCLUDING ALL) PARTITION BY RANGE (%I)',
                       tbl, old, col);
    ELSE
        -- A key that must change to hold the partition column: the indexes by hand.
        EXECUTE format('CREATE TABLE linkledger.%I (LIKE linkledger.%I INCLUDING ALL EXCLUDING INDEXES) PARTITION BY RANGE (%I)',
                       tbl, old, col);
        EXECUTE extra_ddl;
    END IF;
    EXECUTE format('COMMENT ON TABLE linkledger.%I IS %L', tbl, cmt);
    FOR g IN SELECT * FROM aclexplode((SELECT relacl FROM pg_class WHERE oid = format('linkledger.%I', old)::regclass))
             WHERE grantee <> grantor
    LOOP
        EXECUTE format('GRANT %s ON linkledger.%I TO %s', g.privilege_type, tbl,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END);
    END LOOP;
    EXECUTE format('CREATE TABLE linkledger.%I (LIKE linkledger.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS
                                               INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)',
                   tbl || '_default', tbl);
    EXECUTE format('ALTER TABLE linkledger.%I ATTACH PARTITION linkledger.%I DEFAULT', tbl, tbl || '_default');
    EXECUTE format('COMMENT ON TABLE linkledger.%I IS %L', tbl || '_default',
                   format('The rows of linkledger.%s of months without a partition of their own, moved out when their month''s partition is made (the default partition: query linkledger.%s)',
                          tbl, tbl));
    FOR m IN EXECUTE format('SELECT DISTINCT date_trunc(''month'', %s)::date FROM linkledger.%I',
                            CASE WHEN col = 'received_at' THEN format('%I AT TIME ZONE ''UTC''', col)
                                 ELSE format('%I::timestamp', col) END, old)
    LOOP
        PERFORM linkledger.create_month_partition(tbl, m);
    END LOOP;
    EXECUTE format('INSERT INTO linkledger.%I SELECT * FROM linkledger.%I', tbl, old);
    EXECUTE format('DROP TABLE linkledger.%I', old);
END
$$;

SELECT pg_temp.partition_table('summary', 'collected_on');
SELECT pg_temp.partition_table('link_breakdowns', 'date');
SELECT pg_temp.partition_table('timeseries_summary', 'date');
SELECT pg_temp.partition_table('timeseries_new_lost_summary', 'date');
SELECT pg_temp.partition_table('bulk_ranks', 'collected_on');
SELECT pg_temp.partition_table('bulk_backlinks', 'collected_on');
SELECT pg_temp.partition_table('bulk_referring_domains', 'collected_on');
SELECT pg_temp.partition_table('bulk_spam_score', 'collected_on');
SELECT pg_temp.partition_table('bulk_pages_summary', 'collected_on');
SELECT pg_temp.partition_table('bulk_new_lost_backlinks', 'collected_on');
SELECT pg_temp.partition_table('bulk_new_lost_referring_domains', 'collected_on');

-- raw_responses: its keys take the partition column (a primary key and a unique
-- constraint of a partitioned table must hold it). Ids still come from one sequence,
-- and one ledger row still has at most one raw body: a retry of the same answer
-- carries the same received_at.
ALTER SEQUENCE linkledger.raw_responses_id_seq OWNED BY NONE;
SELECT pg_temp.partition_table('raw_responses', 'received_at', $ddl$
    ALTER TABLE linkledger.raw_responses
        ADD PRIMARY KEY (id, received_at),
        ADD CONSTRAINT raw_responses_api_call_id_key UNIQUE (api_call_id, received_at),
        ADD CONSTRAINT raw_responses_api_call_id_fkey FOREIGN KEY (api_call_id) REFERENCES linkledger.api_calls (id);
    CREATE INDEX raw_responses_endpoint_received_idx ON linkledger.raw_responses (endpoint, received_at);
$ddl$);
ALTER SEQUENCE linkledger.raw_responses_id_seq OWNED BY linkledger.raw_responses.id;
COMMENT ON COLUMN linkledger.raw_responses.received_at IS 'When the answer arrived; its UTC date is the collected_on of the rows it produced, its UTC month the partition it is stored in';

-- The views, as they were.
DO $$
DECLARE
    v record;
    g record;
    i integer;
BEGIN
    FOR v IN SELECT * FROM saved_views ORDER BY oid LOOP
        EXECUTE format('CREATE VIEW linkledger.%I AS %s', v.relname, v.def);
        IF v.comment IS NOT NULL THEN
            EXECUTE format('COMMENT ON VIEW linkledger.%I IS %L', v.relname, v.comment);
        END IF;
        FOR i IN 1 .. coalesce(array_length(v.column_comments, 1), 0) LOOP
            EXECUTE format('COMMENT ON COLUMN linkledger.%I.%I IS %L', v.relname,
                           v.column_comments[i][1], v.column_comments[i][2]);
        END LOOP;
        FOR g IN SELECT * FROM aclexplode(v.relacl) WHERE grantee <> grantor LOOP
            EXECUTE format('GRANT %s ON linkledger.%I TO %s', g.privilege_type, v.relname,
                           CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END);
        END LOOP;
    END LOOP;
END
$$;

-- The months around now, so that today's writes never wait for a partition.
SELECT linkledger.ensure_partitions((now() AT TIME ZONE 'UTC')::date);
