-- linkledger: links and referring domains tracked across fires, and what is new and
-- lost since the previous fire, per target (issue 26, part 5).
--
-- A fire of a listing is the UTC day its answers were collected (collected_on, the
-- day in the key of 0025's tables): each day's rows are what that fire listed. A
-- backlink is the same link from one fire to the next when its link_id is (url_from,
-- url_to, item_type, anchor, image_url: why these, in src/warehouse/normalize/mod.rs,
-- link_id); a referring domain when its domain is. So "first and last seen by us" is
-- the first and last fire that listed it live, beside the API's own first_seen,
-- last_seen, is_new and is_lost (what the API's crawler saw, which may lag or lead
-- ours). Everything here is derived from the stored rows: replay and a second load
-- of the same answers change nothing.
--
-- New since the previous fire: listed live by a target's latest fire, not by the one
-- before. Lost: listed live by the previous fire, not by the latest (absent, or for a
-- backlink listed with is_lost = true, as a listing of backlinks_status_type = all
-- does). A target with one fire has no previous one: nothing is new or lost yet. A
-- listing cut short by max_rows or filters leaves links out that are not lost: compare
-- fires collected with the same options (they are in the key) and a max_rows that
-- holds the whole listing. Never edit a migration that has landed; add one.

CREATE VIEW linkledger.known_backlinks AS
WITH seen AS (
    SELECT target, options, link_id,
           min(collected_at) FILTER (WHERE is_lost IS NOT TRUE) AS first_seen_by_us,
           max(collected_at) FILTER (WHERE is_lost IS NOT TRUE) AS last_seen_by_us,
           count(*) FILTER (WHERE is_lost IS NOT TRUE) AS fires_listed,
           max(collected_on) AS last_listed_on
    FROM linkledger.backlinks
    GROUP BY target, options, link_id
), latest AS (
    SELECT DISTINCT ON (target, options, link_id) *
    FROM linkledger.backlinks
    ORDER BY target, options, link_id, collected_on DESC
), last_fire AS (
    SELECT target, options, max(collected_on) AS collected_on
    FROM linkledger.backlinks
    GROUP BY target, options
)
SELECT l.target, l.options, l.options::text AS options_key, l.link_id,
       l.url_from, l.url_to, l.item_type, l.anchor, l.image_url, l.domain_from,
       l.dofollow, l.attributes, l.rank, l.rank_scale,
       s.first_seen_by_us, s.last_seen_by_us, s.fires_listed,
       s.last_listed_on = f.collected_on AND l.is_lost IS NOT TRUE AS live_in_last_fire,
       l.first_seen, l.last_seen, l.is_new, l.is_lost
FROM latest l
JOIN seen s USING (target, options, link_id)
JOIN last_fire f USING (target, options);
COMMENT ON VIEW linkledger.known_backlinks IS 'Every backlink any fire listed, per target and option set, tracked across fires by link_id: first and last seen by us (the fires that listed it live) beside the API''s own first_seen, last_seen, is_new and is_lost, as the latest fire that listed it gave them
grain: target, options_key, link_id';
COMMENT ON COLUMN linkledger.known_backlinks.target IS 'Target domain, subdomain or page URL';
COMMENT ON COLUMN linkledger.known_backlinks.options IS 'Request options of the listing (JSON); fires are compared within one option set';
COMMENT ON COLUMN linkledger.known_backlinks.options_key IS 'options as text, a stable key for grouping and joining';
COMMENT ON COLUMN linkledger.known_backlinks.link_id IS 'The link''s identity across fires (backlinks.link_id)';
COMMENT ON COLUMN linkledger.known_backlinks.url_from IS 'URL of the page where the backlink is found';
COMMENT ON COLUMN linkledger.known_backlinks.url_to IS 'URL the backlink points to';
COMMENT ON COLUMN linkledger.known_backlinks.item_type IS 'Link type (anchor, image, redirect, canonical, ...)';
COMMENT ON COLUMN linkledger.known_backlinks.anchor IS 'Anchor text of the backlink';
COMMENT ON COLUMN linkledger.known_backlinks.image_url IS 'URL of the image of an image link';
COMMENT ON COLUMN linkledger.known_backlinks.domain_from IS 'Domain referring to the target';
COMMENT ON COLUMN linkledger.known_backlinks.dofollow IS 'Whether the backlink is dofollow, as the latest fire that listed it said';
COMMENT ON COLUMN linkledger.known_backlinks.attributes IS 'Link attributes (rel), as the latest fire that listed it said';
COMMENT ON COLUMN linkledger.known_backlinks.rank IS 'Backlink rank, as the latest fire that listed it said, on the scale rank_scale names';
COMMENT ON COLUMN linkledger.known_backlinks.rank_scale IS 'Scale of rank: one_thousand (0-1000) or one_hundred (0-100)';
COMMENT ON COLUMN linkledger.known_backlinks.first_seen_by_us IS 'When the answer of the first fire that listed the link live arrived; NULL if every fire listed it lost';
COMMENT ON COLUMN linkledger.known_backlinks.last_seen_by_us IS 'When the answer of the last fire that listed the link live arrived; NULL if every fire listed it lost';
COMMENT ON COLUMN linkledger.known_backlinks.fires_listed IS 'How many fires (UTC days collected) listed the link live';
COMMENT ON COLUMN linkledger.known_backlinks.live_in_last_fire IS 'Whether the target''s latest fire (for these options) listed the link live';
COMMENT ON COLUMN linkledger.known_backlinks.first_seen IS 'The API''s first_seen: when its crawler found the backlink for the first time';
COMMENT ON COLUMN linkledger.known_backlinks.last_seen IS 'The API''s last_seen: the most recent visit of its crawler to the backlink';
COMMENT ON COLUMN linkledger.known_backlinks.is_new IS 'The API''s is_new: found on the page the last time its crawler visited it';
COMMENT ON COLUMN linkledger.known_backlinks.is_lost IS 'The API''s is_lost: the backlink or its whole page removed';

CREATE VIEW linkledger.backlinks_new_lost AS
WITH fires AS (
    SELECT target, options, collected_on,
           row_number() OVER (PARTITION BY target, options ORDER BY collected_on DESC) AS n
    FROM (SELECT DISTINCT target, options, collected_on FROM linkledger.backlinks) d
), pair AS (
    SELECT l.target, l.options, l.collected_on AS fire_on, p.collected_on AS previous_fire_on
    FROM fires l JOIN fires p USING (target, options)
    WHERE l.n = 1 AND p.n = 2
), two AS (
    -- Each link of the last two fires, and which of them listed it live.
    SELECT b.target, b.options, b.link_id, p.fire_on, p.previous_fire_on,
           bool_or(b.collected_on = p.fire_on) AS in_last,
           bool_or(b.collected_on = p.previous_fire_on) AS in_previous
    FROM linkledger.backlinks b
    JOIN pair p ON p.target = b.target AND p.options = b.options
               AND b.collected_on IN (p.fire_on, p.previous_fire_on)
    WHERE b.is_lost IS NOT TRUE
    GROUP BY b.target, b.options, b.link_id, p.fire_on, p.previous_fire_on
), seen AS (
    SELECT target, options, link_id,
           min(collected_at) AS first_seen_by_us, max(collected_at) AS last_seen_by_us
    FROM linkledger.backlinks
    WHERE is_lost IS NOT TRUE
    GROUP BY target, options, link_id
)
SELECT x.target, x.options, x.options::text AS options_key,
       CASE WHEN t.in_last THEN 'new' ELSE 'lost' END AS change,
       t.fire_on, t.previous_fire_on,
       x.link_id, x.url_from, x.url_to, x.item_type, x.anchor, x.image_url, x.domain_from,
       x.dofollow, x.rank, x.rank_scale,
       s.first_seen_by_us, s.last_seen_by_us,
       x.first_seen, x.last_seen, x.is_new, x.is_lost
FROM two t
JOIN linkledger.backlinks x
  ON x.target = t.target AND x.options = t.options AND x.link_id = t.link_id
 AND x.collected_on = CASE WHEN t.in_last THEN t.fire_on ELSE t.previous_fire_on END
JOIN seen s ON s.target = t.target AND s.options = t.options AND s.link_id = t.link_id
WHERE t.in_last <> t.in_previous;
COMMENT ON VIEW linkledger.backlinks_new_lost IS 'The backlinks new and lost since the previous fire, per target and option set: new, listed live by the latest fire and not by the one before; lost, listed live by the previous fire and not by the latest (absent, or listed with is_lost). A target with one fire has none. The API''s fields are the fire''s that listed the link (the latest for new, the previous for lost)
grain: target, options_key, link_id';
COMMENT ON COLUMN linkledger.backlinks_new_lost.target IS 'Target domain, subdomain or page URL';
COMMENT ON COLUMN linkledger.backlinks_new_lost.options IS 'Request options of the listing (JSON)';
COMMENT ON COLUMN linkledger.backlinks_new_lost.options_key IS 'options as text, a stable key for grouping and joining';
COMMENT ON COLUMN linkledger.backlinks_new_lost.change IS 'new (listed by the latest fire only) or lost (listed by the previous fire only)';
COMMENT ON COLUMN linkledger.backlinks_new_lost.fire_on IS 'UTC day of the target''s latest fire';
COMMENT ON COLUMN linkledger.backlinks_new_lost.previous_fire_on IS 'UTC day of the fire before it';
COMMENT ON COLUMN linkledger.backlinks_new_lost.link_id IS 'The link''s identity across fires (backlinks.link_id)';
COMMENT ON COLUMN linkledger.backlinks_new_lost.url_from IS 'URL of the page where the backlink is found';
COMMENT ON COLUMN linkledger.backlinks_new_lost.url_to IS 'URL the backlink points to';
COMMENT ON COLUMN linkledger.backlinks_new_lost.item_type IS 'Link type (anchor, image, redirect, canonical, ...)';
COMMENT ON COLUMN linkledger.backlinks_new_lost.anchor IS 'Anchor text of the backlink';
COMMENT ON COLUMN linkledger.backlinks_new_lost.image_url IS 'URL of the image of an image link';
COMMENT ON COLUMN linkledger.backlinks_new_lost.domain_from IS 'Domain referring to the target';
COMMENT ON COLUMN linkledger.backlinks_new_lost.dofollow IS 'Whether the backlink is dofollow';
COMMENT ON COLUMN linkledger.backlinks_new_lost.rank IS 'Backlink rank on the scale rank_scale names';
COMMENT ON COLUMN linkledger.backlinks_new_lost.rank_scale IS 'Scale of rank: one_thousand (0-1000) or one_hundred (0-100)';
COMMENT ON COLUMN linkledger.backlinks_new_lost.first_seen_by_us IS 'When the answer of the first fire that listed the link live arrived';
COMMENT ON COLUMN linkledger.backlinks_new_lost.last_seen_by_us IS 'When the answer of the last fire that listed the link live arrived (a lost link: its last fire before it went)';
COMMENT ON COLUMN linkledger.backlinks_new_lost.first_seen IS 'The API''s first_seen: when its crawler found the backlink for the first time';
COMMENT ON COLUMN linkledger.backlinks_new_lost.last_seen IS 'The API''s last_seen: the most recent visit of its crawler to the backlink';
COMMENT ON COLUMN linkledger.backlinks_new_lost.is_new IS 'The API''s is_new';
COMMENT ON COLUMN linkledger.backlinks_new_lost.is_lost IS 'The API''s is_lost';

CREATE VIEW linkledger.known_referring_domains AS
WITH seen AS (
    SELECT target, options, domain,
           min(collected_at) AS first_seen_by_us,
           max(collected_at) AS last_seen_by_us,
           count(*) AS fires_listed,
           max(collected_on) AS last_listed_on
    FROM linkledger.referring_domains
    GROUP BY target, options, domain
), latest AS (
    SELECT DISTINCT ON (target, options, domain) *
    FROM linkledger.referring_domains
    ORDER BY target, options, domain, collected_on DESC
), last_fire AS (
    SELECT target, options, max(collected_on) AS collected_on
    FROM linkledger.referring_domains
    GROUP BY target, options
)
SELECT l.target, l.options, l.options::text AS options_key, l.domain,
       l.rank, l.rank_scale, l.backlinks,
       s.first_seen_by_us, s.last_seen_by_us, s.fires_listed,
       s.last_listed_on = f.collected_on AS in_last_fire,
       l.first_seen, l.lost_date
FROM latest l
JOIN seen s USING (target, options, domain)
JOIN last_fire f USING (target, options);
COMMENT ON VIEW linkledger.known_referring_domains IS 'Every referring domain any fire listed, per target and option set, tracked across fires by domain (one item per referring domain, as the field list documents): first and last seen by us beside the API''s own first_seen and lost_date, as the latest fire that listed it gave them
grain: target, options_key, domain';
COMMENT ON COLUMN linkledger.known_referring_domains.target IS 'Target domain, subdomain or page URL';
COMMENT ON COLUMN linkledger.known_referring_domains.options IS 'Request options of the listing (JSON); fires are compared within one option set';
COMMENT ON COLUMN linkledger.known_referring_domains.options_key IS 'options as text, a stable key for grouping and joining';
COMMENT ON COLUMN linkledger.known_referring_domains.domain IS 'Referring domain';
COMMENT ON COLUMN linkledger.known_referring_domains.rank IS 'Domain rank the referring domain passes to the target, as the latest fire that listed it said, on the scale rank_scale names';
COMMENT ON COLUMN linkledger.known_referring_domains.rank_scale IS 'Scale of rank: one_thousand (0-1000) or one_hundred (0-100)';
COMMENT ON COLUMN linkledger.known_referring_domains.backlinks IS 'Backlinks from the domain to the target, as the latest fire that listed it said';
COMMENT ON COLUMN linkledger.known_referring_domains.first_seen_by_us IS 'When the answer of the first fire that listed the domain arrived';
COMMENT ON COLUMN linkledger.known_referring_domains.last_seen_by_us IS 'When the answer of the last fire that listed the domain arrived';
COMMENT ON COLUMN linkledger.known_referring_domains.fires_listed IS 'How many fires (UTC days collected) listed the domain';
COMMENT ON COLUMN linkledger.known_referring_domains.in_last_fire IS 'Whether the target''s latest fire (for these options) listed the domain';
COMMENT ON COLUMN linkledger.known_referring_domains.first_seen IS 'The API''s first_seen: when its crawler found a backlink from the domain for the first time';
COMMENT ON COLUMN linkledger.known_referring_domains.lost_date IS 'The API''s lost_date: when the last backlink from the domain was lost';

CREATE VIEW linkledger.referring_domains_new_lost AS
WITH fires AS (
    SELECT target, options, collected_on,
           row_number() OVER (PARTITION BY target, options ORDER BY collected_on DESC) AS n
    FROM (SELECT DISTINCT target, options, collected_on FROM linkledger.referring_domains) d
), pair AS (
    SELECT l.target, l.options, l.collected_on AS fire_on, p.collected_on AS previous_fire_on
    FROM fires l JOIN fires p USING (target, options)
    WHERE l.n = 1 AND p.n = 2
), two AS (
    -- Each referring domain of the last two fires, and which of them listed it.
    SELECT r.target, r.options, r.domain, p.fire_on, p.previous_fire_on,
           bool_or(r.collected_on = p.fire_on) AS in_last,
           bool_or(r.collected_on = p.previous_fire_on) AS in_previous
    FROM linkledger.referring_domains r
    JOIN pair p ON p.target = r.target AND p.options = r.options
               AND r.collected_on IN (p.fire_on, p.previous_fire_on)
    GROUP BY r.target, r.options, r.domain, p.fire_on, p.previous_fire_on
), seen AS (
    SELECT target, options, domain,
           min(collected_at) AS first_seen_by_us, max(collected_at) AS last_seen_by_us
    FROM linkledger.referring_domains
    GROUP BY target, options, domain
)
SELECT x.target, x.options, x.options::text AS options_key,
       CASE WHEN t.in_last THEN 'new' ELSE 'lost' END AS change,
       t.fire_on, t.previous_fire_on,
       x.domain, x.rank, x.rank_scale, x.backlinks,
       s.first_seen_by_us, s.last_seen_by_us,
       x.first_seen, x.lost_date
FROM two t
JOIN linkledger.referring_domains x
  ON x.target = t.target AND x.options = t.options AND x.domain = t.domain
 AND x.collected_on = CASE WHEN t.in_last THEN t.fire_on ELSE t.previous_fire_on END
JOIN seen s ON s.target = t.target AND s.options = t.options AND s.domain = t.domain
WHERE t.in_last <> t.in_previous;
COMMENT ON VIEW linkledger.referring_domains_new_lost IS 'The referring domains new and lost since the previous fire, per target and option set: new, listed by the latest fire and not by the one before; lost, listed by the previous fire and not by the latest. A target with one fire has none. The API''s fields are the fire''s that listed the domain (the latest for new, the previous for lost)
grain: target, options_key, domain';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.target IS 'Target domain, subdomain or page URL';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.options IS 'Request options of the listing (JSON)';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.options_key IS 'options as text, a stable key for grouping and joining';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.change IS 'new (listed by the latest fire only) or lost (listed by the previous fire only)';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.fire_on IS 'UTC day of the target''s latest fire';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.previous_fire_on IS 'UTC day of the fire before it';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.domain IS 'Referring domain';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.rank IS 'Domain rank the referring domain passes to the target, on the scale rank_scale names';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.rank_scale IS 'Scale of rank: one_thousand (0-1000) or one_hundred (0-100)';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.backlinks IS 'Backlinks from the domain to the target';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.first_seen_by_us IS 'When the answer of the first fire that listed the domain arrived';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.last_seen_by_us IS 'When the answer of the last fire that listed the domain arrived (a lost domain: its last fire before it went)';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.first_seen IS 'The API''s first_seen: when its crawler found a backlink from the domain for the first time';
COMMENT ON COLUMN linkledger.referring_domains_new_lost.lost_date IS 'The API''s lost_date: when the last backlink from the domain was lost';
