//! What `--help` shows after the options: examples and exit statuses.

macro_rules! help {
    ($($line:expr),* $(,)?) => {
        concat!("Examples:\n", $("  ", $line, "\n",)* "\n")
    };
}

pub const TOP: &str = concat!(
    help!(
        "linkledger demo                 # the example jobs over 7 simulated days, built-in sandbox",
        "linkledger jobs check && linkledger plan",
        "linkledger run                  # the daemon: schedules, /healthz, /metrics",
        "linkledger runs                 # what ran, what failed, what is left",
    ),
    "Configuration: config/linkledger.toml (or --config, LINKLEDGER_CONFIG), then DATABASE_URL, \
DATAFORSEO_LOGIN, DATAFORSEO_PASSWORD and LINKLEDGER_<SECTION>__<KEY>.\n\n",
    "Exit status: 0 success; 1 work failed; 2 bad usage, configuration or job files (nothing \
was written); 130 or 143 a once-run interrupted by SIGINT or SIGTERM."
);
pub const MIGRATE: &str = concat!(
    help!("DATABASE_URL=postgres://me@localhost/linkledger linkledger migrate"),
    "Exit status: 0 applied (or nothing to apply); 1 the database could not be reached or a \
migration failed; 2 bad configuration."
);
pub const JOBS_CHECK: &str = concat!(
    help!(
        "linkledger jobs check",
        "linkledger --config /etc/linkledger.toml jobs check",
    ),
    "Exit status: 0 every job file is valid (warnings, if any, on stderr); 2 problems, each \
printed as file: field: why."
);
pub const PLAN: &str = concat!(
    help!(
        "linkledger plan",
        "linkledger plan --job competitors --json",
        "linkledger plan --at 2026-03-29T00:00:00Z",
    ),
    "Exit status: 0 shown; 2 bad usage (an unknown --job), configuration or job files."
);
pub const RUN: &str = concat!(
    help!(
        "linkledger run                  # the daemon, until SIGTERM or SIGINT",
        "linkledger run --once --job competitors",
        "LINKLEDGER_API__BASE_URL=http://127.0.0.1:8089/v3 DATAFORSEO_LOGIN=sandbox \
DATAFORSEO_PASSWORD=sandbox linkledger run --once   # against `linkledger sandbox`",
    ),
    "Exit status: 0 success (the daemon: stopped by a signal); 1 some call failed, the API \
refused the account, or a budget held calls back; 2 bad usage, configuration or job files (for \
--once, also no jobs to run; the daemon: only an unreadable jobs directory, it runs the files \
that load and reports the others); 130 or 143 a once-run interrupted by SIGINT or SIGTERM."
);
pub const REPLAY: &str = concat!(
    help!(
        "linkledger replay",
        "linkledger replay --endpoint history --since 2026-01-01",
    ),
    "Exit status: 0 every response replayed; 1 some could not be normalized (each printed); \
2 bad usage or configuration."
);
pub const SPEND: &str = concat!(
    help!(
        "linkledger spend",
        "linkledger spend --since 2026-11-01 --by job",
        "linkledger spend --by run --json",
        "linkledger spend --reconcile --since 2026-11-01",
    ),
    "Exit status: 0 shown; 1 the database could not be read; 2 bad usage or configuration."
);
pub const RUNS: &str = concat!(
    help!(
        "linkledger runs",
        "linkledger runs --job competitors --status failed",
        "linkledger runs show 42",
    ),
    "Exit status: 0 shown; 1 the database could not be read; 2 bad usage (no such run) or \
configuration."
);
pub const CANCEL: &str = concat!(
    help!(
        "linkledger cancel 42 43",
        "linkledger cancel --job competitors   # every open run of the job",
    ),
    "Exit status: 0 done (a run already finished is said so); 1 the database could not be \
written; 2 bad usage (a run that does not exist: nothing is cancelled) or configuration."
);
pub const SANDBOX: &str = concat!(
    help!(
        "linkledger sandbox",
        "linkledger sandbox --listen 0.0.0.0:8089 --fault-rate 0.1 --latency-ms 200",
        "then: LINKLEDGER_API__BASE_URL=http://127.0.0.1:8089/v3 DATAFORSEO_LOGIN=sandbox \
DATAFORSEO_PASSWORD=sandbox linkledger run --once",
        "linkledger sandbox --fixture summary=example.json   # answers summary with that envelope",
    ),
    "It takes login sandbox with password sandbox, or Bearer token sandbox-token.\n\n",
    "Exit status: 0 stopped by Ctrl-C; 1 the address could not be served; 2 bad usage."
);
pub const GRANT_READER: &str = concat!(
    help!(
        "linkledger grant-reader grafana      # an existing role",
        "LINKLEDGER_READER_PASSWORD=... linkledger grant-reader grafana --password-env LINKLEDGER_READER_PASSWORD",
    ),
    "Run it as the role that runs the migrations (DATABASE_URL): the tables and views that \
role creates later are readable by the reader too. It applies the migrations first, and \
running it again changes nothing.\n\n",
    "Exit status: 0 granted; 1 the database refused (e.g. no right to create roles); 2 bad \
usage (the role does not exist and no --password-env, an empty password, a superuser role) or \
configuration."
);
pub const SCHEMA_DOCS: &str = concat!(
    help!(
        "linkledger schema-docs > docs/schema.md",
        "DATABASE_URL=postgres://me@localhost/scratch linkledger schema-docs",
        "linkledger schema-docs --format dbt > my_dbt_project/models/linkledger/sources.yml",
    ),
    "It applies the migrations first, so it documents the schema this version creates. The dbt \
sources.yml needs dbt-core 1.10.5 or later and no package.\n\n",
    "Exit status: 0 printed; 1 the database could not be read; 2 bad configuration."
);
pub const CITUS_DDL: &str = concat!(
    help!(
        "linkledger citus-ddl > distribute.sql",
        "linkledger citus-ddl | psql -h coordinator -U postgres linkledger",
    ),
    "Run the output once on the Citus coordinator, after `linkledger migrate`, with every\n",
    "daemon stopped. docs/scaling.md says when to move and which queries stay on one shard.\n\n",
    "Exit status: 0 printed."
);
pub const DEMO: &str = concat!(
    help!(
        "linkledger demo                 # into a throwaway cluster when DATABASE_URL is unset",
        "DATABASE_URL=postgres://me@localhost/scratch linkledger demo",
        "linkledger demo --days 1        # one day only: quicker, but daily charts show dots",
    ),
    "Exit status: 0 every call succeeded; 1 some work failed; 2 bad configuration or job files."
);

pub const BACKFILL: &str = "Examples:
  linkledger backfill --job competitors --from 2019-01-01 --dry-run
  linkledger backfill --job competitors --from 2024-01-01 --endpoint history --yes

Running the same command again after an interruption (Ctrl-C, kill, a lost database)
finishes the backfill: what is stored is skipped, nothing is bought twice.

Exit status: 0 done (or nothing to do); 1 some calls failed or were held by a budget, or
you declined; 2 bad usage, or no --yes and no terminal to ask on; 130/143 interrupted.";

pub const GAPS: &str = concat!(
    help!(
        "linkledger gaps",
        "linkledger gaps --job competitors --endpoint history",
        "linkledger gaps --target dataforseo.com",
    ),
    "Exit status: 0 shown; 1 the database could not be read; 2 bad usage, configuration or \
job files."
);
