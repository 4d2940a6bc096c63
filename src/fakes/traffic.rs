//! What the bulk SMS fakes (Beem, Africa's Talking) share about load: a cap on requests per
//! second, a cap on requests answered at once, counts of both, and a switch that stops the
//! server so that connections are refused.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Load on one fake, behind its own lock.
#[derive(Debug, Default)]
pub struct Traffic {
    /// At most this many requests in any one-second window (`None`: no cap).
    pub per_second: Option<u32>,
    /// At most this many requests answered at once (`None`: no cap).
    pub max_in_flight: Option<usize>,
    window: Option<(Instant, u32)>,
    in_flight: usize,
    /// The most requests ever answered at once.
    pub peak_in_flight: usize,
    /// Requests refused for going past either cap.
    pub refused: usize,
}

impl Traffic {
    /// Admits one request now, or refuses it (past a cap). An admitted request counts in
    /// flight until the returned guard is dropped.
    pub fn admit(shared: &Arc<Mutex<Traffic>>) -> Option<InFlight> {
        let mut t = shared.lock().expect("lock");
        let now = Instant::now();
        let (start, count) = match t.window {
            Some((start, count)) if now.duration_since(start) < Duration::from_secs(1) => {
                (start, count)
            }
            _ => (now, 0),
        };
        let over_rate = t.per_second.is_some_and(|cap| count >= cap);
        let over_flight = t.max_in_flight.is_some_and(|cap| t.in_flight >= cap);
        if over_rate || over_flight {
            t.window = Some((start, count));
            t.refused += 1;
            return None;
        }
        t.window = Some((start, count + 1));
        t.in_flight += 1;
        t.peak_in_flight = t.peak_in_flight.max(t.in_flight);
        Some(InFlight(shared.clone()))
    }
}

/// One request being answered; dropped when answered or when the client hangs up.
pub struct InFlight(Arc<Mutex<Traffic>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut t) = self.0.lock() {
            t.in_flight = t.in_flight.saturating_sub(1);
        }
    }
}

/// Serves `app` on a free loopback port until `stop` is notified; then the listener closes and
/// new connections are refused.
pub async fn serve(app: axum::Router, stop: Arc<tokio::sync::Notify>) -> std::io::Result<url::Url> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = url::Url::parse(&format!("http://{}", listener.local_addr()?)).expect("URL");
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.notified().await })
            .await
    });
    Ok(base)
}

/// A loopback receiver of delivery reports for the tests: records every body posted to it
/// and answers 200.
#[cfg(test)]
pub(crate) async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/dlr",
        axum::routing::post(move |body: String| async move {
            sink.lock().expect("lock").push(body);
            "ok"
        }),
    );
    let base = serve(app, Arc::new(tokio::sync::Notify::new()))
        .await
        .expect("receiver");
    (format!("{base}dlr"), got)
}
