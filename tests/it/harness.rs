//! Processes under test: the daemon and `run --once` as real child processes, with
//! their logs; a database, a sandbox and job files set up for them ([`Scene`]); and the
//! verbs tests drive them with: start one or two daemons, wait for a log line, reload a
//! configuration, stop them cleanly, interrupt a once-run with calls in flight.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use linkledger::sandbox::{Sandbox, SandboxOptions};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::common::*;

/// A running `linkledger run`.
pub struct Daemon {
    pub child: tokio::process::Child,
    pub addr: String,
    pub log: Arc<Mutex<String>>,
    /// Its working directory (`jobs/`, `config/`).
    pub dir: std::path::PathBuf,
}

/// Collects a child's stderr as it comes, to wait on what it logs.
pub fn capture_stderr(child: &mut tokio::process::Child) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let l = log.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            l.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    log
}

impl Daemon {
    pub async fn start(dir: &std::path::Path, env: &[(String, String)]) -> Daemon {
        Daemon::spawn(command(dir, env, &["run"])).await
    }

    /// [`Daemon::start`] with at most `files` open file descriptors (RLIMIT_NOFILE).
    pub async fn start_with_open_files(
        dir: &std::path::Path,
        env: &[(String, String)],
        files: u64,
    ) -> Daemon {
        let mut cmd = command(dir, env, &["run"]);
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and
        // exec.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_NOFILE,
                    files,
                    files,
                )
                .map_err(std::io::Error::from)
            });
        }
        Daemon::spawn(cmd).await
    }

    async fn spawn(mut cmd: tokio::process::Command) -> Daemon {
        let dir = cmd
            .as_std()
            .get_current_dir()
            .expect("the daemon's directory")
            .to_path_buf();
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("starting the daemon");
        let log = capture_stderr(&mut child);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) =
                    line.strip_prefix("linkledger daemon: /healthz and /metrics on http://")
                {
                    return url.trim().to_string();
                }
            }
            panic!(
                "the daemon exited before it served: {}",
                log.lock().unwrap()
            );
        })
        .await
        .expect("the daemon started within a minute");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Daemon {
            child,
            addr,
            log,
            dir,
        }
    }

    /// Two daemons on the same directory and environment, started at once.
    pub async fn start_two(dir: &std::path::Path, env: &[(String, String)]) -> (Daemon, Daemon) {
        tokio::join!(Daemon::start(dir, env), Daemon::start(dir, env))
    }

    pub fn signal(&self, sig: Signal) {
        send_signal(&self.child, sig);
    }

    /// SIGTERM, then asserts the daemon exits cleanly within `within` (its log if not).
    pub async fn stop(&mut self, within: Duration) {
        self.signal(Signal::SIGTERM);
        let status = self.wait(within).await;
        assert!(status.success(), "{}", self.log());
    }

    /// Writes `toml` as its `config/linkledger.toml` and sends SIGHUP to reload it.
    pub fn reload_config(&self, toml: &str) {
        write_config(&self.dir, toml);
        self.signal(Signal::SIGHUP);
    }

    /// Waits until the daemon's log holds `needle`, or panics after `within`.
    pub async fn wait_for_log(&self, within: Duration, needle: &str) {
        wait_for(
            within,
            &format!("`{needle}` in the daemon's log"),
            || async { self.log().contains(needle) },
        )
        .await;
    }

    pub async fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the daemon did not exit within {within:?}: {}", self.log()))
            .unwrap()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, out)
    }
}

/// SIGTERMs both daemons together, then asserts each exits cleanly within `within`.
pub async fn stop_both(a: &mut Daemon, b: &mut Daemon, within: Duration) {
    a.signal(Signal::SIGTERM);
    b.signal(Signal::SIGTERM);
    for d in [a, b] {
        let status = d.wait(within).await;
        assert!(status.success(), "{}", d.log());
    }
}

/// Sends `sig` to a running child.
pub fn send_signal(child: &tokio::process::Child, sig: Signal) {
    kill(Pid::from_raw(child.id().expect("running") as i32), sig).expect("signalling the child");
}

/// Waits until `d`'s scheduler has ticked half a second past now (its last tick on
/// `/metrics`): it ran on for a while.
pub async fn wait_for_ticks_past_now(d: &Daemon) {
    let until = chrono::Utc::now().timestamp_millis() as f64 / 1000.0 + 0.5;
    wait_for(
        Duration::from_secs(10),
        "the scheduler to tick on",
        || async {
            let (_, metrics) = d.get("/metrics").await;
            metric(&metrics, "linkledger_scheduler_last_tick_timestamp_seconds")
                .is_some_and(|t| t >= until)
        },
    )
    .await;
}

