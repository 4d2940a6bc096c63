//! A table this process reads often and an operator changes rarely (the rate card, the
//! routing table), held in memory and read again once older than its time to live. Every
//! process sees a change within that time; the process that made it forgets its copy at once.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The value held, and when it was read.
type Held<T> = Option<(Instant, Arc<T>)>;

pub struct Cached<T> {
    /// What is held, for the log.
    what: &'static str,
    ttl: Duration,
    held: Arc<RwLock<Held<T>>>,
}

impl<T> Clone for Cached<T> {
    fn clone(&self) -> Self {
        Cached {
            what: self.what,
            ttl: self.ttl,
            held: self.held.clone(),
        }
    }
}

impl<T> Cached<T> {
    pub fn new(what: &'static str, ttl: Duration) -> Self {
        Cached {
            what,
            ttl,
            held: Arc::default(),
        }
    }

    /// The value, at most `ttl` old, read with `load` when it is older. If it cannot be read
    /// again, the one held is used (logged) until it can; without one, the database's error.
    pub async fn get<F, Fut>(&self, load: F) -> Result<Arc<T>, sqlx::Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let held = self.held.read().expect("not poisoned").clone();
        if let Some((at, value)) = &held
            && at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        match load().await {
            Ok(value) => {
                let value = Arc::new(value);
                *self.held.write().expect("not poisoned") = Some((Instant::now(), value.clone()));
                Ok(value)
            }
            Err(e) => match held {
                Some((_, value)) => {
                    tracing::warn!(error = %e, what = self.what, "could not be read again; the copy held is used");
                    Ok(value)
                }
                None => Err(e),
            },
        }
    }

    /// Forgets the value held: the next question reads it again (after a change here).
    pub fn invalidate(&self) {
        *self.held.write().expect("not poisoned") = None;
    }
}
