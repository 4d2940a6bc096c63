//! Injecting the schedule's faults, one after another at their offsets, and counting what was
//! done.

use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::PgPool;

use super::fleet::Fleet;
use super::schedule::{BeemAnswer, Fault, Planned, TwilioAnswer};
use super::services::{Postgres, Redis};
use crate::config::Secret;
use crate::fakes::beem::{self as fake_beem, FakeBeem};
use crate::fakes::twilio::{self as fake_twilio, Behaviour, FakeTwilio};
use crate::queue::Queues;
use crate::settings::{self, Cipher, TwilioSettings};

/// Longer than the workers' Twilio timeout (15 s): the client gives up first.
const HANG: Duration = Duration::from_secs(20);
/// Longer than the workers' Beem timeout (30 s).
const BEEM_HANG: Duration = Duration::from_secs(35);

#[derive(Debug, Clone, Default, Serialize)]
pub struct Injected {
    pub kills: usize,
    pub redis_flushes: usize,
    pub pg_restarts: usize,
    /// Why PostgreSQL was not restarted, when it was not.
    pub pg_restarts_skipped: Option<String>,
    pub twilio_faults: usize,
    pub token_rotations: usize,
    pub beem_faults: usize,
    pub beem_outages: usize,
    /// Faults that could not be injected (the run goes on; the report shows them).
    pub errors: Vec<String>,
}

pub struct Injector<'a> {
    pub fleet: &'a mut Fleet,
    pub postgres: &'a Postgres,
    pub redis: &'a Redis,
    pub queues: &'a Queues,
    pub twilio: &'a FakeTwilio,
    pub beem: &'a FakeBeem,
    pub pool: &'a PgPool,
    pub cipher: &'a Cipher,
    pub done: Injected,
}

impl Injector<'_> {
    /// Injects every fault at its offset from `started`; returns when the last one is done.
    pub async fn run(&mut self, schedule: &[Planned], started: Instant) {
        for planned in schedule {
            tokio::time::sleep_until((started + planned.at()).into()).await;
            if let Err(e) = self.fleet.check() {
                self.done
                    .errors
                    .push(format!("checking the processes: {e:#}"));
            }
            if let Err(e) = self.inject(planned.fault).await {
                let e = format!(
                    "{} at {:.1} s: {e:#}",
                    planned.fault.name(),
                    planned.at().as_secs_f64()
                );
                eprintln!("chaos: {e}");
                self.done.errors.push(e);
            }
        }
    }

    async fn inject(&mut self, fault: Fault) -> anyhow::Result<()> {
        match fault {
            Fault::KillWorker {
                slot,
                restart_after_ms,
            } => {
                self.fleet.kill_worker(slot).await?;
                self.done.kills += 1;
                // The replacement starts a little later, so that the others carry the load.
                tokio::time::sleep(Duration::from_millis(restart_after_ms)).await;
                self.fleet.fill_slots()?;
            }
            Fault::FlushRedis => {
                self.redis.flush(self.queues).await?;
                self.done.redis_flushes += 1;
            }
            Fault::RestartPostgres { down_ms } => {
                if !self.postgres.can_restart() {
                    self.done
                        .pg_restarts_skipped
                        .get_or_insert_with(|| "no private PostgreSQL cluster".into());
                    return Ok(());
                }
                self.postgres
                    .restart(Duration::from_millis(down_ms))
                    .await?;
                self.done.pg_restarts += 1;
            }
            Fault::Twilio { answer, count } => {
                let behaviour = match answer {
                    TwilioAnswer::RateLimit => Behaviour::RateLimit(1),
                    TwilioAnswer::ServerError => Behaviour::ServerError(500),
                    TwilioAnswer::Hang => Behaviour::Hang(HANG),
                    TwilioAnswer::DropAnswer => Behaviour::AcceptAndDropAnswer,
                };
                self.twilio
                    .script(std::iter::repeat_n(behaviour, count as usize));
                self.done.twilio_faults += 1;
            }
            Fault::RotateTwilioToken => {
                let token = format!("chaos-rotated-token-{}", self.done.token_rotations + 1);
                // As an operator does it: a new primary token in Twilio's console (sends with
                // the old one are refused and pause sending), then the same in our settings,
                // which every process picks up on its next reload.
                self.twilio.rotate_token(&token);
                store_twilio(self.pool, self.cipher, &token).await?;
                self.done.token_rotations += 1;
            }
            Fault::Beem { answer, count } => {
                let behaviour = match answer {
                    BeemAnswer::RateLimit => fake_beem::Behaviour::RateLimit(1),
                    BeemAnswer::ServerError => fake_beem::Behaviour::ServerError(500),
                    BeemAnswer::Hang => fake_beem::Behaviour::Hang(BEEM_HANG),
                    BeemAnswer::DropAnswer => fake_beem::Behaviour::DropAnswer,
                };
                self.beem
                    .script(std::iter::repeat_n(behaviour, count as usize));
                self.done.beem_faults += 1;
            }
            Fault::BeemOutage { sends } => {
                let down = fake_beem::Behaviour::ServerError(503);
                self.beem.script(std::iter::repeat_n(down, sends as usize));
                self.done.beem_outages += 1;
            }
        }
        Ok(())
    }
}

/// The fake Twilio's account in operator settings, with `token`. Retried for a while: it may
/// run while PostgreSQL recovers from a restart.
pub async fn store_twilio(pool: &PgPool, cipher: &Cipher, token: &str) -> anyhow::Result<()> {
    let settings = TwilioSettings {
        account_sid: fake_twilio::ACCOUNT_SID.into(),
        auth_token: Secret::new(token),
        from: fake_twilio::FROM.into(),
    };
    let mut attempts = 0;
    loop {
        match settings::set_twilio(pool, cipher, &settings, "chaos").await {
            Ok(()) => return Ok(()),
            Err(e) if attempts >= 60 => return Err(e.into()),
            Err(_) => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
