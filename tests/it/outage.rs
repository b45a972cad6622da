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

/// A TCP proxy to the test PostgreSQL that can be cut.
struct PgProxy {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    /// Cancelled to drop every connection open now.
    open: Arc<Mutex<CancellationToken>>,
}

impl PgProxy {
    async fn start(upstream: SocketAddr) -> PgProxy {
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
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.cancelled() => {}
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
    let proxy = PgProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let url = db
        .url
        .replace("127.0.0.1:5432", &proxy.addr.to_string())
        .replace("localhost:5432", &proxy.addr.to_string());
    assert_ne!(url, db.url, "the database URL goes through the proxy");
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
