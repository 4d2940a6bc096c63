//! `admin rate-card show | set | remove | enable-range | disable-range | changes`: the rate card
//! (`messages::rates`), each change recorded as `cli:admin`. Running processes see a change
//! within `SETTINGS_RELOAD_MS`.

use clap::Subcommand;
use serde_json::json;

use super::{parse, to_value};
use crate::messages::rates::{self, Edit, Rate, SpecialRange};

#[derive(Debug, Subcommand)]
pub(super) enum RateCardCommand {
    /// Every destination, the special ranges, and the latest change.
    Show,
    /// Price a destination (add it, or change its rate).
    Set {
        /// The number's leading digits without +: a calling code (44) or longer (4479).
        #[arg(long)]
        prefix: String,
        /// Credits per SMS segment (1..=1000).
        #[arg(long)]
        credits: i64,
        /// Refuse this prefix's numbers instead (a longer prefix may allow some back).
        #[arg(long)]
        forbid: bool,
    },
    /// Take a destination off the card: its numbers are refused unless a shorter prefix prices
    /// them.
    Remove {
        #[arg(long)]
        prefix: String,
    },
    /// Send to a special range (premium_rate, shared_cost, satellite); its
    /// numbers still need a rate.
    EnableRange {
        #[arg(value_parser = parse::<SpecialRange>)]
        range: SpecialRange,
    },
    /// Refuse a special range again.
    DisableRange {
        #[arg(value_parser = parse::<SpecialRange>)]
        range: SpecialRange,
    },
    /// The recorded changes of the card, newest first.
    Changes {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// The previous page's next_before.
        #[arg(long)]
        before: Option<i64>,
    },
}

const ACTOR: &str = "cli:admin";

pub(super) async fn execute(
    pool: &sqlx::PgPool,
    command: RateCardCommand,
) -> anyhow::Result<serde_json::Value> {
    let edit = match command {
        RateCardCommand::Show => return Ok(to_value(&rates::show(pool).await?)),
        RateCardCommand::Changes { limit, before } => {
            anyhow::ensure!((1..=200).contains(&limit), "--limit must be 1..=200");
            let changes = rates::changes(pool, before, limit).await?;
            let next_before = (changes.len() as i64 == limit)
                .then(|| changes.last().map(|c| c.id))
                .flatten();
            return Ok(json!({ "changes": changes, "next_before": next_before }));
        }
        RateCardCommand::Set {
            prefix,
            credits,
            forbid,
        } => Edit {
            set: vec![Rate {
                prefix: prefix.trim().trim_start_matches('+').to_string(),
                credits_per_segment: credits,
                allowed: !forbid,
            }],
            ..Edit::default()
        },
        RateCardCommand::Remove { prefix } => Edit {
            remove: vec![prefix.trim().trim_start_matches('+').to_string()],
            ..Edit::default()
        },
        RateCardCommand::EnableRange { range } => Edit {
            ranges: [(range, true)].into(),
            ..Edit::default()
        },
        RateCardCommand::DisableRange { range } => Edit {
            ranges: [(range, false)].into(),
            ..Edit::default()
        },
    };
    let problems = edit.check("--prefix");
    if !problems.is_empty() {
        let all: Vec<String> = problems
            .iter()
            .map(|p| {
                let field = match p.field.as_str() {
                    f if f.ends_with("credits_per_segment") => "--credits",
                    _ => "--prefix",
                };
                format!("{field}: {}", p.message)
            })
            .collect();
        anyhow::bail!("{}", all.join("; "));
    }
    let applied = rates::apply(pool, &edit, ACTOR).await?;
    if let Some(missing) = applied.not_found.first() {
        anyhow::bail!("{missing} is not on the rate card");
    }
    Ok(to_value(&applied))
}
