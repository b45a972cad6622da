//! `backfill` and incremental windows: the estimate first, nothing spent without a yes,
//! resumable after kill -9, nothing bought twice, only the missing periods fetched,
//! progress shown, and the account's limits shared with a daemon.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::Stdio;
use std::time::Duration;

use chrono::{Datelike, TimeZone, Utc};
use linkledger::sandbox::SandboxOptions;

use crate::common::*;
use crate::harness::*;

fn targets(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("bf{i:02}.example.com")).collect()
}

/// A job with monthly history and daily new/lost timeseries over `targets`.
fn analyst_job(targets: &[String]) -> String {
    let list: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "name = \"analyst\"\ntargets = [{}]\n[[collect]]\nendpoint = \"history\"\nschedule = \"0 5 2 * *\"\n[[collect]]\nendpoint = \"timeseries_new_lost_summary\"\nschedule = \"0 6 * * *\"\nparams = {{ group_range = \"day\", date_from = \"-30d\" }}\n[[collect]]\nendpoint = \"bulk_ranks\"\nschedule = \"@daily\"\n",
        list.join(", ")
    )
}

fn from_date() -> String {
    let today = Utc::now().date_naive();
    format!("{}-01-01", today.year() - 1)
}

/// `backfill` of the analyst job from [`from_date`] without asking (`--yes`), run to
/// its end.
async fn backfill_analyst(dir: &std::path::Path, env: &[(String, String)]) -> std::process::Output {
    linkledger(
        dir,
        env,
        &[
            "backfill",
            "--job",
            "analyst",
            "--from",
            &from_date(),
            "--yes",
        ],
    )
    .await
}

#[tokio::test]
async fn a_dry_run_shows_the_estimate_and_spends_nothing_and_no_terminal_means_no() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[("analyst.toml", &analyst_job(&targets(3)))]);
    let env = env_for(&db, &sb);
    let dry = linkledger(
        wd.path(),
        &env,
        &[
            "backfill",
            "--job",
            "analyst",
            "--from",
            &from_date(),
            "--dry-run",
        ],
    )
    .await;
    let out = stdout(&dry);
    assert!(dry.status.success(), "{}", stderr(&dry));
    for needle in [
        "history",
        "timeseries_new_lost_summary",
        "6 calls",
        "estimated $",
        "nothing was spent",
    ] {
        assert!(out.contains(needle), "`{needle}` in {out}");
    }
    assert!(!out.contains("bulk_ranks"), "not date-ranged: {out}");
    // Without --yes and without a terminal to ask on: exit 2, nothing spent.
    let refused = linkledger(
        wd.path(),
        &env,
        &["backfill", "--job", "analyst", "--from", &from_date()],
    )
    .await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--yes"), "{}", stderr(&refused));
    // A snapshot endpoint cannot be backfilled.
    let snapshot = linkledger(
        wd.path(),
        &env,
        &[
            "backfill",
            "--job",
            "analyst",
            "--from",
            &from_date(),
            "--endpoint",
            "bulk_ranks",
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(snapshot.status.code(), Some(2));
    assert!(
        stderr(&snapshot).contains("cannot be backfilled"),
        "{}",
        stderr(&snapshot)
    );
    assert_eq!(sb.stats().requests, 0);
    let store = db.store().await;
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.api_calls").await,
        0
    );
}

