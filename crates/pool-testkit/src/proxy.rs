//! [`FaultProxy`]: a TCP proxy between a pool and its server that can delay, reset, blackhole
//! or redirect connections.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What a [`FaultProxy`] does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProxyMode {
    /// Forward bytes both ways.
    #[default]
    Pass,
    /// Forward bytes, each read delayed by this long (both ways, so a round trip gains twice).
    Latency(Duration),
    /// Reset every connection: open ones at once, new ones as soon as they are accepted.
    Reset,
    /// Accept connections and never answer; open ones stop forwarding (a network partition,
    /// or a server that hangs).
    Blackhole,
}

#[derive(Debug)]
struct Shared {
    target: Mutex<SocketAddr>,
}

/// A TCP proxy on 127.0.0.1 in front of a PostgreSQL server (or anything else).
///
/// Runs on the runtime it was started on; dropping it closes every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    mode: watch::Sender<ProxyMode>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `target` in [`ProxyMode::Pass`].
    ///
    /// # Errors
    ///
    /// When no port can be bound on 127.0.0.1.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("the fault proxy cannot bind a port on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target: Mutex::new(target),
        });
        let (mode, mode_rx) = watch::channel(ProxyMode::Pass);
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared), mode_rx));
        Ok(Self {
            addr,
            shared,
            mode,
            accept,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host clients connect to (127.0.0.1).
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Changes what the proxy does, for open connections and new ones.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        *self.mode.borrow()
    }

    /// Sends new connections to `target` (a failover); open ones keep their server.
    pub fn set_target(&self, target: SocketAddr) {
        *self.shared.target.lock().unwrap_or_else(|e| e.into_inner()) = target;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept task owns the connection tasks: aborting it aborts them all.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mode: watch::Receiver<ProxyMode>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let target = *shared.target.lock().unwrap_or_else(|e| e.into_inner());
                connections.spawn(serve(client, target, mode.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Closes `stream` with a TCP reset instead of an orderly FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn serve(client: TcpStream, target: SocketAddr, mut mode: watch::Receiver<ProxyMode>) {
    let current = *mode.borrow_and_update();
    match current {
        ProxyMode::Reset => return reset(client),
        ProxyMode::Blackhole => {
            // Hold the connection, never answer, until the mode changes.
            let _ = mode.changed().await;
            return reset(client);
        }
        ProxyMode::Pass | ProxyMode::Latency(_) => {}
    }
    let Ok(server) = TcpStream::connect(target).await else {
        return reset(client);
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let upstream = pump(client_read, server_write, mode.clone());
    let downstream = pump(server_read, client_write, mode);
    // When one direction ends, dropping the other closes both sockets (with a reset if the
    // mode asked for one: the linger option belongs to the socket, not to the half).
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<ProxyMode>,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let current = *mode.borrow_and_update();
        match current {
            ProxyMode::Reset => {
                let _ = from.as_ref().set_zero_linger();
                let _ = to.as_ref().set_zero_linger();
                return;
            }
            ProxyMode::Blackhole => {
                if mode.changed().await.is_err() {
                    return;
                }
                continue;
            }
            ProxyMode::Pass | ProxyMode::Latency(_) => {}
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            changed = mode.changed() => {
                if changed.is_err() { return; }
                continue;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        let latency = *mode.borrow();
        if let ProxyMode::Latency(delay) = latency {
            tokio::time::sleep(delay).await;
        }
        let after = *mode.borrow();
        if matches!(after, ProxyMode::Blackhole | ProxyMode::Reset) {
            // The mode changed while the bytes were in flight: they are lost, like the link.
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
