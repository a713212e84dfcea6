//! [`FaultProxy`]: a TCP proxy between a pool and its server that can delay, trickle, stall,
//! reset, blackhole or redirect connections.

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
    /// Forward the server's bytes `bytes` at a time, one chunk every `every` (a congested
    /// link, a server stuck in swap); bytes to the server pass as they come. It applies to
    /// open connections and new ones, so a startup as well as a result can trickle.
    Trickle {
        /// Bytes per chunk (at least 1).
        bytes: usize,
        /// The pause after each chunk.
        every: Duration,
    },
    /// Forward at most `bytes` more bytes from the server on each connection, counted from
    /// when the connection sees this mode, then nothing more from the server until the mode
    /// changes: a server or link that stops mid-message. Bytes to the server pass.
    StallAfter {
        /// Bytes the client still receives.
        bytes: usize,
    },
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
        ProxyMode::Pass
        | ProxyMode::Latency(_)
        | ProxyMode::Trickle { .. }
        | ProxyMode::StallAfter { .. } => {}
    }
    let Ok(server) = TcpStream::connect(target).await else {
        return reset(client);
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let upstream = pump(client_read, server_write, mode.clone(), Direction::ToServer);
    let downstream = pump(server_read, client_write, mode, Direction::ToClient);
    // When one direction ends, dropping the other closes both sockets (with a reset if the
    // mode asked for one: the linger option belongs to the socket, not to the half).
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

/// Which way a [`pump`] moves bytes: trickles and stalls hold back only the server's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToServer,
    ToClient,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<ProxyMode>,
    direction: Direction,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    // The mode this pump last acted on, and the bytes it forwarded since: a stall counts
    // from the moment the connection sees it.
    let mut acting_on = None;
    let mut forwarded = 0_usize;
    loop {
        let current = *mode.borrow_and_update();
        if acting_on != Some(current) {
            acting_on = Some(current);
            forwarded = 0;
        }
        let held_back = direction == Direction::ToClient;
        let mut limit = buffer.len();
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
            ProxyMode::StallAfter { bytes } if held_back => {
                if forwarded >= bytes {
                    if mode.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                limit = limit.min(bytes - forwarded);
            }
            ProxyMode::Pass
            | ProxyMode::Latency(_)
            | ProxyMode::Trickle { .. }
            | ProxyMode::StallAfter { .. } => {}
        }
        let read = tokio::select! {
            read = from.read(&mut buffer[..limit]) => read,
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
        forwarded = forwarded.saturating_add(n);
        let now = *mode.borrow();
        let sent = match now {
            ProxyMode::Trickle { bytes, every } if held_back => {
                trickle(&mut to, &buffer[..n], bytes, every, &mode).await
            }
            // The mode changed while the bytes were in flight: they are lost, like the link.
            ProxyMode::Blackhole | ProxyMode::Reset => continue,
            _ => to.write_all(&buffer[..n]).await,
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Writes `data` in chunks of `bytes`, pausing `every` after each, while the mode stays a
/// trickle; the rest goes at once when it turns to another forwarding mode, and is lost
/// when it turns to a blackhole or a reset.
async fn trickle(
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    data: &[u8],
    bytes: usize,
    every: Duration,
    mode: &watch::Receiver<ProxyMode>,
) -> std::io::Result<()> {
    let mut rest = data;
    while !rest.is_empty() {
        let now = *mode.borrow();
        match now {
            ProxyMode::Trickle { .. } => {}
            ProxyMode::Blackhole | ProxyMode::Reset => return Ok(()),
            _ => return to.write_all(rest).await,
        }
        let (chunk, after) = rest.split_at(bytes.clamp(1, rest.len()));
        to.write_all(chunk).await?;
        rest = after;
        tokio::time::sleep(every).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// A server that sends `payload` to each client that connects and again whenever the
    /// client sends something, holding the connection open.
    async fn sender(payload: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut sink = [0_u8; 64];
                    while client.write_all(payload).await.is_ok()
                        && matches!(client.read(&mut sink).await, Ok(n) if n > 0)
                    {
                    }
                });
            }
        });
        addr
    }

    const PAYLOAD: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!?";

    /// Reads until `want` bytes arrived or nothing came for `quiet`; returns the bytes and
    /// the size of each read.
    async fn read_until(
        stream: &mut TcpStream,
        want: usize,
        quiet: Duration,
    ) -> (Vec<u8>, Vec<usize>) {
        let (mut got, mut reads) = (Vec::new(), Vec::new());
        let mut buffer = [0_u8; 1024];
        while got.len() < want {
            match tokio::time::timeout(quiet, stream.read(&mut buffer)).await {
                Ok(Ok(n)) if n > 0 => {
                    got.extend_from_slice(&buffer[..n]);
                    reads.push(n);
                }
                _ => break,
            }
        }
        (got, reads)
    }

    #[tokio::test]
    async fn trickle_delivers_every_byte_in_small_chunks_and_pass_delivers_the_rest_at_once() {
        let proxy = FaultProxy::start(sender(PAYLOAD).await)
            .await
            .expect("proxy");
        let every = Duration::from_millis(40);
        proxy.set_mode(ProxyMode::Trickle { bytes: 4, every });
        let started = Instant::now();
        let mut client = TcpStream::connect(proxy.addr()).await.expect("connect");
        let (got, reads) = read_until(&mut client, 32, Duration::from_secs(5)).await;
        assert_eq!(got, PAYLOAD[..got.len()], "in order and intact");
        assert!(got.len() >= 32, "{reads:?}");
        assert!(
            reads.iter().all(|&n| n <= 4),
            "chunks of at most 4 bytes: {reads:?}"
        );
        // Eight chunks, each followed by its pause: the pauses cannot end early.
        assert!(started.elapsed() >= every * 7, "{:?}", started.elapsed());

        proxy.set_mode(ProxyMode::Pass);
        let (rest, _) = read_until(
            &mut client,
            PAYLOAD.len() - got.len(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!([got, rest].concat(), PAYLOAD);
    }

    #[tokio::test]
    async fn stall_after_forwards_exactly_that_many_bytes_then_nothing_until_the_mode_changes() {
        let proxy = FaultProxy::start(sender(PAYLOAD).await)
            .await
            .expect("proxy");
        proxy.set_mode(ProxyMode::StallAfter { bytes: 10 });
        let mut client = TcpStream::connect(proxy.addr()).await.expect("connect");
        let (got, _) = read_until(&mut client, PAYLOAD.len(), Duration::from_millis(500)).await;
        assert_eq!(got, PAYLOAD[..10], "ten bytes, then the stall");
        // Bytes to the server still pass: the connection is open, only the answers stop.
        client
            .write_all(b"ping")
            .await
            .expect("the client can still send");

        proxy.set_mode(ProxyMode::Pass);
        let (rest, _) = read_until(&mut client, PAYLOAD.len() - 10, Duration::from_secs(5)).await;
        // (The server answered the ping with the payload again, which may follow.)
        assert!(
            [got, rest].concat().starts_with(PAYLOAD),
            "nothing was lost, only held"
        );
    }

    #[tokio::test]
    async fn stall_after_counts_from_when_an_open_connection_sees_it() {
        let proxy = FaultProxy::start(sender(PAYLOAD).await)
            .await
            .expect("proxy");
        let mut client = TcpStream::connect(proxy.addr()).await.expect("connect");
        let (first, _) = read_until(&mut client, PAYLOAD.len(), Duration::from_secs(5)).await;
        assert_eq!(first, PAYLOAD, "passed before the stall");
        proxy.set_mode(ProxyMode::StallAfter { bytes: 5 });
        // The server answers each message with the payload again: five bytes of it get through.
        client.write_all(b"again").await.expect("send");
        let (second, _) = read_until(&mut client, PAYLOAD.len(), Duration::from_millis(500)).await;
        assert_eq!(second, PAYLOAD[..5]);
        let mut new = TcpStream::connect(proxy.addr()).await.expect("connect");
        let (fresh, _) = read_until(&mut new, PAYLOAD.len(), Duration::from_millis(500)).await;
        assert_eq!(
            fresh,
            PAYLOAD[..5],
            "a new connection gets its own five bytes"
        );
    }
}
