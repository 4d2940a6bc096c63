//! The sends of a bulk route (Beem, Africa's Talking), grouped: concurrent send jobs hand their
//! message to one runner per account, which sends everything waiting as few requests as it can,
//! each to at most [`MAX_GROUP`] distinct numbers that share one body, and gives every job its
//! own recipient's answer. As with the ledger's group commit (`db::group_commit`), nothing waits
//! on a timer: a lone message leaves at once, and while the account's requests in flight are
//! out (each batch sends one request per body among the messages that were waiting), the next
//! batch forms. Each request holds one of the account's leases in flight (`pacing`) from just
//! before it leaves until its answer, so the cap holds across every worker process.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::answer::{self, SendError, Sent};
use super::bulk::{BulkError, Recipient, RecipientAnswer};
use crate::db::group_commit::GroupCommit;
use crate::domain::MessageId;
use crate::pacing::{LEASE_MARGIN, Pacer};

/// The most recipients in one request (both providers take 100).
pub const MAX_GROUP: usize = 100;

/// A client that sends one body to many recipients and answers per recipient.
pub trait BulkClient: Clone + Send + Sync + 'static {
    /// The runner's name in metrics (`copcca_group_batch_size{step}`).
    const STEP: &'static str;

    fn send_bulk(
        &self,
        recipients: &[Recipient],
        body: &str,
    ) -> impl Future<Output = Result<Vec<(MessageId, RecipientAnswer)>, BulkError>> + Send;

    /// The account the requests go to (the key of its leases in flight).
    fn account(&self) -> &str;

    /// The longest one request can take.
    fn timeout(&self) -> Duration;
}

/// One job's message, waiting for its group.
#[derive(Clone)]
struct Item {
    recipient: Recipient,
    body: Arc<str>,
}

type Runner = GroupCommit<Item, Result<Sent, SendError>>;

/// A bulk account's client and its (lazily started) group runner; cheap to clone.
#[derive(Clone)]
pub struct Grouped<C> {
    client: C,
    /// Requests in flight to the account at most, fleet-wide.
    in_flight: u32,
    runner: Arc<OnceLock<Runner>>,
}

impl<C: BulkClient> Grouped<C> {
    /// `client`'s sends, grouped, with at most `in_flight` requests to its account at once
    /// across the fleet.
    pub fn new(client: C, in_flight: u32) -> Self {
        Grouped {
            client,
            in_flight: in_flight.max(1),
            runner: Arc::default(),
        }
    }

    pub fn client(&self) -> &C {
        &self.client
    }

    /// Sends `body` to `recipient` in the next group, and returns that recipient's answer. The
    /// runner, started by the first send, takes its leases in flight through `pacer`.
    pub async fn send(
        &self,
        recipient: Recipient,
        body: &str,
        pacer: &Pacer,
    ) -> Result<Sent, SendError> {
        let runner = self.runner.get_or_init(|| {
            let leases = Leases {
                pacer: pacer.clone(),
                cap: self.in_flight,
                hold: self.client.timeout() + LEASE_MARGIN,
            };
            let client = self.client.clone();
            GroupCommit::start(C::STEP, MAX_GROUP, self.in_flight as usize, move |items| {
                let (client, leases) = (client.clone(), leases.clone());
                async move { Ok(send_groups(&client, &leases, items).await) }
            })
        });
        let item = Item {
            recipient,
            body: Arc::from(body),
        };
        // The runner may have sent the group before its answer was lost (a panic): unknown, so
        // held, never requeued to be sent again.
        runner.run(item).await.map_err(|e| {
            SendError::ambiguous(format!("the route's sender answered nothing: {e}"))
        })?
    }
}

/// The fleet's leases on one bulk account's requests in flight.
#[derive(Clone)]
struct Leases {
    pacer: Pacer,
    cap: u32,
    /// How long a lease is held at most (a worker that died mid-request frees it after this).
    hold: Duration,
}

