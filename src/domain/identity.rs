//! Who a lead is: the identifiers a bot sends, normalised so that the same person written two ways is one lead.

use std::str::FromStr;

use email_address::EmailAddress;
use phonenumber::{Mode, country};

use super::values::{ValueError, optional_short_text};

/// The region assumed for phone numbers written without a country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneRegion(country::Id);

impl FromStr for PhoneRegion {
    type Err = ValueError;

    fn from_str(code: &str) -> Result<Self, ValueError> {
        country::Id::from_str(&code.trim().to_ascii_uppercase())
            .map(Self)
            .map_err(|_| ValueError(format!("{code:?} is not an ISO 3166 region code")))
    }
}

/// A phone number in E.164 form (`+79991234567`), valid by libphonenumber's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str, region: PhoneRegion) -> Result<Self, ValueError> {
        let invalid = || ValueError(format!("{raw:?} is not a valid phone number"));
        // The parser's cost grows with its input; no real number is this long.
        if raw.chars().count() > 64 {
            return Err(invalid());
        }
        let number = phonenumber::parse(Some(region.0), raw).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        Ok(Self(number.format().mode(Mode::E164).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, trimmed and lower-cased, with a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// The longest address SMTP can carry (RFC 5321).
    const MAX_CHARS: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let normalised = raw.trim().to_lowercase();
        let options = email_address::Options {
            minimum_sub_domains: 2,
            allow_domain_literal: false,
            allow_display_text: false,
            ..Default::default()
        };
        if normalised.chars().count() > Self::MAX_CHARS
            || EmailAddress::parse_with_options(&normalised, options).is_err()
        {
            return Err(ValueError(format!("{raw:?} is not a valid email address")));
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a contact says about its lead. Blank fields count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadIdentity {
    pub external_id: Option<String>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub name: Option<String>,
}

/// The identity fields as a client sent them, before normalisation.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawLeadIdentity<'a> {
    pub external_id: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// A rejected identity field: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub error: ValueError,
}

impl LeadIdentity {
    /// Normalises the fields; `field_prefix` names them in errors as the request did (`lead_phone`, `phone`).
    pub fn parse(
        raw: RawLeadIdentity<'_>,
        region: PhoneRegion,
        field_prefix: &'static str,
    ) -> Result<Self, FieldError> {
        let field = |name: &'static str, error: ValueError| FieldError {
            field: match (field_prefix, name) {
                ("", name) => name,
                (_, "external_id") => "lead_external_id",
                (_, "phone") => "lead_phone",
                (_, "email") => "lead_email",
                _ => "lead_name",
            },
            error,
        };
        Ok(Self {
            external_id: optional_short_text(raw.external_id)
                .map_err(|e| field("external_id", e))?,
            phone: non_blank(raw.phone)
                .map(|phone| Phone::parse(phone, region))
                .transpose()
                .map_err(|e| field("phone", e))?,
            email: non_blank(raw.email)
                .map(Email::parse)
                .transpose()
                .map_err(|e| field("email", e))?,
            name: optional_short_text(raw.name).map_err(|e| field("name", e))?,
        })
    }

    pub fn has_identifier(&self) -> bool {
        self.external_id.is_some() || self.phone.is_some() || self.email.is_some()
    }
}

/// A stored lead, as lead resolution sees it.
pub trait KnownLead {
    fn id(&self) -> i64;
    fn external_id(&self) -> Option<&str>;
    fn phone(&self) -> Option<&str>;
    fn email(&self) -> Option<&str>;
    fn has_name(&self) -> bool;
}

/// Which lead a contact belongs to.
#[derive(Debug, PartialEq)]
pub enum LeadResolution<'l, L> {
    /// Nobody holds any of the identifiers: a new lead, with all of them.
    New,
    /// This lead, as it is.
    Existing(&'l L),
    /// This lead, with the fields of `fill` (the ones it lacks and no other lead holds) filled in.
    Fill(&'l L, LeadIdentity),
}

/// Finds the lead by external_id, then phone, then email (the first that matches wins) among `holders`,
/// every stored lead that holds any of the identity's identifiers; says which of the fields it lacks are to
/// be filled in, unless another lead holds them.
pub fn resolve_lead<'l, L: KnownLead>(
    identity: &LeadIdentity,
    holders: &'l [L],
) -> LeadResolution<'l, L> {
    let external_id = identity.external_id.as_deref();
    let phone = identity.phone.as_ref().map(Phone::as_str);
    let email = identity.email.as_ref().map(Email::as_str);
    let held_by = |value: Option<&str>, field: fn(&L) -> Option<&str>| {
        value.and_then(|value| holders.iter().find(|lead| field(lead) == Some(value)))
    };
    let by_external_id = held_by(external_id, L::external_id);
    let by_phone = held_by(phone, L::phone);
    let by_email = held_by(email, L::email);
    let Some(lead) = by_external_id.or(by_phone).or(by_email) else {
        return LeadResolution::New;
    };
    let free = |holder: Option<&L>| holder.is_none_or(|other| other.id() == lead.id());
    let fill = LeadIdentity {
        external_id: identity
            .external_id
            .clone()
            .filter(|_| lead.external_id().is_none() && free(by_external_id)),
        phone: identity
            .phone
            .clone()
            .filter(|_| lead.phone().is_none() && free(by_phone)),
        email: identity
            .email
            .clone()
            .filter(|_| lead.email().is_none() && free(by_email)),
        name: identity.name.clone().filter(|_| !lead.has_name()),
    };
    if fill == LeadIdentity::default() {
        LeadResolution::Existing(lead)
    } else {
        LeadResolution::Fill(lead, fill)
    }
}

