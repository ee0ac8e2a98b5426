//! The TOML configuration: reading it, checking every key, and turning it into the
//! pipeline's types.
//!
//! The file is read into a generic TOML table first and each section is then taken apart
//! by hand, so that *every* problem is reported at once, each on its own line and named
//! by its full key path (`north[0].format: ...`), which is what `tagwire check` prints.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tagwire_encode::Style;
use tagwire_pipeline::simulator::SimGroup;
use tagwire_pipeline::{DiskCacheConfig, FullPolicy, QueueLimits, SyncPolicy, UplinkConfig};
use tagwire_tls_config::{ClientConfigSource, PasswordSource, TlsParams};
use tagwire_ws_client::{ConnectOptions, FrameKind, Scheme, WsUrl};
use toml::{Table, Value};

mod cache_dir;
mod section;
use section::Section;

/// A usable configuration.
#[derive(Debug)]
pub struct Config {
    /// `[api]`.
    pub api: ApiConfig,
    /// `[[south]]`, in file order.
    pub south: Vec<SouthConfig>,
    /// `[[north]]`, in file order, ready to run.
    pub north: Vec<UplinkConfig>,
    /// `[log]`.
    pub log: LogConfig,
}

/// `[log]`: what the daemon logs while it runs.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// How often each uplink logs a status line with its counts since the last one;
    /// `None` (`status_interval = 0`) turns the status lines off.
    pub status_interval: Option<Duration>,
}

/// The default of `[log] status_interval`, in seconds.
pub const DEFAULT_STATUS_INTERVAL_S: u64 = 60;

/// `[api]`: the management and ingest API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where to listen; `None` when `listen = "off"` turned the API off.
    pub listen: Option<SocketAddr>,
    /// Bearer token every request must carry, when set.
    pub token: Option<String>,
    /// Timeouts, connection cap and body memory.
    pub limits: crate::api::ApiLimits,
}

/// One `[[south]]` source.
#[derive(Debug, Clone)]
pub struct SouthConfig {
    /// The south node's name, as it appears in every message (`"node"`).
    pub name: String,
    /// What it is.
    pub kind: SouthKind,
}

/// Kinds of south node.
#[derive(Debug, Clone)]
pub enum SouthKind {
    /// The built-in simulator with these groups.
    Simulator(Vec<SimGroup>),
}

/// Every problem found in a configuration, one per line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and checks the file at `path`, loading every certificate and key it names.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let problem = |what: String| ConfigErrors(vec![format!("{}: {what}", path.display())]);
    let file = std::fs::File::open(path)
        .map_err(|e| problem(format!("cannot read the configuration file: {e}")))?;
    // Read at most one byte past the limit: `/dev/zero` or a log passed by mistake
    // must not fill the memory.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_CONFIG_BYTES + 1),
        &mut bytes,
    )
    .map_err(|e| problem(format!("cannot read the configuration file: {e}")))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(problem(format!(
            "larger than {} MiB: this is not a tagwire configuration (check the --config path)",
            MAX_CONFIG_BYTES >> 20
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        problem(format!(
            "not UTF-8 text (byte {}): save the file as UTF-8",
            e.utf8_error().valid_up_to()
        ))
    })?;
    parse(&text)
}

