-- linkledger: the normalized warehouse tables, one per collected endpoint, plus the
-- long table of referring-link breakdowns. Metric columns carry the API's own field
-- names; the nested `info` object is flattened as info_<field>. Every table has a
-- natural key; loading the same response twice changes nothing.
-- Never edit a migration that has landed; add one.

CREATE TABLE linkledger.summary (
    target                          text        NOT NULL,
    options                         jsonb       NOT NULL,
    collected_on                    date        NOT NULL,
    first_seen                      timestamptz,
    lost_date                       timestamptz,
    rank                            bigint,
    backlinks                       bigint,
    backlinks_nofollow              bigint,
    backlinks_spam_score            bigint,
    crawled_pages                   bigint,
    internal_links_count            bigint,
    external_links_count            bigint,
    broken_backlinks                bigint,
    broken_pages                    bigint,
    referring_domains               bigint,
    referring_domains_nofollow      bigint,
    referring_main_domains          bigint,
    referring_main_domains_nofollow bigint,
    referring_ips                   bigint,
    referring_subnets               bigint,
    referring_pages                 bigint,
    referring_pages_nofollow        bigint,
    info_server                     text,
    info_cms                        text,
    info_platform_type              text[],
    info_ip_address                 text,
    info_country                    text,
    info_is_ip                      boolean,
    info_target_spam_score          bigint,
    collected_at                    timestamptz NOT NULL,
    raw_response_id                 bigint      NOT NULL REFERENCES linkledger.raw_responses (id),
    PRIMARY KEY (target, options, collected_on)
);
CREATE INDEX summary_collected_on_idx ON linkledger.summary (collected_on);
COMMENT ON TABLE linkledger.summary IS 'backlinks/summary: one row per target, request options and UTC day collected; a second collection the same day replaces the row';

CREATE TABLE linkledger.history (
    target                          text        NOT NULL,
    month                           date        NOT NULL,
    rank                            bigint,
    backlinks                       bigint,
    backlinks_nofollow              bigint,
    new_backlinks                   bigint,
    lost_backlinks                  bigint,
    new_referring_domains           bigint,
    lost_referring_domains          bigint,
    crawled_pages                   bigint,
    internal_links_count            bigint,
    external_links_count            bigint,
    broken_backlinks                bigint,
    broken_pages                    bigint,
    referring_domains               bigint,
    referring_domains_nofollow      bigint,
    referring_main_domains          bigint,
    referring_main_domains_nofollow bigint,
    referring_ips                   bigint,
    referring_subnets               bigint,
    referring_pages                 bigint,
    referring_pages_nofollow        bigint,
    info_server                     text,
    info_cms                        text,
    info_platform_type              text[],
    info_ip_address                 text,
    info_country                    text,
    info_is_ip                      boolean,
    info_target_spam_score          bigint,
    collected_at                    timestamptz NOT NULL,
    raw_response_id                 bigint      NOT NULL REFERENCES linkledger.raw_responses (id),
    PRIMARY KEY (target, month)
);
CREATE INDEX history_month_idx ON linkledger.history (month);
COMMENT ON TABLE linkledger.history IS 'backlinks/history: one row per domain and month (metrics as of the first day of the month, since 2019-01; new/lost counts only from 2021-05)';

CREATE TABLE linkledger.timeseries_summary (
    target                          text        NOT NULL,
    group_range                     text        NOT NULL,
    date                            date        NOT NULL,
    rank                            bigint,
    backlinks                       bigint,
    backlinks_nofollow              bigint,
    referring_pages                 bigint,
    referring_pages_nofollow        bigint,
    referring_domains               bigint,
    referring_domains_nofollow      bigint,
    referring_main_domains          bigint,
    referring_main_domains_nofollow bigint,
    referring_ips                   bigint,
    referring_subnets               bigint,
    collected_at                    timestamptz NOT NULL,
    raw_response_id                 bigint      NOT NULL REFERENCES linkledger.raw_responses (id),
    PRIMARY KEY (target, group_range, date)
);
CREATE INDEX timeseries_summary_date_idx ON linkledger.timeseries_summary (date);
COMMENT ON TABLE linkledger.timeseries_summary IS 'backlinks/timeseries_summary: one row per domain, group_range and period (dated the last day of the period)';

