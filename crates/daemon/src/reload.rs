//! What `tagwire run` has running, by name, and how a reload changes it (SIGHUP or
//! `POST /api/v1/reload`).
//!
//! An entry of `[[north]]` or `[[south]]` is "unchanged" when its TOML table is equal to
//! the one it was started from (so a reload that changes nothing restarts nothing):
//! - an unchanged uplink keeps its task and its connection;
//! - a changed uplink is rebuilt on the same queue and counters ([`Uplink::rebuild`]):
//!   the old task closes its connection without draining and leaves every queued and
//!   unconfirmed message to the new one, which sends them first;
//! - a removed uplink drains and closes as at shutdown, in the background;
//! - an added one starts; sources are stopped and started likewise.
//!
//! A configuration that does not load is refused whole: its problems are returned and
//! the running one is left untouched. Added uplinks are opened (disk caches read back)
//! before anything changes, so that a failure there refuses the reload too.

use std::collections::BTreeMap;
use std::sync::Arc;

use tagwire_pipeline::{driver_state, spawn_simulator, Hub, SouthNode, Uplink};
use tokio::task::JoinHandle;
use toml::{Table, Value};
use tracing::warn;

use crate::config::{self, Config, SouthConfig, SouthKind};
use crate::shutdown::Stage;

/// A running uplink: its TOML table, the uplink and its task.
struct RunningUplink {
    table: Value,
    uplink: Arc<Uplink>,
    stage: Stage,
}

/// A running source: its TOML table and its tasks.
struct RunningSource {
    table: Value,
    stage: Stage,
}

/// Everything `run` started, by name.
pub struct Daemon {
    hub: Arc<Hub>,
    uplinks: BTreeMap<String, RunningUplink>,
    sources: BTreeMap<String, RunningSource>,
    /// `[api]` as started (its changes wait for the next start) and `[log]` as running.
    fixed: (Option<Value>, Option<Value>),
    /// The status-line task (`[log] status_interval`; no task when it is 0).
    status: Stage,
    /// Removed uplinks draining in the background; awaited at stop.
    retiring: Vec<JoinHandle<()>>,
}

/// The tables of `[[key]]` in `root`, by their `name`.
fn tables_by_name(root: &Table, key: &str) -> BTreeMap<String, Value> {
    root.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t.get("name")?.as_str()?.to_string(), t.clone())))
        .collect()
}

/// Reads and checks the configuration at `path`: the usable configuration and its raw
/// table, or every problem.
pub async fn load(path: &std::path::Path) -> Result<(Config, Table), Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![format!(
            "{}: cannot read the configuration file: {e}",
            path.display()
        )]
    })?;
    let cfg = config::parse(&text).map_err(|e| e.0)?;
    let root: Table = text
        .parse()
        .map_err(|e: toml::de::Error| vec![e.to_string()])?;
    Ok((cfg, root))
}

/// Opens the uplinks of `north` (reading back disk caches); the first failure is
/// returned with the key at fault.
async fn open_all(
    north: Vec<tagwire_pipeline::UplinkConfig>,
    index_of: impl Fn(&str) -> usize,
) -> Result<Vec<Arc<Uplink>>, Vec<String>> {
    let mut opened = Vec::new();
    for n in north {
        let name = n.name.clone();
        match Uplink::open(n).await {
            Ok(u) => opened.push(u),
            Err(e) => {
                return Err(vec![format!(
                    "north[{}].cache.dir: cannot open the disk cache of uplink {name:?}: {e}",
                    index_of(&name)
                )])
            }
        }
    }
    Ok(opened)
}

/// The uplink's task, and its driver-state task when it sends driver states.
fn spawn_uplink(uplink: &Arc<Uplink>, hub: &Arc<Hub>) -> Stage {
    let mut stage = Stage::new();
    stage.tasks.push(uplink.spawn(stage.stop.subscribe()));
    stage
        .tasks
        .extend(driver_state::spawn(uplink, hub, stage.stop.subscribe()));
    stage
}

/// The south nodes of `cfg` as the hub reports them: a configured source runs and
/// reaches its device while tagwire runs it.
fn south_nodes(south: &[SouthConfig]) -> Vec<SouthNode> {
    south.iter().map(|s| SouthNode::running(&s.name)).collect()
}

fn spawn_source(south: &SouthConfig, hub: &Arc<Hub>) -> Stage {
    let mut stage = Stage::new();
    match &south.kind {
        SouthKind::Simulator(groups) => stage.tasks.extend(spawn_simulator(
            &south.name,
            groups.clone(),
            Arc::clone(hub),
            stage.stop.subscribe(),
        )),
    }
    stage
}

