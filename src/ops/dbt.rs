//! `linkledger schema-docs --format dbt`: the schema as a dbt `sources.yml`, written
//! from what the database says of itself, so a dbt project's docs site shows the same
//! descriptions as `docs/schema.md` (dbt takes descriptions from YAML, not from the
//! database's comments) and its tests check what the schema promises:
//!
//! - every table and view of the schema, each column with its comment and type;
//! - the grain (a table's primary key, a view's `grain:` comment line) as `not_null`
//!   tests on its columns and a `unique` test: on the column when the grain is one
//!   column, else on the row of its columns as text (`row(a, b)::text`, dbt's own
//!   `unique` test, no package); a table's other `UNIQUE` constraints the same way;
//! - a `CHECK (col IN (...))` as `accepted_values`, a one-column foreign key as
//!   `relationships`;
//! - `loaded_at_field` and a freshness block on the tables that record when a row was
//!   written (`collected_at`, or the table's own time in [`LOAD_TIMES`]), each indexed
//!   so the check reads an index's end, not the table.
//!
//! Generic tests take their arguments under `arguments:` (dbt-core 1.10.5 or later).

use std::fmt::Write as _;

use crate::store::catalog::{Column, KeyColumn, Relation, RelationKind, SCHEMA};

/// The tables without `collected_at` whose rows carry the time they were written, and
/// that column: their load time for freshness (each is indexed).
pub const LOAD_TIMES: &[(&str, &str)] = &[
    ("api_calls", "started_at"),
    ("account_snapshots", "taken_at"),
];

/// How old a table's newest row may be, in days, before `dbt source freshness` warns.
pub const WARN_AFTER_DAYS: u32 = 2;

/// The same for `history`, whose rows are monthly snapshots (the counts on a month's
/// first day): once a month's snapshot is stored for good nothing new comes until the
/// next month's, so a history collected on time has rows up to a month and a few days old.
pub const HISTORY_WARN_AFTER_DAYS: u32 = 35;

/// How old `table`'s newest row may be before `dbt source freshness` warns.
fn warn_after_days(table: &str) -> u32 {
    match table {
        "history" => HISTORY_WARN_AFTER_DAYS,
        _ => WARN_AFTER_DAYS,
    }
}

/// The `sources.yml` for `relations` (as [`crate::store::Store::describe_schema`] lists
/// them).
pub fn render(relations: &[Relation]) -> String {
    let mut out = String::new();
    out.push_str(
        "# Written by `linkledger schema-docs --format dbt` from the database's comments and\n\
         # constraints; write it again after an upgrade's `linkledger migrate` rather than edit it.\n\
         # Needs dbt-core 1.10.5 or later (generic tests take `arguments:`) and no package: a\n\
         # grain of several columns is tested with dbt's own `unique` test on the row of its\n\
         # columns as text, not with dbt_utils.unique_combination_of_columns.\n",
    );
    let _ = writeln!(
        out,
        "# Freshness: tables that record when a row was written warn once their newest row is\n\
         # {WARN_AFTER_DAYS} days old ({HISTORY_WARN_AFTER_DAYS} for history, whose rows are monthly snapshots; an empty\n\
         # table warns too); add error_after to the tables your jobs fill on a schedule you know.\n\
         # Freshness per target: see the README's BI section."
    );
    out.push_str("version: 2\n\nsources:\n");
    let _ = writeln!(out, "  - name: {SCHEMA}");
    let _ = writeln!(out, "    schema: {SCHEMA}");
    out.push_str("    loader: linkledger\n");
    let _ = writeln!(
        out,
        "    description: {}",
        q(
            "linkledger's warehouse: what the DataForSEO Backlinks API answered (tables per \
           endpoint, keyed by target, request options and date), the spend ledger and the \
           work queue, and views for the common questions. Every description here is the \
           database's own COMMENT."
        )
    );
    out.push_str("    tables:\n");
    for r in relations {
        table(&mut out, r);
    }
    out
}

