//! `gaps`: per history or timeseries collection and target, how the periods of the
//! range a fire asks for stand in the warehouse: stored for good, unsettled (stored,
//! asked again until the period settles), answered empty (asked, the answer lacked the
//! item; asked again until `reask_empty` has passed since) or missing.

use std::fmt::Write as _;
use std::process::ExitCode;

use chrono::NaiveDate;

use super::{Context, UsageError, endpoint_args, load_jobs, target_args, today};
use crate::app;
use crate::collect::narrow::{TargetGaps, gaps};
use crate::jobs::{self, Collection};
use crate::warehouse::coverage::{Standing, grain};

#[derive(Debug, clap::Args)]
pub struct GapsArgs {
    /// Only this job.
    #[arg(long)]
    job: Option<String>,
    /// Only these targets (repeatable).
    #[arg(long = "target", value_name = "T")]
    targets: Vec<String>,
    /// Only this endpoint: history, timeseries_summary or timeseries_new_lost_summary.
    #[arg(long, value_name = "E")]
    endpoint: Option<String>,
}

pub(super) async fn gaps_command(cx: &Context, args: GapsArgs) -> anyhow::Result<ExitCode> {
    let endpoint = endpoint_args(args.endpoint.as_slice())?.pop();
    let targets = target_args(&args.targets)?;
    if let Some(page) = targets.iter().find(|t| t.is_page()) {
        return Err(UsageError(format!(
            "--target {page}: history and timeseries take a bare domain, not a page: use \"{}\"",
            page.as_domain()
        ))
        .into());
    }
    let cfg = cx.config()?;
    let jobs = load_jobs(&cfg)?;
    let selected = jobs::select(&jobs, args.job.as_deref()).map_err(UsageError)?;
    let store = app::connect(&cfg).await?;
    let today = today();
    let mut out = String::new();
    let mut shown = 0;
    for job in selected {
        for c in &job.collections {
            if !c.endpoint.has_periods() || endpoint.is_some_and(|e| e != c.endpoint) {
                continue;
            }
            let narrowed = c.only_targets(&targets);
            if narrowed.targets.is_empty() {
                continue;
            }
            let found = gaps(&store, &narrowed, today).await?;
            render(&mut out, &job.name, &narrowed, &found);
            shown += 1;
        }
    }
    if shown == 0 {
        println!("no history or timeseries collection matches");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{out}");
    println!(
        "(unsettled: stored, asked again by later fires until the period settles; empty: an \
         answer lacked it, asked again until reask_empty has passed since; missing: not stored)"
    );
    Ok(ExitCode::SUCCESS)
}

/// One collection's table: a line per target, with its periods not stored for good.
fn render(out: &mut String, job: &str, c: &Collection, found: &[TargetGaps]) {
    let range = found
        .iter()
        .flat_map(|t| {
            t.periods
                .first()
                .map(|p| p.0)
                .zip(t.periods.last().map(|p| p.1))
        })
        .fold(None::<(NaiveDate, NaiveDate)>, |acc, (f, t)| match acc {
            None => Some((f, t)),
            Some((af, at)) => Some((af.min(f), at.max(t))),
        });
    let by = found
        .first()
        .map(|_| grain_name(c))
        .unwrap_or_else(|| "period".into());
    let _ = match range {
        Some((from, to)) => writeln!(
            out,
            "job {job}, {} ({}), {from} to {to}, by {by}:",
            c.name, c.endpoint
        ),
        None => writeln!(
            out,
            "job {job}, {} ({}): nothing to ask",
            c.name, c.endpoint
        ),
    };
    let width = found
        .iter()
        .map(|t| t.target.len())
        .chain(["target".len()])
        .max()
        .unwrap_or(6);
    let _ = writeln!(
        out,
        "  {:<width$}  {:>6}  {:>9}  {:>5}  {:>7}",
        "target", "stored", "unsettled", "empty", "missing"
    );
    for t in found {
        let mut line = format!(
            "  {:<width$}  {:>6}  {:>9}  {:>5}  {:>7}",
            t.target,
            t.count(Standing::Stored),
            t.count(Standing::Unsettled),
            t.count(Standing::Empty),
            t.count(Standing::Missing)
        );
        let listed: Vec<String> = [Standing::Missing, Standing::Empty, Standing::Unsettled]
            .into_iter()
            .filter_map(|s| {
                let spans = spans(t, s);
                (!spans.is_empty()).then(|| format!("{} {}", s.name(), spans.join(", ")))
            })
            .collect();
        if !listed.is_empty() {
            let _ = write!(line, "  {}", listed.join("; "));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// The collection's periods in words: `month`, `day`, ...
fn grain_name(c: &Collection) -> String {
    let task = serde_json::Value::Object(c.request_params(today()));
    grain(c.endpoint, &task).name().to_string()
}

/// The runs of consecutive periods standing `standing`, each as `first..last` (by
/// their first days) or one day.
fn spans(t: &TargetGaps, standing: Standing) -> Vec<String> {
    let mut out: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    let mut previous: Option<Standing> = None;
    for &(from, _, s) in &t.periods {
        if s == standing {
            match (previous, out.last_mut()) {
                (Some(p), Some(last)) if p == standing => last.1 = from,
                _ => out.push((from, from)),
            }
        }
        previous = Some(s);
    }
    out.into_iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}..{b}")
            }
        })
        .collect()
}