/// The status-line task of `every`, or no task.
fn spawn_status(hub: &Arc<Hub>, every: Option<std::time::Duration>) -> Stage {
    let mut stage = Stage::new();
    if let Some(every) = every {
        stage.tasks.push(crate::status::spawn(
            Arc::clone(hub),
            every,
            stage.stop.subscribe(),
        ));
    }
    stage
}

/// Names for the reload's log line.
#[derive(Default)]
struct Changes {
    added: Vec<String>,
    changed: Vec<String>,
    removed: Vec<String>,
    unchanged: Vec<String>,
}

impl Changes {
    fn describe(&self, what: &str) -> String {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(",")
            }
        };
        format!(
            "{what}: added {}, changed {}, removed {}, unchanged {}",
            list(&self.added),
            list(&self.changed),
            list(&self.removed),
            list(&self.unchanged)
        )
    }
}

impl Daemon {
    /// Opens the uplinks of `cfg` and builds the hub; nothing runs yet (see [`start`](Self::start)).
    pub async fn open(cfg: &Config, root: &Table) -> Result<(Self, Arc<Hub>), Vec<String>> {
        let names: Vec<String> = cfg.north.iter().map(|n| n.name.clone()).collect();
        let uplinks = open_all(cfg.north.clone(), |n| {
            names.iter().position(|x| x == n).unwrap_or(0)
        })
        .await?;
        let hub = Arc::new(Hub::new(uplinks.clone()));
        let north_tables = tables_by_name(root, "north");
        let daemon = Self {
            hub: Arc::clone(&hub),
            uplinks: uplinks
                .into_iter()
                .map(|u| {
                    let name = u.config().name.clone();
                    let table = north_tables
                        .get(&name)
                        .cloned()
                        .unwrap_or(Value::Boolean(false));
                    (
                        name,
                        RunningUplink {
                            table,
                            stage: Stage::new(),
                            uplink: u,
                        },
                    )
                })
                .collect(),
            sources: BTreeMap::new(),
            fixed: (root.get("api").cloned(), root.get("log").cloned()),
            retiring: Vec::new(),
            status: Stage::new(),
        };
        Ok((daemon, hub))
    }

    /// Starts every uplink, then the sources of `cfg`.
    pub fn start(&mut self, cfg: &Config, root: &Table) {
        self.hub.set_south(south_nodes(&cfg.south));
        self.status = spawn_status(&self.hub, cfg.log.status_interval);
        for r in self.uplinks.values_mut() {
            r.stage = spawn_uplink(&r.uplink, &self.hub);
        }
        let south_tables = tables_by_name(root, "south");
        for s in &cfg.south {
            self.sources.insert(
                s.name.clone(),
                RunningSource {
                    table: south_tables
                        .get(&s.name)
                        .cloned()
                        .unwrap_or(Value::Boolean(false)),
                    stage: spawn_source(s, &self.hub),
                },
            );
        }
    }

