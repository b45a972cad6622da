//! The targets a job or a collection lists: inline `targets` and a `targets_file`
//! (inside the jobs directory, bounded: [`super::files`]), each target normalized,
//! deduplicated and remembered with where it was written. A target listed again
//! (after normalization: `Example.com` and `example.com`, `münchen.de` and
//! `xn--mnchen-3ya.de`) is collected once, with a warning naming both places.

use std::collections::HashMap;
use std::path::Path;

use super::files::{confine, read_bounded};
use super::params::type_name;
use super::report::Ctx;
use crate::api::target::Target;
use crate::words::{count, shown};

/// The most wrong lines of one targets file reported one by one; the rest are
/// counted.
const MAX_BAD_LINES_SHOWN: usize = 10;

/// The most duplicate targets of one list warned about one by one; the rest are
/// counted.
const MAX_DUPLICATES_SHOWN: usize = 10;

/// A target and where it was written, for messages about it.
pub(super) struct Sourced {
    pub(super) target: Target,
    pub(super) field: String,
    /// `jobs/targets/x.txt line 3: ` for a target from a targets file.
    pub(super) at: String,
}

/// The targets a table (the job, or one collection) lists.
pub(super) struct TargetList {
    pub(super) targets: Vec<Sourced>,
    /// `targets` or `targets_file` was present.
    pub(super) given: bool,
    /// Some target or targets file was wrong (already reported).
    pub(super) broken: bool,
}

/// The inline `targets` and the `targets_file` of a table, normalized and deduplicated.
pub(super) fn targets(ctx: &mut Ctx, t: &toml::Table, base: &Path, prefix: &str) -> TargetList {
    let mut list = TargetList {
        targets: Vec::new(),
        given: false,
        broken: false,
    };
    // Each target's first place, for the warning about a later one.
    let mut seen: HashMap<Target, String> = HashMap::new();
    let mut duplicates = 0usize;
    let mut push = |ctx: &mut Ctx, list: &mut TargetList, s: Sourced, written: &str| {
        let place = match s.at.strip_suffix(": ") {
            Some(at) => at.to_string(),
            None => s.field.clone(),
        };
        match seen.get(&s.target) {
            None => {
                seen.insert(s.target.clone(), place);
                list.targets.push(s);
            }
            Some(first) => {
                duplicates += 1;
                if duplicates <= MAX_DUPLICATES_SHOWN {
                    ctx.warn(s.field.clone(), duplicate(&s, written, first));
                } else if duplicates == MAX_DUPLICATES_SHOWN + 1 {
                    ctx.warn(
                        s.field.clone(),
                        format!(
                            "{}more targets listed again, each collected once (only the first {MAX_DUPLICATES_SHOWN} are shown)",
                            s.at
                        ),
                    );
                }
            }
        }
    };
    if let Some(v) = t.get("targets") {
        list.given = true;
        match v {
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    // 1-based, like `collect[1]`: `targets[1]` is the first target.
                    let field = format!("{prefix}targets[{}]", i + 1);
                    match item {
                        toml::Value::String(s) => match Target::parse(s) {
                            Ok(target) => push(
                                ctx,
                                &mut list,
                                Sourced {
                                    target,
                                    field,
                                    at: String::new(),
                                },
                                s,
                            ),
                            Err(e) => {
                                ctx.add(field, e.to_string());
                                list.broken = true;
                            }
                        },
                        other => {
                            ctx.add(
                                field,
                                format!("expected a string, found {}", type_name(other)),
                            );
                            list.broken = true;
                        }
                    }
                }
            }
            other => {
                ctx.add(
                    format!("{prefix}targets"),
                    format!(
                        "expected a list of domains or page URLs, found {}",
                        type_name(other)
                    ),
                );
                list.broken = true;
            }
        }
    }
    if t.get("targets_file").is_some() {
        list.given = true;
        let field = format!("{prefix}targets_file");
        let Some(rel) = ctx.string(t, "targets_file", prefix) else {
            list.broken = true;
            return list;
        };
        // Where a line is, for messages: the path as the job wrote it, from the jobs
        // directory.
        let shown_path = shown(&base.join(rel).display().to_string());
        let text = match confine(base, rel).and_then(|real| {
            read_bounded(&real).map_err(|e| format!("cannot read {shown_path}: {}", e.reason()))
        }) {
            Ok(text) => text,
            Err(why) => {
                ctx.add(field, why);
                list.broken = true;
                return list;
            }
        };
        // A message quotes the one line that is wrong, never the others, and only the
        // first few wrong lines: a file that is no list of targets is not shown whole.
        let mut bad = 0usize;
        for (n, line) in text.lines().enumerate() {
            let line = strip_comment(line).trim();
            if line.is_empty() {
                continue;
            }
            let at = format!("{shown_path} line {}: ", n + 1);
            match Target::parse(line) {
                Ok(target) => push(
                    ctx,
                    &mut list,
                    Sourced {
                        target,
                        field: field.clone(),
                        at,
                    },
                    line,
                ),
                Err(e) => {
                    bad += 1;
                    if bad <= MAX_BAD_LINES_SHOWN {
                        ctx.add(field.clone(), format!("{at}{e}"));
                    }
                    list.broken = true;
                }
            }
        }
        if bad > MAX_BAD_LINES_SHOWN {
            ctx.add(
                field,
                format!(
                    "{shown_path}: {} not shown",
                    count(bad - MAX_BAD_LINES_SHOWN, "more wrong line")
                ),
            );
        }
    }
    list
}

/// The warning for `s`, written `written`, whose target was listed first at `first`.
fn duplicate(s: &Sourced, written: &str, first: &str) -> String {
    let written = written.trim();
    let value = if written == s.target.as_str() {
        format!("`{}`", shown(written))
    } else {
        format!(
            "`{}` (that is `{}`)",
            shown(written),
            shown(s.target.as_str())
        )
    };
    format!(
        "{}{value} is listed again (first at {first}); it is collected once",
        s.at
    )
}

/// A line of a targets file without its `#` comment (a `#` at the start or after
/// whitespace; one inside a URL is kept).
fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}
