//! The schema as BI users meet it: what the database says about its own tables, views
//! and columns (for `schema-docs`), and the read-only role BI tools connect as (for
//! `grant-reader`).

use secrecy::{ExposeSecret, SecretString};

use super::{Store, StoreError};

/// The schema everything lives in.
pub const SCHEMA: &str = "linkledger";

/// A table or view of the schema, with its comment, columns and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    pub kind: RelationKind,
    pub comment: Option<String>,
    pub columns: Vec<Column>,
    /// The primary key's columns in key order (empty for views).
    pub primary_key: Vec<String>,
    /// The column a partitioned table is range-partitioned by month on.
    pub partitioned_on: Option<String>,
    /// The columns of each `UNIQUE` constraint (tables), in key order.
    pub unique: Vec<Vec<String>>,
    /// The `CHECK` constraints of one column (tables): the column and the constraint
    /// as `pg_get_constraintdef` spells it.
    pub checks: Vec<(String, String)>,
    /// The foreign keys of one column (tables).
    pub references: Vec<Reference>,
}

/// A one-column foreign key: `column` holds values of `table.to` (a table of the schema).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Reference {
    pub column: String,
    pub table: String,
    pub to: String,
}

/// A column of a relation's grain (the columns whose values name one of its rows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyColumn {
    pub name: String,
    /// The column may be NULL, NULL being one value of the key (a view's `?`).
    pub nullable: bool,
}

/// How a view's comment names its grain: its last line, `grain: a, b` (a column
/// marked `?`, `b?`, may be NULL). Tables need none: their primary key is their grain.
pub const GRAIN_LINE: &str = "grain:";

impl Relation {
    /// The comment without its grain line.
    pub fn description(&self) -> Option<String> {
        let comment = self.comment.as_deref()?;
        let text = match grain_line(comment) {
            Some((before, _)) => before,
            None => comment,
        };
        Some(text.trim_end().to_string())
    }

