//! The whole pipeline against the API's floor, in one process and one run: the
//! sandbox (limits lifted), a floor client (30 concurrent requests, bodies read and
//! discarded) and `linkledger run --once` of one job (the built binary, as a child
//! process, so that its peak RSS is its own), over TCP and over a Unix socket.
//!
//!     cargo bench --bench pipeline                           # the sizes below
//!     LINKLEDGER_BENCH_SCALE=0.1 cargo bench --bench pipeline # a tenth of each
//!     LINKLEDGER_BENCH_ONLY=history cargo bench --bench pipeline
//!     LINKLEDGER_BENCH_COUNT=1 cargo bench --bench pipeline   # statements per call too
//!     LINKLEDGER_BENCH_BIN=/path/to/linkledger cargo bench --bench pipeline  # another build
//!     LINKLEDGER_BENCH_SANDBOX=process cargo bench --bench pipeline  # stand-in out of process
//!     LINKLEDGER_BENCH_DLT=/path/to/python cargo bench --bench pipeline  # dlt beside it
//!
//! The stand-in for the API is the sandbox in this process by default (the floor then
//! pays no process boundary of its own); `LINKLEDGER_BENCH_SANDBOX=process` runs
//! `linkledger sandbox` as a process of its own instead, as tools are compared against
//! a stand-in server, and reads its counters over HTTP (`/sandbox/stats`, every 5 ms
//! instead of every millisecond).
//!
//! Work: summary × 2000 targets and monthly history since 2019 × 1000 domains at
//! latency 0, summary × 600 at 300 ms latency. Each once-run gets a scratch database
//! of its own (created next to `DATABASE_URL`, else in a throwaway cluster) so that
//! nothing is reused from an earlier run. The Unix socket is
//! `LINKLEDGER_BENCH_SOCKET` (default `/var/run/postgresql`), skipped when absent or
//! when the database is a throwaway cluster (which listens on a socket only).
//!
//! Printed per run: wall time, calls/s, rows/s, peak RSS, and the ratio to the floor's
//! wall time; for runs with latency, the share of the ceiling
//! min(max_per_minute/60, max_in_flight/latency) reached while calls run (from the
//! first paid request to the last request's answer: the sandbox's request count is
//! watched every millisecond; the floor's whole wall time counts), and the startup (spawn to first paid request: configuration, migrations
//! check, credentials check, plan, enqueue).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::Utc;
use futures::StreamExt;
use linkledger::ops::cluster::Scratch;
use linkledger::sandbox::{Sandbox, SandboxOptions};
use secrecy::ExposeSecret;

/// The floor client's concurrency: the account's `max_in_flight`.
const FLOOR_CONCURRENCY: usize = 30;
/// "Lifted": far above what any run here reaches.
const LIFTED_PER_MINUTE: u32 = 1_000_000;

/// The API's stand-in: the sandbox in this process, or `linkledger sandbox` as a
/// process of its own (`LINKLEDGER_BENCH_SANDBOX=process`).
enum StandIn {
    InProcess(Sandbox),
    Process {
        child: tokio::process::Child,
        base_url: String,
        http: reqwest::Client,
    },
}

/// The stand-in's counters a run reads.
#[derive(Clone, Copy)]
struct Counts {
    requests: u64,
    throttled: u64,
}

