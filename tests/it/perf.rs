//! What keeps the pipeline fast: no Nagle stalls on the database connections.

use std::os::fd::{BorrowedFd, RawFd};

use crate::common::TestDb;

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
    let tcp = url::Url::parse(&db.url)
        .unwrap()
        .host_str()
        .is_some_and(|h| !h.is_empty() && !h.starts_with('/'));
    assert_eq!(port.is_some(), tcp, "TCP exactly when the URL names a host");
    if let Some(port) = port {
        assert_eq!(
            nodelay_of_local_port(port as u16),
            Some(true),
            "the pooled connection from port {port} has TCP_NODELAY"
        );
    }
}
