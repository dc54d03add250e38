//! Who may do what: API key scopes, and the tokens that stand for keys.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::values::ValueError;

/// What a key may do. `admin` may do everything; `ingest` may post contacts and read back the ones it
/// posted; `read` may read everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    Admin,
    Ingest,
    Read,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Ingest => "ingest",
            Scope::Read => "read",
        }
    }
}

impl FromStr for Scope {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Self, ValueError> {
        match text {
            "admin" => Ok(Scope::Admin),
            "ingest" => Ok(Scope::Ingest),
            "read" => Ok(Scope::Read),
            other => Err(ValueError(format!(
                "{other:?} is not a scope (admin, ingest, read)"
            ))),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request needs, decided by its method and route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone, key or not: health, readiness, the docs.
    Nothing,
    /// Reading.
    Read,
    /// Reading one contact: `read`, or the `ingest` key that created it.
    ReadContact,
    /// Posting a contact.
    Ingest,
    /// Changing anything else.
    Admin,
}

impl Need {
    /// The need of a request, from its method and its route pattern (`/contacts/{id}`).
    pub fn of(method: &str, route: &str) -> Need {
        match (method, route) {
            (_, "/healthz" | "/readyz" | "/openapi.json" | "/redoc") => Need::Nothing,
            (_, route) if route.starts_with("/docs") => Need::Nothing,
            // Webhooks hold secrets and say where data goes: only admins see them.
            (_, route) if route.starts_with("/webhooks") => Need::Admin,
            // The audit trail says who changed what: only admins read it.
            (_, "/audit") => Need::Admin,
            ("POST", "/contacts") => Need::Ingest,
            ("GET" | "HEAD", "/contacts/{id}") => Need::ReadContact,
            ("GET" | "HEAD", _) => Need::Read,
            _ => Need::Admin,
        }
    }

    /// Whether a key of this scope may do it (`ReadContact` for `ingest` is settled per contact).
    pub fn allows(self, scope: Scope) -> bool {
        matches!(
            (self, scope),
            (Need::Nothing, _)
                | (_, Scope::Admin)
                | (Need::Read | Need::ReadContact, Scope::Read)
                | (Need::Ingest | Need::ReadContact, Scope::Ingest)
        )
    }
}

/// A new API token: `lr_` and 64 hexadecimal digits (256 random bits).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("lr_{}", hex(&bytes))
}

/// What is stored for a token. A plain SHA-256 suffices: the tokens are random, not passwords to guess.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_allow_what_their_names_say() {
        assert!(Need::of("POST", "/operators").allows(Scope::Admin));
        assert!(!Need::of("POST", "/operators").allows(Scope::Ingest));
        assert!(!Need::of("PATCH", "/contacts/{id}/status").allows(Scope::Read));
        assert!(Need::of("POST", "/contacts").allows(Scope::Ingest));
        assert!(!Need::of("POST", "/contacts").allows(Scope::Read));
        assert!(Need::of("GET", "/stats/sources/{id}").allows(Scope::Read));
        assert!(!Need::of("GET", "/stats/sources/{id}").allows(Scope::Ingest));
        assert!(Need::of("GET", "/contacts/{id}").allows(Scope::Ingest));
        assert_eq!(Need::of("GET", "/docs/{*rest}"), Need::Nothing);
        assert!(!Need::of("GET", "/webhooks").allows(Scope::Read));
        assert!(Need::of("GET", "/webhooks/{id}").allows(Scope::Admin));
        assert!(!Need::of("GET", "/audit").allows(Scope::Read));
        assert!(Need::of("GET", "/audit").allows(Scope::Admin));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 67);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
