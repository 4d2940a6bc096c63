//! The run's PostgreSQL and Redis. Preferably servers of its own, started here (a PostgreSQL
//! cluster from `initdb` in the run's directory, a `redis-server` that saves nothing), so that
//! crash-restarting PostgreSQL or flushing Redis harms nobody else on the machine; otherwise the
//! shared servers of DATABASE_URL and REDIS_URL, where the run restarts nothing and deletes only
//! its own Redis keys.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::queue::Queues;

/// A free loopback port (free when asked; the caller binds it at once).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub struct Postgres {
    /// The server's URL (database `postgres`).
    pub url: String,
    cluster: Option<Cluster>,
}

/// A private cluster driven by `pg_ctl`.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    options: String,
    /// initdb and the server refuse to run as root: run them as the `postgres` user.
    as_postgres: bool,
}

impl Postgres {
    /// A private cluster in `dir` when `private` and the server binaries are found, else the
    /// server of `shared_url`. Says which on stderr.
    pub async fn start(shared_url: &str, dir: &Path, private: bool) -> anyhow::Result<Self> {
        let shared = || Postgres {
            url: shared_url.to_string(),
            cluster: None,
        };
        if !private {
            eprintln!(
                "chaos: PostgreSQL restarts off (--no-pg-restart): using DATABASE_URL's server"
            );
            return Ok(shared());
        }
        let Some(bin) = server_binaries().await else {
            eprintln!(
                "chaos: no PostgreSQL server binaries (initdb, pg_ctl) found: PostgreSQL restarts skipped, using DATABASE_URL's server"
            );
            return Ok(shared());
        };
        let cluster = Cluster::init(&bin, dir).await?;
        let url = cluster.url();
        cluster.pg_ctl(&["start", "-w", "-t", "60"]).await?;
        eprintln!(
            "chaos: private PostgreSQL cluster at {url} ({})",
            bin.display()
        );
        Ok(Postgres {
            url,
            cluster: Some(cluster),
        })
    }

    pub fn can_restart(&self) -> bool {
        self.cluster.is_some()
    }

    /// A crash: every backend killed without a checkpoint, then recovery from the WAL at start.
    pub async fn restart(&self, down: Duration) -> anyhow::Result<()> {
        let cluster = self.cluster.as_ref().context("no private cluster")?;
        cluster.pg_ctl(&["stop", "-m", "immediate", "-w"]).await?;
        tokio::time::sleep(down).await;
        // Crash recovery replays the WAL: on a loaded machine that takes a while.
        cluster.pg_ctl(&["start", "-w", "-t", "600"]).await
    }

    pub async fn stop(&self) {
        if let Some(cluster) = &self.cluster
            && let Err(e) = cluster.pg_ctl(&["stop", "-m", "fast", "-w"]).await
        {
            eprintln!("chaos: the private PostgreSQL did not stop: {e:#}");
        }
    }
}

/// `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin, holding initdb and pg_ctl.
async fn server_binaries() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output().await {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_tools(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_tools(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl Cluster {
    async fn init(bin: &Path, dir: &Path) -> anyhow::Result<Self> {
        let home = dir.join("postgres");
        std::fs::create_dir_all(&home)?;
        let as_postgres = running_as_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&home)).await?;
        }
        let port = free_port()?;
        let data = home.join("data");
        let cluster = Cluster {
            bin: bin.to_path_buf(),
            log: home.join("server.log"),
            // fsync stays on: a crash must lose nothing that was committed. Frequent
            // checkpoints and one syncfs before recovery keep a crash's recovery to seconds, so
            // that the outage lasts about as long as the schedule says, even on a busy disk.
            options: format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {} -c max_connections=300 -c fsync=on \
                 -c checkpoint_timeout=30s -c recovery_init_sync_method=syncfs",
                home.display()
            ),
            data,
            as_postgres,
        };
        run(cluster.tool("initdb").arg("-D").arg(&cluster.data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]))
        .await?;
        Ok(cluster)
    }

    fn url(&self) -> String {
        let port = self
            .options
            .split_whitespace()
            .nth(1)
            .expect("the port is the first option");
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    }

    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    async fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        run(self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .arg("-o")
            .arg(&self.options)
            .args(args))
        .await
    }
}

/// Runs a command to its end; its output only when it fails.
async fn run(command: &mut Command) -> anyhow::Result<()> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("{command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

pub struct Redis {
    pub url: String,
    /// The private server; `None`: the shared one, of which only the run's keys are ours.
    server: Option<Child>,
}

impl Redis {
    /// A private `redis-server` when one is installed, else the server of `shared_url`.
    pub async fn start(shared_url: &str, dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("redis.log"))?)
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let Ok(server) = spawned else {
            eprintln!(
                "chaos: no redis-server: using REDIS_URL's server, flushing only the run's keys"
            );
            return Ok(Redis {
                url: shared_url.to_string(),
                server: None,
            });
        };
        let url = format!("redis://127.0.0.1:{port}");
        let client = redis::Client::open(url.as_str())?;
        for attempt in 0.. {
            match client.get_multiplexed_async_connection().await {
                Ok(_) => break,
                Err(e) if attempt >= 100 => bail!("the private redis-server did not start: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        eprintln!("chaos: private Redis at {url}");
        Ok(Redis {
            url,
            server: Some(server),
        })
    }

    /// FLUSHALL on the private server; on the shared one, every key of the run's prefix.
    pub async fn flush(&self, queues: &Queues) -> anyhow::Result<()> {
        if self.server.is_some() {
            let mut conn = redis::Client::open(self.url.as_str())?
                .get_multiplexed_async_connection()
                .await?;
            redis::cmd("FLUSHALL").query_async::<()>(&mut conn).await?;
        } else {
            queues.delete_all().await?;
        }
        Ok(())
    }

    /// Stops the private server (the run removes its keys from a shared one itself).
    pub async fn stop(mut self) {
        if let Some(server) = self.server.as_mut() {
            let _ = server.kill().await;
        }
    }
}