fn non_blank(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ru() -> PhoneRegion {
        "RU".parse().unwrap()
    }

    #[test]
    fn russian_spellings_of_one_number_are_one_phone() {
        for raw in [
            "8 999 123-45-67",
            "+7 (999) 123-45-67",
            "+79991234567",
            "89991234567",
        ] {
            assert_eq!(
                Phone::parse(raw, ru()).unwrap().as_str(),
                "+79991234567",
                "{raw}"
            );
        }
    }

    #[test]
    fn foreign_numbers_keep_their_country() {
        assert_eq!(
            Phone::parse("+44 20 7946 0958", ru()).unwrap().as_str(),
            "+442079460958"
        );
        let us: PhoneRegion = "us".parse().unwrap();
        assert_eq!(
            Phone::parse("(201) 555-0123", us).unwrap().as_str(),
            "+12015550123"
        );
    }

    #[test]
    fn garbage_is_not_a_phone() {
        for raw in [
            "",
            "abc",
            "12",
            "+7 999",
            "+0 123 456 789",
            &"9".repeat(100),
        ] {
            assert!(Phone::parse(raw, ru()).is_err(), "{raw:?} accepted");
        }
    }

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Ivan@Example.COM ").unwrap().as_str(),
            "ivan@example.com"
        );
        for raw in [
            "ivan",
            "ivan@",
            "@example.com",
            "ivan@localhost",
            "a b@example.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} accepted");
        }
    }

    #[test]
    fn unknown_regions_are_refused() {
        assert!("XX".parse::<PhoneRegion>().is_err());
        assert!("de".parse::<PhoneRegion>().is_ok());
    }

    #[test]
    fn identity_errors_name_the_request_field() {
        let raw = RawLeadIdentity {
            phone: Some("nope"),
            ..Default::default()
        };
        let error = LeadIdentity::parse(raw, ru(), "lead_").unwrap_err();
        assert_eq!(error.field, "lead_phone");
        let error = LeadIdentity::parse(raw, ru(), "").unwrap_err();
        assert_eq!(error.field, "phone");
    }

    #[test]
    fn blank_identifiers_are_absent() {
        let raw = RawLeadIdentity {
            external_id: Some(" "),
            phone: Some(""),
            email: Some(" "),
            name: None,
        };
        let identity = LeadIdentity::parse(raw, ru(), "lead_").unwrap();
        assert!(!identity.has_identifier());
    }

    #[derive(Debug, PartialEq)]
    struct Stored {
        id: i64,
        external_id: Option<&'static str>,
        phone: Option<&'static str>,
        email: Option<&'static str>,
        name: Option<&'static str>,
    }

    impl KnownLead for Stored {
        fn id(&self) -> i64 {
            self.id
        }
        fn external_id(&self) -> Option<&str> {
            self.external_id
        }
        fn phone(&self) -> Option<&str> {
            self.phone
        }
        fn email(&self) -> Option<&str> {
            self.email
        }
        fn has_name(&self) -> bool {
            self.name.is_some()
        }
    }

    fn stored(id: i64) -> Stored {
        Stored {
            id,
            external_id: None,
            phone: None,
            email: None,
            name: None,
        }
    }

    fn identity(
        external_id: Option<&str>,
        phone: Option<&str>,
        email: Option<&str>,
    ) -> LeadIdentity {
        LeadIdentity::parse(
            RawLeadIdentity {
                external_id,
                phone,
                email,
                name: None,
            },
            ru(),
            "",
        )
        .unwrap()
    }

    #[test]
    fn no_holder_means_a_new_lead() {
        let holders: [Stored; 0] = [];
        assert_eq!(
            resolve_lead(&identity(Some("u1"), None, None), &holders),
            LeadResolution::New
        );
    }

    #[test]
    fn external_id_wins_over_phone_and_email() {
        let by_phone = Stored {
            phone: Some("+79991234567"),
            ..stored(1)
        };
        let by_external_id = Stored {
            external_id: Some("u1"),
            ..stored(2)
        };
        let holders = [by_phone, by_external_id];
        let found = resolve_lead(&identity(Some("u1"), Some("+79991234567"), None), &holders);
        // Lead 2 is the one; the phone stays with lead 1, so nothing is filled in.
        assert_eq!(found, LeadResolution::Existing(&holders[1]));
    }

    #[test]
    fn missing_fields_are_filled_unless_another_lead_holds_them() {
        let holders = [
            Stored {
                email: Some("ivan@example.com"),
                ..stored(1)
            },
            Stored {
                phone: Some("+79991234567"),
                ..stored(2)
            },
        ];
        let wanted = identity(Some("u9"), Some("+79991234567"), Some("ivan@example.com"));
        // The phone's holder (lead 2) wins over the email's; it gains the external id, not the email.
        let LeadResolution::Fill(lead, fill) = resolve_lead(&wanted, &holders) else {
            panic!("expected a fill");
        };
        assert_eq!(lead.id, 2);
        assert_eq!(fill.external_id.as_deref(), Some("u9"));
        assert_eq!(fill.phone, None);
        assert_eq!(fill.email, None);
    }
}
