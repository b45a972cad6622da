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
