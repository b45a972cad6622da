-- linkledger: every paid answer is kept, whatever its bytes. A body that is not JSON
-- (truncated, NaN, nested too deep, a lone surrogate) or that PostgreSQL cannot store
-- as jsonb (a NUL character in a string) is kept as its bytes in `unparsed`, and its
-- call ends invalid_response, never bought again. Never edit a migration that has
-- landed; add one.

ALTER TABLE linkledger.raw_responses ALTER COLUMN body DROP NOT NULL;
ALTER TABLE linkledger.raw_responses ADD COLUMN unparsed bytea;
DO $$
BEGIN
    ALTER TABLE linkledger.raw_responses ALTER COLUMN unparsed SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'this server has no lz4: unparsed bodies are compressed with pglz';
END
$$;
ALTER TABLE linkledger.raw_responses
    ADD CONSTRAINT raw_responses_body_or_unparsed CHECK (body IS NOT NULL OR unparsed IS NOT NULL);
COMMENT ON COLUMN linkledger.raw_responses.body IS 'The whole response envelope as received, unknown fields included (jsonb); NULL when it could not be stored as JSON, then it is in unparsed';
COMMENT ON COLUMN linkledger.raw_responses.unparsed IS 'The response body as bytes when it is not JSON or holds what jsonb cannot (a NUL character): its call ended invalid_response; NULL otherwise';

-- The month partitions made before this migration carry the parent's comments too.
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits
                WHERE inhparent = 'linkledger.raw_responses'::regclass LOOP
        EXECUTE format('COMMENT ON COLUMN %s.body IS %L', part,
            col_description('linkledger.raw_responses'::regclass,
                (SELECT attnum FROM pg_attribute
                 WHERE attrelid = 'linkledger.raw_responses'::regclass AND attname = 'body')));
        EXECUTE format('COMMENT ON COLUMN %s.unparsed IS %L', part,
            col_description('linkledger.raw_responses'::regclass,
                (SELECT attnum FROM pg_attribute
                 WHERE attrelid = 'linkledger.raw_responses'::regclass AND attname = 'unparsed')));
    END LOOP;
END
$$;
