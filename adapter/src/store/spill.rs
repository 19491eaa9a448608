//! The spill file: records the database could not take yet, one JSON line each, appended.
//! Replay renames it to `<path>.replaying` first, so records spilled meanwhile go to a fresh
//! file and removing the replayed one never loses them.
//!
//! The two files together are bounded (RECORD_SPILL_MAX_MB): past [`REFUSALS_UP_TO`] of the
//! bound, refusal records are kept only as a count; at the bound, nothing more is kept.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::RequestRecord;

/// Share of the bound up to which refusal records are spilled like any other.
pub(super) const REFUSALS_UP_TO: f64 = 0.8;

/// What an append did with each record.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Appended {
    pub kept: usize,
    /// Refusals past [`REFUSALS_UP_TO`] of the bound: counted, not kept.
    pub refusals_counted: usize,
    /// Other records at the bound: dropped.
    pub dropped: usize,
}

pub(super) struct Spill {
    path: PathBuf,
    replaying: PathBuf,
    max_bytes: u64,
    /// Open for appending once something was spilled in this process.
    file: Option<File>,
    /// Appended since the last fsync.
    dirty: bool,
}

impl Spill {
    pub(super) fn new(path: PathBuf, max_bytes: u64) -> Spill {
        let mut replaying = path.clone().into_os_string();
        replaying.push(".replaying");
        Spill {
            path,
            replaying: replaying.into(),
            max_bytes,
            file: None,
            dirty: false,
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per record the bound leaves room for (not yet fsynced: see
    /// [`Spill::sync_handle`]).
    pub(super) fn append(&mut self, records: &[RequestRecord]) -> io::Result<Appended> {
        let stored: u64 = self.sizes().iter().map(|(_, len)| len).sum();
        let refusals_kept = (stored as f64) < self.max_bytes as f64 * REFUSALS_UP_TO;
        let mut appended = Appended::default();
        let mut lines = Vec::with_capacity(records.len() * 256);
        for record in records {
            if record.is_refusal() && !refusals_kept {
                appended.refusals_counted += 1;
            } else if stored + lines.len() as u64 >= self.max_bytes {
                appended.dropped += 1;
            } else {
                serde_json::to_writer(&mut lines, record)?;
                lines.push(b'\n');
                appended.kept += 1;
            }
        }
        if lines.is_empty() {
            return Ok(appended);
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(open_for_append(&self.path)?),
        };
        file.write_all(&lines)?;
        self.dirty = true;
        Ok(appended)
    }

    /// A handle to fsync outside the lock, when something was appended since the last one.
    pub(super) fn sync_handle(&mut self) -> io::Result<Option<File>> {
        match &self.file {
            Some(file) if self.dirty => {
                self.dirty = false;
                Ok(Some(file.try_clone()?))
            }
            _ => Ok(None),
        }
    }

    /// The file to replay next: one left by an interrupted replay, else the spill file
    /// (renamed; later records go to a new one). `None` when there is nothing to replay.
    pub(super) fn take_for_replay(&mut self) -> io::Result<Option<PathBuf>> {
        if self.replaying.exists() {
            return Ok(Some(self.replaying.clone()));
        }
        let len = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        if len == 0 {
            return Ok(None);
        }
        if let Some(file) = self.file.take() {
            file.sync_data()?;
        }
        self.dirty = false;
        std::fs::rename(&self.path, &self.replaying)?;
        Ok(Some(self.replaying.clone()))
    }

    /// Bytes in the spill file and in a replay in progress or left over.
    pub(super) fn sizes(&self) -> [(PathBuf, u64); 2] {
        [&self.path, &self.replaying].map(|path| {
            let len = std::fs::metadata(path).map_or(0, |m| m.len());
            (path.clone(), len)
        })
    }
}

/// Records (non-empty lines) in the first `len` bytes of each file.
pub(super) fn count_lines(files: &[(PathBuf, u64)]) -> u64 {
    files
        .iter()
        .filter_map(|(path, len)| Some(File::open(path).ok()?.take(*len)))
        .map(|file| {
            BufReader::new(file)
                .split(b'\n')
                .map_while(Result::ok)
                .filter(|line| !line.is_empty())
                .count() as u64
        })
        .sum()
}

/// Opens for appending; if the file ends in a torn line (a crash mid-append), ends that
/// line first, so the next record does not share it and become unreadable too.
fn open_for_append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
    }
    Ok(file)
}

/// Reads a spill file a chunk of records at a time; malformed lines are logged and skipped.
pub(super) struct SpillReader {
    reader: BufReader<File>,
    line: u64,
    /// Lines read so far, good or not.
    pub(super) lines: u64,
}

impl SpillReader {
    pub(super) fn open(path: &Path) -> io::Result<SpillReader> {
        Ok(SpillReader {
            reader: BufReader::new(File::open(path)?),
            line: 0,
            lines: 0,
        })
    }

