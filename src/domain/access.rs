//! Who may do what: API key scopes, and the tokens that stand for keys.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::values::ValueError;

/// What a key may do. `admin` may do everything; `ingest` may post contacts and read back the ones it
/// posted; `read` may read everything; `operator` is bound to one operator and may read it, switch its
/// availability, and read and change the status of the contacts assigned to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    Admin,
    Ingest,
    Read,
    Operator,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Operator => "operator",
        }
    }

    /// What a key of this scope may do, in the words of a refusal.
    pub fn allowance(self) -> &'static str {
        match self {
            Scope::Admin => "everything",
            Scope::Ingest => "POST /contacts/, and GET /contacts/{id} of the contacts it created",
            Scope::Read => {
                "every GET but those of /webhooks and /audit, and POST /sources/{id}/simulate"
            }
            Scope::Operator => {
                "for its own operator only: GET /operators/{id}; PATCH /operators/{id} with availability \
                 and away_until; GET /contacts/ (its contacts); GET /contacts/{id} and \
                 /contacts/{id}/history and /contacts/{id}/decisions; PATCH /contacts/{id} with status, PATCH /contacts/{id}/status, \
                 POST /contacts/{id}/accept and /decline"
            }
        }
    }

    /// Whether a key of this scope may call the route at all. Which records it may see or change there is
    /// settled by the handler: an `ingest` key's own contacts, an `operator` key's own operator and contacts.
    pub fn may_call(self, method: &str, route: &str) -> bool {
        let need = Need::of(method, route);
        match self {
            Scope::Operator => need == Need::Nothing || operator_may_call(method, route),
            scope => need.allows(scope),
        }
    }
}

/// The routes an `operator` key may call; every other is refused it, whatever its method.
fn operator_may_call(method: &str, route: &str) -> bool {
    matches!(
        (method, route),
        ("GET" | "HEAD" | "PATCH", "/operators/{id}")
            | (
                "GET" | "HEAD",
                "/contacts"
                    | "/contacts/{id}"
                    | "/contacts/{id}/history"
                    | "/contacts/{id}/decisions"
            )
            | ("PATCH", "/contacts/{id}" | "/contacts/{id}/status")
            | ("POST", "/contacts/{id}/accept" | "/contacts/{id}/decline")
    )
}

/// The fields of `PATCH /operators/{id}` an `operator` key may send about its own operator.
pub const OWN_OPERATOR_FIELDS: &[&str] = &["availability", "away_until"];

/// The fields of `PATCH /contacts/{id}` an `operator` key may send about its own contacts.
pub const OWN_CONTACT_FIELDS: &[&str] = &["status"];

/// The first of the fields given that is not among those allowed, if any.
pub fn first_field_outside<'a>(
    given: impl IntoIterator<Item = &'a str>,
    allowed: &[&str],
) -> Option<&'a str> {
    given.into_iter().find(|field| !allowed.contains(field))
}

/// The operator a new key is bound to: the `operator` scope needs one, every other scope refuses one.
pub fn key_operator(scope: Scope, operator_id: Option<i64>) -> Result<Option<i64>, ValueError> {
    match (scope, operator_id) {
        (Scope::Operator, Some(id)) => Ok(Some(id)),
        (Scope::Operator, None) => Err(ValueError(
            "the operator scope needs the operator the key acts for".to_owned(),
        )),
        (_, Some(_)) => Err(ValueError(format!(
            "only an operator key is bound to an operator, not a key of scope {scope}"
        ))),
        (_, None) => Ok(None),
    }
}

/// Which contacts a request may see and change: all of them, or only those assigned to one operator (an
/// `operator` key's). The others answer 404, as if they did not exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reach {
    #[default]
    All,
    AssignedTo(i64),
}

impl Reach {
    /// Whether a contact assigned to `operator_id` (`None`: unassigned) is within reach.
    pub fn covers(self, operator_id: Option<i64>) -> bool {
        match self {
            Reach::All => true,
            Reach::AssignedTo(own) => operator_id == Some(own),
        }
    }