/// The largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Checks configuration text (see [`load`]).
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let root: Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigErrors(vec![format!(
            "the file is not valid TOML: {}",
            e.to_string().trim_end()
        )])
    })?;
    let mut problems = Vec::new();
    let mut top = Section::new(String::new(), &root, &mut problems);
    let api_table = top.table("api");
    let south_tables = top.array_of_tables("south");
    let north_tables = top.array_of_tables("north");
    let log_table = top.table("log");
    top.finish();

    let api = {
        let empty = Table::new();
        let mut s = Section::new("api".into(), api_table.unwrap_or(&empty), &mut problems);
        // "off" turns the API off, so that a second instance needs no port of its own.
        let listen = match s.get("listen") {
            Some(Value::String(v)) if v == "off" => None,
            _ => Some(
                s.parsed::<SocketAddr>(
                    "listen",
                    "an address such as \"127.0.0.1:7080\", or \"off\" to turn the API off",
                )
                .unwrap_or_else(|| "127.0.0.1:7080".parse().expect("valid default")),
            ),
        };
        let token = s.string("token");
        if token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            s.problem(
                "token",
                "is empty, so every request would be refused: set a token or remove the key to serve without one",
            );
        }
        let limits = api_limits(&mut s);
        s.finish();
        ApiConfig {
            listen,
            token,
            limits,
        }
    };

    let log = {
        let empty = Table::new();
        let mut s = Section::new("log".into(), log_table.unwrap_or(&empty), &mut problems);
        let secs = s
            .u64_in("status_interval", 0, 86_400)
            .unwrap_or(DEFAULT_STATUS_INTERVAL_S);
        s.finish();
        LogConfig {
            status_interval: (secs > 0).then(|| Duration::from_secs(secs)),
        }
    };

    let mut south = Vec::new();
    for (i, t) in south_tables.iter().enumerate() {
        if let Some(s) = parse_south(&format!("south[{i}]"), t, &mut problems) {
            south.push(s);
        }
    }
    check_unique(
        "south",
        south.iter().map(|s| s.name.as_str()),
        &mut problems,
    );

    let mut north = Vec::new();
    for (i, t) in north_tables.iter().enumerate() {
        if let Some(n) = parse_north(&format!("north[{i}]"), t, &mut problems) {
            north.push(n);
        }
    }
    check_unique(
        "north",
        north.iter().map(|n| n.name.as_str()),
        &mut problems,
    );
    check_cache_dirs(&north, &mut problems);

    if problems.is_empty() {
        Ok(Config {
            api,
            south,
            north,
            log,
        })
    } else {
        Err(ConfigErrors(problems))
    }
}

/// The `[api]` limits, each defaulting to [`crate::api::ApiLimits::default`].
fn api_limits(s: &mut Section) -> crate::api::ApiLimits {
    let d = crate::api::ApiLimits::default();
    let mib = 1024 * 1024;
    let limits = crate::api::ApiLimits {
        header_timeout: s.millis("header_timeout_ms").unwrap_or(d.header_timeout),
        body_timeout: s.millis("body_timeout_ms").unwrap_or(d.body_timeout),
        idle_timeout: s.millis("idle_timeout_ms").unwrap_or(d.idle_timeout),
        max_connections: s
            .u64_in("max_connections", 1, 65_536)
            .map_or(d.max_connections, |n| n as usize),
        max_body_bytes: s
            .u64_in("max_body_bytes", 1024, 1024 * mib)
            .map_or(d.max_body_bytes, |n| n as usize),
        max_body_memory_bytes: s
            .u64_in("max_body_memory_bytes", 1024, 4096 * mib)
            .map_or(d.max_body_memory_bytes, |n| n as usize),
        max_parse_memory_bytes: s
            .u64_in("max_parse_memory_bytes", 1024 * 1024, 4096 * mib)
            .map_or(d.max_parse_memory_bytes, |n| n as usize),
    };
    if limits.max_body_memory_bytes < limits.max_body_bytes {
        s.problem(
            "max_body_memory_bytes",
            &format!(
                "{} is below max_body_bytes ({}), so the largest body could never be read: raise it or lower max_body_bytes",
                limits.max_body_memory_bytes, limits.max_body_bytes
            ),
        );
    }
    limits
}

fn check_unique<'a>(
    section: &str,
    names: impl Iterator<Item = &'a str>,
    problems: &mut Vec<String>,
) {
    let mut seen = BTreeSet::new();
    for (i, name) in names.enumerate() {
        if !seen.insert(name) {
            problems.push(format!(
                "{section}[{i}].name: {name:?} is used by an earlier [[{section}]]: names must be unique"
            ));
        }
    }
}

fn parse_south(path: &str, table: &Table, problems: &mut Vec<String>) -> Option<SouthConfig> {
    let mut s = Section::new(path.to_string(), table, problems);
    let name = s.required_string("name");
    let kind = s.required_string("kind");
    let groups_tables = s.array_of_tables("groups");
    s.finish();
    let kind = match kind.as_deref() {
        Some("simulator") => {
            let mut groups = Vec::new();
            for (i, g) in groups_tables.iter().enumerate() {
                let mut gs = Section::new(format!("{path}.groups[{i}]"), g, problems);
                let name = gs.required_string("name");
                let interval_ms = gs.u64_in("interval_ms", 1, 86_400_000).unwrap_or(1000);
                let tags = gs
                    .u64_in("tags", 0, 100_000)
                    .unwrap_or(DEFAULT_SIM_TAGS as u64);
                gs.finish();
                if let Some(name) = name {
                    groups.push(SimGroup {
                        name,
                        interval: Duration::from_millis(interval_ms),
                        tags: tags as usize,
                    });
                }
            }
            if groups.is_empty() && groups_tables.is_empty() {
                groups.push(SimGroup::default_group());
            }
            SouthKind::Simulator(groups)
        }
        Some(other) => {
            problems.push(format!(
                "{path}.kind: unknown kind {other:?}: the only kind is \"simulator\" (other data comes in through POST /api/v1/ingest)"
            ));
            return None;
        }
        None => return None,
    };
    Some(SouthConfig { name: name?, kind })
}

