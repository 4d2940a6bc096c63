//! The service as it is deployed: child processes of this same binary (one `serve`, one
//! `schedule`, several `work`), each writing its log to the run's directory. Workers are killed
//! with SIGKILL and replaced; a process that exits by itself is a finding.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

struct Process {
    /// `serve`, `schedule`, `work-3`, `serve-12` (started again): the log file's name too.
    name: String,
    child: Child,
}

pub struct Fleet {
    exe: PathBuf,
    env: Vec<(String, String)>,
    logs: PathBuf,
    serve: Process,
    schedule: Process,
    /// One slot per worker; `None` between a kill and the replacement's start.
    workers: Vec<Option<Process>>,
    workers_started: usize,
    /// Processes started again after they exited by themselves.
    pub restarts: usize,
    /// Of those, how many stopped on an error they reported (exit code 1).
    pub error_exits: usize,
    /// Processes that crashed: a panic, or a signal nobody sent.
    pub crashes: Vec<String>,
}

impl Fleet {
    /// Starts every process with `env` added to this process's environment, and waits until
    /// `serve` answers `ready_url`.
    pub async fn start(
        env: Vec<(String, String)>,
        logs: PathBuf,
        workers: usize,
        ready_url: &str,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("this binary's path")?;
        let spawn = |name: &str, args: &[&str]| spawn(&exe, &env, &logs, name, args);
        let serve = spawn("serve", &["serve"])?;
        let schedule = spawn("schedule", &["schedule"])?;
        let mut fleet = Fleet {
            workers: Vec::new(),
            workers_started: 0,
            restarts: 0,
            error_exits: 0,
            crashes: Vec::new(),
            serve,
            schedule,
            exe,
            env,
            logs,
        };
        for slot in 0..workers {
            fleet.workers.push(None);
            fleet.start_worker(slot)?;
        }
        fleet.wait_ready(ready_url).await?;
        Ok(fleet)
    }

    async fn wait_ready(&mut self, url: &str) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if let Some(status) = self.serve.child.try_wait()? {
                bail!("serve exited ({status}): see {}", self.log_of("serve"));
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("serve not ready after 60 s: see {}", self.log_of("serve"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_of(&self, name: &str) -> String {
        self.logs.join(format!("{name}.log")).display().to_string()
    }

    /// Starts a new worker in `slot` (every worker has its own name and log).
    pub fn start_worker(&mut self, slot: usize) -> anyhow::Result<()> {
        self.workers_started += 1;
        let name = format!("work-{}", self.workers_started);
        self.workers[slot] = Some(spawn(&self.exe, &self.env, &self.logs, &name, &["work"])?);
        Ok(())
    }

    /// SIGKILL: no shutdown, in-flight jobs abandoned mid-step, leases left to expire.
    pub async fn kill_worker(&mut self, slot: usize) -> anyhow::Result<()> {
        if let Some(mut p) = self.workers[slot].take() {
            p.child.start_kill()?;
            p.child.wait().await?;
        }
        Ok(())
    }

    /// Starts a worker in every empty slot.
    pub fn fill_slots(&mut self) -> anyhow::Result<()> {
        for slot in 0..self.workers.len() {
            if self.workers[slot].is_none() {
                self.start_worker(slot)?;
            }
        }
        Ok(())
    }

    /// As a supervisor does (systemd's `Restart=on-failure`): starts again every process that
    /// has exited by itself, and notes it. Exit code 1 is a process that stopped on an error it
    /// reports (`work` starting while PostgreSQL is down cannot load its settings); anything
    /// else (a panic's 101, a signal we did not send) is a crash, and a finding.
    pub fn check(&mut self) -> anyhow::Result<()> {
        let (exe, env, logs) = (&self.exe, &self.env, &self.logs);
        let mut restarted = Vec::new();
        for p in [&mut self.serve, &mut self.schedule]
            .into_iter()
            .chain(self.workers.iter_mut().flatten())
        {
            if let Some(status) = p.child.try_wait()? {
                restarted.push((p.name.clone(), status));
                let args: &[&str] = if p.name.starts_with("work") {
                    &["work"]
                } else {
                    &[p.name.as_str()]
                };
                self.restarts += 1;
                *p = spawn(
                    exe,
                    env,
                    logs,
                    &format!("{}-{}", p.name, self.restarts),
                    args,
                )?;
            }
        }
        for (name, status) in restarted {
            if status.code() == Some(1) {
                self.error_exits += 1;
            } else {
                let crash = format!("{name} crashed ({status}): see {}", self.log_of(&name));
                eprintln!("chaos: {crash}");
                self.crashes.push(crash);
            }
        }
        Ok(())
    }

    /// SIGTERM to every process, SIGKILL to any still running after 20 s.
    pub async fn stop(self) {
        let mut all: Vec<Process> = [self.serve, self.schedule]
            .into_iter()
            .chain(self.workers.into_iter().flatten())
            .collect();
        for p in &all {
            if let Some(pid) = p.child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
        }
        for p in &mut all {
            if tokio::time::timeout(Duration::from_secs(20), p.child.wait())
                .await
                .is_err()
            {
                eprintln!("chaos: {} ignored SIGTERM; killed", p.name);
                let _ = p.child.kill().await;
            }
        }
    }
}

fn spawn(
    exe: &PathBuf,
    env: &[(String, String)],
    logs: &std::path::Path,
    name: &str,
    args: &[&str],
) -> anyhow::Result<Process> {
    let log = std::fs::File::create(logs.join(format!("{name}.log")))?;
    let child = Command::new(exe)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(Process {
        name: name.to_string(),
        child,
    })
}
