//! Writes normalized batches into the warehouse tables, never one round trip per
//! row: each endpoint table gets one multi-row `UNNEST` upsert per response, and
//! `link_breakdowns`, the long table, gets its parents' rows replaced by a DELETE and a
//! COPY under per-parent advisory locks. Every write is idempotent by natural key; a
//! parent's breakdowns are replaced as a whole, so keys that vanished upstream vanish
//! here too.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};
use tracing::instrument;

use crate::warehouse::normalize::{Batch, Cell, ColType, TABLES, TableSpec};

/// Every normalized table (rebuilt by `replay`): the endpoint tables of
/// [`TABLES`], then `link_breakdowns`.
pub fn normalized_tables() -> impl Iterator<Item = &'static str> {
    TABLES
        .iter()
        .map(|t| t.name)
        .chain(std::iter::once("link_breakdowns"))
}

/// One column's values, typed for binding as a Postgres array.
enum Column {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
    Timestamp(Vec<Option<DateTime<Utc>>>),
    Date(Vec<Option<NaiveDate>>),
    /// jsonb; also carries `text[]` values, expanded in SQL (UNNEST would flatten a
    /// two-dimensional text array).
    Json(Vec<Option<Value>>),
}

impl Column {
    fn new(ty: ColType, capacity: usize) -> Column {
        match ty {
            ColType::Int => Column::Int(Vec::with_capacity(capacity)),
            ColType::Text => Column::Text(Vec::with_capacity(capacity)),
            ColType::Bool => Column::Bool(Vec::with_capacity(capacity)),
            ColType::Timestamp => Column::Timestamp(Vec::with_capacity(capacity)),
            ColType::Date => Column::Date(Vec::with_capacity(capacity)),
            ColType::TextArray | ColType::Json => Column::Json(Vec::with_capacity(capacity)),
        }
    }

    fn push(&mut self, cell: &Cell) {
        match (self, cell) {
            (Column::Int(v), Cell::Int(i)) => v.push(Some(*i)),
            (Column::Text(v), Cell::Text(s)) => v.push(Some(s.clone())),
            (Column::Bool(v), Cell::Bool(b)) => v.push(Some(*b)),
            (Column::Timestamp(v), Cell::Timestamp(t)) => v.push(Some(*t)),
            (Column::Date(v), Cell::Date(d)) => v.push(Some(*d)),
            (Column::Json(v), Cell::Json(j)) => v.push(Some(j.clone())),
            (Column::Json(v), Cell::TextArray(a)) => v.push(Some(Value::from(a.clone()))),
            (Column::Int(v), Cell::Null) => v.push(None),
            (Column::Text(v), Cell::Null) => v.push(None),
            (Column::Bool(v), Cell::Null) => v.push(None),
            (Column::Timestamp(v), Cell::Null) => v.push(None),
            (Column::Date(v), Cell::Null) => v.push(None),
            (Column::Json(v), Cell::Null) => v.push(None),
            (_, cell) => unreachable!("normalize produced {cell:?} for another column type"),
        }
    }

    fn bind<'q>(self, q: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        match self {
            Column::Int(v) => q.bind(v),
            Column::Text(v) => q.bind(v),
            Column::Bool(v) => q.bind(v),
            Column::Timestamp(v) => q.bind(v),
            Column::Date(v) => q.bind(v),
            Column::Json(v) => q.bind(v),
        }
    }
}

fn array_type(ty: ColType) -> &'static str {
    match ty {
        ColType::TextArray => "jsonb[]",
        ColType::Int => "bigint[]",
        ColType::Text => "text[]",
        ColType::Bool => "boolean[]",
        ColType::Timestamp => "timestamptz[]",
        ColType::Date => "date[]",
        ColType::Json => "jsonb[]",
    }
}

