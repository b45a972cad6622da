-- linkledger: a listing is sized from the total_count its last fire's first page
-- answered (plan::listing, Store::listing_sizes), asked at every list collection's fire
-- and by `plan`. Without an index that asks every work row ever made; with this one,
-- only the answered first pages of the endpoint.
-- Never edit a migration that has landed; add one.

CREATE INDEX work_first_pages_idx ON linkledger.work (endpoint, finished_at DESC)
    WHERE state = 'succeeded' AND (paging->>'page') = '1';