fn table(out: &mut String, r: &Relation) {
    let _ = writeln!(out, "      - name: {}", r.name);
    let kind = match r.kind {
        RelationKind::Table => "table",
        RelationKind::View => "view",
    };
    let description = r.description().unwrap_or_default();
    let _ = writeln!(out, "        description: {}", q(&description));
    let grain = r.grain();
    out.push_str("        config:\n");
    out.push_str("          meta:\n");
    let _ = writeln!(out, "            kind: {kind}");
    let names: Vec<String> = grain.iter().map(|c| q(&c.name)).collect();
    let _ = writeln!(out, "            grain: [{}]", names.join(", "));
    if let Some(loaded_at) = loaded_at(r) {
        let _ = writeln!(out, "          loaded_at_field: {loaded_at}");
        out.push_str("          freshness:\n");
        let _ = writeln!(
            out,
            "            warn_after: {{count: {}, period: day}}",
            warn_after_days(&r.name)
        );
    }
    // Keys of several columns: one test of the whole row of them.
    let mut keys: Vec<Vec<KeyColumn>> = vec![grain.clone()];
    keys.extend(r.unique.iter().map(|u| {
        u.iter()
            .map(|c| KeyColumn {
                name: c.clone(),
                nullable: true,
            })
            .collect()
    }));
    let compound: Vec<&Vec<KeyColumn>> = keys.iter().filter(|k| k.len() > 1).collect();
    if !compound.is_empty() {
        out.push_str("        data_tests:\n");
        for key in compound {
            let names: Vec<&str> = key.iter().map(|c| c.name.as_str()).collect();
            let _ = writeln!(out, "          - unique:");
            let _ = writeln!(out, "              name: {}", q(&test_name(r, &names)));
            let _ = writeln!(
                out,
                "              column_name: {}",
                q(&row_text(r, &names))
            );
        }
    }
    out.push_str("        columns:\n");
    for c in &r.columns {
        column(out, r, c, &grain);
    }
}

fn column(out: &mut String, r: &Relation, c: &Column, grain: &[KeyColumn]) {
    let _ = writeln!(out, "          - name: {}", c.name);
    let _ = writeln!(
        out,
        "            description: {}",
        q(c.comment.as_deref().unwrap_or(""))
    );
    let _ = writeln!(out, "            data_type: {}", q(&c.sql_type));
    if c.needs_quotes {
        out.push_str("            quote: true\n");
    }
    let mut tests: Vec<String> = Vec::new();
    if grain.iter().any(|k| k.name == c.name && !k.nullable) {
        tests.push("              - not_null\n".into());
    }
    let sole_key = grain.len() == 1 && grain[0].name == c.name;
    let sole_unique = r.unique.iter().any(|u| u.len() == 1 && u[0] == c.name);
    if sole_key || sole_unique {
        tests.push("              - unique\n".into());
    }
    for (column, definition) in &r.checks {
        if column != &c.name {
            continue;
        }
        if let Some(values) = accepted_values(c, definition) {
            let values: Vec<String> = values.iter().map(|v| q(v)).collect();
            tests.push(format!(
                "              - accepted_values:\n                  arguments:\n                    values: [{}]\n",
                values.join(", ")
            ));
        }
    }
    for reference in r.references.iter().filter(|f| f.column == c.name) {
        tests.push(format!(
            "              - relationships:\n                  arguments:\n                    to: {}\n                    field: {}\n",
            q(&format!("source('{SCHEMA}', '{}')", reference.table)),
            reference.to
        ));
    }
    if !tests.is_empty() {
        out.push_str("            data_tests:\n");
        for t in tests {
            out.push_str(&t);
        }
    }
}

/// The column whose newest value says when the table last received rows.
fn loaded_at(r: &Relation) -> Option<&str> {
    if r.kind != RelationKind::Table {
        return None;
    }
    let has = |name: &str| r.columns.iter().any(|c| c.name == name);
    if has("collected_at") {
        return Some("collected_at");
    }
    LOAD_TIMES
        .iter()
        .find(|(table, column)| *table == r.name && has(column))
        .map(|(_, column)| *column)
}

/// `row(a, b)::text`: the key's columns as one value (a record's text form quotes what
/// needs it, and shows NULL apart from the empty string), for dbt's `unique` test.
fn row_text(r: &Relation, names: &[&str]) -> String {
    let quoted: Vec<String> = names
        .iter()
        .map(|n| {
            let needs = r.columns.iter().any(|c| c.name == *n && c.needs_quotes);
            ident(n, needs)
        })
        .collect();
    format!("row({})::text", quoted.join(", "))
}

