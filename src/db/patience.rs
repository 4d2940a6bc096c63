//! Writing down what a provider has already done: the provider's side cannot be undone, so a
//! transient database failure (a restart, a lost connection, a deadlock) while recording it is
//! waited out here rather than answered as an error that would leave the record to a slower
//! path (a later run listing the provider's messages, a sweep, a buyer's replay).

use std::future::Future;
use std::time::Duration;

/// First pause between tries; it doubles up to [`LAST_PAUSE`], five tries in all (about 3.75 s
/// of waiting, longer than the PostgreSQL restarts the chaos run makes).
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LAST_PAUSE: Duration = Duration::from_secs(2);

/// Runs `step` until `transient` finds no transient database error in its answer (it returns
/// the error's text when it does), at most five times, 250 ms doubling to 2 s apart, calling
/// `on_retry` with the error before each new try. The last answer is returned as it is: the
/// caller decides what an error that outlasted the tries becomes.
pub async fn patiently<T, F, Fut>(
    step: F,
    transient: impl Fn(&T) -> Option<String>,
    on_retry: impl Fn(&str),
) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = T>,
{
    let mut pause = FIRST_PAUSE;
    loop {
        let answer = step().await;
        match transient(&answer) {
            Some(error) if pause <= LAST_PAUSE => {
                on_retry(&error);
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            _ => return answer,
        }
    }
}
