//! Integration tests: real PostgreSQL, the sandbox over real HTTP, the real binary.

mod common;
mod summary;
mod client;
mod jobs_check;
mod secrets;
mod endpoints;
