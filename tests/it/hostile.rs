//! Hostile answers: a paid answer is kept whatever its bytes, and what it cost is
//! booked, never zero. Against the sandbox's `quirk-body-*` targets, charged as usual
//! and answered with a body that is not JSON (truncated, `NaN`, nested too deep, a lone
//! surrogate) or that `jsonb` refuses (a NUL character).

use linkledger::sandbox::Sandbox;
use rust_decimal::Decimal;

use crate::common::*;

/// The one call of `endpoint` in the ledger: its outcome, cost and error.
async fn the_call(store: &linkledger::store::Store, endpoint: &str) -> (String, Decimal, String) {
    sqlx::query_as(
        "SELECT outcome, cost_usd, coalesce(error, '') FROM linkledger.api_calls WHERE endpoint = $1",
    )
    .bind(endpoint)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// A `run --once` of one `endpoint` collection (`extra` added to it) for the target
/// `QUIRK.example.com`: its call fails (the answer cannot be read), once: no retry
/// bought it again.
async fn once_failing(quirk: &str, endpoint: &str, extra: &str) -> (TestDb, Sandbox, Workdir) {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[(
        "bad.toml",
        &format!(
            "name = \"bad\"\ntargets = [\"{quirk}.example.com\"]\n[[collect]]\nendpoint = \"{endpoint}\"\nschedule = \"@daily\"\n{extra}"
        ),
    )]);
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(1), "{quirk}: {}", stderr(&out));
    assert_eq!(sb.stats().requests, 1, "{quirk}: {:?}", sb.stats());
    (db, sb, wd)
}

#[tokio::test]
async fn an_answer_that_is_not_json_or_not_storable_as_json_is_kept_as_bytes_and_never_bought_again()
 {
    for quirk in [
        "quirk-body-truncated",
        "quirk-body-nan",
        "quirk-body-deep",
        "quirk-body-surrogate",
        "quirk-body-nul",
    ] {
        let (db, sb, wd) = once_failing(quirk, "summary", "").await;
        let store = db.store().await;
        let (outcome, cost, error) = the_call(&store, "summary").await;
        assert_eq!(outcome, "invalid_response", "{quirk}");
        assert!(error.contains("not bought again"), "{quirk}: {error}");
        // What the API charged is what the ledger booked.
        assert_eq!(cost, sb.stats().charged_usd.decimal(), "{quirk}");
        // The body is kept, as the bytes that came (or, refused as JSON, as its text).
        let (json, bytes): (i64, i64) =
            sqlx::query_as("SELECT count(body), count(unparsed) FROM linkledger.raw_responses")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!((json, bytes), (0, 1), "{quirk}");
        let kept: Vec<u8> = sqlx::query_scalar("SELECT unparsed FROM linkledger.raw_responses")
            .fetch_one(store.pool())
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&kept);
        assert!(
            text.starts_with('{') && text.contains("\"status_code\""),
            "{quirk}: {}",
            &text[..text.len().min(80)]
        );
        // `replay` passes over it and stops for nothing.
        let replay = linkledger(wd.path(), &env_for(&db, &sb), &["replay"]).await;
        assert!(replay.status.success(), "{quirk}: {}", stderr(&replay));
    }
}

