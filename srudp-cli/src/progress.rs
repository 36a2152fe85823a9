//! Progress on stderr: a bar on a terminal (files, bytes, rate, ETA), a
//! plain line every two seconds otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain (not a terminal) form prints a line.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

pub(crate) struct Progress {
    bar: ProgressBar,
    what: String,
    /// When the plain form last printed (`None`: a terminal bar).
    plain: Option<Instant>,
    started: Instant,
    total: u64,
    done: u64,
    /// Files done and in all, for transfers of several files.
    files: Option<(u64, u64)>,
}

impl Progress {
    pub(crate) fn new(what: &str, total: u64) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let bar = if terminal {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(what.to_string());
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            what: what.to_string(),
            plain: (!terminal).then(Instant::now),
            started: Instant::now(),
            total,
            done: 0,
            files: None,
        }
    }

    /// Counts files too: `done` of `total` are complete.
    pub(crate) fn set_files(&mut self, done: u64, total: u64) {
        self.files = Some((done, total));
        self.bar.set_message(self.message());
    }

    /// Bytes that need not move (already there, e.g. resumed).
    pub(crate) fn skip(&mut self, n: u64) {
        self.total = self.total.saturating_sub(n);
        self.bar.set_length(self.total);
    }

    fn message(&self) -> String {
        match self.files {
            Some((done, total)) => format!("{} {done}/{total} files", self.what),
            None => self.what.clone(),
        }
    }

    pub(crate) fn add(&mut self, n: u64) {
        self.done += n;
        self.bar.inc(n);
        if let Some(last) = &mut self.plain {
            if last.elapsed() >= PLAIN_EVERY {
                *last = Instant::now();
                let secs = self.started.elapsed().as_secs_f64().max(1e-3);
                let rate = self.done as f64 / secs;
                let eta = (self.total.saturating_sub(self.done)) as f64 / rate.max(1.0);
                eprintln!(
                    "{}: {} / {} bytes ({}%), {:.1} MB/s, ETA {:.0} s",
                    self.message(),
                    self.done,
                    self.total,
                    self.done * 100 / self.total.max(1),
                    rate / 1e6,
                    eta
                );
            }
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
