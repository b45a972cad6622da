-- linkledger: the ledger reconciled with the account's own books. appendix/user_data
-- reports, free, what the account spent this UTC day (money.statistics.day: in total,
-- for the Backlinks API and per function) and its own limits; the daemon samples it,
-- keeps the samples, and reconciles each closed UTC day against the ledger (issue 27).
-- Never edit a migration that has landed; add one.

-- The account's books as one user_data answer gave them: compact (the whole answer,
-- with its price list, is kept hourly in account_snapshots).
CREATE TABLE linkledger.account_samples (
    id                  bigserial   PRIMARY KEY,
    taken_at            timestamptz NOT NULL DEFAULT now(),
    api_host            text        NOT NULL,
    sandbox             boolean     NOT NULL,
    day                 date        NOT NULL,
    spent_usd           numeric,
    backlinks_usd       numeric,
    by_function         jsonb       NOT NULL DEFAULT '{}',
    requests            bigint,
    backlinks_requests  bigint,
    money_limit_day     numeric,
    money_limit_minute  numeric,
    rate_limit_minute   integer
);
CREATE INDEX account_samples_day_idx ON linkledger.account_samples (api_host, day, taken_at DESC);
COMMENT ON TABLE linkledger.account_samples IS 'The account''s own books as appendix/user_data reported them, sampled by the daemon (every reconcile.sample_every and in the last minute of each UTC day): what the account spent and requested that UTC day, and its own limits';
COMMENT ON COLUMN linkledger.account_samples.id IS 'Sample id';
COMMENT ON COLUMN linkledger.account_samples.taken_at IS 'When it was read';
COMMENT ON COLUMN linkledger.account_samples.api_host IS 'Host of the API that answered (api.base_url)';
COMMENT ON COLUMN linkledger.account_samples.sandbox IS 'Answered by a sandbox: its figures are not real money';
COMMENT ON COLUMN linkledger.account_samples.day IS 'The UTC day the figures are of (taken_at''s)';
COMMENT ON COLUMN linkledger.account_samples.spent_usd IS 'money.statistics.day.total: USD the account spent that day so far, every API (NULL when not reported)';
COMMENT ON COLUMN linkledger.account_samples.backlinks_usd IS 'money.statistics.day.total_backlinks (or the sum of its functions): USD spent on the Backlinks API that day so far';
COMMENT ON COLUMN linkledger.account_samples.by_function IS 'money.statistics.day.backlinks: {function: USD} spent on each Backlinks function that day so far';
COMMENT ON COLUMN linkledger.account_samples.requests IS 'rates.statistics.day.total: requests the account made that day so far';
COMMENT ON COLUMN linkledger.account_samples.backlinks_requests IS 'rates.statistics.day.total_backlinks: Backlinks requests that day so far';
COMMENT ON COLUMN linkledger.account_samples.money_limit_day IS 'money.limits.day.total: the account''s own daily spending cap, USD (NULL: none)';
COMMENT ON COLUMN linkledger.account_samples.money_limit_minute IS 'money.limits.minute.total: its spending cap per minute, USD (NULL: none)';
COMMENT ON COLUMN linkledger.account_samples.rate_limit_minute IS 'rates.limits.minute.total: its requests per minute (NULL: not reported)';

