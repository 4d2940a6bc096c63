//! The flood limit of `/webhooks`: requests per client address, counted in this process by
//! governor before anything touches the database (a flood of forged callbacks would otherwise
//! cost an insert each). Per process is what is wanted here, unlike the `/v1` limit
//! (`ratelimit`): it protects this process's database pool, and no fleet-wide figure is owed to
//! anyone. Over the limit: 429 problem+json with `Retry-After`, counted as a rejection
//! (`flooded`), nothing stored.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{ClientAddress, Config};
use crate::http::AppState;
use crate::http::problem::ApiError;
use crate::metrics;

/// Forget addresses whose budget is full again every this many checks, so that a sweep of
/// spoofed or rotating addresses cannot grow the table without end.
const RETAIN_EVERY: u64 = 4096;

/// The per-address budget of this process's `/webhooks`; cloned handles share it.
#[derive(Clone)]
pub struct FloodLimit {
    limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    source: ClientAddress,
    checks: Arc<AtomicU64>,
}

impl FloodLimit {
    /// `WEBHOOK_RATE_PER_SECOND` (0: off) and `WEBHOOK_RATE_BURST` per address, the address from
    /// `TRUSTED_PROXY_HEADER` / `TRUSTED_PROXY_HOPS` or the peer.
    pub fn new(config: &Config) -> Self {
        let limiter = NonZeroU32::new(config.webhook_rate_per_second).map(|rate| {
            let burst = NonZeroU32::new(config.webhook_rate_burst).unwrap_or(rate);
            Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        FloodLimit {
            limiter,
            source: config.client_address.clone(),
            checks: Arc::new(AtomicU64::new(0)),
        }
    }

    /// `Err(wait)` when `client` is over its budget.
    fn check(&self, client: IpAddr) -> Result<(), std::time::Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }
}

/// The address a request is counted under (see [`ClientAddress`]).
pub fn client_address(source: &ClientAddress, headers: &HeaderMap, peer: Option<IpAddr>) -> IpAddr {
    let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let ClientAddress::Header { name, hops } = source else {
        return peer;
    };
    // Every value of the header, in order, as one comma-separated list; the entry `hops` from
    // the right was written by the outermost of our proxies.
    let entries: Vec<&str> = headers
        .get_all(name.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    entries
        .len()
        .checked_sub(*hops)
        .and_then(|i| entries[i].parse().ok())
        .unwrap_or(peer)
}

/// Middleware on `/webhooks`: counts the request against its address and answers 429 when over.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = client_address(&state.webhook_flood.source, request.headers(), peer);
    match state.webhook_flood.check(client) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            // Inside `/webhooks`, the path starts with the provider's segment.
            let provider = request
                .uri()
                .path()
                .split('/')
                .nth(1)
                .filter(|p| ["twilio", "mpesa", "stripe"].contains(p))
                .unwrap_or("unknown");
            metrics::webhook_rejected(provider, "flooded");
            tracing::debug!(%client, "webhook flood limited");
            ApiError::webhook_flood(wait).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_address_is_the_entry_our_proxies_wrote() {
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let one = ClientAddress::Header {
            name: "x-forwarded-for".into(),
            hops: 1,
        };
        let two = ClientAddress::Header {
            name: "x-forwarded-for".into(),
            hops: 2,
        };
        // The caller wrote 1.1.1.1; our proxy appended what it saw.
        let h = headers(&["1.1.1.1, 203.0.113.7"]);
        assert_eq!(
            client_address(&one, &h, Some(peer)),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_address(&two, &h, Some(peer)),
            "1.1.1.1".parse::<IpAddr>().unwrap()
        );
        // Repeated headers are one list.
        let h = headers(&["1.1.1.1", "198.51.100.2"]);
        assert_eq!(
            client_address(&one, &h, Some(peer)),
            "198.51.100.2".parse::<IpAddr>().unwrap()
        );
        // Missing, too short or garbage: the peer.
        assert_eq!(client_address(&one, &HeaderMap::new(), Some(peer)), peer);
        assert_eq!(
            client_address(&two, &headers(&["1.1.1.1"]), Some(peer)),
            peer
        );
        assert_eq!(
            client_address(&one, &headers(&["nonsense"]), Some(peer)),
            peer
        );
        // Not trusted: the header is ignored.
        assert_eq!(client_address(&ClientAddress::Peer, &h, Some(peer)), peer);
    }
}
