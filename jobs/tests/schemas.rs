//! The committed schemas match the types, and the payloads keep their wire
//! format.

use std::{collections::BTreeSet, fmt::Debug, fs, path::Path};

use copcca_jobs::{Job, Refund, RefundReason, SendSms, SweepOverdueDebts, VerifyPurchase};
use serde_json::{Value, json};
use uuid::Uuid;

const REGENERATE: &str =
    "regenerate with `cargo run -p copcca-jobs --example export_schemas` and commit jobs/schemas/";

#[test]
fn committed_schemas_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let expected = copcca_jobs::schema_files();
    for (name, text) in &expected {
        let path = dir.join(name);
        let committed = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}; {REGENERATE}", path.display()));
        assert!(
            committed == *text,
            "{} is out of date with the Rust types; {REGENERATE}",
            path.display()
        );
    }
    // A file for a job that no longer exists would mislead producers.
    let wanted: BTreeSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    for entry in fs::read_dir(&dir).expect("jobs/schemas exists") {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            wanted.contains(name.as_str()),
            "jobs/schemas/{name} belongs to no job; {REGENERATE}"
        );
    }
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// Round-trips `job` through JSON, checks it serializes to exactly `wire`,
/// and that its keys agree with the schema's properties and `required`.
fn check<J: Job + PartialEq + Debug>(job: J, wire: Value) {
    let value = serde_json::to_value(&job).unwrap();
    assert_eq!(value, wire, "{} wire format changed", J::NAME);
    let back: J = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(back, job);
    let text = serde_json::to_string(&job).unwrap();
    assert_eq!(serde_json::from_str::<J>(&text).unwrap(), job);

    let schema = schemars::schema_for!(J).to_value();
    let props = schema["properties"].as_object().expect("object schema");
    for key in value.as_object().unwrap().keys() {
        assert!(props.contains_key(key), "{}: {key} not in schema", J::NAME);
    }
    for req in schema["required"].as_array().into_iter().flatten() {
        assert!(value.get(req.as_str().unwrap()).is_some());
    }
    assert_eq!(schema["additionalProperties"], json!(false), "{}", J::NAME);
}

/// `wire` plus one field the type does not know must be refused.
fn rejects_unknown<J: Job + Debug>(mut wire: Value) {
    wire["surprise"] = json!(1);
    let err = serde_json::from_value::<J>(wire).unwrap_err();
    assert!(
        err.to_string().contains("unknown field"),
        "{}: {err}",
        J::NAME
    );
}

#[test]
fn payloads_round_trip_and_keep_their_wire_format() {
    let u = "00000000-0000-0000-0000-000000000001";
    check(
        VerifyPurchase {
            payment_id: id(1),
            trigger: "approval".into(),
        },
        json!({ "payment_id": u, "trigger": "approval" }),
    );
    // Payloads from before the trigger existed still decode.
    let old: VerifyPurchase = serde_json::from_value(json!({ "payment_id": u })).unwrap();
    assert_eq!(old.trigger, "");
    check(SendSms { message_id: id(1) }, json!({ "message_id": u }));
    for (reason, s) in [
        (RefundReason::Failed, "failed"),
        (RefundReason::Undelivered, "undelivered"),
        (RefundReason::Operator, "operator"),
        (RefundReason::Reconciler, "reconciler"),
    ] {
        check(
            Refund {
                message_id: id(1),
                reason,
            },
            json!({ "message_id": u, "reason": s }),
        );
        assert_eq!(reason.as_str(), s);
        assert_eq!(reason.to_string(), s);
    }
    check(
        SweepOverdueDebts {
            company_id: Some(id(1)),
            run: None,
        },
        json!({ "company_id": u }),
    );
    check(
        SweepOverdueDebts {
            company_id: None,
            run: Some("cron:1795500000".into()),
        },
        json!({ "company_id": null, "run": "cron:1795500000" }),
    );
    // Producers may leave the optional company and run out altogether.
    let all: SweepOverdueDebts = serde_json::from_str("{}").unwrap();
    assert_eq!(
        all,
        SweepOverdueDebts {
            company_id: None,
            run: None
        }
    );
}

