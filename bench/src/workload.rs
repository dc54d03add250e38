//! What the n-th request of a run is. A pure function of the request number, so the workers only share a
//! counter, and the traffic is the same from one run to the next.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde::Serialize;

use crate::cli::Workload;
use crate::scenario::Scenario;

/// The kinds of request a run sends; each gets its own latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    CreateContact,
    SourceStats,
    OperatorStats,
    RecentContacts,
    Health,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::CreateContact => "POST /contacts/",
            Kind::SourceStats => "GET /stats/sources/{id}",
            Kind::OperatorStats => "GET /operators/{id}/stats",
            Kind::RecentContacts => "GET /contacts/?limit=20",
            Kind::Health => "GET /healthz",
        }
    }
}

pub enum Request {
    CreateContact {
        /// Index into the scenario's sources, for counting the 201s per source.
        source: usize,
        /// For returning leads: which identity of the pool, to check it always maps to one lead.
        pool_identity: Option<u64>,
        body: NewContact,
    },
    Get {
        kind: Kind,
        path: String,
    },
}

impl Request {
    pub fn kind(&self) -> Kind {
        match self {
            Request::CreateContact { .. } => Kind::CreateContact,
            Request::Get { kind, .. } => *kind,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct NewContact {
    source_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lead_external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lead_phone: Option<String>,
    lead_name: String,
    message: &'static str,
}

pub struct Plan {
    workload: Workload,
    tag: String,
    /// Spreads the pool's phone numbers differently in each run.
    phone_offset: u64,
    lead_pool: u64,
    source_ids: Vec<i64>,
    operator_ids: Vec<i64>,
}

impl Plan {
    pub fn new(workload: Workload, lead_pool: u64, scenario: &Scenario) -> Self {
        let mut hasher = DefaultHasher::new();
        scenario.tag.hash(&mut hasher);
        Self {
            workload,
            tag: scenario.tag.clone(),
            phone_offset: hasher.finish() % 1_000_000_000,
            lead_pool,
            source_ids: scenario.source_ids.clone(),
            operator_ids: scenario.operators.iter().map(|o| o.id).collect(),
        }
    }

    /// The preload: new leads, under identities the measured run never uses.
    pub fn preload(scenario: &Scenario) -> Self {
        Self {
            tag: format!("{}-preload", scenario.tag),
            ..Self::new(Workload::NewLeads, 1, scenario)
        }
    }

    pub fn request(&self, number: u64) -> Request {
        match self.workload {
            Workload::NewLeads => self.new_lead(number),
            Workload::ReturningLeads => self.returning_lead(number),
            // Every fifth request is a read, the reads taking turns over the three endpoints.
            Workload::Mixed if number % 5 == 4 => self.read(number / 5),
            // Numbering the contacts apart from the reads keeps the round robin over sources even.
            Workload::Mixed => self.new_lead(number - number / 5),
            // The reads' rotation without its contact list: source stats and operator stats in turn.
            Workload::Stats => self.read(number / 2 * 3 + number % 2),
            Workload::Health => Request::Get {
                kind: Kind::Health,
                path: "/healthz".to_owned(),
            },
        }
    }

    fn new_lead(&self, number: u64) -> Request {
        let source = self.source_for(number);
        Request::CreateContact {
            source,
            pool_identity: None,
            body: NewContact {
                source_id: self.source_ids[source],
                lead_external_id: Some(format!("bench-{}-{number}", self.tag)),
                lead_phone: None,
                lead_name: format!("Lead {number}"),
                message: "Hello from leadrouter-bench",
            },
        }
    }

    /// Identity k of the pool always sends the same identifier: an external_id for even k, a phone for
    /// odd k, so both lookups are exercised.
    fn returning_lead(&self, number: u64) -> Request {
        let identity = number % self.lead_pool;
        let source = self.source_for(number);
        let (external_id, phone) = if identity % 2 == 0 {
            (Some(format!("bench-{}-pool-{identity}", self.tag)), None)
        } else {
            let subscriber = (self.phone_offset + identity) % 1_000_000_000;
            (None, Some(format!("+79{subscriber:09}")))
        };
        Request::CreateContact {
            source,
            pool_identity: Some(identity),
            body: NewContact {
                source_id: self.source_ids[source],
                lead_external_id: external_id,
                lead_phone: phone,
                lead_name: format!("Returning lead {identity}"),
                message: "Hello again from leadrouter-bench",
            },
        }
    }

    fn read(&self, read_number: u64) -> Request {
        let turn = read_number / 3;
        match read_number % 3 {
            0 => Request::Get {
                kind: Kind::SourceStats,
                path: format!("/stats/sources/{}", pick(&self.source_ids, turn)),
            },
            1 => Request::Get {
                kind: Kind::OperatorStats,
                path: format!("/operators/{}/stats", pick(&self.operator_ids, turn)),
            },
            _ => Request::Get {
                kind: Kind::RecentContacts,
                path: "/contacts/?limit=20".to_owned(),
            },
        }
    }

    fn source_for(&self, number: u64) -> usize {
        (number % self.source_ids.len() as u64) as usize
    }
}

fn pick(ids: &[i64], turn: u64) -> i64 {
    ids[(turn % ids.len() as u64) as usize]
}
