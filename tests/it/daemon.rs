//! The daemon as a process: replicas, kill -9, a Postgres restart, SIGTERM, shared
//! limits, health and metrics.

use std::time::{Duration, Instant};

use linkledger::sandbox::SandboxOptions;
use nix::sys::signal::Signal;
use rust_decimal::Decimal;

use crate::common::*;
use crate::harness::*;

#[tokio::test]
async fn two_daemons_on_one_database_enqueue_and_call_each_fire_once() {
    // Every minute, with the last five minutes' fires caught up at start (it last
    // fired an hour ago): several fires at once, which both daemons race to enqueue.
    let sc = scene_with_jobs(
        &[(
            "daemon.toml",
            &summary_job(
                3,
                "* * * * *",
                "catch_up = \"all\"\ncatch_up_window = \"5m\"",
            ),
        )],
        SandboxOptions::default(),
        &[],
    )
    .await;
    let (store, sb) = (sc.store.clone(), &sc.sb);
    seed_fire(
        &store,
        "daemon",
        "summary",
        chrono::Utc::now() - chrono::Duration::hours(1),
    )
    .await;
    let (mut a, mut b) = sc.start_two_daemons().await;
    wait_for_count(
        &store,
        Duration::from_secs(60),
        "five fires executed",
        "SELECT count(*) FROM linkledger.work WHERE state = 'succeeded'",
        |n| n >= 15,
    )
    .await;
    // The other daemon may have done every call before this one's first scheduler
    // tick came through (its start is slower on a busy machine): /healthz says
    // "not ticked yet" until then, which is right, so wait for that tick first.
    wait_for(Duration::from_secs(30), "daemon a's first tick", || async {
        let (_, m) = a.get("/metrics").await;
        metric(&m, "linkledger_scheduler_last_tick_timestamp_seconds").is_some_and(|t| t > 0.0)
    })
    .await;
    let (status, body) = a.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    let (status_a, metrics_a) = a.get("/metrics").await;
    let (status_b, metrics_b) = b.get("/metrics").await;
    assert_eq!((status_a, status_b), (200, 200));
    for m in [&metrics_a, &metrics_b] {
        assert!(
            m.contains("linkledger_queue_depth{state=\"queued\"}"),
            "{m}"
        );
        assert!(
            m.contains("linkledger_scheduler_last_tick_timestamp_seconds"),
            "{m}"
        );
    }
    // Whichever daemon made calls counts them by endpoint and outcome, with their cost.
    let both = format!("{metrics_a}{metrics_b}");
    assert!(
        both.contains("linkledger_api_calls_total{endpoint=\"summary\",outcome=\"ok\"}"),
        "{both}"
    );
    assert!(
        both.contains("linkledger_api_cost_usd_total{endpoint=\"summary\"}"),
        "{both}"
    );
    stop_both(&mut a, &mut b, Duration::from_secs(15)).await;

    let fires = count(
        &store,
        "SELECT count(*) FROM linkledger.fires WHERE enqueued_by <> 'test'",
    )
    .await;
    assert!(fires >= 5, "{fires} fires");
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.work").await,
        3 * fires
    );
    let succeeded = count(
        &store,
        "SELECT count(*) FROM linkledger.work WHERE state = 'succeeded'",
    )
    .await;
    // Each succeeded item has one ledger row: bought, or (the same target bought
    // already today by an earlier fire) answered from that answer. Nothing was bought
    // twice for one item, and every request the sandbox saw is a bought row.
    let bought = count(
        &store,
        "SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'summary' AND outcome = 'ok'",
    )
    .await;
    let reused = count(
        &store,
        "SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'summary' AND outcome = 'reused'",
    )
    .await;
    assert_eq!(sb.stats().requests as i64, bought, "{:?}", sb.stats());
    assert_eq!(bought + reused, succeeded);
    assert!(
        reused > 0,
        "later fires of the same day reuse the first's answers"
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'summary'"
        )
        .await,
        succeeded
    );
    assert_eq!(ledger_total(&store).await, sb.stats().charged_usd.decimal());
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.work WHERE state = 'running'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn sigterm_stops_the_daemon_within_the_deadline_with_nothing_left_claimed() {
    let sc = slow_scene(12, Duration::from_millis(400), 2, &[]).await;
    let store = sc.store.clone();
    let mut d = sc.start_daemon().await;
    wait_for_count(
        &store,
        Duration::from_secs(30),
        "calls in flight",
        "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'ok'",
        |n| n >= 2,
    )
    .await;
    let t = Instant::now();
    d.stop(Duration::from_secs(10)).await;
    assert!(
        t.elapsed() < Duration::from_secs(7),
        "stopped after {:?}",
        t.elapsed()
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.work WHERE state = 'running'"
        )
        .await,
        0
    );
    // The calls in flight were let finish, and the rest is back in the queue.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'sent'"
        )
        .await,
        0
    );
    assert!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.work WHERE state = 'queued'"
        )
        .await
            > 0
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_slots WHERE holder IS NOT NULL"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn after_kill_9_the_restarted_daemon_finishes_the_run_without_paying_twice() {
    // 48 calls, 3 at a time, 300 ms each: the run lasts about 5 s, so a kill after the
    // sixth stored target comes mid-run even on a loaded machine.
    let sc = slow_scene(48, Duration::from_millis(300), 3, &[]).await;
    let (store, sb) = (sc.store.clone(), &sc.sb);
    let mut first = sc.start_daemon().await;
    wait_for_count(
        &store,
        Duration::from_secs(30),
        "some targets stored",
        "SELECT count(*) FROM linkledger.summary",
        |n| n >= 6,
    )
    .await;
    first.signal(Signal::SIGKILL);
    first.wait(Duration::from_secs(10)).await;
    let requests_at_kill = sb.stats().requests;

    let mut second = sc.start_daemon().await;
    wait_for_count(
        &store,
        Duration::from_secs(60),
        "every target stored",
        "SELECT count(*) FROM linkledger.summary",
        |n| n == 48,
    )
    .await;
    wait_for_count(&store, Duration::from_secs(10), "the run closed", "SELECT count(*) FROM linkledger.runs r JOIN linkledger.fires f ON f.run_id = r.id WHERE f.enqueued_by <> 'test' AND r.status = 'succeeded'", |n| n == 1).await;
    second.stop(Duration::from_secs(15)).await;

    let stats = sb.stats();
    assert!(
        requests_at_kill < 48,
        "the kill came mid-run ({requests_at_kill} requests)"
    );
    // Only calls in flight at the kill (at most max_in_flight) may have been made twice.
    let twice = stats.requests - 48;
    assert!(twice <= 3, "{stats:?}");
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.fires WHERE enqueued_by <> 'test'"
        )
        .await,
        1
    );
    // Every request has its outcome: answered, or booked as abandoned in flight.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'sent'"
        )
        .await,
        0
    );
    // The killed process's calls in flight are booked `abandoned` at list price, since
    // nobody can know whether the API charged them. Each was made again, or its ledger
    // row was committed and the kill came before the request left.
    let abandoned = count(
        &store,
        "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'abandoned'",
    )
    .await as u64;
    assert!(
        (twice..=3).contains(&abandoned),
        "{abandoned} abandoned, {twice} requests made twice"
    );
    let never_sent = Decimal::from(abandoned - twice);
    let list_price: Decimal = "0.02003".parse().unwrap();
    assert_eq!(
        ledger_total(&store).await,
        stats.charged_usd.decimal() + never_sent * list_price,
        "the ledger is what the sandbox charged plus the list price of abandoned calls \
         that never reached it: {stats:?}"
    );
}