/// The upsert statement of a table: `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT`.
pub fn upsert_sql(spec: &TableSpec) -> String {
    let cols = spec.columns();
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    let params: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("${}::{}", i + 1, array_type(*ty)))
        .collect();
    let select: Vec<String> = cols
        .iter()
        .map(|(n, ty)| match ty {
            ColType::TextArray => format!(
                "CASE WHEN u.{n} IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text(u.{n})) END"
            ),
            _ => format!("u.{n}"),
        })
        .collect();
    let key: Vec<&str> = spec.key.iter().map(|(n, _)| *n).collect();
    let updates: Vec<String> = names[key.len()..]
        .iter()
        .map(|n| format!("{n} = EXCLUDED.{n}"))
        .collect();
    format!(
        "INSERT INTO linkledger.{table} ({names})
         SELECT {select} FROM UNNEST({params}) AS u({names})
         ON CONFLICT ({key}) DO UPDATE SET {updates}",
        table = spec.name,
        names = names.join(", "),
        select = select.join(", "),
        params = params.join(", "),
        key = key.join(", "),
        updates = updates.join(", "),
    )
}

/// Writes one response's rows, the periods it covers and the items it set aside; the
/// caller owns the transaction. Returns rows written (table rows plus breakdown rows).
#[instrument(skip_all, fields(table = batch.table.spec.name, rows = batch.row_count()))]
pub async fn write_batch(conn: &mut PgConnection, batch: &Batch) -> sqlx::Result<u64> {
    let mut written = upsert_rows(conn, &[batch]).await?;
    if !batch.parents.is_empty() {
        written += write_breakdowns(conn, &[batch]).await?;
    }
    // The items set aside, with the rows of their answer (not counted as rows).
    super::rejected::write(conn, batch).await?;
    if let Some(answered) = &batch.coverage {
        // What the answer says of each period it asked for, with its rows: a period
        // is never claimed without its item.
        super::periods::record_answered(conn, answered).await?;
    }
    Ok(written)
}

/// Writes the rows of several responses' batches, one statement per kind for all of
/// them (a group's completions, `store::group`): one upsert per table, the
/// breakdowns of every parent replaced by one DELETE and one COPY, then the items
/// each set aside and the periods each answered. The caller makes sure no two
/// batches hold the same natural key ([`distinct_keys`]). Returns the rows written.
pub async fn write_batches(conn: &mut PgConnection, batches: &[&Batch]) -> sqlx::Result<u64> {
    let mut written = 0;
    for spec in TABLES {
        let of_table: Vec<&Batch> = batches
            .iter()
            .copied()
            .filter(|b| b.table.spec.name == spec.name)
            .collect();
        if !of_table.is_empty() {
            written += upsert_rows(conn, &of_table).await?;
        }
    }
    let with_parents: Vec<&Batch> = batches
        .iter()
        .copied()
        .filter(|b| !b.parents.is_empty())
        .collect();
    if !with_parents.is_empty() {
        written += write_breakdowns(conn, &with_parents).await?;
    }
    for batch in batches {
        super::rejected::write(conn, batch).await?;
        if let Some(answered) = &batch.coverage {
            super::periods::record_answered(conn, answered).await?;
        }
    }
    Ok(written)
}

/// Whether no two of `batches` write the same row (the same table and natural key,
/// or the same breakdowns' parent): one upsert cannot touch a row twice.
pub fn distinct_keys(batches: &[&Batch]) -> bool {
    let mut keys = std::collections::HashSet::new();
    for b in batches {
        let width = b.table.spec.key.len();
        for row in &b.table.rows {
            if !keys.insert(format!(
                "{}|{:?}",
                b.table.spec.name,
                &row[..width.min(row.len())]
            )) {
                return false;
            }
        }
        for p in &b.parents {
            if !keys.insert(format!(
                "parent|{}|{}|{}|{}",
                p.source_table, p.target, p.date, p.options
            )) {
                return false;
            }
        }
    }
    true
}

