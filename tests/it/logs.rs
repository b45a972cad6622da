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