#[tokio::test]
async fn the_daemon_carries_on_after_postgres_restarts() {
    // A cluster of our own, so it can be restarted.
    let cluster = tokio::task::spawn_blocking(linkledger::ops::cluster::Cluster::start)
        .await
        .unwrap()
        .expect("a throwaway cluster");
    let url = cluster.url_for("postgres");
    let store = linkledger::store::Store::connect(&secrecy::SecretString::from(url.clone()), 4)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    fired_long_ago(&store).await;
    let sb = sandbox(with_latency(Duration::from_millis(100))).await;
    let wd = Workdir::new(&[("daemon.toml", &summary_job(30, ONE_FIRE, ONE_FIRE_CATCH_UP))]);
    let env = daemon_env(&url, &sb, &[("LINKLEDGER_API__MAX_IN_FLIGHT", "3")]);
    let mut d = Daemon::start(wd.path(), &env).await;
    wait_for_count(
        &store,
        Duration::from_secs(30),
        "some targets stored",
        "SELECT count(*) FROM linkledger.summary",
        |n| n >= 3,
    )
    .await;
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart().expect("restarting PostgreSQL");
        cluster
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let n = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM linkledger.summary")
            .fetch_one(store.pool())
            .await
            .unwrap_or(-1);
        if n == 30 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of 30 targets stored after the restart; daemon log:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "the daemon kept running: {}",
        d.log()
    );
    let (status, body) = d.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    d.stop(Duration::from_secs(15)).await;
    drop(store);
    drop(cluster);
}

/// Starts two daemons on one database, waits until they have stored `targets`
/// summaries, and stops both with SIGTERM: each must exit cleanly.
async fn two_daemons_store_every_target(sc: &Scene, targets: i64, within: Duration) {
    let (mut a, mut b) = sc.start_two_daemons().await;
    wait_for_count(
        &sc.store,
        within,
        "every target stored",
        "SELECT count(*) FROM linkledger.summary",
        |n| n == targets,
    )
    .await;
    stop_both(&mut a, &mut b, Duration::from_secs(15)).await;
}

