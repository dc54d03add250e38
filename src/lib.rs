//! leadrouter: a lead-distribution service. A bot posts a contact; leadrouter identifies the lead, picks an
//! operator by weight among those with free capacity, and stores the contact, all in one transaction.

pub mod api;
pub mod availability;
pub mod config;
pub mod domain;
pub mod error;
pub mod store;
pub mod sweeper;
pub mod telemetry;
pub mod ui;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use api::build_app;
use api::limits::RateLimits;
pub use config::Config;
use domain::{Clock, PhoneRegion};
use store::Store;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The region assumed for phone numbers written without a country code.
    pub phone_region: PhoneRegion,
    /// How long a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Requests a second each client may send.
    pub rate_limits: Arc<RateLimits>,
    /// What the dashboard's open pages are told changed.
    pub changes: ui::events::Changes,
}

/// A server that is accepting requests.
pub struct Server {
    local_addr: SocketAddr,
    store: Store,
    shutdown: oneshot::Sender<()>,
    serving: JoinHandle<std::io::Result<()>>,
    grace: Duration,
    /// The queue sweep, the availability timer and the webhook sender.
    background: Vec<JoinHandle<()>>,
    stop_background: CancellationToken,
}

impl Server {
    /// Opens the database (migrating it), binds the configured address and starts serving.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        Self::start_with_clock(config, Clock::System).await
    }

    /// [`Server::start`], with every decision by time (availability, shifts, time off, the availability
    /// timer) taken from `clock`: tests pass a [`Clock::manual`] and move it.
    pub async fn start_with_clock(config: &Config, clock: Clock) -> anyhow::Result<Self> {
        let phone_region: PhoneRegion = config
            .default_region
            .parse()
            .context("LEADROUTER_DEFAULT_REGION")?;
        let rate_limits = Arc::new(RateLimits::from_config(config)?);
        let store = Store::open_with_clock(config, clock)
            .await
            .with_context(|| {
                format!("opening the database at {}", redacted(&config.database_url))
            })?;
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let local_addr = listener.local_addr()?;
        let changes = ui::events::Changes::default();
        let app = build_app(AppState {
            store: store.clone(),
            phone_region,
            request_timeout: Duration::from_secs(config.request_timeout_secs),
            rate_limits,
            changes: changes.clone(),
        });
        crate::telemetry::prometheus();
        let (shutdown, stop_requested) = oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stop_requested.await;
            })
            .await
        });
        let first_look = availability::first_look(&store).await?;
        let stop_background = CancellationToken::new();
        let sweep_interval =
            (config.queue_sweep_secs > 0).then(|| Duration::from_secs(config.queue_sweep_secs));
        let background = vec![
            tokio::spawn(sweeper::run(
                store.clone(),
                sweep_interval,
                stop_background.clone(),
            )),
            tokio::spawn(availability::run(
                store.clone(),
                first_look,
                stop_background.clone(),
            )),
            tokio::spawn(ui::events::watch(
                store.clone(),
                changes,
                stop_background.clone(),
            )),
            tokio::spawn(webhooks::run(
                store.clone(),
                webhooks::SenderSettings::from_config(config),
                stop_background.clone(),
            )),
        ];
        if !store.api_keys_exist().await? {
            tracing::warn!(
                "no API key exists: the API is open to anyone who can reach it (`leadrouter keys create`)"
            );
        }
        tracing::info!(address = %local_addr, backend = store.backend_name(), "leadrouter is serving");
        Ok(Self {
            local_addr,
            store,
            shutdown,
            serving,
            grace: Duration::from_secs(config.shutdown_grace_secs),
            background,
            stop_background,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections, lets the requests under way finish (for at most the grace period; then
    /// their connections are closed), stops the background work, waits for the writes already handed to the
    /// database, and closes it.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        let mut serving = self.serving;
        let served = match tokio::time::timeout(self.grace, &mut serving).await {
            Ok(served) => served?,
            Err(_) => {
                tracing::warn!(grace = ?self.grace, "connections still open after the grace period; closing them");
                serving.abort();
                Ok(())
            }
        };
        // Webhook sends cut short here are sent again once their lease runs out: at least once.
        self.stop_background.cancel();
        for task in self.background {
            let _ = task.await;
        }
        self.store.close().await;
        served?;
        tracing::info!("leadrouter stopped");
        Ok(())
    }
}

/// The URL without its password, for logs and errors.
fn redacted(database_url: &str) -> String {
    match url_password_span(database_url) {
        Some((start, end)) => format!("{}***{}", &database_url[..start], &database_url[end..]),
        None => database_url.to_owned(),
    }
}

/// Where the password of `scheme://user:password@host` is, if there is one.
fn url_password_span(url: &str) -> Option<(usize, usize)> {
    let authority_start = url.find("://")? + 3;
    let at = authority_start + url[authority_start..].find('@')?;
    let colon = authority_start + url[authority_start..at].find(':')?;
    Some((colon + 1, at))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redacted("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redacted("sqlite://crm.db"), "sqlite://crm.db");
    }
}
