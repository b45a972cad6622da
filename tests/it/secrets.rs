//! Secrets never reach a log line, an error or a database row.

use linkledger::sandbox::SandboxOptions;

use crate::common::*;

const PASSWORD: &str = "pa55-Wrd-8c1f0e";

#[tokio::test]
async fn no_log_line_error_or_row_contains_the_api_password() {
    let db = TestDb::new().await;
    let sb = sandbox(SandboxOptions {
        password: PASSWORD.into(),
        fault_rate: 0.3,
        ..SandboxOptions::default()
    })
    .await;
    let job = "name = \"s\"\ntargets = [\"a.com\", \"b.com\", \"c.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n";
    let wd = Workdir::new(&[("s.toml", job)]);
    let env = with_env(
        env_for(&db, &sb),
        &[
            ("DATAFORSEO_PASSWORD", PASSWORD),
            ("LINKLEDGER_LOG", "trace"),
        ],
    );
    let ok = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert!(ok.status.success(), "{}", stderr(&ok));

    // Neither a refused login nor a configuration error echoes it.
    let wrong = with_env(env.clone(), &[("DATAFORSEO_LOGIN", "someone-else")]);
    let refused = linkledger(wd.path(), &wrong, &["run", "--once"]).await;
    assert_eq!(refused.status.code(), Some(1));
    let bad_cfg = with_env(env.clone(), &[("LINKLEDGER_API__TIMEOUT", "forever")]);
    let bad = linkledger(wd.path(), &bad_cfg, &["run", "--once"]).await;
    assert_eq!(bad.status.code(), Some(2));

    for out in [&ok, &refused, &bad] {
        let text = format!("{}{}", stdout(out), stderr(out));
        assert!(!text.is_empty());
        assert!(!text.contains(PASSWORD), "secret in output: {text}");
    }
    let store = db.store().await;
    let dump: String = sqlx::query_scalar(
        "SELECT string_agg(t::text, '\n') FROM (
            SELECT to_jsonb(r)::text AS t FROM linkledger.runs r
            UNION ALL SELECT to_jsonb(c)::text FROM linkledger.api_calls c
            UNION ALL SELECT to_jsonb(w)::text FROM linkledger.raw_responses w
            UNION ALL SELECT to_jsonb(s)::text FROM linkledger.summary s) x",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(dump.contains("a.com"), "the dump covers the data");
    assert!(!dump.contains(PASSWORD), "secret in the database");
}

#[tokio::test]
async fn a_rejected_database_url_is_quoted_without_its_password_in_the_query() {
    let wd = Workdir::new(&[]);
    for url in [
        "postgres://127.0.0.1:5432/x?password=sekrit-in-query&sslmode=bogus",
        "postgres://me:sekrit-in-authority@127.0.0.1:5432/x?sslmode=bogus",
    ] {
        let out = linkledger(
            wd.path(),
            &[("DATABASE_URL".to_string(), url.to_string())],
            &["migrate"],
        )
        .await;
        assert!(!out.status.success());
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(said.contains("is not a PostgreSQL URL"), "{said}");
        assert!(!said.contains("sekrit"), "{said}");
    }
}
