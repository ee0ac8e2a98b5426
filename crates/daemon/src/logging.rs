//! Logging: the filter (`TAGWIRE_LOG`), the two formats (`--log-format text|json`, or
//! `TAGWIRE_LOG_FORMAT`).

/// How log lines are written on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors: `timestamp`, `level`, `message` and
    /// the event's fields (`uplink`, `error`, ...) at the top level of the object.
    Json,
}

/// Installs the global subscriber. Logs go to stderr, filtered by `TAGWIRE_LOG`
/// (default `default_filter`).
pub fn init(format: LogFormat, default_filter: &str) {
    use std::io::IsTerminal;
    // An empty TAGWIRE_LOG counts as unset (an empty filter would let everything through).
    let filter = std::env::var("TAGWIRE_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // Flattened so that a collector finds `uplink` next to `message`, not under
        // `fields`; no span list, since the daemon logs events only.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}
