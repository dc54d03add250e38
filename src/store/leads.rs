//! Leads: the people behind the contacts, one per identity. Which lead a contact belongs to is decided by
//! [`resolve_lead`]; this file loads what it needs and writes what it decided.

use chrono::{DateTime, Utc};

use super::contacts::{self, Contact};
use super::executor::{Executor, Filters, params, returning};
use super::{Page, Result, Store};
use crate::domain::{KnownLead, LeadIdentity, LeadResolution, resolve_lead};
use crate::error::AppError;

/// The contacts `GET /leads/{id}` returns at most; the rest are paged through `GET /contacts/?lead_id=`.
pub const LEAD_DETAIL_CONTACTS: i64 = 1000;

macro_rules! lead_columns {
    () => {
        "id, external_id, phone, email, name, created_at"
    };
}

/// A person who writes to the business, possibly through several sources.
#[derive(Debug, Clone)]
pub struct Lead {
    pub id: i64,
    /// The lead's id in the source's own system.
    pub external_id: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    /// Lower case.
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A lead with their latest contacts, newest first.
#[derive(Debug, Clone)]
pub struct LeadDetail {
    pub lead: Lead,
    pub contacts: Vec<Contact>,
}

record!(Lead {
    id,
    external_id,
    phone,
    email,
    name,
    created_at
});

impl KnownLead for Lead {
    fn id(&self) -> i64 {
        self.id
    }
    fn external_id(&self) -> Option<&str> {
        self.external_id.as_deref()
    }
    fn phone(&self) -> Option<&str> {
        self.phone.as_deref()
    }
    fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
    fn has_name(&self) -> bool {
        self.name.is_some()
    }
}

/// The filters of `GET /leads/`, already normalised.
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    pub external_id: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

pub async fn list(db: &mut impl Executor, filter: &LeadFilter, page: Page) -> Result<Vec<Lead>> {
    let mut filters = Filters::default();
    filters.equals("external_id", filter.external_id.as_ref());
    filters.equals("phone", filter.phone.as_ref());
    filters.equals("email", filter.email.as_ref());
    let (tail, params) = filters.finish("id DESC", page);
    let sql = format!(concat!("SELECT ", lead_columns!(), " FROM leads{}"), tail);
    db.all(&sql, &params).await
}

pub async fn find(db: &mut impl Executor, id: i64) -> Result<Option<Lead>> {
    let sql = concat!("SELECT ", lead_columns!(), " FROM leads WHERE id = $1");
    db.optional(sql, params![id]).await
}

/// The lead the contact's identity belongs to, filled in with what it lacked, or a new one.
pub async fn resolve(db: &mut impl Executor, identity: &LeadIdentity) -> Result<Lead> {
    if !identity.has_identifier() {
        return insert(db, identity).await;
    }
    // Every lead holding any of the identifiers: at most three, one per identifier.
    let sql = concat!(
        "SELECT ",
        lead_columns!(),
        " FROM leads WHERE external_id = $1 OR phone = $2 OR email = $3 ORDER BY id"
    );
    let params = params![
        identity.external_id.as_deref(),
        identity.phone.as_ref().map(|p| p.as_str()),
        identity.email.as_ref().map(|e| e.as_str())
    ];
    let holders: Vec<Lead> = db.all(sql, params).await?;
    match resolve_lead(identity, &holders) {
        LeadResolution::New => insert(db, identity).await,
        LeadResolution::Existing(lead) => Ok(lead.clone()),
        LeadResolution::Fill(lead, fill) => {
            // Sets the lead's empty fields; fields it already has stay as they are.
            let sql = concat!(
                "UPDATE leads SET external_id = COALESCE(external_id, $2), ",
                "phone = COALESCE(phone, $3), email = COALESCE(email, $4), name = COALESCE(name, $5) ",
                "WHERE id = $1 RETURNING ",
                lead_columns!()
            );
            let params = params![
                lead.id,
                fill.external_id.as_deref(),
                fill.phone.as_ref().map(|p| p.as_str()),
                fill.email.as_ref().map(|e| e.as_str()),
                fill.name.as_deref()
            ];
            db.one(sql, params).await
        }
    }
}

async fn insert(db: &mut impl Executor, identity: &LeadIdentity) -> Result<Lead> {
    let sql = returning!(
        write: "INSERT INTO leads (external_id, phone, email, name, created_at) VALUES ($1, $2, $3, $4, $5)",
        columns: lead_columns!(),
        read_back: "FROM leads WHERE id = last_insert_rowid()",
    );
    let params = params![
        identity.external_id.as_deref(),
        identity.phone.as_ref().map(|p| p.as_str()),
        identity.email.as_ref().map(|e| e.as_str()),
        identity.name.as_deref(),
        super::now()
    ];
    db.written_one(&sql, params).await
}

impl Store {
    pub async fn list_leads(&self, filter: &LeadFilter, page: Page) -> Result<Vec<Lead>> {
        read!(self, |db| list(db, filter, page).await)
    }

    pub async fn get_lead(&self, id: i64) -> Result<LeadDetail> {
        let now = self.now();
        read!(self, |db| {
            let lead = find(db, id)
                .await?
                .ok_or_else(|| AppError::not_found("Lead"))?;
            let filter = contacts::ContactFilter {
                lead_id: Some(id),
                ..Default::default()
            };
            let page = Page {
                skip: 0,
                limit: LEAD_DETAIL_CONTACTS,
            };
            let contacts = contacts::list(db, &filter, page, now).await?;
            Ok(LeadDetail { lead, contacts })
        })
    }
}
