//! Shared fixtures: a fresh database per test on the real PostgreSQL server
//! (`DATABASE_URL`, else a throwaway cluster from the local binaries), the sandbox on
//! port 0, and the `linkledger` binary run in a temporary working directory.

use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use linkledger::ops::cluster::Cluster;
use linkledger::sandbox::{Sandbox, SandboxOptions};
use linkledger::store::Store;
use secrecy::SecretString;

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The server's maintenance database URL.
fn admin_url() -> String {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return url;
    }
    CLUSTER
        .get_or_init(|| Cluster::start().expect("starting a throwaway PostgreSQL cluster"))
        .url()
}

fn with_database(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).expect("DATABASE_URL is a URL");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

/// A database of its own, dropped when the test ends.
pub struct TestDb {
    pub url: String,
    pub name: String,
    admin: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        TestDb::create(None).await
    }

    /// A database of its own holding what `linkledger demo` collects (the example
    /// jobs, built in): a copy of one the demo filled once in this test process, so
    /// that the tests reading the demo's data do not each run it again.
    pub async fn demo() -> TestDb {
        let template = DEMO_TEMPLATE.get_or_init(demo_template).await;
        TestDb::create(Some(template)).await
    }

    /// A new database, empty or a copy of `template`.
    async fn create(template: Option<&str>) -> TestDb {
        let admin = admin_url();
        let name = format!("linkledger_test_{}", rand_suffix());
        let mut conn = connect(&admin).await;
        let copy = template.map_or(String::new(), |t| format!(" TEMPLATE {t}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}{copy}")))
            .execute(&mut conn)
            .await
            .expect("creating a test database");
        TestDb {
            url: with_database(&admin, &name),
            name,
            admin,
        }
    }

    /// A name for a database of its own that is not made yet (a test makes it, as a
    /// user would with `createdb`), dropped when the test ends if it was.
    pub fn unmade() -> TestDb {
        let admin = admin_url();
        let name = format!("linkledger_test_{}", rand_suffix());
        TestDb {
            url: with_database(&admin, &name),
            name,
            admin,
        }
    }

    /// The server as libpq's variables name it (`PGHOST`, `PGPORT`, `PGUSER`), for
    /// `createdb`, `psql` and a `DATABASE_URL` without a host or user.
    pub fn libpq_env(&self) -> Vec<(String, String)> {
        let u = url::Url::parse(&self.admin).expect("DATABASE_URL is a URL");
        let socket = u
            .query_pairs()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.into_owned());
        let host = socket.unwrap_or_else(|| u.host_str().unwrap_or("localhost").to_string());
        let mut env = vec![
            ("PGHOST".to_string(), host),
            ("PGPORT".to_string(), u.port().unwrap_or(5432).to_string()),
        ];
        if !u.username().is_empty() {
            env.push(("PGUSER".to_string(), u.username().to_string()));
        }
        env
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&SecretString::from(self.url.clone()), 8)
            .await
            .expect("connecting to the test database");
        store.migrate().await.expect("migrating");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; a runtime of its own on another thread
        // can block on the cleanup.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut conn = connect(&admin).await;
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            });
        })
        .join();
    }
}

/// The database `TestDb::demo` copies, made by the first test of the process that
/// asks for it.
static DEMO_TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// Suffix of the demo's template databases: `linkledger_test_<pid>_demo`.
const DEMO_SUFFIX: &str = "_demo";

