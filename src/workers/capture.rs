//! A step's output, bounded and honest: the head and the tail of each stream
//! stay in memory (what the report shows), everything goes to the step's log
//! file once anything is cut, and the text says exactly how many bytes were
//! cut and where the rest is (or that it was lost, and why).

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::tasks::runtime::USAGE_PREFIX;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Out,
    Err,
}

/// One stream's kept bytes: the first half of the bound and the last half.
#[derive(Default)]
struct Kept {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl Kept {
    fn push(&mut self, bytes: &[u8], keep: usize) {
        self.total += bytes.len() as u64;
        let half = keep / 2;
        let room = half.saturating_sub(self.head.len());
        let (head, rest) = bytes.split_at(bytes.len().min(room));
        self.head.extend_from_slice(head);
        let tail_max = keep - half;
        // Only the last `tail_max` bytes of `rest` can survive.
        let rest = &rest[rest.len().saturating_sub(tail_max)..];
        self.tail.extend(rest);
        let over = self.tail.len().saturating_sub(tail_max);
        self.tail.drain(..over);
    }

    fn cut(&self) -> u64 {
        self.total - self.head.len() as u64 - self.tail.len() as u64
    }
}

/// What a capture kept.
pub(super) struct Captured {
    pub stdout: String,
    pub stderr: String,
    /// Bytes of both streams left out of `stdout`/`stderr`.
    pub cut_bytes: u64,
    /// The whole output, when anything was cut and the file could be written.
    pub log_file: Option<PathBuf>,
    pub io_error: Option<std::io::Error>,
}

pub(super) struct Capture {
    keep: usize,
    out: Kept,
    err: Kept,
    /// Everything seen before the log file was needed, written to it then.
    transcript: Vec<(Stream, Vec<u8>)>,
    transcript_bytes: usize,
    path: PathBuf,
    file: Option<std::fs::File>,
    io_error: Option<std::io::Error>,
    /// The last usage line, kept even when it falls in the cut.
    last_usage_line: Option<String>,
    partial: Vec<u8>,
}

impl Capture {
    /// Keep at most `keep` bytes per stream in memory; the log file is `path`.
    pub(super) fn new(keep: usize, path: PathBuf) -> Capture {
        Capture {
            keep: keep.max(2),
            out: Kept::default(),
            err: Kept::default(),
            transcript: Vec::new(),
            transcript_bytes: 0,
            path,
            file: None,
            io_error: None,
            last_usage_line: None,
            partial: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, stream: Stream, bytes: &[u8]) {
        if stream == Stream::Out {
            self.track_usage(bytes);
        }
        let keep = self.keep;
        let kept = match stream {
            Stream::Out => &mut self.out,
            Stream::Err => &mut self.err,
        };
        kept.push(bytes, keep);
        let cutting = kept.cut() > 0;
        if self.file.is_some() {
            self.write(stream, bytes);
        } else if self.io_error.is_none() {
            self.transcript.push((stream, bytes.to_vec()));
            self.transcript_bytes += bytes.len();
            // The transcript is itself bounded: once anything is cut (or it
            // outgrows both streams' bounds), everything goes to the file.
            if cutting || self.transcript_bytes > 2 * keep {
                self.open_file();
            }
        }
    }

    fn track_usage(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(pos) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            self.note_usage(&String::from_utf8_lossy(&line));
        }
        // A line longer than this is not a usage line; do not hoard it.
        if self.partial.len() > 4096 {
            self.partial.clear();
        }
    }

    fn note_usage(&mut self, line: &str) {
        if line.trim_start().starts_with(USAGE_PREFIX.trim_end()) {
            self.last_usage_line = Some(line.trim().to_string());
        }
    }