/// Generated tags in a configured simulator group that does not say how many.
const DEFAULT_SIM_TAGS: usize = 10;

fn parse_north(path: &str, table: &Table, problems: &mut Vec<String>) -> Option<UplinkConfig> {
    let mut s = Section::new(path.to_string(), table, problems);
    let name = s.required_string("name");
    // A URL's user:password@ becomes Basic authentication (see `reach`).
    let (url, userinfo) = s
        .required_string("url")
        .and_then(|u| match WsUrl::parse_with_userinfo(&u) {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                s.problem("url", &e.to_string());
                None
            }
        })
        .unzip();
    let format = s.format("format");
    let style = s.parsed::<Style>("style", "\"neuron\" or \"compact\"");
    let upload_err = s.bool("upload_err");
    let frame = s.string("frame").and_then(|f| match f.as_str() {
        "binary" => Some(FrameKind::Binary),
        "text" => Some(FrameKind::Text),
        other => {
            s.problem(
                "frame",
                &format!("unknown frame type {other:?}: use \"binary\" (Neuron's) or \"text\""),
            );
            None
        }
    });
    let mut tls = TlsParams::default();
    tls.ca = s.string("ca");
    tls.cert = s.string("cert");
    tls.key = s.string("key");
    tls.keypass = s.string("keypass").map(|p| PasswordSource::from_config(&p));
    // Not a TLS parameter of tls-config: the connection's, which gives it to rustls for
    // both SNI and the certificate check (one place, `ConnectOptions::server_name`).
    let server_name = s.string("server_name").filter(|n| !n.trim().is_empty());
    // 0 (the default) is off: a renewed certificate waits for the next reconnect.
    let tls_watch = s
        .u64_in("tls_watch_s", 0, 86_400)
        .filter(|&secs| secs > 0)
        .map(Duration::from_secs);
    let confirm = s.bool("confirm");
    let connect_timeout = s.millis("connect_timeout_ms");
    let write_timeout = s.millis("write_timeout_ms");
    let ping_interval = s.millis("ping_interval_ms");
    let pong_timeout = s.millis("pong_timeout_ms");
    let backoff_min = s.millis("backoff_min_ms");
    let backoff_max = s.millis("backoff_max_ms");
    let drain_timeout = s.millis("drain_timeout_ms");
    let subscriptions = s.subscriptions("subscriptions");
    let driver_states = driver_states(&mut s);
    let cache = s.table("cache");
    let reach_keys = crate::reach::ReachKeys {
        headers: s.get("headers"),
        auth: s.get("auth"),
        subprotocols: s.get("subprotocols"),
        proxy: s.get("proxy"),
        compression: s.get("compression"),
    };
    s.finish();

    let queue = cache.map_or_else(QueueLimits::default, |c| {
        parse_cache(
            &format!("{path}.cache"),
            c,
            name.as_deref().unwrap_or("north"),
            problems,
        )
    });

    let url = url?;
    let name = name?;
    let mut config = UplinkConfig::new(name, url.clone());
    let is_tls = url.scheme() == Scheme::Wss;
    let tls_given = [&tls.ca, &tls.cert, &tls.key, &server_name]
        .iter()
        .any(|p| p.is_some())
        || tls.keypass.is_some();
    if is_tls {
        if let Some(name) = &server_name {
            if let Err(reason) = tagwire_ws_client::check_server_name(name) {
                problems.push(format!("{path}.server_name: {reason}"));
            }
        }
        match ClientConfigSource::new(&config.name, tls) {
            Ok(source) => {
                config.connect.tls = Some(source.current());
                config.tls_source = Some(std::sync::Arc::new(source));
                config.tls_watch = tls_watch;
            }
            Err(e) => problems.push(format!("{path}.{}", e)),
        }
        config.connect.server_name = server_name;
    } else if tls_given || tls_watch.is_some() {
        problems.push(format!(
            "{path}.url: TLS parameters (ca/cert/key/keypass/server_name/tls_watch_s) are set but the url is ws://: use wss:// or remove them"
        ));
    }
    if let Some(f) = format {
        config.encode.format = f;
    }
    if let Some(st) = style {
        config.encode.style = st;
    }
    if let Some(u) = upload_err {
        config.encode.upload_err = u;
    }
    if let Some(f) = frame {
        config.frame = f;
    }
    if let Some(c) = confirm {
        config.confirm = c;
    }
    apply_timeouts(
        &mut config.connect,
        connect_timeout,
        write_timeout,
        ping_interval,
        pong_timeout,
    );
    if let Some(d) = backoff_min {
        config.backoff_floor = d;
    }
    if let Some(d) = backoff_max {
        config.backoff_ceiling = d;
    }
    if config.backoff_ceiling < config.backoff_floor {
        problems.push(format!(
            "{path}.backoff_max_ms: must not be below backoff_min_ms"
        ));
    }
    if let Some(d) = drain_timeout {
        config.drain_timeout = d;
    }
    if let Some(subs) = subscriptions {
        config.subscriptions = subs;
    }
    config.driver_states = driver_states;
    crate::reach::apply(
        path,
        reach_keys,
        &url,
        userinfo.flatten(),
        &mut config.connect,
        problems,
    );
    config.queue = queue;
    Some(config)
}

