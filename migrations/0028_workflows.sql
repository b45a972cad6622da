-- linkledger: the five "Suggested Workflows" of the endpoint reference as views (issue
-- 26, part 6), each answering its question from stored list rows only, no new call.
--
-- Every view reads the latest fire of each listing: per target and option set, the
-- rows of its latest UTC day collected (collected_on, the day in 0025's keys). A
-- listing cut short (max_rows, filters, one page) answers for what it listed.
--
-- The competitors of a target come from its stored `competitors` rows (the latest fire
-- of each option set; a competitor listed by several option sets counts once), not from
-- `domain_intersection`: an intersection row answers for the one target set it was
-- asked about (domains linking to all of them), while the stored `referring_domains` of
-- each competitor answer "links to a competitor but not to me" for any competitor,
-- without a new call. A competitor counts only where its referring domains were listed
-- with the same options as the target's (the options change the answer), and only if
-- the target's own referring domains were listed with them: with nothing stored for
-- me, "not to me" is unknown, and the view says nothing.
--
-- Ranks are on the scale rank_scale names (from the request's options). Never edit a
-- migration that has landed; add one.

-- Workflow 1: strongest backlinks, grouped by referring domain.
CREATE VIEW linkledger.workflow_strongest_backlinks AS
WITH fire AS (
    SELECT b.*, max(b.collected_on) OVER (PARTITION BY b.target, b.options) AS fire_on
    FROM linkledger.backlinks b
), live AS (
    SELECT * FROM fire WHERE collected_on = fire_on AND is_lost IS NOT TRUE
), strongest AS (
    SELECT DISTINCT ON (target, options, domain_from)
           target, options, domain_from, rank, url_from, url_to, item_type, anchor, dofollow
    FROM live
    ORDER BY target, options, domain_from, rank DESC NULLS LAST, link_id
), per_domain AS (
    SELECT target, options, domain_from, min(fire_on) AS fire_on,
           max(rank_scale) AS rank_scale,
           max(domain_from_rank) AS domain_from_rank,
           count(*) AS links_listed,
           count(*) FILTER (WHERE dofollow) AS dofollow_links_listed,
           max(group_count) AS group_count,
           array_agg(DISTINCT anchor ORDER BY anchor) FILTER (WHERE anchor IS NOT NULL) AS anchors
    FROM live
    GROUP BY target, options, domain_from
)
SELECT d.target, d.options, d.options::text AS options_key, d.fire_on, d.domain_from,
       row_number() OVER (PARTITION BY d.target, d.options
                          ORDER BY s.rank DESC NULLS LAST, d.domain_from_rank DESC NULLS LAST,
                                   d.domain_from) AS strength_order,
       d.domain_from_rank, d.rank_scale,
       s.rank AS strongest_rank, s.url_from AS strongest_url_from, s.url_to AS strongest_url_to,
       s.item_type AS strongest_item_type, s.anchor AS strongest_anchor,
       s.dofollow AS strongest_dofollow,
       (SELECT a.backlinks
        FROM linkledger.anchors a
        WHERE a.target = d.target AND a.anchor = s.anchor
        ORDER BY a.collected_on DESC, a.options::text
        LIMIT 1) AS strongest_anchor_backlinks,
       d.links_listed, d.dofollow_links_listed, d.group_count, d.anchors
FROM per_domain d
JOIN strongest s USING (target, options, domain_from);
COMMENT ON VIEW linkledger.workflow_strongest_backlinks IS 'Workflow 1, "Discover your strongest backlinks": the backlinks of each target''s latest fire (per option set; a listing with mode one_per_domain lists one per domain, with group_count) grouped by referring domain, each domain''s strongest link (highest backlink rank) with its type, anchor and target page, and the anchors of its links; strength_order 1 is the strongest domain
grain: target, options_key, domain_from';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.target IS 'Target domain, subdomain or page URL';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.options IS 'Request options of the backlinks listing (JSON)';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.options_key IS 'options as text, a stable key for grouping and joining';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.fire_on IS 'UTC day of the latest fire of the listing (its rows are the ones read)';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.domain_from IS 'Referring domain';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.strength_order IS 'The domain''s place among the target''s referring domains, 1 the strongest: by its strongest link''s rank, then its domain rank, then its name';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.domain_from_rank IS 'Domain rank of the referring domain (the highest its listed links gave)';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.rank_scale IS 'Scale of the ranks: one_thousand (0-1000) or one_hundred (0-100)';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.strongest_rank IS 'Backlink rank of the domain''s strongest listed link';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.strongest_url_from IS 'Page the strongest link is on';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.strongest_url_to IS 'Target page the strongest link points to';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.strongest_item_type IS 'Type of the strongest link (anchor, image, redirect, canonical, ...)';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.strongest_anchor IS 'Anchor text of the strongest link';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.strongest_dofollow IS 'Whether the strongest link is dofollow';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.strongest_anchor_backlinks IS 'Backlinks to the target with the strongest link''s anchor, from the latest stored anchors row of the target (any option set); NULL if the anchors listing was not stored or did not list it';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.links_listed IS 'How many live links from the domain the latest fire listed';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.dofollow_links_listed IS 'How many of them are dofollow';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.group_count IS 'The API''s count of links from the domain (group_count: all of them with mode one_per_domain, where one link per domain is listed)';
COMMENT ON COLUMN linkledger.workflow_strongest_backlinks.anchors IS 'The distinct anchor texts of the domain''s listed links';

CREATE VIEW linkledger.workflow_pages_earning_links AS
WITH fire AS (
    SELECT p.*, max(p.collected_on) OVER (PARTITION BY p.target, p.options) AS fire_on
    FROM linkledger.domain_pages p
), latest_links AS (
    -- The target's links as the latest fire of each backlinks option set listed them.
    SELECT DISTINCT target, link_id, url_to, anchor
    FROM (SELECT b.target, b.link_id, b.url_to, b.anchor, b.is_lost, b.collected_on,
                 max(b.collected_on) OVER (PARTITION BY b.target, b.options) AS fire_on
          FROM linkledger.backlinks b) x
    WHERE collected_on = fire_on AND is_lost IS NOT TRUE
), top_anchors AS (
    SELECT target, url_to, (array_agg(anchor ORDER BY n DESC, anchor))[1:5] AS top_anchors
    FROM (SELECT target, url_to, anchor, count(*) AS n
          FROM latest_links WHERE anchor IS NOT NULL
          GROUP BY target, url_to, anchor) a
    GROUP BY target, url_to
)
SELECT p.target, p.options, p.options::text AS options_key, p.fire_on, p.page,
       row_number() OVER (PARTITION BY p.target, p.options
                          ORDER BY p.page_summary_backlinks DESC NULLS LAST, p.page) AS backlinks_order,
       p.meta_title, p.status_code,
       p.page_summary_backlinks AS backlinks,
       p.page_summary_referring_domains AS referring_domains,
       p.page_summary_rank AS rank, p.rank_scale,
       p.page_summary_referring_links_types AS link_types,
       t.top_anchors
FROM fire p
LEFT JOIN top_anchors t ON t.target = p.target AND t.url_to = p.page
WHERE p.collected_on = p.fire_on;
COMMENT ON VIEW linkledger.workflow_pages_earning_links IS 'Workflow 2, "See which content earns you the most backlinks": the pages of each target''s latest domain_pages fire (per option set), ranked by their backlinks, with title, referring domains, link types and the top anchors of the stored links pointing at them
grain: target, options_key, page';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.target IS 'Target domain whose pages were listed';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.options IS 'Request options of the domain_pages listing (JSON)';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.options_key IS 'options as text, a stable key for grouping and joining';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.fire_on IS 'UTC day of the latest fire of the listing';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.page IS 'URL of the page';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.backlinks_order IS 'The page''s place among the target''s pages by backlinks, 1 the most';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.meta_title IS 'Title of the page';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.status_code IS 'HTTP status code the page returned';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.backlinks IS 'Backlinks pointing to the page (page_summary.backlinks)';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.referring_domains IS 'Domains referring to the page (page_summary.referring_domains)';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.rank IS 'Rank of the page (page_summary.rank), on the scale rank_scale names';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.rank_scale IS 'Scale of rank: one_thousand (0-1000) or one_hundred (0-100)';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.link_types IS 'The page''s backlinks by link type (page_summary.referring_links_types, JSON: type to count)';
COMMENT ON COLUMN linkledger.workflow_pages_earning_links.top_anchors IS 'Up to 5 anchors of the stored links pointing at the page (latest fire of each backlinks option set of the target, each link once), the most used first; NULL if none is stored';

CREATE VIEW linkledger.workflow_link_opportunities AS
WITH rd AS (
    SELECT target, options, domain, rank, rank_scale, backlinks, collected_on, fire_on
    FROM (SELECT r.target, r.options, r.domain, r.rank, r.rank_scale, r.backlinks, r.collected_on,
                 max(r.collected_on) OVER (PARTITION BY r.target, r.options) AS fire_on
          FROM linkledger.referring_domains r) x
    WHERE collected_on = fire_on
), rivals AS (
    SELECT DISTINCT target, competitor
    FROM (SELECT c.target, c.competitor, c.collected_on,
                 max(c.collected_on) OVER (PARTITION BY c.target, c.options) AS fire_on
          FROM linkledger.competitors c) x
    WHERE collected_on = fire_on
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
COMMENT ON VIEW linkledger.workflow_link_opportunities IS 'Workflow 3, "Find new link opportunities from competitor backlinks": domains that refer to a competitor of the target (its stored competitors rows) but not to the target, from the latest stored referring_domains fire of each, with the same options; the domains linking to more competitors first
grain: target, options_key, domain';
COMMENT ON COLUMN linkledger.workflow_link_opportunities.target IS 'My target: the domain whose competitors are compared with it';
COMMENT ON COLUMN linkledger.workflow_link_opportunities.options IS 'Request options of the referring_domains listings compared (JSON), the same for the target and its competitors';
COMMENT ON COLUMN linkledger.workflow_link_opportunities.options_key IS 'options as text, a stable key for grouping and joining';
COMMENT ON COLUMN linkledger.workflow_link_opportunities.fire_on IS 'UTC day of the target''s latest referring_domains fire, the one the domain is absent from';
COMMENT ON COLUMN linkledger.workflow_link_opportunities.domain IS 'A domain referring to at least one competitor and not to the target';
COMMENT ON COLUMN linkledger.workflow_link_opportunities.competitors_linked IS 'How many of the target''s competitors (with referring domains stored for these options) the domain refers to';
COMMENT ON COLUMN linkledger.workflow_link_opportunities.competitors IS 'Those competitors';
COMMENT ON COLUMN linkledger.workflow_link_opportunities.rank IS 'Rank of the referring domain, the highest the competitors'' listings gave';
COMMENT ON COLUMN linkledger.workflow_link_opportunities.rank_scale IS 'Scale of rank: one_thousand (0-1000) or one_hundred (0-100)';
COMMENT ON COLUMN linkledger.workflow_link_opportunities.competitor_backlinks IS 'Backlinks from the domain to those competitors, summed';

CREATE VIEW linkledger.workflow_wasted_link_pages AS
WITH fire AS (
    SELECT p.*, max(p.collected_on) OVER (PARTITION BY p.target, p.options) AS fire_on
    FROM linkledger.domain_pages p
), latest_links AS (
    SELECT DISTINCT target, link_id, url_to, domain_from, domain_from_rank
    FROM (SELECT b.target, b.link_id, b.url_to, b.domain_from, b.domain_from_rank, b.is_lost,
                 b.collected_on,
                 max(b.collected_on) OVER (PARTITION BY b.target, b.options) AS fire_on
          FROM linkledger.backlinks b) x
    WHERE collected_on = fire_on AND is_lost IS NOT TRUE
), per_page AS (
    SELECT target, url_to, count(DISTINCT link_id) AS links_stored,
           count(DISTINCT domain_from) AS domains_stored
    FROM latest_links
    GROUP BY target, url_to
), top_domains AS (
    SELECT target, url_to,
           (array_agg(domain_from ORDER BY r DESC NULLS LAST, domain_from))[1:5] AS top_referring_domains
    FROM (SELECT target, url_to, domain_from, max(domain_from_rank) AS r
          FROM latest_links
          GROUP BY target, url_to, domain_from) d
    GROUP BY target, url_to
)
SELECT p.target, p.options, p.options::text AS options_key, p.fire_on, p.page,
       p.status_code, p.location,
       p.page_summary_backlinks AS backlinks,
       p.page_summary_referring_domains AS referring_domains,
       coalesce(l.links_stored, 0) AS links_stored, coalesce(l.domains_stored, 0) AS domains_stored,
       t.top_referring_domains
FROM fire p
LEFT JOIN per_page l ON l.target = p.target AND l.url_to = p.page
LEFT JOIN top_domains t ON t.target = p.target AND t.url_to = p.page
WHERE p.collected_on = p.fire_on AND p.status_code >= 300;
COMMENT ON VIEW linkledger.workflow_wasted_link_pages IS 'Workflow 4, "Locate broken or redirected pages that waste valuable links": the pages of each target''s latest domain_pages fire (per option set) answering a redirect or an error (status code 300 or more), with their backlinks and the stored links and referring domains pointing at them; filter on backlinks for the "over N backlinks" of the workflow
grain: target, options_key, page';
COMMENT ON COLUMN linkledger.workflow_wasted_link_pages.target IS 'Target domain whose pages were listed';
COMMENT ON COLUMN linkledger.workflow_wasted_link_pages.options IS 'Request options of the domain_pages listing (JSON)';
COMMENT ON COLUMN linkledger.workflow_wasted_link_pages.options_key IS 'options as text, a stable key for grouping and joining';
COMMENT ON COLUMN linkledger.workflow_wasted_link_pages.fire_on IS 'UTC day of the latest fire of the listing';
COMMENT ON COLUMN linkledger.workflow_wasted_link_pages.page IS 'URL of the page';
COMMENT ON COLUMN linkledger.workflow_wasted_link_pages.status_code IS 'HTTP status code the page returned, 300 or more (3xx a redirect, 4xx/5xx broken)';
COMMENT ON COLUMN linkledger.workflow_wasted_link_pages.location IS 'Where a redirect points (the Location header); NULL for a broken page';
COMMENT ON COLUMN linkledger.workflow_wasted_link_pages.backlinks IS 'Backlinks pointing to the page (page_summary.backlinks), the links it wastes';
COMMENT ON COLUMN linkledger.workflow_wasted_link_pages.referring_domains IS 'Domains referring to the page (page_summary.referring_domains)';
COMMENT ON COLUMN linkledger.workflow_wasted_link_pages.links_stored IS 'Stored live links pointing at the page (latest fire of each backlinks option set of the target, each link once); 0 if none is stored';
COMMENT ON COLUMN linkledger.workflow_wasted_link_pages.domains_stored IS 'Distinct referring domains of those links';
COMMENT ON COLUMN linkledger.workflow_wasted_link_pages.top_referring_domains IS 'Up to 5 of those referring domains, the highest domain rank first; NULL if no link is stored';

CREATE VIEW linkledger.workflow_backlink_gaps AS
WITH rd AS (
    SELECT target, options, domain, rank, rank_scale, backlinks, collected_on, fire_on
    FROM (SELECT r.target, r.options, r.domain, r.rank, r.rank_scale, r.backlinks, r.collected_on,
                 max(r.collected_on) OVER (PARTITION BY r.target, r.options) AS fire_on
          FROM linkledger.referring_domains r) x
    WHERE collected_on = fire_on
), rivals AS (
    SELECT DISTINCT target, competitor
    FROM (SELECT c.target, c.competitor, c.collected_on,
                 max(c.collected_on) OVER (PARTITION BY c.target, c.options) AS fire_on
          FROM linkledger.competitors c) x
    WHERE collected_on = fire_on
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
COMMENT ON VIEW linkledger.workflow_backlink_gaps IS 'Workflow 5, "Benchmark backlink gaps between you and a competitor": per target and competitor (its stored competitors rows), the domains that refer to the competitor but not to the target (latest stored referring_domains fires, same options), ranked by their stored bulk_ranks rank where one is stored, then by the rank the listing gave; with the links to the competitor
grain: target, competitor, options_key, domain';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.target IS 'My target: the domain compared with the competitor';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.competitor IS 'The competitor, from the target''s latest stored competitors rows';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.options IS 'Request options of the referring_domains listings compared (JSON), the same for both';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.options_key IS 'options as text, a stable key for grouping and joining';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.fire_on IS 'UTC day of the target''s latest referring_domains fire';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.competitor_fire_on IS 'UTC day of the competitor''s latest referring_domains fire';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.domain IS 'A domain referring to the competitor and not to the target';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.gap_order IS 'The domain''s place in the gap, 1 the strongest: by bulk_rank (stored ones first), then by rank';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.bulk_rank IS 'The domain''s rank from its latest stored bulk_ranks row (on a day with both scales, the one_thousand one), on the scale bulk_rank_scale names; NULL if none is stored';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.bulk_rank_scale IS 'Scale of bulk_rank: one_thousand (0-1000) or one_hundred (0-100)';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.bulk_rank_on IS 'UTC day the bulk_ranks row was collected';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.rank IS 'Rank of the referring domain as the competitor''s listing gave it';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.rank_scale IS 'Scale of rank: one_thousand (0-1000) or one_hundred (0-100)';
COMMENT ON COLUMN linkledger.workflow_backlink_gaps.backlinks IS 'Backlinks from the domain to the competitor (the link count of the workflow)';
