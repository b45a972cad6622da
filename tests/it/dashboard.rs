//! The provisioned Grafana dashboard (`grafana/dashboards/linkledger.json`), without a
//! Grafana: every panel's SQL, with the dashboard's variables and time range filled in
//! the way Grafana fills them (template variables first, then the PostgreSQL data
//! source's macros), runs as the read-only role against a database the demo jobs
//! filled, and returns rows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Months, SecondsFormat, TimeDelta, Utc};
use serde_json::Value;
use sqlx::{Column, Connection, PgConnection, Row, TypeInfo, ValueRef};

use crate::common::*;
use crate::reader::Role;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(root().join("grafana/dashboards/linkledger.json"))
        .expect("grafana/dashboards/linkledger.json");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// The uid of the provisioned data source.
fn datasource_uid() -> String {
    let text =
        std::fs::read_to_string(root().join("grafana/provisioning/datasources/linkledger.yml"))
            .unwrap();
    let y: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    y["datasources"][0]["uid"].as_str().unwrap().to_string()
}

/// Every panel, rows' nested panels included, rows themselves left out.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten());
        } else {
            out.push(p);
        }
    }
    out
}

/// Grafana's relative time (`now`, `now-7d`, `now-1y`, ...) at `now`.
fn relative_time(expr: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    let rest = expr.strip_prefix("now").expect("a relative time");
    if rest.is_empty() {
        return now;
    }
    let rest = rest.strip_prefix('-').expect("now-<n><unit>");
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let n: u32 = digits.parse().expect("a number");
    match &rest[digits.len()..] {
        "s" => now - TimeDelta::seconds(n.into()),
        "m" => now - TimeDelta::minutes(n.into()),
        "h" => now - TimeDelta::hours(n.into()),
        "d" => now - TimeDelta::days(n.into()),
        "w" => now - TimeDelta::weeks(n.into()),
        "M" => now - Months::new(n),
        "y" => now - Months::new(12 * n),
        other => panic!("unknown unit {other} in {expr}"),
    }
}

/// A template variable with the values it stands for.
struct Var {
    name: String,
    /// Multi-value or with "All": each value is quoted (SqlDatasource.interpolateVariable).
    quoted: bool,
    values: Vec<String>,
}