#[tokio::test]
async fn two_daemons_together_stay_within_the_accounts_in_flight_limit() {
    let sc = scene(
        60,
        SandboxOptions {
            max_in_flight: 4,
            ..with_latency(Duration::from_millis(100))
        },
        &[("LINKLEDGER_API__MAX_IN_FLIGHT", "4")],
    )
    .await;
    let (store, sb) = (sc.store.clone(), &sc.sb);
    two_daemons_store_every_target(&sc, 60, Duration::from_secs(60)).await;
    let stats = sb.stats();
    assert!(stats.max_in_flight <= 4, "{stats:?}");
    assert_eq!(stats.throttled, 0, "{stats:?}");
    assert_eq!(stats.requests, 60);
    let workers = count(
        &store,
        "SELECT count(DISTINCT split_part(leased_by, '/', 1)) FROM linkledger.work",
    )
    .await;
    assert_eq!(workers, 2, "both daemons executed calls");
}

#[tokio::test]
async fn edited_job_files_take_effect_without_a_restart_and_a_bad_edit_keeps_the_previous_jobs() {
    // Yearly and nothing caught up: the first job makes no call.
    let quiet = "name = \"quiet\"\ntargets = [\"quiet.example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 0 1 1 *\"\ncatch_up = \"skip\"\n";
    let sc = scene_with_jobs(&[("quiet.toml", quiet)], SandboxOptions::default(), &[]).await;
    let store = sc.store.clone();
    let mut d = sc.start_daemon().await;

    // The added collection fired before, an hour ago: its latest missed fire (the last
    // minute's) is caught up as soon as it is loaded.
    seed_fire(
        &store,
        "added",
        "summary",
        chrono::Utc::now() - chrono::Duration::hours(1),
    )
    .await;
    sc.wd.write_job("added.toml", "name = \"added\"\ntargets = [\"added.example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"every minute\"\n");
    d.wait_for_log(Duration::from_secs(20), "job file not loaded")
        .await;
    assert!(
        d.log().contains("jobs/added.toml: collect[1].schedule"),
        "{}",
        d.log()
    );
    let (status, _) = d.get("/healthz").await;
    assert_eq!(status, 200, "the previous jobs keep running");

    sc.wd.write_job("added.toml", "name = \"added\"\ntargets = [\"added.example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"* * * * *\"\n");
    wait_for_count(
        &store,
        Duration::from_secs(20),
        "the added job's first fire stored",
        "SELECT count(*) FROM linkledger.summary WHERE target = 'added.example.com'",
        |n| n == 1,
    )
    .await;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.fires WHERE job = 'quiet'"
        )
        .await,
        0
    );
    d.stop(Duration::from_secs(15)).await;
}

#[tokio::test]
async fn a_reloaded_job_file_listing_a_target_twice_is_logged_as_a_warning() {
    let quiet = "name = \"quiet\"\ntargets = [\"quiet.example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 0 1 1 *\"\ncatch_up = \"skip\"\n";
    let sc = scene_with_jobs(&[("quiet.toml", quiet)], SandboxOptions::default(), &[]).await;
    let mut d = sc.start_daemon().await;
    sc.wd.write_job("dup.toml", "name = \"dup\"\ntargets = [\"example.com\", \"Example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"0 0 1 1 *\"\ncatch_up = \"skip\"\n");
    d.wait_for_log(Duration::from_secs(20), "is listed again")
        .await;
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("is listed again"))
        .unwrap_or_default();
    assert!(
        line.contains("job file warning")
            && line.contains(
                "jobs/dup.toml: targets[2]: `Example.com` (that is `example.com`) is listed again (first at targets[1])"
            ),
        "{log}"
    );
    d.stop(Duration::from_secs(15)).await;
}

#[tokio::test]
async fn a_refused_daemon_makes_no_call_keeps_the_work_queued_and_reports_unhealthy() {
    let sc = scene(
        3,
        SandboxOptions::default(),
        &[("DATAFORSEO_PASSWORD", "not-the-password")],
    )
    .await;
    let (store, sb) = (sc.store.clone(), &sc.sb);
    let mut d = sc.start_daemon().await;
    wait_for_count(
        &store,
        Duration::from_secs(20),
        "the fire enqueued",
        "SELECT count(*) FROM linkledger.work",
        |n| n == 3,
    )
    .await;
    // The refusal reaches /healthz when the credentials check's answer is read, which
    // under load may come after the fire is enqueued.
    wait_for(
        Duration::from_secs(20),
        "/healthz to name the refusal",
        || async { d.get("/healthz").await.1.contains("40100") },
    )
    .await;
    let (status, body) = d.get("/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("40100"), "{body}");
    // Let the daemon run on for a while (its scheduler ticks half a second past now,
    // many worker polls) before looking: a refused daemon must still claim nothing.
    wait_for_ticks_past_now(&d).await;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.work WHERE state = 'queued'"
        )
        .await,
        3
    );
    let stats = sb.stats();
    assert_eq!(stats.requests, 0, "{stats:?}");
    assert_eq!(
        stats.unauthorized, 1,
        "only the free credentials check: {stats:?}"
    );
    d.stop(Duration::from_secs(15)).await;
}

