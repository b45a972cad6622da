//! The reporting commands: `plan` spends nothing, `spend` reads the ledger.

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
async fn spend_reports_what_the_ledger_recorded_by_endpoint() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[("brands.toml", JOB)]);
    let env = env_for(&db, &sb);
    let run = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert!(run.status.success(), "{}", stderr(&run));
    let out = linkledger(wd.path(), &env, &["spend", "--by", "endpoint"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = |key: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} line in {text}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("summary")[1..],
        ["3".to_string(), "$0.06009".to_string()]
    );
    assert_eq!(
        line("bulk_ranks")[1..],
        ["1".to_string(), "$0.02009".to_string()]
    );
    let charged = sb.stats().charged_usd;
    assert_eq!(line("total")[2], charged.to_string(), "{text}");
    assert!(text.contains("no monthly budget set"), "{text}");
}
