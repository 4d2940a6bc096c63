//! Named failure points at every step between two durable effects (issue 16): the places where a
//! process that stops leaves the most to the next one. Built only with the cargo feature
//! `failpoints` (tikv's `fail` crate); without it [`point!`] expands to nothing and release
//! builds carry no points.
//!
//! `serve`, `work`, `schedule` and `run` configure them from `FAILPOINTS` at start
//! ([`setup_from_env`]): `name=actions;...` in `fail`'s syntax (`off`, `panic(msg)`,
//! `sleep(ms)`, `delay(ms)`, `pause`, `yield`, `print(msg)`, `return`, with `p%` and `cnt*`
//! prefixes and `->` chains), plus our `crash`. `crash` stops the process at once, as SIGKILL
//! would: `std::process::abort`, no destructor, no shutdown code, no job acknowledged.
//! `return` makes the step after the point fail as a lost database connection does (a
//! transient error: the job is retried).

/// One failure point: its name and the two effects it lies between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub name: &'static str,
    pub between: &'static str,
}

macro_rules! points {
    ($($(#[$doc:meta])* $constant:ident = $name:literal, $between:literal;)*) => {
        $($(#[$doc])* pub const $constant: &str = $name;)*
        /// Every failure point, in the order of a message's or a payment's life.
        pub const ALL: &[Point] = &[$(Point { name: $name, between: $between }),*];
    };
}

points! {
    SEND_AFTER_CLAIM = "send.after_claim",
        "credits reserved and the message marked `sending` / the request to Twilio";
    SEND_AFTER_PROVIDER_ANSWER = "send.after_provider_answer",
        "Twilio's answer / its outcome written (charge + `sent`, release + `failed`, or back to `queued`)";
    SEND_AFTER_CHARGE = "send.after_charge",
        "the charge + `sent` / the send job acknowledged";
    CALLBACK_AFTER_STORE = "callback.after_store",
        "a status report applied to its message (`failed`, `undelivered`...) / its `Refund` enqueued";
    CALLBACK_BEFORE_ADOPT = "callback.before_adopt",
        "a Beem report stored in the inbox / the unanswered send it names adopted (one transaction: a crash keeps neither)";
    REFUND_AFTER_REFUND = "refund.after_refund",
        "the refund (or the release of an uncharged hold) / the refund job acknowledged";
    PURCHASE_AFTER_CALLBACK = "purchase.after_callback",
        "an M-Pesa callback or a Stripe completion event stored / its `VerifyPurchase` enqueued";
    PURCHASE_AFTER_CONFIRM = "purchase.after_confirm",
        "M-Pesa's or Stripe's confirmation received / `paid` and the credit written";
    PURCHASE_AFTER_CREDIT = "purchase.after_credit",
        "the credit / the verification job acknowledged";
    BANK_BETWEEN_WRITES = "bank.between_writes",
        "a bank transfer's approval (`paid`, one transaction) / its credit (the `VerifyPurchase` enqueued, or run by the CLI)";
    SWEEP_AFTER_CLAIM = "sweep.after_claim",
        "debts claimed with their reminder messages (one transaction) / the messages' send jobs enqueued";
    RECONCILE_AFTER_QUEUED = "reconcile.after_queued",
        "stale `queued` messages re-enqueued / stale `sending` ones";
    RECONCILE_AFTER_SENDING = "reconcile.after_sending",
        "stale `sending` messages' jobs enqueued / expired holds released";
    RECONCILE_AFTER_HOLDS = "reconcile.after_holds",
        "expired holds released / missed refunds enqueued";
    RECONCILE_AFTER_REFUNDS = "reconcile.after_refunds",
        "missed refunds enqueued / pending delivery reports applied";
    RECONCILE_AFTER_REPORTS = "reconcile.after_reports",
        "pending delivery reports applied / silent `sent` messages marked unconfirmed";
    RECONCILE_AFTER_UNCONFIRMED = "reconcile.after_unconfirmed",
        "silent messages marked unconfirmed / open payments' checks enqueued";
    RECONCILE_AFTER_PAYMENTS = "reconcile.after_payments",
        "open payments' checks enqueued / old rejected webhooks deleted";
}

/// A failure point: does what `FAILPOINTS` configured for `$name` (nothing if nothing, and
/// nothing at all without the `failpoints` feature). In a function returning `Result<_, E>`
/// where `E: From<sqlx::Error>`.
#[cfg(feature = "failpoints")]
macro_rules! point {
    ($name:expr) => {
        fail::fail_point!($name, |action: Option<String>| Err(
            $crate::faults::returned($name, action).into()
        ))
    };
}

#[cfg(not(feature = "failpoints"))]
macro_rules! point {
    ($name:expr) => {{
        let _: &str = $name;
    }};
}

pub(crate) use point;

/// The `return` action of point `name`: `crash` stops the process, anything else is the error
/// the step after the point fails with.
#[cfg(feature = "failpoints")]
pub fn returned(name: &str, action: Option<String>) -> sqlx::Error {
    if action.as_deref() == Some(CRASH) {
        // Straight to stderr, unbuffered: the last thing the process says.
        eprintln!("fail point {name}: crash");
        std::process::abort();
    }
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        format!("fail point {name}"),
    ))
}

/// `crash` travels through `fail` as `return(crash)`.
#[cfg(feature = "failpoints")]
const CRASH: &str = "crash";

/// `FAILPOINTS` could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("FAILPOINTS: {0}")]
pub struct SetupError(String);

/// Configures the points `FAILPOINTS` names (see the module's documentation). Unknown points
/// and malformed actions are refused, as is `FAILPOINTS` in a build without points: a fault
/// run against it would prove nothing.
pub fn setup_from_env() -> Result<(), SetupError> {
    match std::env::var("FAILPOINTS") {
        Ok(spec) if !spec.trim().is_empty() => configure(&spec),
        _ => Ok(()),
    }
}

#[cfg(not(feature = "failpoints"))]
fn configure(_: &str) -> Result<(), SetupError> {
    Err(SetupError(
        "set, but this build has no failure points (build with --features failpoints)".into(),
    ))
}

#[cfg(feature = "failpoints")]
fn configure(spec: &str) -> Result<(), SetupError> {
    for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, actions) = entry
            .split_once('=')
            .ok_or_else(|| SetupError(format!("{entry:?} is not name=actions")))?;
        let name = name.trim();
        if !ALL.iter().any(|p| p.name == name) {
            let known: Vec<&str> = ALL.iter().map(|p| p.name).collect();
            return Err(SetupError(format!(
                "no point {name:?}; the points are {}",
                known.join(", ")
            )));
        }
        fail::cfg(name, &with_crash(actions.trim()))
            .map_err(|e| SetupError(format!("{name}: {e}")))?;
        tracing::warn!(point = name, actions, "failure point armed");
    }
    Ok(())
}

