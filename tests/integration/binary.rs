//! The `leadrouter` binary as an operator runs it: defaults that just work, `--help`, `migrate`, and a SIGTERM
//! that stops it gracefully without losing what it acknowledged.

use crate::common;

use std::path::Path;
use std::process::{Child, Command};

use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_leadrouter");

/// Starts the binary in `dir` with the given environment (everything else default, port chosen by the OS)
/// and returns it with the address it reported.
fn start(dir: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let mut command = Command::new(BINARY);
    command.current_dir(dir).env_remove("DATABASE_URL");
    for (key, value) in env {
        command.env(key, value);
    }
    common::spawn_logging_address(&mut command)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    common::send_signal(child, "TERM");
    child.wait().unwrap()
}

#[tokio::test]
async fn with_no_configuration_it_serves_on_crm_db_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();
    let source: Value = post("/sources/", json!({ "name": "bot" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let contact: Value = post("/contacts/", json!({ "source_id": source["id"] }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let exit = terminate(&mut child);
    assert!(exit.success(), "graceful exit, got {exit:?}");
    assert!(
        dir.path().join("crm.db").exists(),
        "the default database is crm.db in the working directory"
    );

    let (mut child, base) = start(dir.path(), &[]);
    let again: Value = reqwest::get(format!("{base}/contacts/{}", contact["id"]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["id"], contact["id"],
        "the acknowledged contact survived the restart"
    );
    assert!(terminate(&mut child).success());
}

#[test]
fn help_documents_every_setting_and_its_environment_variable() {
    let output = Command::new(BINARY).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for variable in [
        "LEADROUTER_BIND",
        "DATABASE_URL",
        "LEADROUTER_DEFAULT_REGION",
        "LEADROUTER_DB_MAX_CONNECTIONS",
        "LEADROUTER_DB_ACQUIRE_TIMEOUT_SECS",
        "LEADROUTER_DB_STATEMENT_TIMEOUT_SECS",
        "LEADROUTER_WRITE_BATCH_MAX",
        "LEADROUTER_SHUTDOWN_GRACE_SECS",
        "RUST_LOG",
        "migrate",
    ] {
        assert!(
            help.contains(variable),
            "--help does not mention {variable}:\n{help}"
        );
    }
}

#[test]
fn migrate_creates_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("migrated.db").display());
    let status = Command::new(BINARY)
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(dir.path().join("migrated.db").exists());
}

#[test]
fn a_bad_configuration_fails_at_start_with_a_message() {
    for (key, value) in [
        ("DATABASE_URL", "mysql://nope"),
        ("LEADROUTER_DEFAULT_REGION", "XX"),
    ] {
        let output = Command::new(BINARY)
            .env("LEADROUTER_BIND", "127.0.0.1:0")
            .env("DATABASE_URL", "sqlite://unused.db")
            .env(key, value)
            .current_dir(tempfile::tempdir().unwrap().path())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{key}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("Error"), "{key}={value}: {stderr}");
    }
}
