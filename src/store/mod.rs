//! Everything that talks SQL. No other module writes to the database.

pub mod api_slots;
pub mod budgets;
pub mod catalog;
pub mod enqueue;
pub mod group;
pub mod job_targets;
pub mod ledger;
mod nodelay;
pub mod paging;
pub mod partitions;
pub mod periods;
pub mod purchases;
pub mod queue;
pub mod reconcile;
pub mod rejected;
pub mod reports;
pub mod runs;
pub mod snapshots;
pub mod warehouse;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection as _, PgConnection, PgPool};
use tracing::instrument;

use crate::config::DEFAULT_DB_CONNECT_TIMEOUT;

pub use budgets::{Booking, CallRecord, SendDecision, SlotAsk, SlotBooking};
pub use ledger::{RunKind, RunStatus, Settlement};
pub use purchases::{BoughtAnswer, Purchase};
pub use queue::{ClaimScope, Claimed, Fence, NewWork, PaidAnswer, QueueDepth, Terminal, WorkItem};
pub use runs::{Activity, CancelledRun, RunCall, RunFilter, RunRecord, WaitingRun};

/// The database: a pool plus the queries linkledger runs.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
    partitions: partitions::KnownPartitions,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or would not take us: what happened and what
    /// to check, said once (no source chain that repeats it).
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    #[error("applying migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// A group's transaction failed as a whole (its commit, or its connection): no
    /// member knows whether it was written (`store::group`).
    #[error("the group's transaction failed: {0}")]
    Group(String),
}

/// Whether to connect without TLS first (`sslmode=allow`): the URL reaches the server
/// over TCP on this host (loopback) and sets no `sslmode` (nor does `PGSSLMODE`).
/// sqlx's default, `prefer`, would negotiate TLS, which protects nothing on loopback and
/// costs each new connection two ~40 ms stalls: the handshake's small writes go out
/// before `nodelay` can turn Nagle's algorithm off (it sees the socket only once the
/// connection is made). A server that takes only TLS (`hostssl`) still gets it: `allow`
/// tries TLS when the plain connection is refused.
fn plain_on_loopback(url: &str, opts: &PgConnectOptions, env_sslmode: bool) -> bool {
    let asked = url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|kv| kv.starts_with("sslmode=")));
    let host = opts.get_host();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !asked && !env_sslmode && opts.get_socket().is_none() && loopback
}

/// The user a URL that names none logs in as, libpq's way: `PGUSER` when set (sqlx
/// reads it), else the operating system's user (`os_user`). `None`: leave it as parsed.
fn os_user_for(url: &str, pguser_set: bool, os_user: fn() -> Option<String>) -> Option<String> {
    let named = url::Url::parse(url)
        .is_ok_and(|u| !u.username().is_empty() || u.query_pairs().any(|(k, _)| k == "user"));
    if named || pguser_set {
        return None;
    }
    os_user()
}

/// The name of the user this process runs as.
fn os_user() -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
}

/// Where a database URL points, without user or password (in the authority or as a
/// `password=` or `user=` query parameter, as libpq and sqlx take them), for
/// messages.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            let kept: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let secret = matches!(k.as_ref(), "password" | "user" | "sslpassword");
                    (
                        k.into_owned(),
                        if secret { "***".into() } else { v.into_owned() },
                    )
                })
                .collect();
            if kept.is_empty() {
                u.set_query(None);
            } else {
                u.query_pairs_mut().clear().extend_pairs(kept);
            }
            u.to_string()
        }
        Err(_) => "(unparsable database URL)".to_string(),
    }
}

impl StoreError {
    /// A deadlock Postgres broke by aborting this statement: worth trying again.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, StoreError::Sql(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40P01"))
    }

    /// The database refused what was written, not the moment it was written in: a
    /// data exception (SQLSTATE class 22: a NUL in a text, a value out of range), an
    /// integrity constraint (23) or a program limit (54, a row too large). The same
    /// statement with the same data fails again, so trying it again is no use.
    pub fn is_refused_data(&self) -> bool {
        matches!(self, StoreError::Sql(sqlx::Error::Database(e))
            if e.code().is_some_and(|c| ["22", "23", "54"].iter().any(|class| c.starts_with(class))))
    }
}

/// Where a connection goes, for messages: `host:port`, or the Unix socket.
fn address(opts: &PgConnectOptions) -> String {
    match opts.get_socket() {
        Some(dir) => format!(
            "socket {}",
            dir.join(format!(".s.PGSQL.{}", opts.get_port())).display()
        ),
        None => format!("{}:{}", opts.get_host(), opts.get_port()),
    }
}

/// Why the first connection failed, in words: what happened, where, and what to check.
fn connect_failure(e: &sqlx::Error, opts: &PgConnectOptions) -> String {
    let at = address(opts);
    let check = "check DATABASE_URL (or database.url)";
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused at {at}; is PostgreSQL running there? {check}")
        }
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            format!("no server at {at}; is PostgreSQL running there? {check}")
        }
        sqlx::Error::Io(io) => format!("cannot reach {at}: {io}; {check}"),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("3D000") => format!(
                "database \"{}\" does not exist at {at}; create it (createdb {}) or {check}",
                opts.get_database().unwrap_or("?"),
                opts.get_database().unwrap_or("NAME"),
            ),
            Some("28P01") | Some("28000") => format!(
                "the server at {at} refused the login of user \"{}\" ({}); {check}",
                opts.get_username(),
                db.message()
            ),
            _ => format!("the server at {at} said: {}", db.message()),
        },
        sqlx::Error::Tls(e) => format!("TLS with {at} failed: {e}"),
        other => format!("{other} (at {at})"),
    }
}

