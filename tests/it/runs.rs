//! `linkledger runs`, `runs show` and `cancel` through the binary, against daemons
//! that a refusal stopped and daemons with calls in flight.

use std::time::Duration;

use linkledger::sandbox::SandboxOptions;
use nix::sys::signal::Signal;

use crate::common::*;
use crate::harness::*;

/// A job named `name` with one summary collection over `targets` that fires once at
/// start (its last fire was long ago).
fn one_fire_job(name: &str, targets: &[&str]) -> String {
    let list: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "name = \"{name}\"\ntargets = [{}]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"{ONE_FIRE}\"\n{ONE_FIRE_CATCH_UP}\n",
        list.join(", ")
    )
}

async fn run_of(store: &linkledger::store::Store, job: &str) -> (i64, String) {
    sqlx::query_as(
        "SELECT id, status FROM linkledger.runs WHERE job = $1 AND kind = 'scheduled'
         AND finished_at IS DISTINCT FROM '2000-01-01T00:00:00Z' ORDER BY id DESC LIMIT 1",
    )
    .bind(job)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn cancelling_the_work_a_40210_left_lets_a_new_daemon_run_the_other_jobs() {
    // One call at a time: the refused call (enqueued first) stops the daemon before
    // any of `fine`'s calls is made.
    let sc = scene_with_jobs(
        &[
            (
                "broke.toml",
                &one_fire_job("broke", &["quirk-no-funds.example.com"]),
            ),
            (
                "fine.toml",
                &one_fire_job("fine", &["a.example.com", "b.example.com", "c.example.com"]),
            ),
        ],
        SandboxOptions::default(),
        &[
            ("LINKLEDGER_QUEUE__WORKERS", "1"),
            ("LINKLEDGER_API__MAX_IN_FLIGHT", "1"),
        ],
    )
    .await;
    let (store, sb, wd, env) = (sc.store.clone(), &sc.sb, &sc.wd, sc.env.clone());
    let long_ago = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
        .unwrap()
        .into();
    seed_fire(&store, "broke", "summary", long_ago).await;
    seed_fire(&store, "fine", "summary", long_ago).await;
    let d = sc
        .run_daemon_until_log(Duration::from_secs(30), "holding the queued work of")
        .await;
    let (broke, _) = run_of(&store, "broke").await;
    let (fine, status) = run_of(&store, "fine").await;
    assert_eq!(status, "running");
    let log = d.log();
    assert!(
        log.contains(&format!("run {broke} (broke, 1 call)"))
            && log.contains(&format!("run {fine} (fine, 3 calls)"))
            && log.contains("40210")
            && log.contains("linkledger cancel"),
        "{log}"
    );
    assert_eq!(sb.stats().requests, 1, "only the refused call was made");

    // What is left, as `runs` and `runs show` tell it.
    let out = linkledger(wd.path(), &env, &["runs", "--status", "running"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    let row = |id: i64| {
        listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
            .unwrap_or_else(|| panic!("run {id} not listed: {listed}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row(broke)[1..3], ["scheduled", "broke/summary"], "{listed}");
    assert_eq!(row(fine).last(), Some(&"3"), "3 calls left: {listed}");
    assert_eq!(row(broke).last(), Some(&"1"), "1 call left: {listed}");
    let out = linkledger(wd.path(), &env, &["runs", "show", &broke.to_string()]).await;
    let shown = stdout(&out);
    assert!(
        shown.contains("summary [quirk-no-funds.example.com]: queued")
            && shown.contains("40210 Insufficient funds"),
        "{shown}"
    );
    let out = linkledger(wd.path(), &env, &["runs", "show", &fine.to_string()]).await;
    assert!(
        stdout(&out).contains("summary [a.example.com]: queued, due now"),
        "{}",
        stdout(&out)
    );

    // An unknown run is a usage error and changes nothing.
    let out = linkledger(wd.path(), &env, &["cancel", &broke.to_string(), "999999"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no run 999999"), "{}", stderr(&out));
    assert_eq!(run_of(&store, "broke").await.1, "running");

    let out = linkledger(wd.path(), &env, &["cancel", "--job", "broke"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("run {broke} (broke): 1 queued call dropped; the run is cancelled")
    );
    assert_eq!(run_of(&store, "broke").await.1, "cancelled");

    // A new daemon runs the other job's calls, and nothing of the cancelled run.
    let mut d = sc.start_daemon().await;
    wait_for(Duration::from_secs(30), "fine's run to succeed", || async {
        run_of(&store, "fine").await.1 == "succeeded"
    })
    .await;
    d.stop(Duration::from_secs(15)).await;
    assert!(!d.log().contains("40210"), "{}", d.log());
    assert_eq!(sb.stats().requests, 4, "{:?}", sb.stats());
    let out = linkledger(
        wd.path(),
        &env,
        &["runs", "--job", "broke", "--status", "cancelled"],
    )
    .await;
    assert!(
        stdout(&out).contains(&format!("{broke}  scheduled  broke/summary")),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn cancel_drops_queued_calls_lets_calls_in_flight_finish_and_books_nothing() {
    let sc = slow_scene(10, Duration::from_millis(1500), 2, &[]).await;
    let store = sc.store.clone();
    let mut d = sc.start_daemon().await;
    wait_for_count(
        &store,
        Duration::from_secs(30),
        "calls in flight",
        "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'sent' AND endpoint = 'summary'",
        |n| n >= 1,
    )
    .await;
    let (run, _) = run_of(&store, "daemon").await;
    let out = linkledger(sc.wd.path(), &sc.env, &["cancel", &run.to_string()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("queued calls dropped"), "{said}");
    wait_for(Duration::from_secs(30), "the run to close", || async {
        run_of(&store, "daemon").await.1 != "running"
    })
    .await;
    d.stop(Duration::from_secs(15)).await;
    assert_eq!(run_of(&store, "daemon").await.1, "cancelled");

    let done = count(
        &store,
        "SELECT count(*) FROM linkledger.work WHERE state = 'succeeded'",
    )
    .await;
    let dropped = count(
        &store,
        "SELECT count(*) FROM linkledger.work WHERE state = 'cancelled'",
    )
    .await;
    assert!(done >= 1, "the calls in flight finished");
    assert_eq!(done + dropped, 10);
    assert!(
        said.contains(&format!("{dropped} queued calls dropped")),
        "{said}"
    );
    // The run's line counts the dropped calls as cancelled before sending, not failed.
    let log = d.log();
    let finished = log
        .lines()
        .find(|l| l.contains("run finished: "))
        .unwrap_or_else(|| panic!("no run-finished line: {log}"));
    assert!(
        finished.contains(&format!(
            "run finished: daemon/summary: cancelled ({}, 0 failed, ",
            linkledger::words::count(done, "call")
        )) && finished.contains(&format!("; {dropped} cancelled before sending)")),
        "{finished}"
    );
    // Every request made was one in flight when the run was cancelled, and answered.
    assert_eq!(sc.sb.stats().requests as i64, done, "{:?}", sc.sb.stats());
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'summary' AND outcome <> 'ok'"
        )
        .await,
        0
    );
    assert_eq!(
        ledger_total(&store).await,
        sc.sb.stats().charged_usd.decimal()
    );
}

#[tokio::test]
async fn a_once_run_counts_its_jobs_calls_in_words_without_the_free_credentials_check() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[
        ("one.toml", &one_fire_job("one", &["a.example.com"])),
        (
            "refused.toml",
            &one_fire_job("refused", &["quirk-no-funds.example.com"]),
        ),
    ]);
    let env = env_for(&db, &sb);
    let out = linkledger(wd.path(), &env, &["run", "--once", "--job", "one"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("one: succeeded (1 call, 0 failed, "),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("1 job, 1 call, 0 failed, "),
        "{}",
        stdout(&out)
    );
    let (calls, check_run): (i64, Option<i64>) = sqlx::query_as(
        "SELECT r.calls, (SELECT c.run_id FROM linkledger.api_calls c
                          WHERE c.endpoint = 'appendix/user_data' ORDER BY c.id DESC LIMIT 1)
         FROM linkledger.runs r WHERE r.job = 'one'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(calls, 1, "the job's one call");
    assert_eq!(check_run, None, "the credentials check belongs to no run");

    // A failed call is named once: its collection is named after its endpoint.
    let out = linkledger(wd.path(), &env, &["run", "--once", "--job", "refused"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("  refused: summary [quirk-no-funds.example.com]: the API refused"),
        "{err}"
    );
    assert!(!err.contains("summary summary"), "{err}");
}

#[tokio::test]
async fn the_demos_cost_by_endpoint_is_its_own_not_the_whole_ledgers() {
    let db = TestDb::new().await;
    // The user's own jobs are not the demo's: it runs the built-in examples.
    let wd = Workdir::new(&[(
        "mine.toml",
        "name = \"mine\"\ntargets = [\"mine.example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
    )]);
    let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
    // Twice: the second demo's report counts only its own calls, so what the ledger
    // books for them is what its sandbox charged, not the two demos' sum.
    for _ in 0..2 {
        let out = linkledger(wd.path(), &env, &["demo"]).await;
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("running 4 example jobs"), "{text}");
        let section = text
            .split("cost by endpoint of this demo's calls")
            .nth(1)
            .unwrap_or_else(|| panic!("{text}"));
        // What the sandbox charged is what the ledger books for this demo's calls.
        let last = section.lines().last().unwrap_or_default().to_string();
        let (charged, booked) = last
            .split_once(" and charged ")
            .and_then(|(_, rest)| rest.split_once("; the ledger books "))
            .unwrap_or_else(|| panic!("{last}"));
        assert_eq!(
            charged,
            booked.trim_end_matches(" for this demo's calls"),
            "{last}"
        );
    }
    let store = db.store().await;
    let mine: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM linkledger.summary WHERE target = 'mine.example.com'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(mine, 0);
}

/// The last `progress:` line a once-run wrote on stderr (not a terminal: lines).
fn last_progress(err: &str) -> &str {
    err.lines()
        .rfind(|l| l.starts_with("progress: "))
        .unwrap_or_else(|| panic!("no progress line: {err}"))
}

#[tokio::test]
async fn calls_cancelled_by_a_refused_password_are_cancelled_before_sending_not_failed() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let targets = ["a.com", "b.com", "c.com", "d.com", "e.com"];
    let wd = Workdir::new(&[("five.toml", &one_fire_job("five", &targets))]);
    let env = with_env(
        env_for(&db, &sb),
        &[("DATAFORSEO_PASSWORD", "not-the-password")],
    );
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(sb.stats().requests, 0, "no paid call was sent");
    let text = stdout(&out);
    assert!(
        text.contains(
            "five: halted (0 calls, 0 failed, 0 rows, cost $0.00; 5 cancelled before sending)"
        ),
        "{text}"
    );
    assert!(
        text.contains("1 job, 0 calls, 0 failed, 0 rows, cost $0.00; 5 cancelled before sending"),
        "{text}"
    );
    // The progress ends short of full, saying why.
    let err = stderr(&out);
    assert!(
        last_progress(&err).starts_with("progress: 0/5 calls, 5 cancelled before sending, "),
        "{err}"
    );

    // `runs` and `runs show` count and name them the same way.
    let out = linkledger(wd.path(), &env, &["runs"]).await;
    let listed = stdout(&out);
    let header: Vec<&str> = listed.lines().next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = listed.lines().nth(1).unwrap().split_whitespace().collect();
    // Two words in each of the header's and the row's started/finished columns.
    let cell = |name: &str| {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{listed}"));
        row[i]
    };
    assert_eq!(
        (cell("calls"), cell("failed"), cell("cancelled")),
        ("0", "0", "5"),
        "{listed}"
    );
    let run: i64 = row[0].parse().unwrap();
    let out = linkledger(wd.path(), &env, &["runs", "show", &run.to_string()]).await;
    let shown = stdout(&out);
    assert!(
        shown.contains("planned:  5 calls: 0 succeeded, 0 failed, 5 cancelled before sending"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "summary [a.com]: cancelled before sending: the API refused the request (40100"
        ),
        "{shown}"
    );
}

#[tokio::test]
async fn a_call_abandoned_by_a_second_ctrl_c_is_counted_abandoned_and_never_said_not_sent() {
    use tokio::io::AsyncReadExt as _;
    let sc = slow_scene(
        6,
        Duration::from_secs(20),
        2,
        &[("LINKLEDGER_QUEUE__SHUTDOWN_GRACE", "130s")],
    )
    .await;
    let mut child = sc.once_run_in_flight().await;
    let mut stdout_pipe = child.stdout.take().unwrap();
    let log = capture_stderr(&mut child);
    send_signal(&child, Signal::SIGINT);
    wait_for(
        Duration::from_secs(10),
        "the first signal handled",
        || async { log.lock().unwrap().contains("stopping: no new calls") },
    )
    .await;
    send_signal(&child, Signal::SIGINT);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits without waiting for the 20-second answers")
        .unwrap();
    assert_eq!(status.code(), Some(130));
    let mut out = String::new();
    stdout_pipe.read_to_string(&mut out).await.unwrap();
    let err = log.lock().unwrap().clone();
    let abandoned = count(
        &sc.store,
        "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'abandoned'",
    )
    .await;
    assert_eq!(abandoned, 2, "{out}\n{err}");
    // Sent, booked at list price: made, not failed and never "not made".
    assert!(
        out.contains("daemon: interrupted (2 calls, 0 failed, 2 abandoned after sending, 0 rows, cost $0.04006; 4 cancelled before sending)"),
        "{out}"
    );
    assert!(!out.contains("not made"), "{out}");
    assert!(
        err.contains("interrupted by SIGINT: 0 of 6 calls succeeded, 2 abandoned after sending (booked at list price: the API may have charged them), 4 cancelled before sending; nothing is left queued"),
        "{err}"
    );

    let (run,): (i64,) = sqlx::query_as("SELECT id FROM linkledger.runs WHERE kind = 'once'")
        .fetch_one(sc.store.pool())
        .await
        .unwrap();
    let out = linkledger(sc.wd.path(), &sc.env, &["runs", "show", &run.to_string()]).await;
    let shown = stdout(&out);
    let abandoned_lines: Vec<&str> = shown
        .lines()
        .filter(|l| l.starts_with("  #") && l.contains("abandoned after sending"))
        .collect();
    assert_eq!(abandoned_lines.len(), 2, "{shown}");
    for l in &abandoned_lines {
        assert!(!l.contains("not sent") && !l.contains("not made"), "{l}");
    }
    assert!(
        shown.contains("planned:  6 calls: 0 succeeded, 0 failed, 2 abandoned after sending, 4 cancelled before sending"),
        "{shown}"
    );
}

#[tokio::test]
async fn runs_and_spend_count_the_same_calls_with_the_credentials_check_apart() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[(
        "three.toml",
        &one_fire_job("three", &["a.com", "b.com", "c.com"]),
    )]);
    let env = env_for(&db, &sb);
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("three: succeeded (3 calls, 0 failed, "),
        "{}",
        stdout(&out)
    );

    let out = linkledger(wd.path(), &env, &["runs"]).await;
    let listed = stdout(&out);
    let header: Vec<&str> = listed.lines().next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = listed.lines().nth(1).unwrap().split_whitespace().collect();
    let calls = header.iter().position(|h| *h == "calls").unwrap();
    assert_eq!(row[calls], "3", "{listed}");

    let out = linkledger(wd.path(), &env, &["spend", "--sandbox", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["total"]["calls"], 3, "{report}");
    assert_eq!(report["credentials_checks"], 1, "{report}");
    let out = linkledger(wd.path(), &env, &["spend", "--sandbox", "--by", "endpoint"]).await;
    let text = stdout(&out);
    assert!(
        !text.contains("appendix/user_data  "),
        "not one of the groups: {text}"
    );
    assert!(
        text.contains("credentials checks: 1 (appendix/user_data, free;"),
        "{text}"
    );
}
