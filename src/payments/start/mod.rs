//! `POST /v1/purchases`: validate everything first (nothing is written for a bad request), write
//! the payment as `initiated`, then start the method: an STK Push, a Checkout Session, or bank
//! details with a reference. The row exists before any provider is asked, so an answer lost on
//! the way back is found again by the sweep or the provider's callback.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

mod provider;

use provider::{start_card, start_mpesa};

use super::packages;
use super::store::{self, NewPayment, Payment};
use super::{Method, PaymentError, PaymentProviders, Status};
use crate::accounts::Company;
use crate::domain::{Country, Currency, E164, PaymentId};

/// A purchase as the CRM asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRequest {
    pub package_id: String,
    pub method: Method,
    /// The M-Pesa wallet to prompt (required for `mpesa`).
    pub phone: Option<String>,
    /// Defaults to KES for M-Pesa and to the company's currency otherwise.
    pub currency: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The request is wrong: `(field, message)` pairs; nothing was written.
    #[error("invalid purchase: {0:?}")]
    Invalid(Vec<(&'static str, String)>),
    /// The method has no provider configured in this deployment (for this currency, when the
    /// method's provider depends on it: M-Pesa); nothing was written.
    #[error("{method} payments are not configured")]
    NotConfigured {
        method: &'static str,
        currency: Option<&'static str>,
    },
    /// The Idempotency-Key was used before for a different purchase.
    #[error("Idempotency-Key already used for another purchase ({0})")]
    KeyReused(PaymentId),
    /// The provider refused or could not be reached; the payment is recorded as failed.
    #[error("{detail}")]
    Provider {
        payment: Box<Payment>,
        /// `mpesa_rejected`, `mpesa_unavailable`, `stripe_rejected`, `stripe_unavailable`.
        code: &'static str,
        detail: String,
        /// True when asking again later may work.
        retryable: bool,
    },
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// How long an open payment may wait before the sweep settles it.
const MPESA_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Stripe's minimum session lifetime is 30 minutes; an hour leaves the buyer time.
pub(super) const CHECKOUT_WINDOW: Duration = Duration::from_secs(60 * 60);

/// A started purchase; `replay` when an earlier request with the same key started it.
#[derive(Debug)]
pub struct Started {
    pub payment: Payment,
    pub replay: bool,
}

/// Starts a purchase for `company`. A repeated `idempotency_key` returns the first payment.
pub async fn start_purchase(
    pool: &PgPool,
    providers: &PaymentProviders,
    company: &Company,
    req: &PurchaseRequest,
    requested_by: &str,
    idempotency_key: Option<&str>,
) -> Result<Started, StartError> {
    let checked = check(pool, providers, company, req).await?;

    if let Some(key) = idempotency_key {
        let mut conn = pool.acquire().await?;
        if let Some(existing) = store::find_by_key(&mut conn, company.id, key).await? {
            drop(conn);
            let replay = same_request(existing, req, &checked)?;
            return resume_unstarted(pool, providers, company, replay).await;
        }
    }

    let id = PaymentId::new();
    let token = (req.method == Method::Mpesa).then(callback_token);
    let token_hash = token.as_deref().map(token_hash);
    let window = match req.method {
        Method::Mpesa => Some(MPESA_WINDOW),
        Method::Card => Some(CHECKOUT_WINDOW + Duration::from_secs(600)),
        // An operator settles transfers; they do not expire by themselves.
        Method::BankTransfer => None,
    };
    let mut now = Utc::now();
    let payment = loop {
        let reference =
            (req.method == Method::BankTransfer).then(|| transfer_reference(company, now));
        let new = NewPayment {
            id,
            company: company.id,
            package_id: &req.package_id,
            method: req.method,
            credits: checked.credits,
            amount: checked.amount,
            currency: checked.currency.code(),
            phone: checked.phone.as_ref().map(E164::as_str),
            callback_token_hash: token_hash.as_deref(),
            transfer_reference: reference.as_deref(),
            requested_by,
            idempotency_key,
            expires_at: window.map(|w| now + chrono::Duration::from_std(w).expect("small")),
        };
        match insert_new(pool, &new).await {
            // Two transfers of one company in the same second: the next second is free.
            Err(e) if is_reference_clash(&e) => now += chrono::Duration::seconds(1),
            Err(e) => return Err(e),
            Ok(Some(p)) => break p,
            Ok(None) => {
                // A concurrent request with the same key won the insert.
                let key = idempotency_key.expect("only a keyed insert conflicts");
                let mut conn = pool.acquire().await?;
                let existing = store::find_by_key(&mut conn, company.id, key)
                    .await?
                    .ok_or(PaymentError::Invalid("Idempotency-Key conflict".into()))?;
                drop(conn);
                let replay = same_request(existing, req, &checked)?;
                return resume_unstarted(pool, providers, company, replay).await;
            }
        }
    };

    let payment = match req.method {
        Method::BankTransfer => payment,
        // Vodacom's payment call holds until the customer answers the prompt: the purchase
        // job makes it (`payments::verify`), never this request.
        Method::Mpesa if payment.is_vodacom() => payment,
        Method::Mpesa => {
            let url = providers.public_url.route(&format!(
                "/webhooks/mpesa/{}",
                token.expect("mpesa has a token")
            ));
            start_mpesa(
                pool,
                providers,
                payment,
                checked.phone.expect("checked"),
                &url,
            )
            .await?
        }
        Method::Card => start_card(pool, providers, payment, company).await?,
    };
    Ok(Started {
        payment,
        replay: false,
    })
}

/// Writes the payment (`initiated`, or `pending` at once for a transfer, which asks nothing of
/// a provider and waits for the money and an operator).
async fn insert_new(pool: &PgPool, new: &NewPayment<'_>) -> Result<Option<Payment>, StartError> {
    let mut tx = pool.begin().await?;
    let Some(mut payment) = store::insert(&mut tx, new).await? else {
        return Ok(None);
    };
    if new.method == Method::BankTransfer {
        store::set_status(
            &mut tx,
            &mut payment,
            Status::Pending,
            new.requested_by,
            serde_json::json!({ "reference": new.transfer_reference }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Some(payment))
}

fn is_reference_clash(e: &StartError) -> bool {
    let db = match e {
        StartError::Database(sqlx::Error::Database(db))
        | StartError::Payment(PaymentError::Database(sqlx::Error::Database(db))) => db,
        _ => return false,
    };
    db.constraint() == Some("payments_transfer_reference_key")
}

struct Checked {
    credits: i64,
    amount: Decimal,
    currency: Currency,
    phone: Option<E164>,
}

/// Everything about the request that can be wrong, reported together.
async fn check(
    pool: &PgPool,
    providers: &PaymentProviders,
    company: &Company,
    req: &PurchaseRequest,
) -> Result<Checked, StartError> {
    let mut errors = Vec::new();
    // M-Pesa too: a Tanzanian company pays through Vodacom in TZS, a Kenyan one through Daraja
    // in KES, unless it names the other currency.
    let default_currency = company.country.currency();
    let currency = match req.currency.as_deref() {
        None => Some(default_currency),
        Some(c) => c
            .trim()
            .to_ascii_uppercase()
            .parse::<Currency>()
            .map_err(|e| errors.push(("currency", e.to_string())))
            .ok(),
    };
    let wallet = currency.and_then(mpesa_wallet_country);
    if req.method == Method::Mpesa && currency.is_some() && wallet.is_none() {
        errors.push((
            "currency",
            "M-Pesa payments are in TZS (Vodacom, Tanzanian wallets) or KES (Safaricom Daraja, Kenyan wallets)"
                .to_string(),
        ));
    }
    let phone = match (req.method, req.phone.as_deref()) {
        (Method::Mpesa, None) => {
            errors.push(("phone", "is required for M-Pesa".to_string()));
            None
        }
        (Method::Mpesa, Some(p)) => {
            let country = wallet.unwrap_or(company.country);
            let (nation, c) = match country {
                Country::TZ => ("Tanzanian", "TZS"),
                Country::KE => ("Kenyan", "KES"),
            };
            E164::parse_mobile_in(p, country)
                .map_err(|e| {
                    errors.push((
                        "phone",
                        format!(
                            "must be a {nation} mobile number with an M-Pesa wallet, as M-Pesa in {c} is ({e})"
                        ),
                    ))
                })
                .ok()
        }
        (_, Some(_)) => {
            errors.push(("phone", "is only used for M-Pesa".to_string()));
            None
        }
        (_, None) => None,
    };

    let package = packages::credits(pool, &req.package_id).await?;
    let mut priced = None;
    match (package, currency) {
        (None, _) => errors.push(("package_id", format!("no package {:?}", req.package_id))),
        (Some(credits), Some(c)) => match packages::price(pool, &req.package_id, c).await? {
            None => errors.push((
                "currency",
                format!("package {:?} is not sold in {c}", req.package_id),
            )),
            Some(a) if req.method == Method::Mpesa && !a.fract().is_zero() => errors.push((
                "currency",
                format!("M-Pesa takes whole shillings; the price {a} {c} is not"),
            )),
            Some(a) => priced = Some((credits, a, c)),
        },
        (Some(_), None) => {}
    }
    if !errors.is_empty() {
        return Err(StartError::Invalid(errors));
    }
    let (credits, amount, currency) = priced.expect("no errors means priced");
    if providers.provider_for(req.method, currency).is_none() {
        return Err(StartError::NotConfigured {
            method: req.method.as_str(),
            currency: (req.method == Method::Mpesa).then(|| currency.code()),
        });
    }
    Ok(Checked {
        credits,
        amount,
        currency,
        phone,
    })
}

/// A replay of a card purchase whose first request stopped between writing the payment and
/// storing its Checkout Session (the database went down, the process died): the session is
/// asked for again, with the same Stripe idempotency key and the same parameters, so Stripe
/// answers with the session it made then, if any, and never makes a second. (An M-Pesa payment
/// is not pushed again: the customer may have a prompt already; its callback URL still finds it,
/// and the sweep ends it when its window closes.)
async fn resume_unstarted(
    pool: &PgPool,
    providers: &PaymentProviders,
    company: &Company,
    replay: Started,
) -> Result<Started, StartError> {
    let p = &replay.payment;
    if p.method != Method::Card || p.status != Status::Initiated || p.checkout_url.is_some() {
        return Ok(replay);
    }
    tracing::info!(payment = %p.id, "replayed card purchase has no checkout yet; asking Stripe again");
    let payment = start_card(pool, providers, replay.payment, company).await?;
    Ok(Started {
        payment,
        replay: true,
    })
}

/// The first payment of an Idempotency-Key, if this request asks for the same purchase.
fn same_request(
    existing: Payment,
    req: &PurchaseRequest,
    checked: &Checked,
) -> Result<Started, StartError> {
    let same = existing.package_id == req.package_id
        && existing.method == req.method
        && existing.amount == checked.amount
        && existing.currency == checked.currency.code()
        && existing.phone.as_deref() == checked.phone.as_ref().map(E164::as_str);
    if same {
        Ok(Started {
            payment: existing,
            replay: true,
        })
    } else {
        Err(StartError::KeyReused(existing.id))
    }
}

/// The country whose M-Pesa wallets pay in `currency`: Vodacom Tanzania for TZS, Safaricom
/// Kenya for KES.
fn mpesa_wallet_country(currency: Currency) -> Option<Country> {
    match currency {
        Currency::TZS => Some(Country::TZ),
        Currency::KES => Some(Country::KE),
        _ => None,
    }
}

/// 32 random bytes, URL-safe: the secret part of an M-Pesa callback URL.
fn callback_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Only the hash is stored: a leaked database does not let anyone forge callbacks.
pub(super) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// `SMS-{COMPANY}-{TIMESTAMP}`: the company's short code (the random tail of its id) and the
/// East Africa time of the request, to the second.
fn transfer_reference(company: &Company, now: DateTime<Utc>) -> String {
    let id = company.id.0.simple().to_string().to_ascii_uppercase();
    let local = now.with_timezone(&chrono_tz::Africa::Nairobi);
    format!("SMS-{}-{}", &id[24..], local.format("%Y%m%d%H%M%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unguessable_and_url_safe() {
        let (a, b) = (callback_token(), callback_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
