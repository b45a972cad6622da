//! An answer's rows: a stored answer normalized and written in the transaction that
//! completes its work item (grouped with other calls' completions when small), or why
//! it could not be normalized.

use super::*;

impl Executor {
    /// Normalizes a stored answer and writes its rows, completing the work item if
    /// the claim still holds, or records why it could not be normalized.
    pub(super) async fn finish(
        &self,
        call: &CallSpec,
        call_id: i64,
        raw: StoredBody,
        body: &Value,
        fence: Fence,
    ) -> anyhow::Result<AttemptEnd> {
        if let Some(hook) = &self.before_normalize {
            hook(call);
        }
        let ctx = Context {
            endpoint: call.endpoint,
            raw_response_id: raw.raw_id,
            collected_at: raw.received_at,
            sent_at: raw.sent_at,
            settle: call.settle(),
            request: &call.task,
        };
        let batch = match normalize::normalize(&ctx, body) {
            Ok(batch) => batch,
            Err(e) => {
                let why = e.to_string();
                warn!(error = %why, "answer could not be normalized; its raw body is kept (a list page: its listing ends here)");
                self.store
                    .record_normalize_failure(call_id, &why)
                    .await
                    .context("recording a normalization failure")?;
                return Ok(AttemptEnd::Invalid(why));
            }
        };
        if call.endpoint.is_list() {
            return self.finish_page(call, call_id, body, fence, &batch).await;
        }
        let (batch, written) = match &self.groups {
            Some(groups) if batch.row_count() <= GROUP_ROWS => {
                match groups
                    .complete(CompleteMember {
                        fence,
                        call_id,
                        batch,
                    })
                    .await
                {
                    Some((m, Ok(written))) => (m.batch, written),
                    Some((m, Err(_))) => {
                        let written = self
                            .store
                            .complete_with_rows(fence, call_id, &m.batch)
                            .await
                            .context("writing normalized rows")?;
                        (m.batch, written)
                    }
                    None => anyhow::bail!("the completions' group writer stopped"),
                }
            }
            _ => {
                let written = self
                    .store
                    .complete_with_rows(fence, call_id, &batch)
                    .await
                    .context("writing normalized rows")?;
                (batch, written)
            }
        };
        Ok(match written {
            Some(rows) => {
                if let Some(m) = &self.metrics {
                    m.record_rows(call.endpoint.name(), rows);
                    m.record_set_aside(call.endpoint.name(), batch.rejected.len());
                }
                AttemptEnd::Stored { rows }
            }
            None => AttemptEnd::Stale,
        })
    }
}
