//! The life model's provider: the fake Twilio behind the proxy the schedule controls (the
//! module above describes how requests travel and answers are held).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use copcca_sms::config::Secret;
use copcca_sms::fakes::twilio::{self as fake, Behaviour, FakeTwilio};
use copcca_sms::providers::SmsGateway;
use copcca_sms::providers::twilio::{Sender, TwilioClient};
use tokio::sync::oneshot;

use super::{Arrival, CLIENT_TIMEOUT, Outcome};

/// A request held on its way reaches Twilio by then at the latest, as a request that left within
/// its attempt's window does.
pub(super) const ARRIVAL_LIMIT: Duration = Duration::from_millis(250);
/// An answer the schedule has not delivered by then is lost (cut short), before the client gives
/// up, so that what the proxy records is what the client saw.
const HOLD_LIMIT: Duration = Duration::from_millis(400);

/// One create request as the proxy saw it.
#[derive(Debug, Clone)]
pub(super) struct Post {
    pub(super) at: Instant,
    /// The fake created a message for it.
    pub(super) created: bool,
    /// Its answer reached the client whole.
    pub(super) answered: bool,
}

/// Requests and answers held for the schedule, oldest first.
type Held = VecDeque<oneshot::Sender<()>>;

#[derive(Default)]
struct ProxyState {
    outcomes: VecDeque<(Outcome, Arrival)>,
    posts: Vec<Post>,
    held: Held,
    /// Deliver every answer at once (the run-out after the schedule).
    deliver_all: bool,
}

/// The schedule's handle on the provider: the fake Twilio behind a proxy that holds create
/// requests' answers.
#[derive(Clone)]
pub(super) struct Provider {
    pub(super) fake: FakeTwilio,
    proxy: url::Url,
    state: Arc<Mutex<ProxyState>>,
}

impl Provider {
    pub(super) async fn start(outcomes: Vec<(Outcome, Arrival)>) -> Provider {
        let fake = FakeTwilio::start().await.unwrap();
        let state = Arc::new(Mutex::new(ProxyState {
            outcomes: outcomes.into(),
            ..ProxyState::default()
        }));
        let provider = ProviderRoute {
            fake: fake.clone(),
            state: state.clone(),
            http: reqwest::Client::new(),
        };
        let app = axum::Router::new().fallback(relay).with_state(provider);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Provider { fake, proxy, state }
    }

    pub(super) fn client(&self, public_url: &copcca_sms::config::PublicUrl) -> SmsGateway {
        let client = TwilioClient::new(
            self.proxy.clone(),
            fake::ACCOUNT_SID,
            Secret::new(fake::AUTH_TOKEN),
            Sender::From(fake::FROM.into()),
            public_url,
        )
        .with_timeout(CLIENT_TIMEOUT);
        SmsGateway::Twilio(Box::new(client))
    }

    /// Requests and answers still held.
    pub(super) fn held(&self) -> usize {
        let mut s = self.state.lock().unwrap();
        s.held.retain(|r| !r.is_closed());
        s.held.len()
    }

    /// Lets the oldest held request arrive, or delivers the oldest held answer.
    pub(super) fn release(&self) {
        let mut s = self.state.lock().unwrap();
        while let Some(release) = s.held.pop_front() {
            if release.send(()).is_ok() {
                return;
            }
        }
    }

    pub(super) fn release_all(&self) {
        let mut s = self.state.lock().unwrap();
        s.deliver_all = true;
        for release in s.held.drain(..) {
            let _ = release.send(());
        }
    }

    pub(super) fn posts(&self) -> Vec<Post> {
        self.state.lock().unwrap().posts.clone()
    }
}

#[derive(Clone)]
struct ProviderRoute {
    fake: FakeTwilio,
    state: Arc<Mutex<ProxyState>>,
    http: reqwest::Client,
}

/// Forwards every request to the fake; a create request travels and gets the case's next
/// outcome, and its answer waits for the schedule.
async fn relay(
    State(p): State<ProviderRoute>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = format!("{}{}", p.fake.base.as_str().trim_end_matches('/'), uri);
    let forward = || {
        let mut req = p.http.request(method.clone(), &url).body(body.clone());
        for name in ["authorization", "content-type", "accept"] {
            if let Some(v) = headers.get(name) {
                req = req.header(name, v);
            }
        }
        req.send()
    };
    if method != Method::POST {
        return relayed(forward().await.unwrap()).await;
    }
    let (outcome, arrival) = p
        .state
        .lock()
        .unwrap()
        .outcomes
        .pop_front()
        .unwrap_or((Outcome::Accept, Arrival::AtOnce));
    let at = Instant::now();
    if arrival == Arrival::Held {
        // Let through by the schedule or, at the latest, by the limit: it arrives either way.
        let _ = tokio::time::timeout(ARRIVAL_LIMIT, p.hold()).await;
    }
    let before = p.fake.messages().len();
    let answer = match outcome {
        Outcome::Invalid => {
            twilio_error(400, 21211, "The 'To' number is not a valid phone number.")
        }
        _ => {
            p.fake.script([match outcome {
                Outcome::RateLimit => Behaviour::RateLimit(1),
                Outcome::ServerError => Behaviour::ServerError(500),
                _ => Behaviour::Accept,
            }]);
            relayed(forward().await.unwrap()).await
        }
    };
    let created = p.fake.messages().len() > before;
    let index = {
        let mut s = p.state.lock().unwrap();
        s.posts.push(Post {
            at,
            created,
            answered: false,
        });
        s.posts.len() - 1
    };
    if !matches!(tokio::time::timeout(HOLD_LIMIT, p.hold()).await, Ok(true)) {
        return broken();
    }
    if outcome == Outcome::AcceptLost {
        return broken();
    }
    p.state.lock().unwrap().posts[index].answered = true;
    answer
}

impl ProviderRoute {
    /// Waits for the schedule to release this request or answer (at once in the run-out).
    async fn hold(&self) -> bool {
        let (release, released) = oneshot::channel();
        {
            let mut s = self.state.lock().unwrap();
            if s.deliver_all {
                return true;
            }
            s.held.push_back(release);
        }
        released.await.is_ok()
    }
}

async fn relayed(r: reqwest::Response) -> Response {
    let mut out = Response::builder().status(r.status().as_u16());
    for name in ["content-type", "retry-after"] {
        if let Some(v) = r.headers().get(name) {
            out = out.header(name, v.as_bytes());
        }
    }
    out.body(Body::from(r.bytes().await.unwrap())).unwrap()
}

fn twilio_error(status: u16, code: i64, message: &str) -> Response {
    let body = serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// An answer cut short: the headers promise a body that never comes whole.
fn broken() -> Response {
    let chunks = futures::stream::iter([
        Ok::<_, std::io::Error>(Bytes::from_static(b"{\"sid\": \"SM")),
        Err(std::io::Error::other("connection reset")),
    ]);
    Response::builder()
        .status(StatusCode::CREATED)
        .header("content-type", "application/json")
        .body(Body::from_stream(chunks))
        .unwrap()
}