    /// The operator the contacts must be assigned to, if the reach is limited.
    pub fn operator_id(self) -> Option<i64> {
        match self {
            Reach::All => None,
            Reach::AssignedTo(own) => Some(own),
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
            "operator" => Ok(Scope::Operator),
            other => Err(ValueError(format!(
                "{other:?} is not a scope (admin, ingest, read, operator)"
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
            // The dashboard signs its visitors in itself, and acts through the API with their session.
            (_, "/" | "/favicon.ico") => Need::Nothing,
            (_, route) if route == "/ui" || route.starts_with("/ui/") => Need::Nothing,
            // Webhooks hold secrets and say where data goes: only admins see them.
            (_, route) if route.starts_with("/webhooks") => Need::Admin,
            // The audit trail says who changed what: only admins read it.
            (_, "/audit") => Need::Admin,
            ("POST", "/contacts") => Need::Ingest,
            // A what-if: it posts a scenario but writes nothing, so reading is all it needs.
            ("POST", "/sources/{id}/simulate") => Need::Read,
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
    format!("lr_{}", hex::encode(bytes))
}

/// What is stored for a token. A plain SHA-256 suffices: the tokens are random, not passwords to guess.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
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
        assert!(Need::of("POST", "/sources/{id}/simulate").allows(Scope::Read));
        assert!(!Need::of("POST", "/sources/{id}/simulate").allows(Scope::Ingest));
        assert!(!Need::of("POST", "/sources/{id}/operators").allows(Scope::Read));
    }

    #[test]
    fn an_operator_key_may_call_only_its_routes() {
        for (method, route) in [
            ("GET", "/operators/{id}"),
            ("HEAD", "/operators/{id}"),
            ("PATCH", "/operators/{id}"),
            ("GET", "/contacts"),
            ("GET", "/contacts/{id}"),
            ("GET", "/contacts/{id}/history"),
            ("GET", "/contacts/{id}/decisions"),
            ("PATCH", "/contacts/{id}"),
            ("PATCH", "/contacts/{id}/status"),
            ("POST", "/contacts/{id}/accept"),
            ("POST", "/contacts/{id}/decline"),
            ("GET", "/healthz"),
            ("GET", "/docs/{*rest}"),
        ] {
            assert!(Scope::Operator.may_call(method, route), "{method} {route}");
        }
        for (method, route) in [
            ("GET", "/operators"),
            ("POST", "/operators"),
            ("DELETE", "/operators/{id}"),
            ("GET", "/operators/{id}/stats"),
            ("GET", "/operators/{id}/time-off"),
            ("POST", "/operators/{id}/time-off"),
            ("POST", "/sources"),
            ("GET", "/sources/{id}/queue"),
            ("POST", "/sources/{id}/simulate"),
            ("POST", "/contacts"),
            ("DELETE", "/contacts/{id}"),
            ("GET", "/contacts/{id}/accept"),
            ("PATCH", "/contacts/{id}/decline"),
            ("GET", "/leads/{id}"),
            ("GET", "/stats/sources/{id}"),
            ("GET", "/webhooks"),
            ("GET", "/audit"),
            ("GET", "/metrics"),
            ("GET", "unmatched"),
        ] {
            assert!(!Scope::Operator.may_call(method, route), "{method} {route}");
        }
        // The other scopes keep their rules; accept and decline are admin changes for them.
        assert!(Scope::Admin.may_call("POST", "/contacts/{id}/accept"));
        assert!(!Scope::Read.may_call("POST", "/contacts/{id}/decline"));
        assert!(!Scope::Ingest.may_call("POST", "/contacts/{id}/accept"));
    }

    #[test]
    fn only_operator_keys_are_bound_to_an_operator() {
        assert_eq!(key_operator(Scope::Operator, Some(7)), Ok(Some(7)));
        assert!(key_operator(Scope::Operator, None).is_err());
        assert!(key_operator(Scope::Admin, Some(7)).is_err());
        assert_eq!(key_operator(Scope::Read, None), Ok(None));
        assert_eq!("operator".parse::<Scope>(), Ok(Scope::Operator));
    }

    #[test]
    fn an_operator_reaches_only_its_own_contacts_and_fields() {
        assert!(Reach::AssignedTo(7).covers(Some(7)));
        assert!(!Reach::AssignedTo(7).covers(Some(8)));
        assert!(!Reach::AssignedTo(7).covers(None));
        assert!(Reach::All.covers(None));
        assert_eq!(
            first_field_outside(["availability", "name", "away_until"], OWN_OPERATOR_FIELDS),
            Some("name")
        );
        assert_eq!(
            first_field_outside(["away_until", "availability"], OWN_OPERATOR_FIELDS),
            None
        );
        assert_eq!(
            first_field_outside(["status", "force"], OWN_CONTACT_FIELDS),
            Some("force")
        );
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
