//! Handlers (the same body for both backends).

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    Noop,
    Http,
    /// Child of the recovery scenario: say which job it holds, then sleep as the job says.
    Announce,
}

pub(crate) struct Probe {
    pub(crate) work: Work,
    pub(crate) http: Option<(reqwest::Client, String)>,
    pub(crate) done: AtomicU64,
    pub(crate) target: u64,
    pub(crate) reached: OnceLock<Instant>,
    pub(crate) bell: Notify,
    pub(crate) starts: Mutex<HashMap<u64, Instant>>,
}

impl Probe {
    pub(crate) fn new(
        work: Work,
        target: u64,
        http: Option<(reqwest::Client, String)>,
    ) -> Arc<Self> {
        Arc::new(Probe {
            work,
            http,
            done: AtomicU64::new(0),
            target,
            reached: OnceLock::new(),
            bell: Notify::new(),
            starts: Mutex::default(),
        })
    }

    pub(crate) fn start_of(&self, seq: u64) -> Option<Instant> {
        self.starts.lock().expect("lock").get(&seq).copied()
    }
}

pub(crate) async fn run_job(job: SmsJob, p: &Probe) -> Result<(), String> {
    let start = Instant::now();
    p.starts
        .lock()
        .expect("lock")
        .entry(job.seq)
        .or_insert(start);
    match p.work {
        Work::Noop => {}
        Work::Http => {
            let (client, url) = p.http.as_ref().expect("an HTTP probe has a client");
            let res = client
                .post(url)
                .basic_auth(SID, Some("token"))
                .form(&[
                    ("To", job.to.as_str()),
                    ("From", "+15005550006"),
                    ("Body", job.body.as_str()),
                ])
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = res.status();
            res.bytes().await.map_err(|e| e.to_string())?;
            if status != reqwest::StatusCode::CREATED {
                return Err(format!("mock Twilio answered {status}"));
            }
        }
        Work::Announce => {
            println!("HOLDING {}", job.seq);
            tokio::time::sleep(Duration::from_millis(job.sleep_ms)).await;
        }
    }
    let n = p.done.fetch_add(1, Ordering::SeqCst) + 1;
    if n == p.target {
        let _ = p.reached.set(Instant::now());
        p.bell.notify_one();
    }
    Ok(())
}

pub(crate) async fn ours_handler(job: SmsJob, p: Data<Arc<Probe>>) -> Result<(), JobError> {
    run_job(job, &p).await.map_err(JobError::retry)
}

pub(crate) async fn apalis_handler(job: SmsJob, p: Data<Arc<Probe>>) -> Result<(), BoxDynError> {
    run_job(job, &p).await.map_err(Into::into)
}
