//! The account's own money rules beyond the daily cap: its spending limit per minute
//! (`money.limits.minute`) as a cap (each call reserves its estimate in its UTC minute
//! across processes, and a call that would cross the limit waits for the next minute
//! instead of meeting a 40203, which pauses every call until midnight), its requests
//! per day (`rates.limits.day`) as a cap (a once-run stops at it and says so, nothing
//! refused by the API), and a day booked at a gateway's flat price reconciled as such.

use chrono::{DateTime, Utc};
use linkledger::money::Usd;
use linkledger::store::reconcile::MinuteGrant;

use crate::common::*;

fn usd(s: &str) -> Usd {
    s.parse().unwrap()
}

/// A sandbox that answers as the real API (its calls are booked) with the account's
/// own `limits` set.
async fn account_sandbox(
    limits: linkledger::sandbox::AccountLimits,
) -> linkledger::sandbox::Sandbox {
    sandbox(linkledger::sandbox::SandboxOptions {
        identify: false,
        limits,
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_minutes_reservations_stop_at_the_cap_and_a_reservation_given_back_makes_room() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let cap = usd("0.05");
    // The minute may turn while the steps run: then they run again in the new one.
    for _ in 0..3 {
        let mut minutes: Vec<DateTime<Utc>> = Vec::new();
        let mut grants = Vec::new();
        for _ in 0..3 {
            grants.push(
                store
                    .reserve_minute("api.test", usd("0.02"), cap)
                    .await
                    .unwrap(),
            );
        }
        let released = match grants[..] {
            [
                MinuteGrant::Reserved(a),
                MinuteGrant::Reserved(b),
                MinuteGrant::Wait(wait),
            ] => {
                minutes.extend([a, b]);
                assert!(wait <= std::time::Duration::from_secs(60), "{wait:?}");
                store
                    .release_minute("api.test", a, usd("0.02"))
                    .await
                    .unwrap();
                a
            }
            _ => {
                // Only when two of them fell in different minutes.
                sqlx::query("DELETE FROM linkledger.spend_minutes")
                    .execute(store.pool())
                    .await
                    .unwrap();
                continue;
            }
        };
        let again = store
            .reserve_minute("api.test", usd("0.02"), cap)
            .await
            .unwrap();
        if again != MinuteGrant::Reserved(released)
            && Utc::now() >= released + chrono::Duration::minutes(1)
        {
            continue;
        }
        assert_eq!(
            again,
            MinuteGrant::Reserved(released),
            "room made by the release"
        );
        assert_eq!(minutes[0], minutes[1]);
        // Another account's minute is its own; an estimate over the cap alone goes in
        // an empty minute, and nothing after it.
        let big = store
            .reserve_minute("other.test", usd("0.10"), cap)
            .await
            .unwrap();
        assert!(matches!(big, MinuteGrant::Reserved(_)), "{big:?}");
        let after = store
            .reserve_minute("other.test", usd("0.01"), cap)
            .await
            .unwrap();
        if let MinuteGrant::Reserved(m) = after {
            assert_ne!(
                MinuteGrant::Reserved(m),
                big,
                "nothing after it in its minute"
            );
        }
        return;
    }
    panic!("three tries each crossed a minute");
}

#[tokio::test]
async fn a_call_over_the_accounts_limit_per_minute_waits_for_the_next_minute_instead_of_a_40203() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = account_sandbox(linkledger::sandbox::AccountLimits {
        money_minute: Some(usd("0.05")),
        ..Default::default()
    })
    .await;
    // The daemon's sample: the account's limit per minute is known to the database.
    executor(&store, &sb, 4)
        .sample_account()
        .await
        .unwrap()
        .unwrap();
    let list: Vec<String> = (0..4).map(|i| format!("minute{i}.com")).collect();
    let wd = Workdir::new(&[("minute.toml", &job_toml("minute", "summary", &list, ""))]);
    // plan shows the account's limits per minute as sampled.
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["plan"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("money.limits.minute (the account's own) $0.05: each call reserves its estimate in its minute"),
        "{text}"
    );
    assert!(
        text.contains("rates.limits.minute (the account's own) 2000 requests a minute: calls follow api.max_per_minute (2000), no looser"),
        "{text}"
    );
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    // Without the reservation three calls go in the first minute ($0.06009, the
    // sandbox refuses only once $0.05 is reached) and the fourth meets its 40203,
    // which stops every call until midnight.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // $0.02003 a call: at most two in a minute's $0.05, so the four took two minutes.
    let per_minute: Vec<(DateTime<Utc>, i64)> = sqlx::query_as(
        "SELECT date_trunc('minute', started_at), count(*) FROM linkledger.api_calls
         WHERE endpoint = 'summary' AND outcome = 'ok' GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        per_minute.iter().map(|m| m.1).sum::<i64>(),
        4,
        "{per_minute:?}"
    );
    assert!(per_minute.len() >= 2, "{per_minute:?}");
    assert!(per_minute.iter().all(|m| m.1 <= 2), "{per_minute:?}");
    assert_eq!(sb.stats().charged_usd, usd("0.08012"));
    sb.stop().await;
}

#[tokio::test]
async fn a_once_run_stops_when_the_accounts_requests_for_the_day_are_used_up_and_says_so() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = account_sandbox(linkledger::sandbox::AccountLimits {
        rate_day: Some(3),
        ..Default::default()
    })
    .await;
    // Another consumer of the account made one request today; the daemon's sample
    // reads the limit and that count.
    sb.other_consumer(&linkledger::sandbox::OtherConsumer {
        usd: usd("0.02"),
        requests: 1,
        api: "backlinks".into(),
        function: "summary".into(),
    });
    let exec = executor(&store, &sb, 4);
    let host = exec.client().api_host().to_string();
    exec.sample_account().await.unwrap().unwrap();
    let limits = store.latest_limits(&host).await.unwrap();
    assert_eq!(limits.rate_day, Some(3));
    // The day's requests start from the account's own count.
    let seeded: Vec<(String, i64)> =
        sqlx::query_as("SELECT api_host, requests FROM linkledger.request_days")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(seeded, [(host.clone(), 1)]);
    let list: Vec<String> = (0..4).map(|i| format!("perday{i}.com")).collect();
    let wd = Workdir::new(&[("perday.toml", &job_toml("perday", "summary", &list, ""))]);
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["plan"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("rates.limits.day (the account's own) 3 requests a day: each paid call takes one of the day's; the busiest day")
            && text.contains("plans 4 calls, over it: the calls past it stop until 00:00 UTC"),
        "{text}"
    );
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{err}", stdout(&out));
    assert!(
        err.contains("run halted: the account's own request limit per day (rates.limits.day, 3 requests) is used up; calls resume after 00:00 UTC"),
        "{err}"
    );
    // Two of the day's three were left: two calls sent, none refused by the API.
    let stats = sb.stats();
    assert_eq!(stats.requests, 2, "{stats:?}");
    assert_eq!(stats.throttled, 0, "{stats:?}");
    let sent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM linkledger.api_calls WHERE endpoint = 'summary'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(sent, 2);
    let counted: i64 =
        sqlx::query_scalar("SELECT requests FROM linkledger.request_days WHERE api_host = $1")
            .bind(&host)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(counted, 3, "the other consumer's request and ours");
    sb.stop().await;
}