fn test_name(r: &Relation, names: &[&str]) -> String {
    format!("{SCHEMA}_{}_unique_{}", r.name, names.join("_"))
}

fn ident(name: &str, needs_quotes: bool) -> String {
    match needs_quotes {
        true => format!("\"{}\"", name.replace('"', "\"\"")),
        false => name.to_string(),
    }
}

/// The values a one-column `CHECK` allows when it is a closed set, as PostgreSQL
/// spells `col IN ('a', 'b')`: `CHECK ((col = ANY (ARRAY['a'::text, 'b'::text])))`,
/// or `CHECK ((col = 'a'::text))` for one value. `None` for any other check.
pub fn accepted_values(c: &Column, definition: &str) -> Option<Vec<String>> {
    let mut inner = definition.trim().strip_prefix("CHECK")?.trim();
    while let Some(s) = inner.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        inner = s.trim();
    }
    let rest = inner
        .strip_prefix(&ident(&c.name, c.needs_quotes))?
        .trim_start()
        .strip_prefix('=')?
        .trim();
    if let Some(list) = rest
        .strip_prefix("ANY (ARRAY[")
        .and_then(|s| s.strip_suffix("])"))
    {
        let (values, tail) = literals(list)?;
        return tail.trim().is_empty().then_some(values);
    }
    let (values, tail) = literals(rest)?;
    (values.len() == 1 && tail.trim().is_empty()).then_some(values)
}

/// Comma-separated string literals with casts (`'a'::text, 'it''s'::text`), and what
/// follows the last one; `None` when something else stands between them.
fn literals(mut s: &str) -> Option<(Vec<String>, &str)> {
    let mut values = Vec::new();
    loop {
        s = s.trim_start().strip_prefix('\'')?;
        let mut value = String::new();
        loop {
            let i = s.find('\'')?;
            value.push_str(&s[..i]);
            s = &s[i + 1..];
            match s.strip_prefix('\'') {
                Some(after) => {
                    value.push('\'');
                    s = after;
                }
                None => break,
            }
        }
        values.push(value);
        if let Some(after) = s.strip_prefix("::") {
            let end = after.find([',', ']', ')']).unwrap_or(after.len());
            s = &after[end..];
        }
        match s.trim_start().strip_prefix(',') {
            Some(after) => s = after,
            None => return Some((values, s)),
        }
    }
}

