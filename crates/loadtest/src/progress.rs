//! Progress display (indicatif, drawn on stderr so stdout stays clean for `--json`). Every bar is
//! hidden when progress is off (`--no-progress`, or stdout not a terminal).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Whether to draw progress at all.
pub(crate) fn enabled(no_progress: bool) -> bool {
    !no_progress && std::io::stdout().is_terminal()
}

/// A bar over the registrations of seeding.
pub(crate) fn seeding_bar(len: u64, enabled: bool) -> ProgressBar {
    if !enabled || len == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "seeding  [{elapsed_precise}] {wide_bar} {pos}/{len} registrations (eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Counters the workers bump (relaxed atomics, no lock) and the progress ticker reads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub done: AtomicU64,
    pub errors: AtomicU64,
}

/// Spawns a task that redraws the run's bar every 250 ms — elapsed time, operations done,
/// throughput over the last second or so, errors, time left — until the returned bar is
/// finished.
pub(crate) fn run_bar(counters: Arc<Counters>, duration: Duration, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} running [{elapsed_precise}] {msg}") {
        bar.set_style(style);
    }
    let ticker = bar.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let mut window: std::collections::VecDeque<(Instant, u64)> = Default::default();
        let mut interval = tokio::time::interval(Duration::from_millis(250));
        while !ticker.is_finished() {
            interval.tick().await;
            let now = Instant::now();
            let done = counters.done.load(Ordering::Relaxed);
            window.push_back((now, done));
            while window.len() > 5 {
                window.pop_front();
            }
            let (t0, d0) = window.front().copied().unwrap_or((now, done));
            let span = now.duration_since(t0).as_secs_f64();
            let rate = if span > 0.0 {
                (done - d0) as f64 / span
            } else {
                0.0
            };
            let left = duration.saturating_sub(started.elapsed()).as_secs_f64();
            ticker.set_message(format!(
                "{done} ops | {rate:.0} ops/s | {} errors | {left:.1}s left",
                counters.errors.load(Ordering::Relaxed)
            ));
            ticker.tick();
        }
    });
    bar
}