#[tokio::test]
async fn a_backfill_killed_mid_way_and_run_again_ends_as_an_uninterrupted_one_and_a_second_buys_nothing()
 {
    let list = targets(12);
    let job = analyst_job(&list);
    let args = [
        "backfill",
        "--job",
        "analyst",
        "--from",
        &from_date(),
        "--yes",
    ];

    // Uninterrupted, into its own database.
    let whole_db = TestDb::new().await;
    let whole_sb = default_sandbox().await;
    let wd = Workdir::new(&[("analyst.toml", &job)]);
    let out = linkledger(wd.path(), &env_for(&whole_db, &whole_sb), &args).await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let whole = content_checksums(&whole_db.store().await).await;
    let whole_charged = whole_sb.stats().charged_usd;

    // Killed mid-way (slow answers, two at a time), then run again.
    let db = TestDb::new().await;
    let sb = sandbox(with_latency(Duration::from_millis(300))).await;
    // The killed run's shared slots lapse within one lease before the second run can
    // send: the daemon harness's 5 s, not the default 30 s.
    let env = with_env(
        env_for(&db, &sb),
        &[
            ("LINKLEDGER_API__MAX_IN_FLIGHT", "2"),
            ("LINKLEDGER_QUEUE__LEASE", "5s"),
        ],
    );
    let mut child = spawn_quiet(wd.path(), &env, &args);
    wait_for(
        Duration::from_secs(60),
        "a third of the calls made",
        || async { sb.stats().requests >= 8 },
    )
    .await;
    child.kill().await.unwrap();
    let at_kill = sb.stats().requests;
    assert!(at_kill < 24, "killed mid-way ({at_kill} requests)");
    // `runs` shows it interrupted (its process holds the job's lock no more), with
    // what is left, and how to finish it.
    wait_for(
        Duration::from_secs(10),
        "the killed backfill shown interrupted",
        || async {
            let runs = linkledger(wd.path(), &env, &["runs", "--job", "analyst"]).await;
            stdout(&runs)
                .lines()
                .any(|l| l.contains("backfill") && l.contains("interrupted"))
        },
    )
    .await;
    let show = linkledger(wd.path(), &env, &["runs", "show", "1"]).await;
    assert!(
        stdout(&show).contains("run the same backfill again"),
        "{}{}",
        stdout(&show),
        stderr(&show)
    );
    let left = count(
        &db.store().await,
        "SELECT count(*) FROM linkledger.work WHERE state IN ('queued', 'running')",
    )
    .await;
    assert!(left > 0, "work left at the kill");
    let again = linkledger(wd.path(), &env, &args).await;
    assert!(
        again.status.success(),
        "{}{}",
        stdout(&again),
        stderr(&again)
    );
    let store = db.store().await;
    assert_eq!(
        content_checksums(&store).await,
        whole,
        "the same rows as uninterrupted"
    );
    // Bought twice: only the calls in flight at the kill (sent, their answers not
    // stored: two at a time, and one whose answer was on its way to the database),
    // which the second run booked `abandoned` at their list price.
    let unanswered: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.endpoint, c.targets[1] FROM linkledger.api_calls c
         JOIN linkledger.runs r ON r.id = c.run_id
         WHERE r.status = 'interrupted' AND c.outcome = 'abandoned'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(unanswered.len() <= 3, "{unanswered:?}");
    // (A request recorded but killed before it left reached no one: at most, not exactly.)
    let extra_requests = sb.stats().requests - whole_sb.stats().requests;
    assert!(
        extra_requests <= unanswered.len() as u64,
        "{extra_requests} asked twice, {} in flight at the kill",
        unanswered.len()
    );
    let (endpoints, targets): (Vec<String>, Vec<String>) = unanswered.into_iter().unzip();
    let their_price: rust_decimal::Decimal = sqlx::query_scalar(
        "SELECT coalesce(sum(c.cost_usd), 0) FROM linkledger.api_calls c
         JOIN UNNEST($1::text[], $2::text[]) AS u(endpoint, target)
           ON c.endpoint = u.endpoint AND c.targets[1] = u.target",
    )
    .bind(&endpoints)
    .bind(&targets)
    .fetch_one(whole_db.store().await.pool())
    .await
    .unwrap();
    let extra = (sb.stats().charged_usd - whole_charged).decimal();
    assert!(
        extra <= their_price,
        "paid {extra} more, the calls in flight cost {their_price}"
    );
    let interrupted = count(
        &store,
        "SELECT count(*) FROM linkledger.runs WHERE kind = 'backfill' AND status = 'interrupted'",
    )
    .await;
    assert_eq!(interrupted, 1, "the killed run shows as interrupted");

    // Everything is stored: a second identical backfill buys nothing.
    let requests = sb.stats().requests;
    let third = linkledger(wd.path(), &env, &args).await;
    assert!(third.status.success(), "{}", stderr(&third));
    assert!(
        stdout(&third).contains("nothing to buy"),
        "{}",
        stdout(&third)
    );
    assert_eq!(sb.stats().requests, requests, "no API call");
}