    /// Applies a new configuration; returns the line saying what changed, or every
    /// problem (and then nothing changed).
    pub async fn reload(&mut self, path: &std::path::Path) -> Result<String, Vec<String>> {
        let (cfg, root) = load(path).await?;
        let north_tables = tables_by_name(&root, "north");
        let south_tables = tables_by_name(&root, "south");

        // Open the added uplinks first: a disk cache that cannot be opened refuses the
        // whole reload before anything changed.
        let names: Vec<String> = cfg.north.iter().map(|n| n.name.clone()).collect();
        let added_configs = cfg
            .north
            .iter()
            .filter(|n| !self.uplinks.contains_key(&n.name))
            .cloned()
            .collect();
        let mut added: BTreeMap<String, Arc<Uplink>> = open_all(added_configs, |n| {
            names.iter().position(|x| x == n).unwrap_or(0)
        })
        .await?
        .into_iter()
        .map(|u| (u.config().name.clone(), u))
        .collect();

        let mut north = Changes::default();
        let mut list = Vec::new();
        // (old, new table, new uplink) of every changed uplink, handed over below.
        let mut handovers = Vec::new();
        let mut kept = BTreeMap::new();
        for n in cfg.north {
            let name = n.name.clone();
            let table = north_tables
                .get(&name)
                .cloned()
                .unwrap_or(Value::Boolean(false));
            match self.uplinks.remove(&name) {
                Some(old) if old.table == table => {
                    list.push(Arc::clone(&old.uplink));
                    north.unchanged.push(name.clone());
                    kept.insert(name, old);
                }
                Some(old) => {
                    if old.table.get("cache") != table.get("cache") {
                        warn!(uplink = %name, "[north.cache] changed: the queue and its messages are kept as they are, the new cache settings apply at the next start");
                    }
                    let new = Uplink::rebuild(&old.uplink, n);
                    list.push(Arc::clone(&new));
                    north.changed.push(name.clone());
                    handovers.push((old, table, new));
                }
                None => {
                    let new = added.remove(&name).expect("opened above");
                    list.push(Arc::clone(&new));
                    north.added.push(name.clone());
                    kept.insert(
                        name,
                        RunningUplink {
                            table,
                            stage: spawn_uplink(&new, &self.hub),
                            uplink: new,
                        },
                    );
                }
            }
        }
        // From here on snapshots go to the new list (changed uplinks encode with their
        // new settings into the same queue); once the publishes still running on the
        // old list are done, nothing more reaches a removed uplink and it may drain.
        self.hub.set_uplinks(list);
        self.hub.settle().await;
        for (name, old) in std::mem::take(&mut self.uplinks) {
            north.removed.push(name);
            let uplink = old.uplink;
            self.retiring.push(tokio::spawn(async move {
                old.stage.stop().await;
                crate::commands::run::log_final_counts(&uplink);
            }));
        }
        for (old, table, new) in handovers {
            old.uplink.hand_over();
            old.stage.stop().await;
            let name = new.config().name.clone();
            kept.insert(
                name,
                RunningUplink {
                    table,
                    stage: spawn_uplink(&new, &self.hub),
                    uplink: new,
                },
            );
        }
        self.uplinks = kept;

        let mut south = Changes::default();
        let mut sources = BTreeMap::new();
        for s in &cfg.south {
            let table = south_tables
                .get(&s.name)
                .cloned()
                .unwrap_or(Value::Boolean(false));
            let entry = match self.sources.remove(&s.name) {
                Some(old) if old.table == table => {
                    south.unchanged.push(s.name.clone());
                    old
                }
                old => {
                    match old {
                        Some(old) => {
                            old.stage.stop().await;
                            south.changed.push(s.name.clone());
                        }
                        None => south.added.push(s.name.clone()),
                    }
                    RunningSource {
                        table,
                        stage: spawn_source(s, &self.hub),
                    }
                }
            };
            sources.insert(s.name.clone(), entry);
        }
        for (name, old) in std::mem::take(&mut self.sources) {
            old.stage.stop().await;
            south.removed.push(name);
        }
        self.sources = sources;
        // The API's nodes list and the next driver-state messages see the new sources.
        self.hub.set_south(south_nodes(&cfg.south));

        let mut line = format!(
            "configuration reloaded: {}; {}",
            north.describe("north"),
            south.describe("south")
        );
        let fixed = (root.get("api").cloned(), root.get("log").cloned());
        if fixed.0 != self.fixed.0 {
            line.push_str("; [api] changed: applies at the next start");
        }
        if fixed.1 != self.fixed.1 {
            // The one `[log]` key is the status interval: restarting its task is cheap.
            // (The log level and format come from TAGWIRE_LOG and --log-format, which a
            // reload does not re-read.)
            let old = std::mem::replace(
                &mut self.status,
                spawn_status(&self.hub, cfg.log.status_interval),
            );
            old.stop().await;
            line.push_str(&format!(
                "; [log] status_interval now {}",
                cfg.log
                    .status_interval
                    .map_or("off".to_string(), tagwire_pipeline::human_duration)
            ));
            self.fixed.1 = fixed.1;
        }
        Ok(line)
    }

    /// Stops the sources, then lets every uplink drain and close (removed ones too);
    /// returns the uplinks, for their final counts.
    pub async fn stop(self) -> Vec<Arc<Uplink>> {
        self.status.stop().await;
        for s in self.sources.into_values() {
            s.stage.stop().await;
        }
        let mut uplinks = Vec::new();
        let stages: Vec<Stage> = self
            .uplinks
            .into_values()
            .map(|r| {
                uplinks.push(r.uplink);
                let _ = r.stage.stop.send(true);
                r.stage
            })
            .collect();
        // Signalled together above, so they drain in parallel; awaited here.
        for s in stages {
            s.stop().await;
        }
        for t in self.retiring {
            let _ = t.await;
        }
        uplinks
    }
}
