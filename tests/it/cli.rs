//! `plan` spends nothing. (`spend` is tested in spend.rs.)

use crate::common::*;

const JOB: &str = "name = \"brands\"\ntargets = [\"a.com\", \"b.com\", \"c.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n[[collect]]\nendpoint = \"bulk_ranks\"\nschedule = \"@daily\"\n";

#[tokio::test]
async fn plan_lists_each_collections_calls_with_the_estimate_and_spends_nothing() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[("brands.toml", JOB)]);
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["plan"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // 3 summary calls of 1 row, 1 bulk_ranks call of 3 rows.
    assert!(text.contains("summary (3 calls)"), "{text}");
    assert!(text.contains("bulk_ranks (1 call)"), "{text}");
    assert!(text.contains("4 calls, estimated cost $0.08018"), "{text}");
    assert_eq!(sb.stats().requests, 0);
    assert_eq!(sb.stats().unauthorized, 0);
}

#[tokio::test]
async fn run_once_with_no_jobs_says_where_it_looked_and_exits_2_having_written_nothing() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[]);
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "no jobs in {} (jobs.dir, or LINKLEDGER_JOBS__DIR): nothing to collect",
            wd.path().join("jobs").display()
        )),
        "{err}"
    );
    assert!(!stdout(&out).contains("succeeded"), "{}", stdout(&out));
    assert_eq!(sb.stats().requests, 0);
    let mut conn = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&db.url).await.unwrap()
    };
    let schemas: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'linkledger'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(schemas, 0, "not even the schema was created");
}

#[tokio::test]
async fn an_internationalised_domain_is_sent_and_stored_as_its_punycode_written_bare_or_as_a_url() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[(
        "idn.toml",
        "name = \"idn\"\ntargets = [\"münchen.de\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n[[collect]]\nendpoint = \"bulk_ranks\"\nschedule = \"@daily\"\ntargets = [\"https://www.MÜNCHEN.de/\", \"https://münchen.de/stadt\"]\n",
    )]);
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let store = db.store().await;
    let stored = |sql: &'static str| {
        let store = store.clone();
        async move {
            sqlx::query_scalar::<_, String>(sql)
                .fetch_all(store.pool())
                .await
                .unwrap()
        }
    };
    assert_eq!(
        stored("SELECT target FROM linkledger.summary").await,
        vec!["xn--mnchen-3ya.de"]
    );
    assert_eq!(
        stored("SELECT target FROM linkledger.bulk_ranks ORDER BY target").await,
        vec!["https://xn--mnchen-3ya.de/stadt", "xn--mnchen-3ya.de"]
    );
    // What was sent, and what the API echoed.
    assert_eq!(
        stored(
            "SELECT DISTINCT t FROM linkledger.api_calls, unnest(targets) t \
             WHERE endpoint <> 'appendix/user_data' ORDER BY t"
        )
        .await,
        vec!["https://xn--mnchen-3ya.de/stadt", "xn--mnchen-3ya.de"]
    );
}

#[tokio::test]
async fn the_demo_collects_once_on_each_simulated_day_with_calls_and_rows_dated_that_day() {
    let db = TestDb::new().await;
    let wd = Workdir::new(&[]);
    let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
    let before = chrono::Utc::now().date_naive();
    let out = linkledger(wd.path(), &env, &["demo", "--days", "3"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("once a day for 3 simulated days"), "{text}");
    assert!(text.contains("day 3 of 3: "), "{text}");
    let today = chrono::Utc::now().date_naive();
    let mut conn = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&db.url).await.unwrap()
    };
    let call_days: Vec<chrono::NaiveDate> = sqlx::query_scalar(
        "SELECT DISTINCT (started_at AT TIME ZONE 'UTC')::date FROM linkledger.api_calls
         WHERE endpoint <> 'appendix/user_data' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let summary_days: Vec<chrono::NaiveDate> =
        sqlx::query_scalar("SELECT DISTINCT collected_on FROM linkledger.summary ORDER BY 1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    // (A run across UTC midnight has its days from the day it started.)
    if before == today {
        let days: Vec<chrono::NaiveDate> = (0..3u64)
            .rev()
            .map(|back| today - chrono::Days::new(back))
            .collect();
        assert_eq!(call_days, days);
        assert_eq!(summary_days, days);
    }
    // The sandbox's data move from day to day: a target's profile is not the same
    // figure three times.
    let figures: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT backlinks) FROM linkledger.summary
         WHERE target = 'dataforseo.com' AND options = linkledger.default_options('summary')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(figures > 1, "{figures}");

    // Days out of range are refused before anything runs.
    for days in ["0", "32"] {
        let out = linkledger(wd.path(), &env, &["demo", "--days", days]).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "--days {days}: {}",
            stderr(&out)
        );
    }
}
