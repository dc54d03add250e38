//! The webhook sender: takes the deliveries that are due from the outbox, posts each event, signed, to its
//! webhook's URL, and records how it went — delivered, due again after an exponential backoff, or failed for
//! good. Every instance runs one; a lease on each delivery keeps two from sending it at once, and should an
//! instance die mid-send, the lease runs out and another sends it again (at least once).

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store;
use crate::store::Attempt;
use crate::store::deliveries::event_body;
use crate::store::{DeliveryJob, Store};

/// Most deliveries being sent at once by one instance.
const IN_FLIGHT: usize = 32;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How much of an error message is kept.
const MAX_ERROR_CHARS: usize = 500;

/// The header that carries the signature: `sha256=` and the lowercase hex HMAC-SHA256 of the body, keyed with
/// the webhook's secret.
pub const SIGNATURE_HEADER: &str = "x-leadrouter-signature";

/// How the sender retries and waits.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    pub retry_base: Duration,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub poll: Duration,
}

impl SenderSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            retry_base: Duration::from_millis(config.webhook_retry_base_ms),
            max_attempts: config.webhook_max_attempts.max(1),
            timeout: Duration::from_secs(config.webhook_timeout_secs.max(1)),
            poll: Duration::from_millis(config.webhook_poll_ms.max(10)),
        }
    }

    /// The wait after the `attempt`th failure: the base, doubled for each failure before, up to an hour.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.retry_base.saturating_mul(factor).min(MAX_BACKOFF)
    }
}

/// `sha256=<hex>` of the body under the secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` fails for none.
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 accepts keys of every length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("sha256={}", hex::encode(digest))
}

/// Sends deliveries until cancelled: whatever is due, then again when this instance writes events, or every
/// poll interval (for retries, and for events other instances wrote).
pub async fn run(store: Store, settings: SenderSettings, cancel: CancellationToken) {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .user_agent(concat!("leadrouter/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook HTTP client; webhooks will not be sent");
            return;
        }
    };
    // Long enough for the slowest attempt, so that only a dead instance's deliveries are taken over.
    let lease = TimeDelta::from_std(settings.timeout + Duration::from_secs(30))
        .unwrap_or(TimeDelta::minutes(1));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = send_due(&store, &client, &settings, lease) => {}
        }
        if let Ok(exist) = store.webhooks_exist().await {
            store
                .signals()
                .webhooks_exist
                .store(exist, std::sync::atomic::Ordering::Relaxed);
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = store.signals().outbox.notified() => {}
            () = tokio::time::sleep(settings.poll) => {}
        }
    }
}

/// Sends every delivery due, up to [`IN_FLIGHT`] at once, taking more as soon as there is room: a receiver that
/// takes long to answer holds up its own deliveries only.
async fn send_due(
    store: &Store,
    client: &reqwest::Client,
    settings: &SenderSettings,
    lease: TimeDelta,
) {
    let mut sending = JoinSet::new();
    loop {
        let room = IN_FLIGHT - sending.len();
        if room > 0 {
            match store.claim_deliveries(lease, room as i64).await {
                Ok(jobs) => {
                    for job in jobs {
                        let (store, client, settings) =
                            (store.clone(), client.clone(), settings.clone());
                        sending.spawn(async move { send(&store, &client, &settings, job).await });
                    }
                }
                Err(error) => tracing::warn!(%error, "could not take deliveries from the outbox"),
            }
        }
        if sending.is_empty() {
            return;
        }
        // A send finishing makes room; new events, or the poll interval, may bring deliveries due.
        tokio::select! {
            _ = sending.join_next() => {}
            () = store.signals().outbox.notified() => {}
            () = tokio::time::sleep(settings.poll) => {}
        }
    }
}

async fn send(
    store: &Store,
    client: &reqwest::Client,
    settings: &SenderSettings,
    job: DeliveryJob,
) {
    let body = event_body(
        job.event_id,
        &job.event_type,
        job.event_created_at,
        &job.data,
    );
    let body = body.to_string().into_bytes();
    let signature = signature(&job.secret, &body);
    let at = store::now();
    let started = Instant::now();
    let response = client
        .post(job.url.as_str())
        .header("content-type", "application/json")
        .header("x-leadrouter-event", &job.event_type)
        .header("x-leadrouter-event-id", job.event_id)
        .header("x-leadrouter-delivery", job.id)
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status_code, error, delivered) = match response {
        Ok(response) => {
            let status = response.status();
            let error = (!status.is_success()).then(|| format!("the receiver answered {status}"));
            (Some(i64::from(status.as_u16())), error, status.is_success())
        }
        Err(error) => (None, Some(describe(&error)), false),
    };
    let number = job.attempt_count + 1;
    let attempts_left = u32::try_from(number).is_ok_and(|n| n < settings.max_attempts);
    let retry_at = (!delivered && attempts_left).then(|| {
        let wait = settings.backoff(u32::try_from(number).unwrap_or(u32::MAX));
        store::now() + TimeDelta::from_std(wait).unwrap_or(TimeDelta::hours(1))
    });
    let outcome = match (delivered, retry_at.is_some()) {
        (true, _) => "delivered",
        (false, true) => "retrying",
        (false, false) => "failed",
    };
    crate::telemetry::webhook_attempt(outcome);
    tracing::debug!(delivery_id = job.id, event_id = job.event_id, url = %job.url, status_code, error, outcome, "webhook delivery attempt");
    if outcome == "failed" {
        tracing::warn!(delivery_id = job.id, url = %job.url, attempts = number, "webhook delivery failed for good");
    }
    let attempt = Attempt {
        delivery_id: job.id,
        number,
        at,
        status_code,
        error,
        duration_ms,
        delivered,
        retry_at,
    };
    if let Err(error) = store.record_attempt(attempt).await {
        // The lease runs out and the delivery is sent again: at least once.
        tracing::warn!(%error, delivery_id = job.id, "could not record a webhook delivery attempt");
    }
}

/// The error and its causes, as one line.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(MAX_ERROR_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let settings = SenderSettings {
            retry_base: Duration::from_secs(1),
            max_attempts: 20,
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
        };
        assert_eq!(settings.backoff(1), Duration::from_secs(1));
        assert_eq!(settings.backoff(2), Duration::from_secs(2));
        assert_eq!(settings.backoff(5), Duration::from_secs(16));
        assert_eq!(settings.backoff(13), MAX_BACKOFF);
        assert_eq!(settings.backoff(200), MAX_BACKOFF);
    }
}