#[test]
fn unknown_fields_and_bad_values_are_rejected() {
    let u = "00000000-0000-0000-0000-000000000001";
    rejects_unknown::<VerifyPurchase>(json!({ "payment_id": u }));
    rejects_unknown::<SendSms>(json!({ "message_id": u }));
    rejects_unknown::<Refund>(json!({ "message_id": u, "reason": "failed" }));
    rejects_unknown::<SweepOverdueDebts>(json!({ "company_id": u }));
    rejects_unknown::<SweepOverdueDebts>(json!({}));

    assert!(serde_json::from_value::<SendSms>(json!({})).is_err());
    assert!(serde_json::from_value::<SendSms>(json!({ "message_id": "nope" })).is_err());
    assert!(
        serde_json::from_value::<Refund>(json!({ "message_id": u, "reason": "Failed" })).is_err()
    );
    assert!(serde_json::from_value::<Refund>(json!({ "message_id": u })).is_err());
}

#[test]
fn names_and_queues_are_distinct() {
    let jobs = [
        (
            VerifyPurchase::NAME,
            VerifyPurchase::QUEUE,
            VerifyPurchase::MAX_ATTEMPTS,
        ),
        (SendSms::NAME, SendSms::QUEUE, SendSms::MAX_ATTEMPTS),
        (Refund::NAME, Refund::QUEUE, Refund::MAX_ATTEMPTS),
        (
            SweepOverdueDebts::NAME,
            SweepOverdueDebts::QUEUE,
            SweepOverdueDebts::MAX_ATTEMPTS,
        ),
    ];
    let names: BTreeSet<_> = jobs.iter().map(|j| j.0).collect();
    let queues: BTreeSet<_> = jobs.iter().map(|j| j.1).collect();
    // Names identify the job type on the wire and name the schema files.
    assert_eq!(names.len(), jobs.len(), "job names must be distinct");
    // One queue per kind of work, so one backlog cannot starve another.
    assert_eq!(queues.len(), jobs.len(), "queues must be distinct");
    for (name, queue, attempts) in jobs {
        for s in [name, queue] {
            assert!(
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s:?} is not snake_case"
            );
        }
        assert!(attempts >= 1, "{name} must be tried at least once");
    }
    let schema_names: Vec<_> = copcca_jobs::schemas().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        schema_names,
        jobs.map(|j| j.0),
        "schemas() must list every job"
    );
}

#[test]
fn contract_constants() {
    assert_eq!(
        (VerifyPurchase::QUEUE, VerifyPurchase::MAX_ATTEMPTS),
        ("purchases", 10)
    );
    assert_eq!((SendSms::QUEUE, SendSms::MAX_ATTEMPTS), ("sms", 8));
    assert_eq!((Refund::QUEUE, Refund::MAX_ATTEMPTS), ("refunds", 10));
    assert_eq!(
        (SweepOverdueDebts::QUEUE, SweepOverdueDebts::MAX_ATTEMPTS),
        ("sweeps", 3)
    );
}

#[test]
fn idempotency_keys() {
    let u = "00000000-0000-0000-0000-000000000001";
    assert_eq!(
        VerifyPurchase {
            payment_id: id(1),
            trigger: "stripe:evt_1".into(),
        }
        .idempotency_key(),
        format!("verify_purchase:{u}:stripe:evt_1")
    );
    assert_eq!(
        SendSms { message_id: id(1) }.idempotency_key(),
        format!("send_sms:{u}")
    );
    // One refund per message, whatever the reason.
    let failed = Refund {
        message_id: id(1),
        reason: RefundReason::Failed,
    };
    let rec = Refund {
        message_id: id(1),
        reason: RefundReason::Reconciler,
    };
    assert_eq!(failed.idempotency_key(), format!("refund:{u}"));
    assert_eq!(failed.idempotency_key(), rec.idempotency_key());
    assert_eq!(
        SweepOverdueDebts {
            company_id: Some(id(1)),
            run: None
        }
        .idempotency_key(),
        format!("sweep:{u}")
    );
    // The run is the unit of work: the same run twice is one, another run is new.
    let run = |r: &str| SweepOverdueDebts {
        company_id: None,
        run: Some(r.into()),
    };
    assert_eq!(run("cron:60").idempotency_key(), "sweep:all:cron:60");
    assert_ne!(
        run("cron:60").idempotency_key(),
        run("cron:120").idempotency_key()
    );
}