    /// Up to `max` records; fewer (possibly none) at the end of the file.
    pub(super) fn next_chunk(&mut self, max: usize) -> io::Result<Vec<RequestRecord>> {
        let mut records = Vec::with_capacity(max.min(1024));
        let mut buffer = Vec::new();
        while records.len() < max {
            buffer.clear();
            if self.reader.read_until(b'\n', &mut buffer)? == 0 {
                break;
            }
            self.line += 1;
            let line = buffer.trim_ascii();
            if line.is_empty() {
                continue;
            }
            self.lines += 1;
            match serde_json::from_slice::<RequestRecord>(line) {
                Ok(record) if !record.id.is_empty() => records.push(record),
                Ok(_) => tracing::warn!(line = self.line, "spilled record without an id; skipped"),
                Err(error) => {
                    tracing::warn!(line = self.line, %error, "malformed spilled record; skipped")
                }
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_after_a_torn_line_stays_readable() {
        let dir = std::env::temp_dir().join(format!("prism-spill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("records.spill");
        std::fs::write(&path, "{\"id\":\"torn\",\"at\":1").expect("torn file");
        let mut spill = Spill::new(path.clone(), 1 << 20);
        let record = RequestRecord {
            id: "whole".into(),
            ..RequestRecord::default()
        };
        spill.append(std::slice::from_ref(&record)).expect("append");
        assert_eq!(count_lines(&spill.sizes()), 2);
        let replaying = spill.take_for_replay().expect("rename").expect("a file");
        assert!(!path.exists());
        let mut reader = SpillReader::open(&replaying).expect("open");
        assert_eq!(reader.next_chunk(10).expect("read"), vec![record]);
        assert_eq!(reader.lines, 2);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_full_spill_counts_refusals_first_then_drops_everything() {
        let dir = std::env::temp_dir().join(format!("prism-spill-bound-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("records.spill");
        std::fs::remove_file(&path).ok();
        let answered = |n: u32| RequestRecord {
            id: format!("answered-{n}"),
            pipeline: "fit:100x100".into(),
            ..RequestRecord::default()
        };
        let refused = |n: u32| RequestRecord {
            id: format!("refused-{n}"),
            error_kind: Some("rate_limited".into()),
            ..answered(n)
        };
        let line = serde_json::to_vec(&answered(0)).expect("json").len() as u64 + 1;
        let mut spill = Spill::new(path.clone(), line * 10);
        for n in 0..8 {
            let kept = spill.append(&[answered(n)]).expect("append");
            assert_eq!(kept.kept, 1);
        }
        // At 80 % of the bound: refusals are counted, other records still kept.
        let appended = spill.append(&[refused(8), answered(9)]).expect("append");
        assert_eq!(
            (appended.kept, appended.refusals_counted, appended.dropped),
            (1, 1, 0)
        );
        spill.append(&[answered(10)]).expect("append");
        // At the bound: nothing more is kept.
        let appended = spill.append(&[answered(11), refused(12)]).expect("append");
        assert_eq!(
            (appended.kept, appended.refusals_counted, appended.dropped),
            (0, 1, 1)
        );
        assert!(std::fs::metadata(&path).expect("file").len() <= line * 11);
        std::fs::remove_dir_all(&dir).ok();
    }
}
