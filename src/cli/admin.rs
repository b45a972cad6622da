//! The operator's commands around the warehouse: `migrate`, `replay` (the tables
//! rebuilt from raw responses), `grant-reader` (a read-only role for BI tools),
//! `schema-docs` (the schema as Markdown or a dbt `sources.yml`, from its comments and
//! constraints) and `citus-ddl`.

use std::process::ExitCode;

use anyhow::Context as _;
use chrono::NaiveDate;
use secrecy::SecretString;

use super::{Context, UsageError, today};
use crate::api::Endpoint;
use crate::app;
use crate::config::WarehouseConfig;
use crate::store::catalog::{GrantError, SCHEMA};
use crate::words::count;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Only these endpoints (repeatable); default all.
    #[arg(long = "endpoint", value_name = "E")]
    endpoints: Vec<String>,
    /// Only responses received on or after this UTC day (yyyy-mm-dd).
    #[arg(long)]
    since: Option<NaiveDate>,
}

#[derive(Debug, clap::Args)]
pub struct GrantReaderArgs {
    /// The role (it must exist unless --password-env is given).
    #[arg(value_name = "ROLE")]
    role: String,
    /// Create the role with LOGIN if it does not exist, and set its password to the
    /// value of this environment variable (never on the command line).
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
}

pub(super) async fn migrate(cx: &Context) -> anyhow::Result<ExitCode> {
    let store = app::connect(&cx.config()?).await?;
    drop(store);
    println!("migrations applied");
    Ok(ExitCode::SUCCESS)
}

