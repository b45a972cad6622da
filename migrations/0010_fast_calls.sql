-- Less work per API call.
--
-- The account's shared limits (api_slots, api_starts) are leases, not records: taking
-- and giving back a slot is one round trip each, and their commits do not wait for
-- the disk, so the start log's lock is never held across a flush. A crash of the
-- server loses at most the last instants of the log and of the leases (a lapsed lease
-- is what a crash of a holder leaves anyway); the ledger, the raw answers and the
-- work queue still commit durably.

CREATE FUNCTION linkledger.acquire_api_slot(
    p_holder text, p_max_in_flight integer, p_max_per_minute bigint, p_lease_ms bigint,
    OUT granted_slot integer, OUT granted_token bigint, OUT wait_seconds double precision)
LANGUAGE plpgsql AS $$
DECLARE
    started bigint;
    oldest double precision;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    -- One writer of the start log at a time (the key store::limits used before).
    PERFORM pg_advisory_xact_lock(7361636);
    -- Each statement below reads what was committed before it ran (after the lock).
    -- A start counts for a minute and a second: the API counts a request when it
    -- arrives, after this booking and the ledger row.
    DELETE FROM linkledger.api_starts
    WHERE started_at < clock_timestamp() - interval '61 seconds';
    SELECT count(*),
           extract(epoch FROM min(s.started_at) + interval '61 seconds' - clock_timestamp())
    INTO started, oldest
    FROM linkledger.api_starts s;
    IF started >= p_max_per_minute THEN
        wait_seconds := greatest(least(coalesce(oldest, 0.05), 60), 0.01);
        RETURN;
    END IF;
    UPDATE linkledger.api_slots s
    SET holder = p_holder,
        token = nextval('linkledger.api_slot_tokens'),
        lease_expires_at = now() + p_lease_ms * interval '1 millisecond'
    WHERE s.slot = (SELECT a.slot FROM linkledger.api_slots a
                    WHERE a.slot <= p_max_in_flight
                      AND (a.holder IS NULL OR a.lease_expires_at < now())
                    ORDER BY a.slot LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING s.slot, s.token INTO granted_slot, granted_token;
    IF granted_slot IS NULL THEN
        wait_seconds := 0.025;
        RETURN;
    END IF;
    INSERT INTO linkledger.api_starts (started_at) VALUES (clock_timestamp());
END
$$;
COMMENT ON FUNCTION linkledger.acquire_api_slot(text, integer, bigint, bigint) IS
    'Takes a free API slot and a start in the sliding minute (one round trip); else says how long to wait';

CREATE FUNCTION linkledger.release_api_slot(p_slot integer, p_token bigint)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    freed integer;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE linkledger.api_slots SET holder = NULL, token = NULL, lease_expires_at = NULL
    WHERE slot = p_slot AND token = p_token;
    GET DIAGNOSTICS freed = ROW_COUNT;
    RETURN freed = 1;
END
$$;
COMMENT ON FUNCTION linkledger.release_api_slot(integer, bigint) IS
    'Frees an API slot if the acquisition named by its token still holds it';

-- An answer bought today is found by its request's hash (the tag left out: it changes
-- nothing in the answer), not by reading every answer of the endpoint bought today.
CREATE INDEX api_calls_request_md5_idx
    ON linkledger.api_calls (endpoint, md5((request - 'tag')::text))
    WHERE outcome = 'ok';