impl StandIn {
    async fn start(bin: &Path, options: &SandboxOptions, process: bool) -> anyhow::Result<StandIn> {
        if !process {
            return Ok(StandIn::InProcess(Sandbox::start(options.clone()).await?));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new(bin)
            .args(["sandbox", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--latency-ms", &options.latency.as_millis().to_string()])
            .args(["--max-per-minute", &options.max_per_minute.to_string()])
            .args(["--max-in-flight", &options.max_in_flight.to_string()])
            .args(["--balance", &options.balance.decimal().to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting linkledger sandbox")?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let stand_in = StandIn::Process {
            child,
            base_url: format!("http://127.0.0.1:{port}/v3"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while stand_in.stats().await.is_err() {
            if Instant::now() > deadline {
                bail!("linkledger sandbox did not answer on port {port} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(stand_in)
    }

    fn base_url(&self) -> String {
        match self {
            StandIn::InProcess(sb) => sb.base_url(),
            StandIn::Process { base_url, .. } => base_url.clone(),
        }
    }

    async fn stats(&self) -> anyhow::Result<Counts> {
        match self {
            StandIn::InProcess(sb) => {
                let s = sb.stats();
                Ok(Counts {
                    requests: s.requests,
                    throttled: s.throttled,
                })
            }
            StandIn::Process { base_url, http, .. } => {
                let url = format!("{}/sandbox/stats", base_url.trim_end_matches("/v3"));
                let s: serde_json::Value = http.get(url).send().await?.json().await?;
                let count = |k: &str| s[k].as_u64().context("the sandbox's stats");
                Ok(Counts {
                    requests: count("requests")?,
                    throttled: count("throttled")?,
                })
            }
        }
    }

    /// How often a run reads the counters while it runs.
    fn watch_every(&self) -> Duration {
        match self {
            StandIn::InProcess(_) => Duration::from_millis(1),
            StandIn::Process { .. } => Duration::from_millis(5),
        }
    }

    async fn stop(self) {
        match self {
            StandIn::InProcess(sb) => sb.stop().await,
            StandIn::Process { mut child, .. } => {
                let _ = child.kill().await;
            }
        }
    }
}

struct Work {
    name: &'static str,
    endpoint: &'static str,
    targets: usize,
    params: &'static str,
    latency: Duration,
    /// The account's per-minute cap, the sandbox's and linkledger's.
    per_minute: u32,
}

struct Measured {
    wall: Duration,
    calls: u64,
    rows: u64,
    /// Peak RSS in bytes (the child's own; `None` for the floor).
    peak_rss: Option<u64>,
    /// Spawn to first paid request.
    startup: Option<Duration>,
    /// Spawn to the last request the sandbox received (seen within a millisecond).
    last_request: Option<Duration>,
    /// Requests the sandbox received within 60 s of the first (runs that long).
    first_minute: Option<u64>,
    throttled: u64,
    /// Transactions committed in the run's database (`pg_stat_database.xact_commit`).
    commits: Option<u64>,
    /// Statements sent (counted from sqlx's statement log, `LINKLEDGER_BENCH_COUNT=1`).
    statements: Option<u64>,
    /// CPU time of the child (user + system, `wait4`'s rusage).
    cpu_self: Option<Duration>,
    /// CPU time of the PostgreSQL backends serving the run's database (user + system,
    /// `/proc/PID/stat`, sampled every 20 ms while they live).
    cpu_pg: Option<Duration>,
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let scale: f64 = std::env::var("LINKLEDGER_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let only = std::env::var("LINKLEDGER_BENCH_ONLY").ok();
    let sized = |n: usize| ((n as f64 * scale).round() as usize).max(1);
    let works = [
        Work {
            name: "summary",
            endpoint: "summary",
            targets: sized(2000),
            params: "",
            latency: Duration::ZERO,
            per_minute: LIFTED_PER_MINUTE,
        },
        Work {
            name: "history",
            endpoint: "history",
            targets: sized(1000),
            params: "params = { date_from = \"2019-01-01\" }",
            latency: Duration::ZERO,
            per_minute: LIFTED_PER_MINUTE,
        },
        Work {
            name: "summary-300ms",
            endpoint: "summary",
            targets: sized(600),
            params: "",
            latency: Duration::from_millis(300),
            per_minute: LIFTED_PER_MINUTE,
        },
        // Opt-in (`LINKLEDGER_BENCH_RATE=1`, or `LINKLEDGER_BENCH_ONLY=summary-rate`):
        // over a minute and a half whatever the scale.
        Work {
            name: "summary-rate",
            endpoint: "summary",
            targets: 3000,
            params: "",
            latency: Duration::from_millis(100),
            per_minute: 2000,
        },
    ];
    let rate = std::env::var("LINKLEDGER_BENCH_RATE").is_ok_and(|v| v == "1");
    let process = std::env::var("LINKLEDGER_BENCH_SANDBOX").is_ok_and(|v| v == "process");
    let socket = PathBuf::from(
        std::env::var("LINKLEDGER_BENCH_SOCKET").unwrap_or_else(|_| "/var/run/postgresql".into()),
    );
    let use_socket = std::env::var("DATABASE_URL").is_ok() && socket.exists();
    // `LINKLEDGER_BENCH_BIN` measures another build (an older one, to compare).
    let other_build = std::env::var_os("LINKLEDGER_BENCH_BIN").is_some();
    let bin = std::env::var_os("LINKLEDGER_BENCH_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_linkledger")),
        PathBuf::from,
    );
    println!(
        "pipeline bench: scale {scale}, {} cores, the stand-in {}, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if process {
            "out of process (linkledger sandbox)"
        } else {
            "in this process"
        },
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut lines = Vec::new();
    for work in works.iter().filter(|w| match only.as_deref() {
        Some(o) => w.name == o,
        None => w.name != "summary-rate" || rate,
    }) {
        let options = SandboxOptions {
            latency: work.latency,
            max_per_minute: work.per_minute,
            max_in_flight: FLOOR_CONCURRENCY,
            record_limit: 0,
            record_bytes: 0,
            balance: "1000000".parse().expect("a balance"),
            ..SandboxOptions::default()
        };
        let mut sb = StandIn::start(&bin, &options, process).await?;
        // Against a per-minute cap each run gets a sandbox of its own: the previous
        // run's requests of the last minute would count against the next.
        let rate_bound = work.per_minute != LIFTED_PER_MINUTE;
        let dir = tempfile::tempdir()?;
        let job = write_job(dir.path(), work)?;
        let tasks = tasks_of(&job)?;
        println!(
            "\n{}: {} calls of {} at latency {} ms",
            work.name,
            tasks.len(),
            work.endpoint,
            work.latency.as_millis()
        );
        // Against a per-minute cap the floor client would only be throttled: the
        // ceiling is the measure there.
        let floor = if work.per_minute == LIFTED_PER_MINUTE {
            let floor = floor(&sb, work.endpoint, &tasks).await?;
            report_line(
                &mut lines,
                work,
                "floor (30 concurrent)",
                &floor,
                Some(&floor),
            );
            Some(floor)
        } else {
            None
        };
        // Writes grouped (the default) and each call's writes alone
        // (`queue.group = false`), over TCP; grouped over the Unix socket. Another
        // build (`LINKLEDGER_BENCH_BIN`) runs with its own defaults.
        let mut runs: Vec<(&str, bool, Option<bool>)> = if other_build {
            vec![("linkledger, TCP", false, None)]
        } else {
            vec![
                ("linkledger, TCP, grouped", false, Some(true)),
                ("linkledger, TCP, alone", false, Some(false)),
            ]
        };
        // The rate-bound work takes a minute and a half a run: grouped over TCP
        // only, besides the two daemons.
        if work.per_minute != LIFTED_PER_MINUTE {
            runs.truncate(1);
        }
        if use_socket && work.per_minute == LIFTED_PER_MINUTE {
            runs.push((
                if other_build {
                    "linkledger, Unix socket"
                } else {
                    "linkledger, Unix, grouped"
                },
                true,
                (!other_build).then_some(true),
            ));
        }
        for (label, unix, group) in runs {
            if rate_bound {
                sb.stop().await;
                sb = StandIn::start(&bin, &options, process).await?;
            }
            let m = once_run(&bin, &sb, dir.path(), work, unix, &socket, group).await?;
            report_line(&mut lines, work, label, &m, floor.as_ref());
        }
        // A generic REST pipeline (dlt, `benches/compare/dlt_pipeline.py`) against the
        // same stand-in, for the ratio of both to one floor.
        if let Some(python) = std::env::var_os("LINKLEDGER_BENCH_DLT")
            && work.per_minute == LIFTED_PER_MINUTE
        {
            let m = dlt_run(Path::new(&python), &sb, dir.path(), work, &tasks).await?;
            report_line(&mut lines, work, "dlt 1.31, TCP", &m, floor.as_ref());
        }
        // At a ceiling, the account's limits shared by two daemons on one database.
        if !work.latency.is_zero() && !other_build {
            for (label, group) in [
                ("two daemons, grouped", true),
                ("two daemons, alone", false),
            ] {
                if rate_bound {
                    sb.stop().await;
                    sb = StandIn::start(&bin, &options, process).await?;
                }
                let m = daemons(&bin, &sb, dir.path(), work, &tasks, 2, group).await?;
                report_line(&mut lines, work, label, &m, floor.as_ref());
            }
        }
        sb.stop().await;
    }
    println!(
        "\n{:<14} {:<24} {:>8} {:>9} {:>11} {:>9} {:>7} {:>9} {:>8}",
        "work", "run", "wall", "calls/s", "rows/s", "peak RSS", "ratio", "ceiling", "startup"
    );
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

fn report_line(
    lines: &mut Vec<String>,
    work: &Work,
    label: &str,
    m: &Measured,
    floor: Option<&Measured>,
) {
    let secs = m.wall.as_secs_f64();
    let in_flight = FLOOR_CONCURRENCY as f64 / work.latency.as_secs_f64();
    let ceiling = if work.latency.is_zero() {
        "-".to_string()
    } else if (work.per_minute as f64 / 60.0) < in_flight {
        // Rate bound: the calls paid in the first minute from the first request,
        // against the per-minute cap.
        m.first_minute.map_or("-".into(), |n| {
            format!("{:.1}%/min", 100.0 * n as f64 / work.per_minute as f64)
        })
    } else {
        // In-flight bound: min(max_per_minute/60, max_in_flight/latency).
        let ceiling = in_flight.min(work.per_minute as f64 / 60.0);
        // While calls run: from the first request to the last one's answer (its
        // latency after it arrived), without the process's start and its close
        // after the last answer. The floor has neither: its whole wall time counts.
        let busy = match (m.startup, m.last_request) {
            (Some(first), Some(last)) => (last + work.latency).saturating_sub(first).as_secs_f64(),
            _ => secs,
        };
        format!("{:.1}%", 100.0 * m.calls as f64 / busy / ceiling)
    };
    let line = format!(
        "{:<14} {:<24} {:>7.2}s {:>9.1} {:>11.0} {:>9} {:>7} {:>9} {:>8}",
        work.name,
        label,
        secs,
        m.calls as f64 / secs,
        m.rows as f64 / secs,
        m.peak_rss
            .map_or("-".into(), |b| format!("{} MB", b / (1 << 20))),
        floor.map_or("-".into(), |f| format!(
            "{:.2}x",
            secs / f.wall.as_secs_f64()
        )),
        ceiling,
        m.startup
            .map_or("-".into(), |s| format!("{} ms", s.as_millis())),
    );
    let mut notes = Vec::new();
    if let Some(c) = m.commits {
        notes.push(format!(
            "{:.2} commits/call",
            c as f64 / m.calls.max(1) as f64
        ));
    }
    if let Some(s) = m.statements {
        notes.push(format!(
            "{:.2} statements/call",
            s as f64 / m.calls.max(1) as f64
        ));
    }
    let per_call = |d: Duration| d.as_secs_f64() * 1000.0 / m.calls.max(1) as f64;
    if let Some(cpu) = m.cpu_self {
        let who = if label.starts_with("dlt") {
            "dlt"
        } else {
            "linkledger"
        };
        notes.push(format!("CPU/call: {who} {:.2} ms", per_call(cpu)));
    }
    if let Some(cpu) = m.cpu_pg {
        notes.push(format!("PostgreSQL {:.2} ms", per_call(cpu)));
    }
    if m.throttled > 0 {
        notes.push(format!("{} throttled by the sandbox", m.throttled));
    }
    let throttled = if notes.is_empty() {
        String::new()
    } else {
        format!("  ({})", notes.join(", "))
    };
    println!("  {line}{throttled}");
    lines.push(format!("{line}{throttled}"));
}

/// One job of `work.targets` targets, one collection.
fn write_job(dir: &Path, work: &Work) -> anyhow::Result<PathBuf> {
    let jobs = dir.join("jobs");
    std::fs::create_dir_all(&jobs)?;
    let targets: Vec<String> = (0..work.targets)
        .map(|i| format!("\"bench-{i:05}.example.com\""))
        .collect();
    let path = jobs.join("bench.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"bench\"\ntargets = [{}]\n\n[[collect]]\nendpoint = \"{}\"\nschedule = \"@daily\"\n{}\n",
            targets.join(", "),
            work.endpoint,
            work.params
        ),
    )?;
    Ok(path)
}

/// The tasks the once-run will send (a fresh database holds nothing to narrow them).
fn tasks_of(job: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let today = Utc::now().date_naive();
    let job = linkledger::jobs::load_file(job, today)
        .map_err(|p| anyhow::anyhow!("the bench's job file: {p:?}"))?;
    Ok(linkledger::plan::plan_job(&job, today)
        .into_iter()
        .map(|c| c.task)
        .collect())
}

/// The floor: the same requests, 30 at a time, each body read and discarded.
async fn floor(
    sb: &StandIn,
    endpoint: &str,
    tasks: &[serde_json::Value],
) -> anyhow::Result<Measured> {
    // reqwest is built without a default crypto provider (plain HTTP here).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(FLOOR_CONCURRENCY)
        .build()?;
    let url = format!("{}/backlinks/{endpoint}/live", sb.base_url());
    let before = sb.stats().await?.throttled;
    let t = Instant::now();
    let mut answers = futures::stream::iter(tasks.iter())
        .map(|task| {
            let req = client
                .post(&url)
                .basic_auth("sandbox", Some("sandbox"))
                .json(&[task]);
            async move {
                let resp = req.send().await?;
                let status = resp.status();
                let body = resp.bytes().await?;
                anyhow::Ok((status, body.len()))
            }
        })
        .buffer_unordered(FLOOR_CONCURRENCY);
    let mut calls = 0;
    while let Some(answer) = answers.next().await {
        let (status, _len) = answer?;
        if !status.is_success() {
            bail!("the floor client got HTTP {status}");
        }
        calls += 1;
    }
    Ok(Measured {
        wall: t.elapsed(),
        calls,
        rows: 0,
        peak_rss: None,
        startup: None,
        last_request: None,
        first_minute: None,
        throttled: sb.stats().await?.throttled - before,
        commits: None,
        statements: None,
        cpu_self: None,
        cpu_pg: None,
    })
}

/// `linkledger run --once` as a new user runs it, into a scratch database of its own.
async fn once_run(
    bin: &Path,
    sb: &StandIn,
    dir: &Path,
    work: &Work,
    unix: bool,
    socket: &Path,
    group: Option<bool>,
) -> anyhow::Result<Measured> {
    let db = Scratch::create(&format!(
        "linkledger_pipeline_{}_{}_{}",
        work.name.replace('-', "_"),
        if unix { "unix" } else { "tcp" },
        match group {
            Some(true) => "grouped",
            Some(false) => "alone",
            None => "default",
        }
    ))
    .await?;
    let mut url = url::Url::parse(db.url().expose_secret())?;
    if unix {
        // A `host` that is a directory is the socket's (sqlx, like libpq).
        url.query_pairs_mut()
            .append_pair("host", &socket.to_string_lossy());
    }
    // Migrations are applied before the clock starts (a user's database has them), by
    // the binary measured.
    migrate(bin, dir, url.as_str())?;
    let name = url.path().trim_start_matches('/').to_string();
    let commits_before = commits_of(&name).await?;
    let result = spawn_once(bin, sb, dir, work, url.as_str(), &name, group).await;
    let commits_after = commits_of(&name).await?;
    db.drop_database().await?;
    let mut m = result?;
    m.commits = commits_after
        .zip(commits_before)
        .map(|(after, before)| after - before);
    Ok(m)
}

/// Transactions committed in database `name` so far, once no session is left in it.
async fn commits_of(name: &str) -> anyhow::Result<Option<u64>> {
    use sqlx::Connection as _;
    let Ok(admin) = std::env::var("DATABASE_URL") else {
        return Ok(None);
    };
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sessions: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
                .bind(name)
                .fetch_one(&mut conn)
                .await?;
        if sessions == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut conn)
        .await?;
    let commits: i64 =
        sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    Ok(Some(commits as u64))
}

async fn spawn_once(
    bin: &Path,
    sb: &StandIn,
    dir: &Path,
    work: &Work,
    url: &str,
    db_name: &str,
    group: Option<bool>,
) -> anyhow::Result<Measured> {
    let before = sb.stats().await?;
    let mut pg_cpu = PgCpu::new(db_name);
    let t = Instant::now();
    let mut command = std::process::Command::new(bin);
    command.env_clear();
    if let Some(group) = group {
        command.env("LINKLEDGER_QUEUE__GROUP", group.to_string());
    }
    let child = command
        .args(["run", "--once"])
        .current_dir(dir)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", url)
        .env("DATAFORSEO_LOGIN", "sandbox")
        .env("DATAFORSEO_PASSWORD", "sandbox")
        .env("LINKLEDGER_API__BASE_URL", sb.base_url())
        .env(
            "LINKLEDGER_API__MAX_PER_MINUTE",
            work.per_minute.to_string(),
        )
        .env("LINKLEDGER_JOBS__DIR", dir.join("jobs"))
        .env(
            "RUST_LOG",
            if counting() {
                "warn,sqlx::query=debug"
            } else {
                "warn"
            },
        )
        .env("LINKLEDGER_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting linkledger run --once")?;
    let (waited, watch, wall) = watch_child(child, sb, &mut pg_cpu, t, before.requests).await?;
    let (startup, last_request) = (watch.first, watch.last);
    let (status, peak_rss, cpu_self, stdout, stderr) = waited;
    if !status.success() {
        bail!(
            "run --once of {} failed ({status}):\n{stdout}\n{stderr}",
            work.name
        );
    }
    let after = sb.stats().await?;
    Ok(Measured {
        wall,
        calls: after.requests - before.requests,
        rows: rows_of(&stdout)?,
        peak_rss: Some(peak_rss),
        startup,
        last_request,
        first_minute: watch.first_minute,
        throttled: after.throttled - before.throttled,
        commits: None,
        statements: counting().then(|| {
            stderr
                .lines()
                .filter(|l| l.contains("\"rows_returned\""))
                .count() as u64
        }),
        cpu_self: Some(cpu_self),
        cpu_pg: pg_cpu.total(),
    })
}

/// `benches/compare/dlt_pipeline.py` with `python` (dlt installed), the same tasks
/// into a scratch database of its own, measured as a once-run is.
async fn dlt_run(
    python: &Path,
    sb: &StandIn,
    dir: &Path,
    work: &Work,
    tasks: &[serde_json::Value],
) -> anyhow::Result<Measured> {
    let db = Scratch::create(&format!(
        "linkledger_pipeline_{}_dlt",
        work.name.replace('-', "_")
    ))
    .await?;
    let url = db.url().expose_secret().to_string();
    let name = url::Url::parse(&url)?
        .path()
        .trim_start_matches('/')
        .to_string();
    let tasks_path = dir.join("dlt-tasks.json");
    std::fs::write(&tasks_path, serde_json::to_vec(tasks)?)?;
    let commits_before = commits_of(&name).await?;
    let before = sb.stats().await?;
    let mut pg_cpu = PgCpu::new(&name);
    let t = Instant::now();
    let mut command = std::process::Command::new(python);
    // dlt insists on a password; a server that trusts local connections ignores it.
    if url::Url::parse(&url)?.password().is_none() {
        command.env("DESTINATION__POSTGRES__CREDENTIALS__PASSWORD", "unused");
    }
    let child = command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/compare/dlt_pipeline.py"
        ))
        .args([work.endpoint, &tasks_path.to_string_lossy()])
        .current_dir(dir)
        .env("LINKLEDGER_BENCH_BASE_URL", sb.base_url())
        .env("DESTINATION__POSTGRES__CREDENTIALS", &url)
        .env("DLT_DATA_DIR", dir.join("dlt-data"))
        .env("RUNTIME__LOG_LEVEL", "WARNING")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the dlt pipeline")?;
    let (waited, watch, wall) = watch_child(child, sb, &mut pg_cpu, t, before.requests).await?;
    let (status, peak_rss, cpu_self, stdout, stderr) = waited;
    let commits_after = commits_of(&name).await?;
    db.drop_database().await?;
    if !status.success() {
        bail!(
            "the dlt pipeline of {} failed ({status}):\n{stdout}\n{stderr}",
            work.name
        );
    }
    let rows: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .with_context(|| format!("the dlt pipeline's output: {stdout}"))?;
    let after = sb.stats().await?;
    Ok(Measured {
        wall,
        calls: after.requests - before.requests,
        rows: rows["rows"].as_u64().unwrap_or(0),
        peak_rss: Some(peak_rss),
        startup: watch.first,
        last_request: watch.last,
        first_minute: watch.first_minute,
        throttled: after.throttled - before.throttled,
        commits: commits_after
            .zip(commits_before)
            .map(|(after, before)| after - before),
        statements: None,
        cpu_self: Some(cpu_self),
        cpu_pg: pg_cpu.total(),
    })
}

/// What [`wait_with_rusage`] reads of a child: its exit status, peak RSS, CPU time,
/// stdout and stderr.
type Waited = (std::process::ExitStatus, u64, Duration, String, String);

/// Waits for `child`, started at `t`, while watching the stand-in's request count
/// (from `requests_before`; the first paid request marks the end of startup, the
/// stand-in counts POSTs only) and sampling the database's backends' CPU. Returns what
/// the child left, the watch, and the wall time from `t` to its exit.
async fn watch_child(
    child: std::process::Child,
    sb: &StandIn,
    pg_cpu: &mut PgCpu,
    t: Instant,
    requests_before: u64,
) -> anyhow::Result<(Waited, Watch, Duration)> {
    let wait = tokio::task::spawn_blocking(move || wait_with_rusage(child));
    tokio::pin!(wait);
    let mut watch = Watch::new(requests_before);
    let mut sampled = Instant::now();
    let waited = loop {
        tokio::select! {
            r = &mut wait => break r??,
            _ = tokio::time::sleep(sb.watch_every()) => {
                if sampled.elapsed() >= Duration::from_millis(20) {
                    pg_cpu.sample();
                    sampled = Instant::now();
                }
                watch.see(sb.stats().await?.requests, t.elapsed());
            }
        }
    };
    let wall = t.elapsed();
    pg_cpu.sample();
    Ok((waited, watch, wall))
}

/// Whether statements are counted (sqlx logs each one; slower).
fn counting() -> bool {
    std::env::var("LINKLEDGER_BENCH_COUNT").is_ok_and(|v| v == "1")
}

/// Waits for the child and reads its own peak RSS (`wait4`'s `ru_maxrss`).
fn wait_with_rusage(mut child: std::process::Child) -> anyhow::Result<Waited> {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    out.read_to_string(&mut stdout)?;
    stderr.push_str(&reader.join().unwrap_or_default());
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 writes it for our own child.
    let mut usage: nix::libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as i32;
    let r = unsafe { nix::libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let tv = |t: nix::libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    // ru_maxrss is in kilobytes on Linux.
    Ok((
        std::process::ExitStatus::from_raw(status),
        usage.ru_maxrss as u64 * 1024,
        tv(usage.ru_utime) + tv(usage.ru_stime),
        stdout,
        stderr,
    ))
}

/// The rows the once-run says it wrote (its summary line: `..., N rows, cost ...`).
fn rows_of(stdout: &str) -> anyhow::Result<u64> {
    for line in stdout.lines().rev() {
        let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        if let Some(i) = words.iter().position(|w| *w == "rows" || *w == "row")
            && i > 0
            && let Ok(n) = words[i - 1].parse()
        {
            return Ok(n);
        }
    }
    bail!("no row count in the once-run's output:\n{stdout}")
}

/// The CPU time of the PostgreSQL backends of one database (a local server): each
/// backend's `utime + stime` from `/proc/PID/stat`, its last sample kept once it
/// exits (so up to one sampling interval of a backend's last work is missed). `None`
/// when no backend was seen (a server on another host).
struct PgCpu {
    /// `postgres: ... <user> <database> ...`, as a backend names itself.
    db: String,
    ticks: std::collections::HashMap<i32, u64>,
}

impl PgCpu {
    fn new(db: &str) -> PgCpu {
        PgCpu {
            db: format!(" {db} "),
            ticks: Default::default(),
        }
    }

    fn sample(&mut self) {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let known = self.ticks.contains_key(&pid);
            if !known {
                let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
                    continue;
                };
                let cmd = String::from_utf8_lossy(&cmd);
                if !(cmd.starts_with("postgres:") && cmd.contains(&self.db)) {
                    continue;
                }
            }
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // After the command's closing parenthesis: state is field 3, utime 14,
            // stime 15.
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let (Some(u), Some(s)) = (fields.get(11), fields.get(12)) else {
                continue;
            };
            let ticks = u.parse::<u64>().unwrap_or(0) + s.parse::<u64>().unwrap_or(0);
            let seen = self.ticks.entry(pid).or_insert(0);
            *seen = (*seen).max(ticks);
        }
    }

    fn total(&self) -> Option<Duration> {
        if self.ticks.is_empty() {
            return None;
        }
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) }.max(1) as f64;
        Some(Duration::from_secs_f64(
            self.ticks.values().sum::<u64>() as f64 / hz,
        ))
    }
}

/// Applies the migrations with the binary measured.
fn migrate(bin: &Path, dir: &Path, url: &str) -> anyhow::Result<()> {
    let migrated = std::process::Command::new(bin)
        .arg("migrate")
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .output()
        .context("linkledger migrate")?;
    if !migrated.status.success() {
        bail!(
            "linkledger migrate failed: {}",
            String::from_utf8_lossy(&migrated.stderr)
        );
    }
    Ok(())
}

/// What the sandbox's request count shows over a run, seen every millisecond.
struct Watch {
    base: u64,
    seen: u64,
    /// When the first and the last request came (from the spawn).
    first: Option<Duration>,
    last: Option<Duration>,
    /// Requests within 60 s of the first.
    first_minute: Option<u64>,
}

impl Watch {
    fn new(base: u64) -> Watch {
        Watch {
            base,
            seen: base,
            first: None,
            last: None,
            first_minute: None,
        }
    }

    fn see(&mut self, requests: u64, at: Duration) {
        if let Some(first) = self.first
            && self.first_minute.is_none()
            && at >= first + Duration::from_secs(60)
        {
            self.first_minute = Some(self.seen - self.base);
        }
        if requests > self.seen {
            self.seen = requests;
            self.last = Some(at);
            self.first.get_or_insert(at);
        }
    }
}

/// `n` daemons (`linkledger run`, writes grouped or alone) on one scratch database, working off
/// one scheduled run of `tasks` enqueued before they start, and stopped (SIGTERM) once
/// none of it is pending: the account's limits shared through the database. The wall
/// time is the spawn to the last item done; CPU is the daemons' together.
async fn daemons(
    bin: &Path,
    sb: &StandIn,
    dir: &Path,
    work: &Work,
    tasks: &[serde_json::Value],
    n: usize,
    group: bool,
) -> anyhow::Result<Measured> {
    use linkledger::store::{NewWork, RunKind, Store};
    let db = Scratch::create(&format!(
        "linkledger_pipeline_{}_daemons_{}",
        work.name.replace('-', "_"),
        if group { "grouped" } else { "alone" }
    ))
    .await?;
    let url = db.url().expose_secret().to_string();
    let name = url::Url::parse(&url)?
        .path()
        .trim_start_matches('/')
        .to_string();
    migrate(bin, dir, &url)?;
    let store = Store::connect(db.url(), 2).await?;
    let items: Vec<NewWork> = tasks
        .iter()
        .map(|task| NewWork {
            job: "bench".into(),
            collection: work.endpoint.into(),
            endpoint: work.endpoint.into(),
            targets: vec![task["target"].as_str().unwrap_or_default().to_string()],
            task: task.clone(),
            estimated_rows: 1,
            settle: None,
            paging: None,
        })
        .collect();
    let run = store
        .start_run_with_work("bench", RunKind::Scheduled, 3, &items)
        .await?;
    // The daemons' job fires on 1 January only: they work off the run enqueued here.
    let jobs = dir.join("daemon-jobs");
    std::fs::create_dir_all(&jobs)?;
    std::fs::write(
        jobs.join("bench.toml"),
        format!(
            "name = \"bench\"\ntargets = [\"bench.example.com\"]\n\n[[collect]]\nendpoint = \"{}\"\nschedule = \"0 0 1 1 *\"\n",
            work.endpoint
        ),
    )?;
    let commits_before = commits_of(&name).await?;
    let before = sb.stats().await?;
    let mut pg_cpu = PgCpu::new(&name);
    let t = Instant::now();
    let mut waits = Vec::new();
    let mut pids = Vec::new();
    for _ in 0..n {
        let child = std::process::Command::new(bin)
            .arg("run")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &url)
            .env("DATAFORSEO_LOGIN", "sandbox")
            .env("DATAFORSEO_PASSWORD", "sandbox")
            .env("LINKLEDGER_API__BASE_URL", sb.base_url())
            .env(
                "LINKLEDGER_API__MAX_PER_MINUTE",
                work.per_minute.to_string(),
            )
            .env("LINKLEDGER_JOBS__DIR", &jobs)
            .env("LINKLEDGER_SERVER__LISTEN", "127.0.0.1:0")
            .env("LINKLEDGER_QUEUE__POLL", "20ms")
            .env("LINKLEDGER_QUEUE__GROUP", group.to_string())
            .env("RUST_LOG", "warn")
            .env("LINKLEDGER_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting linkledger run")?;
        pids.push(child.id() as i32);
        waits.push(tokio::task::spawn_blocking(move || wait_with_rusage(child)));
    }
    let mut watch = Watch::new(before.requests);
    let mut sampled = Instant::now();
    let mut asked = Instant::now();
    let wall = loop {
        tokio::time::sleep(sb.watch_every()).await;
        watch.see(sb.stats().await?.requests, t.elapsed());
        if sampled.elapsed() >= Duration::from_millis(20) {
            pg_cpu.sample();
            sampled = Instant::now();
        }
        if asked.elapsed() >= Duration::from_millis(50) {
            asked = Instant::now();
            if store.pending_work(&[run]).await? == 0 {
                break t.elapsed();
            }
        }
        if t.elapsed() > Duration::from_secs(600) {
            bail!("the daemons did not finish the run within 10 minutes");
        }
    };
    pg_cpu.sample();
    for pid in &pids {
        // SAFETY: our own children, still running (they exit only on a signal).
        unsafe { nix::libc::kill(*pid, nix::libc::SIGTERM) };
    }
    let mut cpu_self = Duration::ZERO;
    for (i, wait) in waits.into_iter().enumerate() {
        let (status, _rss, cpu, _out, err) = wait.await??;
        // What each daemon logged (warnings and worse), to read after a slow run.
        if let Ok(dump) = std::env::var("LINKLEDGER_BENCH_DAEMON_LOGS") {
            let _ = std::fs::write(format!("{dump}/{name}-{i}.log"), err.as_bytes());
        }
        if !status.success() {
            bail!("a daemon failed ({status}):\n{err}");
        }
        cpu_self += cpu;
    }
    let rows = store.run_progress(&[run]).await?.rows as u64;
    store.pool().close().await;
    let commits_after = commits_of(&name).await?;
    db.drop_database().await?;
    let after = sb.stats().await?;
    Ok(Measured {
        wall,
        calls: after.requests - before.requests,
        rows,
        peak_rss: None,
        startup: watch.first,
        last_request: watch.last,
        first_minute: watch.first_minute,
        throttled: after.throttled - before.throttled,
        commits: commits_after
            .zip(commits_before)
            .map(|(after, before)| after - before),
        statements: None,
        cpu_self: Some(cpu_self),
        cpu_pg: pg_cpu.total(),
    })
}
