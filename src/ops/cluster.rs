//! A throwaway PostgreSQL cluster started from the local binaries, for `demo` and the
//! tests when `DATABASE_URL` is not set. It listens on a Unix socket only, in a
//! temporary directory, and is stopped when dropped or when the process that started
//! it dies (a watchdog shell stops it), so nothing is left running.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    user: Option<(u32, u32)>,
}

impl Cluster {
    /// initdb + start. As root, runs as the `postgres` user (else `nobody`), because
    /// initdb refuses to run as root.
    pub fn start() -> Result<Cluster> {
        let bin = find_bindir().context(
            "no PostgreSQL server binaries found (looked for initdb in PATH, \
             `pg_config --bindir` and /usr/lib/postgresql/*/bin); install PostgreSQL \
             or set DATABASE_URL",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("linkledger-pg-")
            .tempdir()
            .context("creating a directory for the throwaway cluster")?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let user = if nix::unistd::Uid::effective().is_root() {
            let u = nix::unistd::User::from_name("postgres")?
                .or(nix::unistd::User::from_name("nobody")?)
                .context("running as root and neither user postgres nor nobody exists")?;
            Some((u.uid.as_raw(), u.gid.as_raw()))
        } else {
            None
        };
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        let log = dir.path().join("log");
        // The directory itself belongs to the cluster's user too, so the watchdog
        // (running as that user) can remove all of it when this process dies.
        if let Some((uid, gid)) = user {
            nix::unistd::chown(
                dir.path(),
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )?;
        }
        for d in [&data, &sock, &log] {
            std::fs::create_dir(d)?;
            if let Some((uid, gid)) = user {
                nix::unistd::chown(
                    d.as_path(),
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                )?;
            }
        }
        let cluster = Cluster { dir, bin, user };
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )?;
        let opts = format!(
            "-c listen_addresses='' -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            path_str(&sock)?
        );
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-o",
                &opts,
                "-l",
                path_str(&log.join("postgres.log"))?,
                "-w",
                "start",
            ],
        )?;
        cluster.spawn_watchdog()?;
        Ok(cluster)
    }

    /// URL of the `postgres` database of this cluster.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://postgres@localhost:5432/{database}?host={}",
            self.dir.path().join("sock").display()
        )
    }

    /// Restarts the server (fast shutdown: open connections are cut), as an operator or
    /// a failover would. For tests of reconnection.
    pub fn restart(&self) -> Result<()> {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log").join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-m",
                "fast",
                "-w",
                "restart",
            ],
        )
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        cmd.current_dir(self.dir.path());
        cmd
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<()> {
        let out = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {program}"))?;
        if !out.status.success() {
            bail!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Stops the cluster when this process dies without dropping it (tests keep it in a
    /// static; a killed demo never runs its destructors).
    fn spawn_watchdog(&self) -> Result<()> {
        let script = format!(
            // As another user, `kill -0` on our pid fails with EPERM; /proc does not.
            "alive() {{ if [ -d /proc/self ]; then [ -d /proc/{pid} ]; else kill -0 {pid}; fi; }}; \
             while alive 2>/dev/null; do sleep 1; done; \
             '{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.dir.path().join("data").display(),
            dir = self.dir.path().display(),
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting the cluster watchdog")?;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        if let Some(d) = data.to_str() {
            let _ = self.run("pg_ctl", &["-D", d, "-m", "fast", "-w", "stop"]);
        }
    }
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("non-UTF-8 temporary path")
}

fn find_bindir() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("initdb").is_file() && d.join("pg_ctl").is_file() {
                return Some(d);
            }
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if d.join("initdb").is_file() {
            return Some(d);
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, b)| b)
}

/// A scratch database for a benchmark or a simulation: created next to `DATABASE_URL`
/// (else in a throwaway [`Cluster`]) and dropped by [`Scratch::drop_database`].
pub struct Scratch {
    admin: sqlx::PgConnection,
    name: String,
    url: secrecy::SecretString,
    _cluster: Option<Cluster>,
}

impl Scratch {
    /// A new empty database named `{prefix}_{pid}`.
    pub async fn create(prefix: &str) -> Result<Scratch> {
        use sqlx::Connection;
        let (admin, cluster) = match std::env::var("DATABASE_URL") {
            Ok(url) => (url, None),
            Err(_) => {
                let c = Cluster::start()?;
                (c.url(), Some(c))
            }
        };
        let name = format!("{prefix}_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .context("connecting to create a scratch database")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating database {name}"))?;
        let mut url = url::Url::parse(&admin).context("DATABASE_URL")?;
        url.set_path(&format!("/{name}"));
        Ok(Scratch {
            admin: conn,
            name,
            url: secrecy::SecretString::from(url.to_string()),
            _cluster: cluster,
        })
    }

    pub fn url(&self) -> &secrecy::SecretString {
        &self.url
    }

    /// Drops the database (connections still open to it are cut).
    pub async fn drop_database(mut self) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut self.admin)
        .await
        .with_context(|| format!("dropping database {}", self.name))?;
        Ok(())
    }
}
