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
            let stop_requested = shutdown_signal()?;
            let server = Server::start(&cli.config).await?;
            stop_requested.await;
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
