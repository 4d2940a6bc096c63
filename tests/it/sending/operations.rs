//! Routine operations as faults (issue 15): a credential rotation while everything runs, the
//! provider refusing our credentials, unanswered sends that must never be resent blindly, late
//! reminders that expire.

use std::time::{Duration, Instant};

use copcca_sms::config::Secret;
use copcca_sms::domain::{CreditDelta, MessageId, Role};
use copcca_sms::fakes::twilio::{self as fake, Behaviour, FakeTwilio};
use copcca_sms::http::{self, AppState};
use copcca_sms::messages::MessageStatus;
use copcca_sms::queue::Queues;
use copcca_sms::settings::{self, Cipher, SettingsError, TwilioSettings};
use copcca_sms::workers::Deps;
use copcca_sms::{accounts, ledger};
use serde_json::json;
use sqlx::PgPool;

use super::*;
use crate::support::TestApp;

const KEY: &str = "0001020304050607080910111213141516171819202122232425262728293031";
const NEW_TOKEN: &str = "fake-twilio-auth-token-rotated";

/// `serve` and `work` as deployed with the account in settings, looking for changed settings
/// every 100 ms.
struct Deployed {
    app: TestApp,
    deps: Deps,
    twilio: FakeTwilio,
    company: accounts::Company,
    token: String,
    cipher: Cipher,
}

async fn deployed(pool: PgPool, extra: &[(&str, &str)]) -> Deployed {
    let twilio = FakeTwilio::start().await.unwrap();
    let prefix = format!("ops-{}", uuid::Uuid::new_v4().simple());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let api = twilio.base.to_string();
    let mut vars = vec![
        ("PUBLIC_URL", base.as_str()),
        ("REDIS_PREFIX", prefix.as_str()),
        ("SETTINGS_KEY", KEY),
        ("TWILIO_API_BASE", api.as_str()),
        ("SETTINGS_RELOAD_MS", "100"),
    ];
    vars.extend_from_slice(extra);
    let config = crate::support::config(&vars);
    let cipher = Cipher::new(&config.settings_key.unwrap());
    store_twilio(&pool, &cipher, fake::ACCOUNT_SID, fake::AUTH_TOKEN)
        .await
        .unwrap();
    let state = AppState::load(pool.clone(), config.clone()).await.unwrap();
    let served = state.clone();
    tokio::spawn(async move { http::serve(listener, served, std::future::pending()).await });
    let app = TestApp {
        base,
        client: reqwest::Client::new(),
        state,
    };
    let queues = Queues::connect(&crate::queue::redis_url(), &prefix)
        .await
        .unwrap();
    let deps = Deps::load(pool.clone(), queues, &config).await.unwrap();
    let company = accounts::create_company(&pool, "Duka la Mama", copcca_sms::domain::Country::TZ)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    ledger::adjust(
        &mut conn,
        uuid::Uuid::now_v7(),
        company.id,
        CreditDelta::new(10).unwrap(),
        "test",
        "test",
    )
    .await
    .unwrap();
    let token = app.token(Some(company.id), Role::Member).await;
    Deployed {
        app,
        deps,
        twilio,
        company,
        token,
        cipher,
    }
}

async fn store_twilio(
    pool: &PgPool,
    cipher: &Cipher,
    account: &str,
    token: &str,
) -> Result<(), SettingsError> {
    let t = TwilioSettings {
        account_sid: account.into(),
        auth_token: Secret::new(token),
        from: fake::FROM.into(),
    };
    settings::set_twilio(pool, cipher, &t, "test").await
}

impl Deployed {
    fn pool(&self) -> &PgPool {
        &self.deps.pool
    }

