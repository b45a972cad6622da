//! `linkledger grant-reader ROLE`: a role BI tools connect as reads every table and
//! view, now and later, and writes nothing.

use sqlx::{Connection, PgConnection};

use crate::common::*;

/// A role of the test's own (roles are cluster-wide), dropped with what it was granted
/// in the test database before that database goes.
pub struct Role {
    pub name: String,
    db_url: String,
}

impl Role {
    pub fn new(db: &TestDb, prefix: &str) -> Role {
        Role {
            name: format!(
                "{prefix}_{}",
                db.name.trim_start_matches("linkledger_test_")
            ),
            db_url: db.url.clone(),
        }
    }

    /// Creates the role, able to log in and nothing more.
    pub async fn create_login(&self) {
        let mut admin = PgConnection::connect(&self.db_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE ROLE \"{}\" LOGIN",
            self.name
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }

    /// The test database's URL with this role as the user.
    pub fn url(&self) -> String {
        let mut u = url::Url::parse(&self.db_url).unwrap();
        u.set_username(&self.name).unwrap();
        u.set_password(None).unwrap();
        u.to_string()
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let (url, name) = (self.db_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = PgConnection::connect(&url).await {
                    let sql = format!(
                        "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN
                           DROP OWNED BY \"{name}\"; DROP ROLE \"{name}\"; END IF; END $$"
                    );
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                }
            });
        })
        .join();
    }
}

/// Every table and view of the schema: (name, is a view).
async fn relations(conn: &mut PgConnection) -> Vec<(String, bool)> {
    sqlx::query_as(
        "SELECT c.relname::text, c.relkind = 'v'
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'linkledger' AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
         ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

fn sqlstate(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()).unwrap_or_default(),
        other => format!("not a database error: {other}"),
    }
}

#[tokio::test]
async fn a_granted_reader_reads_every_table_and_view_and_cannot_write_to_any() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let wd = Workdir::new(&[(
        "demo.toml",
        "name = \"demo\"\ntargets = [\"a.example.com\", \"b.example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
    )]);
    let env = env_for(&db, &sb);
    let out = linkledger(wd.path(), &env, &["run", "--once"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let role = Role::new(&db, "reader");
    role.create_login().await;
    let mut admin = PgConnection::connect(&db.url).await.unwrap();

    let out = linkledger(wd.path(), &env, &["grant-reader", &role.name]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&role.name), "{}", stdout(&out));

    let mut reader = PgConnection::connect(&role.url()).await.unwrap();
    let all = relations(&mut admin).await;
    assert!(all.iter().any(|(_, view)| *view), "{all:?}");
    for (name, view) in &all {
        let n: Result<i64, _> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM (SELECT * FROM linkledger.{name}) x"
        )))
        .fetch_one(&mut reader)
        .await;
        assert!(n.is_ok(), "the reader cannot read {name}: {n:?}");
        if *view {
            continue;
        }
        let column: String = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = 'linkledger' AND table_name = $1 ORDER BY ordinal_position LIMIT 1",
        )
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        for write in [
            format!("INSERT INTO linkledger.{name} DEFAULT VALUES"),
            format!("UPDATE linkledger.{name} SET {column} = {column}"),
            format!("DELETE FROM linkledger.{name}"),
            format!("TRUNCATE linkledger.{name}"),
        ] {
            let e = sqlx::query(sqlx::AssertSqlSafe(write.clone()))
                .execute(&mut reader)
                .await
                .expect_err(&write);
            assert_eq!(sqlstate(&e), "42501", "{write}: {e}");
        }
    }
    // Rows the reader could see are still there: nothing it tried changed anything.
    let summary: i64 = sqlx::query_scalar("SELECT count(*) FROM linkledger.summary")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(summary, 2);
    let e = sqlx::query("CREATE TABLE linkledger.mine (x int)")
        .execute(&mut reader)
        .await
        .expect_err("the reader creates nothing");
    assert_eq!(sqlstate(&e), "42501", "{e}");

    // A table and a view a later migration adds are readable without granting again.
    sqlx::query("CREATE TABLE linkledger.added_later (x int)")
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("CREATE VIEW linkledger.added_later_view AS SELECT x FROM linkledger.added_later")
        .execute(&mut admin)
        .await
        .unwrap();
    for name in ["added_later", "added_later_view"] {
        let n: Result<i64, _> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM linkledger.{name}"
        )))
        .fetch_one(&mut reader)
        .await;
        assert_eq!(n.ok(), Some(0), "{name}");
    }
    let e = sqlx::query("INSERT INTO linkledger.added_later VALUES (1)")
        .execute(&mut reader)
        .await
        .expect_err("no write on later tables either");
    assert_eq!(sqlstate(&e), "42501", "{e}");

    // Granting again changes nothing and still succeeds.
    let out = linkledger(wd.path(), &env, &["grant-reader", &role.name]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    reader.close().await.unwrap();
}

#[tokio::test]
async fn grant_reader_with_a_password_creates_a_login_role_and_never_prints_the_password() {
    let db = TestDb::new().await;
    let wd = Workdir::new(&[]);
    let role = Role::new(&db, "grafana");
    let mut env = vec![
        ("DATABASE_URL".to_string(), db.url.clone()),
        ("READER_PW".to_string(), "s3cret-reader-pw".to_string()),
    ];
    let out = linkledger(
        wd.path(),
        &env,
        &["grant-reader", &role.name, "--password-env", "READER_PW"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = format!("{}{}", stdout(&out), stderr(&out));
    assert!(printed.contains("created role"), "{printed}");
    assert!(!printed.contains("s3cret-reader-pw"), "{printed}");
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    let (login, has_password): (bool, bool) = sqlx::query_as(
        "SELECT rolcanlogin, rolpassword IS NOT NULL FROM pg_authid WHERE rolname = $1",
    )
    .bind(&role.name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(login && has_password);
    let mut reader = PgConnection::connect(&role.url()).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM linkledger.spend_daily")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert_eq!(n, 0);
    reader.close().await.unwrap();

    // An empty password variable is bad usage, and the role is left as it was.
    env[1].1 = String::new();
    let out = linkledger(
        wd.path(),
        &env,
        &["grant-reader", &role.name, "--password-env", "READER_PW"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("READER_PW"), "{}", stderr(&out));
}

#[tokio::test]
async fn grant_reader_refuses_a_role_that_does_not_exist_or_a_superuser() {
    let db = TestDb::new().await;
    let wd = Workdir::new(&[]);
    let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
    let role = Role::new(&db, "nobody");
    let out = linkledger(wd.path(), &env, &["grant-reader", &role.name]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("role \"{}\" does not exist", role.name)),
        "{}",
        stderr(&out)
    );
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)")
            .bind(&role.name)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert!(!exists);

    let superuser: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let out = linkledger(wd.path(), &env, &["grant-reader", &superuser]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("superuser"), "{}", stderr(&out));
}
