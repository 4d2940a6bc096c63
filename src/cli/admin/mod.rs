//! `copcca-sms admin ...`: operator tasks. Each prints one JSON object with `--json`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;

mod companies;
mod rate_card;
mod reports;
mod routes;

use super::output;
use crate::config::Config;
use crate::config::Secret;
use crate::domain::{ApiKeyId, CompanyId, CreditDelta, PaymentId, Role};
use crate::http::JwtKeys;
use crate::providers::twilio::{Sender, TwilioClient};
use crate::queue::{DeadLetter, QUEUES, Queues};
use crate::{accounts, db, ledger, payments, settings};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Print exactly one JSON object on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    // create-company, update-company, companies, company-changes.
    #[command(flatten)]
    Company(companies::CompanyCommand),
    /// Reports for the operator.
    #[command(subcommand)]
    Report(reports::ReportCommand),
    /// The SMS routing table: which provider routes a destination's messages take.
    #[command(subcommand)]
    Routes(routes::RoutesCommand),
    /// The rate card: credits per segment by destination, and the special ranges.
    #[command(subcommand)]
    RateCard(rate_card::RateCardCommand),
    /// Create a user and print a JWT for it.
    CreateUser {
        /// Required except for super_admin.
        #[arg(long)]
        company: Option<CompanyId>,
        #[arg(long, value_parser = parse::<Role>)]
        role: Role,
        #[arg(long)]
        email: Option<String>,
        /// Lifetime of the printed token.
        #[arg(long, default_value_t = 30)]
        token_days: i64,
    },
    /// Create a company API key; the key is printed once and never again.
    CreateApiKey {
        #[arg(long)]
        company: CompanyId,
        #[arg(long)]
        name: String,
    },
    /// Revoke a company API key.
    RevokeApiKey {
        #[arg(long)]
        company: CompanyId,
        #[arg(long)]
        id: ApiKeyId,
    },
    /// Add (positive) or remove (negative) credits, with a reason.
    Adjust {
        #[arg(long)]
        company: CompanyId,
        #[arg(long, allow_hyphen_values = true)]
        credits: i64,
        #[arg(long)]
        reason: String,
        /// Makes a repeated command apply once (a UUID; a fresh one by default).
        #[arg(long)]
        idempotency_key: Option<uuid::Uuid>,
    },
    /// Show a company's balance.
    Balance {
        #[arg(long)]
        company: CompanyId,
    },
    /// Check every ledger invariant; exits 1 if any fails. A clean audit records a checkpoint
    /// (each company's entry sums so far).
    Audit {
        /// Read only the entries after the latest checkpoint and what they name (every balance
        /// and active hold too): seconds at any size. Run the full audit now and then as well.
        #[arg(long)]
        since_checkpoint: bool,
    },
    /// Store the central Twilio account in settings (the token encrypted with SETTINGS_KEY),
    /// after checking it with Twilio. The token is read from stdin unless given.
    SetTwilio {
        #[arg(long)]
        account_sid: String,
        /// An E.164 number, an alphanumeric sender id, or a Messaging Service SID (MG...).
        #[arg(long)]
        from: String,
        #[arg(long)]
        auth_token: Option<String>,
    },
    /// Approve a bank transfer that arrived: the payment becomes paid and its credits are
    /// added (approving again with the same bank reference changes nothing).
    ApproveTransfer {
        #[arg(long)]
        payment: PaymentId,
        /// The amount received, e.g. 25000.00.
        #[arg(long)]
        amount: rust_decimal::Decimal,
        #[arg(long)]
        currency: String,
        /// The bank's reference of the incoming transfer.
        #[arg(long)]
        bank_reference: String,
        /// Credits to grant instead of the package's; required for an under-payment.
        #[arg(long)]
        credits: Option<i64>,
    },
    /// Reject a bank transfer that will not be honoured.
    RejectTransfer {
        #[arg(long)]
        payment: PaymentId,
        #[arg(long)]
        reason: String,
    },
    /// Re-encrypt every stored secret with a new key, in one transaction (the old key is
    /// SETTINGS_KEY). Then set SETTINGS_KEY to the new key and restart every process. The new key
    /// (64 hex characters or base64 of 32 bytes) is read from stdin unless given.
    RotateSettingsKey {
        #[arg(long)]
        new_key: Option<String>,
    },
    /// The job queues: depth, dead letters, re-drive.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Enqueue an overdue-debt sweep now (every company with sweeps enabled, or one).
    Sweep {
        #[arg(long)]
        company: Option<CompanyId>,
        /// Names the run: a debt is reminded once per run, so repeating a run id sends nothing
        /// new. A fresh id by default.
        #[arg(long)]
        run: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Ready, in-flight, delayed and dead jobs per queue.
    Stats,
    /// List dead letters, oldest first (ids are `<queue>/<entry>`).
    Dead {
        /// Only this queue (default: all).
        #[arg(long)]
        queue: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one dead letter in full.
    Show { id: String },
    /// Send a dead letter back to its queue with a fresh attempt count.
    Retry { id: String },
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| e.to_string())
}

