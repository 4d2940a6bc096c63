//! Ledger scripts: tables of steps (an operation, its expected outcome, and the acting company's
//! `available` and `reserved` credits after it), run against fresh companies through the
//! production functions: reserving and charging are the send steps with one item
//! (`support::reserve_one`, `support::commit_one`), releasing is `ledger::release`, refunding
//! `ledger::refund`. After every step the runner also checks the audit, and that the holds in
//! the database are exactly the ones the steps made, in the states their answers gave.
//!
//! Messages are numbered by the script: message `i` is a new queued message of company A, made
//! when a step first names it. A hold is named by its message: the message's latest hold.

use std::collections::BTreeMap;
use std::time::Duration;

use copcca_sms::domain::{CompanyId, HoldId, MessageId};
use copcca_sms::ledger::{self, Applied, Hold, HoldStatus, LedgerError};
use sqlx::PgPool;

use super::TTL;
use crate::support::*;

/// One operation of a script, on message numbers.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// The send step's reservation of `n` credits for message `m` by its company, for `TTL`.
    Reserve(usize, i64),
    /// As `Reserve`, with a hold that expires at once.
    ReserveExpired(usize, i64),
    /// As `Reserve`, by company B, for company A's message `m`.
    ReserveAsB(usize, i64),
    /// The send step's charge of `n` credits on the latest hold of message `m`.
    Commit(usize, i64),
    /// `ledger::release` of the latest hold of message `m`.
    Release(usize),
    /// `ledger::refund` of message `m`.
    Refund(usize),
    /// Sets message `m`'s status by hand, to reach a state the steps alone do not.
    SetStatus(usize, &'static str),
    /// Checks message `m`'s status.
    Status(usize, &'static str),
    /// Checks that `ledger::expired_holds` lists the latest holds of exactly these messages.
    Expired(&'static [usize]),
    /// Checks the acting company's `total_sent`.
    TotalSent(i64),
}

/// The outcome a step expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Done for the first time: a new hold, the hold committed or released, a refund; or the
    /// check held.
    Done,
    /// A repeat: the same hold (or refund) as the first time, nothing moved.
    Replay,
    /// The send step's "nothing to do" (`Ok(None)`): the message is not queued or sending.
    Settled,
    /// The statement failed (a database error; nothing written).
    Failed,
    Insufficient {
        needed: i64,
        available: i64,
    },
    UnknownMessage,
    AlreadyCharged,
    HoldCommitted {
        charged: i64,
    },
    HoldReleased,
    OutOfRange {
        actual: i64,
        reserved: i64,
    },
    NotCharged,
}

/// A step: the operation, its outcome, then the acting company's (available, reserved).
pub type Step = (Op, Then, i64, i64);

/// What the runner knows of a hold from the answers it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Known {
    status: HoldStatus,
    charged: Option<i64>,
}