/// `fail`'s actions with our `crash` task (`crash`, `1*crash`, `5%crash`, `...->crash`) as
/// `return(crash)`.
#[cfg(feature = "failpoints")]
fn with_crash(actions: &str) -> String {
    actions
        .split("->")
        .map(|action| {
            let task_at = action.rfind(['%', '*']).map_or(0, |i| i + 1);
            let (prefix, task) = action.split_at(task_at);
            if task.trim() == CRASH {
                format!("{prefix}return({CRASH})")
            } else {
                action.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("->")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_systematic() {
        let mut names: Vec<&str> = ALL.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for p in ALL {
            let (area, step) = p.name.split_once('.').expect("area.step");
            assert!(
                [
                    "send",
                    "callback",
                    "refund",
                    "purchase",
                    "bank",
                    "sweep",
                    "reconcile"
                ]
                .contains(&area)
                    && step.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                p.name
            );
        }
    }

    #[test]
    fn the_readme_lists_every_point() {
        let readme = include_str!("../README.md");
        for p in ALL {
            assert!(
                readme.contains(&format!("`{}`", p.name)),
                "README.md does not list {}",
                p.name
            );
        }
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn crash_is_spelled_as_a_return_within_fails_grammar() {
        assert_eq!(with_crash("crash"), "return(crash)");
        assert_eq!(with_crash("1*crash"), "1*return(crash)");
        assert_eq!(with_crash("50%crash"), "50%return(crash)");
        assert_eq!(with_crash("2*off->crash"), "2*off->return(crash)");
        assert_eq!(with_crash("sleep(10)"), "sleep(10)");
        assert_eq!(with_crash("panic(crash)"), "panic(crash)");
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn unknown_points_and_bad_actions_are_refused() {
        let e = configure("send.after_nothing=crash").unwrap_err();
        assert!(e.to_string().contains("send.after_claim"), "{e}");
        assert!(configure("send.after_claim").is_err());
        assert!(configure("send.after_claim=explode").is_err());
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn return_fails_the_next_step_as_a_lost_connection() {
        fn step() -> Result<u8, sqlx::Error> {
            point!(REFUND_AFTER_REFUND);
            Ok(1)
        }
        fail::cfg(REFUND_AFTER_REFUND, "1*return").unwrap();
        let e = step().unwrap_err();
        assert!(crate::db::transient(&e), "{e}");
        assert!(e.to_string().contains(REFUND_AFTER_REFUND), "{e}");
        assert_eq!(step().unwrap(), 1, "once");
        fail::remove(REFUND_AFTER_REFUND);
    }
}
