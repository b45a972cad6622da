//! `linkledger schema-docs`: the schema as Markdown, written from the database's own
//! `COMMENT`s, so the documentation is what the database says and cannot drift from
//! it. `docs/schema.md` is this output for a freshly migrated database.

use std::fmt::Write as _;

use crate::store::catalog::{Function, Relation, RelationKind, SCHEMA};

/// The Markdown for `relations` and `functions` (as
/// [`crate::store::Store::describe_schema`] and
/// [`crate::store::Store::describe_functions`] list them).
pub fn render(relations: &[Relation], functions: &[Function]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# The `{SCHEMA}` schema\n");
    let _ = writeln!(
        out,
        "Written by `linkledger schema-docs` from the comments the migrations put on every \
table, view, column and function (`COMMENT ON`); do not edit it by hand. After a migration changes \
the schema, run `linkledger schema-docs > docs/schema.md` against a freshly migrated \
database; a test fails while this file differs from that output.\n"
    );
    for (kind, title) in [
        (RelationKind::Table, "Tables"),
        (RelationKind::View, "Views"),
    ] {
        let of_kind: Vec<&Relation> = relations.iter().filter(|r| r.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let _ = writeln!(out, "## {title}\n");
        let index: Vec<String> = of_kind
            .iter()
            .map(|r| format!("[`{}`](#{})", r.name, anchor(&r.name)))
            .collect();
        let _ = writeln!(out, "{}\n", index.join(", "));
        for r in of_kind {
            relation(&mut out, r);
        }
    }
    if !functions.is_empty() {
        let _ = writeln!(out, "## Functions\n");
        for f in functions {
            let _ = writeln!(
                out,
                "- `{SCHEMA}.{}({})` returns {}: {}",
                f.name,
                f.arguments,
                f.returns,
                cell(f.comment.as_deref().unwrap_or("(no comment)"))
            );
        }
        out.push('\n');
    }
    out
}

fn relation(out: &mut String, r: &Relation) {
    let kind = match r.kind {
        RelationKind::Table => "table",
        RelationKind::View => "view",
    };
    let _ = writeln!(out, "### {}\n", r.name);
    let _ = writeln!(
        out,
        "{kind} `{SCHEMA}.{}`: {}\n",
        r.name,
        cell(r.description().as_deref().unwrap_or("(no comment)"))
    );
    let grain: Vec<String> = r
        .grain()
        .iter()
        .map(|c| match c.nullable {
            true => format!("`{}` (may be NULL)", c.name),
            false => format!("`{}`", c.name),
        })
        .collect();
    if !grain.is_empty() {
        let label = match r.kind {
            RelationKind::Table => "Key",
            RelationKind::View => "Grain (the key of one row)",
        };
        let _ = writeln!(out, "{label}: {}\n", grain.join(", "));
    }
    if let Some(column) = &r.partitioned_on {
        let _ = writeln!(
            out,
            "Partitioned by month on `{column}` (partitions `linkledger_partitions.{}_pYYYY_MM` and `{}_default`: query the table).\n",
            r.name, r.name
        );
    }
    let _ = writeln!(out, "| column | type | null | description |");
    let _ = writeln!(out, "| --- | --- | --- | --- |");
    for c in &r.columns {
        let null = if c.not_null { "not null" } else { "" };
        let _ = writeln!(
            out,
            "| `{}` | {} | {null} | {} |",
            c.name,
            c.sql_type,
            cell(c.comment.as_deref().unwrap_or("(no comment)"))
        );
    }
    out.push('\n');
}

/// Text safe in a Markdown table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The anchor GitHub and most renderers give a heading (lower case, `_` kept).
fn anchor(name: &str) -> String {
    name.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::catalog::{Column, Function};

    fn col(name: &str, ty: &str, not_null: bool, comment: Option<&str>) -> Column {
        Column {
            name: name.into(),
            sql_type: ty.into(),
            not_null,
            comment: comment.map(Into::into),
            needs_quotes: false,
        }
    }

    #[test]
    fn a_table_shows_its_comment_key_and_every_column_with_type_and_description() {
        let md = render(
            &[
                Relation {
                    name: "history".into(),
                    kind: RelationKind::Table,
                    comment: Some("backlinks/history: one row per domain and month".into()),
                    columns: vec![
                        col("target", "text", true, Some("Domain | page")),
                        col("rank", "bigint", false, None),
                    ],
                    primary_key: vec!["target".into(), "month".into()],
                    partitioned_on: Some("month".into()),
                    unique: vec![],
                    checks: vec![],
                    references: vec![],
                },
                Relation {
                    name: "latest_summary".into(),
                    kind: RelationKind::View,
                    comment: Some("The newest summary\nrow per target\ngrain: target".into()),
                    columns: vec![col("target", "text", false, Some("Domain"))],
                    partitioned_on: None,
                    primary_key: vec![],
                    unique: vec![],
                    checks: vec![],
                    references: vec![],
                },
            ],
            &[Function {
                name: "default_options".into(),
                arguments: "endpoint text".into(),
                returns: "jsonb".into(),
                comment: Some("The default option set".into()),
            }],
        );
        assert!(md.contains("## Tables\n"), "{md}");
        assert!(md.contains("## Views\n"), "{md}");
        assert!(md.contains("### history\n"), "{md}");
        assert!(md.contains("Key: `target`, `month`\n"), "{md}");
        assert!(
            md.contains("Partitioned by month on `month` (partitions `linkledger_partitions.history_pYYYY_MM`"),
            "{md}"
        );
        assert!(
            md.contains("| `target` | text | not null | Domain \\| page |"),
            "{md}"
        );
        assert!(md.contains("| `rank` | bigint |  | (no comment) |"), "{md}");
        assert!(
            md.contains("view `linkledger.latest_summary`: The newest summary row per target"),
            "{md}"
        );
        assert!(
            md.contains("Grain (the key of one row): `target`\n") && !md.contains("grain: target"),
            "a view's grain line is shown as its key, not in its description: {md}"
        );
        assert!(md.find("### history").unwrap() < md.find("### latest_summary").unwrap());
        assert!(
            md.contains(
                "- `linkledger.default_options(endpoint text)` returns jsonb: The default option set"
            ),
            "{md}"
        );
    }
}
