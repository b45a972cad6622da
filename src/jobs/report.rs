//! The report of one job file being read ([`Ctx`]): its problems and warnings, each
//! `file: field: why`, and the readers of fields that the job and its collections
//! share (a string, unknown keys, a name, a time zone).

use std::path::Path;

use chrono_tz::Tz;

use super::Problem;
use super::params::type_name;
use crate::words::shown;

/// Collects the problems of one file.
pub(super) struct Ctx<'a> {
    pub(super) file: &'a Path,
    pub(super) problems: Vec<Problem>,
    /// What loads but will likely go wrong later.
    pub(super) warnings: Vec<Problem>,
    /// An absolute date that aged out of the one-year window is a warning (a daemon).
    pub(super) aged_out_warns: bool,
}

impl Ctx<'_> {
    pub(super) fn warn(&mut self, field: impl Into<String>, why: impl Into<String>) {
        let p = Problem {
            file: self.file.to_path_buf(),
            field: field.into(),
            why: why.into(),
        };
        if !self.warnings.contains(&p) {
            self.warnings.push(p);
        }
    }

    pub(super) fn add(&mut self, field: impl Into<String>, why: impl Into<String>) {
        let p = Problem {
            file: self.file.to_path_buf(),
            field: field.into(),
            why: why.into(),
        };
        if !self.problems.contains(&p) {
            self.problems.push(p);
        }
    }

    pub(super) fn unknown_keys(&mut self, table: &toml::Table, known: &[&str], prefix: &str) {
        for key in table.keys() {
            if !known.contains(&key.as_str()) {
                let hint = crate::words::suggest(key, known.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                self.add(
                    format!("{prefix}{}", shown(key)),
                    format!("unknown key{hint}"),
                );
            }
        }
    }

    /// A string field, or a problem saying it is not one.
    pub(super) fn string<'t>(
        &mut self,
        table: &'t toml::Table,
        key: &str,
        prefix: &str,
    ) -> Option<&'t str> {
        match table.get(key)? {
            toml::Value::String(s) => Some(s),
            other => {
                self.add(
                    format!("{prefix}{key}"),
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }
}

/// Every string of `table` (values and keys, at any depth) that PostgreSQL cannot
/// store: one holding NUL (`\0`), which no `text` or `jsonb` value may. Each is a
/// problem at its place (`collect[1].params.tag`, `targets[2]`); what it holds is not
/// quoted.
pub(super) fn unstorable_strings(ctx: &mut Ctx, table: &toml::Table) {
    fn walk(ctx: &mut Ctx, value: &toml::Value, field: &str) {
        match value {
            toml::Value::String(s) if s.contains('\0') => ctx.add(
                field,
                "holds a NUL character (\\0), which PostgreSQL cannot store",
            ),
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(ctx, item, &format!("{field}[{}]", i + 1));
                }
            }
            toml::Value::Table(t) => keys(ctx, t, &format!("{field}.")),
            _ => {}
        }
    }
    fn keys(ctx: &mut Ctx, t: &toml::Table, prefix: &str) {
        for (key, value) in t {
            let field = format!("{prefix}{}", shown(key));
            if key.contains('\0') {
                ctx.add(
                    field.clone(),
                    "the key holds a NUL character (\\0), which PostgreSQL cannot store",
                );
            }
            walk(ctx, value, &field);
        }
    }
    keys(ctx, table, "");
}

/// A table's `timezone`: none when not given, or a problem when it names no zone.
pub(super) fn timezone(ctx: &mut Ctx, t: &toml::Table, prefix: &str) -> Option<Tz> {
    t.get("timezone")?;
    let s = ctx.string(t, "timezone", prefix)?;
    match s.parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            let hint = crate::words::suggest(s, chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()))
                .map(|z| format!(" (did you mean `{z}`?)"))
                .unwrap_or_default();
            ctx.add(
                format!("{prefix}timezone"),
                format!(
                    "unknown time zone `{}`{hint}; use an IANA name like `Europe/Berlin` or `UTC`",
                    shown(s)
                ),
            );
            None
        }
    }
}

/// Whether a job or collection name is one: not empty; letters, digits, `_` and `-`.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(format!(
            "`{}` may only use letters, digits, `_` and `-`",
            shown(name)
        ))
    }
}

/// An I/O error's reason without the `(os error 2)` suffix.
pub(super) fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
