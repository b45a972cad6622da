//! Errors a person meets before anything runs: a database that is not there, a
//! configuration with mistakes. Each says what is wrong, where, once, and quickly.

use std::time::{Duration, Instant};

use crate::common::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn a_closed_database_port_fails_at_once_saying_connection_refused() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let wd = Workdir::new(&[]);
    let url = format!("postgres://postgres@127.0.0.1:{port}/linkledger");
    let started = Instant::now();
    let out = linkledger(wd.path(), &env(&[("DATABASE_URL", &url)]), &["migrate"]).await;
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        took < Duration::from_secs(5),
        "within the 5 s connect timeout, not the pool's 30 s: {took:?}"
    );
    assert!(
        err.contains(&format!("connection refused at 127.0.0.1:{port}")),
        "{err}"
    );
    assert_eq!(err.matches("refused").count(), 1, "said once: {err}");
}

#[tokio::test]
async fn a_database_that_does_not_answer_fails_within_the_connect_timeout() {
    // Accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let wd = Workdir::new(&[]);
    let url = format!("postgres://postgres@127.0.0.1:{port}/linkledger");
    let started = Instant::now();
    let out = linkledger(
        wd.path(),
        &env(&[
            ("DATABASE_URL", &url),
            ("LINKLEDGER_DATABASE__CONNECT_TIMEOUT", "1s"),
        ]),
        &["migrate"],
    )
    .await;
    let took = started.elapsed();
    silent.abort();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert!(
        stderr(&out).contains(&format!("no answer from 127.0.0.1:{port} within 1s")),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_database_that_does_not_exist_says_so_once() {
    let db = TestDb::new().await;
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_path("/linkledger_no_such_database");
    let wd = Workdir::new(&[]);
    let out = linkledger(
        wd.path(),
        &env(&[("DATABASE_URL", url.as_str())]),
        &["migrate"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("database \"linkledger_no_such_database\" does not exist"),
        "{err}"
    );
    assert_eq!(err.matches("does not exist").count(), 1, "said once: {err}");
}

#[tokio::test]
async fn a_config_file_with_three_mistakes_reports_all_three_and_names_the_variable_of_a_fourth() {
    let wd = Workdir::new(&[]);
    wd.write_config(
        "[api]\nmax_inflight = 3\ntimeout = \"soon\"\n[budget]\ndaily_usd = \"lots\"\n",
    );
    let out = linkledger(
        wd.path(),
        &env(&[("LINKLEDGER_QUEUE__LEASE", "forever")]),
        &["jobs", "check"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    for key in ["api.max_inflight", "api.timeout", "budget.daily_usd"] {
        assert!(
            lines.iter().any(|l| l.contains(&format!("config: {key}: "))
                && l.ends_with("(from TOML file config/linkledger.toml)")),
            "{key}: {err}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("config: queue.lease: ")
            && l.ends_with("(from environment variable LINKLEDGER_QUEUE__LEASE)")),
        "{err}"
    );
}

#[tokio::test]
async fn without_a_database_the_error_shows_what_a_database_url_looks_like() {
    let wd = Workdir::new(&[]);
    let out = linkledger(wd.path(), &[], &["migrate"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("DATABASE_URL=postgres://127.0.0.1:5432/linkledger after createdb linkledger"),
        "{err}"
    );
}
