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
