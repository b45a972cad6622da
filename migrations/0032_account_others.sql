-- linkledger: budget.scope = "account" makes the daily caps count what other consumers
-- of the account spent today (the account's money.statistics.day beyond the ledger's
-- answered calls), added to the day's spend_totals; this table says how much of it is
-- in them (issue 27, point 4).
-- Never edit a migration that has landed; add one.

CREATE TABLE linkledger.account_others (
    day        date        NOT NULL,
    api_host   text        NOT NULL,
    others_usd numeric     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, api_host)
);
COMMENT ON TABLE linkledger.account_others IS 'With budget.scope = "account": what other consumers of the account spent each UTC day as the daemon last estimated it (the account''s money.statistics.day less the ledger''s answered calls up to the sample), and counted in that day''s daily budgets (spend_totals)';
COMMENT ON COLUMN linkledger.account_others.day IS 'The UTC day';
COMMENT ON COLUMN linkledger.account_others.api_host IS 'Host of the API whose account it is';
COMMENT ON COLUMN linkledger.account_others.others_usd IS 'USD the account spent that day beyond the ledger''s answered calls, as counted in spend_totals for the daily scopes';
COMMENT ON COLUMN linkledger.account_others.updated_at IS 'When it was last estimated';
