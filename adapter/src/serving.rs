//! The bot's HTTP servers (the webhook and the operator endpoint) on hyper, with bounds no
//! client can get round: a deadline for the request head, a cap on open connections, and a
//! shutdown that waits a bounded time for open connections before closing them. (axum's
//! own `serve` has none of these: a client sending half a request held SIGTERM for good.)

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// What one server allows its clients.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Connections open at once; beyond it new ones wait in the listen backlog.
    pub max_connections: usize,
    /// Time a client has to send a request's head (line and headers).
    pub header_read_timeout: Duration,
    /// Time open connections get to finish at shutdown before they are closed.
    pub shutdown_grace: Duration,
}

/// Serves `app` on `listener` until `stop` is cancelled; the task ends once every
/// connection has finished, or `shutdown_grace` after `stop` when some had not.
pub fn serve(
    name: &'static str,
    listener: TcpListener,
    app: Router,
    bounds: Bounds,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(bounds.header_read_timeout);
        let room = Arc::new(Semaphore::new(bounds.max_connections.max(1)));
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        loop {
            let permit = tokio::select! {
                _ = stop.cancelled() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                permit = Arc::clone(&room).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let stream = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of descriptors, typically: wait instead of spinning.
                        tracing::warn!(%error, server = name, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let service = TowerToHyperService::new(app.clone());
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            connections.spawn(async move {
                // Errors here are the client's (reset, timed out, malformed): nothing to do.
                if let Err(error) = connection.await {
                    tracing::debug!(%error, server = name, "connection ended");
                }
                drop(permit);
            });
        }
        drop(listener);
        // Idle connections close now, busy ones after their response.
        let closing = graceful.shutdown();
        let finished = async {
            closing.await;
            while connections.join_next().await.is_some() {}
        };
        if tokio::time::timeout(bounds.shutdown_grace, finished)
            .await
            .is_err()
        {
            tracing::warn!(
                server = name,
                open = connections.len(),
                "connections still open after {:?}: closed",
                bounds.shutdown_grace
            );
            connections.abort_all();
        }
    })
}