impl Var {
    fn format(&self, how: Option<&str>) -> String {
        match how {
            None | Some("sqlstring") if self.quoted => self
                .values
                .iter()
                .map(|v| format!("'{}'", v.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(","),
            None | Some("sqlstring") => self.values.join(",").replace('\'', "''"),
            Some("csv") | Some("raw") => self.values.join(","),
            Some(other) => panic!("variable format {other} is not filled by this test"),
        }
    }
}

/// Grafana's template variables in `sql`: `$name`, `${name}`, `${name:format}`,
/// `[[name]]`. Built-in `$__...` names are left for the macros.
fn fill_variables(sql: &str, vars: &[Var]) -> String {
    let find = |name: &str| {
        vars.iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("unknown variable {name} in {sql}"))
    };
    let mut out = String::new();
    let mut rest = sql;
    loop {
        let next = [rest.find('$'), rest.find("[[")]
            .into_iter()
            .flatten()
            .min();
        let Some(i) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(inner) = rest.strip_prefix("[[") {
            let end = inner.find("]]").expect("closing ]]");
            out.push_str(&find(&inner[..end]).format(None));
            rest = &inner[end + 2..];
        } else if let Some(inner) = rest.strip_prefix("${") {
            let end = inner.find('}').expect("closing }");
            let (name, how) = match inner[..end].split_once(':') {
                Some((n, f)) => (n, Some(f)),
                None => (&inner[..end], None),
            };
            out.push_str(&find(name).format(how));
            rest = &inner[end + 1..];
        } else {
            let name: String = rest[1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() || name.starts_with("__") {
                out.push('$');
                rest = &rest[1..];
            } else {
                out.push_str(&find(&name).format(None));
                rest = &rest[1 + name.len()..];
            }
        }
    }
}

/// The PostgreSQL data source's macros, as its macro engine expands them.
fn fill_macros(sql: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let mut out = String::new();
    let mut rest = sql;
    while let Some(i) = rest.find("$__") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let tail = &after[name.len()..];
        let open = tail
            .strip_prefix('(')
            .unwrap_or_else(|| panic!("${name} without arguments in {sql}"));
        let close = open.find(')').expect("closing parenthesis");
        let args: Vec<&str> = open[..close].split(',').map(str::trim).collect();
        let expanded = match name.as_str() {
            "__time" => format!("{} AS \"time\"", args[0]),
            "__timeEpoch" => format!("extract(epoch from {}) as \"time\"", args[0]),
            "__timeFilter" => format!("{} BETWEEN '{}' AND '{}'", args[0], ts(from), ts(to)),
            "__timeFrom" => format!("'{}'", ts(from)),
            "__timeTo" => format!("'{}'", ts(to)),
            "__unixEpochFilter" => format!(
                "{} >= {} AND {} <= {}",
                args[0],
                from.timestamp(),
                args[0],
                to.timestamp()
            ),
            other => panic!("macro {other} is not filled by this test: {sql}"),
        };
        out.push_str(&expanded);
        rest = &open[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Fills the dashboard's variables as Grafana does on load: each query variable's
/// query run (in order, so one may use those before it), its current selection taken
/// ("All": every value its query returned), or for the variable `pick` names, the value
/// it gives.
async fn variables(
    d: &Value,
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    pick: Option<(&str, &str)>,
) -> Vec<Var> {
    let mut vars: Vec<Var> = Vec::new();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        assert_eq!(v["type"], "query", "{v}");
        let query = v["query"]
            .as_str()
            .or_else(|| v["query"]["rawSql"].as_str())
            .expect("the variable's SQL");
        let sql = fill_macros(&fill_variables(query, &vars), from, to);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("variable {}: {sql}: {e}", v["name"]));
        let options: Vec<String> = rows
            .iter()
            .map(|r| {
                let col = r
                    .columns()
                    .iter()
                    .position(|c| c.name() == "__value")
                    .unwrap_or(0);
                r.try_get::<String, _>(col).expect("text values")
            })
            .collect();
        assert!(!options.is_empty(), "variable {} offers nothing", v["name"]);
        let current: Vec<String> = match &v["current"]["value"] {
            Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
            Value::String(s) => vec![s.clone()],
            _ => vec!["$__all".to_string()],
        };
        let name = v["name"].as_str().unwrap();
        let values = match pick {
            Some((n, p)) if n == name => vec![p.to_string()],
            _ if current == ["$__all"] => {
                assert_eq!(v["includeAll"], true, "{v}");
                match v["allValue"].as_str() {
                    Some(all) if !all.is_empty() => vec![all.to_string()],
                    _ => options.clone(),
                }
            }
            _ => current,
        };
        vars.push(Var {
            name: v["name"].as_str().unwrap().to_string(),
            quoted: v["multi"] == true || v["includeAll"] == true,
            values,
        });
    }
    vars
}

/// The lines a time series query draws, with their points: a line per value of its text
/// columns (a long frame, as Grafana reads it: `target`, `series`) and value column;
/// a point where the value is not NULL.
fn lines(rows: &[sqlx::postgres::PgRow], times: &[DateTime<Utc>]) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, BTreeSet<DateTime<Utc>>> = BTreeMap::new();
    for (row, time) in rows.iter().zip(times) {
        let labels: Vec<String> = row
            .columns()
            .iter()
            .filter(|c| c.type_info().name() == "TEXT")
            .filter_map(|c| row.try_get::<Option<String>, _>(c.ordinal()).ok().flatten())
            .collect();
        for c in row.columns() {
            if c.name() == "time" || c.type_info().name() == "TEXT" {
                continue;
            }
            let value = row.try_get_raw(c.ordinal()).unwrap();
            if !value.is_null() {
                out.entry(format!("{} {}", labels.join(" "), c.name()))
                    .or_default()
                    .insert(*time);
            }
        }
    }
    out.into_iter().map(|(k, v)| (k, v.len())).collect()
}

#[tokio::test]
async fn every_panel_query_runs_as_the_reader_on_the_demo_data_and_returns_rows() {
    let d = dashboard();
    let db = TestDb::demo().await;
    let role = Role::new(&db, "dash");
    role.create_login().await;
    let wd = Workdir::new(&[]);
    let env = vec![("DATABASE_URL".to_string(), db.url.clone())];
    let out = linkledger(wd.path(), &env, &["grant-reader", &role.name]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let mut reader = PgConnection::connect(&role.url()).await.unwrap();

    let now = Utc::now();
    let from = relative_time(d["time"]["from"].as_str().unwrap(), now);
    let to = relative_time(d["time"]["to"].as_str().unwrap(), now);
    let vars = variables(&d, &mut reader, from, to, None).await;
    assert!(
        vars.iter().all(|v| v.values.len() > 1),
        "All selects every target"
    );

    let panels = panels(&d);
    assert!(panels.len() >= 8, "{}", panels.len());
    let mut queries = 0;
    let mut lines_checked = 0;
    for p in &panels {
        let title = p["title"].as_str().unwrap();
        for t in p["targets"].as_array().expect("targets") {
            let sql = fill_macros(
                &fill_variables(t["rawSql"].as_str().expect("rawSql"), &vars),
                from,
                to,
            );
            assert!(!sql.contains('$'), "{title}: left unfilled: {sql}");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(&mut reader)
                .await
                .unwrap_or_else(|e| panic!("{title}: {sql}: {e}"));
            assert!(!rows.is_empty(), "{title} shows nothing: {sql}");
            if t["format"] == "time_series" {
                let times: Vec<DateTime<Utc>> = rows
                    .iter()
                    .map(|r| r.try_get("time").unwrap_or_else(|e| panic!("{title}: {e}")))
                    .collect();
                assert!(
                    times.windows(2).all(|w| w[0] <= w[1]),
                    "{title}: a time series sorted by time"
                );
                assert!(
                    times
                        .iter()
                        .all(|t| *t >= from - TimeDelta::days(7) && *t <= to + TimeDelta::days(7)),
                    "{title}: times within the range"
                );
                // The demo's days: a chart over time has more than one point in time,
                // and a line chart more than one point on every line it draws.
                let distinct: BTreeSet<&DateTime<Utc>> = times.iter().collect();
                assert!(
                    distinct.len() > 1,
                    "{title}: one point in time only: {distinct:?}"
                );
                if p["fieldConfig"]["defaults"]["custom"]["drawStyle"] == "line" {
                    for (line, points) in lines(&rows, &times) {
                        assert!(
                            points > 1,
                            "{title}: the line {line} has {points} point(s): {sql}"
                        );
                    }
                    lines_checked += 1;
                }
            }
            queries += 1;
        }
    }
    assert!(queries >= panels.len());
    assert!(
        lines_checked >= 4,
        "the line charts were checked: {lines_checked}"
    );

    // Every target of the example jobs was collected by the demo: each call's options,
    // as the database reads them from its task, are those the job files give.
    let not_ok: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT job, collection, status FROM linkledger.target_status WHERE status <> 'ok'",
    )
    .fetch_all(&mut reader)
    .await
    .unwrap();
    assert!(not_ok.is_empty(), "{not_ok:?}");

    // The link workflows compare the targets of the example's referring_domains
    // collection with each other: each is a competitor of the other two.
    let declared: Vec<String> = sqlx::query_scalar(
        "SELECT competitor FROM linkledger.workflow_competitors
         WHERE target = 'ahrefs.com' AND declared_in_job ORDER BY competitor",
    )
    .fetch_all(&mut reader)
    .await
    .unwrap();
    assert_eq!(declared, ["dataforseo.com", "semrush.com"]);

    // The five queries of docs/workflows.md, for one of the example's targets and a
    // competitor of it, run as the reader and answer with rows.
    let doc = std::fs::read_to_string(root().join("docs/workflows.md")).unwrap();
    let sql = doc
        .split("```sql\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/workflows.md has an sql block");
    let code: Vec<&str> = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    let statements: Vec<String> = code
        .join("\n")
        .split(';')
        .map(str::to_string)
        .filter(|q| !q.trim().is_empty())
        .collect();
    assert_eq!(statements.len(), 5, "{sql}");
    for q in statements {
        let q = q
            .replace("'example.com'", "'ahrefs.com'")
            .replace("'rival.net'", "'semrush.com'");
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(q.clone()))
            .fetch_all(&mut reader)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        assert!(!rows.is_empty(), "no rows: {q}");
    }

