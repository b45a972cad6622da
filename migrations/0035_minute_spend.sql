-- linkledger: the account's own spending limit per minute (money.limits.minute) as a cap
-- (issue 27, point 3). The API counts an account's spend per calendar minute and refuses
-- with 40203 once a minute's spend reaches the limit, and 40203 pauses every call until
-- 00:00 UTC: a minute's cap cost the rest of the day. Each call now reserves its
-- estimate in its minute's total before it is sent, across every process on the
-- database; a call that would cross the limit waits for the next minute.
-- Never edit a migration that has landed; add one.

CREATE TABLE linkledger.spend_minutes (
    api_host   text        NOT NULL,
    minute     timestamptz NOT NULL,
    booked_usd numeric     NOT NULL,
    PRIMARY KEY (api_host, minute)
);
COMMENT ON TABLE linkledger.spend_minutes IS 'With the account''s own money.limits.minute: what the calls sent in each UTC minute reserved against it (their estimates), per API host; rows older than a day are removed';
COMMENT ON COLUMN linkledger.spend_minutes.api_host IS 'Host of the API whose account it is';
COMMENT ON COLUMN linkledger.spend_minutes.minute IS 'The minute (its first instant, UTC)';
COMMENT ON COLUMN linkledger.spend_minutes.booked_usd IS 'USD reserved in that minute: the estimates of the calls sent, less those that were not';
