//! Reading job files: the jobs directory (every `*.toml`, names unique across files),
//! one file, and a job's own keys (name, time zone, targets, budget). The TOML is walked
//! by hand so that every unknown key is reported with its path, and every problem of
//! every file is collected; the `[[collect]]` sections are read in
//! [`collection`](super::collection).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::collection::{CollectionCtx, collections};
use super::files::read_bounded;
use super::params::type_name;
use super::report::{Ctx, check_name, io_reason, timezone, unstorable_strings};
use super::targets::targets;
use super::{Job, Problem, Problems};
use crate::words::{escape_controls, shown};

const JOB_KEYS: &[&str] = &[
    "name",
    "targets",
    "targets_file",
    "timezone",
    "budget_monthly_usd",
    "collect",
];

/// Loads every `*.toml` file directly in `dir` (sorted by file name). Job names must be
/// unique across files. A directory without job files gives no jobs. Any problem of any
/// file is an error: this is `jobs check`, `run --once`, `plan`.
pub fn load_dir(dir: &Path, today: NaiveDate) -> Result<Vec<Job>, Problems> {
    let (files, mut problems) = load_files(dir, today, false)?;
    let mut jobs = Vec::new();
    for file in files {
        if file.problems.is_empty() {
            jobs.extend(file.job);
        } else {
            problems.extend(file.problems);
        }
    }
    if problems.is_empty() {
        tracing::debug!(dir = %dir.display(), jobs = jobs.len(), "loaded job files");
        Ok(jobs)
    } else {
        Err(Problems(problems))
    }
}

/// What a daemon runs from its jobs directory: the jobs of the files that load, and each
/// file that does not with its problems. One broken file never stops the others.
#[derive(Clone, Debug, Default)]
pub struct DirJobs {
    /// The jobs to schedule, in file-name order: those of the valid files, and the
    /// previous versions kept of files that broke (see [`load_dir_for_daemon`]).
    pub jobs: Vec<Job>,
    /// The files that do not load, in file-name order.
    pub broken: Vec<BrokenFile>,
}

/// A job file that does not load, with every problem found in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenFile {
    /// The file (the jobs directory itself when a listing of it failed).
    pub file: PathBuf,
    pub problems: Vec<Problem>,
    /// The name of the job whose previous version, loaded from this file before it
    /// broke, keeps running; `None` when nothing of the file runs.
    pub kept: Option<String>,
}

impl BrokenFile {
    /// The file as a message shows it (control characters escaped, cut).
    pub fn shown_file(&self) -> String {
        shown(&self.file.display().to_string())
    }

    /// Its problems as one line, `field: why; field: why`, control characters escaped.
    pub fn why(&self) -> String {
        self.problems
            .iter()
            .map(|p| format!("{}: {}", escape_controls(&p.field), escape_controls(&p.why)))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Like [`load_dir`] for a daemon, which runs what loads and reports the rest: the jobs
/// of every valid file, and each broken file with its problems ([`DirJobs`]). A job
/// name defined twice is a problem of the later file only. A broken file whose job was
/// loaded before (in `previous`, the jobs running now; empty at start) keeps that
/// previous version running, unless a valid file now defines a job of the same name;
/// a broken file new to the daemon runs nothing. Only a directory that cannot be read
/// at all is an error.
///
/// An absolute `date_from` that has aged out of the API's one-year window is a
/// warning here, not a problem, so one collection that aged out while the daemon was
/// down does not keep its job from running: its fires are checked again when they are
/// due, recorded as failed and named by `/healthz`.
pub fn load_dir_for_daemon(
    dir: &Path,
    today: NaiveDate,
    previous: &[Job],
) -> Result<DirJobs, Problems> {
    let (files, listing) = load_files(dir, today, true)?;
    let mut broken = Vec::new();
    if !listing.is_empty() {
        broken.push(BrokenFile {
            file: dir.to_path_buf(),
            problems: listing,
            kept: None,
        });
    }
    // The valid files first: their jobs run whatever the broken ones held before.
    let mut running: HashMap<String, PathBuf> = HashMap::new();
    for file in &files {
        if let (true, Some(job)) = (file.problems.is_empty(), &file.job) {
            running.insert(job.name.clone(), file.path.clone());
        }
    }
    let mut jobs = Vec::new();
    for file in files {
        if file.problems.is_empty() {
            jobs.extend(file.job);
            continue;
        }
        let kept = previous
            .iter()
            .find(|j| j.file == file.path && !running.contains_key(&j.name));
        if let Some(job) = kept {
            running.insert(job.name.clone(), file.path.clone());
            jobs.push(job.clone());
        }
        broken.push(BrokenFile {
            file: file.path,
            problems: file.problems,
            kept: kept.map(|j| j.name.clone()),
        });
    }
    broken.sort_by(|a, b| a.file.cmp(&b.file));
    tracing::debug!(dir = %dir.display(), jobs = jobs.len(), broken = broken.len(), "loaded job files");
    Ok(DirJobs { jobs, broken })
}

/// One job file read: its job when nothing is wrong, and every problem found (a job
/// name an earlier file defines among them).
struct FileJob {
    path: PathBuf,
    job: Option<Job>,
    problems: Vec<Problem>,
}

/// Reads every `*.toml` file directly in `dir`, sorted by file name, each with its
/// problems; and the problems of listing the directory. An error when the directory
/// cannot be read at all.
fn load_files(
    dir: &Path,
    today: NaiveDate,
    aged_out_warns: bool,
) -> Result<(Vec<FileJob>, Vec<Problem>), Problems> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            return Err(Problems(vec![Problem {
                file: dir.to_path_buf(),
                field: "(directory)".into(),
                why: format!(
                    "cannot read the jobs directory {} (jobs.dir, or LINKLEDGER_JOBS__DIR): {}",
                    std::path::absolute(dir)
                        .unwrap_or_else(|_| dir.to_path_buf())
                        .display(),
                    io_reason(&e)
                ),
            }]));
        }
    };
    let mut paths: Vec<(String, PathBuf)> = Vec::new();
    let mut listing = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                listing.push(Problem {
                    file: dir.to_path_buf(),
                    field: "(directory)".into(),
                    why: format!("cannot list the jobs directory: {}", io_reason(&e)),
                });
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = dir.join(&name);
        if name.starts_with('.') || !name.ends_with(".toml") || !path.is_file() {
            continue;
        }
        paths.push((name, path));
    }
    paths.sort();

    let mut files = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for (_, path) in paths {
        let loaded = load(&path, today, aged_out_warns);
        let mut problems = loaded.problems;
        if let Some(name) = &loaded.name {
            if let Some(first) = seen.get(name) {
                problems.insert(
                    0,
                    Problem {
                        file: path.clone(),
                        field: "name".into(),
                        why: format!(
                            "job `{}` is already defined in {}",
                            shown(name),
                            shown(&first.display().to_string())
                        ),
                    },
                );
            } else {
                seen.insert(name.clone(), path.clone());
            }
        }
        files.push(FileJob {
            path,
            job: loaded.job,
            problems,
        });
    }
    Ok((files, listing))
}