#[tokio::test]
async fn ctrl_c_on_a_once_run_cancels_its_work_and_no_daemon_pays_for_it_later() {
    let sc = slow_scene(
        20,
        Duration::from_millis(1500),
        2,
        &[("LINKLEDGER_QUEUE__SHUTDOWN_GRACE", "10s")],
    )
    .await;
    let store = sc.store.clone();
    let (code, out, err) = interrupt_once_run(&sc, Signal::SIGINT).await;
    assert_eq!(code, Some(130), "{out}\n{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    assert!(out.contains("cancelled before sending"), "{out}");
    assert!(!out.contains("not made"), "{out}");
    let requests_at_exit = sc.sb.stats().requests;
    assert!(requests_at_exit < 20, "interrupted mid-run");

    let once = "SELECT count(*) FROM linkledger.work w JOIN linkledger.runs r ON r.id = w.run_id WHERE r.kind = 'once'";
    assert_eq!(
        count(
            &store,
            &format!("{once} AND w.state IN ('queued', 'running')")
        )
        .await,
        0,
        "nothing is left for another process to claim"
    );
    let done = count(&store, &format!("{once} AND w.state = 'succeeded'")).await;
    let cancelled = count(&store, &format!("{once} AND w.state = 'cancelled'")).await;
    assert!(done >= 2, "the calls in flight finished: {done}");
    assert_eq!(done + cancelled, 20);
    assert!(
        out.contains(&format!("{cancelled} cancelled before sending")),
        "{out}"
    );
    assert_eq!(once_run_status(&store).await, "interrupted");
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'sent'"
        )
        .await,
        0,
        "every request has its outcome"
    );
    assert_eq!(
        ledger_total(&store).await,
        sc.sb.stats().charged_usd.decimal()
    );

    // A daemon started later on the same database runs its own schedule (one fire,
    // caught up) but never the interrupted run's work.
    let mut d = sc.start_daemon().await;
    wait_for_daemons_fire(&store, Duration::from_secs(60), "5 minutes").await;
    d.stop(Duration::from_secs(30)).await;
    assert_eq!(
        count(&store, &format!("{once} AND w.state = 'cancelled'")).await,
        cancelled,
        "the daemon claimed none of the once-run's work"
    );
    let by_daemon = count(
        &store,
        "SELECT count(*) FROM linkledger.api_calls c JOIN linkledger.runs r ON r.id = c.run_id WHERE r.kind = 'scheduled'",
    )
    .await;
    assert_eq!(by_daemon, 20, "the daemon made its own 20 calls only");
    // What the once-run bought before the signal, the daemon's fire of the same day
    // reuses; it buys the rest.
    let reused = count(
        &store,
        "SELECT count(*) FROM linkledger.api_calls c JOIN linkledger.runs r ON r.id = c.run_id WHERE r.kind = 'scheduled' AND c.outcome = 'reused'",
    )
    .await;
    assert_eq!(reused, done, "every target the once-run got is reused");
    assert_eq!(
        sc.sb.stats().requests,
        requests_at_exit + 20 - reused as u64
    );
}

