//! The load generator end to end: the real `leadrouter-bench` binary starts its own server (the `leadrouter`
//! binary beside it, in the same target directory), runs a small scenario and reports JSON. Only counts and
//! verdicts are asserted, never timings.
//!
//! `leadrouter` is another package of the workspace, so cargo does not build it for this package's tests.
//! `cargo test --workspace` does (the server's own tests need it); run alone (`cargo test -p leadrouter-bench`),
//! this test builds it first when it is missing or older than the server's sources, so that it never loads a
//! stale server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// The `leadrouter` binary where `leadrouter-bench` looks for it: beside itself.
fn server_binary() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_leadrouter-bench"))
        .with_file_name(format!("leadrouter{}", std::env::consts::EXE_SUFFIX))
}

/// The newest modification time of the files the server binary is built from.
fn newest_server_source(workspace: &Path) -> SystemTime {
    fn walk(path: &Path, newest: &mut SystemTime) {
        let Ok(metadata) = std::fs::metadata(path) else {
            return;
        };
        if metadata.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                walk(&entry.path(), newest);
            }
        } else if let Ok(modified) = metadata.modified() {
            *newest = (*newest).max(modified);
        }
    }
    let mut newest = SystemTime::UNIX_EPOCH;
    for input in ["src", "migrations", "Cargo.toml", "Cargo.lock"] {
        walk(&workspace.join(input), &mut newest);
    }
    newest
}

fn server_is_fresh(binary: &Path, workspace: &Path) -> bool {
    std::fs::metadata(binary)
        .and_then(|metadata| metadata.modified())
        .is_ok_and(|built| built >= newest_server_source(workspace))
}

/// Makes sure an up-to-date `leadrouter` stands beside `leadrouter-bench`, building it with cargo if not: into
/// the same target directory and profile as this test.
fn ensure_server_binary() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root");
        let binary = server_binary();
        if server_is_fresh(&binary, workspace) {
            return;
        }
        let profile_dir = binary.parent().expect("the profile directory");
        let target_dir = profile_dir.parent().expect("the target directory");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
        let mut build = Command::new(cargo);
        build
            .current_dir(workspace)
            .args(["build", "--package", "leadrouter", "--bin", "leadrouter"])
            .arg("--target-dir")
            .arg(target_dir);
        match profile_dir.file_name().and_then(|name| name.to_str()) {
            Some("debug") => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(profile) => {
                build.args(["--profile", profile]);
            }
            None => {}
        }
        eprintln!("bench test: building {} ({build:?})", binary.display());
        let status = build.status().expect("running cargo build");
        assert!(status.success(), "building the leadrouter binary failed: {status}");
        assert!(
            server_is_fresh(&binary, workspace),
            "no up-to-date leadrouter binary at {} after building it: build it with `cargo build -p leadrouter` \
             into the bench's target directory, or run the tests with `cargo test --workspace`",
            binary.display()
        );
    });
}

fn bench(args: &[&str]) -> Value {
    ensure_server_binary();
    let output = Command::new(env!("CARGO_BIN_EXE_leadrouter-bench"))
        .args(args)
        .args(["--json", "--quiet"])
        .output()
        .expect("running leadrouter-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "leadrouter-bench {args:?} failed ({}):\n{stderr}",
        output.status
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}):\n{}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// A `leadrouter` of the test's own on a temporary SQLite database, for the runs that load servers by --url;
/// killed when dropped.
struct RunningServer {
    child: Child,
    port: u16,
    // After `child`: the database outlives the process.
    _dir: tempfile::TempDir,
}

