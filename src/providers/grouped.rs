//! The sends of a bulk route (Beem, Africa's Talking), grouped: concurrent send jobs hand their
//! message to one runner per account, which sends everything waiting as few requests as it can,
//! each to at most [`MAX_GROUP`] distinct numbers that share one body, and gives every job its
//! own recipient's answer. As with the ledger's group commit (`db::group_commit`), nothing waits
//! on a timer: a lone message leaves at once, and while [`REQUESTS_IN_FLIGHT`] batches are out
//! (each one request per body among the messages that were waiting), the next batch forms.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use super::answer::{self, SendError, Sent};
use super::bulk::{BulkError, Recipient, RecipientAnswer};
use crate::db::group_commit::GroupCommit;
use crate::domain::MessageId;

/// The most recipients in one request (both providers take 100).
pub const MAX_GROUP: usize = 100;
/// Batches to one account at a time (a batch sends one request per body it holds).
pub const REQUESTS_IN_FLIGHT: usize = 2;

/// A client that sends one body to many recipients and answers per recipient.
pub trait BulkClient: Clone + Send + Sync + 'static {
    /// The runner's name in metrics (`copcca_group_batch_size{step}`).
    const STEP: &'static str;

    fn send_bulk(
        &self,
        recipients: &[Recipient],
        body: &str,
    ) -> impl Future<Output = Result<Vec<(MessageId, RecipientAnswer)>, BulkError>> + Send;
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
    runner: Arc<OnceLock<Runner>>,
}

impl<C: BulkClient> Grouped<C> {
    pub fn new(client: C) -> Self {
        Grouped {
            client,
            runner: Arc::default(),
        }
    }

    pub fn client(&self) -> &C {
        &self.client
    }

    /// Sends `body` to `recipient` in the next group, and returns that recipient's answer.
    pub async fn send(&self, recipient: Recipient, body: &str) -> Result<Sent, SendError> {
        let runner = self.runner.get_or_init(|| {
            let client = self.client.clone();
            GroupCommit::start(C::STEP, MAX_GROUP, REQUESTS_IN_FLIGHT, move |items| {
                let client = client.clone();
                async move { Ok(send_groups(&client, items).await) }
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

/// Sends `items` as groups of one body and distinct numbers, one request per group, and
/// answers each item in order.
async fn send_groups<C: BulkClient>(client: &C, items: Vec<Item>) -> Vec<Result<Sent, SendError>> {
    let groups = groups(&items);
    let mut answers: Vec<Option<Result<Sent, SendError>>> = vec![None; items.len()];
    let items = &items;
    let sends = groups.iter().map(|group| async move {
        let recipients: Vec<Recipient> =
            group.iter().map(|&i| items[i].recipient.clone()).collect();
        let body = &items[group[0]].body;
        (group, client.send_bulk(&recipients, body).await)
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
