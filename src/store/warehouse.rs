//! Writes normalized batches into the warehouse tables: one multi-row `UNNEST` upsert
//! per table, never one round trip per row. Every write is idempotent by natural key;
//! a parent's breakdowns are replaced as a whole, so keys that vanished upstream vanish
//! here too.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};
use tracing::instrument;

use crate::normalize::{Batch, Cell, ColType, TABLES, TableSpec};

/// Every normalized table (rebuilt by `replay`), in a stable order.
pub const NORMALIZED_TABLES: &[&str] = &[
    "summary",
    "history",
    "timeseries_summary",
    "timeseries_new_lost_summary",
    "bulk_new_lost_backlinks",
    "bulk_new_lost_referring_domains",
    "bulk_ranks",
    "bulk_backlinks",
    "bulk_referring_domains",
    "bulk_spam_score",
    "bulk_pages_summary",
    "link_breakdowns",
];

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

/// Writes one response's rows; the caller owns the transaction. Returns rows written
/// (table rows plus breakdown rows).
#[instrument(skip_all, fields(table = batch.table.spec.name, rows = batch.row_count()))]
pub async fn write_batch(conn: &mut PgConnection, batch: &Batch) -> sqlx::Result<u64> {
    let spec = batch.table.spec;
    debug_assert!(TABLES.iter().any(|t| t.name == spec.name));
    let mut written = 0;
    if !batch.table.rows.is_empty() {
        let cols = spec.columns();
        let mut columns: Vec<Column> = cols
            .iter()
            .map(|(_, ty)| Column::new(*ty, batch.table.rows.len()))
            .collect();
        for row in &batch.table.rows {
            for (column, cell) in columns.iter_mut().zip(row) {
                column.push(cell);
            }
        }
        let sql = upsert_sql(spec);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for column in columns {
            q = column.bind(q);
        }
        written += q.execute(&mut *conn).await?.rows_affected();
    }
    if !batch.parents.is_empty() {
        written += write_breakdowns(conn, batch).await?;
    }
    Ok(written)
}

async fn write_breakdowns(conn: &mut PgConnection, batch: &Batch) -> sqlx::Result<u64> {
    let n = batch.parents.len();
    let (mut tables, mut targets, mut dates, mut options) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for p in &batch.parents {
        tables.push(p.source_table);
        targets.push(p.target.as_str());
        dates.push(p.date);
        options.push(&p.options);
    }
    sqlx::query(
        "DELETE FROM linkledger.link_breakdowns b
         USING UNNEST($1::text[], $2::text[], $3::date[], $4::jsonb[]) AS p(source_table, target, date, options)
         WHERE b.source_table = p.source_table AND b.target = p.target
           AND b.date = p.date AND b.options = p.options",
    )
    .bind(&tables)
    .bind(&targets)
    .bind(&dates)
    .bind(&options)
    .execute(&mut *conn)
    .await?;
    if batch.breakdowns.is_empty() {
        return Ok(0);
    }
    let m = batch.breakdowns.len();
    let (mut parent, mut dims, mut keys, mut counts) = (
        Vec::with_capacity(m),
        Vec::with_capacity(m),
        Vec::with_capacity(m),
        Vec::with_capacity(m),
    );
    for b in &batch.breakdowns {
        parent.push(b.parent as i32 + 1);
        dims.push(b.dimension);
        keys.push(b.key.as_str());
        counts.push(b.count);
    }
    // Parents are sent once and joined by ordinal, not repeated on every breakdown row.
    let done = sqlx::query(
        "INSERT INTO linkledger.link_breakdowns
            (source_table, target, date, options, dimension, key, count, collected_at, raw_response_id)
         SELECT p.source_table, p.target, p.date, p.options, b.dimension, b.key, b.count, $9, $10
         FROM UNNEST($5::int[], $6::text[], $7::text[], $8::bigint[]) AS b(parent, dimension, key, count)
         JOIN UNNEST($1::text[], $2::text[], $3::date[], $4::jsonb[]) WITH ORDINALITY
              AS p(source_table, target, date, options, ord) ON p.ord = b.parent
         ON CONFLICT (source_table, target, date, options, dimension, key)
         DO UPDATE SET count = EXCLUDED.count, collected_at = EXCLUDED.collected_at,
                       raw_response_id = EXCLUDED.raw_response_id",
    )
    .bind(&tables)
    .bind(&targets)
    .bind(&dates)
    .bind(&options)
    .bind(&parent)
    .bind(&dims)
    .bind(&keys)
    .bind(&counts)
    .bind(batch.collected_at)
    .bind(batch.raw_response_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
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
        for d in &b.breakdowns {
            let p = &b.parents[d.parent];
            for (i, cell) in [
                Cell::Text(p.source_table.to_string()),
                Cell::Text(p.target.clone()),
                Cell::Date(p.date),
                Cell::Json(p.options.clone()),
                Cell::Text(d.dimension.to_string()),
                Cell::Text(d.key.clone()),
                Cell::Int(d.count),
                Cell::Timestamp(b.collected_at),
                Cell::Int(b.raw_response_id),
            ]
            .iter()
            .enumerate()
            {
                if i > 0 {
                    data.push('\t');
                }
                copy_field(&mut data, cell);
            }
            data.push('\n');
        }
    }
    if !data.is_empty() {
        let mut copy = conn
            .copy_in_raw(
                "COPY linkledger.link_breakdowns (source_table, target, date, options, dimension, key, count, collected_at, raw_response_id) FROM STDIN",
            )
            .await?;
        copy.send(data.into_bytes()).await?;
        written += copy.finish().await?;
    }
    Ok(written)
}
