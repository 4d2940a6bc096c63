//! Where a queue lives in Redis. Every key of one queue shares the hash tag `{prefix:queue}`, so
//! the scripts that touch several of them work on Redis Cluster too.

/// The consumer group every worker of a queue reads through.
pub const GROUP: &str = "workers";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    /// Jobs ready to run (a Redis Stream read by the consumer group).
    pub stream: String,
    /// Jobs waiting for their run time: job id scored by run time in ms.
    pub delayed: String,
    /// The delayed jobs themselves: job id -> JSON.
    pub delayed_data: String,
    /// Dead letters (a Redis Stream), kept until re-driven.
    pub dead: String,
    tag: String,
}

impl QueueKeys {
    pub fn new(prefix: &str, queue: &str) -> Self {
        let tag = format!("{{{prefix}:{queue}}}");
        QueueKeys {
            stream: format!("{tag}:stream"),
            delayed: format!("{tag}:delayed"),
            delayed_data: format!("{tag}:delayed:data"),
            dead: format!("{tag}:dead"),
            tag,
        }
    }

    /// The key that makes an idempotency key enqueue at most one job.
    pub fn idempotency(&self, key: &str) -> String {
        format!("{}:idem:{key}", self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_queue_shares_one_hash_tag() {
        let k = QueueKeys::new("copcca", "sms");
        for key in [
            &k.stream,
            &k.delayed,
            &k.delayed_data,
            &k.dead,
            &k.idempotency("send_sms:1"),
        ] {
            assert!(key.starts_with("{copcca:sms}:"), "{key}");
        }
    }
}
