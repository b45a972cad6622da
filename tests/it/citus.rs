//! Citus-ready: `citus-ddl` distributes every warehouse table by target, and the schema
//! obeys the rules Citus states for distributed tables (read from the catalog, since no
//! Citus package is reachable here): every primary key and unique index includes the
//! distribution column, colocated tables share its type, and no foreign key joins a
//! distributed table with a local one.

use std::collections::BTreeSet;

use crate::common::*;

/// What `citus-ddl` prints: the distributed tables (with the column each is
/// distributed by), the reference tables and the tables it leaves on the coordinator.
struct Ddl {
    distributed: Vec<(String, String)>,
    reference: BTreeSet<String>,
    coordinator: BTreeSet<String>,
}

fn quoted(line: &str) -> Vec<String> {
    line.split('\'')
        .skip(1)
        .step_by(2)
        .map(|s| s.trim_start_matches("linkledger.").to_string())
        .collect()
}

async fn citus_ddl() -> Ddl {
    let wd = Workdir::new(&[]);
    let out = linkledger(wd.path(), &[], &["citus-ddl"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut ddl = Ddl {
        distributed: Vec::new(),
        reference: BTreeSet::new(),
        coordinator: BTreeSet::new(),
    };
    for line in text.lines() {
        if line.starts_with("SELECT create_distributed_table(") {
            let q = quoted(line);
            ddl.distributed.push((q[0].clone(), q[1].clone()));
        } else if line.starts_with("SELECT create_reference_table(") {
            ddl.reference.insert(quoted(line)[0].clone());
        } else if let Some(rest) = line.strip_prefix("-- On the coordinator, as local tables: ") {
            ddl.coordinator = rest
                .trim_end_matches('.')
                .split(", ")
                .map(str::to_string)
                .collect();
        }
    }
    ddl
}

#[derive(sqlx::FromRow)]
struct ForeignKey {
    name: String,
    from_table: String,
    to_table: String,
    from_columns: Vec<String>,
    to_columns: Vec<String>,
}

/// Every way the schema breaks a rule Citus states for distributing `ddl`'s tables.
async fn violations(pool: &sqlx::PgPool, ddl: &Ddl) -> Vec<String> {
    let mut found = Vec::new();
    let distributed: BTreeSet<String> = ddl.distributed.iter().map(|(t, _)| t.clone()).collect();
    // The distribution column exists; colocated tables share its type.
    let mut types = BTreeSet::new();
    for (table, column) in &ddl.distributed {
        // A table a later migration adds is not in an older schema: nothing to check.
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('linkledger.' || $1) IS NOT NULL")
                .bind(table)
                .fetch_one(pool)
                .await
                .unwrap();
        if !exists {
            continue;
        }
        let ty: Option<String> = sqlx::query_scalar(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
             WHERE a.attrelid = ('linkledger.' || $1)::regclass AND a.attname = $2
               AND NOT a.attisdropped",
        )
        .bind(table)
        .bind(column)
        .fetch_optional(pool)
        .await
        .unwrap();
        match ty {
            Some(ty) => {
                types.insert(ty);
            }
            None => found.push(format!("{table}: no column {column}")),
        }
    }
    if types.len() > 1 {
        found.push(format!(
            "colocated tables differ in the distribution column's type: {types:?}"
        ));
    }
    // Primary keys and unique indexes include the distribution column.
    let uniques: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text,
                array(SELECT a.attname::text FROM unnest(x.indkey) k
                      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k)
         FROM pg_index x
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_class i ON i.oid = x.indexrelid
         WHERE x.indisunique AND t.relnamespace = 'linkledger'::regnamespace",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (table, index, columns) in uniques {
        let Some((_, column)) = ddl.distributed.iter().find(|(t, _)| *t == table) else {
            continue;
        };
        if !columns.contains(column) {
            found.push(format!(
                "{table}: unique index {index} ({}) lacks {column}",
                columns.join(", ")
            ));
        }
    }
    // Foreign keys: between distributed tables only on the distribution column (both
    // sides), to reference tables freely, and never between a distributed and a local
    // table in either direction.
    let fks: Vec<ForeignKey> = sqlx::query_as(
        "SELECT c.conname::text AS name, f.relname::text AS from_table,
                p.relname::text AS to_table,
                array(SELECT a.attname::text FROM unnest(c.conkey) k
                      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k)
                    AS from_columns,
                array(SELECT a.attname::text FROM unnest(c.confkey) k
                      JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k)
                    AS to_columns
         FROM pg_constraint c
         JOIN pg_class f ON f.oid = c.conrelid
         JOIN pg_class p ON p.oid = c.confrelid
         WHERE c.contype = 'f' AND c.connamespace = 'linkledger'::regnamespace",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for ForeignKey {
        name,
        from_table: from,
        to_table: to,
        from_columns: from_cols,
        to_columns: to_cols,
    } in fks
    {
        let (d_from, d_to) = (distributed.contains(&from), distributed.contains(&to));
        let r_to = ddl.reference.contains(&to);
        let ok = match (d_from, d_to) {
            (true, true) => {
                from_cols.iter().any(|c| c == "target") && to_cols.iter().any(|c| c == "target")
            }
            (true, false) => r_to,
            (false, true) => false,
            (false, false) => true,
        };
        if !ok {
            found.push(format!("{from}: foreign key {name} to {to}"));
        }
    }
    found
}

async fn base_tables(pool: &sqlx::PgPool) -> BTreeSet<String> {
    sqlx::query_scalar(
        "SELECT relname::text FROM pg_class
         WHERE relnamespace = 'linkledger'::regnamespace AND relkind IN ('r', 'p')
           AND NOT relispartition",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

#[tokio::test]
async fn citus_ddl_distributes_every_warehouse_table_by_target_within_the_rules_citus_states() {
    let ddl = citus_ddl().await;
    assert!(
        ddl.distributed.iter().all(|(_, c)| c == "target"),
        "{:?}",
        ddl.distributed
    );
    let db = TestDb::new().await;
    let store = db.store().await;
    // Every table is placed: distributed, reference or the coordinator's, exactly once.
    let distributed: BTreeSet<String> = ddl.distributed.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(
        distributed.len(),
        ddl.distributed.len(),
        "a table distributed twice"
    );
    assert!(distributed.is_disjoint(&ddl.coordinator) && distributed.is_disjoint(&ddl.reference));
    let placed: BTreeSet<String> = distributed
        .iter()
        .chain(&ddl.reference)
        .chain(&ddl.coordinator)
        .cloned()
        .collect();
    assert_eq!(placed, base_tables(store.pool()).await);
    for t in [
        "summary",
        "history",
        "link_breakdowns",
        "coverage",
        "bulk_ranks",
    ] {
        assert!(distributed.contains(t), "{t} is not distributed");
    }
    for t in ["api_calls", "raw_responses", "work", "runs"] {
        assert!(ddl.coordinator.contains(t), "{t} is not the coordinator's");
    }
    assert_eq!(violations(store.pool(), &ddl).await, Vec::<String>::new());
}

#[tokio::test]
async fn the_rules_check_finds_the_raw_response_foreign_keys_the_schema_had_before() {
    let ddl = citus_ddl().await;
    let db = TestDb::new().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    crate::warehouse_keys::migrate_to(&pool, 10).await;
    let found = violations(&pool, &ddl).await;
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("summary: foreign key") && v.ends_with("to raw_responses")),
        "{found:?}"
    );
    assert_eq!(
        found.len(),
        11,
        "each endpoint table pointed to raw_responses: {found:?}"
    );
}