/// Loads and validates one job file. Date rules are checked against `today` (UTC).
pub fn load_file(path: &Path, today: NaiveDate) -> Result<Job, Problems> {
    let loaded = load(path, today, false);
    match loaded.job {
        Some(job) if loaded.problems.is_empty() => Ok(job),
        _ => Err(Problems(loaded.problems)),
    }
}

struct Loaded {
    /// The job's name when the file gave a valid one, even if other things are wrong.
    name: Option<String>,
    job: Option<Job>,
    problems: Vec<Problem>,
}

/// Reads one file: its job when nothing is wrong, and every problem found.
fn load(path: &Path, today: NaiveDate, aged_out_warns: bool) -> Loaded {
    let mut ctx = Ctx {
        file: path,
        problems: Vec::new(),
        warnings: Vec::new(),
        aged_out_warns,
    };
    let done = |ctx: Ctx, name, job| Loaded {
        name,
        job,
        problems: ctx.problems,
    };
    let text = match read_bounded(path) {
        Ok(text) => text,
        Err(e) => {
            ctx.add("(file)", format!("cannot read: {}", e.reason()));
            return done(ctx, None, None);
        }
    };
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            let e: toml::de::Error = e;
            let field = match e.span() {
                Some(span) => line_col(&text, span.start),
                None => "(file)".to_string(),
            };
            ctx.add(field, e.message().trim().to_string());
            return done(ctx, None, None);
        }
    };
    let base = path.parent().unwrap_or(Path::new(""));

    unstorable_strings(&mut ctx, &table);
    ctx.unknown_keys(&table, JOB_KEYS, "");

    let name = match table.get("name") {
        None => {
            ctx.add("name", "missing: every job needs a `name`");
            None
        }
        Some(_) => ctx
            .string(&table, "name", "")
            .and_then(|n| match check_name(n) {
                Ok(()) => Some(n.to_string()),
                Err(why) => {
                    ctx.add("name", why);
                    None
                }
            }),
    };

    let timezone = timezone(&mut ctx, &table, "");
    let job_targets = targets(&mut ctx, &table, base, "");

    let budget_monthly_usd = table
        .get("budget_monthly_usd")
        .and_then(|v| match budget(v) {
            Ok(d) => Some(d),
            Err(why) => {
                ctx.add("budget_monthly_usd", why);
                None
            }
        });

    let collections = collections(
        &mut ctx,
        &table,
        &CollectionCtx {
            base,
            today,
            job: name.as_deref().unwrap_or(""),
            timezone,
            job_targets: &job_targets,
        },
    );

    let job = match (&name, ctx.problems.is_empty()) {
        (Some(name), true) => Some(Job {
            name: name.clone(),
            file: path.to_path_buf(),
            timezone,
            budget_monthly_usd,
            collections,
            warnings: ctx.warnings.clone(),
        }),
        _ => None,
    };
    done(ctx, name, job)
}

/// `budget_monthly_usd`: a number of US dollars, 0 or more.
fn budget(v: &toml::Value) -> Result<Decimal, String> {
    let d = match v {
        toml::Value::Integer(i) => Decimal::from(*i),
        toml::Value::Float(f) if f.is_finite() => Decimal::from_str(&f.to_string())
            .or_else(|_| Decimal::from_scientific(&format!("{f:e}")))
            .map_err(|_| format!("{f} is not an amount in US dollars"))?,
        toml::Value::Float(f) => return Err(format!("{f} is not an amount in US dollars")),
        other => {
            return Err(format!(
                "expected a number of US dollars, found {}",
                type_name(other)
            ));
        }
    };
    if d < Decimal::ZERO {
        return Err(format!("must be at least 0, found {d}"));
    }
    Ok(d)
}

/// `line 3, column 7` for a byte offset.
fn line_col(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, rest)| rest)
        .chars()
        .count()
        + 1;
    format!("line {line}, column {column}")
}