-- Each closed UTC day reconciled: the account's last sample of the day against the
-- ledger's calls up to that sample, for the Backlinks API ('*') and per function.
CREATE TABLE linkledger.reconciliations (
    day              date        NOT NULL,
    api_host         text        NOT NULL,
    function         text        NOT NULL,
    sandbox          boolean     NOT NULL,
    sampled_at       timestamptz NOT NULL,
    account_usd      numeric     NOT NULL,
    ledger_usd       numeric     NOT NULL,
    abandoned_usd    numeric     NOT NULL,
    after_sample_usd numeric     NOT NULL,
    difference_usd   numeric     NOT NULL,
    settlement_usd   numeric     NOT NULL DEFAULT 0,
    kind             text        NOT NULL
                     CHECK (kind IN ('matches', 'abandoned_estimates', 'another_consumer',
                                     'gateway_price', 'unexplained')),
    explanation      text        NOT NULL,
    reconciled_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, api_host, function)
);
COMMENT ON TABLE linkledger.reconciliations IS 'Each closed UTC day''s Backlinks spend as the account reported it (its last sample of the day) against the ledger''s calls up to that sample, in total (function *) and per function; written once the day is over';
COMMENT ON COLUMN linkledger.reconciliations.day IS 'The UTC day';
COMMENT ON COLUMN linkledger.reconciliations.api_host IS 'Host of the API whose account it is';
COMMENT ON COLUMN linkledger.reconciliations.function IS 'The Backlinks function (summary, history, ...), or * for the Backlinks API in total';
COMMENT ON COLUMN linkledger.reconciliations.sandbox IS 'The account is a sandbox''s: not real money';
COMMENT ON COLUMN linkledger.reconciliations.sampled_at IS 'When the day''s last sample was taken: the account''s figure covers the day up to then';
COMMENT ON COLUMN linkledger.reconciliations.account_usd IS 'USD the account says it spent that day (up to sampled_at)';
COMMENT ON COLUMN linkledger.reconciliations.ledger_usd IS 'USD the ledger booked for the calls sent that day up to sampled_at, as booked before any settlement (abandoned estimates included)';
COMMENT ON COLUMN linkledger.reconciliations.abandoned_usd IS 'Of ledger_usd, the estimates of abandoned calls (sent or maybe sent, never answered)';
COMMENT ON COLUMN linkledger.reconciliations.after_sample_usd IS 'USD the ledger booked that day after the last sample (not in the account''s figure, not reconciled)';
COMMENT ON COLUMN linkledger.reconciliations.difference_usd IS 'account_usd - ledger_usd: positive when the account spent more than the ledger booked';
COMMENT ON COLUMN linkledger.reconciliations.settlement_usd IS 'What settling the abandoned estimates changed in the ledger, USD (never positive: an estimate is settled to at most itself); see settlements';
COMMENT ON COLUMN linkledger.reconciliations.kind IS 'matches (within reconcile.threshold_usd), abandoned_estimates (the abandoned calls'' estimates explain it), another_consumer (the account spent more than the ledger can explain: another consumer of the account), gateway_price (the ledger books a gateway''s flat price; the account matches the API''s reported costs), unexplained';
COMMENT ON COLUMN linkledger.reconciliations.explanation IS 'The difference explained in words';
COMMENT ON COLUMN linkledger.reconciliations.reconciled_at IS 'When the day was reconciled';

CREATE VIEW linkledger.spend_reconciled AS
SELECT r.day, r.api_host, r.sandbox, r.account_usd, r.ledger_usd, r.abandoned_usd,
       r.difference_usd, r.settlement_usd, r.ledger_usd + r.settlement_usd AS settled_ledger_usd,
       r.difference_usd - r.settlement_usd AS left_usd, r.after_sample_usd, r.kind, r.explanation, r.sampled_at,
       r.reconciled_at
