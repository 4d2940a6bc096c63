//! Africa's Talking's delivery report: a form-encoded POST to the URL set in its dashboard,
//! unsigned: `id`, `status`, `phoneNumber`, `networkCode`, `failureReason`, `retryCount`.

use serde::Deserialize;

use crate::providers::bulk::{DeliveryReport, DeliveryState, plus_form};

/// The report's fields as sent (all strings; `retryCount` too).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtReport {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub network_code: Option<String>,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub retry_count: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable Africa's Talking report: {0}")]
pub struct ReportError(pub String);

impl AtReport {
    /// Reads the form body.
    pub fn parse(body: &[u8]) -> Result<AtReport, ReportError> {
        serde_urlencoded::from_bytes(body).map_err(|e| ReportError(e.to_string()))
    }

    /// `Success` is delivered; `Failed` and `Rejected` failed (with `failureReason`); these three
    /// are final. `Sent`, `Submitted`, `Buffered`, `AbsentSubscriber`, `Expired` and anything
    /// new are not.
    pub fn neutral(&self) -> DeliveryReport {
        let (state, is_final) = match self.status.as_str() {
            "Success" => (DeliveryState::Delivered, true),
            "Failed" | "Rejected" => (
                DeliveryState::Failed {
                    reason: self
                        .failure_reason
                        .clone()
                        .filter(|r| !r.is_empty())
                        .unwrap_or_else(|| self.status.clone()),
                },
                true,
            ),
            _ => (DeliveryState::Pending, false),
        };
        DeliveryReport {
            provider_id: self.id.clone(),
            to: self.phone_number.as_deref().map(plus_form),
            state,
            is_final,
        }
    }
}

/// Reads a delivery report body into a neutral report.
pub fn parse_report(body: &[u8]) -> Result<DeliveryReport, ReportError> {
    AtReport::parse(body).map(|r| r.neutral())
}
