//! The webhook event envelope and typed views of the objects we act on
//! (PROTOCOLS.md section 4). Parse only after the signature has been verified on the raw bytes.
//!
//! Delivery is at-least-once and may be out of order: dedupe on [`Event::id`], and treat the
//! object as a hint to re-read from the API, not as the truth about money.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::client::{CheckoutSession, null_as_empty};

/// `{id:"evt_…", object:"event", type, created, data:{object}, …}`; other fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    /// e.g. `checkout.session.completed`, `charge.refunded`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix time the event was created (not when it was delivered).
    pub created: i64,
    pub data: EventData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

/// The parts of a Charge that a refund event needs. `refunded` is true only once fully refunded;
/// `amount_refunded` is cumulative. Its `metadata` is the PaymentIntent's
/// (`payment_intent_data[metadata]`), never the session's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub id: String,
    pub amount: i64,
    pub amount_refunded: i64,
    pub refunded: bool,
    pub currency: String,
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub metadata: HashMap<String, String>,
}

/// The parts of a Dispute (the object of the `charge.dispute.*` events) we act on. `amount` is in
/// the currency's minor units; `status` is `warning_needs_response`, `needs_response`,
/// `under_review`, their `warning_` twins, or, closed, `won`, `lost` or `warning_closed` (an
/// inquiry that ended without a chargeback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub charge: String,
    #[serde(default)]
    pub payment_intent: Option<String>,
    pub reason: String,
    pub status: String,
}

impl Dispute {
    /// Closed in the merchant's favour: the money stays with us.
    pub fn is_won(&self) -> bool {
        matches!(self.status.as_str(), "won" | "warning_closed")
    }

    /// Closed against us: the money went back to the cardholder.
    pub fn is_lost(&self) -> bool {
        self.status == "lost"
    }
}

impl Event {
    /// The name in `data.object.object` (`checkout.session`, `charge`, …).
    pub fn object_kind(&self) -> Option<&str> {
        self.data.object.get("object").and_then(|v| v.as_str())
    }

    /// The session, when the object is a `checkout.session` (the `checkout.session.*` events).
    pub fn checkout_session(&self) -> Option<CheckoutSession> {
        (self.object_kind() == Some("checkout.session"))
            .then(|| serde_json::from_value(self.data.object.clone()).ok())
            .flatten()
    }

    /// The charge, when the object is a `charge` (e.g. `charge.refunded`).
    pub fn charge(&self) -> Option<Charge> {
        (self.object_kind() == Some("charge"))
            .then(|| serde_json::from_value(self.data.object.clone()).ok())
            .flatten()
    }

    /// The dispute, when the object is a `dispute` (the `charge.dispute.*` events).
    pub fn dispute(&self) -> Option<Dispute> {
        (self.object_kind() == Some("dispute"))
            .then(|| serde_json::from_value(self.data.object.clone()).ok())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completed_session_event() {
        let body = r#"{
  "id": "evt_1", "object": "event", "api_version": "2026-06-24.dahlia", "created": 1700000100,
  "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
  "type": "checkout.session.completed",
  "data": {"object": {"id": "cs_test_1", "object": "checkout.session", "status": "complete",
    "payment_status": "paid", "amount_total": 800, "currency": "usd", "client_reference_id": "p1",
    "payment_intent": "pi_1", "metadata": {"payment_id": "p1"}, "url": null}}
}"#;
        let e: Event = serde_json::from_str(body).unwrap();
        assert_eq!(e.kind, "checkout.session.completed");
        let s = e.checkout_session().unwrap();
        assert_eq!(
            (
                s.payment_status.as_str(),
                s.amount_total,
                s.payment_intent.as_deref()
            ),
            ("paid", Some(800), Some("pi_1"))
        );
        assert_eq!(e.charge(), None);
    }

    #[test]
    fn a_refunded_charge_event() {
        let body = r#"{"id":"evt_2","object":"event","created":1700000200,"type":"charge.refunded",
  "data":{"object":{"id":"ch_1","object":"charge","amount":800,"amount_captured":800,
  "amount_refunded":300,"refunded":false,"currency":"usd","payment_intent":"pi_1",
  "metadata":{"payment_id":"p1","company_id":"c1"},"status":"succeeded"},
  "previous_attributes":{"amount_refunded":0}}}"#;
        let e: Event = serde_json::from_str(body).unwrap();
        let c = e.charge().unwrap();
        assert_eq!((c.amount_refunded, c.refunded), (300, false));
        assert_eq!(c.metadata["company_id"], "c1");
        assert_eq!(e.checkout_session(), None);
    }

    #[test]
    fn other_objects_give_no_typed_view() {
        let e: Event = serde_json::from_str(
            r#"{"id":"evt_3","type":"terminal.reader.action_succeeded","created":1,"data":{"object":{"id":"rdr_123","object":"terminal.reader"}}}"#,
        )
        .unwrap();
        assert_eq!(e.object_kind(), Some("terminal.reader"));
        assert!(e.checkout_session().is_none() && e.charge().is_none());
    }
}