/// A YAML scalar: a JSON string, which YAML reads as its double-quoted form.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::catalog::Reference;

    fn col(name: &str, not_null: bool, comment: &str) -> Column {
        Column {
            name: name.into(),
            sql_type: "text".into(),
            not_null,
            comment: Some(comment.into()),
            needs_quotes: name == "position",
        }
    }

    fn runs() -> Relation {
        Relation {
            name: "runs".into(),
            kind: RelationKind::Table,
            comment: Some("One row per run".into()),
            columns: vec![
                col("id", true, "Run id"),
                col("status", true, "running, succeeded, ..."),
                col("started_at", true, "When it started"),
            ],
            primary_key: vec!["id".into()],
            partitioned_on: None,
            unique: vec![],
            checks: vec![(
                "status".into(),
                "CHECK ((status = ANY (ARRAY['running'::text, 'it''s'::text])))".into(),
            )],
            references: vec![],
        }
    }

    fn summary() -> Relation {
        Relation {
            name: "summary".into(),
            kind: RelationKind::Table,
            comment: Some("backlinks/summary: \"one\" row per target".into()),
            columns: vec![
                col("target", true, "Target"),
                col("options", true, "Options"),
                col("collected_on", true, "Day"),
                col("collected_at", true, "When"),
                col("run_id", false, "Run"),
            ],
            primary_key: vec!["target".into(), "options".into(), "collected_on".into()],
            partitioned_on: Some("collected_on".into()),
            unique: vec![],
            checks: vec![],
            references: vec![Reference {
                column: "run_id".into(),
                table: "runs".into(),
                to: "id".into(),
            }],
        }
    }

    fn shares() -> Relation {
        Relation {
            name: "shares".into(),
            kind: RelationKind::View,
            comment: Some("Shares\ngrain: target, position, group_range?".into()),
            columns: vec![
                col("target", false, "Target"),
                col("position", false, "Place"),
                col("group_range", false, "Period"),
            ],
            primary_key: vec![],
            partitioned_on: None,
            unique: vec![],
            checks: vec![],
            references: vec![],
        }
    }

    fn yaml(relations: &[Relation]) -> serde_json::Value {
        let text = render(relations);
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn source_table<'a>(y: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
        y["sources"][0]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()
    }

    fn column<'a>(t: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
        t["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
    }

    #[test]
    fn a_one_column_key_is_tested_unique_and_not_null_and_a_closed_set_as_accepted_values() {
        let y = yaml(&[runs()]);
        assert_eq!(y["version"], 2);
        assert_eq!(y["sources"][0]["schema"], "linkledger");
        let t = source_table(&y, "runs");
        assert_eq!(t["description"], "One row per run");
        assert_eq!(t["config"]["meta"]["grain"], serde_json::json!(["id"]));
        assert_eq!(
            column(t, "id")["data_tests"],
            serde_json::json!(["not_null", "unique"])
        );
        assert_eq!(
            column(t, "status")["data_tests"][0]["accepted_values"]["arguments"]["values"],
            serde_json::json!(["running", "it's"])
        );
        assert!(t.get("data_tests").is_none(), "{t}");
        assert!(
            t["config"].get("loaded_at_field").is_none(),
            "runs has no load time"
        );
    }

    #[test]
    fn history_of_monthly_snapshots_warns_only_after_a_month_and_its_first_days() {
        let history = Relation {
            name: "history".into(),
            ..summary()
        };
        let y = yaml(&[summary(), history]);
        assert_eq!(
            source_table(&y, "history")["config"]["freshness"]["warn_after"],
            serde_json::json!({"count": HISTORY_WARN_AFTER_DAYS, "period": "day"})
        );
        assert_eq!(
            source_table(&y, "summary")["config"]["freshness"]["warn_after"]["count"],
            WARN_AFTER_DAYS
        );
    }

    #[test]
    fn a_key_of_several_columns_is_one_unique_test_on_their_row_and_not_null_on_each() {
        let y = yaml(&[summary(), shares()]);
        let t = source_table(&y, "summary");
        assert_eq!(
            t["description"],
            "backlinks/summary: \"one\" row per target"
        );
        assert_eq!(
            t["data_tests"][0]["unique"]["column_name"],
            "row(target, options, collected_on)::text"
        );
        for c in ["target", "options", "collected_on"] {
            assert_eq!(column(t, c)["data_tests"], serde_json::json!(["not_null"]));
        }
        assert_eq!(t["config"]["loaded_at_field"], "collected_at");
        assert_eq!(
            t["config"]["freshness"]["warn_after"],
            serde_json::json!({"count": WARN_AFTER_DAYS, "period": "day"})
        );
        assert_eq!(
            column(t, "run_id")["data_tests"][0]["relationships"]["arguments"],
            serde_json::json!({"to": "source('linkledger', 'runs')", "field": "id"})
        );

        let v = source_table(&y, "shares");
        assert_eq!(
            v["description"], "Shares",
            "the grain line is no description"
        );
        assert_eq!(
            v["data_tests"][0]["unique"]["column_name"],
            "row(target, \"position\", group_range)::text"
        );
        assert_eq!(column(v, "position")["quote"], true);
        assert!(
            column(v, "group_range").get("data_tests").is_none(),
            "a grain column that may be NULL is not tested not_null"
        );
        assert!(v["config"].get("loaded_at_field").is_none());
    }

    #[test]
    fn only_a_closed_set_of_literals_becomes_accepted_values() {
        let c = col("state", true, "");
        let values = |d: &str| accepted_values(&c, d);
        assert_eq!(
            values("CHECK ((state = ANY (ARRAY['unsettled'::text, 'empty'::text])))"),
            Some(vec!["unsettled".into(), "empty".into()])
        );
        assert_eq!(
            values("CHECK ((state = 'only'::text))"),
            Some(vec!["only".into()])
        );
        assert_eq!(values("CHECK ((state <> 'x'::text))"), None);
        assert_eq!(values("CHECK ((length(state) < 10))"), None);
        assert_eq!(
            values("CHECK (((body IS NOT NULL) OR (unparsed IS NOT NULL)))"),
            None
        );
        assert_eq!(
            values("CHECK ((other = ANY (ARRAY['a'::text])))"),
            None,
            "a check of another column"
        );
    }
}