#[tokio::test]
async fn a_large_answer_that_cannot_be_stored_as_json_is_kept_as_bytes_too() {
    // Monthly history since 2019: over the size read at once, so it is first offered
    // to the database as it arrived, refused as JSON, then kept as bytes.
    for quirk in ["quirk-body-truncated", "quirk-body-nul"] {
        let (db, sb, _wd) = once_failing(
            quirk,
            "history",
            "params = { date_from = \"2019-01-01\" }\n",
        )
        .await;
        let store = db.store().await;
        let (outcome, cost, size): (String, Decimal, i64) = sqlx::query_as(
            "SELECT c.outcome, c.cost_usd, octet_length(r.unparsed)::bigint
             FROM linkledger.api_calls c JOIN linkledger.raw_responses r ON r.api_call_id = c.id
             WHERE c.endpoint = 'history'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(outcome, "invalid_response", "{quirk}");
        assert_eq!(cost, sb.stats().charged_usd.decimal(), "{quirk}");
        assert!(size > 32 * 1024, "{quirk}: {size} bytes kept");
    }
}

#[tokio::test]
async fn an_answer_over_the_size_held_is_streamed_to_storage_kept_whole_and_not_bought_again() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[(
        "big.toml",
        "name = \"big\"\ntargets = [\"a.example.com\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@daily\"\nparams = { date_from = \"2019-01-01\" }\n",
    )]);
    // History since 2019 is over 32 KiB: written aside as it arrives, then copied into
    // storage a piece at a time.
    let env = with_env(
        env_for(&db, &sb),
        &[("LINKLEDGER_API__MAX_ANSWER", "32KiB")],
    );
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(sb.stats().requests, 1, "{:?}", sb.stats());
    let store = db.store().await;
    let (outcome, cost, error) = the_call(&store, "history").await;
    assert_eq!(outcome, "invalid_response");
    assert!(
        error.contains("larger than api.max_answer (32768 bytes") && error.contains("kept raw"),
        "{error}"
    );
    // Booked at its estimate, which is what the API charged for it.
    assert_eq!(cost, sb.stats().charged_usd.decimal());
    // Kept whole, byte for byte: the whole answer, which reads as the API's JSON.
    let (size, status, items): (i64, String, i64) = sqlx::query_as(
        "SELECT octet_length(unparsed)::bigint,
                convert_from(unparsed, 'UTF8')::jsonb ->> 'status_code',
                jsonb_array_length(convert_from(unparsed, 'UTF8')::jsonb
                                   -> 'tasks' -> 0 -> 'result' -> 0 -> 'items')::bigint
         FROM linkledger.raw_responses WHERE body IS NULL",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(size > 32 * 1024, "{size} bytes kept");
    assert_eq!(status, "20000");
    assert!(items > 12, "{items} months kept");
    // The bound holds the other way too: the same call under the default bound loads.
    let db = TestDb::new().await;
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn a_write_the_database_refuses_ends_the_call_with_that_reason_not_a_dead_process() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let store = db.store().await;
    // Every summary row is refused, as a full disk or a broken constraint would.
    sqlx::raw_sql(
        "CREATE FUNCTION linkledger_test_refuse() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'the test refuses this row'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON linkledger.summary
             FOR EACH ROW EXECUTE FUNCTION linkledger_test_refuse();",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let wd = Workdir::new(&[(
        "refused.toml",
        "name = \"refused\"\ntargets = [\"a.example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
    )]);
    let env = with_env(
        env_for(&db, &sb),
        &[
            ("LINKLEDGER_API__MAX_ATTEMPTS", "2"),
            ("LINKLEDGER_API__RETRY_BASE_DELAY", "10ms"),
            ("LINKLEDGER_API__RETRY_MAX_DELAY", "10ms"),
        ],
    );
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        linkledger(wd.path(), &env, &["run", "--once"]),
    )
    .await
    .expect("the run ends without waiting for a lease to lapse");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Bought once: the retry loaded from the stored answer.
    assert_eq!(sb.stats().requests, 1, "{:?}", sb.stats());
    let (state, why): (String, String) =
        sqlx::query_as("SELECT state, last_error FROM linkledger.work")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(state, "exhausted");
    assert!(why.contains("the test refuses this row"), "{why}");
    assert!(!why.contains("process died"), "{why}");
}

#[tokio::test]
async fn a_gzip_bomb_is_read_only_up_to_the_size_kept_and_nothing_of_it_is_stored() {
    // About 1 MB on the wire, the answer then 1 GiB of spaces once unpacked (still
    // valid JSON): read whole, it would load; past api.max_answer it is written aside,
    // and past api.max_kept reading stops, nothing kept, not bought again.
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[(
        "bomb.toml",
        "name = \"bomb\"\ntargets = [\"quirk-body-gzip-bomb.example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
    )]);
    let env = with_env(
        env_for(&db, &sb),
        &[
            ("LINKLEDGER_API__MAX_ANSWER", "1MiB"),
            ("LINKLEDGER_API__MAX_KEPT", "48MiB"),
        ],
    );
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(sb.stats().requests, 1, "{:?}", sb.stats());
    let store = db.store().await;
    let (outcome, cost, error) = the_call(&store, "summary").await;
    assert_eq!(outcome, "invalid_response");
    assert!(
        error.contains("larger than api.max_kept (50331648 bytes"),
        "{error}"
    );
    assert_eq!(cost, sb.stats().charged_usd.decimal());
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM linkledger.raw_responses")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(kept, 0);
}

#[tokio::test]
async fn a_size_kept_over_what_postgresql_holds_in_one_value_is_refused() {
    let wd = Workdir::new(&[]);
    let out = linkledger(
        wd.path(),
        &[("LINKLEDGER_API__MAX_KEPT".into(), "2GiB".into())],
        &["jobs", "check"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("api.max_kept"), "{}", stderr(&out));
}
