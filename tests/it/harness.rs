//! Processes under test: the daemon and `run --once` as real child processes, with
//! their logs; a database, a sandbox and job files set up for them.

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
        let mut cmd = command(dir, env, &["run"]);
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
        Daemon { child, addr, log }
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id().expect("running") as i32), sig)
            .expect("signalling the daemon");
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

pub fn daemon_env(db_url: &str, sb: &Sandbox, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
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
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
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

/// A database, a sandbox, a work directory holding one summary job over `targets`
/// targets that fires once, and the daemon environment for them.
pub struct Scene {
    pub _db: TestDb,
    pub store: linkledger::store::Store,
    pub sb: Sandbox,
    pub wd: Workdir,
    pub env: Vec<(String, String)>,
}

pub async fn scene(targets: usize, sandbox_opts: SandboxOptions, env: &[(&str, &str)]) -> Scene {
    let db = TestDb::new().await;
    let store = db.store().await;
    fired_long_ago(&store).await;
    let sb = sandbox(sandbox_opts).await;
    let wd = Workdir::new(&[(
        "daemon.toml",
        &summary_job(targets, ONE_FIRE, ONE_FIRE_CATCH_UP),
    )]);
    let env = daemon_env(&db.url, &sb, env);
    Scene {
        _db: db,
        store,
        sb,
        wd,
        env,
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
    let child = once_run(sc.wd.path(), &sc.env);
    let pid = Pid::from_raw(child.id().expect("running") as i32);
    wait_for(Duration::from_secs(30), "calls in flight", || async {
        sc.sb.stats().requests >= 2
    })
    .await;
    kill(pid, sig).expect("signalling the once-run");
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