/// Runs `steps` against two fresh companies, A and B, each granted `grant` credits.
pub async fn run(pool: &PgPool, grant: i64, steps: &[Step]) {
    let a = company_with(pool, grant).await.id;
    let b = company_with(pool, grant).await.id;
    let mut messages: BTreeMap<usize, MessageId> = BTreeMap::new();
    let mut latest: BTreeMap<usize, HoldId> = BTreeMap::new();
    let mut holds: BTreeMap<HoldId, Known> = BTreeMap::new();
    for (i, &(op, then, want_available, want_reserved)) in steps.iter().enumerate() {
        let at = format!("step {} ({op:?})", i + 1);
        let m = match op {
            Op::Reserve(m, n) | Op::ReserveExpired(m, n) | Op::ReserveAsB(m, n) => {
                Some((m, n.max(1)))
            }
            Op::Commit(m, _)
            | Op::Release(m)
            | Op::Refund(m)
            | Op::SetStatus(m, _)
            | Op::Status(m, _) => Some((m, 1)),
            Op::Expired(_) | Op::TotalSent(_) => None,
        };
        if let Some((m, n)) = m
            && !messages.contains_key(&m)
        {
            messages.insert(m, message(pool, a, n).await);
        }
        let hold_of = |m: usize| *latest.get(&m).unwrap_or_else(|| panic!("{at}: no hold"));
        let mut conn = pool.acquire().await.unwrap();
        let (company, got) = match op {
            Op::Reserve(m, n) | Op::ReserveExpired(m, n) | Op::ReserveAsB(m, n) => {
                let (company, ttl) = match op {
                    Op::ReserveExpired(..) => (a, Duration::ZERO),
                    Op::ReserveAsB(..) => (b, TTL),
                    _ => (a, TTL),
                };
                let message = messages[&m];
                let answer = reserve_one(&mut conn, company, message, credits(n), ttl).await;
                let got = match answer {
                    Ok(None) => Then::Settled,
                    Ok(Some(h)) => {
                        let then = applied(&h);
                        assert_eq!(h.value.status, HoldStatus::Active, "{at}");
                        assert_eq!(h.value.message_id, message, "{at}");
                        if h.replay {
                            assert_eq!(Some(&h.value.id), latest.get(&m), "{at}: the same hold");
                        } else {
                            assert_eq!(h.value.credits.get(), n, "{at}");
                            assert!(!holds.contains_key(&h.value.id), "{at}: a new hold");
                            latest.insert(m, h.value.id);
                            holds.insert(h.value.id, known(&h.value));
                        }
                        then
                    }
                    Err(LedgerError::UnknownMessage(id)) => {
                        assert_eq!(id, message, "{at}");
                        Then::UnknownMessage
                    }
                    Err(LedgerError::AlreadyCharged { message: id, hold }) => {
                        assert_eq!((id, Some(&hold)), (message, latest.get(&m)), "{at}");
                        Then::AlreadyCharged
                    }
                    Err(e) => refusal(&at, e),
                };
                (company, got)
            }
            Op::Commit(m, n) => {
                let hold = hold_of(m);
                let got = match commit_one(&mut conn, hold, credits(n)).await {
                    Ok(h) => {
                        assert_eq!(h.value.id, hold, "{at}");
                        assert_eq!(h.value.status, HoldStatus::Committed, "{at}");
                        assert_eq!(h.value.charged, Some(n), "{at}: charged");
                        holds.insert(hold, known(&h.value));
                        applied(&h)
                    }
                    Err(LedgerError::HoldReleased(id)) => {
                        assert_eq!(id, hold, "{at}");
                        Then::HoldReleased
                    }
                    Err(e) => refusal(&at, e),
                };
                (a, got)
            }
            Op::Release(m) => {
                let hold = hold_of(m);
                let got = match ledger::release(&mut conn, hold).await {
                    Ok(h) => {
                        assert_eq!(h.value.id, hold, "{at}");
                        assert_eq!(h.value.status, HoldStatus::Released, "{at}");
                        holds.insert(hold, known(&h.value));
                        applied(&h)
                    }
                    Err(e) => refusal(&at, e),
                };
                (a, got)
            }
            Op::Refund(m) => {
                let got = match ledger::refund(&mut conn, messages[&m], "script", "test").await {
                    Ok(r) => {
                        let charged = latest.get(&m).and_then(|h| holds[h].charged);
                        assert_eq!(Some(r.value.credits), charged, "{at}: the charge back");
                        applied(&r)
                    }
                    Err(e) => refusal(&at, e),
                };
                (a, got)
            }
            Op::SetStatus(m, status) => {
                sqlx::query("UPDATE messages SET status = $2 WHERE id = $1")
                    .bind(messages[&m])
                    .bind(status)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                (a, Then::Done)
            }
            Op::Status(m, status) => {
                let is: String = sqlx::query_scalar("SELECT status FROM messages WHERE id = $1")
                    .bind(messages[&m])
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
                assert_eq!(is, status, "{at}");
                (a, Then::Done)
            }
            Op::Expired(ms) => {
                let mut listed: Vec<HoldId> = ledger::expired_holds(pool, 100)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|h| h.id)
                    .collect();
                let mut want: Vec<HoldId> = ms.iter().map(|&m| hold_of(m)).collect();
                listed.sort();
                want.sort();
                assert_eq!(listed, want, "{at}");
                (a, Then::Done)
            }
            Op::TotalSent(n) => {
                let b = ledger::balance(pool, a).await.unwrap();
                assert_eq!(b.total_sent, n, "{at}");
                (a, Then::Done)
            }
        };
        drop(conn);
        assert_eq!(got, then, "{at}: outcome");
        assert_eq!(
            (
                available(pool, company).await,
                reserved(pool, company).await
            ),
            (want_available, want_reserved),
            "{at}: (available, reserved)"
        );
        assert_eq!(stored_holds(pool, &[a, b]).await, holds, "{at}: the holds");
        let report = ledger::audit(pool).await.unwrap();
        assert!(report.is_clean(), "{at}: {:#?}", report.violations);
    }
}

fn applied<T>(a: &Applied<T>) -> Then {
    if a.replay { Then::Replay } else { Then::Done }
}

fn known(h: &Hold) -> Known {
    Known {
        status: h.status,
        charged: h.charged,
    }
}

/// The refusals whose fields say all there is to check.
fn refusal(at: &str, e: LedgerError) -> Then {
    match e {
        LedgerError::InsufficientCredits { needed, available } => {
            Then::Insufficient { needed, available }
        }
        LedgerError::HoldCommitted { charged, .. } => Then::HoldCommitted { charged },
        LedgerError::CommitOutOfRange { actual, reserved } => Then::OutOfRange { actual, reserved },
        LedgerError::NotCharged(_) => Then::NotCharged,
        LedgerError::Database(_) => Then::Failed,
        e => panic!("{at}: unexpected {e:?}"),
    }
}

async fn stored_holds(pool: &PgPool, companies: &[CompanyId]) -> BTreeMap<HoldId, Known> {
    let rows: Vec<(HoldId, String, Option<i64>)> =
        sqlx::query_as("SELECT id, status, charged FROM holds WHERE company_id = ANY ($1)")
            .bind(companies.iter().map(|c| c.0).collect::<Vec<_>>())
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(id, status, charged)| {
            let status = HoldStatus::try_from(status).unwrap();
            (id, Known { status, charged })
        })
        .collect()
}