CREATE TABLE linkledger.timeseries_new_lost_summary (
    target                      text        NOT NULL,
    group_range                 text        NOT NULL,
    date                        date        NOT NULL,
    new_backlinks               bigint,
    lost_backlinks              bigint,
    new_referring_domains       bigint,
    lost_referring_domains      bigint,
    new_referring_main_domains  bigint,
    lost_referring_main_domains bigint,
    collected_at                timestamptz NOT NULL,
    raw_response_id             bigint      NOT NULL REFERENCES linkledger.raw_responses (id),
    PRIMARY KEY (target, group_range, date)
);
CREATE INDEX timeseries_new_lost_summary_date_idx ON linkledger.timeseries_new_lost_summary (date);
COMMENT ON TABLE linkledger.timeseries_new_lost_summary IS 'backlinks/timeseries_new_lost_summary: new and lost backlinks and referring domains per domain, group_range and period (dated the last day of the period)';

CREATE TABLE linkledger.bulk_new_lost_backlinks (
    target          text        NOT NULL,
    date_from       date        NOT NULL,
    collected_on    date        NOT NULL,
    new_backlinks   bigint,
    lost_backlinks  bigint,
    collected_at    timestamptz NOT NULL,
    raw_response_id bigint      NOT NULL REFERENCES linkledger.raw_responses (id),
    PRIMARY KEY (target, date_from, collected_on)
);
CREATE INDEX bulk_new_lost_backlinks_collected_on_idx ON linkledger.bulk_new_lost_backlinks (collected_on);
COMMENT ON TABLE linkledger.bulk_new_lost_backlinks IS 'backlinks/bulk_new_lost_backlinks: backlinks gained and lost since date_from, per target and UTC day collected';

CREATE TABLE linkledger.bulk_new_lost_referring_domains (
    target                      text        NOT NULL,
    date_from                   date        NOT NULL,
    collected_on                date        NOT NULL,
    new_referring_domains       bigint,
    lost_referring_domains      bigint,
    new_referring_main_domains  bigint,
    lost_referring_main_domains bigint,
    collected_at                timestamptz NOT NULL,
    raw_response_id             bigint      NOT NULL REFERENCES linkledger.raw_responses (id),
    PRIMARY KEY (target, date_from, collected_on)
);
CREATE INDEX bulk_new_lost_referring_domains_collected_on_idx ON linkledger.bulk_new_lost_referring_domains (collected_on);
COMMENT ON TABLE linkledger.bulk_new_lost_referring_domains IS 'backlinks/bulk_new_lost_referring_domains: referring domains gained and lost since date_from, per target and UTC day collected';

CREATE TABLE linkledger.bulk_ranks (
    target          text        NOT NULL,
    collected_on    date        NOT NULL,
    rank            bigint,
    collected_at    timestamptz NOT NULL,
    raw_response_id bigint      NOT NULL REFERENCES linkledger.raw_responses (id),
    PRIMARY KEY (target, collected_on)
);
CREATE INDEX bulk_ranks_collected_on_idx ON linkledger.bulk_ranks (collected_on);
COMMENT ON TABLE linkledger.bulk_ranks IS 'backlinks/bulk_ranks: rank per target and UTC day collected';

CREATE TABLE linkledger.bulk_backlinks (
    target          text        NOT NULL,
    collected_on    date        NOT NULL,
    backlinks       bigint,
    collected_at    timestamptz NOT NULL,
    raw_response_id bigint      NOT NULL REFERENCES linkledger.raw_responses (id),
    PRIMARY KEY (target, collected_on)
);
CREATE INDEX bulk_backlinks_collected_on_idx ON linkledger.bulk_backlinks (collected_on);
COMMENT ON TABLE linkledger.bulk_backlinks IS 'backlinks/bulk_backlinks: backlink count per target and UTC day collected';

CREATE TABLE linkledger.bulk_referring_domains (
    target                          text        NOT NULL,
    collected_on                    date        NOT NULL,
    referring_domains               bigint,
    referring_domains_nofollow      bigint,
    referring_main_domains          bigint,
    referring_main_domains_nofollow bigint,
    collected_at                    timestamptz NOT NULL,
    raw_response_id                 bigint      NOT NULL REFERENCES linkledger.raw_responses (id),
    PRIMARY KEY (target, collected_on)
);
CREATE INDEX bulk_referring_domains_collected_on_idx ON linkledger.bulk_referring_domains (collected_on);
COMMENT ON TABLE linkledger.bulk_referring_domains IS 'backlinks/bulk_referring_domains: referring domain counts per target and UTC day collected';