#[tokio::test]
async fn the_next_days_fire_asks_only_for_the_missing_periods_and_the_tables_equal_a_full_fetch() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    // Days pass on a simulated clock: the sandbox's "today" and the time answers come.
    let day0 = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let at = |day: chrono::NaiveDate| day.and_hms_opt(6, 0, 0).unwrap().and_utc();
    let clock = std::sync::Arc::new(std::sync::Mutex::new(at(day0)));
    let exec = {
        let clock = clock.clone();
        executor(&store, &sb, 4)
            .without_same_day_reuse()
            .with_clock(std::sync::Arc::new(move || *clock.lock().unwrap()))
    };
    let list = targets(3);
    let job = job(&analyst_job(&list));
    let daily = job
        .collection("timeseries_new_lost_summary")
        .unwrap()
        .clone();
    let mut scheduler = linkledger::collect::scheduler::Scheduler::new(
        store.clone(),
        vec![linkledger::jobs::Job {
            collections: vec![daily.clone()],
            ..job.clone()
        }],
        "s".into(),
        5,
    );
    // It fired the day before: each tick catches up the day's fire.
    seed_fire(
        &store,
        "analyst",
        "timeseries_new_lost_summary",
        at(day0) - chrono::Duration::days(1),
    )
    .await;
    async fn fire_on(
        scheduler: &mut linkledger::collect::scheduler::Scheduler,
        exec: &linkledger::collect::executor::Executor,
        sb: &linkledger::sandbox::Sandbox,
        clock: &std::sync::Mutex<chrono::DateTime<Utc>>,
        day: chrono::NaiveDate,
    ) {
        let fire = day.and_hms_opt(6, 0, 0).unwrap().and_utc();
        sb.set_today(day);
        *clock.lock().unwrap() = fire + chrono::Duration::minutes(1);
        let fired = scheduler.tick(fire).await.unwrap();
        assert_eq!(fired.len(), 1);
        linkledger::collect::workers::Workers::new(
            exec.clone(),
            linkledger::collect::workers::WorkerConfig::for_once(4),
            linkledger::collect::workers::WorkSet::Runs(fired.iter().map(|e| e.run_id).collect()),
        )
        .run(&linkledger::collect::workers::Shutdown::default())
        .await
        .unwrap();
    }
    let asked = |from: usize| -> Vec<serde_json::Value> {
        sb.requests()[from..]
            .iter()
            .map(|r| r.request[0].clone())
            .collect()
    };
    // The first fire: the whole configured range, 30 days back.
    fire_on(&mut scheduler, &exec, &sb, &clock, day0).await;
    let first = asked(0);
    assert_eq!(first.len(), 3);
    for a in &first {
        assert_eq!(
            a["date_from"],
            (day0 - chrono::Days::new(30)).to_string(),
            "{a}"
        );
        assert_eq!(a["date_to"], day0.to_string(), "{a}");
    }
    // The next day: only the days not settled when the first fire's request was sent
    // (a timeseries day settles seven days after it ended, by default) and the new day.
    let day1 = day0.succ_opt().unwrap();
    fire_on(&mut scheduler, &exec, &sb, &clock, day1).await;
    let second = asked(3);
    assert_eq!(second.len(), 3, "{second:?}");
    for a in &second {
        assert_eq!(
            a["date_from"],
            (day0 - chrono::Days::new(7)).to_string(),
            "{a}"
        );
        assert_eq!(a["date_to"], day1.to_string(), "{a}");
        assert_eq!(a["group_range"], "day", "{a}");
    }
    // Another plan the same day holds everything: the open day was answered today.
    let again = linkledger::collect::narrow::plan_to_buy(&store, &daily, day1)
        .await
        .unwrap();
    assert!(again.calls.is_empty(), "{:?}", again.calls);
    assert_eq!(again.skipped.len(), 3);
    // `plan` reads the same coverage into memory and narrows the same way.
    let held = store.stored().await.unwrap();
    for day in [day1, day1.succ_opt().unwrap()] {
        let in_memory = held.narrow_calls(
            linkledger::plan::plan_collection(&daily, day),
            day,
            linkledger::plan::Reach::of(&daily),
        );
        let stored = linkledger::collect::narrow::plan_to_buy(&store, &daily, day)
            .await
            .unwrap();
        let tasks = |calls: &[linkledger::plan::CallSpec]| -> Vec<serde_json::Value> {
            calls.iter().map(|c| c.task.clone()).collect()
        };
        assert_eq!(tasks(&in_memory.calls), tasks(&stored.calls), "{day}");
        assert_eq!(in_memory.skipped.len(), stored.skipped.len(), "{day}");
    }

    // The same tables as a full fetch of day 1's range into another database.
    let full_db = TestDb::new().await;
    let full_store = full_db.store().await;
    let full_sb = default_sandbox().await;
    full_sb.set_today(day1);
    let refetching = linkledger::jobs::Job {
        collections: vec![linkledger::jobs::Collection {
            refetch: linkledger::jobs::Refetch::Always,
            ..daily.clone()
        }],
        ..job.clone()
    };
    let report = run_once(
        &executor(&full_store, &full_sb, 4),
        &[&refetching],
        linkledger::store::RunKind::Once,
        day1,
    )
    .await
    .unwrap();
    assert!(report.ok());
    let since = day1 - chrono::Days::new(30);
    let table = |store: linkledger::store::Store| async move {
        sqlx::query_as::<_, (i64, String)>(
            "SELECT count(*), md5(string_agg((to_jsonb(t) - 'collected_at' - 'raw_response_id')::text, '|' ORDER BY t.target, t.date))
             FROM linkledger.timeseries_new_lost_summary t WHERE t.date >= $1",
        )
        .bind(since)
        .fetch_one(store.pool())
        .await
        .unwrap()
    };
    let (rows, incremental) = table(store.clone()).await;
    assert_eq!(rows, 3 * 31);
    assert_eq!((rows, incremental), table(full_store.clone()).await);
}

