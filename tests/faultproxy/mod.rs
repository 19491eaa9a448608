//! A TCP proxy on 127.0.0.1 that a test puts between the bot and a shared service (Redis,
//! PostgreSQL) to inject faults without touching the service itself: `cut()` drops every
//! connection and refuses new ones, `blackhole()` keeps connections open but forwards
//! nothing (a hung server), `restore()` forwards again. Dropping the proxy closes everything.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Cut,
    Blackhole,
}

pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    accepted: Arc<AtomicUsize>,
    acceptor: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `upstream`. Call within a tokio
    /// runtime: the proxy's tasks run on it.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("fault proxy: bind");
        listener
            .set_nonblocking(true)
            .expect("fault proxy: non-blocking listener");
        let addr = listener.local_addr().expect("fault proxy: local address");
        let listener = TcpListener::from_std(listener).expect("fault proxy: needs a tokio runtime");
        let mode = watch::Sender::new(Mode::Forward);
        let accepted = Arc::new(AtomicUsize::new(0));
        let acceptor = tokio::spawn(accept(
            listener,
            upstream,
            mode.clone(),
            Arc::clone(&accepted),
        ));
        FaultProxy {
            addr,
            mode,
            accepted,
            acceptor,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far (to see that a client reconnected).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes every open connection now; new ones are accepted and closed at once.
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Keeps connections open but moves no bytes either way, until `restore`.
    pub fn blackhole(&self) {
        self.mode.send_replace(Mode::Blackhole);
    }

    /// Forwards again; connections held by a blackhole resume where they stopped.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Forward);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The connections end when the mode sender goes (their `changed()` fails).
        self.acceptor.abort();
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: watch::Sender<Mode>,
    accepted: Arc<AtomicUsize>,
) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            // Out of descriptors and the like: transient, as for any server.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        let mut mode = mode.subscribe();
        tokio::spawn(async move {
            // A blackhole holds the client before upstream is dialled; a cut closes it.
            if !wait_forward(&mut mode).await {
                return;
            }
            // Upstream down: close the client, as the dead server would have.
            if let Ok(server) = TcpStream::connect(upstream).await {
                let _ = pump(client, server, &mut mode).await;
            }
        });
    }
}

/// Waits while blackholed; false when the connection must close (cut, or proxy dropped).
async fn wait_forward(mode: &mut watch::Receiver<Mode>) -> bool {
    loop {
        match *mode.borrow_and_update() {
            Mode::Forward => return true,
            Mode::Cut => return false,
            Mode::Blackhole => {}
        }
        if mode.changed().await.is_err() {
            return false;
        }
    }
}

/// Copies both ways (half-closes passed on) while the mode allows. Not
/// `copy_bidirectional`, which cannot pause for a blackhole without losing buffered bytes.
async fn pump(
    client: TcpStream,
    server: TcpStream,
    mode: &mut watch::Receiver<Mode>,
) -> std::io::Result<()> {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let mut up = vec![0u8; 16 * 1024];
    let mut down = vec![0u8; 16 * 1024];
    let (mut client_open, mut server_open) = (true, true);
    while client_open || server_open {
        if !wait_forward(mode).await {
            return Ok(());
        }
        tokio::select! {
            read = client_rx.read(&mut up), if client_open => match read? {
                0 => {
                    client_open = false;
                    server_tx.shutdown().await?;
                }
                n => server_tx.write_all(&up[..n]).await?,
            },
            read = server_rx.read(&mut down), if server_open => match read? {
                0 => {
                    server_open = false;
                    client_tx.shutdown().await?;
                }
                n => client_tx.write_all(&down[..n]).await?,
            },
            // A mode change: looked at again at the top of the loop.
            changed = mode.changed() => if changed.is_err() {
                return Ok(());
            },
        }
    }
    Ok(())
}