    // One job chosen instead of All: the targets offered are that job's, the panels
    // that name jobs show only its rows.
    let job_targets: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT target FROM linkledger.job_targets WHERE job = 'pages' ORDER BY target",
    )
    .fetch_all(&mut reader)
    .await
    .unwrap();
    let all_targets = &vars.iter().find(|v| v.name == "target").unwrap().values;
    assert!(!job_targets.is_empty() && job_targets.len() < all_targets.len());
    let pages = variables(&d, &mut reader, from, to, Some(("job", "pages"))).await;
    let offered = &pages.iter().find(|v| v.name == "target").unwrap().values;
    assert_eq!(
        offered, &job_targets,
        "the job variable filters the targets"
    );
    let status = panels
        .iter()
        .find(|p| p["title"] == "Target status")
        .expect("the target status panel");
    let sql = fill_macros(
        &fill_variables(status["targets"][0]["rawSql"].as_str().unwrap(), &pages),
        from,
        to,
    );
    let jobs: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT job FROM ({sql}) s"
    )))
    .fetch_all(&mut reader)
    .await
    .unwrap();
    assert_eq!(jobs, ["pages"]);

    // One target chosen instead of All: every query is still valid SQL.
    let one = all_targets[0].clone();
    let vars = variables(&d, &mut reader, from, to, Some(("target", &one))).await;
    for p in &panels {
        for t in p["targets"].as_array().unwrap() {
            let sql = fill_macros(
                &fill_variables(t["rawSql"].as_str().unwrap(), &vars),
                from,
                to,
            );
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(&mut reader)
                .await
            {
                panic!("{} with {one}: {sql}: {e}", p["title"]);
            }
        }
    }
    reader.close().await.unwrap();
}

