//! Every INS code the OpenAPI answers, classified once (PROTOCOLS.md section 8's table): the
//! client, the purchase flow and the tests all ask [`classify_code`].

/// What an `output_ResponseCode` means for the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsClass {
    /// INS-0: processed. For a payment, still to be confirmed by the status query.
    Success,
    /// INS-1 (internal error, seen masking insufficient funds), INS-9 (request timeout),
    /// INS-10 (duplicate: our ThirdPartyConversationID was used before), INS-23 (unknown
    /// status): the payment may have happened. Query it; never push again.
    Unknown,
    /// INS-4 (user not active), INS-5 (cancelled by the customer), INS-6 (failed), INS-2006
    /// (insufficient balance), INS-2051 (invalid MSISDN): the customer's payment failed; the
    /// reason is shown to the buyer.
    Declined,
    /// INS-13 (invalid shortcode), INS-24/25/26 (initiator, security credential, not
    /// authorised): our configuration is wrong. Alert the operator.
    Configuration,
    /// INS-14/15 (invalid reference, amount), INS-17..22 (field errors): a field we sent was
    /// refused; the same request will be refused again.
    Input,
    /// INS-16: temporary overload. Nothing was charged: retry with backoff.
    Busy,
    /// INS-2 (invalid API key) and INS-989 (session creation failed): refresh the session once.
    Session,
    /// A code not in the table: terminal, and logged.
    Unrecognised,
}

/// The class of an INS code (`"INS-0"`, any case, surrounding spaces ignored).
pub fn classify_code(code: &str) -> InsClass {
    let code = code.trim().to_ascii_uppercase();
    let Some(n) = code
        .strip_prefix("INS-")
        .and_then(|n| n.parse::<u32>().ok())
    else {
        return InsClass::Unrecognised;
    };
    match n {
        0 => InsClass::Success,
        1 | 9 | 10 | 23 => InsClass::Unknown,
        4 | 5 | 6 | 2006 | 2051 => InsClass::Declined,
        13 | 24 | 25 | 26 => InsClass::Configuration,
        14 | 15 | 17..=22 => InsClass::Input,
        16 => InsClass::Busy,
        2 | 989 => InsClass::Session,
        _ => InsClass::Unrecognised,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_of_the_table_has_its_class() {
        use InsClass::*;
        for (code, class) in [
            ("INS-0", Success),
            ("INS-1", Unknown),
            ("INS-2", Session),
            ("INS-4", Declined),
            ("INS-5", Declined),
            ("INS-6", Declined),
            ("INS-9", Unknown),
            ("INS-10", Unknown),
            ("INS-13", Configuration),
            ("INS-14", Input),
            ("INS-15", Input),
            ("INS-16", Busy),
            ("INS-17", Input),
            ("INS-18", Input),
            ("INS-19", Input),
            ("INS-20", Input),
            ("INS-21", Input),
            ("INS-22", Input),
            ("INS-23", Unknown),
            ("INS-24", Configuration),
            ("INS-25", Configuration),
            ("INS-26", Configuration),
            ("INS-2006", Declined),
            ("INS-2051", Declined),
            ("INS-989", Session),
            (" ins-0 ", Success),
        ] {
            assert_eq!(classify_code(code), class, "{code}");
        }
    }

    #[test]
    fn anything_else_is_unrecognised() {
        for code in ["INS-3", "INS-996", "INS-", "0", "", "E-1", "INS-x"] {
            assert_eq!(classify_code(code), InsClass::Unrecognised, "{code}");
        }
    }
}