impl Store {
    /// Connects with the default timeout ([`DEFAULT_DB_CONNECT_TIMEOUT`]).
    pub async fn connect(url: &SecretString, pool_size: u32) -> Result<Store, StoreError> {
        Self::connect_within(url, pool_size, DEFAULT_DB_CONNECT_TIMEOUT).await
    }

    /// Connects to `url` with a pool of `pool_size`. One connection is made first and
    /// must succeed within `timeout`: a server that refuses, a database that does not
    /// exist or a host that does not answer fails at once with a message saying which
    /// (never the URL's password).
    #[instrument(skip_all)]
    pub async fn connect_within(
        url: &SecretString,
        pool_size: u32,
        timeout: Duration,
    ) -> Result<Store, StoreError> {
        let mut opts: PgConnectOptions = url.expose_secret().parse().map_err(|e| {
            StoreError::Connect(format!(
                "{} is not a PostgreSQL URL: {e}",
                redacted_url(url.expose_secret())
            ))
        })?;
        if let Some(user) = os_user_for(
            url.expose_secret(),
            std::env::var_os("PGUSER").is_some(),
            os_user,
        ) {
            opts = opts.username(&user);
        }
        if plain_on_loopback(
            url.expose_secret(),
            &opts,
            std::env::var_os("PGSSLMODE").is_some(),
        ) {
            opts = opts.ssl_mode(PgSslMode::Allow);
        }
        match tokio::time::timeout(timeout, PgConnection::connect_with(&opts)).await {
            Err(_) => {
                return Err(StoreError::Connect(format!(
                    "no answer from {} within {}; check DATABASE_URL (or database.url) and \
                     database.connect_timeout",
                    address(&opts),
                    humantime::format_duration(timeout)
                )));
            }
            Ok(Err(e)) => return Err(StoreError::Connect(connect_failure(&e, &opts))),
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
        }
        // sqlx 0.9.0 leaves Nagle's algorithm on for TCP connections: see `nodelay`.
        let tcp_port = opts.get_socket().is_none().then(|| opts.get_port());
        let pool = PgPoolOptions::new()
            .after_connect(move |_conn, _meta| {
                Box::pin(async move {
                    if let Some(port) = tcp_port {
                        nodelay::on_connections_to(port);
                    }
                    Ok(())
                })
            })
            .max_connections(pool_size.max(2))
            // Under load a worker may wait for a connection; that is no failure to
            // connect.
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(opts);
        Ok(Store::from_pool(pool))
    }

    pub fn from_pool(pool: PgPool) -> Store {
        Store {
            pool,
            partitions: Default::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the migrations in `migrations/` (embedded at build time), then makes
    /// the month partitions of this month and the next two (see [`partitions`]).
    #[instrument(skip_all)]
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        self.maintain_partitions(chrono::Utc::now().date_naive())
            .await?;
        Ok(())
    }

    /// A round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Row count of every normalized table, for reports.
    pub async fn table_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut out = Vec::new();
        for table in warehouse::normalized_tables() {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM linkledger.{table}"
            )))
            .fetch_one(&self.pool)
            .await?;
            out.push((table.to_string(), n));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(url: &str, env: bool) -> bool {
        plain_on_loopback(url, &url.parse().unwrap(), env)
    }

    #[test]
    fn tls_is_tried_second_only_on_loopback_when_nothing_asks_for_it() {
        assert!(plain("postgres://me@127.0.0.1:5432/db", false));
        assert!(plain("postgres://me@localhost/db", false));
        assert!(plain("postgres://me@[::1]:5432/db", false));
        assert!(plain(
            "postgres://me@127.0.0.2/db?application_name=x",
            false
        ));
        // Asked for, in the URL or the environment: as asked.
        assert!(!plain("postgres://me@127.0.0.1/db?sslmode=prefer", false));
        assert!(!plain(
            "postgres://me@127.0.0.1/db?application_name=x&sslmode=require",
            false
        ));
        assert!(!plain("postgres://me@127.0.0.1/db", true));
        // Another host, or a Unix socket: unchanged.
        assert!(!plain("postgres://me@db.example.com/db", false));
        assert!(!plain("postgres://me@10.0.0.5/db", false));
        assert!(!plain(
            "postgres://me@localhost/db?host=/var/run/postgresql",
            false
        ));
    }

    #[test]
    fn a_database_url_in_a_message_shows_no_password_in_the_authority_or_the_query() {
        let shown = redacted_url(
            "postgres://me:sekrit@db.example.com:5432/ll?password=sekrit2&sslmode=require&user=me",
        );
        assert!(!shown.contains("sekrit"), "{shown}");
        assert!(!shown.contains("me"), "{shown}");
        assert_eq!(
            shown,
            "postgres://db.example.com:5432/ll?password=***&sslmode=require&user=***"
        );
        assert_eq!(
            redacted_url("postgres://127.0.0.1/ll"),
            "postgres://127.0.0.1/ll"
        );
    }

    #[test]
    fn a_url_that_names_no_user_logs_in_as_the_operating_systems_user() {
        let me = || Some("alice".to_string());
        assert_eq!(
            os_user_for("postgres://127.0.0.1:5432/ll", false, me),
            Some("alice".to_string())
        );
        // Named in the URL, in its query, or by PGUSER: left as it is.
        assert_eq!(os_user_for("postgres://bob@127.0.0.1/ll", false, me), None);
        assert_eq!(
            os_user_for("postgres://127.0.0.1/ll?user=bob", false, me),
            None
        );
        assert_eq!(os_user_for("postgres://127.0.0.1/ll", true, me), None);
    }
}
