//! A leadrouter started by the bench on a temporary SQLite database, stopped when the guard goes — at the
//! end, on an error, or on Ctrl-C (the future holding the guard is dropped).

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

/// How long a fresh server may take to migrate its database and answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct LocalServer {
    child: Child,
    pub url: String,
    log: PathBuf,
    // Declared last so the database outlives the process using it (fields drop in order, after `drop`).
    dir: tempfile::TempDir,
}

/// The server's resident memory, from /proc/<pid>/status.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Memory {
    /// VmRSS: resident now.
    pub rss_kib: u64,
    /// VmHWM: the most it was ever resident.
    pub peak_rss_kib: u64,
}

impl LocalServer {
    pub async fn start() -> anyhow::Result<Self> {
        let binary = sibling_server_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("leadrouter-bench-")
            .tempdir()
            .context("creating a temporary directory for the database")?;
        let address = free_local_address()?;
        let log = dir.path().join("server.log");
        let log_file = File::create(&log).context("creating the server log")?;
        let child = Command::new(&binary)
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", dir.path().join("bench.db").display()),
            )
            .env("LEADROUTER_BIND", &address)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Self {
            child,
            url: format!("http://{address}"),
            log,
            dir,
        };
        server.wait_until_ready().await?;
        Ok(server)
    }

    /// The temporary directory of its database: where --raw-sqlite puts its own, on the same disk.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn memory(&self) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|line| line.starts_with(name))?;
            line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        };
        Some(Memory {
            rss_kib: field("VmRSS:")?,
            peak_rss_kib: field("VmHWM:")?,
        })
    }

    /// Polls a cheap endpoint until it answers, failing early (with the server's log) if the process exits.
    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let probe = format!("{}/sources/?limit=1", self.url);
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "leadrouter exited during start-up ({status}):\n{}",
                    self.log_tail()
                );
            }
            if let Ok(response) = client.get(&probe).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "leadrouter did not answer within {START_TIMEOUT:?}:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        // The database is thrown away, so there is nothing for a graceful shutdown to save.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `leadrouter` binary in the directory of this executable: cargo builds both into the same target dir.
fn sibling_server_binary() -> anyhow::Result<PathBuf> {
    let bench = std::env::current_exe().context("locating the bench executable")?;
    let dir = bench.parent().unwrap_or(Path::new("."));
    let server = dir.join(format!("leadrouter{}", std::env::consts::EXE_SUFFIX));
    if !server.is_file() {
        bail!(
            "no leadrouter binary at {}: build it next to the bench with `cargo build --release --workspace` \
             (or pass --url to load a server that is already running)",
            server.display()
        );
    }
    Ok(server)
}

/// A port nobody listens on now. Another process could take it before the server binds; then start-up
/// fails with the server's own message, which is rare enough not to retry.
fn free_local_address() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.to_string())
}
