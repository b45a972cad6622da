-- linkledger: the account's own request limit per day (rates.limits.day) as a cap
-- (issue 27, point 3). user_data reports it beside the limit per minute; it was read but
-- not kept, and nothing stopped a day's calls at it. Each paid call now takes one of the
-- day's requests before it is sent, across every process on the database; when the
-- day's are used up, calls stop until 00:00 UTC (a once-run stops and says so), as at
-- the account's daily spending limit. A sample of the account's books raises the day's
-- count to what the account reports (its other consumers' requests count too).
-- Never edit a migration that has landed; add one.

ALTER TABLE linkledger.account_samples ADD COLUMN rate_limit_day bigint;
COMMENT ON COLUMN linkledger.account_samples.rate_limit_day IS 'rates.limits.day.total: its requests per UTC day (NULL: not reported or none)';

CREATE TABLE linkledger.request_days (
    api_host text   NOT NULL,
    day      date   NOT NULL,
    requests bigint NOT NULL,
    PRIMARY KEY (api_host, day)
);
COMMENT ON TABLE linkledger.request_days IS 'With the account''s own rates.limits.day: the requests of each UTC day counted against it, per API host (the paid calls sent, raised to the account''s own count when sampled); rows older than a week are removed';
COMMENT ON COLUMN linkledger.request_days.api_host IS 'Host of the API whose account it is';
COMMENT ON COLUMN linkledger.request_days.day IS 'The UTC day';
COMMENT ON COLUMN linkledger.request_days.requests IS 'Requests counted: the paid calls sent that day (less those taken but not sent), or the account''s own rates.statistics.day when a sample reported more';