/// The SQL of the panel titled `title`, filled as Grafana fills it.
fn panel_sql(
    d: &Value,
    title: &str,
    vars: &[Var],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> String {
    let p = panels(d)
        .into_iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title}"));
    fill_macros(
        &fill_variables(p["targets"][0]["rawSql"].as_str().unwrap(), vars),
        from,
        to,
    )
}

#[tokio::test]
async fn the_rank_panel_draws_one_line_per_target_with_a_rank_one_point_a_day_each_on_its_scale() {
    let d = dashboard();
    let db = TestDb::demo().await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let now = Utc::now();
    let from = relative_time(d["time"]["from"].as_str().unwrap(), now);
    let to = relative_time(d["time"]["to"].as_str().unwrap(), now);
    let vars = variables(&d, &mut conn, from, to, None).await;
    let sql = panel_sql(&d, "Rank per target", &vars, from, to);
    let rows: Vec<(DateTime<Utc>, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let series: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    let points: std::collections::BTreeSet<(DateTime<Utc>, &str)> =
        rows.iter().map(|r| (r.0, r.1.as_str())).collect();
    assert_eq!(
        points.len(),
        rows.len(),
        "one point per line and day: {rows:?}"
    );
    // Every target with a rank in the range has its line, a target collected on the
    // 0-100 scale only (the demo's portfolio) on that scale, named so.
    let ranked: Vec<(String, bool)> = sqlx::query_as(
        "SELECT target, bool_or(rank_scale = 'one_thousand') FROM linkledger.rank_trend
         WHERE date >= $1::timestamptz::date GROUP BY target ORDER BY target",
    )
    .bind(from)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let expected: std::collections::BTreeSet<String> = ranked
        .iter()
        .map(|(t, thousand)| {
            if *thousand {
                t.clone()
            } else {
                format!("{t} (0-100)")
            }
        })
        .collect();
    assert!(
        ranked.iter().any(|(_, thousand)| !thousand),
        "the demo has a 0-100 target"
    );
    assert_eq!(
        series,
        expected.iter().map(String::as_str).collect(),
        "one line per target"
    );
    conn.close().await.unwrap();
}

#[tokio::test]
async fn the_new_and_lost_panels_draw_partial_weeks_apart_from_whole_ones() {
    let d = dashboard();
    let db = TestDb::demo().await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let now = Utc::now();
    let from = relative_time(d["time"]["from"].as_str().unwrap(), now);
    let to = relative_time(d["time"]["to"].as_str().unwrap(), now);
    let vars = variables(&d, &mut conn, from, to, None).await;
    for title in [
        "New vs lost backlinks per week",
        "New vs lost referring domains per week",
    ] {
        let sql = panel_sql(&d, title, &vars, from, to);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{title}: {sql}: {e}"));
        let (mut whole, mut partial) = (0, 0);
        for r in &rows {
            let time: DateTime<Utc> = r.get("time");
            let target: String = r.get("target");
            let complete: bool = sqlx::query_scalar(
                "SELECT complete FROM linkledger.new_lost_weekly
                 WHERE target = $1 AND week = $2::timestamptz::date",
            )
            .bind(&target)
            .bind(time)
            .fetch_one(&mut conn)
            .await
            .unwrap();
            let new: Option<i64> = r.get("new");
            let new_partial: Option<i64> = r.get("new (partial week)");
            let lost: Option<i64> = r.get("lost");
            let lost_partial: Option<i64> = r.get("lost (partial week)");
            if complete {
                assert!(new.is_some() && lost.is_some(), "{title}: {target} {time}");
                assert!(
                    new_partial.is_none() && lost_partial.is_none(),
                    "{title}: {target} {time}"
                );
                whole += 1;
            } else {
                assert!(
                    new.is_none() && lost.is_none(),
                    "{title}: {target} {time} is partial"
                );
                assert!(
                    new_partial.is_some() && lost_partial.is_some(),
                    "{title}: {target} {time}"
                );
                partial += 1;
            }
        }
        // The demo collects a month by day: whole weeks, and a partial one at each end.
        assert!(
            whole > 0 && partial > 0,
            "{title}: {whole} whole, {partial} partial"
        );
    }
    conn.close().await.unwrap();
}

#[test]
fn every_panel_reads_the_provisioned_data_source_and_the_readme_describes_it() {
    let d = dashboard();
    let uid = datasource_uid();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains(&format!("/d/{}", d["uid"].as_str().unwrap())));
    let mut ids = std::collections::BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        assert!(
            ids.insert(p["id"].as_i64().unwrap()),
            "panel ids are unique"
        );
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        assert_eq!(v["datasource"]["uid"], uid.as_str(), "{v}");
    }
    for p in panels(&d) {
        let title = p["title"].as_str().unwrap();
        assert_eq!(p["datasource"]["uid"], uid.as_str(), "{title}");
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], uid.as_str(), "{title}");
            assert_eq!(t["rawQuery"], true, "{title}");
        }
        assert!(
            !p["description"].as_str().unwrap_or_default().is_empty(),
            "{title} has a description"
        );
        assert!(
            readme.contains(&format!("**{title}**")),
            "README.md describes the panel {title}"
        );
    }
}

#[test]
fn relative_times_and_variables_are_filled_as_grafana_fills_them() {
    let now: DateTime<Utc> = "2026-12-02T03:00:00Z".parse().unwrap();
    assert_eq!(
        relative_time("now-1y", now),
        "2025-12-02T03:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(relative_time("now", now), now);
    let vars = [
        Var {
            name: "target".into(),
            quoted: true,
            values: vec!["a.com".into(), "o'neil.com".into()],
        },
        Var {
            name: "one".into(),
            quoted: false,
            values: vec!["x".into()],
        },
    ];
    assert_eq!(
        fill_variables(
            "t IN ($target) AND [[one]] = ${one} AND u IN (${target:csv}) AND $__timeFilter(d)",
            &vars
        ),
        "t IN ('a.com','o''neil.com') AND x = x AND u IN (a.com,o'neil.com) AND $__timeFilter(d)"
    );
    assert_eq!(
        fill_macros("$__timeFilter(day) AND $__time(t)", now, now),
        "day BETWEEN '2026-12-02T03:00:00Z' AND '2026-12-02T03:00:00Z' AND t AS \"time\""
    );
}
