//! The schema: `migrate` creates it, twice is harmless, and BI tools find a comment on
//! every table, view and column.

use crate::common::*;

#[tokio::test]
async fn migrate_creates_every_table_and_running_it_again_changes_nothing() {
    let db = TestDb::new().await;
    let wd = Workdir::new(&[]);
    let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
    for _ in 0..2 {
        let out = linkledger(wd.path(), &env, &["migrate"]).await;
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let store = db.store().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'linkledger' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    for t in [
        "runs",
        "api_calls",
        "raw_responses",
        "summary",
        "link_breakdowns",
    ]
    .into_iter()
    .chain(linkledger::store::warehouse::normalized_tables())
    {
        assert!(
            tables.iter().any(|x| x == t),
            "missing table {t}: {tables:?}"
        );
    }
}

#[tokio::test]
async fn every_table_view_and_column_carries_a_comment() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname || coalesce('.' || a.attname, '')
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'linkledger'
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relkind IN ('r', 'p', 'v')
           AND c.relname <> '_sqlx_migrations'
           AND (obj_description(c.oid, 'pg_class') IS NULL
                OR (a.attname IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL))
         ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(missing.is_empty(), "without a comment: {missing:?}");
}

#[tokio::test]
async fn the_warehouse_columns_are_the_ones_normalization_writes() {
    let db = TestDb::new().await;
    let store = db.store().await;
    for spec in linkledger::warehouse::normalize::TABLES {
        let cols: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, CASE WHEN data_type = 'ARRAY' THEN udt_name::text ELSE data_type::text END
             FROM information_schema.columns
             WHERE table_schema = 'linkledger' AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(spec.name)
        .fetch_all(store.pool())
        .await
        .unwrap();
        let mut cols = cols;
        cols.sort();
        let mut expected: Vec<(String, String)> = spec
            .columns()
            .into_iter()
            .map(|(n, t)| {
                let ty = match t.sql() {
                    "timestamptz" => "timestamp with time zone",
                    "text[]" => "_text",
                    other => other,
                };
                (n, ty.to_string())
            })
            .collect();
        // By name: columns added by a later migration come last in the table.
        expected.sort();
        assert_eq!(cols, expected, "{}", spec.name);
    }
}

#[tokio::test]
async fn docs_schema_md_is_what_schema_docs_prints_for_a_freshly_migrated_database() {
    let db = TestDb::new().await;
    let wd = Workdir::new(&[]);
    let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
    let out = linkledger(wd.path(), &env, &["schema-docs"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    for name in ["### summary\n", "### latest_summary\n", "Key: `target`"] {
        assert!(printed.contains(name), "{name}: {printed}");
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema.md");
    let file = std::fs::read_to_string(&path).unwrap_or_default();
    if file != printed {
        let line = file
            .lines()
            .zip(printed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| file.lines().count().min(printed.lines().count()));
        panic!(
            "docs/schema.md differs from `linkledger schema-docs` from line {}: file has {:?}, the database says {:?}; \
             regenerate it: DATABASE_URL=<a fresh database> linkledger schema-docs > docs/schema.md",
            line + 1,
            file.lines().nth(line),
            printed.lines().nth(line)
        );
    }
}

#[tokio::test]
async fn raw_bodies_are_compressed_with_lz4_where_the_server_offers_it() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let mut conn = store.pool().acquire().await.unwrap();
    let lz4 = sqlx::query("CREATE TEMPORARY TABLE lz4_probe (b jsonb COMPRESSION lz4)")
        .execute(&mut *conn)
        .await
        .is_ok();
    let method: String = sqlx::query_scalar(
        "SELECT attcompression::text FROM pg_attribute
         WHERE attrelid = 'linkledger.raw_responses'::regclass AND attname = 'body'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    // 'l' is lz4; '' the server's default (pglz).
    assert_eq!(method, if lz4 { "l" } else { "" }, "lz4 offered: {lz4}");
}