#[tokio::test]
async fn sigterm_on_a_once_run_exits_143_with_the_run_interrupted() {
    let sc = slow_scene(10, Duration::from_millis(1000), 2, &[]).await;
    let (code, out, err) = interrupt_once_run(&sc, Signal::SIGTERM).await;
    assert_eq!(code, Some(143), "{out}\n{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert_eq!(once_run_status(&sc.store).await, "interrupted");
}

#[tokio::test]
async fn a_daemon_never_claims_the_work_a_killed_once_run_left_behind() {
    let sc = slow_scene(20, Duration::from_millis(1500), 2, &[]).await;
    let store = sc.store.clone();
    let mut child = sc.once_run_in_flight().await;
    child.kill().await.expect("kill -9 of the once-run");
    let requests_at_kill = sc.sb.stats().requests;
    let once =
        "FROM linkledger.work w JOIN linkledger.runs r ON r.id = w.run_id WHERE r.kind = 'once'";
    let left = count(
        &store,
        &format!("SELECT count(*) {once} AND w.state IN ('queued', 'running')"),
    )
    .await;
    assert!(left > 0, "the kill left work behind");
    let claims_before = count(&store, &format!("SELECT sum(w.attempt)::bigint {once}")).await;

    // The daemon runs its own fire (20 calls at 1.5 s, two at a time: longer than the
    // killed run's 5 s leases), and nothing of the once-run.
    let mut d = sc.start_daemon().await;
    wait_for_daemons_fire(&store, Duration::from_secs(90), "5 minutes").await;
    d.stop(Duration::from_secs(30)).await;
    assert_eq!(
        count(&store, &format!("SELECT sum(w.attempt)::bigint {once}")).await,
        claims_before,
        "no claim was made on the once-run's work"
    );
    assert_eq!(
        sc.sb.stats().requests,
        requests_at_kill + 20,
        "{:?}",
        sc.sb.stats()
    );
}

#[tokio::test]
async fn a_daemon_starts_with_a_date_that_aged_out_and_health_names_its_job() {
    let aged = (chrono::Utc::now() - chrono::Duration::days(400))
        .format("%Y-%m-%d")
        .to_string();
    let sc = scene_with_jobs(
        &[
            (
                "aged.toml",
                &format!(
                    "name = \"aged\"\ntargets = [\"a.com\"]\n[[collect]]\nendpoint = \"bulk_new_lost_backlinks\"\nschedule = \"0 0 1 1 *\"\nparams = {{ date_from = \"{aged}\" }}\n"
                ),
            ),
            ("daemon.toml", &summary_job(2, ONE_FIRE, ONE_FIRE_CATCH_UP)),
        ],
        SandboxOptions::default(),
        &[],
    )
    .await;
    // `jobs check` still refuses the file: the API would refuse the call.
    let check = linkledger(sc.wd.path(), &sc.env, &["jobs", "check"]).await;
    assert_eq!(check.status.code(), Some(2), "{}", stderr(&check));
    assert!(stderr(&check).contains("collect[1].params.date_from"));

    let mut d = sc.start_daemon().await;
    wait_for(
        Duration::from_secs(20),
        "the health check naming the job",
        || async {
            let (status, body) = d.get("/healthz").await;
            status == 503 && body.contains("job aged") && body.contains("one-year window")
        },
    )
    .await;
    assert!(
        d.log()
            .contains("warning: jobs/aged.toml: collect[1].params.date_from"),
        "{}",
        d.log()
    );
    d.stop(Duration::from_secs(15)).await;
    assert_eq!(sc.sb.stats().requests, 0, "nothing was sent for it");
}

#[tokio::test]
async fn a_second_ctrl_c_stops_a_once_run_without_waiting_for_its_calls_in_flight() {
    let sc = slow_scene(
        6,
        Duration::from_secs(20),
        2,
        &[("LINKLEDGER_QUEUE__SHUTDOWN_GRACE", "130s")],
    )
    .await;
    let mut child = sc.once_run_in_flight().await;
    let log = capture_stderr(&mut child);
    send_signal(&child, Signal::SIGINT);
    wait_for(
        Duration::from_secs(10),
        "the first signal handled",
        || async { log.lock().unwrap().contains("stopping: no new calls") },
    )
    .await;
    let started = Instant::now();
    send_signal(&child, Signal::SIGINT);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits without waiting for the 20-second answers")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(status.code(), Some(130), "{}", log.lock().unwrap());
    assert_eq!(
        count(
            &sc.store,
            "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'sent'"
        )
        .await,
        0,
        "the abandoned requests are booked"
    );
    assert_eq!(
        count(
            &sc.store,
            "SELECT count(*) FROM linkledger.api_calls WHERE outcome = 'abandoned'"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &sc.store,
            "SELECT count(*) FROM linkledger.work WHERE state IN ('queued', 'running')"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn two_daemons_together_stay_within_the_accounts_per_minute_limit() {
    // 30 calls at 20 a minute: the second minute's calls wait for the window to slide.
    let sc = scene(
        30,
        SandboxOptions {
            max_per_minute: 20,
            ..SandboxOptions::default()
        },
        &[("LINKLEDGER_API__MAX_PER_MINUTE", "20")],
    )
    .await;
    let (store, sb) = (sc.store.clone(), &sc.sb);
    two_daemons_store_every_target(&sc, 30, Duration::from_secs(120)).await;
    let stats = sb.stats();
    assert_eq!(stats.throttled, 0, "{stats:?}");
    assert_eq!(stats.requests, 30);
    // No 60 s of the ledger holds more than 20 starts, across both processes.
    let busiest = count(
        &store,
        "SELECT max(n) FROM (
             SELECT count(*) OVER (ORDER BY started_at
                                   RANGE BETWEEN interval '60 seconds' PRECEDING AND CURRENT ROW) AS n
             FROM linkledger.api_calls WHERE endpoint <> 'appendix/user_data') w",
    )
    .await;
    assert!(busiest <= 20, "{busiest} starts in one minute");
}

/// A job of one summary collection over one target that fires once at start (its
/// missed yearly fire caught up; see [`fired_long_ago`]).
fn one_fire_job(name: &str) -> String {
    format!(
        "name = \"{name}\"\ntargets = [\"{name}.example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"{ONE_FIRE}\"\n{ONE_FIRE_CATCH_UP}\n"
    )
}

#[tokio::test]
async fn a_collection_whose_fire_the_database_refuses_fails_alone_and_health_and_metrics_name_it() {
    // `broken` is scheduled before `fine` (the files load in name order).
    let sc = scene_with_jobs(
        &[
            ("broken.toml", &one_fire_job("broken")),
            ("fine.toml", &one_fire_job("fine")),
        ],
        SandboxOptions::default(),
        &[],
    )
    .await;
    let store = sc.store.clone();
    let long_ago = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z").unwrap();
    for job in ["broken", "fine"] {
        seed_fire(&store, job, "summary", long_ago.into()).await;
    }
    // The database refuses the work of `broken`'s fire the way it refuses a tag holding
    // a NUL character (22P05), whatever the job files say.
    sqlx::raw_sql(
        "CREATE FUNCTION public.refuse_broken() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.job = 'broken' THEN
                 RAISE EXCEPTION 'refused by the test' USING ERRCODE = '22P05';
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_broken BEFORE INSERT ON linkledger.work
             FOR EACH ROW EXECUTE FUNCTION public.refuse_broken();",
    )
    .execute(store.pool())
    .await
    .unwrap();

    let mut d = sc.start_daemon().await;
    wait_for_count(
        &store,
        Duration::from_secs(60),
        "the fine job's fire done",
        "SELECT count(*) FROM linkledger.runs r JOIN linkledger.fires f ON f.run_id = r.id
         WHERE f.job = 'fine' AND f.enqueued_by <> 'test' AND r.status = 'succeeded'",
        |n| n == 1,
    )
    .await;
    let (status, body) = d.get("/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("job broken, collection summary") && body.contains("refused by the test"),
        "{body}"
    );
    assert!(!body.contains("job fine"), "{body}");
    // The broken fire is the failed run it would have made, with why; it is not tried
    // again on every tick.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.runs r JOIN linkledger.fires f ON f.run_id = r.id
             WHERE f.job = 'broken' AND f.enqueued_by <> 'test' AND r.status = 'failed'
               AND r.message LIKE '%refused by the test%'",
        )
        .await,
        1
    );
    let failures = r#"linkledger_fire_failures_total{job="broken",collection="summary"}"#;
    wait_for_ticks_past_now(&d).await;
    let (_, metrics) = d.get("/metrics").await;
    assert_eq!(metric(&metrics, failures), Some(1.0), "{metrics}");
    assert!(
        d.log().contains("fire failed") && d.log().contains("job=broken"),
        "{}",
        d.log()
    );
    d.stop(Duration::from_secs(15)).await;
}

#[tokio::test]
async fn a_daemon_enqueues_what_is_due_at_start_before_it_computes_the_runway_bill() {
    // One target every minute (bought once a day, the rest reused): $0.02 a day
    // against a balance of $0.10, so the runway warning is logged once the bill is
    // computed.
    let sc = scene_with_jobs(
        &[(
            "daemon.toml",
            &summary_job(1, "* * * * *", "catch_up = \"latest\""),
        )],
        SandboxOptions {
            balance: linkledger::money::Usd(Decimal::new(10, 2)),
            ..SandboxOptions::default()
        },
        &[],
    )
    .await;
    fired_long_ago(&sc.store).await;
    let d = sc
        .run_daemon_until_log(Duration::from_secs(60), "the balance covers fewer than")
        .await;
    let log = d.log();
    let fired = log.find("fire enqueued").expect(&log);
    let projected = log.find("the balance covers fewer than").unwrap();
    assert!(
        fired < projected,
        "the fire due at start is enqueued before the bill: {log}"
    );
}

#[tokio::test]
async fn hundreds_of_idle_connections_neither_use_up_the_daemons_files_nor_keep_healthz_from_answering()
 {
    let sc = scene(3, SandboxOptions::default(), &[]).await;
    // 256 descriptors: fewer than the idle connections below.
    let mut d = Daemon::start_with_open_files(sc.wd.path(), &sc.env, 256).await;
    wait_for_daemons_fire(&sc.store, Duration::from_secs(60), "5 minutes").await;
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(tokio::net::TcpStream::connect(&d.addr).await.unwrap());
    }
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), d.get("/healthz"))
        .await
        .expect("a fresh connection is answered while 400 others sit idle");
    assert_eq!(status, 200, "the database is still reachable: {body}");
    drop(idle);
    d.stop(Duration::from_secs(15)).await;
}