/// The value of the sample `name` (a metric with its labels) in a `/metrics` text.
pub fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits until exactly one scheduled run succeeded within the last `recent` (an SQL
/// interval such as `5 minutes`): the daemon's own fire is done.
pub async fn wait_for_daemons_fire(
    store: &linkledger::store::Store,
    within: Duration,
    recent: &str,
) {
    wait_for_count(
        store,
        within,
        "the daemon's own fire done",
        &format!(
            "SELECT count(*) FROM linkledger.runs WHERE kind = 'scheduled' AND status = 'succeeded' AND finished_at > now() - interval '{recent}'"
        ),
        |n| n == 1,
    )
    .await;
}

/// The status of the one once-run in the database.
pub async fn once_run_status(store: &linkledger::store::Store) -> String {
    sqlx::query_scalar("SELECT status FROM linkledger.runs WHERE kind = 'once'")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

pub fn daemon_env(db_url: &str, sb: &Sandbox, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let env = vec![
        ("DATABASE_URL".to_string(), db_url.to_string()),
        ("LINKLEDGER_API__BASE_URL".into(), sb.base_url()),
        ("DATAFORSEO_LOGIN".into(), "sandbox".into()),
        ("DATAFORSEO_PASSWORD".into(), "sandbox".into()),
        ("LINKLEDGER_API__RETRY_BASE_DELAY".into(), "5ms".into()),
        ("LINKLEDGER_API__RETRY_MAX_DELAY".into(), "50ms".into()),
        ("LINKLEDGER_SERVER__LISTEN".into(), "127.0.0.1:0".into()),
        ("LINKLEDGER_QUEUE__TICK".into(), "100ms".into()),
        ("LINKLEDGER_QUEUE__POLL".into(), "20ms".into()),
        ("LINKLEDGER_QUEUE__LEASE".into(), "5s".into()),
        ("LINKLEDGER_QUEUE__SHUTDOWN_GRACE".into(), "5s".into()),
    ];
    with_env(env, extra)
}

/// A yearly schedule whose newest fire (1 January) is caught up at start, once the
/// collection has fired before (see [`fired_long_ago`]): exactly one fire during a
/// test, whatever the clock says.
pub const ONE_FIRE: &str = "0 0 1 1 *";
pub const ONE_FIRE_CATCH_UP: &str = "catch_up = \"latest\"";

/// The `daemon` job's summary collection last fired in 2000: its missed fires are
/// caught up at start (a collection that never fired would wait for its next one).
pub async fn fired_long_ago(store: &linkledger::store::Store) {
    let at = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z").unwrap();
    seed_fire(store, "daemon", "summary", at.into()).await;
}

pub fn summary_job(n: usize, schedule: &str, catch_up: &str) -> String {
    let targets: Vec<String> = (0..n).map(|i| format!("\"d{i:03}.example.com\"")).collect();
    format!(
        "name = \"daemon\"\ntargets = [{}]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"{schedule}\"\n{catch_up}\n",
        targets.join(", ")
    )
}

/// A database, a sandbox, a work directory holding job files, and the daemon
/// environment for them.
pub struct Scene {
    pub _db: TestDb,
    pub store: linkledger::store::Store,
    pub sb: Sandbox,
    pub wd: Workdir,
    pub env: Vec<(String, String)>,
}

/// One summary job over `targets` targets that fires once (see [`fired_long_ago`]).
pub async fn scene(targets: usize, sandbox_opts: SandboxOptions, env: &[(&str, &str)]) -> Scene {
    let sc = scene_with_jobs(
        &[(
            "daemon.toml",
            &summary_job(targets, ONE_FIRE, ONE_FIRE_CATCH_UP),
        )],
        sandbox_opts,
        env,
    )
    .await;
    fired_long_ago(&sc.store).await;
    sc
}

/// [`scene`] with a sandbox that answers each request after `latency`, and at most
/// `max_in_flight` calls at a time (`api.max_in_flight`) from each process.
pub async fn slow_scene(
    targets: usize,
    latency: Duration,
    max_in_flight: usize,
    env: &[(&str, &str)],
) -> Scene {
    let max_in_flight = max_in_flight.to_string();
    let mut all = vec![("LINKLEDGER_API__MAX_IN_FLIGHT", max_in_flight.as_str())];
    all.extend_from_slice(env);
    scene(targets, with_latency(latency), &all).await
}

/// The given job files, none of which has fired before.
pub async fn scene_with_jobs(
    jobs: &[(&str, &str)],
    sandbox_opts: SandboxOptions,
    env: &[(&str, &str)],
) -> Scene {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = sandbox(sandbox_opts).await;
    let wd = Workdir::new(jobs);
    let env = daemon_env(&db.url, &sb, env);
    Scene {
        _db: db,
        store,
        sb,
        wd,
        env,
    }
}

impl Scene {
    /// A daemon on this scene's directory and environment.
    pub async fn start_daemon(&self) -> Daemon {
        Daemon::start(self.wd.path(), &self.env).await
    }

    /// Starts a daemon, waits up to `within` until its log says `needle`, and stops it
    /// (a clean exit within 15 s): the stopped daemon, for its log.
    pub async fn run_daemon_until_log(&self, within: Duration, needle: &str) -> Daemon {
        let mut d = self.start_daemon().await;
        d.wait_for_log(within, needle).await;
        d.stop(Duration::from_secs(15)).await;
        d
    }

    /// Two daemons on this scene, started at once.
    pub async fn start_two_daemons(&self) -> (Daemon, Daemon) {
        Daemon::start_two(self.wd.path(), &self.env).await
    }

    /// `run --once` as a child process, returned once it has two calls in flight (the
    /// sandbox has seen two requests) within 30 s.
    pub async fn once_run_in_flight(&self) -> tokio::process::Child {
        let child = once_run(self.wd.path(), &self.env);
        wait_for(Duration::from_secs(30), "calls in flight", || async {
            self.sb.stats().requests >= 2
        })
        .await;
        child
    }
}

/// `run --once` as a child process with piped output.
pub fn once_run(dir: &std::path::Path, env: &[(String, String)]) -> tokio::process::Child {
    command(dir, env, &["run", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting run --once")
}

/// Interrupts a once-run against a slow sandbox once calls are in flight, and returns
/// its exit code, stdout and stderr.
pub async fn interrupt_once_run(sc: &Scene, sig: Signal) -> (Option<i32>, String, String) {
    let child = sc.once_run_in_flight().await;
    send_signal(&child, sig);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the interrupted run exits within the grace period")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