pub async fn run(config: &Config, args: AdminArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let command = match args.command {
        AdminCommand::Report(report) if report.csv() => {
            return reports::print_csv(config, report).await;
        }
        command => command,
    };
    match execute(config, command).await {
        Ok((value, code)) => {
            output::print(json, &value);
            Ok(code)
        }
        Err(e) if json => {
            output::print(true, &json!({ "error": format!("{e:#}") }));
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e),
    }
}

async fn execute(
    config: &Config,
    command: AdminCommand,
) -> anyhow::Result<(serde_json::Value, ExitCode)> {
    if let AdminCommand::Jobs(jobs) = command {
        return Ok((self::jobs(config, jobs).await?, ExitCode::SUCCESS));
    }
    let pool = db::migrate(&config.database_url, &config.database_schema).await?;
    let ok = |v: serde_json::Value| Ok((v, ExitCode::SUCCESS));
    match command {
        AdminCommand::Company(command) => ok(companies::execute(config, &pool, command).await?),
        AdminCommand::Report(command) => ok(reports::execute(&pool, command).await?),
        AdminCommand::Routes(command) => ok(routes::execute(&pool, command).await?),
        AdminCommand::RateCard(command) => ok(rate_card::execute(&pool, command).await?),
        AdminCommand::CreateUser {
            company,
            role,
            email,
            token_days,
        } => {
            anyhow::ensure!(
                company.is_some() || role == Role::SuperAdmin,
                "--company is required for {}",
                role.as_str()
            );
            anyhow::ensure!(
                (1..=3650).contains(&token_days),
                "--token-days must be 1..=3650"
            );
            if let Some(c) = company {
                anyhow::ensure!(
                    accounts::find_company(&pool, c).await?.is_some(),
                    "no company {c}"
                );
            }
            let user = accounts::create_user(&pool, company, role, email.as_deref()).await?;
            let token = JwtKeys::new(config).issue(user.id, chrono::Duration::days(token_days));
            ok(
                json!({ "id": user.id, "company_id": user.company_id, "role": role, "email": user.email, "token": token }),
            )
        }
        AdminCommand::CreateApiKey { company, name } => {
            anyhow::ensure!(
                accounts::find_company(&pool, company).await?.is_some(),
                "no company {company}"
            );
            let issued = accounts::create_api_key(&pool, company, &name).await?;
            let mut v = to_value(&issued.key);
            v["key"] = json!(issued.secret.expose());
            ok(v)
        }
        AdminCommand::RevokeApiKey { company, id } => {
            let revoked = accounts::revoke_api_key(&pool, company, id).await?;
            anyhow::ensure!(revoked, "no live API key {id} for company {company}");
            ok(json!({ "id": id, "company_id": company, "revoked": true }))
        }
        AdminCommand::Adjust {
            company,
            credits,
            reason,
            idempotency_key,
        } => {
            let delta = CreditDelta::new(credits)?;
            anyhow::ensure!(!reason.trim().is_empty(), "--reason must not be empty");
            let key = idempotency_key.unwrap_or_else(uuid::Uuid::now_v7);
            let applied = ledger::adjust(
                &mut *pool.acquire().await?,
                key,
                company,
                delta,
                reason.trim(),
                "cli:admin",
            )
            .await?;
            let balance = ledger::balance(&pool, company).await?;
            ok(json!({
                "adjustment_id": key, "company_id": company, "credits": applied.value.delta,
                "entry_id": applied.value.entry_id, "replay": applied.replay, "balance": balance,
            }))
        }
        AdminCommand::Balance { company } => ok(to_value(&ledger::balance(&pool, company).await?)),
        AdminCommand::Jobs(_) => unreachable!("handled above"),
        AdminCommand::Sweep { company, run } => {
            if let Some(c) = company {
                anyhow::ensure!(
                    accounts::find_company(&pool, c).await?.is_some(),
                    "no company {c}"
                );
            }
            let job = copcca_jobs::SweepOverdueDebts {
                company_id: company.map(|c| c.0),
                run: Some(run.unwrap_or_else(|| format!("admin:{}", uuid::Uuid::now_v7()))),
            };
            let queues = Queues::connect(&config.redis_url, &config.redis_prefix).await?;
            let enqueued = queues.enqueue(&job).await?;
            ok(json!({
                "job_id": enqueued.id, "fresh": enqueued.fresh,
                "company_id": job.company_id, "run": job.run,
            }))
        }
        AdminCommand::SetTwilio {
            account_sid,
            from,
            auth_token,
        } => {
            let key = config
                .settings_key
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("SETTINGS_KEY is required to store secrets"))?;
            anyhow::ensure!(
                account_sid.len() == 34 && account_sid.starts_with("AC"),
                "--account-sid must be AC followed by 32 characters"
            );
            let token = match auth_token {
                Some(t) => t,
                None => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim().to_string()
                }
            };
            anyhow::ensure!(!token.is_empty(), "the auth token is empty");
            let account = settings::TwilioSettings {
                account_sid,
                auth_token: Secret::new(token),
                from,
            };
            TwilioClient::new(
                config.twilio_api_base.clone(),
                &account.account_sid,
                account.auth_token.clone(),
                Sender::parse(&account.from),
                &config.public_url,
            )
            .check_account()
            .await
            .map_err(|e| anyhow::anyhow!("Twilio refused these credentials: {e}"))?;
            settings::set_twilio(&pool, &settings::Cipher::new(key), &account, "cli:admin").await?;
            ok(
                json!({ "account_sid": account.account_sid, "from": account.from, "auth_token": settings::mask(account.auth_token.expose()) }),
            )
        }
        AdminCommand::ApproveTransfer {
            payment,
            amount,
            currency,
            bank_reference,
            credits,
        } => {
            let approval = payments::Approval {
                amount,
                currency,
                bank_reference,
                credits,
            };
            let approved =
                payments::approve_transfer(&pool, payment, &approval, "cli:admin").await?;
            // Credit now, in this process: the same idempotent step the purchase worker takes.
            let providers = payments::PaymentProviders::from_config(config);
            payments::verify(&pool, &providers, payment).await?;
            let now = payments::find(&pool, approved.id)
                .await?
                .unwrap_or(approved);
            ok(to_value(&now))
        }
        AdminCommand::RejectTransfer { payment, reason } => {
            let rejected = payments::reject_transfer(&pool, payment, &reason, "cli:admin").await?;
            ok(to_value(&rejected))
        }
        AdminCommand::RotateSettingsKey { new_key } => {
            let old = config.settings_key.as_ref().ok_or_else(|| {
                anyhow::anyhow!("SETTINGS_KEY (the current key) is required to rotate it")
            })?;
            let new_key = match new_key {
                Some(k) => k,
                None => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim().to_string()
                }
            };
            let new = crate::config::parse_settings_key(&new_key)
                .map_err(|e| anyhow::anyhow!("--new-key {e}"))?;
            anyhow::ensure!(&new != old, "the new key is the current key");
            let rotation = settings::rotate_key(
                &pool,
                &settings::Cipher::new(old),
                &settings::Cipher::new(&new),
                "cli:rotate-settings-key",
            )
            .await?;
            let mut v = to_value(&rotation);
            v["next"] = json!(
                "set SETTINGS_KEY to the new key in every process's environment and restart them"
            );
            ok(v)
        }
        AdminCommand::Audit { since_checkpoint } => {
            let scope = if since_checkpoint {
                ledger::Scope::SinceCheckpoint
            } else {
                ledger::Scope::Full
            };
            let report = ledger::audit_and_checkpoint(&pool, scope).await?;
            let code = if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
            let mut v = to_value(&report);
            v["clean"] = json!(report.is_clean());
            Ok((v, code))
        }
    }
}