/// Neuron's `upload_drv_state` (default false) and `upload_drv_state_interval` (seconds,
/// 1 to 3600, default 1): the interval of the driver-state messages, or `None`.
fn driver_states(s: &mut Section) -> Option<Duration> {
    let on = s.bool("upload_drv_state").unwrap_or(false);
    let secs = s.u64_in("upload_drv_state_interval", 1, 3600);
    if secs.is_some() && !on {
        s.problem(
            "upload_drv_state_interval",
            "has no effect without upload_drv_state = true: set upload_drv_state = true to send driver states, or remove it",
        );
    }
    on.then(|| Duration::from_secs(secs.unwrap_or(DEFAULT_DRV_STATE_INTERVAL_S)))
}

/// Seconds between driver-state messages when `upload_drv_state_interval` is not given
/// (Neuron's default).
const DEFAULT_DRV_STATE_INTERVAL_S: u64 = 1;

fn apply_timeouts(
    connect: &mut ConnectOptions,
    connect_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    ping_interval: Option<Duration>,
    pong_timeout: Option<Duration>,
) {
    if let Some(d) = connect_timeout {
        connect.connect_timeout = d;
        connect.handshake_timeout = d;
    }
    if let Some(d) = write_timeout {
        connect.write_timeout = d;
    }
    let mut keep_alive = connect.keep_alive.unwrap_or_default();
    if let Some(d) = ping_interval {
        keep_alive.interval = d;
    }
    if let Some(d) = pong_timeout {
        keep_alive.pong_timeout = d;
    }
    connect.keep_alive = Some(keep_alive);
}

/// Refuses two uplinks whose cache directories, resolved (absolute, `..` and symbolic
/// links followed), are the same or nested: their disk logs would mix messages.
fn check_cache_dirs(north: &[UplinkConfig], problems: &mut Vec<String>) {
    let dirs: Vec<_> = north
        .iter()
        .filter_map(|n| {
            let d = n.queue.disk.as_ref()?;
            Some((n.name.as_str(), &d.dir, cache_dir::resolve(&d.dir)))
        })
        .collect();
    for (i, (name, dir, resolved)) in dirs.iter().enumerate() {
        for (other, other_dir, other_resolved) in &dirs[..i] {
            if cache_dir::overlap(resolved, other_resolved) {
                problems.push(format!(
                    "north \"{name}\" cache.dir: its cache {} and the cache {} of uplink \"{other}\" are the same or nested directories (resolved: {} and {}): give each uplink a cache.dir of its own, neither inside the other",
                    dir.display(),
                    other_dir.display(),
                    resolved.display(),
                    other_resolved.display()
                ));
            }
        }
    }
}

