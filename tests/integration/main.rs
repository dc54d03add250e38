//! The integration tests, one module per capability, in one test binary: one link instead of one per file.
//! (`tests/operations.rs` is a binary of its own: it compares values of the process-wide metrics recorder.)

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod assignment;
mod audit;
mod availability;
mod backup;
mod binary;
mod concurrency;
mod contacts;
mod crash;
mod dashboard;
mod distribution;
mod edges;
mod errors;
mod export;
mod failing_writes;
mod fairness;
mod history;
mod housekeeping;
mod idempotency;
mod keys;
mod leads;
mod lifecycle;
mod multi_instance;
mod openapi;
mod operator_keys;
mod operators;
mod queue;
mod simulate;
mod sources;
mod strategies;
mod unavailable;
mod walkthrough;
mod webhooks;
mod work_rules;