impl RunningServer {
    fn start() -> Self {
        ensure_server_binary();
        let dir = tempfile::tempdir().expect("a temporary directory");
        // Another process may take the port before the server binds it: rare enough not to retry.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(server_binary())
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", dir.path().join("bench.db").display()),
            )
            .env("LEADROUTER_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting leadrouter");
        let server = Self {
            child,
            port,
            _dir: dir,
        };
        server.wait_until_healthy();
        server
    }

    fn wait_until_healthy(&self) {
        let started = Instant::now();
        while !self.healthy() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "leadrouter on port {} did not answer /healthz",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn healthy(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        let mut answer = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 200")
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_clean_run(report: &Value, requests: u64) {
    for key in [
        "workload",
        "scenario",
        "elapsed_secs",
        "throughput_per_sec",
        "contacts_per_sec",
        "latency_ms",
        "by_kind",
        "errors_by_status",
        "server_memory",
        "invariants",
    ] {
        assert!(report.get(key).is_some(), "no `{key}` in {report:#}");
    }
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(
            report["latency_ms"][key].is_number(),
            "latency_ms.{key} in {report:#}"
        );
    }
    // The five slowest requests, slowest first, the first of them the maximum the histogram saw (which rounds
    // to three significant digits).
    let slowest: Vec<f64> = report["slowest_ms"]
        .as_array()
        .expect("slowest_ms")
        .iter()
        .map(|ms| ms.as_f64().expect("a latency"))
        .collect();
    assert_eq!(slowest.len(), 5, "{report:#}");
    assert!(slowest.is_sorted_by(|a, b| a >= b), "{report:#}");
    let max = report["latency_ms"]["max"].as_f64().expect("max");
    assert!((slowest[0] - max).abs() <= max * 0.01, "{report:#}");
    assert!(
        report["p999_over_p50"].as_f64().unwrap_or(0.0) >= 1.0,
        "{report:#}"
    );
    assert_eq!(report["requests"], requests, "{report:#}");
    assert_eq!(report["errors"], 0, "{report:#}");
    assert_eq!(
        report["errors_by_status"],
        serde_json::json!({}),
        "{report:#}"
    );
    assert_eq!(report["local_server"], true);
    assert!(
        report["server_memory"]["rss_kib"].as_u64().unwrap_or(0) > 0,
        "{report:#}"
    );
    assert_eq!(report["invariants"]["passed"], true, "{report:#}");
    let checks = report["invariants"]["checks"].as_array().expect("checks");
    assert!(
        checks.iter().all(|check| check["verdict"] != "failed"),
        "{report:#}"
    );
}

fn verdict_of<'a>(report: &'a Value, name: &str) -> Vec<&'a str> {
    report["invariants"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|check| check["name"].as_str().unwrap_or("").contains(name))
        .map(|check| check["verdict"].as_str().unwrap_or(""))
        .collect()
}

#[test]
fn mixed_workload_runs_clean_and_keeps_the_invariants() {
    let report = bench(&[
        "--requests",
        "300",
        "--concurrency",
        "8",
        "--workload",
        "mixed",
        "--sources",
        "2",
        "--weights",
        "10,30",
        "--preload",
        "50",
    ]);
    assert_clean_run(&report, 300);
    assert_eq!(report["workload"], "mixed");
    // Every fifth request is a read: 240 contacts, 60 reads over the three read endpoints.
    assert_eq!(report["contacts_created"], 240);
    let by_kind = &report["by_kind"];
    assert_eq!(by_kind["POST /contacts/"]["requests"], 240, "{report:#}");
    for read in [
        "GET /stats/sources/{id}",
        "GET /operators/{id}/stats",
        "GET /contacts/?limit=20",
    ] {
        assert_eq!(by_kind[read]["requests"], 20, "{read} in {report:#}");
    }
    // Ample capacity: the shares are judged, and hold.
    assert_eq!(
        verdict_of(&report, "shares follow the weights"),
        ["passed", "passed"]
    );
    assert_eq!(verdict_of(&report, "counts add up"), ["passed", "passed"]);
}

#[test]
fn the_health_workload_sends_only_healthz_and_creates_nothing() {
    let report = bench(&[
        "--requests",
        "200",
        "--concurrency",
        "2",
        "--workload",
        "health",
    ]);
    assert_clean_run(&report, 200);
    assert_eq!(report["workload"], "health");
    assert_eq!(report["contacts_created"], 0, "{report:#}");
    let kinds: Vec<&String> = report["by_kind"]
        .as_object()
        .expect("by_kind")
        .keys()
        .collect();
    assert_eq!(kinds, ["GET /healthz"], "{report:#}");
    assert_eq!(report["by_kind"]["GET /healthz"]["requests"], 200);
}