fn parse_cache(path: &str, table: &Table, uplink: &str, problems: &mut Vec<String>) -> QueueLimits {
    let mut s = Section::new(path.to_string(), table, problems);
    let mut limits = QueueLimits::default();
    if let Some(mb) = s.u64_in("memory_mb", 1, 4096) {
        limits.max_bytes = (mb as usize) * 1024 * 1024;
    }
    if let Some(n) = s.u64_in("max_messages", 1, 100_000_000) {
        limits.max_messages = n as usize;
    }
    if let Some(p) =
        s.parsed::<FullPolicy>("policy", "\"drop_oldest\", \"drop_newest\" or \"refuse\"")
    {
        limits.policy = p;
    }
    let dir = s.string("dir");
    let disk_mb = s.u64_in("disk_mb", 1, 1024 * 1024);
    let sync = match s.get("sync") {
        None => Some(SyncPolicy::Interval(Duration::from_millis(DEFAULT_SYNC_MS))),
        Some(Value::String(v)) if v == "always" => Some(SyncPolicy::Always),
        Some(Value::Integer(ms)) if (1..=3_600_000).contains(ms) => {
            Some(SyncPolicy::Interval(Duration::from_millis(*ms as u64)))
        }
        Some(other) => {
            let other = other.to_string();
            s.problem(
                "sync",
                &format!("{other} is not valid: use \"always\" (sync every write) or a number of milliseconds between syncs (1 to 3600000)"),
            );
            None
        }
    };
    if dir.is_none() {
        for key in ["disk_mb", "sync"] {
            if table.contains_key(key) {
                s.problem(
                    key,
                    "has no effect without `dir`: set dir to enable the disk cache",
                );
            }
        }
    }
    s.finish();
    if let Some(problem) = dir.as_deref().and_then(unwritable_dir) {
        problems.push(format!("{path}.dir: {problem}"));
    }
    if let (Some(dir), Some(sync)) = (dir, sync) {
        limits.disk = Some(DiskCacheConfig::new(
            // One log per directory: each uplink gets its own below `dir`.
            cache_dir::cache_dir(Path::new(&dir), uplink),
            disk_mb.unwrap_or(DEFAULT_DISK_MB) * 1024 * 1024,
            sync,
        ));
    }
    limits
}

/// Why the disk cache could not live in `dir`, if it could not: checked by creating and
/// removing a probe file in `dir` or, when `dir` does not exist yet, in its nearest
/// existing ancestor (where the daemon will create it). Nothing else is touched, so this
/// is safe while a daemon uses the cache.
fn unwritable_dir(dir: &str) -> Option<String> {
    let mut existing = Path::new(dir);
    while !existing.exists() {
        existing = existing.parent().filter(|p| !p.as_os_str().is_empty())?;
    }
    if !existing.is_dir() {
        return Some(format!(
            "{} is not a directory: point dir at a directory (it is created if missing)",
            existing.display()
        ));
    }
    let probe = existing.join(format!(".tagwire-check-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            None
        }
        Err(e) => Some(format!(
            "cannot write in {} ({e}): give the user tagwire runs as write access, or choose another directory",
            existing.display()
        )),
    }
}

/// Disk cache size when `disk_mb` is not given.
const DEFAULT_DISK_MB: u64 = 256;
/// Milliseconds between syncs of the disk cache when `sync` is not given.
const DEFAULT_SYNC_MS: u64 = 1000;

#[cfg(test)]
mod tests {
    use super::*;
    use tagwire_encode::Format;

    fn problems(text: &str) -> Vec<String> {
        parse(text).expect_err("should fail").0
    }

    #[test]
    fn server_name_goes_to_the_connection_and_is_checked() {
        let north = |name: &str| {
            format!("[[north]]\nname = \"c\"\nurl = \"wss://127.0.0.1:9000/\"\nserver_name = \"{name}\"\n")
        };
        let c = parse(&north("plant.example")).unwrap();
        assert_eq!(
            c.north[0].connect.server_name.as_deref(),
            Some("plant.example")
        );
        assert_eq!(
            problems(&north("not a name")),
            vec![
                "north[0].server_name: `not a name` is not a valid DNS name or IP address for TLS"
            ]
        );
    }

