//! `copcca-sms admin routes`: the routing table without SQL (the same rules as
//! `PUT /admin/routes`).

use clap::Subcommand;
use serde_json::json;
use sqlx::PgPool;

use crate::domain::CompanyId;
use crate::routing::{self, RouteName, RouteRule, RoutingTable};

#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Print the table.
    Show,
    /// Replace the whole table (no --rule: every message through Twilio again).
    Set {
        /// `DEST[@COMPANY]=ROUTE[,ROUTE...]`, e.g. `255=beem,twilio`,
        /// `254@0190...=africastalking`, `*=twilio`; repeat for each rule.
        #[arg(long = "rule", value_parser = parse_rule)]
        rules: Vec<RouteRule>,
    },
}

fn parse_rule(s: &str) -> Result<RouteRule, String> {
    let (left, routes) = s
        .split_once('=')
        .ok_or("a rule is DEST[@COMPANY]=ROUTE[,ROUTE...]")?;
    let (destination, company) = match left.split_once('@') {
        Some((d, c)) => (d, Some(c.parse::<CompanyId>().map_err(|e| e.to_string())?)),
        None => (left, None),
    };
    Ok(RouteRule {
        destination: destination.to_string(),
        company_id: company,
        routes: routes
            .split(',')
            .map(|r| r.trim().parse::<RouteName>())
            .collect::<Result<_, _>>()?,
    })
}

pub async fn execute(pool: &PgPool, command: RoutesCommand) -> anyhow::Result<serde_json::Value> {
    let table = match command {
        RoutesCommand::Show => routing::load(pool).await?,
        RoutesCommand::Set { rules } => {
            let table = RoutingTable::new(rules)?;
            routing::replace(pool, &table, "cli").await?;
            table
        }
    };
    Ok(json!({ "rules": table.rules, "default": routing::DEFAULT_ROUTES }))
}

#[cfg(test)]
mod tests {
    use super::parse_rule;
    use crate::routing::RouteName::*;

    #[test]
    fn rules_read_from_the_command_line() {
        let r = parse_rule("255=beem, twilio").unwrap();
        assert_eq!(
            (r.destination.as_str(), r.company_id, r.routes),
            ("255", None, vec![Beem, Twilio])
        );
        let c = crate::domain::CompanyId::new();
        let r = parse_rule(&format!("254@{c}=africastalking")).unwrap();
        assert_eq!((r.company_id, r.routes), (Some(c), vec![Africastalking]));
        assert!(parse_rule("255").is_err());
        assert!(parse_rule("255=sms").unwrap_err().contains("unknown route"));
        assert!(parse_rule("255@nope=beem").is_err());
    }
}
