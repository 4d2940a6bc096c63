//! Each route's circuit breaker, held in Redis so the whole fleet sees one state
//! (`circuit.lua`). Repeated transient failures in a row (5xx, no connection, rate limited with
//! no end in sight) or one configuration error (credentials refused, sender not allowed, no
//! balance) open it: new sends skip the route for a while and go to the next one in their list.
//! Then one send probes it; its outcome closes it or opens it again.
//!
//! A send whose outcome is unknown never counts here and is never moved: it stays with its
//! route until resolved (moving it could deliver it twice).

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;
use serde::Serialize;

use super::RouteName;

static CIRCUIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("circuit.lua")));

/// When circuits open and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitSettings {
    /// Transient failures in a row that open a route's circuit.
    pub failures_to_open: u32,
    /// How long it stays open after them.
    pub open_for: Duration,
    /// How long it stays open after a configuration error (an operator has to act).
    pub configuration_open_for: Duration,
    /// How long the one probe of a half-open circuit has before another send may probe.
    pub probe_window: Duration,
}

impl Default for CircuitSettings {
    fn default() -> Self {
        CircuitSettings {
            failures_to_open: 5,
            open_for: Duration::from_secs(30),
            configuration_open_for: Duration::from_secs(300),
            probe_window: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    /// Its open time is over: one send probes it.
    HalfOpen,
}

/// A route's circuit as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Circuit {
    pub route: RouteName,
    pub state: CircuitState,
    /// Transient failures in a row so far.
    pub failures: u32,
    /// Until when it is open (Unix ms), when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_until_ms: Option<u64>,
    /// The last failure's reason.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// Every route's circuit.
#[derive(Clone)]
pub struct Circuits {
    conn: ConnectionManager,
    prefix: String,
    settings: CircuitSettings,
}

enum Event<'a> {
    Ask,
    Look,
    Ok,
    Transient(&'a str),
    Configuration(&'a str),
}

impl Circuits {
    pub fn new(conn: ConnectionManager, prefix: &str, settings: CircuitSettings) -> Self {
        Circuits {
            conn,
            prefix: prefix.to_string(),
            settings,
        }
    }

    /// Whether a new send may go through `route` now (closed, or this send is a half-open
    /// circuit's probe).
    pub async fn allows(&self, route: RouteName) -> redis::RedisResult<bool> {
        let c = self.run(route, Event::Ask, None).await?;
        Ok(c.state != CircuitState::Open)
    }

    /// The route answered (whatever it said about the message itself): closes its circuit,
    /// unless it is still open (a send that began before it opened says nothing about now).
    pub async fn succeeded(&self, route: RouteName) -> redis::RedisResult<()> {
        self.run(route, Event::Ok, None).await.map(drop)
    }

    /// [`Circuits::succeeded`] at `now_ms` (tests).
    pub async fn succeeded_at(&self, route: RouteName, now_ms: u64) -> redis::RedisResult<()> {
        self.run(route, Event::Ok, Some(now_ms)).await.map(drop)
    }

    /// The route failed in a way that says nothing about the message (5xx, unreachable).
    pub async fn failed(&self, route: RouteName, reason: &str) -> redis::RedisResult<Circuit> {
        self.run(route, Event::Transient(reason), None).await
    }

    /// The route refused our account or configuration: open at once.
    pub async fn misconfigured(
        &self,
        route: RouteName,
        reason: &str,
    ) -> redis::RedisResult<Circuit> {
        self.run(route, Event::Configuration(reason), None).await
    }

    /// The circuit now, changing nothing.
    pub async fn state(&self, route: RouteName) -> redis::RedisResult<Circuit> {
        self.run(route, Event::Look, None).await
    }

    /// [`Circuits::allows`] at `now_ms` instead of Redis's clock (tests).
    pub async fn allows_at(&self, route: RouteName, now_ms: u64) -> redis::RedisResult<bool> {
        let c = self.run(route, Event::Ask, Some(now_ms)).await?;
        Ok(c.state != CircuitState::Open)
    }

    /// [`Circuits::failed`] at `now_ms` (tests).
    pub async fn failed_at(
        &self,
        route: RouteName,
        reason: &str,
        now_ms: u64,
    ) -> redis::RedisResult<Circuit> {
        self.run(route, Event::Transient(reason), Some(now_ms))
            .await
    }

    async fn run(
        &self,
        route: RouteName,
        event: Event<'_>,
        now_ms: Option<u64>,
    ) -> redis::RedisResult<Circuit> {
        let (name, reason) = match event {
            Event::Ask => ("ask", ""),
            Event::Look => ("look", ""),
            Event::Ok => ("ok", ""),
            Event::Transient(r) => ("transient", r),
            Event::Configuration(r) => ("configuration", r),
        };
        let s = &self.settings;
        let (state, failures, until, reason): (i64, i64, i64, String) = CIRCUIT
            .key(format!("{}:circuit:{route}", self.prefix))
            .arg(name)
            .arg(s.failures_to_open)
            .arg(s.open_for.as_millis() as u64)
            .arg(s.configuration_open_for.as_millis() as u64)
            .arg(s.probe_window.as_millis() as u64)
            // Reasons come from provider answers: bounded, so a long body cannot bloat Redis.
            .arg(reason.chars().take(300).collect::<String>())
            .arg(now_ms.map(|n| n.to_string()).unwrap_or_default())
            .invoke_async(&mut self.conn.clone())
            .await?;
        let state = match state {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        };
        Ok(Circuit {
            route,
            state,
            failures: failures.max(0) as u32,
            open_until_ms: (until > 0 && state != CircuitState::Closed).then_some(until as u64),
            reason,
        })
    }
}
