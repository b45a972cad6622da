-- linkledger: the account's own daily spending limit (money.limits.day, set in the API's
-- dashboard, as appendix/user_data reports it) is a cap beside budget.daily_usd, booked
-- per UTC day under the scope account_daily (issue 27, point 3). budget_status learns
-- that this scope's period is the day.
-- Never edit a migration that has landed; add one.

CREATE OR REPLACE VIEW linkledger.budget_status AS
SELECT b.name AS budget,
       b.scope,
       CASE WHEN b.scope IN ('daily', 'account_daily') THEN 'day' ELSE 'month' END AS period_kind,
       CASE WHEN b.scope IN ('daily', 'account_daily') THEN (now() AT TIME ZONE 'UTC')::date
            ELSE date_trunc('month', now() AT TIME ZONE 'UTC')::date END AS period,
       b.cap_usd,
       coalesce(t.booked_usd, 0) AS booked_usd,
       b.cap_usd - coalesce(t.booked_usd, 0) AS left_usd,
       (SELECT count(*) FROM linkledger.work w
        WHERE w.state = 'queued' AND w.held_by = b.name)::bigint AS held_calls
FROM linkledger.budgets b
LEFT JOIN linkledger.spend_totals t
       ON t.scope = b.scope
      AND t.period = CASE WHEN b.scope IN ('daily', 'account_daily')
                          THEN (now() AT TIME ZONE 'UTC')::date
                          ELSE date_trunc('month', now() AT TIME ZONE 'UTC')::date END;
COMMENT ON COLUMN linkledger.budget_status.budget IS 'The setting: budget.daily_usd, budget.monthly_usd, <job>.budget_monthly_usd, or money.limits.day (the account''s own daily limit, as appendix/user_data reported it)';
COMMENT ON COLUMN linkledger.budget_status.scope IS 'daily, monthly, job:<name> or account_daily';
COMMENT ON COLUMN linkledger.budgets.scope IS 'daily, monthly, job:<name> or account_daily (as in spend_totals)';
COMMENT ON COLUMN linkledger.budgets.name IS 'The setting that sets it: budget.daily_usd, budget.monthly_usd, <job>.budget_monthly_usd, or money.limits.day (the account''s own daily limit)';
COMMENT ON COLUMN linkledger.spend_totals.scope IS 'daily, monthly, job:<name>, or account_daily (the account''s own daily limit)';