CREATE TABLE linkledger.bulk_spam_score (
    target          text        NOT NULL,
    collected_on    date        NOT NULL,
    spam_score      bigint,
    collected_at    timestamptz NOT NULL,
    raw_response_id bigint      NOT NULL REFERENCES linkledger.raw_responses (id),
    PRIMARY KEY (target, collected_on)
);
CREATE INDEX bulk_spam_score_collected_on_idx ON linkledger.bulk_spam_score (collected_on);
COMMENT ON TABLE linkledger.bulk_spam_score IS 'backlinks/bulk_spam_score: spam score per target and UTC day collected';

CREATE TABLE linkledger.bulk_pages_summary (
    target                          text        NOT NULL,
    collected_on                    date        NOT NULL,
    rank                            bigint,
    main_domain_rank                bigint,
    backlinks                       bigint,
    first_seen                      timestamptz,
    lost_date                       timestamptz,
    backlinks_spam_score            bigint,
    broken_backlinks                bigint,
    broken_pages                    bigint,
    referring_domains               bigint,
    referring_domains_nofollow      bigint,
    referring_main_domains          bigint,
    referring_main_domains_nofollow bigint,
    referring_ips                   bigint,
    referring_subnets               bigint,
    referring_pages                 bigint,
    referring_pages_nofollow        bigint,
    info_server                     text,
    info_cms                        text,
    info_platform_type              text[],
    info_ip_address                 text,
    info_country                    text,
    info_is_ip                      boolean,
    info_target_spam_score          bigint,
    collected_at                    timestamptz NOT NULL,
    raw_response_id                 bigint      NOT NULL REFERENCES linkledger.raw_responses (id),
    PRIMARY KEY (target, collected_on)
);
CREATE INDEX bulk_pages_summary_collected_on_idx ON linkledger.bulk_pages_summary (collected_on);
COMMENT ON TABLE linkledger.bulk_pages_summary IS 'backlinks/bulk_pages_summary: page-level summary per page URL (the url field) and UTC day collected';

CREATE TABLE linkledger.link_breakdowns (
    source_table    text        NOT NULL,
    target          text        NOT NULL,
    date            date        NOT NULL,
    options         jsonb       NOT NULL DEFAULT '{}',
    dimension       text        NOT NULL
                    CHECK (dimension IN ('tld', 'types', 'attributes', 'platform_types',
                                         'semantic_locations', 'countries')),
    key             text        NOT NULL,
    count           bigint      NOT NULL,
    collected_at    timestamptz NOT NULL,
    -- No foreign key here: a row is written in the transaction that writes its parent
    -- row, which has one; a per-row check would halve the load speed of this table.
    raw_response_id bigint      NOT NULL,
    -- Target and date lead the key: the key is also the index BI filters use.
    PRIMARY KEY (target, date, source_table, options, dimension, key)
);
COMMENT ON TABLE linkledger.link_breakdowns IS 'The six referring_links_* maps of summary, history and bulk_pages_summary rows, one row per map key (the API''s empty-string key included)';

CREATE VIEW linkledger.latest_summary AS
SELECT DISTINCT ON (s.target) s.*
FROM linkledger.summary s
ORDER BY s.target, s.collected_on DESC, s.collected_at DESC;
COMMENT ON VIEW linkledger.latest_summary IS 'The newest summary row per target (any request options)';

CREATE VIEW linkledger.referring_domains_trend AS
SELECT h.target, h.month, h.referring_domains, h.backlinks, h.rank,
       h.referring_domains - lag(h.referring_domains) OVER w AS referring_domains_change,
       h.backlinks - lag(h.backlinks) OVER w AS backlinks_change
FROM linkledger.history h
WINDOW w AS (PARTITION BY h.target ORDER BY h.month);
COMMENT ON VIEW linkledger.referring_domains_trend IS 'Month-over-month change of referring domains and backlinks per domain, from history';