async fn jobs(config: &Config, command: JobsCommand) -> anyhow::Result<serde_json::Value> {
    let queues = Queues::connect(&config.redis_url, &config.redis_prefix).await?;
    let split = |id: &str| -> anyhow::Result<(String, String)> {
        let (queue, entry) = id
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("a dead-letter id looks like sms/1732400000000-0"))?;
        anyhow::ensure!(
            QUEUES.contains(&queue),
            "unknown queue {queue:?} (queues: {})",
            QUEUES.join(", ")
        );
        Ok((queue.to_string(), entry.to_string()))
    };
    let letter = |queue: &str, d: DeadLetter| {
        let mut v = to_value(&d);
        v["id"] = json!(format!("{queue}/{}", d.entry));
        v
    };
    match command {
        JobsCommand::Stats => {
            let stats = queues.stats().await?;
            Ok(
                json!({ "queues": stats.into_iter().map(|(q, s)| (q.to_string(), to_value(&s))).collect::<serde_json::Map<_, _>>() }),
            )
        }
        JobsCommand::Dead { queue, limit } => {
            let names: Vec<&str> = match &queue {
                Some(q) => {
                    anyhow::ensure!(
                        QUEUES.contains(&q.as_str()),
                        "unknown queue {q:?} (queues: {})",
                        QUEUES.join(", ")
                    );
                    vec![q.as_str()]
                }
                None => QUEUES.to_vec(),
            };
            let mut out = Vec::new();
            for q in names {
                for d in queues.store(q).dead_letters(None, limit).await? {
                    out.push(letter(q, d));
                }
            }
            Ok(json!({ "dead": out }))
        }
        JobsCommand::Show { id } => {
            let (queue, entry) = split(&id)?;
            let d = queues
                .store(&queue)
                .dead_letter(&entry)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no dead letter {id}"))?;
            Ok(letter(&queue, d))
        }
        JobsCommand::Retry { id } => {
            let (queue, entry) = split(&id)?;
            let job = queues
                .store(&queue)
                .redrive(&entry)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no dead letter {id}"))?;
            Ok(json!({ "id": id, "queue": queue, "job_id": job, "requeued": true }))
        }
    }
}

fn to_value<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("serialisable")
}
