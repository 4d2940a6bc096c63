//! Property test: random sequences of ledger operations over several companies, checked after
//! every step against a simple model and against the audit. Shrinks to a minimal failing sequence.
//! Reserving and charging go through the production send steps, one item at a time
//! (`support::reserve_one`, `commit_one`) or as a batch.

use std::time::Duration;

use copcca_sms::domain::{CompanyId, CreditDelta, HoldId, MessageId};
use copcca_sms::ledger;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sqlx::PgPool;

use crate::support::{
    OwnDatabase, commit_one, company_with, credits, message, paid_payment, reserve_one,
};

const COMPANIES: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Grant {
        c: usize,
        n: i64,
    },
    Take {
        c: usize,
        n: i64,
    },
    Purchase {
        c: usize,
        n: i64,
        confirmations: usize,
    },
    /// One new message's reservation: the send step with one item (`reserve_one`).
    Reserve {
        c: usize,
        n: i64,
    },
    /// The same, again, for a hold's message: a replay while the hold is active; nothing once
    /// the message is `sent` (committed); a new hold after a release.
    ReserveAgain {
        h: usize,
    },
    /// One hold's charge: the send step with one item (`commit_one`).
    Commit {
        h: usize,
        actual: i64,
    },
    Release {
        h: usize,
    },
    Refund {
        h: usize,
        times: usize,
    },
    /// The send workers' batched reserve, over new messages (company, credits).
    BeginBatch {
        items: Vec<(usize, i64)>,
    },
    /// The send workers' batched charge (hold, actual); a hold may appear twice.
    FinishBatch {
        items: Vec<(usize, i64)>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..COMPANIES;
    prop_oneof![
        1 => (c.clone(), 1..20i64).prop_map(|(c, n)| Op::Grant { c, n }),
        1 => (c.clone(), 1..20i64).prop_map(|(c, n)| Op::Take { c, n }),
        1 => (c.clone(), 1..50i64, 1..4usize).prop_map(|(c, n, confirmations)| Op::Purchase { c, n, confirmations }),
        3 => (c, 1..6i64).prop_map(|(c, n)| Op::Reserve { c, n }),
        1 => any::<usize>().prop_map(|h| Op::ReserveAgain { h }),
        3 => (any::<usize>(), 1..6i64).prop_map(|(h, actual)| Op::Commit { h, actual }),
        2 => any::<usize>().prop_map(|h| Op::Release { h }),
        2 => (any::<usize>(), 1..3usize).prop_map(|(h, times)| Op::Refund { h, times }),
        2 => prop::collection::vec((0..COMPANIES, 1..6i64), 1..6).prop_map(|items| Op::BeginBatch { items }),
        2 => prop::collection::vec((any::<usize>(), 1..6i64), 1..6).prop_map(|items| Op::FinishBatch { items }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Active,
    Committed { charged: i64, refunded: bool },
    Released,
}

struct ModelHold {
    c: usize,
    message: MessageId,
    id: HoldId,
    credits: i64,
    state: State,
}

#[derive(Default)]
struct Model {
    available: [i64; COMPANIES],
    reserved: [i64; COMPANIES],
    holds: Vec<ModelHold>,
}

async fn run_case(pool: &PgPool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let ttl = Duration::from_secs(60);
    let mut companies: Vec<CompanyId> = Vec::new();
    for _ in 0..COMPANIES {
        companies.push(company_with(pool, 0).await.id);
    }
    let mut m = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        let pick = |h: usize, m: &Model| {
            if m.holds.is_empty() {
                None
            } else {
                Some(h % m.holds.len())
            }
        };
        match op {
            Op::Grant { c, n } => {
                ledger::adjust(
                    &mut pool.acquire().await.unwrap(),
                    uuid::Uuid::now_v7(),
                    companies[c],
                    CreditDelta::new(n).unwrap(),
                    "p",
                    "p",
                )
                .await
                .unwrap();
                m.available[c] += n;
            }
            Op::Take { c, n } => {
                let r = ledger::adjust(
                    &mut pool.acquire().await.unwrap(),
                    uuid::Uuid::now_v7(),
                    companies[c],
                    CreditDelta::new(-n).unwrap(),
                    "p",
                    "p",
                )
                .await;
                prop_assert_eq!(
                    r.is_ok(),
                    m.available[c] >= n,
                    "step {}: take {} of {}",
                    step,
                    n,
                    m.available[c]
                );
                if r.is_ok() {
                    m.available[c] -= n;
                }
            }
            Op::Purchase {
                c,
                n,
                confirmations,
            } => {
                let payment = paid_payment(pool, companies[c], n).await;
                for i in 0..confirmations {
                    let r =
                        ledger::credit_purchase(&mut pool.acquire().await.unwrap(), payment, "p")
                            .await
                            .unwrap();
                    prop_assert_eq!(r.replay, i > 0);
                }
                m.available[c] += n;
            }
            Op::Reserve { c, n } => {
                let message = message(pool, companies[c], n).await;
                match reserve_one(
                    &mut pool.acquire().await.unwrap(),
                    companies[c],
                    message,
                    credits(n),
                    ttl,
                )
                .await
                {
                    Ok(Some(h)) => {
                        prop_assert!(
                            m.available[c] >= n,
                            "step {}: reserved {} with {}",
                            step,
                            n,
                            m.available[c]
                        );
                        m.available[c] -= n;
                        m.reserved[c] += n;
                        m.holds.push(ModelHold {
                            c,
                            message,
                            id: h.value.id,
                            credits: n,
                            state: State::Active,
                        });
                    }
                    Err(ledger::LedgerError::InsufficientCredits { .. }) => {
                        prop_assert!(m.available[c] < n)
                    }
                    other => {
                        return Err(TestCaseError::fail(format!("step {step}: {other:?}")));
                    }
                }
            }
            Op::ReserveAgain { h } => {
                let Some(i) = pick(h, &m) else { continue };
                let mh = &m.holds[i];
                let r = reserve_one(
                    &mut pool.acquire().await.unwrap(),
                    companies[mh.c],
                    mh.message,
                    credits(mh.credits),
                    ttl,
                )
                .await;
                match (mh.state, r) {
                    (State::Active, Ok(Some(a))) => {
                        prop_assert!(a.replay && a.value.id == mh.id)
                    }
                    // Committed: the charge marked the message `sent`, so the send step has
                    // nothing to do (`settled`; `ledger_reserve` answered AlreadyCharged).
                    (State::Committed { .. }, Ok(None)) => {}
                    // A released message may be reserved afresh; keep the model simple by
                    // releasing the new hold at once when it succeeds.
                    (State::Released, Ok(Some(a))) => {
                        prop_assert!(!a.replay);
                        ledger::release(&mut pool.acquire().await.unwrap(), a.value.id)
                            .await
                            .unwrap();
                    }
                    (State::Released, Err(ledger::LedgerError::InsufficientCredits { .. })) => {
                        prop_assert!(m.available[mh.c] < mh.credits)
                    }
                    (s, r) => {
                        return Err(TestCaseError::fail(format!(
                            "step {step}: {s:?} gave {r:?}"
                        )));
                    }
                }
            }
            Op::Commit { h, actual } => {
                let Some(i) = pick(h, &m) else { continue };
                let r = commit_one(
                    &mut pool.acquire().await.unwrap(),
                    m.holds[i].id,
                    credits(actual),
                )
                .await;
                expect_commit(&mut m, i, actual, r, step)?;
            }
            Op::Release { h } => {
                let Some(i) = pick(h, &m) else { continue };
                let mh = &mut m.holds[i];
                let r = ledger::release(&mut pool.acquire().await.unwrap(), mh.id).await;
                match (mh.state, r) {
                    (State::Active, Ok(a)) => {
                        prop_assert!(!a.replay);
                        m.available[mh.c] += mh.credits;
                        m.reserved[mh.c] -= mh.credits;
                        mh.state = State::Released;
                    }
                    (State::Released, Ok(a)) => prop_assert!(a.replay),
                    (State::Committed { .. }, Err(ledger::LedgerError::HoldCommitted { .. })) => {}
                    (s, r) => {
                        return Err(TestCaseError::fail(format!(
                            "step {step}: release on {s:?} gave {r:?}"
                        )));
                    }
                }
            }
            Op::Refund { h, times } => {
                let Some(i) = pick(h, &m) else { continue };
                let mh = &mut m.holds[i];
                for _ in 0..times {
                    let r =
                        ledger::refund(&mut pool.acquire().await.unwrap(), mh.message, "p", "p")
                            .await;
                    match (mh.state, r) {
                        (State::Committed { charged, refunded }, Ok(a)) => {
                            prop_assert_eq!(a.replay, refunded);
                            prop_assert_eq!(a.value.credits, charged);
                            if !refunded {
                                m.available[mh.c] += charged;
                                mh.state = State::Committed {
                                    charged,
                                    refunded: true,
                                };
                            }
                        }
                        (
                            State::Active | State::Released,
                            Err(ledger::LedgerError::NotCharged(_)),
                        ) => {}
                        (s, r) => {
                            return Err(TestCaseError::fail(format!(
                                "step {step}: refund on {s:?} gave {r:?}"
                            )));
                        }
                    }
                }
            }
            Op::BeginBatch { items } => {
                let mut batch = Vec::new();
                for &(c, n) in &items {
                    batch.push(ledger::BeginSend {
                        company: companies[c],
                        message: message(pool, companies[c], n).await,
                        credits: credits(n),
                        ttl,
                        seen: None, // a new message, never attempted
                        attempt: uuid::Uuid::now_v7(),
                        account: None,
                    });
                }
                let mut conn = pool.acquire().await.unwrap();
                let answers = ledger::begin_sends(&mut conn, &batch).await.unwrap();
                // As one reservation after another, in item order.
                for ((&(c, n), item), answer) in items.iter().zip(&batch).zip(answers) {
                    match answer {
                        Ok(Some(h)) => {
                            prop_assert!(!h.replay && m.available[c] >= n, "step {}", step);
                            m.available[c] -= n;
                            m.reserved[c] += n;
                            m.holds.push(ModelHold {
                                c,
                                message: item.message,
                                id: h.value.id,
                                credits: n,
                                state: State::Active,
                            });
                        }
                        Err(ledger::LedgerError::InsufficientCredits { available, .. }) => {
                            prop_assert!(m.available[c] < n, "step {}", step);
                            prop_assert_eq!(available, m.available[c], "step {}", step);
                        }
                        other => {
                            return Err(TestCaseError::fail(format!(
                                "step {step}: batch reserve gave {other:?}"
                            )));
                        }
                    }
                }
            }
            Op::FinishBatch { items } => {
                let Some(_) = pick(0, &m) else { continue };
                let picked: Vec<(usize, i64)> = items
                    .iter()
                    .map(|&(h, actual)| (h % m.holds.len(), actual))
                    .collect();
                let batch: Vec<ledger::FinishSend> = picked
                    .iter()
                    .map(|&(i, actual)| ledger::FinishSend {
                        hold: m.holds[i].id,
                        charge: credits(actual),
                        provider: "p".into(),
                        provider_id: format!("SM{}", m.holds[i].id),
                        segments: actual as i32,
                        uncharged: 0,
                        price: None,
                        price_currency: None,
                    })
                    .collect();
                let mut conn = pool.acquire().await.unwrap();
                let answers = ledger::finish_sends(&mut conn, &batch).await.unwrap();
                // As one after another: the first in-range charge of an active hold commits it.
                for (&(i, actual), answer) in picked.iter().zip(answers) {
                    expect_commit(&mut m, i, actual, answer, step)?;
                }
            }
        }
        for (c, company) in companies.iter().enumerate() {
            let b = ledger::balance(pool, *company).await.unwrap();
            prop_assert_eq!(
                (b.available.get(), b.reserved.get()),
                (m.available[c], m.reserved[c]),
                "step {}",
                step
            );
        }
        let report = ledger::audit(pool).await.unwrap();
        prop_assert!(report.is_clean(), "step {}: {:?}", step, report.violations);
    }
    Ok(())
}

/// Checks a charge of `actual` on hold `i` (alone or in a batch) against the model, and applies it.
fn expect_commit(
    m: &mut Model,
    i: usize,
    actual: i64,
    result: Result<ledger::Applied<ledger::Hold>, ledger::LedgerError>,
    step: usize,
) -> Result<(), TestCaseError> {
    let mh = &mut m.holds[i];
    match (mh.state, result) {
        (State::Active, Ok(a)) if actual <= mh.credits => {
            prop_assert!(!a.replay, "step {}", step);
            m.available[mh.c] += mh.credits - actual;
            m.reserved[mh.c] -= mh.credits;
            mh.state = State::Committed {
                charged: actual,
                refunded: false,
            };
        }
        (State::Active, Err(ledger::LedgerError::CommitOutOfRange { .. })) => {
            prop_assert!(actual > mh.credits, "step {}", step)
        }
        (State::Committed { charged, .. }, Ok(a)) => {
            prop_assert!(a.replay && charged == actual, "step {}", step)
        }
        (State::Committed { charged, .. }, Err(ledger::LedgerError::HoldCommitted { .. })) => {
            prop_assert_ne!(charged, actual, "step {}", step)
        }
        (State::Released, Err(ledger::LedgerError::HoldReleased(_))) => {}
        (s, r) => {
            return Err(TestCaseError::fail(format!(
                "step {step}: commit on {s:?} gave {r:?}"
            )));
        }
    }
    Ok(())
}

/// A database of its own for the whole property run (proptest drives a synchronous closure, so
/// this test builds its runtime and database itself rather than using `#[sqlx::test]`).
#[test]
fn random_operation_sequences_keep_every_invariant() {
    let db = OwnDatabase::create("copcca_props");
    let rt = &db.rt;

    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        rt.block_on(run_case(&db.pool, ops))
    });

    db.drop_database();
    if let Err(e) = result {
        panic!("{e}");
    }
}