    fn open_file(&mut self) {
        let opened = std::fs::create_dir_all(self.path.parent().unwrap_or(Path::new(".")))
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
            });
        match opened {
            Ok(f) => {
                self.file = Some(f);
                for (stream, bytes) in std::mem::take(&mut self.transcript) {
                    self.write(stream, &bytes);
                }
            }
            Err(e) => {
                self.io_error = Some(e);
                self.transcript.clear();
            }
        }
    }

    fn write(&mut self, stream: Stream, bytes: &[u8]) {
        let Some(f) = self.file.as_mut() else { return };
        let tag: &[u8] = match stream {
            Stream::Out => b"",
            Stream::Err => b"[stderr] ",
        };
        if let Err(e) = f.write_all(tag).and_then(|()| f.write_all(bytes)) {
            self.io_error = Some(e);
            self.file = None;
        }
    }

    pub(super) fn finish(mut self) -> Captured {
        if !self.partial.is_empty() {
            let rest = String::from_utf8_lossy(&self.partial).to_string();
            self.note_usage(&rest);
        }
        let cut = self.out.cut() + self.err.cut();
        let log_file =
            (cut > 0 && self.file.is_some() && self.io_error.is_none()).then(|| self.path.clone());
        let where_ = |name: &str, n: u64| match (&log_file, &self.io_error) {
            (Some(p), _) => format!(
                "\n… [{n} bytes of {name} cut here; the whole output is in {}] …\n",
                p.display()
            ),
            (None, Some(e)) => format!(
                "\n… [{n} bytes of {name} cut here and not kept: the log file {} could not be written ({e})] …\n",
                self.path.display()
            ),
            (None, None) => format!("\n… [{n} bytes of {name} cut here] …\n"),
        };
        let render = |k: &Kept, name: &str| {
            let mut text = String::from_utf8_lossy(&k.head).into_owned();
            if k.cut() > 0 {
                text.push_str(&where_(name, k.cut()));
            }
            let tail: Vec<u8> = k.tail.iter().copied().collect();
            text.push_str(&String::from_utf8_lossy(&tail));
            text
        };
        let mut stdout = render(&self.out, "stdout");
        // The usage report stays visible when it fell in the cut.
        if self.out.cut() > 0
            && let Some(line) = &self.last_usage_line
            && !stdout.contains(line.as_str())
        {
            stdout.push('\n');
            stdout.push_str(line);
            stdout.push('\n');
        }
        Captured {
            stdout,
            stderr: render(&self.err, "stderr"),
            cut_bytes: cut,
            log_file,
            io_error: self.io_error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_and_tail_are_kept_and_the_cut_is_counted_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Capture::new(100, dir.path().join("step.log"));
        let lines: Vec<String> = (0..1000).map(|i| format!("line {i:04}\n")).collect();
        for l in &lines {
            c.push(Stream::Out, l.as_bytes());
        }
        c.push(Stream::Err, b"a warning\n");
        let total: usize = lines.iter().map(String::len).sum();
        let got = c.finish();
        assert!(got.stdout.starts_with("line 0000\n"), "{}", got.stdout);
        assert!(
            got.stdout.trim_end().ends_with("line 0999"),
            "{}",
            got.stdout
        );
        assert_eq!(got.cut_bytes, (total - 100) as u64);
        assert!(
            got.stdout.contains(&format!(
                "[{} bytes of stdout cut here; the whole output is in",
                total - 100
            )),
            "{}",
            got.stdout
        );
        assert_eq!(got.stderr, "a warning\n");
        let file = std::fs::read_to_string(got.log_file.unwrap()).unwrap();
        assert_eq!(
            file.lines().filter(|l| l.starts_with("line ")).count(),
            1000
        );
        assert!(file.contains("[stderr] a warning"));
    }

    #[test]
    fn nothing_cut_means_no_file_and_no_note() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Capture::new(100, dir.path().join("step.log"));
        c.push(Stream::Out, b"short\n");
        let got = c.finish();
        assert_eq!(
            (got.stdout.as_str(), got.cut_bytes, got.log_file),
            ("short\n", 0, None)
        );
        assert!(!dir.path().join("step.log").exists());
    }

    #[test]
    fn a_log_file_that_cannot_be_written_is_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"").unwrap();
        let mut c = Capture::new(10, blocker.join("step.log"));
        c.push(Stream::Out, &[b'x'; 100]);
        let got = c.finish();
        assert_eq!(got.log_file, None);
        assert!(
            got.stdout
                .contains("90 bytes of stdout cut here and not kept"),
            "{}",
            got.stdout
        );
    }
}
