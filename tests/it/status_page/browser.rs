//! The status page in a real browser: Debian's `chromium`, headless. It logs in the way an
//! operator does (`/admin?token=` → cookie → 303 → `/admin`), and the DOM it ends up with must
//! hold the charts with their points and the seeded tables. The screenshot is kept under
//! `target/` and its path printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use copcca_sms::domain::Role;
use sqlx::PgPool;

use super::{point_sum, prefix, seed, svg};
use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(90);

/// The browser binary, or a failure telling how to get it (never a silent pass).
fn chromium() -> PathBuf {
    let name = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(&name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` is not installed, and the status page test needs it: run \
             `scripts/ensure-services --chromium` (it installs Debian's chromium package; \
             scripts/test does this), or set CHROMIUM to the browser's path"
        )
    })
}

/// Runs headless Chromium with `args` on `url` in a throwaway profile; its stdout. Blocking:
/// call it from `spawn_blocking` so the in-process server keeps answering.
fn run_chromium(browser: &Path, args: &[&str], url: &str) -> String {
    let profile = std::env::temp_dir().join(format!("copcca-chromium-{}", uuid::Uuid::new_v4()));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("chromium took longer than {TIMEOUT:?} on {args:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        status.success(),
        "chromium {args:?} failed ({status}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[sqlx::test]
async fn the_status_page_renders_its_charts_in_headless_chromium(pool: PgPool) {
    let browser = chromium();
    let app = spawn_app_with(pool, &[("REDIS_PREFIX", &prefix())]).await;
    let seeded = seed(&app).await;
    let admin = app.token(None, Role::SuperAdmin).await;
    let login = app.url(&format!("/admin?token={admin}"));

    let (b, url) = (browser.clone(), login.clone());
    let dom = tokio::task::spawn_blocking(move || run_chromium(&b, &["--dump-dom"], &url))
        .await
        .unwrap();

    // The browser went through the cookie exchange and landed on the page itself.
    assert!(
        dom.contains("<h1>copcca-sms status</h1>"),
        "not the page: {dom}"
    );
    let depth = svg(&dom, "chart-queue-depth");
    assert_eq!(depth.matches("<circle").count(), 7, "{depth}");
    assert!(depth.contains("<polyline"), "{depth}");
    let rate = svg(&dom, "chart-send-rate");
    assert_eq!(rate.matches("<circle").count(), 120, "{rate}");
    assert_eq!(point_sum(rate), 10);
    for table in [
        "queues-table",
        "balances-table",
        "failures-table",
        "dead-letters-table",
    ] {
        assert!(
            dom.contains(&format!(r#"<table id="{table}">"#)),
            "no {table}"
        );
    }
    assert!(dom.contains(&format!(r#"data-company="{}""#, seeded.kilimo)));
    assert!(dom.contains("Kilimo &lt;Traders&gt; &amp; Sons"));
    assert!(dom.contains("30003"));
    assert!(dom.contains("gave up after 5 attempts"));

    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/status-page.png");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    tokio::task::spawn_blocking(move || run_chromium(&browser, &[&arg], &login))
        .await
        .unwrap();
    let png = std::fs::read(&shot).expect("chromium wrote no screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    assert!(png.len() > 10_000, "the screenshot is suspiciously small");
    println!("status page screenshot: {}", shot.display());
    app.state.queues.delete_all().await.unwrap();
}