    #[test]
    fn a_minimal_config_is_usable_with_defaults() {
        let c = parse(
            "[[south]]\nname = \"sim\"\nkind = \"simulator\"\n\
             [[north]]\nname = \"cloud\"\nurl = \"ws://127.0.0.1:9000/x?y=1\"\n",
        )
        .unwrap();
        assert_eq!(c.south.len(), 1);
        let SouthKind::Simulator(groups) = &c.south[0].kind;
        assert_eq!(groups, &vec![SimGroup::default_group()]);
        let n = &c.north[0];
        assert_eq!(n.encode.format, Format::Values);
        assert_eq!(n.encode.style, Style::Neuron);
        assert!(n.encode.upload_err);
        assert_eq!(n.frame, FrameKind::Binary);
        assert_eq!(n.url.path_and_query(), "/x?y=1");
        assert_eq!(c.api.listen, Some("127.0.0.1:7080".parse().unwrap()));
        assert_eq!(c.log.status_interval, Some(Duration::from_secs(60)));
    }

    #[test]
    fn the_api_can_be_turned_off_and_status_lines_tuned() {
        let c = parse("[api]\nlisten = \"off\"\n[log]\nstatus_interval = 0\n").unwrap();
        assert_eq!(c.api.listen, None);
        assert_eq!(c.log.status_interval, None);
        let p = problems("[api]\nlisten = \"of\"\n[log]\nstatus_interval = 86401\nstatus = 1\n");
        assert!(
            p.iter()
                .any(|l| l.starts_with("api.listen:") && l.contains("\"off\"")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|l| l.starts_with("log.status_interval: 86401 is out of range")),
            "{p:?}"
        );
        assert!(p.iter().any(|l| l.contains("log.status")), "{p:?}");
    }

    #[test]
    fn every_problem_is_named_by_its_key() {
        let p = problems(
            "[[north]]\nname = \"a\"\nurl = \"http://x\"\nformat = \"xml\"\nstlye = \"compact\"\n\
             [[north]]\nformat = 1\n",
        );
        let all = p.join("\n");
        assert!(all.contains("north[0].url:"), "{all}");
        assert!(
            all.contains("north[0].format: unknown format \"xml\""),
            "{all}"
        );
        assert!(
            all.contains("north[0].stlye: unknown key (did you mean \"style\"?)"),
            "{all}"
        );
        assert!(all.contains("north[1].name: missing"), "{all}");
        assert!(all.contains("north[1].url: missing"), "{all}");
    }

    #[test]
    fn driver_states_take_neurons_keys_and_refuse_bad_values() {
        let north = |extra: &str| format!("[[north]]\nname = \"a\"\nurl = \"ws://h/\"\n{extra}\n");
        let c = parse(&north("")).unwrap();
        assert_eq!(c.north[0].driver_states, None, "off by default");
        let c = parse(&north("upload_drv_state = true")).unwrap();
        assert_eq!(c.north[0].driver_states, Some(Duration::from_secs(1)));
        let c = parse(&north(
            "upload_drv_state = true\nupload_drv_state_interval = 3600",
        ))
        .unwrap();
        assert_eq!(c.north[0].driver_states, Some(Duration::from_secs(3600)));
        for (extra, want) in [
            (
                "upload_drv_state = true\nupload_drv_state_interval = 0",
                "north[0].upload_drv_state_interval: 0 is out of range: use 1 to 3600",
            ),
            (
                "upload_drv_state = true\nupload_drv_state_interval = 3601",
                "north[0].upload_drv_state_interval: 3601 is out of range: use 1 to 3600",
            ),
            (
                "upload_drv_state = true\nupload_drv_state_interval = \"5s\"",
                "north[0].upload_drv_state_interval: expected a whole number, found string",
            ),
            (
                "upload_drv_state = 1",
                "north[0].upload_drv_state: expected true or false, found integer",
            ),
            (
                "upload_drv_state_interval = 5",
                "north[0].upload_drv_state_interval: has no effect without upload_drv_state = true",
            ),
            (
                "upload_drv_stat = true",
                "north[0].upload_drv_stat: unknown key (did you mean \"upload_drv_state\"?)",
            ),
        ] {
            let p = problems(&north(extra));
            assert!(p.iter().any(|l| l.starts_with(want)), "{extra}: {p:?}");
        }
    }

    #[test]
    fn neuron_format_codes_are_accepted() {
        let c = parse("[[north]]\nname = \"a\"\nurl = \"ws://h/\"\nformat = 1\n").unwrap();
        assert_eq!(c.north[0].encode.format, Format::Tags);
    }

    #[test]
    fn tls_parameters_on_a_plain_url_are_a_mistake() {
        let p = problems("[[north]]\nname = \"a\"\nurl = \"ws://h/\"\nca = \"/x.pem\"\n");
        assert!(p[0].starts_with("north[0].url: TLS parameters"), "{p:?}");
    }

