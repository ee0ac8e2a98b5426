//! Real proxies from Debian in front of the test servers: tinyproxy (HTTP CONNECT) and
//! microsocks (SOCKS5), each on a free loopback port, killed when dropped.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{free_port, peer_env, wait_for, Proc};

/// A running proxy: its port and process.
pub struct RealProxy {
    pub port: u16,
    pub proc: Proc,
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
fn wait_listening(name: &str, port: u16) {
    wait_for(
        &format!("{name} to listen on port {port}"),
        Duration::from_secs(10),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
}

/// tinyproxy on loopback, with `BasicAuth user password` when `auth` is given and only
/// the `connect_ports` allowed for CONNECT (every port when empty). `None` when skipped.
pub fn tinyproxy(
    dir: &Path,
    auth: Option<(&str, &str)>,
    connect_ports: &[u16],
) -> Option<RealProxy> {
    let bin = peer_env("TAGWIRE_TINYPROXY")?;
    let port = free_port();
    let sub = dir.join(format!("tinyproxy-{port}"));
    std::fs::create_dir_all(&sub).unwrap();
    let mut conf = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nMaxClients 50\n\
         LogFile \"{log}\"\nLogLevel Info\n",
        log = sub.join("tinyproxy.log").display()
    );
    if let Some((user, password)) = auth {
        conf += &format!("BasicAuth {user} {password}\n");
    }
    for p in connect_ports {
        conf += &format!("ConnectPort {p}\n");
    }
    let conf_path = sub.join("tinyproxy.conf");
    std::fs::write(&conf_path, conf).unwrap();
    // tinyproxy drops root privileges to `nobody`, which must be able to write its log.
    let _ = Command::new("chmod").arg("777").arg(&sub).status();
    let child = Command::new(bin)
        .arg("-d")
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tinyproxy");
    let proc = Proc {
        child,
        name: "tinyproxy".into(),
    };
    wait_listening("tinyproxy", port);
    Some(RealProxy { port, proc })
}

/// microsocks (SOCKS5) on loopback, requiring `user`/`password` when `auth` is given.
/// `None` when skipped.
pub fn microsocks(auth: Option<(&str, &str)>) -> Option<RealProxy> {
    let bin = peer_env("TAGWIRE_MICROSOCKS")?;
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((user, password)) = auth {
        cmd.args(["-u", user, "-P", password]);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start microsocks");
    let proc = Proc {
        child,
        name: "microsocks".into(),
    };
    wait_listening("microsocks", port);
    Some(RealProxy { port, proc })
}
