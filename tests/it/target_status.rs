//! Which job collects which target (`job_targets`, kept current by `run --once` and the
//! daemon's reloads), and how each target of each job stands (`target_status`): the
//! last success, the last final failure (`final_failures`; retried attempts apart in
//! `call_failures`) and staleness against the schedule. Through the real binary, on
//! real PostgreSQL and the sandbox.

use std::time::Duration;

use linkledger::sandbox::SandboxOptions;

use crate::common::*;
use crate::harness::*;

/// A job `name` with one daily summary collection over `targets`.
fn summary_job(name: &str, targets: &[&str]) -> String {
    let list: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "name = \"{name}\"\ntargets = [{}]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
        list.join(", ")
    )
}

type StatusRow = (
    String,         // job
    String,         // target
    String,         // status
    bool,           // failing
    bool,           // stale
    Option<String>, // last_failure_reason
    bool,           // has a last success
    bool,           // has a last failure
);

async fn status(store: &linkledger::store::Store) -> Vec<StatusRow> {
    sqlx::query_as(
        "SELECT job, target, status, failing, stale, last_failure_reason,
                last_success_at IS NOT NULL, last_failure_at IS NOT NULL
         FROM linkledger.target_status ORDER BY job, target",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

fn row<'a>(rows: &'a [StatusRow], job: &str, target: &str) -> &'a StatusRow {
    rows.iter()
        .find(|r| r.0 == job && r.1 == target)
        .unwrap_or_else(|| panic!("no status for {job}/{target}: {rows:#?}"))
}