/// Runs `linkledger demo` into a database of this process's that outlives the
/// process's tests (a static is never dropped); the templates of test processes no
/// longer running are dropped first.
async fn demo_template() -> String {
    let admin = admin_url();
    let mut conn = connect(&admin).await;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'linkledger\\_test\\_%\\_demo'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("listing the demo's templates");
    for stale in names {
        let pid = stale
            .strip_prefix("linkledger_test_")
            .and_then(|rest| rest.strip_suffix(DEMO_SUFFIX));
        if pid.is_some_and(|pid| !Path::new("/proc").join(pid).exists()) {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {stale} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
    let name = format!("linkledger_test_{}{DEMO_SUFFIX}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .expect("dropping an unfinished demo template");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("creating the demo's template");
    let wd = Workdir::new(&[]);
    let env = vec![("DATABASE_URL".to_string(), with_database(&admin, &name))];
    let out = linkledger(wd.path(), &env, &["demo"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    name
}

async fn connect(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .expect("connecting to PostgreSQL")
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

pub async fn sandbox(opts: SandboxOptions) -> Sandbox {
    Sandbox::start(opts).await.expect("starting the sandbox")
}

pub async fn default_sandbox() -> Sandbox {
    sandbox(SandboxOptions::default()).await
}

/// A sandbox that answers each request after `latency`.
pub fn with_latency(latency: Duration) -> SandboxOptions {
    SandboxOptions {
        latency,
        ..SandboxOptions::default()
    }
}

/// A working directory with a `jobs/` directory holding the given files.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new(jobs: &[(&str, &str)]) -> Workdir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("jobs")).unwrap();
        let wd = Workdir { dir };
        for (name, body) in jobs {
            wd.write_job(name, body);
        }
        wd
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes (or overwrites) `jobs/NAME`.
    pub fn write_job(&self, name: &str, body: &str) {
        let path = self.path().join("jobs").join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, body).unwrap();
    }

    /// Writes (or overwrites) `config/linkledger.toml`.
    pub fn write_config(&self, toml: &str) {
        write_config(self.path(), toml);
    }
}

/// Writes (or overwrites) `config/linkledger.toml` under `dir`.
pub fn write_config(dir: &Path, toml: &str) {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("linkledger.toml"), toml).unwrap();
}

/// Environment for the binary: the test database, the sandbox, its credentials and
/// fast retries.
pub fn env_for(db: &TestDb, sb: &Sandbox) -> Vec<(String, String)> {
    vec![
        ("DATABASE_URL".into(), db.url.clone()),
        ("LINKLEDGER_API__BASE_URL".into(), sb.base_url()),
        ("DATAFORSEO_LOGIN".into(), "sandbox".into()),
        ("DATAFORSEO_PASSWORD".into(), "sandbox".into()),
        ("LINKLEDGER_API__RETRY_BASE_DELAY".into(), "5ms".into()),
        ("LINKLEDGER_API__RETRY_MAX_DELAY".into(), "50ms".into()),
    ]
}

/// `env` with `overrides` set, each replacing a variable of the same name.
pub fn with_env(
    mut env: Vec<(String, String)>,
    overrides: &[(&str, &str)],
) -> Vec<(String, String)> {
    for (k, v) in overrides {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// `linkledger ARGS` in `dir` with exactly `env` (plus PATH/HOME), logging at info.
pub fn command(dir: &Path, env: &[(String, String)], args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_linkledger"));
    cmd.current_dir(dir).args(args).env_clear();
    for key in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    cmd.env("LINKLEDGER_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `linkledger ARGS` in `dir` with exactly `env` (plus PATH/HOME), and waits.
/// Starts `linkledger ARGS` with its output thrown away, to be killed (it is killed
/// when dropped).
pub fn spawn_quiet(dir: &Path, env: &[(String, String)], args: &[&str]) -> tokio::process::Child {
    command(dir, env, args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting linkledger")
}

pub async fn linkledger(dir: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = command(dir, env, args);
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("linkledger finished within 2 minutes")
        .expect("running linkledger")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Waits until `cond` holds, polling, or panics after `timeout`.
pub async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the count `sql` selects satisfies `ok`, polling, or panics after
/// `timeout`.
pub async fn wait_for_count(
    store: &Store,
    timeout: Duration,
    what: &str,
    sql: &str,
    ok: impl Fn(i64) -> bool,
) {
    wait_for(timeout, what, || async { ok(count(store, sql).await) }).await;
}

/// An API configuration pointing at `sb`, with fast retries.
pub fn api_config(sb: &Sandbox, max_in_flight: usize) -> linkledger::config::ApiConfig {
    linkledger::config::ApiConfig {
        base_url: sb.base_url().parse().expect("sandbox URL"),
        max_in_flight,
        retry_base_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(50),
        max_attempts: 12,
        ..Default::default()
    }
}

pub fn sandbox_credentials() -> linkledger::config::Credentials {
    linkledger::config::Credentials::Basic {
        login: "sandbox".into(),
        password: SecretString::from("sandbox"),
    }
}

/// Claims the one queued item of `run` as `worker` for `lease`; panics unless exactly
/// one is claimed.
pub async fn claim_one(
    store: &Store,
    worker: &str,
    lease: Duration,
    run: i64,
) -> linkledger::store::WorkItem {
    let mut items = store
        .claim(
            worker,
            lease,
            1,
            linkledger::store::ClaimScope::Runs(&[run]),
        )
        .await
        .expect("claiming")
        .items;
    assert_eq!(items.len(), 1, "{worker} claims one item of run {run}");
    items.remove(0)
}

/// An executor on `store` talking to `sb`.
pub fn executor(
    store: &Store,
    sb: &Sandbox,
    max_in_flight: usize,
) -> linkledger::collect::executor::Executor {
    let client = linkledger::api::Client::with_credentials(
        &api_config(sb, max_in_flight),
        &sandbox_credentials(),
    )
    .expect("client");
    linkledger::collect::executor::Executor::new(store.clone(), client)
}

/// Runs `jobs` once, now, the way `run --once` does (no signal interrupts it).
pub async fn run_once(
    exec: &linkledger::collect::executor::Executor,
    jobs: &[&linkledger::jobs::Job],
    kind: linkledger::store::RunKind,
    today: chrono::NaiveDate,
) -> anyhow::Result<linkledger::collect::once::RunReport> {
    let workers = linkledger::collect::workers::WorkerConfig::for_once(
        exec.client().limits().max_in_flight(),
    );
    run_once_with(exec, workers, jobs, kind, today).await
}

/// [`run_once`] with these workers.
pub async fn run_once_with(
    exec: &linkledger::collect::executor::Executor,
    workers: linkledger::collect::workers::WorkerConfig,
    jobs: &[&linkledger::jobs::Job],
    kind: linkledger::store::RunKind,
    today: chrono::NaiveDate,
) -> anyhow::Result<linkledger::collect::once::RunReport> {
    linkledger::collect::once::run(
        exec,
        workers,
        jobs,
        kind,
        today,
        &linkledger::collect::workers::Shutdown::default(),
    )
    .await
}

/// Starts a run of `kind` with the calls one cycle of `job` makes (no worker yet).
pub async fn enqueue_job(
    store: &Store,
    job: &linkledger::jobs::Job,
    kind: linkledger::store::RunKind,
    max_attempts: i32,
) -> i64 {
    let work: Vec<_> = linkledger::plan::plan_job(job, today())
        .iter()
        .map(linkledger::collect::workers::new_work)
        .collect();
    store
        .start_run_with_work(&job.name, kind, max_attempts, &work)
        .await
        .expect("starting a run with its calls")
}

/// Loads one job from TOML text.
pub fn job(toml: &str) -> linkledger::jobs::Job {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.toml");
    std::fs::write(&path, toml).unwrap();
    linkledger::jobs::load_file(&path, today()).unwrap_or_else(|p| panic!("{p}"))
}

pub fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// A job with one collection of `endpoint` over `targets`.
pub fn job_for(endpoint: &str, targets: &[String], params: &str) -> linkledger::jobs::Job {
    job(&job_toml("t", endpoint, targets, params))
}

/// The job file of a job `name` with one daily collection of `endpoint` over `targets`.
pub fn job_toml(name: &str, endpoint: &str, targets: &[String], params: &str) -> String {
    let list = targets
        .iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "name = \"{name}\"\ntargets = [{list}]\n[[collect]]\nendpoint = \"{endpoint}\"\nschedule = \"@daily\"\nparams = {{ {params} }}\n"
    )
}

/// Records that `collection` of `job` fired at `at` (its run long finished), as if a
/// daemon had run it then. A collection that never fired waits for its next scheduled
/// instant; one that fired before catches up what it missed since.
pub async fn seed_fire(
    store: &Store,
    job: &str,
    collection: &str,
    at: chrono::DateTime<chrono::Utc>,
) {
    sqlx::query(
        "WITH run AS (INSERT INTO linkledger.runs (job, kind, status, finished_at)
                      VALUES ($1, 'scheduled', 'succeeded', $3) RETURNING id)
         INSERT INTO linkledger.fires (job, collection, scheduled_for, run_id, enqueued_by)
         SELECT $1, $2, $3, id, 'test' FROM run",
    )
    .bind(job)
    .bind(collection)
    .bind(at)
    .execute(store.pool())
    .await
    .expect("seeding a past fire");
}

/// Sum of `cost_usd` in the ledger.
pub async fn ledger_total(store: &Store) -> rust_decimal::Decimal {
    sqlx::query_scalar("SELECT coalesce(sum(cost_usd), 0) FROM linkledger.api_calls")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

pub async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A checksum of each warehouse table's content, leaving out what says when and from
/// which stored answer a row came (`collected_at`, `collected_on`, `raw_response_id`):
/// two databases that hold the same data agree.
pub async fn content_checksums(store: &Store) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (table, _) in store.table_counts().await.unwrap() {
        let sum: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT md5(string_agg(c, '|' ORDER BY c)) FROM (
                 SELECT (to_jsonb(t) - 'collected_at' - 'collected_on' - 'raw_response_id')::text AS c
                 FROM linkledger.{table} t) s"
        )))
        .fetch_one(store.pool())
        .await
        .unwrap();
        out.push((table, sum.unwrap_or_default()));
    }
    out
}
