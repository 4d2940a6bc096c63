//! Beem's delivery reports: the push it posts to the URL set in its portal (JSON, unsigned) and
//! the items of its pull.

use serde::Deserialize;
use serde_json::Value;

use crate::providers::bulk::{DeliveryReport, DeliveryState, plus_form};

/// The `provider_id` of a Beem message: its request and our `recipient_id`, which is what a
/// report carries.
pub fn provider_id(request_id: &str, recipient_id: &str) -> String {
    format!("{request_id}:{recipient_id}")
}

/// A JSON string or number as text (Beem writes `request_id` as a number).
pub(super) fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v: Option<Value> = Option::deserialize(d)?;
    Ok(v.as_ref().and_then(text_of))
}

/// The push body: `{"request_id","recipient_id","dest_addr","status"}`. Beem's own receiver
/// samples read the field as `Status`, so both spellings are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BeemReport {
    #[serde(deserialize_with = "lenient")]
    pub request_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub recipient_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub dest_addr: Option<String>,
    #[serde(default, alias = "Status")]
    pub status: Option<String>,
}

/// What went wrong reading a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("unreadable Beem report: {0}")]
    Unreadable(String),
    #[error("Beem report without {0}")]
    Missing(&'static str),
}

/// Reads a push body into a neutral report.
pub fn parse_report(body: &[u8]) -> Result<DeliveryReport, ReportError> {
    let r: BeemReport =
        serde_json::from_slice(body).map_err(|e| ReportError::Unreadable(e.to_string()))?;
    let request_id = r.request_id.ok_or(ReportError::Missing("request_id"))?;
    let recipient_id = r.recipient_id.ok_or(ReportError::Missing("recipient_id"))?;
    let status = r.status.ok_or(ReportError::Missing("status"))?;
    let (state, is_final) = state_of(&status);
    Ok(DeliveryReport {
        provider_id: provider_id(&request_id, &recipient_id),
        to: r.dest_addr.as_deref().map(plus_form),
        state,
        is_final,
    })
}

/// `report` as Beem would push it, so a pulled report is stored (and read again) like a
/// pushed one. `None` when its provider id is not ours (`<request_id>:<recipient_id>`).
pub fn as_push(report: &DeliveryReport) -> Option<String> {
    let (request_id, recipient_id) = report.provider_id.split_once(':')?;
    let status = match &report.state {
        DeliveryState::Delivered => "DELIVERED",
        DeliveryState::Failed { reason } => reason.as_str(),
        DeliveryState::Pending => "PENDING",
    };
    let dest_addr = report.to.as_deref().map(|to| to.trim_start_matches('+'));
    Some(
        serde_json::json!({"request_id": request_id, "recipient_id": recipient_id,
                           "dest_addr": dest_addr, "status": status})
        .to_string(),
    )
}

/// What the sample receiver answers Beem: `{"request_id":…,"successful":true}`.
pub fn acknowledgement(request_id: &str) -> Value {
    serde_json::json!({"request_id": request_id, "successful": true})
}

/// `DELIVERED` is delivered; `UNDELIVERED`, `FAILED`, `REJECTED`, `EXPIRED` failed; anything
/// else (`PENDING`, `SENT`…) not final yet.
pub fn state_of(status: &str) -> (DeliveryState, bool) {
    match status.trim().to_ascii_uppercase().as_str() {
        "DELIVERED" => (DeliveryState::Delivered, true),
        "UNDELIVERED" | "FAILED" | "REJECTED" | "EXPIRED" => (
            DeliveryState::Failed {
                reason: status.to_string(),
            },
            true,
        ),
        _ => (DeliveryState::Pending, false),
    }
}

/// One item of the pull answer; `recipient_id` may be absent there.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct PulledReport {
    #[serde(default, deserialize_with = "lenient")]
    request_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    recipient_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    dest_addr: Option<String>,
    #[serde(default, alias = "Status")]
    status: Option<String>,
}

impl PulledReport {
    pub(super) fn neutral(self, asked_request_id: &str) -> DeliveryReport {
        let request_id = self.request_id.unwrap_or_else(|| asked_request_id.into());
        let (state, is_final) = state_of(self.status.as_deref().unwrap_or("PENDING"));
        DeliveryReport {
            provider_id: match self.recipient_id {
                Some(r) => provider_id(&request_id, &r),
                None => request_id,
            },
            to: self.dest_addr.as_deref().map(plus_form),
            state,
            is_final,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pulled_report_stored_as_a_push_reads_back_the_same() {
        for status in ["DELIVERED", "UNDELIVERED", "EXPIRED", "PENDING"] {
            let (state, is_final) = state_of(status);
            let pulled = DeliveryReport {
                provider_id: provider_id("4711", "0190a0b1-0000-7000-8000-000000000001"),
                to: Some("+255754123456".into()),
                state,
                is_final,
            };
            let body = as_push(&pulled).expect("our provider id");
            assert_eq!(parse_report(body.as_bytes()).unwrap(), pulled, "{status}");
        }
    }

    #[test]
    fn a_report_without_our_recipient_id_is_not_stored_as_ours() {
        let pulled = DeliveryReport {
            provider_id: "4711".into(),
            to: None,
            state: DeliveryState::Delivered,
            is_final: true,
        };
        assert_eq!(as_push(&pulled), None);
    }
}