#[tokio::test]
async fn calls_stopped_at_the_days_requests_resume_when_the_accounts_limit_is_raised() {
    use linkledger::collect::executor::HaltBy;
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let caps =
        linkledger::money::budget::AccountCaps::new(linkledger::money::budget::CapsInForce {
            money_minute: None,
            requests_day: Some(1),
        });
    let exec = executor(&store, &sb, 2).with_account_caps(caps.clone());
    let list: Vec<String> = (0..3).map(|i| format!("raised{i}.com")).collect();
    let job = job_for("summary", &list, "");
    run_once(&exec, &[&job], linkledger::store::RunKind::Once, today())
        .await
        .unwrap();
    assert_eq!(sb.stats().requests, 1);
    let halt = exec.halted().expect("stopped at the day's one request");
    assert_eq!(halt.by, HaltBy::RequestsPerDay(1));
    // The daemon's sample reads a raised limit: calls resume against it.
    caps.set_requests_day(Some(10));
    assert_eq!(exec.halted(), None);
    run_once(&exec, &[&job], linkledger::store::RunKind::Once, today())
        .await
        .unwrap();
    // The first target's answer of today is reused; the other two are bought.
    assert_eq!(sb.stats().requests, 3);
    assert_eq!(exec.halted(), None);
    sb.stop().await;
}

#[tokio::test]
async fn a_days_requests_are_taken_up_to_the_cap_and_one_given_back_makes_room() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let mut days = Vec::new();
    for _ in 0..2 {
        days.push(store.reserve_request("api.test", 2).await.unwrap());
    }
    let full = store.reserve_request("api.test", 2).await.unwrap();
    assert!(days.iter().all(Option::is_some), "{days:?}");
    // Unless the UTC day turned between the steps.
    if days[0] == days[1] {
        assert_eq!(full, None, "the third of a two-request day");
        store
            .release_request("api.test", days[0].unwrap())
            .await
            .unwrap();
        assert_eq!(
            store.reserve_request("api.test", 2).await.unwrap(),
            days[0],
            "room made by the one given back"
        );
    }
    // Another account's day is its own.
    assert!(
        store
            .reserve_request("other.test", 2)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_day_booked_at_a_gateways_flat_price_reconciles_as_the_gateways_price() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let exec = executor(&store, &sb, 4).with_prices(linkledger::api::prices::Prices {
        flat_per_call: Some(usd("0.05")),
        ..Default::default()
    });
    let host = exec.client().api_host().to_string();
    let list: Vec<String> = (0..3).map(|i| format!("gateway{i}.com")).collect();
    let job = job_for("summary", &list, "");
    run_once(&exec, &[&job], linkledger::store::RunKind::Once, today())
        .await
        .unwrap();
    // The ledger books $0.05 a call; the API (the sandbox) reported and charged its own.
    let charged = sb.stats().charged_usd;
    assert_eq!(charged, usd("0.06009"));
    exec.sample_account()
        .await
        .unwrap()
        .expect("the books read");
    let tomorrow = today().succ_opt().unwrap();
    let closed =
        linkledger::ops::reconcile::reconcile_closed_days(&store, &host, tomorrow, usd("0.001"))
            .await
            .unwrap();
    let total = closed[0].assessed.total_row();
    assert_eq!(total.kind, "gateway_price", "{total:?}");
    assert_eq!(total.account_usd, charged);
    assert_eq!(total.ledger_usd, usd("0.15"));
    assert!(
        total
            .explanation
            .contains("the ledger books the gateway's flat price ($0.15)"),
        "{}",
        total.explanation
    );
    // Nothing is settled: the gateway's price is what was paid.
    assert!(closed[0].assessed.settlements.is_empty());
    sb.stop().await;
}