#[tokio::test]
async fn progress_is_a_line_every_few_seconds_without_a_terminal() {
    let db = TestDb::new().await;
    let sb = sandbox(with_latency(Duration::from_millis(400))).await;
    let wd = Workdir::new(&[("analyst.toml", &analyst_job(&targets(10)))]);
    let env = with_env(env_for(&db, &sb), &[("LINKLEDGER_API__MAX_IN_FLIGHT", "2")]);
    let out = backfill_analyst(wd.path(), &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(lines.len() >= 2, "{}", stderr(&out));
    assert!(
        lines.last().unwrap().starts_with("progress: 20/20 calls"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" rows, $") && l.contains("calls/s")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn on_a_terminal_the_backfill_asks_first_and_shows_a_progress_bar() {
    let db = TestDb::new().await;
    let sb = sandbox(with_latency(Duration::from_millis(200))).await;
    let wd = Workdir::new(&[("analyst.toml", &analyst_job(&targets(4)))]);
    let env = with_env(env_for(&db, &sb), &[("TERM", "xterm")]);
    let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
    let slave = pty.slave;
    let mut cmd = command(
        wd.path(),
        &env,
        &["backfill", "--job", "analyst", "--from", &from_date()],
    );
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    // The terminal's other end: what the program writes, and what the user types.
    let master = unsafe { std::fs::File::from_raw_fd(pty.master.as_raw_fd()) };
    std::mem::forget(pty.master);
    let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    {
        let output = output.clone();
        let mut reader = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                output
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    wait_for(Duration::from_secs(30), "the question", || async {
        output.lock().unwrap().contains("[y/N]")
    })
    .await;
    assert_eq!(sb.stats().requests, 0, "nothing before the answer");
    let mut writer = master;
    writer.write_all(b"y\n").unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the backfill ends")
        .unwrap();
    let text = output.lock().unwrap().clone();
    assert!(status.success(), "{text}");
    assert_eq!(sb.stats().requests, 8);
    assert!(text.contains("/8 calls"), "{text}");
    assert!(!text.contains("progress: "), "a bar, not lines: {text}");
}

#[tokio::test]
async fn a_backfill_beside_a_daemon_stays_within_the_accounts_limits_and_buys_nothing_twice() {
    let sc = scene(
        12,
        SandboxOptions {
            max_in_flight: 3,
            ..with_latency(Duration::from_millis(150))
        },
        &[("LINKLEDGER_API__MAX_IN_FLIGHT", "3")],
    )
    .await;
    sc.wd.write_job("analyst.toml", &analyst_job(&targets(10)));
    let mut d = sc.start_daemon().await;
    let out = backfill_analyst(sc.wd.path(), &sc.env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for_daemons_fire(&sc.store, Duration::from_secs(60), "10 minutes").await;
    d.stop(Duration::from_secs(30)).await;
    let stats = sc.sb.stats();
    assert!(stats.max_in_flight <= 3, "{stats:?}");
    assert_eq!(stats.throttled, 0, "{stats:?}");
    assert_eq!(
        count(
            &sc.store,
            "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'ok' AND endpoint <> 'appendix/user_data'"
        )
        .await as u64,
        stats.requests,
        "each request once: {stats:?}"
    );
    assert_eq!(
        count(
            &sc.store,
            "SELECT count(*) FROM linkledger.work WHERE state = 'succeeded'"
        )
        .await,
        12 + 20
    );
    let _ = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0);
}

#[tokio::test]
async fn one_backfill_of_a_job_at_a_time_and_a_dead_ones_lock_is_free_at_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let wait = Duration::from_millis(200);
    let held = store.lock_backfill("analyst", wait).await.unwrap();
    assert!(held.is_some());
    assert!(
        store
            .lock_backfill("analyst", wait)
            .await
            .unwrap()
            .is_none(),
        "a second backfill of the job waits, then gives up"
    );
    let other = store.lock_backfill("other", wait).await.unwrap();
    assert!(other.is_some(), "another job's backfill is not in the way");
    // Dropped without a word (as by kill -9): the database frees it with the connection.
    drop(held);
    let again = store
        .lock_backfill("analyst", Duration::from_secs(10))
        .await
        .unwrap()
        .expect("the lock freed");
    again.release().await;
}

#[tokio::test]
async fn a_once_run_shows_the_same_progress_lines_without_a_terminal() {
    let db = TestDb::new().await;
    let sb = sandbox(with_latency(Duration::from_millis(400))).await;
    let list: Vec<String> = targets(10).iter().map(|t| format!("{t:?}")).collect();
    let job = format!(
        "name = \"watch\"\ntargets = [{}]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
        list.join(", ")
    );
    let wd = Workdir::new(&[("watch.toml", &job)]);
    let env = with_env(env_for(&db, &sb), &[("LINKLEDGER_API__MAX_IN_FLIGHT", "1")]);
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(lines.len() >= 2, "a line every 3 s over 4 s: {err}");
    assert!(
        lines.last().unwrap().starts_with("progress: 10/10 calls"),
        "{lines:?}"
    );
    assert!(lines[0].contains("ETA"), "{lines:?}");
}

#[tokio::test]
async fn a_page_given_to_backfill_or_gaps_is_refused_with_the_domain_to_use() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[("analyst.toml", &analyst_job(&targets(2)))]);
    let env = env_for(&db, &sb);
    let page = "https://www.bf00.example.com/blog";
    for args in [
        vec![
            "backfill",
            "--job",
            "analyst",
            "--from",
            &from_date(),
            "--target",
            page,
            "--dry-run",
        ],
        vec!["gaps", "--target", page],
    ] {
        let out = linkledger(wd.path(), &env, &args).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "--target {page}: history and timeseries take a bare domain, not a page: use \"bf00.example.com\""
            )),
            "{args:?}: {err}"
        );
    }
    assert_eq!(sb.stats().requests, 0);
}
