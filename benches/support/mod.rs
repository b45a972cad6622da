//! What the benches share: one run of work enqueued and claimed at once, the way a
//! once-run's workers claim it, so that answers can be written under real claims.

use std::collections::HashMap;
use std::time::Duration;

use linkledger::store::{ClaimScope, Fence, NewWork, RunKind, Store};
use serde_json::Value;

/// Enqueues one work item per task (each naming one `target`) as one run of `job`,
/// claims them all, and returns the run's id and each target's claim.
pub async fn claim_run(
    store: &Store,
    job: &str,
    endpoint: &str,
    tasks: &[Value],
) -> anyhow::Result<(i64, HashMap<String, Fence>)> {
    let work: Vec<NewWork> = tasks
        .iter()
        .map(|task| NewWork {
            job: job.into(),
            collection: endpoint.into(),
            endpoint: endpoint.into(),
            targets: vec![task["target"].as_str().unwrap_or_default().to_string()],
            task: task.clone(),
            estimated_rows: 1,
            settle: None,
            paging: None,
        })
        .collect();
    let run = store
        .start_run_with_work(job, RunKind::Once, 1, &work)
        .await?;
    let items = store
        .claim(
            job,
            Duration::from_secs(3600),
            tasks.len() as i64,
            ClaimScope::Runs(&[run]),
        )
        .await?
        .items;
    let fences: HashMap<String, Fence> = items
        .into_iter()
        .map(|w| (w.targets[0].clone(), w.fence()))
        .collect();
    anyhow::ensure!(
        fences.len() == tasks.len(),
        "claimed {} of {} work items",
        fences.len(),
        tasks.len()
    );
    Ok((run, fences))
}