    #[test]
    fn a_cache_dir_that_cannot_be_used_is_named() {
        let file = std::env::temp_dir().join(format!("tagwire-not-a-dir-{}", std::process::id()));
        std::fs::write(&file, b"x").unwrap();
        let p = problems(&format!(
            "[[north]]\nname = \"a\"\nurl = \"ws://h/\"\n[north.cache]\ndir = \"{}/sub\"\n",
            file.display()
        ));
        std::fs::remove_file(&file).unwrap();
        assert!(p[0].starts_with("north[0].cache.dir: "), "{p:?}");
        assert!(p[0].contains("is not a directory"), "{p:?}");
        // A directory that does not exist yet is fine: the daemon creates it.
        let fresh = std::env::temp_dir().join(format!("tagwire-new-{}/cache", std::process::id()));
        let ok = parse(&format!(
            "[[north]]\nname = \"a b\"\nurl = \"ws://h/\"\n[north.cache]\ndir = \"{}\"\nsync = \"always\"\n",
            fresh.display()
        ))
        .unwrap();
        let disk = ok.north[0].queue.disk.as_ref().unwrap();
        assert_eq!(
            disk.dir,
            fresh.join("a%20b"),
            "one directory per uplink, name escaped"
        );
        assert_eq!(disk.sync, SyncPolicy::Always);
        assert!(!fresh.exists(), "check creates nothing");
    }

    fn two_cached_uplinks(a: (&str, &str), b: (&str, &str)) -> Result<Config, ConfigErrors> {
        let one = |(name, dir): (&str, &str)| {
            format!(
                "[[north]]\nname = \"{name}\"\nurl = \"ws://h/\"\n[north.cache]\ndir = \"{dir}\"\n"
            )
        };
        parse(&(one(a) + &one(b)))
    }

    #[test]
    fn an_uplink_named_dot_dot_stays_inside_its_cache_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().display().to_string();
        // Unescaped, ".." below base/sub was base itself, the parent of "x"'s cache.
        let c = two_cached_uplinks(("..", &format!("{base}/sub")), ("x", &base)).unwrap();
        let dirs: Vec<_> = c
            .north
            .iter()
            .map(|n| n.queue.disk.clone().unwrap().dir)
            .collect();
        assert_eq!(dirs[0], tmp.path().join("sub/%2E%2E"));
        assert_eq!(dirs[1], tmp.path().join("x"));
    }

    #[test]
    fn check_refuses_cache_dirs_that_are_the_same_or_nested() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().display().to_string();
        // Nested: b's cache base/a/b is inside a's cache base/a.
        let p = two_cached_uplinks(("a", &base), ("b", &format!("{base}/a")))
            .unwrap_err()
            .0;
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("north \"b\" cache.dir: "), "{p:?}");
        assert!(
            p[0].contains("uplink \"a\"") && p[0].contains("same or nested"),
            "{p:?}"
        );
        // The same directory spelled differently (`..`, a symbolic link).
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("real"), tmp.path().join("link")).unwrap();
        let p = two_cached_uplinks(
            ("a", &format!("{base}/real/x")),
            ("b", &format!("{base}/link/x/../x/a")),
        )
        .unwrap_err()
        .0;
        assert!(p[0].contains("same or nested"), "{p:?}");
        // Siblings below one `dir` are fine.
        two_cached_uplinks(("a", &base), ("b", &base)).unwrap();
        two_cached_uplinks(
            ("a", &format!("{base}/one")),
            ("a2", &format!("{base}/two")),
        )
        .unwrap();
    }

    #[test]
    fn duplicate_names_and_bad_values() {
        let p = problems(
            "[[north]]\nname = \"a\"\nurl = \"ws://h/\"\n[north.cache]\nmemory_mb = 0\npolicy = \"x\"\n\
             [[north]]\nname = \"a\"\nurl = \"ws://h/\"\nupload_err = \"yes\"\n",
        );
        let all = p.join("\n");
        assert!(
            all.contains("north[0].cache.memory_mb: 0 is out of range"),
            "{all}"
        );
        assert!(
            all.contains("north[0].cache.policy: \"x\" is not valid"),
            "{all}"
        );
        assert!(
            all.contains("north[1].upload_err: expected true or false, found string"),
            "{all}"
        );
        assert!(
            all.contains("north[1].name: \"a\" is used by an earlier"),
            "{all}"
        );
    }
}
