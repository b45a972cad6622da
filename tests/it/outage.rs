//! A PostgreSQL outage does not buy twice: answers that arrive while the database is
//! away wait (in memory, retried) until it is back, and the process never claims again
//! the items it still works on, however long the outage and whatever their leases say.
//! The outage is a TCP proxy between linkledger and PostgreSQL that drops every
//! connection and refuses new ones for a while.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::common::*;

/// Where the test PostgreSQL listens: TCP, or a Unix socket (the throwaway cluster).
#[derive(Clone, Debug)]
enum Upstream {
    Tcp(SocketAddr),
    Unix(std::path::PathBuf),
}

/// A TCP proxy to the test PostgreSQL that can be cut.
struct PgProxy {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    /// Cancelled to drop every connection open now.
    open: Arc<Mutex<CancellationToken>>,
}

impl PgProxy {
    async fn start(upstream: Upstream) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(CancellationToken::new()));
        let (d, o) = (down.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if d.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let cut = o.lock().unwrap().clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    match upstream {
                        Upstream::Tcp(addr) => {
                            let Ok(mut server) = TcpStream::connect(addr).await else {
                                return;
                            };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = cut.cancelled() => {}
                            }
                        }
                        Upstream::Unix(path) => {
                            let Ok(mut server) = tokio::net::UnixStream::connect(path).await else {
                                return;
                            };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = cut.cancelled() => {}
                            }
                        }
                    }
                });
            }
        });
        PgProxy { addr, down, open }
    }

    /// Drops every connection and refuses new ones until [`PgProxy::restore`].
    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        open.cancel();
        *open = CancellationToken::new();
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

/// `run --once` of 30 summaries (answers taking a second, five in flight at a time,
/// leases of 3 s) through a proxy cut for `outage` once 10 requests are out: every
/// answer is bought once, and every call succeeds.
async fn once_through_an_outage(outage: Duration) {
    let db = TestDb::new().await;
    // Through a proxy to wherever the test database is (a server, or the quick
    // start's throwaway cluster on a Unix socket).
    let mut url = url::Url::parse(&db.url).expect("a database URL");
    let port = url.port().unwrap_or(5432);
    let socket_dir = url
        .query_pairs()
        .find(|(k, _)| k == "host")
        .map(|(_, v)| v.into_owned());
    let upstream = match socket_dir {
        Some(dir) => Upstream::Unix(std::path::Path::new(&dir).join(format!(".s.PGSQL.{port}"))),
        None => Upstream::Tcp(
            tokio::net::lookup_host(format!("{}:{port}", url.host_str().unwrap_or("127.0.0.1")))
                .await
                .unwrap()
                .next()
                .expect("the database's address"),
        ),
    };
    let proxy = PgProxy::start(upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "host")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    let url = url.to_string();
    let sb = sandbox(with_latency(Duration::from_secs(1))).await;
    let targets: Vec<String> = (0..30)
        .map(|i| format!("\"o{i:02}.example.com\""))
        .collect();
    let wd = Workdir::new(&[(
        "outage.toml",
        &format!(
            "name = \"outage\"\ntargets = [{}]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
            targets.join(", ")
        ),
    )]);
    let mut env = env_for(&db, &sb);
    for (k, v) in env.iter_mut() {
        if k == "DATABASE_URL" {
            *v = url.clone();
        }
    }
    let env = with_env(
        env,
        &[
            ("LINKLEDGER_API__MAX_IN_FLIGHT", "5"),
            ("LINKLEDGER_QUEUE__LEASE", "3s"),
        ],
    );
    let child = command(wd.path(), &env, &["run", "--once"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(60), "10 requests out", || async {
        sb.stats().requests >= 10
    })
    .await;
    proxy.cut();
    // The outage itself: its length is the fault under test.
    tokio::time::sleep(outage).await;
    proxy.restore();
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("the run ends")
        .unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}{}",
        outage,
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        sb.stats().requests,
        30,
        "{outage:?}: each answer bought once: {:?}",
        sb.stats()
    );
    let store = db.store().await;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM linkledger.work WHERE state = 'succeeded'"
        )
        .await,
        30
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM linkledger.summary").await,
        30
    );
}

#[tokio::test]
async fn an_outage_twice_the_lease_buys_no_answer_twice() {
    once_through_an_outage(Duration::from_secs(6)).await;
}

#[tokio::test]
async fn an_outage_five_times_the_lease_buys_no_answer_twice() {
    once_through_an_outage(Duration::from_secs(15)).await;
}
