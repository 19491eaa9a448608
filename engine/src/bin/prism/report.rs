//! Progress display and the end-of-run summary.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prism_engine::Output;

/// A progress bar on a terminal; plain lines otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        let target = ProgressDrawTarget::stderr();
        if target.is_hidden() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} images, {per_sec}, eta {eta}")
        {
            bar.set_style(style);
        }
        Progress { bar: Some(bar) }
    }

    /// Records a finished image; `line` is printed as is (failures always, successes only
    /// without a bar).
    pub fn finished(&self, line: &str, failed: bool) {
        match &self.bar {
            Some(bar) => {
                if failed {
                    bar.println(line);
                }
                bar.inc(1);
            }
            None => {
                if failed {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
            }
        }
    }

    pub fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Totals for the summary line.
#[derive(Default)]
pub struct Summary {
    pub succeeded: usize,
    pub failed: usize,
    megapixels: f64,
    work: Vec<Duration>,
    queue_waits: Vec<Duration>,
}

impl Summary {
    pub fn record(&mut self, output: &Output) {
        self.succeeded += 1;
        self.megapixels += f64::from(output.input.width) * f64::from(output.input.height) / 1e6;
        self.work.push(output.timings.work());
        self.queue_waits.push(output.timings.queue);
    }

    pub fn print(&mut self, wall: Duration) {
        self.work.sort();
        self.queue_waits.sort();
        let seconds = wall.as_secs_f64().max(1e-9);
        println!(
            "{} images, {} failed in {:.2} s: {:.1} images/s, {:.1} MP/s, \
             work per image p50 {:.1} ms, p99 {:.1} ms; queue wait p50 {:.1} ms, p99 {:.1} ms",
            self.succeeded + self.failed,
            self.failed,
            seconds,
            self.succeeded as f64 / seconds,
            self.megapixels / seconds,
            millis(percentile(&self.work, 0.50)),
            millis(percentile(&self.work, 0.99)),
            millis(percentile(&self.queue_waits, 0.50)),
            millis(percentile(&self.queue_waits, 0.99)),
        );
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile of sorted values (zero when empty).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