    /// Accepts a message (at any hour: quiet hours off) and returns its id.
    async fn accept(&self, body: &str) -> uuid::Uuid {
        let resp = self
            .app
            .client
            .post(self.app.url("/v1/messages"))
            .bearer_auth(&self.token)
            .json(&json!({"to": "0754123456", "body": body, "quiet_hours": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        let v: serde_json::Value = resp.json().await.unwrap();
        v["id"].as_str().unwrap().parse().unwrap()
    }

    async fn status(&self, id: uuid::Uuid) -> MessageStatus {
        store::find(self.pool(), MessageId(id))
            .await
            .unwrap()
            .unwrap()
            .status
    }

    async fn available(&self) -> i64 {
        ledger::balance(self.pool(), self.company.id)
            .await
            .unwrap()
            .available
            .get()
    }
}

/// Waits until `check` holds; fails after `limit`.
async fn within<F: AsyncFn() -> bool>(limit: Duration, check: F) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test]
async fn a_token_rotation_pauses_sending_instead_of_failing_and_the_new_token_resumes_it(
    pool: PgPool,
) {
    let d = deployed(pool, &[]).await;
    // The operator promotes a new token in Twilio's console before telling us.
    d.twilio.rotate_token(NEW_TOKEN);
    let paused_before = crate::support::process_counter(
        "copcca_provider_request_duration_seconds_count{provider=\"twilio\",operation=\"messages.create\",status=\"credentials_refused\"}",
    );
    let id = d.accept("Reminder").await;
    d.drain_for(Duration::from_secs(2)).await;
    assert_eq!(
        d.status(id).await,
        MessageStatus::Queued,
        "not failed: snoozed"
    );
    let pause = d
        .deps
        .pauses
        .status(fake::ACCOUNT_SID)
        .await
        .unwrap()
        .expect("sending is paused fleet-wide");
    assert!(pause.reason.contains("20003"), "{pause:?}");
    assert!(
        crate::support::process_counter(
            "copcca_provider_request_duration_seconds_count{provider=\"twilio\",operation=\"messages.create\",status=\"credentials_refused\"}"
        ) > paused_before
    );
    assert_eq!(
        copcca_sms::metrics::process_series("copcca_sending_paused{provider=\"twilio\"}"),
        Some(1.0)
    );
    // The status page says so.
    let admin = d.app.token(None, Role::SuperAdmin).await;
    let page = d
        .app
        .client
        .get(d.app.url("/admin"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sending is paused"), "{page}");
    // A second message waits too, without another refused request per message.
    let second = d.accept("Reminder two").await;
    let requests = d.twilio.requests().len();
    d.drain_for(Duration::from_secs(1)).await;
    assert_eq!(d.twilio.requests().len(), requests, "paused: nothing sent");

    // The operator stores the new token: the running workers pick it up and send.
    store_twilio(d.pool(), &d.cipher, fake::ACCOUNT_SID, NEW_TOKEN)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    d.drain_for(Duration::from_secs(20)).await;
    assert_eq!(d.status(id).await, MessageStatus::Sent);
    assert_eq!(d.status(second).await, MessageStatus::Sent);
    assert_eq!(d.twilio.messages().len(), 2, "each sent once");
    assert_eq!(d.available().await, 8, "each charged once");
    assert_audit_clean(d.pool()).await;
}

#[sqlx::test]
async fn a_pause_lifts_by_itself_when_the_provider_accepts_the_credentials_again(pool: PgPool) {
    let d = deployed(pool, &[]).await;
    d.twilio.rotate_token(NEW_TOKEN);
    let id = d.accept("Reminder").await;
    d.drain_for(Duration::from_secs(1)).await;
    assert!(
        d.deps
            .pauses
            .status(fake::ACCOUNT_SID)
            .await
            .unwrap()
            .is_some()
    );
    // The operator undoes the rotation at Twilio; our settings never changed. The next probe
    // (one per 30 s fleet-wide; the first is due now) finds the credentials working.
    d.twilio.rotate_token(fake::AUTH_TOKEN);
    d.drain_for(Duration::from_secs(20)).await;
    assert_eq!(d.status(id).await, MessageStatus::Sent);
    assert!(
        d.deps
            .pauses
            .status(fake::ACCOUNT_SID)
            .await
            .unwrap()
            .is_none()
    );
    assert_audit_clean(d.pool()).await;
}

#[sqlx::test]
async fn callbacks_signed_with_the_previous_token_count_during_the_grace_and_not_after(
    pool: PgPool,
) {
    let d = deployed(pool.clone(), &[]).await;
    let first = d.accept("Reminder").await;
    let second = d.accept("Reminder two").await;
    d.drain_for(Duration::from_secs(20)).await;
    let sids: Vec<String> = d.twilio.messages().iter().map(|m| m.sid.clone()).collect();
    assert_eq!(sids.len(), 2);
    // The rotation is stored first; Twilio still signs with the old token until the operator
    // promotes the new one there. serve picks the change up within its reload period.
    store_twilio(&pool, &d.cipher, fake::ACCOUNT_SID, NEW_TOKEN)
        .await
        .unwrap();
    d.serves_with(NEW_TOKEN).await;
    // The operator sees until when the previous token counts.
    let admin = d.app.token(None, Role::SuperAdmin).await;
    let view: serde_json::Value = d
        .app
        .client
        .get(d.app.url("/admin/settings/twilio"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let until: chrono::DateTime<chrono::Utc> = view["previous_token_accepted_until"]
        .as_str()
        .expect("shown during the grace")
        .parse()
        .unwrap();
    let left = until - chrono::Utc::now();
    assert!(
        left > chrono::Duration::hours(23) && left <= chrono::Duration::hours(24),
        "{view}"
    );
    assert!(!view.to_string().contains(NEW_TOKEN) && !view.to_string().contains(fake::AUTH_TOKEN));
    assert_eq!(
        d.twilio
            .callback(&sids[0], "delivered", None)
            .await
            .unwrap(),
        204,
        "signed with the previous token, within the grace"
    );
    d.twilio.rotate_token(NEW_TOKEN);
    assert_eq!(
        d.twilio
            .callback(&sids[1], "delivered", None)
            .await
            .unwrap(),
        204,
        "signed with the new token"
    );
    assert_eq!(d.status(first).await, MessageStatus::Delivered);
    assert_eq!(d.status(second).await, MessageStatus::Delivered);

    // With no grace (TWILIO_TOKEN_GRACE_SECS=0), the old token is refused.
    let strict = deployed(pool, &[("TWILIO_TOKEN_GRACE_SECS", "0")]).await;
    let id = strict.accept("Reminder").await;
    strict.drain_for(Duration::from_secs(20)).await;
    let sid = strict.twilio.messages()[0].sid.clone();
    store_twilio(strict.pool(), &strict.cipher, fake::ACCOUNT_SID, NEW_TOKEN)
        .await
        .unwrap();
    strict.serves_with(NEW_TOKEN).await;
    assert_eq!(
        strict
            .twilio
            .callback(&sid, "delivered", None)
            .await
            .unwrap(),
        403
    );
    assert_eq!(strict.status(id).await, MessageStatus::Sent, "unchanged");
}

#[sqlx::test]
async fn the_account_cannot_change_while_it_has_unresolved_sends(pool: PgPool) {
    let d = deployed(pool, &[]).await;
    let id = d.accept("Reminder").await;
    // Its send was claimed through the account and never answered.
    sqlx::query(
        "UPDATE messages SET status = 'sending', send_attempt_started_at = now(),
                             provider_account = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(fake::ACCOUNT_SID)
    .execute(d.pool())
    .await
    .unwrap();
    let other = "AC00000000000000000000000000000002";
    let refused = store_twilio(d.pool(), &d.cipher, other, fake::AUTH_TOKEN).await;
    assert!(
        matches!(
            refused,
            Err(SettingsError::AccountInUse { unresolved: 1, .. })
        ),
        "{refused:?}"
    );
    let stored = settings::twilio(d.pool(), Some(&d.cipher))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.account_sid, fake::ACCOUNT_SID, "nothing changed");
    // A new token for the same account is fine.
    store_twilio(d.pool(), &d.cipher, fake::ACCOUNT_SID, NEW_TOKEN)
        .await
        .unwrap();
    // Once the send is resolved, the account may change.
    sqlx::query("UPDATE messages SET status = 'failed' WHERE id = $1")
        .bind(id)
        .execute(d.pool())
        .await
        .unwrap();
    store_twilio(d.pool(), &d.cipher, other, fake::AUTH_TOKEN)
        .await
        .unwrap();
}

impl Deployed {
    /// Waits until `serve` verifies callbacks with `token` (at most 10 s: the bound for a
    /// settings change to reach every process).
    async fn serves_with(&self, token: &str) {
        within(Duration::from_secs(10), async || {
            self.app
                .state
                .providers
                .current()
                .twilio_callbacks
                .as_ref()
                .is_some_and(|k| k.current.expose() == token)
        })
        .await;
    }

    async fn drain_for(&self, limit: Duration) {
        crate::support::run_workers_until_idle(&self.deps, &["sms", "refunds"], limit).await;
    }
}

#[sqlx::test]
async fn an_unanswered_send_twilio_still_queues_is_found_and_never_sent_twice(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    // Twilio creates the message and the answer is lost; it stays in Twilio's queue (no
    // date_sent), which a list filtered on DateSent leaves out.
    h.twilio.script([Behaviour::AcceptAndDropAnswer]);
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(Duration::from_secs(2)).await;
    assert_eq!(h.message(id).await.status, MessageStatus::Sending);
    // Past its attempt's window, the reconciler's job looks it up.
    sqlx::query(
        "UPDATE messages SET send_attempt_started_at = now() - interval '10 minutes' WHERE id = $1",
    )
    .bind(id)
    .execute(h.pool())
    .await
    .unwrap();
    h.reconcile(Duration::from_secs(3600)).await;
    h.drain(DRAIN).await;
    assert!(
        h.twilio
            .lists()
            .iter()
            .all(|q| !q.iter().any(|(k, _)| k == "DateSent>")),
        "the lookup does not filter on DateSent"
    );
    h.assert_sent_once(id, 9).await;
}

#[sqlx::test]
async fn two_identical_unanswered_sends_each_adopt_their_own_sid(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    h.twilio.script([
        Behaviour::AcceptAndDropAnswer,
        Behaviour::AcceptAndDropAnswer,
    ]);
    let a = h.accept("0754123456", "Same words").await;
    let b = h.accept("0754123456", "Same words").await;
    h.drain(Duration::from_secs(2)).await;
    sqlx::query(
        "UPDATE messages SET send_attempt_started_at = now() - interval '10 minutes'
         WHERE id = ANY($1)",
    )
    .bind(vec![a, b])
    .execute(h.pool())
    .await
    .unwrap();
    h.reconcile(Duration::from_secs(3600)).await;
    h.drain(DRAIN).await;
    assert_eq!(h.twilio.messages().len(), 2, "nothing sent again");
    let (ma, mb) = (h.message(a).await, h.message(b).await);
    assert_eq!(
        (ma.status, mb.status),
        (MessageStatus::Sent, MessageStatus::Sent)
    );
    assert_ne!(ma.provider_id, mb.provider_id, "each its own SID");
    assert_eq!(h.available().await, 8);
    h.audit_clean().await;
}

#[sqlx::test]
async fn an_unanswered_send_twilio_does_not_show_is_held_until_its_deadline(pool: PgPool) {
    let mut h = Harness::new(pool, 10).await;
    h.deps.twilio_timing.resend_unanswered_after = Duration::from_secs(600);
    let id = h.accept("0754123456", "Reminder").await;
    // A send that reached Twilio as far as we can tell, with no trace there (say Twilio lost
    // it, or the list lags).
    let mut conn = h.pool().acquire().await.unwrap();
    h.hold(id, Duration::from_secs(3600)).await;
    mark_sending(&mut conn, id, Duration::from_secs(120)).await;
    h.drain(Duration::from_secs(3)).await;
    assert!(
        h.twilio.requests().is_empty(),
        "not sent again before its deadline"
    );
    let (status, unanswered): (MessageStatus, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT status, unanswered_since FROM messages WHERE id = $1")
            .bind(id)
            .fetch_one(h.pool())
            .await
            .unwrap();
    assert_eq!(status, MessageStatus::Sending);
    assert!(unanswered.is_some(), "shown to the operator as unanswered");
    // Past the deadline, it is sent again (once).
    mark_sending(&mut conn, id, Duration::from_secs(700)).await;
    h.reconcile(Duration::from_secs(3600)).await;
    h.drain(DRAIN).await;
    h.assert_sent_once(id, 9).await;
}

#[sqlx::test]
async fn a_late_callback_gives_an_unanswered_send_its_sid_and_it_is_charged_not_resent(
    pool: PgPool,
) {
    let h = Harness::new(pool, 10).await;
    h.twilio.script([Behaviour::AcceptAndDropAnswer]);
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(Duration::from_secs(2)).await;
    assert_eq!(h.message(id).await.status, MessageStatus::Sending);
    let sid = h.twilio.messages()[0].sid.clone();
    // Twilio's callback comes to the URL that names the message; the worker charges it.
    assert_eq!(h.twilio.callback(&sid, "sent", None).await.unwrap(), 204);
    h.drain(DRAIN).await;
    h.reconcile(Duration::from_secs(3600)).await;
    assert_eq!(
        h.twilio.callback(&sid, "delivered", None).await.unwrap(),
        204
    );
    assert!(h.twilio.lists().is_empty(), "no lookup needed");
    let m = h.message(id).await;
    assert_eq!(m.status, MessageStatus::Delivered);
    assert_eq!(m.provider_id.as_deref(), Some(sid.as_str()));
    assert_eq!(h.twilio.messages().len(), 1);
    assert_eq!(h.available().await, 9);
    h.audit_clean().await;
}

#[sqlx::test]
async fn a_success_after_the_hold_was_released_is_charged_and_never_resent(pool: PgPool) {
    let h = Harness::with_client_timeout(pool, 10, Some(Duration::from_secs(5))).await;
    // Twilio answers after 2 s; meanwhile the message's hold is released and the message put
    // back in the queue (as a run that took the send over and was refused a retry would leave
    // it, then the reconciler releasing its expired hold).
    h.twilio.script([Behaviour::Hang(Duration::from_secs(2))]);
    let id = h.accept("0754123456", "Reminder").await;
    let pool = h.pool().clone();
    let meddle = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let mut tx = pool.begin().await.unwrap();
        let hold: uuid::Uuid =
            sqlx::query_scalar("SELECT id FROM holds WHERE message_id = $1 AND status = 'active'")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        sqlx::query("UPDATE messages SET status = 'queued', send_attempt_id = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        ledger::release(&mut tx, copcca_sms::domain::HoldId(hold))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    });
    h.drain(DRAIN).await;
    meddle.await.unwrap();
    h.assert_sent_once(id, 9).await;
}

#[sqlx::test]
async fn an_expired_reminder_is_failed_and_refunded(pool: PgPool) {
    let h = Harness::new(pool, 10).await;
    let id = h.accept("0754123456", "Reminder").await;
    h.drain(DRAIN).await;
    let sid = h.twilio.messages()[0].sid.clone();
    assert_eq!(h.available().await, 9);
    // Twilio held it past its ValidityPeriod: failed, 30036.
    assert_eq!(
        h.twilio
            .callback(&sid, "failed", Some("30036"))
            .await
            .unwrap(),
        204
    );
    h.drain(DRAIN).await;
    let m = h.message(id).await;
    assert_eq!(
        (m.status, m.error_code.as_deref()),
        (MessageStatus::Failed, Some("30036"))
    );
    assert!(m.refunded);
    assert_eq!(h.available().await, 10, "refunded");
    h.audit_clean().await;
}
