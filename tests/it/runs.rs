//! `linkledger runs`, `runs show` and `cancel` through the binary, against daemons
//! that a refusal stopped and daemons with calls in flight.

use std::time::Duration;

use linkledger::sandbox::SandboxOptions;

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
        assert!(text.contains("running 3 example jobs"), "{text}");
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
