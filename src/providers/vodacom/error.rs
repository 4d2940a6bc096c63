//! OpenAPI failures, classified once here (by [`super::classify_code`] for the INS codes) so the
//! purchase flow only asks: settled (and why), unknown (query, never push again), or not done
//! (retry later).

use std::time::Duration;

use super::codes::{InsClass, classify_code};

/// An answer carrying an INS code other than a usable INS-0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsFault {
    pub http_status: u16,
    /// `INS-5`; empty when the body carried none (a gateway's page).
    pub code: String,
    pub desc: String,
}

impl InsFault {
    pub fn class(&self) -> InsClass {
        classify_code(&self.code)
    }
}

impl std::fmt::Display for InsFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.code.is_empty() {
            write!(f, "HTTP {}: {}", self.http_status, self.desc)
        } else {
            write!(f, "HTTP {} {}: {}", self.http_status, self.code, self.desc)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VodacomError {
    /// The OpenAPI settled this request: declined by or for the customer (INS-4/5/6/2006/2051),
    /// our configuration (INS-13/24/25/26, or INS-2 with a fresh session), a field it refused
    /// (INS-14/15/17..22), or a code not in the table. Sending it again gives the same answer;
    /// nothing was charged.
    #[error("vodacom refused the request: {0}")]
    Refused(InsFault),
    /// INS-16, or an overloaded gateway: nothing was done; retry with backoff.
    #[error("vodacom is unavailable: {0}")]
    Unavailable(InsFault),
    /// A payment request whose outcome is unknown: INS-1, INS-9, INS-10, INS-23, a timeout, a
    /// broken connection or an unreadable answer after it was sent. The customer may have paid:
    /// query it, and NEVER push it again.
    #[error("the outcome of the payment request is unknown: {0}")]
    Unknown(String),
    /// A query was sent and no usable answer came. Queries change nothing: retry.
    #[error("no answer from vodacom to a query: {0}")]
    Unanswered(String),
    /// No session: `getSession/` failed (INS-989, unreachable), or the session store (Redis)
    /// could not be read. Nothing was sent; retry, and the operator is alerted when it lasts.
    #[error("no vodacom session: {0}")]
    Session(String),
    /// The session was opened less than the wait ago (a new one takes up to 30 s to become
    /// usable): nothing was sent; try again after this long.
    #[error("the vodacom session is not live yet (about {0:?} to go)")]
    SessionNotLive(Duration),
    /// The request never left (connection refused, DNS, TLS): safe to retry.
    #[error("could not reach vodacom: {0}")]
    NotSent(String),
    /// We would not send this request (a reference too long, an amount that is not whole).
    #[error("invalid vodacom request: {0}")]
    Invalid(String),
}

impl VodacomError {
    /// Retrying cannot help: the request is settled (and nothing was charged).
    pub fn is_permanent(&self) -> bool {
        matches!(self, VodacomError::Refused(_) | VodacomError::Invalid(_))
    }

    /// Nothing happened at Vodacom: the same request may be sent again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            VodacomError::Unavailable(_)
                | VodacomError::Unanswered(_)
                | VodacomError::Session(_)
                | VodacomError::SessionNotLive(_)
                | VodacomError::NotSent(_)
        )
    }

    /// The payment may have happened: query, never push again.
    pub fn is_unknown(&self) -> bool {
        matches!(self, VodacomError::Unknown(_))
    }

    /// The INS answer, when there was one.
    pub fn fault(&self) -> Option<&InsFault> {
        match self {
            VodacomError::Refused(f) | VodacomError::Unavailable(f) => Some(f),
            _ => None,
        }
    }

    /// How soon asking again makes sense, when the error says (a session not live yet).
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            VodacomError::SessionNotLive(d) => Some(*d),
            _ => None,
        }
    }
}
