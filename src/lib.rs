//! linkledger: collects DataForSEO Backlinks API data for a list of targets on a
//! schedule, normalizes it into PostgreSQL tables and keeps a ledger of every cent spent.
//!
//! See `ARCHITECTURE.md` for the data flow and the invariants.

pub mod api;
pub mod app;
pub mod backfill;
pub mod bill;
pub mod budget;
pub mod citus;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod coverage;
pub mod daemon;
pub mod executor;
pub mod jobs;
pub mod limits;
pub mod money;
pub mod normalize;
pub mod once;
pub mod plan;
pub mod progress;
pub mod queue;
pub mod replay;
pub mod runs;
pub mod sandbox;
pub mod schedule;
pub mod schema_docs;
pub mod store;
pub mod telemetry;
pub mod words;

/// The closest of `candidates` to a misspelled `given`, if one is close enough to be
/// what the user meant.
pub fn suggest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(given, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