impl Leases {
    /// Sends one request while holding a lease on the account's requests in flight. None free
    /// within a lease's hold (or Redis failing to say) means the request never left.
    async fn send<C: BulkClient>(
        &self,
        client: &C,
        recipients: &[Recipient],
        body: &str,
    ) -> Result<Vec<(MessageId, RecipientAnswer)>, BulkError> {
        let (account, lease) = (client.account(), uuid::Uuid::new_v4().to_string());
        let deadline = tokio::time::Instant::now() + self.hold;
        match (self.pacer)
            .wait_for_lease(account, &lease, self.cap, self.hold, deadline)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(BulkError::NotSent("no request in flight came free".into())),
            Err(e) => return Err(BulkError::NotSent(format!("no lease in flight: {e}"))),
        }
        let answer = client.send_bulk(recipients, body).await;
        self.pacer.give_back_lease(account, &lease).await;
        answer
    }
}

/// Sends `items` as groups of one body and distinct numbers, one request per group, and
/// answers each item in order.
async fn send_groups<C: BulkClient>(
    client: &C,
    leases: &Leases,
    items: Vec<Item>,
) -> Vec<Result<Sent, SendError>> {
    let groups = groups(&items);
    let mut answers: Vec<Option<Result<Sent, SendError>>> = vec![None; items.len()];
    let items = &items;
    let sends = groups.iter().map(|group| async move {
        let recipients: Vec<Recipient> =
            group.iter().map(|&i| items[i].recipient.clone()).collect();
        let body = &items[group[0]].body;
        (group, leases.send(client, &recipients, body).await)
    });
    for (group, answer) in futures::future::join_all(sends).await {
        match answer {
            Ok(per_recipient) => {
                for &i in group {
                    let ours = per_recipient
                        .iter()
                        .find(|(m, _)| *m == items[i].recipient.message)
                        .map(|(_, a)| answer::from_recipient(a.clone()))
                        .unwrap_or_else(|| {
                            Err(SendError::ambiguous(
                                "the answer did not name this recipient",
                            ))
                        });
                    answers[i] = Some(ours);
                }
            }
            Err(e) => {
                let e = SendError::from(e);
                for &i in group {
                    answers[i] = Some(Err(e.clone()));
                }
            }
        }
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(SendError::ambiguous("handed in twice in one batch"))))
        .collect()
}

/// The items' positions grouped: one body per group, each number at most once, at most
/// [`MAX_GROUP`] per group, in the order the items came. A message handed in twice (two runs
/// of its job at once) is sent once: its second item is in no group, and gets no answer but
/// "unknown" (the claim lets only one run send, so this never happens unless that breaks).
fn groups(items: &[Item]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        if !seen.insert(item.recipient.message) {
            continue;
        }
        let fits = groups.iter_mut().find(|g| {
            g.len() < MAX_GROUP
                && items[g[0]].body == item.body
                && g.iter()
                    .all(|&j| items[j].recipient.to != item.recipient.to)
        });
        match fits {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Country, E164};

    fn item(n: u32, to: &str, body: &str) -> Item {
        Item {
            recipient: Recipient {
                message: MessageId(uuid::Uuid::from_u128(n.into())),
                to: E164::parse_sms(to, Country::TZ).unwrap(),
            },
            body: Arc::from(body),
        }
    }

    #[test]
    fn groups_share_a_body_never_repeat_a_number_and_hold_at_most_a_hundred() {
        let mut items = vec![
            item(0, "0754000001", "a"),
            item(1, "0754000002", "b"),
            item(2, "0754000001", "a"), // the same number again: the next group
            item(3, "0754000003", "a"),
            item(3, "0754000003", "a"), // the same message again: sent once
        ];
        assert_eq!(groups(&items), vec![vec![0, 3], vec![1], vec![2]]);
        items = (0..250)
            .map(|n| item(n, &format!("0754{n:06}"), "same"))
            .collect();
        let sizes: Vec<usize> = groups(&items).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
    }
}
