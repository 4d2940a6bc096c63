//! Configurations.

use super::*;

pub(crate) fn ours_config(batch: usize, prefetch: usize) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(RetryPolicy::new(
        5,
        Duration::from_secs(1),
        Duration::from_secs(60),
    ));
    c.batch = batch;
    c.prefetch = prefetch;
    c
}

pub(crate) fn apalis_config(queue: &str, batch: usize) -> ApalisConfig {
    ApalisConfig::default()
        .queue(queue)
        .lock_tasks(false)
        .batch_size(batch)
}