#[test]
fn returning_leads_keep_one_lead_each_and_respect_max_load() {
    // 4 operators × max_load 10 = 40 slots for 200 contacts: capacity runs out, so max_load is tested.
    let report = bench(&[
        "--requests",
        "200",
        "--concurrency",
        "8",
        "--workload",
        "returning-leads",
        "--lead-pool",
        "30",
        "--operators",
        "4",
        "--max-load",
        "10",
    ]);
    assert_clean_run(&report, 200);
    assert_eq!(report["contacts_created"], 200);
    assert_eq!(report["scenario"]["lead_pool"], 30);
    assert_eq!(verdict_of(&report, "no operator over max_load"), ["passed"]);
    assert_eq!(
        verdict_of(&report, "one lead per returning identity"),
        ["passed"]
    );
    // Capacity ran out, so the shares cannot follow the weights and are not judged.
    assert_eq!(
        verdict_of(&report, "shares follow the weights"),
        ["skipped", "skipped"]
    );
}

#[test]
fn clients_are_spread_over_every_url() {
    let server = RunningServer::start();
    // Two names of one server: as far as the bench can tell, two instances on one database.
    let urls = [
        format!("http://127.0.0.1:{}", server.port),
        format!("http://localhost:{}", server.port),
    ];
    let report = bench(&[
        "--url",
        &urls.join(","),
        "--requests",
        "200",
        "--concurrency",
        "4",
    ]);
    assert_eq!(report["local_server"], false, "{report:#}");
    assert_eq!(report["server"], urls[0].as_str(), "{report:#}");
    assert_eq!(report["errors"], 0, "{report:#}");
    assert_eq!(report["contacts_created"], 200, "{report:#}");
    let by_server = report["by_server"].as_array().expect("by_server");
    assert_eq!(by_server.len(), 2, "{report:#}");
    let mut created = 0;
    for (server, url) in by_server.iter().zip(&urls) {
        assert_eq!(server["url"], url.as_str(), "{report:#}");
        let contacts = server["contacts_created"].as_u64().unwrap_or(0);
        assert!(contacts > 0, "no contact through {url}: {report:#}");
        created += contacts;
    }
    assert_eq!(created, 200, "{report:#}");
    // The checks went through the first URL and saw every contact, whichever name it was sent to.
    assert_eq!(report["invariants"]["passed"], true, "{report:#}");
    assert_eq!(verdict_of(&report, "counts add up"), ["passed", "passed"]);
}

#[test]
fn raw_sqlite_runs_the_same_number_of_contacts_and_gives_the_ratio() {
    let report = bench(&["--requests", "300", "--concurrency", "8", "--raw-sqlite"]);
    assert_clean_run(&report, 300);
    let raw = &report["raw_sqlite"];
    assert_eq!(raw["contacts"], 300, "{report:#}");
    // As many contacts a commit as clients, as the server's group commit takes at best.
    assert_eq!(raw["batch_size"], 8, "{report:#}");
    assert!(
        raw["elapsed_secs"].as_f64().unwrap_or(0.0) > 0.0,
        "{report:#}"
    );
    let raw_rate = raw["contacts_per_sec"].as_f64().unwrap_or(0.0);
    assert!(raw_rate > 0.0, "{report:#}");
    // Each transaction was timed, from BEGIN to its durable COMMIT.
    let commit = &raw["commit_ms"];
    let p50 = commit["p50"].as_f64().unwrap_or(0.0);
    assert!(p50 > 0.0, "{report:#}");
    assert!(commit["max"].as_f64().unwrap_or(0.0) >= p50, "{report:#}");
    let tail = raw["commit_p999_over_p50"].as_f64().expect("a tail ratio");
    assert!(tail >= 1.0, "{report:#}");
    let ratio = report["ratio_to_raw_sqlite"].as_f64().expect("a ratio");
    let rate = report["contacts_per_sec"]
        .as_f64()
        .expect("contacts_per_sec");
    assert!(
        (ratio - rate / raw_rate).abs() <= ratio * 1e-9,
        "{report:#}"
    );
}

#[test]
fn raw_sqlite_needs_the_local_server_and_new_leads() {
    // Refused on the command line, before any server is reached.
    let output = Command::new(env!("CARGO_BIN_EXE_leadrouter-bench"))
        .args([
            "--raw-sqlite",
            "--url",
            "http://127.0.0.1:9",
            "--requests",
            "1",
        ])
        .output()
        .expect("running leadrouter-bench");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--url"), "{stderr}");
    // It measures a new lead's write, so other workloads are refused before a server is started.
    let output = Command::new(env!("CARGO_BIN_EXE_leadrouter-bench"))
        .args(["--raw-sqlite", "--workload", "mixed", "--requests", "1"])
        .output()
        .expect("running leadrouter-bench");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("new-leads"), "{stderr}");
}