#[tokio::test]
async fn an_idle_connection_to_the_health_port_is_closed_after_a_few_seconds() {
    use tokio::io::AsyncReadExt;
    let sc = scene(1, SandboxOptions::default(), &[]).await;
    let mut d = sc.start_daemon().await;
    let mut idle = tokio::net::TcpStream::connect(&d.addr).await.unwrap();
    let opened = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(30), idle.read(&mut buf))
        .await
        .expect("the daemon closes a connection that sends nothing");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, not answered: {read:?}"
    );
    assert!(
        opened.elapsed() >= Duration::from_secs(1),
        "it waited for a request first"
    );
    // A connection that does send its request is answered.
    let (status, _) = d.get("/healthz").await;
    assert!(status == 200 || status == 503);
    d.stop(Duration::from_secs(15)).await;
}

#[tokio::test]
async fn a_daemon_logs_each_collections_next_fire_at_start() {
    let sc = scene_with_jobs(
        &[("daemon.toml", &summary_job(1, "0 5 1 1 *", ""))],
        SandboxOptions::default(),
        &[],
    )
    .await;
    let d = sc
        .run_daemon_until_log(Duration::from_secs(30), "next fire")
        .await;
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("next fire"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("daemon") && line.contains("summary"),
        "{line}"
    );
    assert!(line.contains("0 5 1 1 *"), "{line}");
    assert!(line.contains("-01-01T05:00:00Z"), "{line}");
}

