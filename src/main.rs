use std::io::IsTerminal;

use clap::Parser;
use leadrouter::Server;
use leadrouter::config::{Cli, Command};
use leadrouter::store::Store;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("leadrouter=info,tower_http=warn")),
        )
        // Colour only for a person at a terminal; log files and collectors get plain text.
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let server = Server::start(&cli.config).await?;
            shutdown_signal().await;
            tracing::info!("shutting down: finishing the requests under way");
            server.stop().await
        }
        Command::Migrate => {
            Store::migrate(&cli.config).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
