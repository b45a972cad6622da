//! What the daemon tells its log: each run's end with its figures, in plain text
//! when the log is not a terminal, and as numbers in JSON lines.

use std::time::Duration;

use linkledger::sandbox::SandboxOptions;

use crate::common::*;
use crate::harness::*;

#[tokio::test]
async fn the_daemons_log_says_how_each_run_ended_without_colour_codes() {
    let sc = scene(3, SandboxOptions::default(), &[]).await;
    let d = sc
        .run_daemon_until_log(Duration::from_secs(30), "run finished: ")
        .await;
    let log = d.log();
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log that is no terminal: {log:?}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("run finished: "))
        .expect("a run-finished line");
    let rows: i64 = sqlx::query_scalar(
        "SELECT rows_written FROM linkledger.runs WHERE kind = 'scheduled' AND status = 'succeeded' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(sc.store.pool())
    .await
    .unwrap();
    assert!(rows > 0);
    // The line `run --once` prints for a job, for the run of one collection.
    assert!(
        line.contains(&format!(
            "run finished: daemon/summary: succeeded (3 calls, 0 failed, {rows} rows, cost $0.06009)"
        )),
        "{line}"
    );
    assert!(line.contains(" INFO "), "{line}");
}

#[tokio::test]
async fn in_json_logs_a_runs_figures_are_numbers() {
    let sc = scene(
        3,
        SandboxOptions::default(),
        &[("LINKLEDGER_LOG_FORMAT", "json")],
    )
    .await;
    let d = sc
        .run_daemon_until_log(Duration::from_secs(30), "run finished: ")
        .await;
    let log = d.log();
    let finished: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("run finished: "))
        })
        .unwrap_or_else(|| panic!("no JSON run-finished line: {log}"));
    let fields = &finished["fields"];
    assert_eq!(fields["cost_usd"], serde_json::json!(0.06009), "{finished}");
    assert_eq!(fields["calls"], serde_json::json!(3), "{finished}");
    // Each end of the run's calls is a field of its own, in the words of its line.
    assert_eq!(fields["succeeded"], serde_json::json!(3), "{finished}");
    assert_eq!(fields["failed"], serde_json::json!(0), "{finished}");
    assert_eq!(fields["cancelled"], serde_json::json!(0), "{finished}");
    assert_eq!(fields["abandoned"], serde_json::json!(0), "{finished}");
    assert!(fields["rows"].as_i64().is_some_and(|r| r > 0), "{finished}");
    assert_eq!(fields["status"], "succeeded", "{finished}");
}

#[tokio::test]
async fn an_unknown_log_format_is_a_configuration_error() {
    let wd = Workdir::new(&[]);
    let out = linkledger(
        wd.path(),
        &[("LINKLEDGER_LOG_FORMAT".to_string(), "xml".to_string())],
        &["jobs", "check"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("LINKLEDGER_LOG_FORMAT: 'xml' is not a log format"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn on_a_terminal_log_lines_and_the_progress_bar_never_overwrite_each_other() {
    // A terminal (a pseudo-terminal by `script`), a bar that redraws while calls are
    // answered slowly, and a log line for each answer.
    let db = TestDb::new().await;
    let sb = sandbox(with_latency(Duration::from_millis(100))).await;
    let targets: Vec<String> = (0..12).map(|i| format!("\"t{i}.example.com\"")).collect();
    let wd = Workdir::new(&[(
        "many.toml",
        &format!(
            "name = \"many\"\ntargets = [{}]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
            targets.join(", ")
        ),
    )]);
    let env = with_env(
        env_for(&db, &sb),
        &[
            ("NO_COLOR", "1"),
            ("TERM", "xterm"),
            ("LINKLEDGER_LOG", "linkledger=debug"),
            ("LINKLEDGER_API__MAX_IN_FLIGHT", "2"),
        ],
    );
    let bin = env!("CARGO_BIN_EXE_linkledger");
    let mut cmd = tokio::process::Command::new("script");
    cmd.args(["-qec", &format!("{bin} run --once"), "/dev/null"])
        .current_dir(wd.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the run ends")
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    // The bar was drawn.
    assert!(text.contains("/12 calls"), "{text:?}");
    // Every log line starts a line of its own: at the start of the output, after a
    // newline, or after the bar was cleared (`\r` + erase line), never after the bar's
    // text.
    let mut lines = 0;
    for level in ["Z DEBUG ", "Z  INFO ", "Z  WARN ", "Z ERROR "] {
        for (at, _) in text.match_indices(level) {
            // The timestamp `2026-12-07T12:25:36.960614Z` ends at `at`.
            let Some(start) = at.checked_sub(26) else {
                continue;
            };
            let stamp = &text.as_bytes()[start..at];
            if !(stamp[..4].iter().all(u8::is_ascii_digit) && stamp[10] == b'T') {
                continue;
            }
            let before = &text[..start];
            assert!(
                before.is_empty() || before.ends_with('\n') || before.ends_with("\r\u{1b}[2K"),
                "a log line written over the bar: {:?}",
                before
                    .chars()
                    .rev()
                    .take(120)
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect::<String>()
            );
            lines += 1;
        }
    }
    assert!(lines > 12, "{lines} log lines: {text:?}");
}

#[tokio::test]
async fn a_once_run_against_the_sandbox_says_so_in_its_totals_and_partitions_made_are_not_news() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    // History since 2019 writes to months that have no partition yet.
    let wd = Workdir::new(&[(
        "h.toml",
        "name = \"h\"\ntargets = [\"a.example.com\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@daily\"\nparams = { date_from = \"2019-01-01\" }\n",
    )]);
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let totals = stdout(&out).lines().last().unwrap_or_default().to_string();
    assert!(
        totals.starts_with("1 job, 1 call") && totals.contains("(sandbox: nothing was charged"),
        "{totals}"
    );
    let partitions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'linkledger.link_breakdowns'::regclass",
    )
    .fetch_one(db.store().await.pool())
    .await
    .unwrap();
    assert!(
        partitions > 12,
        "{partitions} partitions: the run made some"
    );
    assert!(
        !stderr(&out).contains("created month partitions"),
        "{}",
        stderr(&out)
    );
}
