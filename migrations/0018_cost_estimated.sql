-- linkledger: a cost the answer does not give usably is not zero. When a processed
-- answer's own cost is missing, unreadable, negative or over linkledger's bound for one
-- call, the ledger books the call's estimate (list price) as its cost, the budgets
-- count it, and the row says so. Never edit a migration that has landed; add one.

ALTER TABLE linkledger.api_calls ADD COLUMN cost_estimated boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN linkledger.api_calls.cost_estimated IS 'true: the answer was processed but its own cost was missing, unreadable, negative or over the bound for one call ($1), so cost_usd is the call''s estimate (list price), counted against the budgets; reported_cost_usd keeps what could be read of the answer''s cost';