/// One multi-row upsert of the rows of `batches`, all of one table.
async fn upsert_rows(conn: &mut PgConnection, batches: &[&Batch]) -> sqlx::Result<u64> {
    let Some(first) = batches.first() else {
        return Ok(0);
    };
    let spec = first.table.spec;
    debug_assert!(TABLES.iter().any(|t| t.name == spec.name));
    debug_assert!(batches.iter().all(|b| b.table.spec.name == spec.name));
    let n: usize = batches.iter().map(|b| b.table.rows.len()).sum();
    if n == 0 {
        return Ok(0);
    }
    let cols = spec.columns();
    let mut columns: Vec<Column> = cols.iter().map(|(_, ty)| Column::new(*ty, n)).collect();
    for row in batches.iter().flat_map(|b| &b.table.rows) {
        for (column, cell) in columns.iter_mut().zip(row) {
            column.push(cell);
        }
    }
    let sql = upsert_sql(spec);
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for column in columns {
        q = column.bind(q);
    }
    Ok(q.execute(&mut *conn).await?.rows_affected())
}

/// Replaces the breakdowns of every parent in the batch: a transaction-scoped advisory
/// lock per parent (taken in a fixed order, so writers cannot deadlock), a DELETE of
/// what the parents had, and a COPY of what they have now. Under the lock nothing else
/// can write those parents' rows, so a plain COPY is safe and the write stays
/// idempotent by natural key, at COPY speed for the largest table.
async fn write_breakdowns(conn: &mut PgConnection, batches: &[&Batch]) -> sqlx::Result<u64> {
    let n: usize = batches.iter().map(|b| b.parents.len()).sum();
    let (mut tables, mut targets, mut dates, mut options) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for p in batches.iter().flat_map(|b| &b.parents) {
        tables.push(p.source_table);
        targets.push(p.target.as_str());
        dates.push(p.date);
        options.push(&p.options);
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k) FROM (
            SELECT DISTINCT hashtextextended(
                p.source_table || '|' || p.target || '|' || p.date || '|' || p.options::text, 0) AS k
            FROM UNNEST($1::text[], $2::text[], $3::date[], $4::jsonb[]) AS p(source_table, target, date, options)
         ) locks ORDER BY k",
    )
    .bind(&tables)
    .bind(&targets)
    .bind(&dates)
    .bind(&options)
    .execute(&mut *conn)
    .await?;
    // The parents' distinct targets and dates, as index conditions and for pruning the
    // month partitions: joined to the UNNEST alone, the planner reads every partition
    // whole (a hash join over sequential scans), so each write cost as much as the
    // table held (230 ms per history answer at 1.5 million rows).
    let (distinct_targets, distinct_dates) = (distinct(&targets), distinct(&dates));
    sqlx::query(
        "DELETE FROM linkledger.link_breakdowns b
         USING UNNEST($1::text[], $2::text[], $3::date[], $4::jsonb[]) AS p(source_table, target, date, options)
         WHERE b.source_table = p.source_table AND b.target = p.target
           AND b.date = p.date AND b.options = p.options
           AND b.target = ANY($5::text[]) AND b.date = ANY($6::date[])",
    )
    // Planned for each batch's own values: a plan cached while the partitions were
    // small reads them whole once they are not (434 ms a history answer at 1000
    // domains), while planning this statement takes 0.2 ms for a summary answer and
    // 9-18 ms for a history answer's 96 months.
    .persistent(false)
    .bind(&tables)
    .bind(&targets)
    .bind(&dates)
    .bind(&options)
    .bind(&distinct_targets)
    .bind(&distinct_dates)
    .execute(&mut *conn)
    .await?;
    let lines: usize = batches.iter().map(|b| b.breakdowns.len()).sum();
    if lines == 0 {
        return Ok(0);
    }
    let mut data = String::with_capacity(lines * 64);
    for batch in batches {
        breakdown_lines(&mut data, batch);
    }
    let mut copy = conn.copy_in_raw(COPY_BREAKDOWNS).await?;
    copy.send(data.into_bytes()).await?;
    copy.finish().await
}

/// Each value of `v` once, in order.
fn distinct<T: Ord + Copy>(v: &[T]) -> Vec<T> {
    let set: std::collections::BTreeSet<T> = v.iter().copied().collect();
    set.into_iter().collect()
}

