//! Disputes on the fake's charges, as Stripe reports them: `charge.dispute.created` (a chargeback
//! `needs_response`, an inquiry `warning_needs_response`), then `charge.dispute.funds_withdrawn`
//! for a chargeback, `charge.dispute.updated` when evidence goes in (`under_review`), and
//! `charge.dispute.closed` (`won`, `lost`, or an inquiry's `warning_closed`) with the previous
//! status in `previous_attributes`.

use super::server::{automatic, random_id};
use super::*;

fn dispute_json(d: &FakeDispute, s: &FakeSession) -> Value {
    json!({
        "id": d.id, "object": "dispute", "amount": d.amount, "balance_transactions": [],
        "charge": s.charge, "created": d.created, "currency": s.currency,
        "evidence": { "customer_name": null, "uncategorized_text": null },
        "evidence_details": { "due_by": d.created + 7 * 86_400, "has_evidence": false,
                              "past_due": false, "submission_count": 0 },
        "is_charge_refundable": false, "livemode": false, "metadata": {},
        "payment_intent": s.payment_intent, "reason": d.reason, "status": d.status,
    })
}

impl FakeStripe {
    /// The cardholder's bank disputes `amount_minor` of the session's charge for `reason`
    /// (`fraudulent`, `product_not_received`, …): a chargeback (`created`, then
    /// `funds_withdrawn`), or with `inquiry` a retrieval request that takes no money yet. The
    /// dispute's id and the `created` delivery.
    pub async fn dispute(
        &self,
        session_id: &str,
        amount_minor: i64,
        reason: &str,
        inquiry: bool,
    ) -> (String, Delivery) {
        let (dispute, session) = {
            let session = self.with_session(session_id, |s| {
                assert_eq!(s.payment_status, "paid", "only a paid session has a charge");
                assert!(
                    amount_minor > 0 && amount_minor <= s.amount_charged,
                    "a dispute of {amount_minor} exceeds the charge of {}",
                    s.amount_charged
                );
                s.clone()
            });
            let d = FakeDispute {
                id: random_id("dp_", 24),
                session: session_id.to_string(),
                amount: amount_minor,
                reason: reason.to_string(),
                status: if inquiry {
                    "warning_needs_response"
                } else {
                    "needs_response"
                }
                .into(),
                created: Utc::now().timestamp(),
            };
            self.lock().disputes.push(d.clone());
            (d, session)
        };
        let object = dispute_json(&dispute, &session);
        let created = self
            .emit("charge.dispute.created", object.clone(), automatic())
            .await;
        if !inquiry {
            self.emit("charge.dispute.funds_withdrawn", object, automatic())
                .await;
        }
        (dispute.id, created)
    }

    /// Evidence submitted: `charge.dispute.updated` with the dispute `under_review`.
    pub async fn submit_dispute_evidence(&self, dispute_id: &str) -> Delivery {
        let (object, previous) = self.move_dispute(dispute_id, |d| {
            if d.status.starts_with("warning_") {
                "warning_under_review"
            } else {
                "under_review"
            }
        });
        let data = json!({ "object": object, "previous_attributes": { "status": previous } });
        self.emit_data("charge.dispute.updated", data, automatic())
            .await
    }

    /// The bank decided: `charge.dispute.closed` with `status` (`won`, `lost`, or
    /// `warning_closed` for an inquiry that ended without a chargeback).
    pub async fn close_dispute(&self, dispute_id: &str, status: &'static str) -> Delivery {
        assert!(matches!(status, "won" | "lost" | "warning_closed"));
        let (object, previous) = self.move_dispute(dispute_id, |_| status);
        let data = json!({ "object": object, "previous_attributes": { "status": previous } });
        self.emit_data("charge.dispute.closed", data, automatic())
            .await
    }

    /// Every dispute opened, in order.
    pub fn disputes(&self) -> Vec<FakeDispute> {
        self.lock().disputes.clone()
    }

    fn move_dispute(
        &self,
        dispute_id: &str,
        to: impl FnOnce(&FakeDispute) -> &'static str,
    ) -> (Value, String) {
        let mut inner = self.lock();
        let d = inner
            .disputes
            .iter_mut()
            .find(|d| d.id == dispute_id)
            .unwrap_or_else(|| panic!("the fake holds no dispute {dispute_id}"));
        assert!(
            !matches!(d.status.as_str(), "won" | "lost" | "warning_closed"),
            "dispute {dispute_id} is closed"
        );
        let next = to(d).to_string();
        let previous = std::mem::replace(&mut d.status, next);
        let d = d.clone();
        let session = inner
            .sessions
            .iter()
            .find(|s| s.id == d.session)
            .expect("the dispute's session")
            .clone();
        (dispute_json(&d, &session), previous)
    }
}