#[tokio::test]
async fn every_target_of_every_job_has_a_status_with_final_failures_apart_from_retried_attempts() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = sandbox(SandboxOptions {
        fault_rate: 1.0,
        seed: 25,
        ..SandboxOptions::default()
    })
    .await;
    let wd = Workdir::new(&[
        (
            "watch.toml",
            &summary_job("watch", &["a.example.com", "b.example.com"]),
        ),
        (
            "broken.toml",
            &summary_job("broken", &["quirk-body-truncated.example.com"]),
        ),
        ("later.toml", &summary_job("later", &["c.example.com"])),
    ]);
    let env = with_env(env_for(&db, &sb), &[("LINKLEDGER_API__MAX_ATTEMPTS", "3")]);

    // Every call fails, three times: the two planned calls fail for good.
    let out = linkledger(wd.path(), &env, &["run", "--once", "--job", "watch"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let finals: Vec<(i64, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT work_id, state, last_outcome, requests FROM linkledger.final_failures
         WHERE job = 'watch' ORDER BY work_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(finals.len(), 2, "one row per planned call: {finals:?}");
    assert!(
        finals.iter().all(|f| f.1 == "exhausted" && f.3 >= 3),
        "{finals:?}"
    );
    // Each failed attempt is in call_failures; only the last of each call is final.
    let attempts: Vec<(i64, i64, bool, bool)> = sqlx::query_as(
        "SELECT work_id, id, final,
                id = (SELECT max(c.id) FROM linkledger.api_calls c WHERE c.work_id = f.work_id)
         FROM linkledger.call_failures f WHERE job = 'watch' ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(attempts.len() >= 6, "{attempts:?}");
    for (work_id, id, is_final, last) in &attempts {
        assert_eq!(
            is_final, last,
            "request {id} of call {work_id}: {attempts:?}"
        );
    }
    assert_eq!(attempts.iter().filter(|a| a.2).count(), 2, "{attempts:?}");
    let rows = status(&store).await;
    assert_eq!(
        rows.iter()
            .map(|r| (r.0.as_str(), r.1.as_str()))
            .collect::<Vec<_>>(),
        [
            ("broken", "quirk-body-truncated.example.com"),
            ("later", "c.example.com"),
            ("watch", "a.example.com"),
            ("watch", "b.example.com"),
        ],
        "every target of every job, stored or not"
    );
    for t in ["a.example.com", "b.example.com"] {
        let r = row(&rows, "watch", t);
        assert_eq!(
            (r.2.as_str(), r.3, r.6, r.7),
            ("failing", true, false, true),
            "{r:?}"
        );
        assert!(r.5.as_deref().is_some_and(|why| !why.is_empty()), "{r:?}");
    }
    let later = row(&rows, "later", "c.example.com");
    assert_eq!(
        (later.2.as_str(), later.3, later.4, later.6),
        ("pending", false, false, false)
    );

    // The API answers again, with a few failed attempts along the way: the calls
    // succeed, their retried attempts are no final failures.
    sb.set_fault_rate(0.6);
    let env = with_env(env, &[("LINKLEDGER_API__MAX_ATTEMPTS", "20")]);
    let faults_before = sb.stats().faults;
    let out = linkledger(wd.path(), &env, &["run", "--once", "--job", "watch"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        sb.stats().faults > faults_before,
        "some attempts were retried"
    );
    let second_run_finals = count(
        &store,
        "SELECT count(*) FROM linkledger.call_failures f
         WHERE job = 'watch' AND final
           AND run_id = (SELECT max(id) FROM linkledger.runs WHERE job = 'watch')",
    )
    .await;
    assert_eq!(second_run_finals, 0);
    assert!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.call_failures f
             WHERE job = 'watch' AND NOT final
               AND run_id = (SELECT max(id) FROM linkledger.runs WHERE job = 'watch')",
        )
        .await
            > 0
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.final_failures WHERE job = 'watch'"
        )
        .await,
        2
    );
    let rows = status(&store).await;
    for t in ["a.example.com", "b.example.com"] {
        let r = row(&rows, "watch", t);
        assert_eq!(
            (r.2.as_str(), r.3, r.4, r.6, r.7),
            ("ok", false, false, true, true),
            "{r:?}"
        );
    }

    // An answer that cannot be read fails its call for good, at once.
    sb.set_fault_rate(0.0);
    let out = linkledger(wd.path(), &env, &["run", "--once", "--job", "broken"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (state, outcome): (String, Option<String>) = sqlx::query_as(
        "SELECT state, last_outcome FROM linkledger.final_failures WHERE job = 'broken'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        (state.as_str(), outcome.as_deref()),
        ("failed", Some("invalid_response"))
    );
    let r = status(&store).await;
    let r = row(&r, "broken", "quirk-body-truncated.example.com");
    assert_eq!((r.2.as_str(), r.3, r.6), ("failing", true, false), "{r:?}");

    // Two days without a success, on a daily schedule: stale, as is a target first
    // named two days ago that never brought anything.
    sqlx::query(
        "UPDATE linkledger.work SET finished_at = finished_at - interval '2 days'
         WHERE job = 'watch'",
    )
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query(
        "UPDATE linkledger.loaded_targets SET first_seen_at = first_seen_at - interval '2 days'
         WHERE job = 'later'",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let rows = status(&store).await;
    for t in ["a.example.com", "b.example.com"] {
        let r = row(&rows, "watch", t);
        assert_eq!((r.2.as_str(), r.3, r.4), ("stale", false, true), "{r:?}");
    }
    let later = row(&rows, "later", "c.example.com");
    assert_eq!((later.2.as_str(), later.4), ("stale", true), "{later:?}");
}

#[tokio::test]
async fn a_payment_refusal_on_a_runs_only_call_halts_the_run_and_fails_its_target() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[(
        "refused.toml",
        &summary_job("refused", &["quirk-no-funds.example.com"]),
    )]);
    let env = env_for(&db, &sb);
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (run_status, message): (String, Option<String>) =
        sqlx::query_as("SELECT status, message FROM linkledger.runs WHERE job = 'refused'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(run_status, "halted", "{message:?}");
    assert!(message.is_some_and(|m| m.contains("40210")));
    let (outcome, reason): (Option<String>, String) = sqlx::query_as(
        "SELECT last_outcome, reason FROM linkledger.final_failures WHERE job = 'refused'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(outcome.as_deref(), Some("halt"));
    assert!(reason.contains("40210"), "{reason}");
    let rows = status(&store).await;
    let r = row(&rows, "refused", "quirk-no-funds.example.com");
    assert_eq!((r.2.as_str(), r.3), ("failing", true), "{r:?}");
    assert!(
        r.5.as_deref().is_some_and(|why| why.contains("40210")),
        "{r:?}"
    );
}

type TargetRow = (
    String,
    String,
    String,
    String,
    serde_json::Value,
    String,
    Option<String>,
);

async fn job_targets(store: &linkledger::store::Store) -> Vec<TargetRow> {
    sqlx::query_as(
        "SELECT job, collection, endpoint, target, options, schedule, every::text
         FROM linkledger.job_targets ORDER BY job, collection, target",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

async fn loaded(store: &linkledger::store::Store) -> Vec<(String, String, String, String, bool)> {
    sqlx::query_as(
        "SELECT job, collection, target, changed_at::text, removed_at IS NOT NULL
         FROM linkledger.loaded_targets ORDER BY job, collection, target",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn run_once_records_every_job_files_targets_and_follows_their_edits() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[
        (
            "a.toml",
            "name = \"a\"\ntargets = [\"x.example.com\", \"y.example.com\"]\n\
             [[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n\
             [[collect]]\nname = \"ranks\"\nendpoint = \"bulk_ranks\"\nschedule = \"30 8 * * 1-5\"\n\
             params = { rank_scale = \"one_hundred\" }\n",
        ),
        ("b.toml", &summary_job("b", &["z.example.com"])),
    ]);
    let env = env_for(&db, &sb);
    // Only job b runs; every job of the files is recorded.
    let out = linkledger(wd.path(), &env, &["run", "--once", "--job", "b"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = job_targets(&store).await;
    assert_eq!(
        rows,
        [
            (
                "a".into(),
                "ranks".into(),
                "bulk_ranks".into(),
                "x.example.com".into(),
                serde_json::json!({"rank_scale": "one_hundred"}),
                "30 8 * * 1-5".into(),
                Some("3 days".into()),
            ),
            (
                "a".into(),
                "ranks".into(),
                "bulk_ranks".into(),
                "y.example.com".into(),
                serde_json::json!({"rank_scale": "one_hundred"}),
                "30 8 * * 1-5".into(),
                Some("3 days".into()),
            ),
            (
                "a".into(),
                "summary".into(),
                "summary".into(),
                "x.example.com".into(),
                linkledger::api::Endpoint::Summary.default_options(),
                "@daily".into(),
                Some("1 day".into()),
            ),
            (
                "a".into(),
                "summary".into(),
                "summary".into(),
                "y.example.com".into(),
                linkledger::api::Endpoint::Summary.default_options(),
                "@daily".into(),
                Some("1 day".into()),
            ),
            (
                "b".into(),
                "summary".into(),
                "summary".into(),
                "z.example.com".into(),
                linkledger::api::Endpoint::Summary.default_options(),
                "@daily".into(),
                Some("1 day".into()),
            ),
        ]
    );
    // The options are those of the warehouse rows the calls store.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.job_targets j JOIN linkledger.summary s
             ON s.target = j.target AND s.options = j.options WHERE j.job = 'b'"
        )
        .await,
        1
    );

    // The same files again change nothing.
    let before = loaded(&store).await;
    let out = linkledger(wd.path(), &env, &["run", "--once", "--job", "b"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(loaded(&store).await, before);

    // Job b gone, a's ranks collection gone and y dropped: those rows are marked
    // removed, and the view shows what the files say now.
    std::fs::remove_file(wd.path().join("jobs/b.toml")).unwrap();
    wd.write_job(
        "a.toml",
        "name = \"a\"\ntargets = [\"x.example.com\"]\n\
         [[collect]]\nendpoint = \"summary\"\nschedule = \"0 6 * * 1\"\n",
    );
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = job_targets(&store).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            rows[0].0.as_str(),
            rows[0].3.as_str(),
            rows[0].5.as_str(),
            rows[0].6.as_deref()
        ),
        ("a", "x.example.com", "0 6 * * 1", Some("7 days"))
    );
    let marks: Vec<(String, String, String, bool)> = loaded(&store)
        .await
        .into_iter()
        .map(|(j, c, t, _, removed)| (j, c, t, removed))
        .collect();
    assert_eq!(
        marks,
        [
            ("a".into(), "ranks".into(), "x.example.com".into(), true),
            ("a".into(), "ranks".into(), "y.example.com".into(), true),
            ("a".into(), "summary".into(), "x.example.com".into(), false),
            ("a".into(), "summary".into(), "y.example.com".into(), true),
            ("b".into(), "summary".into(), "z.example.com".into(), true),
        ]
    );
    // target_status follows the files: only the target they name now.
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.target_status").await,
        1
    );
}

#[tokio::test]
async fn a_daemon_records_the_job_files_targets_at_start_and_again_on_reload() {
    // A schedule that does not fire during the test.
    let job = |targets: &str| {
        format!(
            "name = \"watched\"\ntargets = [{targets}]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 0 1 1 *\"\ncatch_up = \"skip\"\n"
        )
    };
    let sc = scene_with_jobs(
        &[("watched.toml", &job("\"one.example.com\""))],
        SandboxOptions::default(),
        &[],
    )
    .await;
    let mut d = sc.start_daemon().await;
    let targets = |store: linkledger::store::Store| async move {
        sqlx::query_scalar::<_, String>("SELECT target FROM linkledger.job_targets ORDER BY target")
            .fetch_all(store.pool())
            .await
            .unwrap()
    };
    wait_for(
        Duration::from_secs(30),
        "the targets recorded at start",
        || {
            let store = sc.store.clone();
            async move { targets(store).await == ["one.example.com"] }
        },
    )
    .await;
    sc.wd.write_job(
        "watched.toml",
        &job("\"two.example.com\", \"three.example.com\""),
    );
    wait_for(
        Duration::from_secs(30),
        "the targets recorded on reload",
        || {
            let store = sc.store.clone();
            async move { targets(store).await == ["three.example.com", "two.example.com"] }
        },
    )
    .await;
    assert_eq!(
        count(
            &sc.store,
            "SELECT count(*) FROM linkledger.loaded_targets
             WHERE target = 'one.example.com' AND removed_at IS NOT NULL"
        )
        .await,
        1
    );
    d.stop(Duration::from_secs(15)).await;
    assert_eq!(sc.sb.stats().requests, 0, "nothing fired");
}