/// `replay`: raw responses normalized again, no API call.
pub(super) async fn replay(cx: &Context, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let endpoints: Vec<Endpoint> = if args.endpoints.is_empty() {
        // The list endpoints' answers too: their tables are rebuilt like the others.
        Endpoint::every().collect()
    } else {
        args.endpoints
            .iter()
            .map(|e| {
                e.parse::<Endpoint>()
                    .map_err(|e| UsageError(format!("--endpoint: {e}")))
            })
            .collect::<Result<_, _>>()?
    };
    let cfg = cx.config()?;
    let store = app::connect(&cfg).await?;
    let oldest = store.oldest_raw_month().await?;
    if let Some(note) = retention_note(&cfg.warehouse, args.since, oldest, today()) {
        eprintln!("{note}");
    }
    let report = crate::collect::replay::replay(&store, &endpoints, args.since).await?;
    let set_aside = match report.set_aside {
        0 => String::new(),
        n => format!(
            " ({} still set aside: linkledger.rejected_items)",
            count(n as i64, "item")
        ),
    };
    println!(
        "replayed {} into {}{set_aside}, no API call made",
        count(report.responses as i64, "raw response"),
        count(report.rows as i64, "row")
    );
    for f in &report.failures {
        eprintln!("error: {f}");
    }
    Ok(if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `grant-reader ROLE`: read access to the warehouse for a BI tool's role.
pub(super) async fn grant_reader(cx: &Context, args: GrantReaderArgs) -> anyhow::Result<ExitCode> {
    if args.role.trim().is_empty() {
        return Err(UsageError("grant-reader: ROLE must not be empty".into()).into());
    }
    let password = match &args.password_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(p) if !p.is_empty() => Some(SecretString::from(p)),
            _ => {
                return Err(UsageError(format!(
                    "grant-reader: --password-env {var}: the variable {var} is not set or empty"
                ))
                .into());
            }
        },
    };
    let store = app::connect(&cx.config()?).await?;
    let grant = match store.grant_reader(&args.role, password.as_ref()).await {
        Ok(g) => g,
        Err(e @ (GrantError::NoSuchRole(_) | GrantError::Privileged(_))) => {
            return Err(UsageError(format!("grant-reader: {e}")).into());
        }
        Err(e) => return Err(anyhow::Error::new(e).context("granting read access")),
    };
    println!(
        "{}{} may read schema {}: USAGE on it, SELECT on {} and {}, and on the tables and views {} creates there later; nothing else",
        if grant.created {
            "created role "
        } else {
            "role "
        },
        grant.role,
        SCHEMA,
        count(grant.tables, "table"),
        count(grant.views, "view"),
        grant.future_objects_of,
    );
    if grant.password_set {
        println!("its password was set (LOGIN)");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct SchemaDocsArgs {
    /// markdown: docs/schema.md; dbt: a sources.yml for a dbt project (descriptions,
    /// the grain as unique and not_null tests, closed sets as accepted_values,
    /// loaded_at_field and freshness).
    #[arg(long, value_enum, default_value_t = DocsFormat::Markdown)]
    format: DocsFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum DocsFormat {
    Markdown,
    Dbt,
}

pub(super) async fn schema_docs(cx: &Context, args: SchemaDocsArgs) -> anyhow::Result<ExitCode> {
    let store = app::connect(&cx.config()?).await?;
    let relations = store
        .describe_schema()
        .await
        .context("reading the schema's comments")?;
    match args.format {
        DocsFormat::Markdown => {
            let functions = store
                .describe_functions()
                .await
                .context("reading the schema's functions")?;
            print!(
                "{}",
                crate::ops::schema_docs::render(&relations, &functions)
            );
        }
        DocsFormat::Dbt => print!("{}", crate::ops::dbt::render(&relations)),
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn citus_ddl() -> anyhow::Result<ExitCode> {
    print!("{}", crate::warehouse::citus::ddl());
    Ok(ExitCode::SUCCESS)
}

/// What `replay` cannot rebuild because `warehouse.raw_retention` dropped its raw
/// bodies, when the request reaches past the window; `None` otherwise. `oldest` is
/// the first day of the oldest month of raw bodies still stored.
fn retention_note(
    warehouse: &WarehouseConfig,
    since: Option<NaiveDate>,
    oldest: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<String> {
    let keep_from = warehouse.raw_keep_from(today)?;
    let window = warehouse.raw_retention?;
    let window = match window.as_secs() {
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        _ => humantime::format_duration(window).to_string(),
    };
    let asked = match since {
        Some(since) if since >= keep_from => return None,
        Some(since) => format!("--since {since} reaches past"),
        None => "replay covers what is kept of".to_string(),
    };
    let kept = match oldest {
        Some(oldest) => format!("the oldest kept are from {oldest}, so replay rebuilds from there"),
        None => "none is kept".to_string(),
    };
    Some(format!(
        "note: {asked} warehouse.raw_retention ({window}): raw bodies go by whole months once \
         entirely older than {keep_from}; {kept} (rows already in the warehouse stay as they are)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_notes_the_retention_window_only_when_it_reaches_past_it() {
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let today = day("2026-12-02");
        let keep_all = WarehouseConfig::default();
        assert_eq!(
            retention_note(&keep_all, Some(day("2019-01-01")), None, today),
            None
        );
        let window = WarehouseConfig {
            raw_retention: Some(std::time::Duration::from_secs(90 * 86_400)),
        };
        assert_eq!(window.raw_keep_from(today), Some(day("2026-09-03")));
        assert_eq!(
            retention_note(&window, Some(day("2026-09-03")), None, today),
            None
        );
        let note = retention_note(
            &window,
            Some(day("2026-01-15")),
            Some(day("2026-09-01")),
            today,
        )
        .unwrap();
        assert_eq!(
            note,
            "note: --since 2026-01-15 reaches past warehouse.raw_retention (90 days): \
             raw bodies go by whole months once entirely older than 2026-09-03; the oldest kept \
             are from 2026-09-01, so replay rebuilds from there (rows already in the warehouse \
             stay as they are)"
        );
        assert!(
            retention_note(&window, None, None, today)
                .unwrap()
                .contains("replay covers what is kept of warehouse.raw_retention")
        );
    }
}
