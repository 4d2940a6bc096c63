//! The report printed as a table, one row per figure, then the violations and each company's
//! credits.

use super::{BEEM_PREFIX, Report};

impl Report {
    /// Prints the report as the table the run ends with.
    pub fn print(&self) {
        let r = &self.run;
        let m = &self.messages;
        let i = &self.injected;
        let c = &self.callbacks;
        let p = &self.providers;
        let rows: Vec<(&str, String)> = vec![
            ("seed", r.seed.to_string()),
            (
                "run",
                format!(
                    "{:.0} s, {} messages asked, {} companies, {} workers",
                    r.duration_secs, r.messages_requested, r.companies, r.workers
                ),
            ),
            (
                "requests",
                format!(
                    "{} single ({} sent twice with one key), {} batches; retried after: {:?}",
                    self.single_requests,
                    self.idempotent_replays,
                    self.batch_requests,
                    self.requests_retried
                ),
            ),
            (
                "messages accepted",
                format!("{} ({} stored)", m.accepted, m.stored),
            ),
            (
                "messages final",
                format!(
                    "{} (not final: {}; held, never at Beem: {})",
                    m.final_, m.not_final, m.held_never_at_beem
                ),
            ),
            ("messages sent", m.sent.to_string()),
            (
                "sent by route",
                p.split
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} ({} charged, {} to +{BEEM_PREFIX})",
                            r.route, r.sent, r.charged, r.vodacom_tz
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "delivered / undelivered / failed",
                format!("{} / {} / {}", m.delivered, m.undelivered, m.failed),
            ),
            ("refunded", m.refunded.to_string()),
            (
                "purchases credited",
                format!(
                    "{} of {} ({} credits) {:?}",
                    self.purchases.credited,
                    self.purchases.made,
                    self.purchases.credits_purchased,
                    self.purchases.by_method
                ),
            ),
            ("workers killed", i.kills.to_string()),
            (
                "processes restarted",
                format!(
                    "{} after exiting by themselves ({} on an error, e.g. no database at start)",
                    self.processes_restarted, self.processes_exited_on_error
                ),
            ),
            ("redis flushes", i.redis_flushes.to_string()),
            (
                "postgres restarts",
                match &i.pg_restarts_skipped {
                    Some(why) => format!("{} (skipped: {why})", i.pg_restarts),
                    None => i.pg_restarts.to_string(),
                },
            ),
            (
                "twilio faults",
                format!("{} (429 / 500 / hang / dropped answer)", i.twilio_faults),
            ),
            ("token rotations", i.token_rotations.to_string()),
            (
                "beem faults",
                format!(
                    "{} (429 / 500 / hang / dropped answer), {} outages",
                    i.beem_faults, i.beem_outages
                ),
            ),
            (
                "status callbacks",
                format!(
                    "{} posts for {} messages: {} twice, {} out of order, {} late, {} retried; refused: {:?}",
                    c.posted,
                    c.messages,
                    c.twice,
                    c.out_of_order,
                    c.late,
                    c.refused_then_retried,
                    c.refusals
                ),
            ),
            (
                "received by the fakes",
                p.received
                    .iter()
                    .map(|(route, n)| format!("{route} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("duplicates at providers", p.duplicates.to_string()),
            (
                "charged, never received",
                p.charged_not_received.to_string(),
            ),
            (
                "companies adding up",
                format!(
                    "{} of {}",
                    self.companies.iter().filter(|c| c.adds_up()).count(),
                    self.companies.len()
                ),
            ),
            (
                "audit",
                if self.audit_clean {
                    "clean"
                } else {
                    "VIOLATED"
                }
                .into(),
            ),
            (
                "time to quiesce",
                self.quiesce_secs
                    .map_or("never".into(), |s| format!("{s:.1} s")),
            ),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        println!("chaos run");
        for (k, v) in rows {
            println!("  {k:<width$}  {v}");
        }
        println!("  per company: credits = purchased - charged + refunded + adjusted");
        for c in &self.companies {
            println!(
                "    {}  {} = {} - {} + {} + {}  {}",
                c.company_id,
                c.credits,
                c.purchased,
                c.charged,
                c.refunded,
                c.adjusted,
                if c.adds_up() { "ok" } else { "WRONG" }
            );
        }
        if self.violations.is_empty() {
            println!("  PASSED: no violation");
        } else {
            println!("  FAILED: {} violations", self.violations.len());
            for v in &self.violations {
                println!("    - {v}");
            }
        }
    }
}
