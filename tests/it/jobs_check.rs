//! Job-file mistakes: each gives its message and exit status 2, and nothing is written.

use crate::common::*;

const GOOD: &str = "name = \"good\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n";

/// (file body, text the message must contain)
fn mistakes() -> Vec<(&'static str, String, &'static str)> {
    let with = |extra: &str| format!("{GOOD}{extra}");
    vec![
        ("unknown key", format!("nmae = \"x\"\n{GOOD}"), "nmae: unknown key"),
        ("typo in endpoint", GOOD.replace("\"summary\"", "\"sumary\""), "did you mean `summary`"),
        ("bad cron", GOOD.replace("@daily", "61 * * * *"), "collect[1].schedule"),
        ("six-field cron", GOOD.replace("@daily", "0 0 6 * * *"), "collect[1].schedule"),
        ("bad timezone", format!("timezone = \"Mars/Olympus\"\n{GOOD}"), "timezone"),
        ("unknown param", with("params = { include_subdomain = true }\n"), "collect[1].params.include_subdomain"),
        ("wrong param type", with("params = { include_subdomains = \"yes\" }\n"), "collect[1].params.include_subdomains"),
        ("param out of range", with("params = { internal_list_limit = 5000 }\n"), "collect[1].params.internal_list_limit"),
        ("bad choice", with("params = { backlinks_status_type = \"dead\" }\n"), "collect[1].params.backlinks_status_type"),
        ("bad target", GOOD.replace("example.com", "not a domain"), "targets[1]: `not a domain`"),
        ("page for history", "name = \"h\"\ntargets = [\"https://example.com/page\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@monthly\"\n".to_string(), "bare domain"),
        ("missing targets file", GOOD.replace("targets = [\"example.com\"]", "targets_file = \"nope.txt\""), "nope.txt"),
        ("bad catch_up", with("catch_up = \"sometimes\"\n"), "collect[1].catch_up"),
        ("syntax error", "name = \"x\nfoo".to_string(), "job.toml"),
        ("history before 2019", "name = \"h\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@monthly\"\nparams = { date_from = \"2018-12-31\" }\n".to_string(), "2019-01-01"),
    ]
}

#[tokio::test]
async fn each_kind_of_job_file_mistake_gives_its_message_and_exit_status_2() {
    for (what, body, expected) in mistakes() {
        let wd = Workdir::new(&[("job.toml", &body)]);
        let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains("jobs/job.toml: "),
            "{what}: message names the file: {err}"
        );
        assert!(
            err.contains(expected),
            "{what}: expected `{expected}` in: {err}"
        );
    }
}

#[tokio::test]
async fn duplicate_job_names_across_files_are_an_error() {
    let wd = Workdir::new(&[("a.toml", GOOD), ("b.toml", GOOD)]);
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("jobs/b.toml: name:"), "{err}");
    assert!(err.contains("good"), "{err}");
}

#[tokio::test]
async fn a_run_with_a_bad_job_file_changes_nothing_in_the_database() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let bad = GOOD.replace("@daily", "every day");
    let wd = Workdir::new(&[("good.toml", GOOD), ("bad.toml", &bad)]);
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("jobs/bad.toml: collect[1].schedule"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sb.stats().requests, 0);
    // Not even the schema was created.
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
    assert_eq!(schemas, 0);
}

/// The example files the repository ships, checked from a copy: a user's own job
/// files in `jobs/` are theirs, and must not break `cargo test`.
const SHIPPED: [&str; 5] = [
    "jobs/competitors.toml",
    "jobs/pages.toml",
    "jobs/portfolio.toml",
    "jobs/targets/portfolio.txt",
    "config/linkledger.toml",
];

#[tokio::test]
async fn the_example_jobs_pass_the_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let wd = Workdir::new(&[]);
    for file in SHIPPED {
        let to = wd.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root.join(file), &to).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "ok: 3 job files in jobs, 3 jobs, 12 collections"
    );
    assert!(stderr(&out).is_empty(), "no warnings: {}", stderr(&out));
}

#[tokio::test]
async fn an_absolute_date_about_to_age_out_is_a_warning_not_a_failure() {
    // Accepted for ten more days: the check passes and says when it stops.
    let from = today()
        .checked_sub_months(chrono::Months::new(12))
        .unwrap()
        .checked_add_days(chrono::Days::new(10))
        .unwrap();
    let body = format!(
        "name = \"n\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"bulk_new_lost_backlinks\"\nschedule = \"@daily\"\nparams = {{ date_from = \"{}\" }}\n",
        from.format("%Y-%m-%d")
    );
    let wd = Workdir::new(&[("job.toml", &body)]);
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok: "), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: jobs/job.toml: collect[1].params.date_from: ")
            && err.contains("one-year window")
            && err.contains("relative date"),
        "{err}"
    );
}

#[tokio::test]
async fn a_timeout_the_api_may_outlast_is_a_configuration_warning() {
    let wd = Workdir::new(&[(
        "job.toml",
        "name = \"n\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
    )]);
    let env = vec![("LINKLEDGER_API__TIMEOUT".to_string(), "60s".to_string())];
    let out = linkledger(wd.path(), &env, &["jobs", "check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: config: api.timeout = 60s is under 130s"),
        "{err}"
    );
    let quiet = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert!(
        !stderr(&quiet).contains("api.timeout"),
        "{}",
        stderr(&quiet)
    );
}

#[tokio::test]
async fn a_collection_one_fire_of_which_costs_more_than_the_threshold_is_a_warning_with_the_figure()
{
    // 600 summary targets: 600 calls at $0.02003 = $12.018, over the $10 default.
    let targets: Vec<String> = (0..600).map(|i| format!("\"d{i}.example.com\"")).collect();
    let body = format!(
        "name = \"big\"\ntargets = [{}]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n[[collect]]\nendpoint = \"bulk_ranks\"\nschedule = \"@daily\"\n",
        targets.join(", ")
    );
    let wd = Workdir::new(&[("big.toml", &body)]);
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "warning: jobs/big.toml: collect[1]: one fire of summary makes 600 calls estimated at $12.018"
        ),
        "{err}"
    );
    assert!(
        !err.contains("collect[2]"),
        "bulk_ranks is one cheap call: {err}"
    );
    // The threshold is configuration.
    let env = vec![(
        "LINKLEDGER_JOBS__FIRE_COST_WARNING_USD".to_string(),
        "20".to_string(),
    )];
    let out = linkledger(wd.path(), &env, &["jobs", "check"]).await;
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}
