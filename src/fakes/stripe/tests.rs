use super::*;

#[test]
fn wrong_keys_are_echoed_redacted() {
    assert_eq!(redact("sk_test_abcdefgh1234"), "sk_test_********1234");
    assert_eq!(redact("short"), "*****");
}

#[test]
fn bracket_params_are_grouped() {
    let params = vec![
        ("metadata[payment_id]".to_string(), "p".to_string()),
        (
            "payment_intent_data[metadata][company_id]".into(),
            "c".into(),
        ),
        ("mode".into(), "payment".into()),
    ];
    assert_eq!(
        bracketed(&params, "metadata"),
        BTreeMap::from([("payment_id".to_string(), "p".to_string())])
    );
    assert_eq!(
        bracketed(&params, "payment_intent_data[metadata]"),
        BTreeMap::from([("company_id".to_string(), "c".to_string())])
    );
}
