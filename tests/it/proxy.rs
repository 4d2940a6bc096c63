//! A TCP proxy on loopback that a test can cut and restore, to make a server unreachable for the
//! clients pointed at it (the workers' pool, say) while the server keeps running for the rest.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct CuttableProxy {
    pub addr: SocketAddr,
    cut: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl CuttableProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(false);
        let cuts = cut.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if *cuts.borrow() {
                    // Refused: closed before a byte is exchanged.
                    drop(inbound);
                    continue;
                }
                tokio::spawn(forward(inbound, upstream, cuts.subscribe()));
            }
        });
        CuttableProxy {
            addr,
            cut,
            accepting,
        }
    }

    /// From now on new connections are refused and live ones are dropped.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Connections go through again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}

/// Copies both ways until either side closes or the proxy is cut (both sockets are dropped).
async fn forward(mut inbound: TcpStream, upstream: SocketAddr, mut cut: watch::Receiver<bool>) {
    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
}
