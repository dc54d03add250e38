use std::process::ExitCode;

use clap::Parser;
use leadrouter::Server;
use leadrouter::config::{Cli, Command, Config, KeysCommand};
use leadrouter::domain::{Name, access};
use leadrouter::error::AppError;
use leadrouter::store::{Actor, Store, backup, check};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    leadrouter::telemetry::init_logging(cli.config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let stop_requested = shutdown_signal()?;
            let server = Server::start(&cli.config).await?;
            stop_requested.await;
            tracing::info!("shutting down: finishing the requests under way");
            server.stop().await?;
        }
        Command::Keys { action } => manage_keys(&cli.config, action).await?,
        Command::Migrate => {
            Store::migrate(&cli.config).await?;
            tracing::info!("migrations applied");
        }
        Command::Backup { path } => {
            let copy = backup::backup(&cli.config.database_url, &path)?;
            println!(
                "Backed up {} to {}: {} bytes; operators {}, sources {}, contacts {}.",
                cli.config.database_url,
                copy.path.display(),
                copy.bytes,
                copy.operators,
                copy.sources,
                copy.contacts
            );
        }
        Command::Check => {
            let report = check::check(&cli.config.database_url).await?;
            for finding in &report.findings {
                println!("{finding}");
            }
            if !report.is_consistent() {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when it is first awaited,
/// so that a signal arriving while the server starts is not missed (and does not kill the process outright).
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

async fn manage_keys(config: &Config, action: KeysCommand) -> anyhow::Result<()> {
    let store = Store::open(config).await?;
    let outcome = run_keys_command(&store, action).await;
    store.close().await;
    outcome
}

async fn run_keys_command(store: &Store, action: KeysCommand) -> anyhow::Result<()> {
    match action {
        KeysCommand::Create {
            scope,
            name,
            operator,
        } => {
            let name = Name::parse(&name).map_err(|error| anyhow::anyhow!("--name: {error}"))?;
            let operator = access::key_operator(scope, operator)
                .map_err(|error| anyhow::anyhow!("--operator: {error}"))?;
            let (key, token) = store
                .create_api_key(name, scope, operator, Actor::Cli)
                .await
                .map_err(|error| match error {
                    AppError::NotFound(missing) => anyhow::anyhow!("--operator: {missing}"),
                    other => other.into(),
                })?;
            let bound = key
                .operator_id
                .map(|id| format!(", for operator {id}"))
                .unwrap_or_default();
            println!(
                "Created key {} ({}, scope {}{bound}). Its token, shown this once:",
                key.id, key.name, key.scope
            );
            println!("{token}");
        }
        KeysCommand::List => {
            println!(
                "{:>5}  {:<8} {:<8} {:<33} {:<33} name",
                "id", "scope", "operator", "created", "revoked"
            );
            for key in store.list_api_keys().await? {
                let revoked = key
                    .revoked_at
                    .map(|at| at.to_rfc3339())
                    .unwrap_or_else(|| "-".to_owned());
                let operator = key
                    .operator_id
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| "-".to_owned());
                println!(
                    "{:>5}  {:<8} {:<8} {:<33} {:<33} {}",
                    key.id,
                    key.scope,
                    operator,
                    key.created_at.to_rfc3339(),
                    revoked,
                    key.name
                );
            }
        }
        KeysCommand::Revoke { key } => {
            store.revoke_api_key(key.clone(), Actor::Cli).await?;
            println!("Revoked key {key}.");
        }
    }
    Ok(())
}
