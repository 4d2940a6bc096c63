//! A message's states and every move between them ([`TRANSITIONS`]): the one list, which the
//! writers follow. Moves go forward, but for one: a retry puts a `sending` message back to
//! `queued` when nothing reached the provider. Delivery reports may arrive late, twice or out of
//! order; one that is not a move of the list is ignored.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
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

    /// Whether some writer may move a message in `self` to `next` ([`TRANSITIONS`]).
    pub fn may_become(self, next: MessageStatus) -> bool {
        TRANSITIONS.iter().any(|t| t.from == self && t.to == next)
    }

    /// Whether a delivery report saying `next` moves a message in `self`.
    pub fn reported_as(self, next: MessageStatus) -> bool {
        TRANSITIONS
            .iter()
            .any(|t| t.from == self && t.to == next && t.by == By::Report)
    }
}

/// Who moves a message's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The send flow's claim (`ledger::begin_sends`, SQL `send_begin_many`): credits reserved
    /// and the attempt claimed, in one statement.
    Claim,
    /// The send flow's charge (`ledger::finish_sends`, SQL `send_finish_many`): the provider
    /// took it; the hold is committed in the same statement.
    Charge,
    /// `store::requeue_attempt`: the provider did not take it (rate limited, 5xx, unreachable);
    /// the hold stays for the next attempt. Fenced on the run's attempt.
    Retry,
    /// `store::mark_failed`: refused by the provider, out of attempts, or short of credits.
    Fail,
    /// A delivery report (`store::apply_report`, from `reports::apply`).
    Report,
}

/// One move of a message's status, and who makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: MessageStatus,
    pub to: MessageStatus,
    pub by: By,
}

const fn t(from: MessageStatus, to: MessageStatus, by: By) -> Transition {
    Transition { from, to, by }
}

/// Every move a message's status makes. Nothing else writes `messages.status`.
pub const TRANSITIONS: [Transition; 11] = {
    use MessageStatus::*;
    [
        t(Queued, Sending, By::Claim),
        // A later run resumes an attempt whose answer never came (and which the provider does
        // not have): it claims the attempt again, keeping the hold.
        t(Sending, Sending, By::Claim),
        t(Sending, Queued, By::Retry),
        t(Sending, Sent, By::Charge),
        // A run that stalled while another run put its message back to `queued` still charges
        // what the provider took.
        t(Queued, Sent, By::Charge),
        t(Queued, Failed, By::Fail),
        t(Sending, Failed, By::Fail),
        t(Sent, Failed, By::Fail),
        t(Sent, Delivered, By::Report),
        t(Sent, Undelivered, By::Report),
        t(Sent, Failed, By::Report),
    ]
};

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
    fn status_only_moves_forward_but_for_a_retry_and_final_is_final() {
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
        assert!(Sending.may_become(Queued) && !Sending.reported_as(Queued));
        for t in super::TRANSITIONS {
            assert!(!t.from.is_final(), "{t:?} leaves a final state");
        }
    }
}
