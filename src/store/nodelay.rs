//! `TCP_NODELAY` on the database's TCP connections.
//!
//! sqlx 0.9.0 opens TCP connections with Nagle's algorithm on (sqlx issue #4335: 0.8
//! set `TCP_NODELAY`, the fix is merged upstream but not released). A statement sent
//! as more than one write then waits for the server's delayed ACK (up to 40 ms on
//! Linux) before its last part leaves, which made runs over TCP about twice as slow
//! as over a Unix socket. sqlx does not hand out its sockets, so each new pooled
//! connection sets the option on this process's TCP sockets whose peer is the
//! database's port and that do not have it yet. Remove this once a sqlx release sets
//! it itself.

use std::os::fd::{BorrowedFd, RawFd};

/// Sets `TCP_NODELAY` on every TCP socket of this process connected to `port` that
/// lacks it. Errors are ignored: a descriptor that closed meanwhile or is no socket
/// is simply skipped.
pub(super) fn on_connections_to(port: u16) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let mut set = 0;
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor is only asked about and given a socket option; if it
        // closed (or was reused) meanwhile, those calls fail or touch another socket
        // of this process harmlessly (TCP_NODELAY never breaks a connection).
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let to_db = sock
            .peer_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some_and(|a| a.port() == port);
        if to_db && sock.tcp_nodelay().is_ok_and(|on| !on) && sock.set_tcp_nodelay(true).is_ok() {
            set += 1;
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_to_the_port_gets_nodelay_and_others_do_not() {
        let db = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to_db = std::net::TcpStream::connect(db.local_addr().unwrap()).unwrap();
        let to_other = std::net::TcpStream::connect(other.local_addr().unwrap()).unwrap();
        assert!(!to_db.nodelay().unwrap() && !to_other.nodelay().unwrap());
        on_connections_to(db.local_addr().unwrap().port());
        assert!(
            to_db.nodelay().unwrap(),
            "the database connection has TCP_NODELAY"
        );
        assert!(
            !to_other.nodelay().unwrap(),
            "another connection is left alone"
        );
    }
}