/// `path`'s status and JSON body (`/healthz`, `/readyz`).
async fn health_json(d: &Daemon, path: &str) -> (u16, serde_json::Value) {
    let (status, response) = d.get(path).await;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"));
    (status, json)
}

/// The broken files `/healthz` names, each as (file, why, what of it runs).
fn broken_files(health: &serde_json::Value) -> Vec<(String, String, String)> {
    health["checks"]["jobs"]["broken"]
        .as_array()
        .unwrap_or_else(|| panic!("no broken list: {health}"))
        .iter()
        .map(|b| {
            (
                b["file"].as_str().unwrap().to_string(),
                b["why"].as_str().unwrap().to_string(),
                b["running"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits until `d` is alive but degraded with exactly the broken files `files` (in
/// `/healthz`: 200, `jobs` degraded), not ready (`/readyz`: 503), and
/// `linkledger_job_files_broken` counts them; returns the `/healthz` JSON.
async fn wait_for_degraded(d: &Daemon, files: &[&str]) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, health) = health_json(d, "/healthz").await;
        let named: Vec<String> = broken_files(&health).into_iter().map(|b| b.0).collect();
        if status == 200
            && health["status"] == "degraded"
            && health["checks"]["jobs"]["state"] == "degraded"
            && named == files
        {
            let (ready, _) = health_json(d, "/readyz").await;
            assert_eq!(ready, 503, "degraded is not ready: {health}");
            let (_, metrics) = d.get("/metrics").await;
            assert_eq!(
                metric(&metrics, "linkledger_job_files_broken"),
                Some(files.len() as f64),
                "{metrics}"
            );
            return health;
        }
        assert!(
            Instant::now() < deadline,
            "not degraded with {files:?} within 30 s: {health}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `next fire` lines of `log` name `job`.
fn schedules(log: &str, job: &str) -> bool {
    log.lines()
        .any(|l| l.contains("next fire") && l.contains(&format!("job=\"{job}\"")))
}

/// Waits until the one fire of each of `jobs` (see [`one_fire_job`]) succeeded.
async fn wait_for_fires(store: &linkledger::store::Store, jobs: &[&str]) {
    let names: Vec<String> = jobs.iter().map(|j| format!("'{j}'")).collect();
    wait_for_count(
        store,
        Duration::from_secs(60),
        &format!("the fires of {jobs:?} done"),
        &format!(
            "SELECT count(*) FROM linkledger.runs r JOIN linkledger.fires f ON f.run_id = r.id
             WHERE f.job IN ({}) AND f.enqueued_by <> 'test' AND r.status = 'succeeded'",
            names.join(", ")
        ),
        |n| n == jobs.len() as i64,
    )
    .await;
}

#[tokio::test]
async fn one_broken_job_file_of_three_never_stops_the_others_across_a_reload_and_a_restart() {
    let broken = |name: &str| one_fire_job(name).replace(ONE_FIRE, "every minute");
    let sc = scene_with_jobs(
        &[
            ("alpha.toml", &one_fire_job("alpha")),
            ("beta.toml", &broken("beta")),
            ("gamma.toml", &one_fire_job("gamma")),
        ],
        SandboxOptions::default(),
        &[],
    )
    .await;
    let store = sc.store.clone();
    let long_ago = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z").unwrap();
    for job in ["alpha", "beta", "gamma"] {
        seed_fire(&store, job, "summary", long_ago.into()).await;
    }
    // `jobs check` refuses the directory, as before.
    let check = linkledger(sc.wd.path(), &sc.env, &["jobs", "check"]).await;
    assert_eq!(check.status.code(), Some(2), "{}", stderr(&check));
    assert!(stderr(&check).contains("jobs/beta.toml: collect[1].schedule"));

    // Start: the valid files run, the broken one is logged, named and counted.
    let mut d = sc.start_daemon().await;
    wait_for_fires(&store, &["alpha", "gamma"]).await;
    let health = wait_for_degraded(&d, &["jobs/beta.toml"]).await;
    let (_, why, running) = &broken_files(&health)[0];
    assert!(why.starts_with("collect[1].schedule: "), "{why}");
    assert_eq!(running, "nothing");
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("job file not loaded"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("ERROR") && line.contains("jobs/beta.toml: collect[1].schedule"),
        "{line}"
    );
    assert!(!schedules(&log, "beta"), "{log}");

    // Reload: beta fixed runs; alpha broken keeps its previous version running.
    let mark = d.log().len();
    sc.wd.write_job("beta.toml", &one_fire_job("beta"));
    sc.wd.write_job("alpha.toml", &broken("alpha"));
    wait_for_fires(&store, &["alpha", "beta", "gamma"]).await;
    let health = wait_for_degraded(&d, &["jobs/alpha.toml"]).await;
    let (_, why, running) = &broken_files(&health)[0];
    assert!(why.starts_with("collect[1].schedule: "), "{why}");
    assert!(
        running.contains("job alpha: its previous version"),
        "{running}"
    );
    let reloaded = d.log()[mark..].to_string();
    assert!(
        schedules(&reloaded, "alpha") && schedules(&reloaded, "beta"),
        "{reloaded}"
    );

    // Restart with alpha still broken: the daemon starts, alpha does not run.
    d.stop(Duration::from_secs(15)).await;
    let mut d = sc.start_daemon().await;
    let health = wait_for_degraded(&d, &["jobs/alpha.toml"]).await;
    assert_eq!(broken_files(&health)[0].2, "nothing");
    d.wait_for_log(Duration::from_secs(20), "next fire").await;
    let log = d.log();
    assert!(
        schedules(&log, "beta") && schedules(&log, "gamma") && !schedules(&log, "alpha"),
        "{log}"
    );
    assert!(
        log.contains("jobs/alpha.toml: collect[1].schedule"),
        "{log}"
    );

    // Fixed: ready again, nothing broken.
    sc.wd.write_job("alpha.toml", &one_fire_job("alpha"));
    wait_for(
        Duration::from_secs(30),
        "ready once alpha is fixed",
        || async {
            let (status, health) = health_json(&d, "/readyz").await;
            status == 200 && health["status"] == "ok" && broken_files(&health).is_empty()
        },
    )
    .await;
    let (_, metrics) = d.get("/metrics").await;
    assert_eq!(metric(&metrics, "linkledger_job_files_broken"), Some(0.0));
    d.stop(Duration::from_secs(15)).await;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.fires WHERE enqueued_by <> 'test'"
        )
        .await,
        3,
        "each job fired once"
    );
}

#[tokio::test]
async fn a_job_file_with_a_nul_in_a_tag_is_reported_and_the_other_files_collections_fire_on_time() {
    let nul = format!(
        "{}params = {{ tag = \"weekly\\u0000\" }}\n",
        one_fire_job("nul")
    );
    let sc = scene_with_jobs(
        &[("fine.toml", &one_fire_job("fine")), ("nul.toml", &nul)],
        SandboxOptions::default(),
        &[],
    )
    .await;
    let store = sc.store.clone();
    let long_ago = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z").unwrap();
    for job in ["fine", "nul"] {
        seed_fire(&store, job, "summary", long_ago.into()).await;
    }
    let mut d = sc.start_daemon().await;
    wait_for_fires(&store, &["fine"]).await;
    let health = wait_for_degraded(&d, &["jobs/nul.toml"]).await;
    let (_, why, _) = &broken_files(&health)[0];
    assert_eq!(
        why,
        "collect[1].params.tag: holds a NUL character (\\0), which PostgreSQL cannot store"
    );
    let log = d.log();
    assert!(
        log.contains("jobs/nul.toml: collect[1].params.tag: holds a NUL character"),
        "{log}"
    );
    assert!(!log.contains('\0'), "no raw NUL reaches the log");
    d.stop(Duration::from_secs(15)).await;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.fires WHERE job = 'nul' AND enqueued_by <> 'test'"
        )
        .await,
        0
    );
    assert_eq!(
        sc.sb.stats().requests,
        1,
        "only fine's call: {:?}",
        sc.sb.stats()
    );
}

#[tokio::test]
async fn with_no_job_file_that_loads_the_daemon_starts_says_so_and_idles_not_ready() {
    let sc = scene_with_jobs(
        &[("broken.toml", "name = \"broken\"\n")],
        SandboxOptions::default(),
        &[],
    )
    .await;
    let mut d = sc.start_daemon().await;
    wait_for_degraded(&d, &["jobs/broken.toml"]).await;
    assert!(
        d.log()
            .contains("no job runs: no job file loads (1 broken file); the daemon idles"),
        "{}",
        d.log()
    );
    d.stop(Duration::from_secs(15)).await;
    assert_eq!(sc.sb.stats().requests, 0);
}

#[tokio::test]
async fn a_job_file_an_edit_breaks_is_named_by_health_and_metrics_while_its_previous_version_runs()
{
    let sc = scene_with_jobs(
        &[
            ("alpha.toml", &one_fire_job("alpha")),
            ("gamma.toml", &one_fire_job("gamma")),
        ],
        SandboxOptions::default(),
        &[],
    )
    .await;
    let mut d = sc.start_daemon().await;
    wait_for(
        Duration::from_secs(30),
        "healthy with every file",
        || async {
            let (status, health) = health_json(&d, "/healthz").await;
            status == 200 && health["status"] == "ok"
        },
    )
    .await;
    let mark = d.log().len();
    sc.wd
        .write_job("alpha.toml", "name = \"alpha\"\ntargets = [\"a.com\"]\n[[collect]]\nendpoint = \"nope\"\nschedule = \"@daily\"\n");
    let health = wait_for_degraded(&d, &["jobs/alpha.toml"]).await;
    let (_, why, running) = &broken_files(&health)[0];
    assert!(why.starts_with("collect[1].endpoint: "), "{why}");
    assert!(
        running.contains("job alpha: its previous version"),
        "{running}"
    );
    let reloaded = d.log()[mark..].to_string();
    assert!(
        schedules(&reloaded, "alpha") && schedules(&reloaded, "gamma"),
        "{reloaded}"
    );
    d.stop(Duration::from_secs(15)).await;
}
