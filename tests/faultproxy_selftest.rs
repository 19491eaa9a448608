//! The fault-injecting TCP proxy (tests/faultproxy) against a tiny echo server.

mod faultproxy;

use std::net::SocketAddr;
use std::time::Duration;

use faultproxy::FaultProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(5);
/// Long enough to tell "nothing arrives" on loopback.
const QUIET: Duration = Duration::from_millis(300);

async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut rx, mut tx) = stream.split();
                let _ = tokio::io::copy(&mut rx, &mut tx).await;
            });
        }
    });
    addr
}

async fn connect(proxy: &FaultProxy) -> TcpStream {
    TcpStream::connect(proxy.addr())
        .await
        .expect("connect to proxy")
}

/// Sends `text` and reads the echo back (both at once, so a large text cannot deadlock).
async fn roundtrip(stream: &mut TcpStream, text: &str) -> std::io::Result<String> {
    let (mut rx, mut tx) = stream.split();
    let mut buf = vec![0; text.len()];
    let (written, read) = tokio::join!(
        tx.write_all(text.as_bytes()),
        tokio::time::timeout(WAIT, rx.read_exact(&mut buf))
    );
    written?;
    read.map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// True when the peer closed (EOF or reset) within `WAIT`.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0; 16];
    matches!(
        tokio::time::timeout(WAIT, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn forwards_both_ways() {
    let proxy = FaultProxy::start(echo_server().await);
    let mut a = connect(&proxy).await;
    let mut b = connect(&proxy).await;
    assert_eq!(roundtrip(&mut a, "hello").await.expect("echo a"), "hello");
    assert_eq!(roundtrip(&mut b, "world").await.expect("echo b"), "world");
    let big = "x".repeat(200_000);
    assert_eq!(roundtrip(&mut a, &big).await.expect("big echo"), big);
    assert_eq!(proxy.accepted(), 2);
    // A half-close is passed on: the echo server then closes its side.
    a.shutdown().await.expect("half-close");
    assert!(closed(&mut a).await);
}

#[tokio::test]
async fn cut_closes_and_refuses_until_restore() {
    let proxy = FaultProxy::start(echo_server().await);
    let mut open = connect(&proxy).await;
    assert_eq!(
        roundtrip(&mut open, "before").await.expect("echo"),
        "before"
    );

    proxy.cut();
    assert!(closed(&mut open).await, "an open connection ends on cut");
    let mut fresh = connect(&proxy).await;
    assert!(
        roundtrip(&mut fresh, "during").await.is_err(),
        "a new connection gets no echo while cut"
    );

    proxy.restore();
    let mut again = connect(&proxy).await;
    assert_eq!(roundtrip(&mut again, "after").await.expect("echo"), "after");
}

#[tokio::test]
async fn blackhole_holds_bytes_until_restore() {
    let proxy = FaultProxy::start(echo_server().await);
    let mut open = connect(&proxy).await;
    assert_eq!(roundtrip(&mut open, "one").await.expect("echo"), "one");

    proxy.blackhole();
    let mut fresh = connect(&proxy).await;
    let mut buf = [0; 3];
    for stream in [&mut open, &mut fresh] {
        stream
            .write_all(b"two")
            .await
            .expect("write into blackhole");
        assert!(
            tokio::time::timeout(QUIET, stream.read(&mut buf))
                .await
                .is_err(),
            "nothing comes back from a blackhole, not even a close"
        );
    }

    proxy.restore();
    for stream in [&mut open, &mut fresh] {
        tokio::time::timeout(WAIT, stream.read_exact(&mut buf))
            .await
            .expect("echo after restore")
            .expect("read");
        assert_eq!(&buf, b"two");
    }
}

#[tokio::test]
async fn dead_upstream_and_dropped_proxy_close_clients() {
    // A port nobody listens on: the client is accepted, then closed.
    let unused = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead = unused.local_addr().expect("address");
    drop(unused);
    let proxy = FaultProxy::start(dead);
    assert!(closed(&mut connect(&proxy).await).await);

    let proxy = FaultProxy::start(echo_server().await);
    let mut open = connect(&proxy).await;
    assert_eq!(roundtrip(&mut open, "hi").await.expect("echo"), "hi");
    drop(proxy);
    assert!(
        closed(&mut open).await,
        "dropping the proxy closes its connections"
    );
}
