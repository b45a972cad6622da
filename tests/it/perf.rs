//! What keeps the pipeline fast and its memory bounded: no Nagle stalls on the
//! database connections, a bound on large answers parsed and loaded at once.

use std::os::fd::{BorrowedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use linkledger::store::RunKind;

use crate::common::*;

/// This process's TCP socket whose local port is `port`: whether it has TCP_NODELAY.
fn nodelay_of_local_port(port: u16) -> Option<bool> {
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // SAFETY: only asked about; a descriptor closed meanwhile makes the calls fail.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        if sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some_and(|a| a.port() == port)
        {
            return sock.tcp_nodelay().ok();
        }
    }
    None
}

#[tokio::test]
async fn the_stores_tcp_connections_to_the_database_send_without_delay() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let mut conn = store.pool().acquire().await.unwrap();
    // The server sees the client's port; NULL over a Unix socket (a throwaway cluster).
    let port: Option<i32> = sqlx::query_scalar("SELECT inet_client_port()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    // A `host` query parameter naming a directory is a Unix socket (a throwaway
    // cluster's URL), as sqlx reads it.
    let opts: sqlx::postgres::PgConnectOptions = db.url.parse().unwrap();
    let tcp = opts.get_socket().is_none();
    assert_eq!(
        port.is_some(),
        tcp,
        "TCP exactly when the URL names no socket"
    );
    if let Some(port) = port {
        assert_eq!(
            nodelay_of_local_port(port as u16),
            Some(true),
            "the pooled connection from port {port} has TCP_NODELAY"
        );
    }
}

/// Large answers (history since 2019) are received as many at once as the limits
/// allow, but parsed, stored and loaded at most `loads` at a time; every one is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_most_the_configured_number_of_large_answers_are_loaded_at_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let sb = default_sandbox().await;
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (n, m) = (now.clone(), most.clone());
    let exec = executor(&store, &sb, 8)
        .with_loads(2)
        .with_before_normalize(Arc::new(move |_call| {
            let at_once = n.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(at_once, Ordering::SeqCst);
            // Holds this load a moment, so that loads not bounded would overlap.
            std::thread::sleep(Duration::from_millis(30));
            n.fetch_sub(1, Ordering::SeqCst);
        }));
    let targets: Vec<String> = (0..8).map(|i| format!("large-{i}.example.com")).collect();
    let job = job_for("history", &targets, "date_from = \"2019-01-01\"");
    let report = run_once(&exec, &[&job], RunKind::Once, today())
        .await
        .unwrap();
    assert!(report.ok(), "{}", report.line());
    assert_eq!(report.ends().succeeded, 8);
    let smallest = count(
        &store,
        "SELECT min(octet_length(body::text))::bigint FROM linkledger.raw_responses
         WHERE endpoint = 'history'",
    )
    .await;
    assert!(
        smallest > 64 * 1024,
        "the answers are large ones ({smallest} bytes)"
    );
    let most = most.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&most),
        "{most} answers were loaded at once"
    );
}
