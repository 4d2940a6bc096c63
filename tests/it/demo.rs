//! `copcca-sms demo --json`, the README's first command, run as a user would: it must finish in
//! under a minute with every purchase credited, the books adding up and a clean audit.

use std::process::Command;

use serde_json::Value;

#[tokio::test]
async fn the_demo_runs_end_to_end_and_its_books_add_up() {
    let out = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_copcca-sms"))
            .args(["demo", "--json"])
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_str(stdout.trim()).expect("one JSON summary");
    let n = |k: &str| s[k].as_i64().unwrap_or_else(|| panic!("{k} in {s}"));

    assert_eq!(s["audit_clean"], true, "{s}");
    assert!(s["seconds"].as_f64().unwrap() < 60.0, "{s}");
    let purchases = s["purchases"].as_array().unwrap();
    assert_eq!(purchases.len(), 4, "{s}");
    assert!(purchases.iter().all(|p| p[1] == "credited"), "{s}");
    // business (500) by M-Pesa and by transfer, pro (1,000) by card.
    assert_eq!(n("credits_bought"), 2500);
    assert_eq!(n("credits_reserved"), 0);
    assert_eq!(
        n("credits_bought") - n("credits_charged") + n("credits_refunded"),
        n("credits_available")
    );
    assert_eq!((n("messages_accepted"), n("messages_rejected")), (295, 5));
    assert_eq!(
        n("messages_delivered") + n("messages_undelivered") + n("messages_failed"),
        295
    );
    assert!(
        n("messages_failed") > 0 && n("messages_undelivered") > 0,
        "{s}"
    );
    // The routing table split the batch: Vodacom Tanzania numbers through Beem, Kenyan ones
    // through Africa's Talking (which reports its price), the rest through Twilio.
    let routes = s["routes"].as_array().unwrap();
    let by_route = |name: &str| {
        routes
            .iter()
            .find(|r| r["route"] == name)
            .unwrap_or_else(|| panic!("{name} in {s}"))
    };
    let counts: Vec<i64> = ["africastalking", "beem", "twilio"]
        .iter()
        .map(|r| by_route(r)["messages"].as_i64().unwrap())
        .collect();
    assert!(counts.iter().all(|&n| n > 90), "{s}");
    assert_eq!(counts.iter().sum::<i64>(), 295, "{s}");
    assert!(
        by_route("africastalking")["cost"]
            .as_str()
            .is_some_and(|c| c.starts_with("KES ")),
        "{s}"
    );
    // Every reminder is two segments: what was charged and refunded follows.
    assert_eq!(n("credits_charged"), 2 * 295);
    assert_eq!(
        n("credits_refunded"),
        2 * (n("messages_failed") + n("messages_undelivered"))
    );
}
