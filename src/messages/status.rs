//! A message's states. Status only moves forward: queued -> sending -> sent -> a final state
//! (delivered, undelivered, failed), or straight to failed. Callbacks may arrive late, twice or
//! out of order; one that would move a message back is ignored.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 6] = [
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Undelivered,
        MessageStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Undelivered => "undelivered",
            MessageStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Twilio's status names, as in callbacks (`accepted`, `queued`, `sending` all mean it is on its way).
    pub fn from_twilio(s: &str) -> Option<Self> {
        match s {
            "accepted" | "queued" | "scheduled" | "sending" => Some(MessageStatus::Sending),
            "sent" => Some(MessageStatus::Sent),
            "delivered" | "read" => Some(MessageStatus::Delivered),
            "undelivered" => Some(MessageStatus::Undelivered),
            "failed" | "canceled" => Some(MessageStatus::Failed),
            _ => None,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageStatus::Delivered | MessageStatus::Undelivered | MessageStatus::Failed
        )
    }

    fn rank(self) -> u8 {
        match self {
            MessageStatus::Queued => 0,
            MessageStatus::Sending => 1,
            MessageStatus::Sent => 2,
            MessageStatus::Delivered | MessageStatus::Undelivered | MessageStatus::Failed => 3,
        }
    }

    /// Whether a message in `self` may move to `next`.
    pub fn may_become(self, next: MessageStatus) -> bool {
        !self.is_final() && next.rank() > self.rank()
    }
}

impl TryFrom<String> for MessageStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("unknown message status {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::*;

    #[test]
    fn status_only_moves_forward_and_final_is_final() {
        assert!(
            Queued.may_become(Sending) && Sending.may_become(Sent) && Sent.may_become(Delivered)
        );
        assert!(Queued.may_become(Failed) && Sent.may_become(Undelivered));
        assert!(
            !Delivered.may_become(Failed)
                && !Undelivered.may_become(Delivered)
                && !Failed.may_become(Sent)
        );
        assert!(!Sent.may_become(Sending) && !Sent.may_become(Sent));
    }
}
