//! Logging: `tracing` to stderr, human-readable by default, JSON with
//! `LINKLEDGER_LOG_FORMAT=json`; the filter comes from `LINKLEDGER_LOG`, else `RUST_LOG`,
//! else `info` for linkledger and `warn` for its dependencies.
//!
//! Metrics: [`metrics::Metrics`] (Prometheus families), exposed with `/healthz` by
//! [`server::serve`].

pub mod metrics;
pub mod server;

pub use metrics::Metrics;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = std::env::var("LINKLEDGER_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "warn,linkledger=info".to_string());
    let filter =
        EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("warn,linkledger=info"));
    let json = std::env::var("LINKLEDGER_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
