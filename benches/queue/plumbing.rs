//! The bench's own Redis plumbing.

use super::*;

pub(crate) struct Bench {
    pub(crate) url: String,
    pub(crate) run: String,
    pub(crate) admin: ConnectionManager,
    pub(crate) twilio: String,
    pub(crate) client: reqwest::Client,
    pub(crate) apalis_queues: Mutex<Vec<String>>,
}

impl Bench {
    pub(crate) fn ours_prefix(&self) -> String {
        format!("qbench-{}", self.run)
    }

    pub(crate) async fn ours(&self) -> redis::RedisResult<Queues> {
        Queues::connect(&self.url, &self.ours_prefix()).await
    }

    pub(crate) async fn ours_cleanup(&self, queue: &str) -> redis::RedisResult<u64> {
        delete_matching(
            &mut self.admin.clone(),
            &format!("{{{}:{queue}}}:*", self.ours_prefix()),
        )
        .await
    }

    pub(crate) fn apalis_queue(&self, label: &str) -> String {
        let q = format!("qbench-{}-apalis-{label}", self.run);
        self.apalis_queues.lock().expect("lock").push(q.clone());
        q
    }

    pub(crate) async fn apalis_cleanup(&self, queue: &str) -> redis::RedisResult<u64> {
        let mut conn = self.admin.clone();
        let n = delete_matching(&mut conn, &format!("{queue}:*")).await?;
        redis::cmd("ZREM")
            .arg("core:apalis:queues:list")
            .arg(format!("{queue}:workers"))
            .query_async::<u64>(&mut conn)
            .await?;
        Ok(n)
    }

    /// Everything this run may have left: both prefixes, and apalis' global queue list entries.
    pub(crate) async fn cleanup_all(&self) -> redis::RedisResult<u64> {
        let mut conn = self.admin.clone();
        let mut n = delete_matching(&mut conn, &format!("{{{}:*", self.ours_prefix())).await?;
        n += delete_matching(&mut conn, &format!("qbench-{}-*", self.run)).await?;
        let queues = self.apalis_queues.lock().expect("lock").clone();
        for q in queues {
            redis::cmd("ZREM")
                .arg("core:apalis:queues:list")
                .arg(format!("{q}:workers"))
                .query_async::<u64>(&mut conn)
                .await?;
        }
        Ok(n)
    }

    pub(crate) async fn apalis_conn(&self) -> redis::RedisResult<ConnectionManager> {
        apalis_redis::connect(self.url.as_str()).await
    }

    pub(crate) async fn enqueue_ours(
        &self,
        queues: &Queues,
        queue: &str,
        n: u64,
    ) -> anyhow::Result<f64> {
        let store = queues.store(queue);
        let t0 = Instant::now();
        let mut seq = 0;
        while seq < n {
            let chunk: Vec<NewJob> = (seq..n.min(seq + OURS_CHUNK as u64))
                .map(|s| new_job(&job(s)))
                .collect();
            seq += chunk.len() as u64;
            store.enqueue(&chunk).await?;
        }
        Ok(n as f64 / t0.elapsed().as_secs_f64())
    }

    pub(crate) async fn enqueue_apalis(
        &self,
        config: &ApalisConfig,
        n: u64,
    ) -> anyhow::Result<f64> {
        let mut storage =
            RedisStorage::<SmsJob>::new(self.apalis_conn().await?).with_config(config.clone());
        let t0 = Instant::now();
        let mut seq = 0;
        while seq < n {
            let chunk: Vec<SmsJob> = (seq..n.min(seq + APALIS_CHUNK as u64)).map(job).collect();
            seq += chunk.len() as u64;
            storage
                .push_bulk(chunk)
                .await
                .map_err(|e| anyhow::anyhow!("push_bulk: {e}"))?;
        }
        let rate = n as f64 / t0.elapsed().as_secs_f64();
        // The workaround (not timed): due jobs scheduled -> active in chunks of 5,000.
        let script = redis::Script::new(APALIS_PROMOTE);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        loop {
            let moved: u64 = script
                .key(config.scheduled_jobs_set())
                .key(config.active_jobs_list())
                .arg(now)
                .arg(5_000)
                .invoke_async(&mut self.admin.clone())
                .await?;
            if moved == 0 {
                break;
            }
        }
        Ok(rate)
    }
}

pub(crate) async fn delete_matching(
    conn: &mut ConnectionManager,
    pattern: &str,
) -> redis::RedisResult<u64> {
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(10_000)
            .query_async(conn)
            .await?;
        for chunk in keys.chunks(1_000) {
            deleted += redis::cmd("UNLINK")
                .arg(chunk)
                .query_async::<u64>(conn)
                .await?;
        }
        cursor = next;
        if cursor == 0 {
            return Ok(deleted);
        }
    }
}

pub(crate) async fn admin_connection(url: &str) -> redis::RedisResult<ConnectionManager> {
    redis::Client::open(url)?
        .get_connection_manager_with_config(
            ConnectionManagerConfig::new().set_response_timeout(Some(Duration::from_secs(30))),
        )
        .await
}

pub(crate) async fn redis_info(
    conn: &mut ConnectionManager,
    section: &str,
) -> HashMap<String, String> {
    let text: String = redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// Counters read before and after a timed run (Redis' are server-wide: other clients count too).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sample {
    /// CPU seconds used by Redis.
    pub(crate) redis_cpu: f64,
    /// CPU seconds used by this process.
    pub(crate) own_cpu: f64,
    /// XREADGROUP calls (our fetches).
    pub(crate) xreads: u64,
    /// EVALSHA calls (every script of both backends).
    pub(crate) scripts: u64,
}

impl Sample {
    pub(crate) async fn take(conn: &mut ConnectionManager) -> Sample {
        let stats = redis_info(conn, "commandstats").await;
        let calls = |k: &str| {
            stats
                .get(k)
                .and_then(|v| v.strip_prefix("calls=")?.split(',').next()?.parse().ok())
                .unwrap_or(0)
        };
        let (redis_cpu, own_cpu) = cpu(conn).await;
        Sample {
            redis_cpu,
            own_cpu,
            xreads: calls("cmdstat_xreadgroup"),
            scripts: calls("cmdstat_evalsha"),
        }
    }

    pub(crate) fn since(&self, before: &Sample) -> String {
        format!(
            "CPU s: redis {:.2}, bench {:.2}; XREADGROUP {}, EVALSHA {}",
            self.redis_cpu - before.redis_cpu,
            self.own_cpu - before.own_cpu,
            self.xreads - before.xreads,
            self.scripts - before.scripts
        )
    }
}

/// CPU seconds used so far by Redis and by this process.
pub(crate) async fn cpu(conn: &mut ConnectionManager) -> (f64, f64) {
    let info = redis_info(conn, "cpu").await;
    let get = |k: &str| {
        info.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let redis = get("used_cpu_sys") + get("used_cpu_user");
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Fields 14 and 15 (utime, stime) in USER_HZ = 100 ticks; index 11 and 12 after the ')'.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    (redis, ticks / 100.0)
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn proc_status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
