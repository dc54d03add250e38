//! The values of webhooks: where events are posted, and how far a delivery has got.

use super::values::ValueError;

/// The longest webhook URL accepted, in characters.
pub const MAX_URL_CHARS: usize = 2048;

/// Where a webhook's events are posted: an absolute `http://` or `https://` URL with a host and without
/// credentials, at most [`MAX_URL_CHARS`] characters, kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let invalid = |message: &str| Err(ValueError(message.to_owned()));
        if raw.chars().count() > MAX_URL_CHARS {
            return invalid("at most 2048 characters");
        }
        // The URL standard's parser would quietly drop or escape them; a URL is taken as written or not at all.
        if raw.chars().any(char::is_control) {
            return invalid("must not contain control characters");
        }
        let Ok(url) = reqwest::Url::parse(raw) else {
            return invalid("must be an absolute http:// or https:// URL");
        };
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return invalid("must be an absolute http:// or https:// URL");
        }
        // Credentials in a URL would be listed by GET /webhooks and written to the logs.
        if !url.username().is_empty() || url.password().is_some() {
            return invalid(
                "must not hold credentials (user:password@); the signature authenticates the deliveries",
            );
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a delivery stands: `pending` (to be sent, or retried), `delivered` (a 2xx answer), or `failed`
/// (every attempt failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        match raw {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            _ => Err(ValueError(
                "must be pending, delivered or failed".to_owned(),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_absolute_http_without_credentials() {
        let url = "https://crm.example.com/leadrouter?x=1";
        assert_eq!(WebhookUrl::parse(url).unwrap().as_str(), url);
        for bad in [
            "ftp://example.com",
            "/relative",
            "https://user:pw@example.com",
            "https://example.com/\n",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad} accepted");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(WebhookUrl::parse(&long).is_err());
    }

    #[test]
    fn delivery_states_round_trip() {
        for state in [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ] {
            assert_eq!(DeliveryState::parse(state.as_str()), Ok(state));
        }
        assert!(DeliveryState::parse("sent").is_err());
    }
}
