//! Stopping: exit codes, the signals that stop the daemon, and the stop sequence that
//! `run`, `demo` and `bench` share (sources first, then the uplinks drain and close).

use std::sync::Arc;

use tagwire_pipeline::Hub;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Exit code for a usage, configuration or data problem (the message says what).
pub const EXIT_USAGE: u8 = 1;
/// Exit code for a failure while running.
pub const EXIT_RUNTIME: u8 = 2;

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A stream of SIGHUP (the reload signal); never fires where there is none.
pub struct Hangup(#[cfg(unix)] tokio::signal::unix::Signal);

impl Hangup {
    /// Resolves at the next SIGHUP.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            self.0.recv().await;
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    }
}

/// Installs the SIGHUP handler (before it, SIGHUP would kill the process).
pub fn hangup() -> Hangup {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        Hangup(signal(SignalKind::hangup()).expect("SIGHUP handler"))
    }
    #[cfg(not(unix))]
    Hangup()
}

/// Tasks stopped together by one signal.
pub struct Stage {
    /// Turns true to stop them.
    pub stop: watch::Sender<bool>,
    /// The tasks, awaited by [`Stage::stop`].
    pub tasks: Vec<JoinHandle<()>>,
}

impl Stage {
    /// No tasks yet; add them with receivers of [`Stage::stop`].
    pub fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    /// Signals the tasks to stop and waits until each has returned.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// A running pipeline: the uplinks of a hub and the sources feeding it.
pub struct Running {
    sources: Stage,
    uplinks: Stage,
    /// Turns true once every uplink has drained and closed.
    stopped: watch::Sender<bool>,
}

impl Running {
    /// Starts every uplink of `hub`.
    pub fn start(hub: &Arc<Hub>) -> Self {
        let mut uplinks = Stage::new();
        uplinks.tasks = hub.spawn_uplinks(&uplinks.stop.subscribe());
        Self {
            sources: Stage::new(),
            uplinks,
            stopped: watch::channel(false).0,
        }
    }

    /// The signal sources watch: true when they must stop.
    pub fn sources_signal(&self) -> watch::Receiver<bool> {
        self.sources.stop.subscribe()
    }

    /// A signal that turns true once every uplink has drained and closed: a local
    /// receiver stops then (and sends its Close frames), so that it reads their whole
    /// drain.
    pub fn stopped_signal(&self) -> watch::Receiver<bool> {
        self.stopped.subscribe()
    }

    /// Adds source tasks, stopped first.
    pub fn add_sources(&mut self, tasks: impl IntoIterator<Item = JoinHandle<()>>) {
        self.sources.tasks.extend(tasks);
    }

    /// Stops the sources, then lets every uplink drain its queue (bounded by its drain
    /// timeout) and close; returns when all have.
    pub async fn stop(self) {
        self.sources.stop().await;
        self.uplinks.stop().await;
        let _ = self.stopped.send(true);
    }
}
