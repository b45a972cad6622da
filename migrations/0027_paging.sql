-- linkledger: a list collection's listing is paged as work items, one a page; each
-- page's item holds where it stands in its listing, so a crash resumes at the page it
-- stopped at and a listing whose total changed while it was paged says so.

ALTER TABLE linkledger.work ADD COLUMN paging jsonb;
COMMENT ON COLUMN linkledger.work.paging IS 'A list collection''s page (NULL for other calls): max_rows (the most rows its listing buys), page (1 for the first), rows_before (rows its earlier pages returned), first_total (the first page''s total_count); once answered, total_count and items (this page''s), and total_changed: true when its total_count is not the first page''s (the listing changed while it was paged). The next page is enqueued with the completion of this one';