FROM linkledger.reconciliations r
WHERE r.function = '*';
COMMENT ON VIEW linkledger.spend_reconciled IS E'The ledger against the account''s own books, one row per closed UTC day and API host: what the account says it spent on the Backlinks API, what the ledger booked, the difference and what explains it (linkledger spend --reconcile)\ngrain: day, api_host';
COMMENT ON COLUMN linkledger.spend_reconciled.day IS 'The UTC day';
COMMENT ON COLUMN linkledger.spend_reconciled.api_host IS 'Host of the API whose account it is';
COMMENT ON COLUMN linkledger.spend_reconciled.sandbox IS 'The account is a sandbox''s: not real money';
COMMENT ON COLUMN linkledger.spend_reconciled.account_usd IS 'USD the account says it spent on the Backlinks API that day (its last sample)';
COMMENT ON COLUMN linkledger.spend_reconciled.ledger_usd IS 'USD the ledger booked for the calls of that day up to the last sample, before settlement';
COMMENT ON COLUMN linkledger.spend_reconciled.abandoned_usd IS 'Of ledger_usd, the estimates of abandoned calls';
COMMENT ON COLUMN linkledger.spend_reconciled.difference_usd IS 'account_usd - ledger_usd';
COMMENT ON COLUMN linkledger.spend_reconciled.settlement_usd IS 'What settling the abandoned estimates changed in the ledger (never positive)';
COMMENT ON COLUMN linkledger.spend_reconciled.settled_ledger_usd IS 'The ledger after the settlement: ledger_usd + settlement_usd';
COMMENT ON COLUMN linkledger.spend_reconciled.left_usd IS 'account_usd - settled_ledger_usd: what nothing in the ledger explains (another consumer, or a fault)';
COMMENT ON COLUMN linkledger.spend_reconciled.after_sample_usd IS 'USD booked that day after the last sample (not reconciled)';
COMMENT ON COLUMN linkledger.spend_reconciled.kind IS 'matches, abandoned_estimates, another_consumer, gateway_price or unexplained';
COMMENT ON COLUMN linkledger.spend_reconciled.explanation IS 'The difference explained in words';
COMMENT ON COLUMN linkledger.spend_reconciled.sampled_at IS 'When the day''s last sample was taken';
COMMENT ON COLUMN linkledger.spend_reconciled.reconciled_at IS 'When the day was reconciled';

-- An abandoned call's estimate settled by its day's reconciliation: the estimate and
-- the settlement both kept here; api_calls.cost_usd then holds the settlement and
-- settled_at says so. budget_usd keeps the estimate: a settlement is never above it,
-- so the budgets' totals stay on the safe side.
CREATE TABLE linkledger.settlements (
    call_id      bigint      PRIMARY KEY REFERENCES linkledger.api_calls (id),
    day          date        NOT NULL,
    api_host     text        NOT NULL,
    function     text        NOT NULL,
    estimate_usd numeric     NOT NULL,
    settled_usd  numeric     NOT NULL CHECK (settled_usd >= 0),
    how          text        NOT NULL,
    settled_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX settlements_day_idx ON linkledger.settlements (day, api_host);
COMMENT ON TABLE linkledger.settlements IS 'Abandoned calls (sent or maybe sent, never answered) whose estimate their day''s reconciliation settled to what the account charged: the original estimate and the settlement, one row per call';
COMMENT ON COLUMN linkledger.settlements.call_id IS 'The call (api_calls.id), outcome abandoned';
COMMENT ON COLUMN linkledger.settlements.day IS 'The UTC day reconciled';
COMMENT ON COLUMN linkledger.settlements.api_host IS 'Host of the API whose account it is';
COMMENT ON COLUMN linkledger.settlements.function IS 'The Backlinks function whose figure settled it, or * when the account gave only its total';
COMMENT ON COLUMN linkledger.settlements.estimate_usd IS 'What the call was booked at when it was abandoned (its estimate)';
COMMENT ON COLUMN linkledger.settlements.settled_usd IS 'Its share of what the account charged for the day''s abandoned calls: in proportion to the estimates, at most the estimate';
COMMENT ON COLUMN linkledger.settlements.how IS 'How the settlement was reached, in words';
COMMENT ON COLUMN linkledger.settlements.settled_at IS 'When it was settled';

ALTER TABLE linkledger.api_calls ADD COLUMN settled_at timestamptz;
COMMENT ON COLUMN linkledger.api_calls.settled_at IS 'For outcome abandoned: when its day''s reconciliation settled its estimate (cost_usd then holds the settlement; settlements keeps the estimate); NULL otherwise';
COMMENT ON COLUMN linkledger.api_calls.cost_usd IS 'What the request cost the user, USD: the cost the API reported (or a gateway''s flat api.price_per_call); for outcome abandoned (no answer ever arrived) the estimate, until its day''s reconciliation settles it (settled_at, settlements); 0 for reused';
