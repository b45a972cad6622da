//! Integration tests: real PostgreSQL, the sandbox over real HTTP, the real binary.

mod backfill;
mod budgets;
mod citus;
mod cli;
mod client;
mod common;
mod compose;
mod daemon;
mod dashboard;
mod documents;
mod endpoints;
mod errors;
mod harness;
mod jobs_check;
mod logs;
mod money_path;
mod perf;
mod plan;
mod queue;
mod reader;
mod runs;
mod schema;
mod secrets;
mod spend;
mod summary;
mod warehouse_keys;