const COPY_BREAKDOWNS: &str = "COPY linkledger.link_breakdowns \
    (source_table, target, date, options, dimension, key, count, collected_at, raw_response_id) FROM STDIN";

/// The breakdown rows of `batch` as COPY text lines, in [`COPY_BREAKDOWNS`] column order.
fn breakdown_lines(out: &mut String, batch: &Batch) {
    // Each parent's fields are encoded once, not once per breakdown row.
    let prefixes: Vec<String> = batch
        .parents
        .iter()
        .map(|p| {
            let mut s = String::new();
            for cell in [
                Cell::Text(p.source_table.to_string()),
                Cell::Text(p.target.clone()),
                Cell::Date(p.date),
                Cell::Json(p.options.clone()),
            ] {
                copy_field(&mut s, &cell);
                s.push('\t');
            }
            s
        })
        .collect();
    let mut suffix = String::from("\t");
    copy_field(&mut suffix, &Cell::Timestamp(batch.collected_at));
    suffix.push('\t');
    copy_field(&mut suffix, &Cell::Int(batch.raw_response_id));
    suffix.push('\n');
    for d in &batch.breakdowns {
        out.push_str(&prefixes[d.parent]);
        out.push_str(d.dimension);
        out.push('\t');
        copy_field(out, &Cell::Text(d.key.clone()));
        out.push('\t');
        match d.count {
            Some(n) => out.push_str(&n.to_string()),
            None => out.push_str("\\N"),
        }
        out.push_str(&suffix);
    }
}

/// Appends `cell` to a COPY text-format line.
fn copy_field(out: &mut String, cell: &Cell) {
    fn escaped(out: &mut String, s: &str) {
        for ch in s.chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
    }
    match cell {
        Cell::Null => out.push_str("\\N"),
        Cell::Int(i) => out.push_str(&i.to_string()),
        Cell::Text(s) => escaped(out, s),
        Cell::Bool(b) => out.push(if *b { 't' } else { 'f' }),
        Cell::Timestamp(t) => out.push_str(&t.to_rfc3339()),
        Cell::Date(d) => out.push_str(&d.to_string()),
        Cell::Json(v) => escaped(out, &v.to_string()),
        Cell::TextArray(items) => {
            let mut lit = String::from("{");
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    lit.push(',');
                }
                lit.push('"');
                lit.push_str(&s.replace('\\', "\\\\").replace('"', "\\\""));
                lit.push('"');
            }
            lit.push('}');
            escaped(out, &lit);
        }
    }
}

/// Loads the rows of `batches` with one plain `COPY ... FROM STDIN` per table: no
/// upsert, no breakdown replacement. The baseline the benchmark compares
/// [`write_batch`] against; not used for real loads, which must be idempotent.
pub async fn copy_batches(conn: &mut PgConnection, batches: &[Batch]) -> sqlx::Result<u64> {
    let mut written = 0;
    for spec in TABLES {
        let cols: Vec<String> = spec.columns().into_iter().map(|(n, _)| n).collect();
        let mut data = String::new();
        let mut n = 0u64;
        for b in batches.iter().filter(|b| b.table.spec.name == spec.name) {
            for row in &b.table.rows {
                for (i, cell) in row.iter().enumerate() {
                    if i > 0 {
                        data.push('\t');
                    }
                    copy_field(&mut data, cell);
                }
                data.push('\n');
                n += 1;
            }
        }
        if n == 0 {
            continue;
        }
        let mut copy = conn
            .copy_in_raw(&format!(
                "COPY linkledger.{} ({}) FROM STDIN",
                spec.name,
                cols.join(", ")
            ))
            .await?;
        copy.send(data.into_bytes()).await?;
        written += copy.finish().await?;
    }
    let mut data = String::new();
    for b in batches {
        breakdown_lines(&mut data, b);
    }
    if !data.is_empty() {
        let mut copy = conn.copy_in_raw(COPY_BREAKDOWNS).await?;
        copy.send(data.into_bytes()).await?;
        written += copy.finish().await?;
    }
    Ok(written)
}
