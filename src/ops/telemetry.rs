//! Logging: `tracing` to stderr, human-readable by default (coloured only on a
//! terminal), JSON with `LINKLEDGER_LOG_FORMAT=json`; the filter comes from
//! `LINKLEDGER_LOG`, else `RUST_LOG`, else `info` for linkledger and `warn` for its
//! dependencies. Amounts in log fields are numbers (`cost_usd = 0.14021`), so JSON
//! lines carry them as JSON numbers.
//!
//! Metrics: [`Metrics`](super::metrics::Metrics) (Prometheus families), exposed with `/healthz` by
//! [`serve`](super::health::serve).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event; coloured only on a terminal.
    Text,
    /// One JSON object per line; numbers (counts, amounts in USD) are JSON numbers.
    Json,
}

impl LogFormat {
    /// `LINKLEDGER_LOG_FORMAT` as given: unset or empty is `text`; anything but `text`
    /// or `json` (in any case) is a configuration error naming the variable.
    pub fn parse(value: Option<&str>) -> Result<LogFormat, String> {
        match value.map(str::trim) {
            None | Some("") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            Some(v) => Err(format!(
                "config: environment variable LINKLEDGER_LOG_FORMAT: '{v}' is not a log format; use text (the default) or json"
            )),
        }
    }
}

/// Installs the subscriber: the filter from `LINKLEDGER_LOG` (an invalid one is a
/// configuration error), else `RUST_LOG` (an invalid one falls back to the default,
/// with a warning), else `info` for linkledger and `warn` for its dependencies; the
/// format from `LINKLEDGER_LOG_FORMAT`. Colour codes only when stderr is a terminal
/// and `NO_COLOR` is not set.
pub fn init() -> Result<(), String> {
    const DEFAULT: &str = "warn,linkledger=info";
    let format = LogFormat::parse(std::env::var("LINKLEDGER_LOG_FORMAT").ok().as_deref())?;
    let mut fallback_note = None;
    let filter = match std::env::var("LINKLEDGER_LOG") {
        Ok(f) => EnvFilter::try_new(&f).map_err(|e| {
            format!("config: environment variable LINKLEDGER_LOG: '{f}' is not a log filter: {e}")
        })?,
        Err(_) => match std::env::var("RUST_LOG") {
            Ok(f) => EnvFilter::try_new(&f).unwrap_or_else(|e| {
                fallback_note = Some(format!(
                    "RUST_LOG '{f}' is not a log filter ({e}); logging at the default ({DEFAULT})"
                ));
                EnvFilter::new(DEFAULT)
            }),
            Err(_) => EnvFilter::new(DEFAULT),
        },
    };
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogLine(Vec::new()))
        .with_ansi(ansi)
        .with_target(false);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let Some(note) = fallback_note {
        tracing::warn!("{note}");
    }
    Ok(())
}

/// The progress bar on the terminal, if one shows: log lines are written above it.
static BAR: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);

/// Writes log lines above `bar` while it shows (`None` once it is gone), so a line
/// and the bar never overwrite each other.
pub fn log_above(bar: Option<indicatif::ProgressBar>) {
    if let Ok(mut slot) = BAR.lock() {
        *slot = bar;
    }
}

/// One log line, written to stderr whole when the event is formatted: with the bar
/// cleared first and drawn again after it, when one shows.
struct LogLine(Vec<u8>);

impl std::io::Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let write = || {
            use std::io::Write;
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        match BAR.lock().ok().and_then(|bar| bar.clone()) {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_are_the_log_formats_and_anything_else_is_refused_naming_the_variable() {
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("")), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("JSON")), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse(Some("text")), Ok(LogFormat::Text));
        let err = LogFormat::parse(Some("xml")).unwrap_err();
        assert!(
            err.contains("LINKLEDGER_LOG_FORMAT") && err.contains("'xml'"),
            "{err}"
        );
    }
}