    /// The key of one row: a table's primary key, a view's grain line; empty when it
    /// has neither.
    pub fn grain(&self) -> Vec<KeyColumn> {
        match self.kind {
            RelationKind::Table => self
                .primary_key
                .iter()
                .map(|c| KeyColumn {
                    name: c.clone(),
                    nullable: false,
                })
                .collect(),
            RelationKind::View => self
                .comment
                .as_deref()
                .and_then(grain_line)
                .map(|(_, line)| {
                    line.split(',')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(|c| match c.strip_suffix('?') {
                            Some(name) => KeyColumn {
                                name: name.trim().to_string(),
                                nullable: true,
                            },
                            None => KeyColumn {
                                name: c.to_string(),
                                nullable: false,
                            },
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// The text before a comment's last line when that line is a grain line, and the
/// line's list of columns.
fn grain_line(comment: &str) -> Option<(&str, &str)> {
    let trimmed = comment.trim_end();
    let (before, last) = match trimmed.rfind('\n') {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    let columns = last.trim().strip_prefix(GRAIN_LINE)?;
    Some((before, columns))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RelationKind {
    Table,
    View,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Column {
    pub name: String,
    /// The SQL type as `format_type` spells it (`bigint`, `timestamp with time zone`).
    pub sql_type: String,
    pub not_null: bool,
    pub comment: Option<String>,
    /// SQL must quote the name (`"position"`): a keyword, or not a plain lower-case name.
    pub needs_quotes: bool,
}

#[derive(Debug, sqlx::FromRow)]
struct RelationRow {
    oid: sqlx::postgres::types::Oid,
    name: String,
    relkind: i8,
    comment: Option<String>,
    primary_key: Vec<String>,
    partitioned_on: Option<String>,
}

/// A function of the schema (what views and BI queries may call), with its comment.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Function {
    pub name: String,
    /// The arguments as `pg_get_function_arguments` spells them (`endpoint text`).
    pub arguments: String,
    /// The result type as `pg_get_function_result` spells it.
    pub returns: String,
    pub comment: Option<String>,
}

/// What `grant-reader` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderGrant {
    pub role: String,
    /// The role did not exist and was created (with LOGIN and the given password).
    pub created: bool,
    /// The role's password was set.
    pub password_set: bool,
    pub tables: i64,
    pub views: i64,
    /// The role whose tables and views created later the reader may read too: the one
    /// that ran the grant (and runs the migrations).
    pub future_objects_of: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(
        "role \"{0}\" does not exist; create it (CREATE ROLE \"{0}\" LOGIN PASSWORD '...') or pass --password-env VAR to create it with the password in $VAR"
    )]
    NoSuchRole(String),
    #[error("role \"{0}\" may do more than read (superuser or bypassrls); choose another role")]
    Privileged(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, sqlx::FromRow)]
struct ConstraintRow {
    kind: i8,
    columns: Vec<String>,
    definition: String,
}

impl From<sqlx::Error> for GrantError {
    fn from(e: sqlx::Error) -> Self {
        GrantError::Store(StoreError::Sql(e))
    }
}

impl Store {
    /// Every table and view of the schema (partitions left out: their parent stands
    /// for them), tables first, each kind by name.
    pub async fn describe_schema(&self) -> Result<Vec<Relation>, StoreError> {
        let rows: Vec<RelationRow> = sqlx::query_as(
            "SELECT c.oid, c.relname::text AS name, c.relkind::\"char\" AS relkind,
                    obj_description(c.oid, 'pg_class') AS comment,
                    coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                              FROM pg_index i
                              CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                              WHERE i.indrelid = c.oid AND i.indisprimary), '{}') AS primary_key,
                    (SELECT a.attname::text FROM pg_partitioned_table pt
                     JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
                     WHERE pt.partrelid = c.oid) AS partitioned_on
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
             ORDER BY CASE WHEN c.relkind IN ('r', 'p') THEN 0 ELSE 1 END, c.relname",
        )
        .bind(SCHEMA)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let columns: Vec<Column> = sqlx::query_as(
                "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS sql_type,
                        a.attnotnull AS not_null, col_description(a.attrelid, a.attnum) AS comment,
                        quote_ident(a.attname) <> a.attname::text AS needs_quotes
                 FROM pg_attribute a
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum",
            )
            .bind(r.oid)
            .fetch_all(self.pool())
            .await?;
            let constraints: Vec<ConstraintRow> = sqlx::query_as(
                "SELECT c.contype::\"char\" AS kind,
                        array(SELECT a.attname::text
                              FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
                              JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
                              ORDER BY k.ord) AS columns,
                        CASE WHEN c.contype = 'f'
                             THEN (SELECT r.relname::text || '.' || a.attname::text
                                   FROM pg_class r
                                   JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = c.confkey[1]
                                   WHERE r.oid = c.confrelid)
                             ELSE pg_get_constraintdef(c.oid) END AS definition
                 FROM pg_constraint c
                 WHERE c.conrelid = $1 AND c.contype IN ('u', 'c', 'f')
                 ORDER BY c.conname",
            )
            .bind(r.oid)
            .fetch_all(self.pool())
            .await?;
            let (mut unique, mut checks, mut references) = (vec![], vec![], vec![]);
            for c in constraints {
                match (c.kind as u8, c.columns.as_slice()) {
                    (b'u', _) => unique.push(c.columns),
                    (b'c', [column]) => checks.push((column.clone(), c.definition)),
                    (b'f', [column]) => {
                        if let Some((table, to)) = c.definition.split_once('.') {
                            references.push(Reference {
                                column: column.clone(),
                                table: table.to_string(),
                                to: to.to_string(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            out.push(Relation {
                name: r.name,
                kind: if matches!(r.relkind as u8, b'r' | b'p') {
                    RelationKind::Table
                } else {
                    RelationKind::View
                },
                comment: r.comment,
                columns,
                primary_key: r.primary_key,
                partitioned_on: r.partitioned_on,
                unique,
                checks,
                references,
            });
        }
        Ok(out)
    }

    /// Every function of the schema, by name and arguments.
    pub async fn describe_functions(&self) -> Result<Vec<Function>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT p.proname::text AS name, pg_get_function_arguments(p.oid) AS arguments,
                    pg_get_function_result(p.oid) AS returns,
                    obj_description(p.oid, 'pg_proc') AS comment
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = $1
             ORDER BY 1, 2",
        )
        .bind(SCHEMA)
        .fetch_all(self.pool())
        .await?)
    }

    /// Makes `role` a reader of the schema: `USAGE` on it, `SELECT` on every table and
    /// view in it, and `SELECT` on the tables and views the connected role (the one that
    /// runs the migrations) creates there later. Nothing else is granted. With a
    /// password, a role that does not exist is created with `LOGIN`, and the role's
    /// password is set; the password never appears in a statement's text (it travels
    /// as a bound parameter), so no log shows it.
    pub async fn grant_reader(
        &self,
        role: &str,
        password: Option<&SecretString>,
    ) -> Result<ReaderGrant, GrantError> {
        let mut tx = self.pool().begin().await?;
        // Roles are cluster-wide: two grants at once must not both try to create it.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('linkledger.grant_reader'))")
            .execute(&mut *tx)
            .await?;
        let existing: Option<(bool, bool)> =
            sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1")
                .bind(role)
                .fetch_optional(&mut *tx)
                .await?;
        let created = match (existing, password) {
            (Some((true, _)) | Some((_, true)), _) => {
                return Err(GrantError::Privileged(role.to_string()));
            }
            (Some(_), _) => false,
            (None, None) => return Err(GrantError::NoSuchRole(role.to_string())),
            (None, Some(_)) => {
                execute_format(&mut tx, "CREATE ROLE %I LOGIN", &[role]).await?;
                true
            }
        };
        if let Some(password) = password {
            // The statement carries the password, so it is built and run inside the
            // server from bound parameters, never sent as text.
            sqlx::query(
                "SELECT set_config('linkledger.grant_role', $1, true),
                        set_config('linkledger.grant_password', $2, true)",
            )
            .bind(role)
            .bind(password.expose_secret())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DO $$ BEGIN
                   EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L',
                                  current_setting('linkledger.grant_role'),
                                  current_setting('linkledger.grant_password'));
                 END $$",
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query("SELECT set_config('linkledger.grant_password', '', true)")
                .execute(&mut *tx)
                .await?;
        }
        for template in [
            "GRANT USAGE ON SCHEMA %I TO %I",
            "REVOKE CREATE ON SCHEMA %I FROM %I",
            "GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I",
        ] {
            execute_format(&mut tx, template, &[SCHEMA, role]).await?;
        }
        let (tables, views, me): (i64, i64, String) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE c.relkind IN ('r', 'p')),
                    count(*) FILTER (WHERE c.relkind IN ('v', 'm')),
                    current_user::text
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition",
        )
        .bind(SCHEMA)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ReaderGrant {
            role: role.to_string(),
            created,
            password_set: password.is_some(),
            tables,
            views,
            future_objects_of: me,
        })
    }
}

/// Runs the statement PostgreSQL's `format(template, args...)` builds: identifiers
/// (`%I`) are quoted by the server, never by string pasting here.
async fn execute_format(
    conn: &mut sqlx::PgConnection,
    template: &str,
    args: &[&str],
) -> Result<(), sqlx::Error> {
    let sql: String = sqlx::query_scalar("SELECT format($1, VARIADIC $2::text[])")
        .bind(template)
        .bind(args)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(comment: &str) -> Relation {
        Relation {
            name: "v".into(),
            kind: RelationKind::View,
            comment: Some(comment.into()),
            columns: vec![],
            primary_key: vec![],
            partitioned_on: None,
            unique: vec![],
            checks: vec![],
            references: vec![],
        }
    }

    #[test]
    fn a_views_grain_is_the_last_line_of_its_comment_and_left_out_of_its_description() {
        let v = view("Rank per target\nover time\ngrain: target, date, group_range?, rank_scale");
        assert_eq!(
            v.grain(),
            vec![
                KeyColumn {
                    name: "target".into(),
                    nullable: false
                },
                KeyColumn {
                    name: "date".into(),
                    nullable: false
                },
                KeyColumn {
                    name: "group_range".into(),
                    nullable: true
                },
                KeyColumn {
                    name: "rank_scale".into(),
                    nullable: false
                },
            ]
        );
        assert_eq!(v.description().unwrap(), "Rank per target\nover time");
    }

    #[test]
    fn a_comment_without_a_grain_line_names_no_grain_and_is_its_own_description() {
        let v = view("The grain: of it is not on its own line");
        assert!(v.grain().is_empty());
        assert_eq!(
            v.description().unwrap(),
            "The grain: of it is not on its own line"
        );
        let table = Relation {
            kind: RelationKind::Table,
            primary_key: vec!["id".into()],
            ..view("grain: nothing a table says")
        };
        assert_eq!(
            table.grain(),
            vec![KeyColumn {
                name: "id".into(),
                nullable: false
            }]
        );
    }
}