-- Column comments: one text per column name, applied to every warehouse table that has
-- the column, so the same field is described the same way everywhere.
CREATE TEMPORARY TABLE column_docs (name text PRIMARY KEY, doc text NOT NULL) ON COMMIT DROP;
INSERT INTO column_docs VALUES
 ('target', 'Domain, subdomain or page URL the data is about, as sent to the API (domains without scheme and www.)'),
 ('options', 'Request parameters other than the target (JSON), part of the natural key'),
 ('collected_on', 'UTC day the data was collected'),
 ('collected_at', 'When the response was received'),
 ('raw_response_id', 'The stored raw response this row was normalized from (raw_responses.id)'),
 ('month', 'Month of the data (its first day); metrics as of the first day of the month'),
 ('date', 'Last day of the period the row covers'),
 ('group_range', 'Period length: day, week, month or year'),
 ('date_from', 'Start of the range new and lost items are counted over'),
 ('first_seen', 'When the API''s crawler first found a backlink to the target'),
 ('lost_date', 'When the target''s last backlink was lost, NULL if it has live backlinks'),
 ('rank', 'Rank of the target (0-1000 unless rank_scale says otherwise), PageRank-like'),
 ('main_domain_rank', 'Rank of the page''s main domain'),
 ('backlinks', 'Number of backlinks'),
 ('backlinks_nofollow', 'Number of nofollow backlinks'),
 ('backlinks_spam_score', 'Spam score of the backlinks pointing to the target (0-100)'),
 ('spam_score', 'Average spam score of the target (0-100)'),
 ('crawled_pages', 'Pages of the target the crawler visited'),
 ('internal_links_count', 'Internal links on the target''s pages'),
 ('external_links_count', 'External links on the target''s pages'),
 ('broken_backlinks', 'Backlinks pointing to broken pages of the target'),
 ('broken_pages', 'Pages of the target answering 4xx or 5xx'),
 ('referring_domains', 'Referring domains (subdomains counted separately)'),
 ('referring_domains_nofollow', 'Referring domains with at least one nofollow link to the target'),
 ('referring_main_domains', 'Referring main (registrable) domains'),
 ('referring_main_domains_nofollow', 'Referring main domains with at least one nofollow link to the target'),
 ('referring_ips', 'Referring IP addresses'),
 ('referring_subnets', 'Referring subnets'),
 ('referring_pages', 'Pages linking to the target'),
 ('referring_pages_nofollow', 'Pages with at least one nofollow link to the target'),
 ('new_backlinks', 'Backlinks gained in the period (history: 0 before May 2021)'),
 ('lost_backlinks', 'Backlinks lost in the period (history: 0 before May 2021)'),
 ('new_referring_domains', 'Referring domains gained in the period (also read from the misspelled new_reffering_domains)'),
 ('lost_referring_domains', 'Referring domains lost in the period (also read from the misspelled lost_reffering_domains)'),
 ('new_referring_main_domains', 'Referring main domains gained in the period'),
 ('lost_referring_main_domains', 'Referring main domains lost in the period'),
 ('info_server', 'info.server: web server software of the target'),
 ('info_cms', 'info.cms: content management system of the target'),
 ('info_platform_type', 'info.platform_type: platform types of the target'),
 ('info_ip_address', 'info.ip_address: IP address of the target'),
 ('info_country', 'info.country: country code of the target'),
 ('info_is_ip', 'info.is_ip: the target is an IP address'),
 ('info_target_spam_score', 'info.target_spam_score: spam score of the target'),
 ('source_table', 'Table of the row the breakdown belongs to: summary, history or bulk_pages_summary'),
 ('dimension', 'Which referring_links_* map: tld, types, attributes, platform_types, semantic_locations or countries'),
 ('key', 'Map key (a TLD, link type, attribute, platform, semantic location or country code); may be the empty string, as the API sends it'),
 ('count', 'Referring links counted under the key');

DO $$
DECLARE c record;
BEGIN
  FOR c IN
    SELECT col.table_name, col.column_name, d.doc
    FROM information_schema.columns col
    JOIN column_docs d ON d.name = col.column_name
    WHERE col.table_schema = 'linkledger'
      AND col.table_name IN ('summary', 'history', 'timeseries_summary',
        'timeseries_new_lost_summary', 'bulk_new_lost_backlinks',
        'bulk_new_lost_referring_domains', 'bulk_ranks', 'bulk_backlinks',
        'bulk_referring_domains', 'bulk_spam_score', 'bulk_pages_summary', 'link_breakdowns',
        'latest_summary', 'referring_domains_trend')
  LOOP
    EXECUTE format('COMMENT ON COLUMN linkledger.%I.%I IS %L', c.table_name, c.column_name, c.doc);
  END LOOP;
END $$;

COMMENT ON COLUMN linkledger.link_breakdowns.date IS 'Date of the parent row: collected_on for summary and bulk_pages_summary, month for history';
COMMENT ON COLUMN linkledger.link_breakdowns.options IS 'Request options of the parent summary row ({} for other tables)';

COMMENT ON COLUMN linkledger.referring_domains_trend.referring_domains_change IS 'Change of referring_domains against the previous stored month';
COMMENT ON COLUMN linkledger.referring_domains_trend.backlinks_change IS 'Change of backlinks against the previous stored month';
