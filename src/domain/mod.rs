//! Pure logic, no I/O: the values a request is parsed into, lead identity, and the weighted choice.

pub mod access;
pub mod distribution;
pub mod identity;
pub mod values;

pub use access::{Need, Scope};
pub use distribution::{Candidate, choose_operator};
pub use identity::{Email, LeadIdentity, Phone, PhoneRegion};
pub use values::*;
