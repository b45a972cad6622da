//! linkledger: collects DataForSEO Backlinks API data for a list of targets on a
//! schedule, normalizes it into PostgreSQL tables and keeps a ledger of every cent spent.
//!
//! See `ARCHITECTURE.md` for the data flow and the invariants.

pub mod api;
pub mod app;
pub mod cli;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod jobs;
pub mod money;
pub mod ops;
pub mod plan;
pub mod sandbox;
pub mod store;
pub mod warehouse;
pub mod words;
