//! What an operator sees and runs around the collector: logs, metrics and health,
//! runs as a person meets them, progress, the ledger reconciled with the account's
//! books, the schema's own documentation (Markdown and
//! a dbt `sources.yml`), and a
//! throwaway PostgreSQL cluster.

pub mod cluster;
pub mod dbt;
pub mod health;
pub mod metrics;
pub mod progress;
pub mod reconcile;
pub mod run_log;
pub mod schema_docs;
pub mod telemetry;
