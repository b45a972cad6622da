-- linkledger: who a target's competitors are in the link workflows. Workflows 3 and 5
-- compared a target only with the competitors the API found for it (its stored
-- competitors rows); a user who collects the referring domains of "me and my
-- competitors" in one collection (examples/jobs/links.toml) got no comparison of them.
-- The competitors now also include the other targets of a referring_domains collection
-- that lists the target, as the job files last loaded them (job_targets).
-- Never edit a migration that has landed; add one.

CREATE VIEW linkledger.workflow_competitors AS
SELECT target, competitor, bool_or(found) AS found_by_api, bool_or(declared) AS declared_in_job
FROM (
    SELECT target, competitor, true AS found, false AS declared
    FROM (SELECT c.target, c.competitor, c.collected_on,
                 max(c.collected_on) OVER (PARTITION BY c.target, c.options) AS fire_on
          FROM linkledger.competitors c) x
    WHERE collected_on = fire_on
    UNION ALL
    SELECT a.target, b.target, false, true
    FROM linkledger.job_targets a
    JOIN linkledger.job_targets b
      ON b.job = a.job AND b.collection = a.collection AND b.target <> a.target
    WHERE a.endpoint = 'referring_domains'
) c
GROUP BY target, competitor;
COMMENT ON VIEW linkledger.workflow_competitors IS 'Who counts as a target''s competitor in the link workflows (workflow_link_opportunities, workflow_backlink_gaps): the competitors the API found for it (its latest stored competitors rows per option set), and the other targets of a referring_domains collection of the job files that lists it (job_targets: a job that collects me and my competitors side by side)
grain: target, competitor';
COMMENT ON COLUMN linkledger.workflow_competitors.target IS 'My target';
COMMENT ON COLUMN linkledger.workflow_competitors.competitor IS 'A competitor of it';
COMMENT ON COLUMN linkledger.workflow_competitors.found_by_api IS 'In the target''s latest stored competitors rows';
COMMENT ON COLUMN linkledger.workflow_competitors.declared_in_job IS 'Another target of a referring_domains collection that lists the target';

CREATE OR REPLACE VIEW linkledger.workflow_link_opportunities AS
WITH rd AS (
    SELECT target, options, domain, rank, rank_scale, backlinks, collected_on, fire_on
    FROM (SELECT r.target, r.options, r.domain, r.rank, r.rank_scale, r.backlinks, r.collected_on,
                 max(r.collected_on) OVER (PARTITION BY r.target, r.options) AS fire_on
          FROM linkledger.referring_domains r) x
    WHERE collected_on = fire_on
), rivals AS (
    SELECT target, competitor FROM linkledger.workflow_competitors
), mine AS (
    SELECT DISTINCT target, options, fire_on FROM rd
), tagged AS (
    -- Each competitor's referring domains under my target, and my own (competitor
    -- NULL): a domain is an opportunity when its group has none of mine. (Grouping,
    -- not an anti-join: the same plan whatever the planner guesses of the rows.)
    SELECT m.target, m.options, m.fire_on, r.domain, c.competitor, r.rank, r.rank_scale, r.backlinks
    FROM rivals c
    JOIN mine m ON m.target = c.target
    JOIN rd r ON r.target = c.competitor AND r.options = m.options
    WHERE r.domain <> m.target
    UNION ALL
    SELECT target, options, fire_on, domain, NULL, NULL, NULL, NULL FROM rd
)
SELECT target, options, options::text AS options_key, fire_on, domain,
       count(competitor) AS competitors_linked,
       array_agg(competitor ORDER BY competitor) AS competitors,
       max(rank) AS rank, max(rank_scale) AS rank_scale,
       sum(backlinks) AS competitor_backlinks
FROM tagged
GROUP BY target, options, fire_on, domain
HAVING bool_and(competitor IS NOT NULL);
CREATE OR REPLACE VIEW linkledger.workflow_backlink_gaps AS
WITH rd AS (
    SELECT target, options, domain, rank, rank_scale, backlinks, collected_on, fire_on
    FROM (SELECT r.target, r.options, r.domain, r.rank, r.rank_scale, r.backlinks, r.collected_on,
                 max(r.collected_on) OVER (PARTITION BY r.target, r.options) AS fire_on
          FROM linkledger.referring_domains r) x
    WHERE collected_on = fire_on
), rivals AS (
    SELECT target, competitor FROM linkledger.workflow_competitors
), mine AS (
    SELECT DISTINCT target, options, fire_on FROM rd
), tagged AS (
    -- As workflow_link_opportunities: my own rows with competitor NULL, a gap where
    -- the domain's group has none of them.
    SELECT m.target, c.competitor, m.options, m.fire_on, r.fire_on AS competitor_fire_on,
           r.domain, r.backlinks, r.rank, r.rank_scale
    FROM rivals c
    JOIN mine m ON m.target = c.target
    JOIN rd r ON r.target = c.competitor AND r.options = m.options
    WHERE r.domain <> m.target
    UNION ALL
    SELECT target, NULL, options, fire_on, NULL, domain, NULL, NULL, NULL FROM rd
), open AS (
    SELECT *, bool_or(competitor IS NULL) OVER (PARTITION BY target, options, domain) AS mine
    FROM tagged
), latest_rank AS (
    -- Each domain's latest stored bulk rank (on a day with both scales, one_thousand).
    SELECT DISTINCT ON (target) target, rank_scale, rank, collected_on
    FROM linkledger.bulk_ranks
    ORDER BY target, collected_on DESC, rank_scale DESC, options::text
), gaps AS (
    SELECT o.target, o.competitor, o.options, o.fire_on, o.competitor_fire_on,
           o.domain, o.backlinks, o.rank, o.rank_scale,
           b.rank AS bulk_rank, b.rank_scale AS bulk_rank_scale, b.collected_on AS bulk_rank_on
    FROM open o
    LEFT JOIN latest_rank b ON b.target = o.domain
    WHERE o.competitor IS NOT NULL AND NOT o.mine
)
SELECT g.target, g.competitor, g.options, g.options::text AS options_key, g.fire_on,
       g.competitor_fire_on, g.domain,
       row_number() OVER (PARTITION BY g.target, g.competitor, g.options
                          ORDER BY g.bulk_rank DESC NULLS LAST, g.rank DESC NULLS LAST,
                                   g.domain) AS gap_order,
       g.bulk_rank, g.bulk_rank_scale, g.bulk_rank_on,
       g.rank, g.rank_scale, g.backlinks
FROM gaps g;
COMMENT ON VIEW linkledger.workflow_link_opportunities IS 'Workflow 3, "Find new link opportunities from competitor backlinks": domains that refer to a competitor of the target (workflow_competitors: its stored competitors rows, and the other targets of a referring_domains collection that lists it) but not to the target, from the latest stored referring_domains fire of each, with the same options; the domains linking to more competitors first
grain: target, options_key, domain';
COMMENT ON VIEW linkledger.workflow_backlink_gaps IS 'Workflow 5, "Benchmark backlink gaps between you and a competitor": per target and competitor (workflow_competitors: its stored competitors rows, and the other targets of a referring_domains collection that lists it), the domains that refer to the competitor but not to the target (latest stored referring_domains fires, same options), ranked by their stored bulk_ranks rank where one is stored, then by the rank the listing gave; with the links to the competitor
grain: target, competitor, options_key, domain';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.competitor IS 'The competitor (workflow_competitors)';
